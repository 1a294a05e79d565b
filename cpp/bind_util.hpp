// Helpers shared by the bind_*.cpp files: array types, input shape checks, zero-copy output.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <utility>
#include <vector>

namespace cryspext::bind {

namespace py = pybind11;

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using BArray = py::array_t<bool, py::array::c_style | py::array::forcecast>;

// positions (n, 3), cell (3, 3) and pbc (3,), or std::invalid_argument (ValueError in Python).
inline void check_structure(const DArray& positions, const DArray& cell, const BArray& pbc) {
    if (positions.ndim() != 2 || positions.shape(1) != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    if (cell.ndim() != 2 || cell.shape(0) != 3 || cell.shape(1) != 3)
        throw std::invalid_argument("cell must have shape (3, 3)");
    if (pbc.ndim() != 1 || pbc.shape(0) != 3) throw std::invalid_argument("pbc must have shape (3,)");
}

// Move a vector into a numpy array without copying: a capsule owns the storage.
template <typename T, typename Alloc>
py::array_t<T> to_numpy(std::vector<T, Alloc>&& v, std::vector<py::ssize_t> shape) {
    using Vec = std::vector<T, Alloc>;
    auto* heap = new Vec(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<Vec*>(p); });
    return py::array_t<T>(shape, heap->data(), owner);
}

}  // namespace cryspext::bind
