// Python bindings for the neighbour list.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>

#include "neighbors.hpp"

namespace py = pybind11;
using cryspext::NeighborList;
using cryspext::NeighborOptions;

namespace {

template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    // Move the vector into a capsule so numpy owns it without a copy.
    auto* heap = new std::vector<T>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, heap->data(), owner);
}

}  // namespace


void bind_neighbors(py::module_& m) {
    m.def(
        "neighbor_list",
        [](py::array_t<double, py::array::c_style | py::array::forcecast> positions,
           py::array_t<double, py::array::c_style | py::array::forcecast> cell,
           py::array_t<bool, py::array::c_style | py::array::forcecast> pbc, double cutoff, bool half,
           bool vectors, double bins_per_cutoff) {
            if (positions.ndim() != 2 || positions.shape(1) != 3)
                throw std::invalid_argument("positions must have shape (n_atoms, 3)");
            if (cell.ndim() != 2 || cell.shape(0) != 3 || cell.shape(1) != 3)
                throw std::invalid_argument("cell must have shape (3, 3)");
            if (pbc.ndim() != 1 || pbc.shape(0) != 3) throw std::invalid_argument("pbc must have shape (3,)");
            NeighborOptions opt;
            opt.cutoff = cutoff;
            opt.half = half;
            opt.want_vectors = vectors;
            opt.bins_per_cutoff = bins_per_cutoff;
            const int64_t n = positions.shape(0);
            NeighborList nl;
            {
                py::gil_scoped_release release;
                nl = cryspext::neighbor_list(positions.data(), n, cell.data(), pbc.data(), opt);
            }
            const py::ssize_t n_pairs = static_cast<py::ssize_t>(nl.i.size());
            py::dict out;
            out["i"] = to_numpy(std::move(nl.i), {n_pairs});
            out["j"] = to_numpy(std::move(nl.j), {n_pairs});
            out["S"] = to_numpy(std::move(nl.shifts), {n_pairs, 3});
            out["d"] = to_numpy(std::move(nl.distances), {n_pairs});
            if (vectors) out["D"] = to_numpy(std::move(nl.vectors), {n_pairs, 3});
            return out;
        },
        py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"), py::arg("half") = false,
        py::arg("vectors") = false, py::arg("bins_per_cutoff") = 1.0,
        "Cell-list neighbour list. Returns a dict with i, j (int32), S (int32, (n, 3)), d (Å) and "
        "optionally D (Å, (n, 3)).");
}
