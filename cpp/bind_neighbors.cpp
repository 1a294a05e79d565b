// Python bindings for the neighbour list.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>

#include "bind_util.hpp"
#include "neighbors.hpp"

namespace py = pybind11;
using cryspext::NeighborList;
using cryspext::NeighborOptions;

using namespace cryspext::bind;


void bind_neighbors(py::module_& m) {
    m.def(
        "neighbor_list",
        [](DArray positions, DArray cell, BArray pbc, double cutoff, bool half, bool vectors,
           double bins_per_cutoff) {
            check_structure(positions, cell, pbc);
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
