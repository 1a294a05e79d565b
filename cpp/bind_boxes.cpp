// Python bindings for strided box extraction.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "bind_util.hpp"
#include "boxes.hpp"

namespace py = pybind11;

using namespace cryspext::bind;

void bind_boxes(py::module_& m) {
    m.def(
        "extract_boxes",
        [](DArray positions, DArray cell, BArray pbc, double box, double stride, int slab_axis, bool periodic) {
            check_structure(positions, cell, pbc);
            cryspext::BoxOptions opt;
            opt.box = box;
            opt.stride = stride;
            opt.slab_axis = slab_axis;
            opt.periodic = periodic;
            cryspext::BoxGrid g;
            {
                py::gil_scoped_release release;
                g = cryspext::extract_boxes(positions.data(), positions.shape(0), cell.data(), pbc.data(), opt);
            }
            py::dict out;
            const py::ssize_t members = static_cast<py::ssize_t>(g.indices.size());
            out["shape"] = py::make_tuple(g.shape[0], g.shape[1], g.shape[2]);
            out["x"] = py::array_t<double>(g.axis_centres[0].size(), g.axis_centres[0].data());
            out["y"] = py::array_t<double>(g.axis_centres[1].size(), g.axis_centres[1].data());
            out["z"] = py::array_t<double>(g.axis_centres[2].size(), g.axis_centres[2].data());
            out["stride"] = py::make_tuple(g.stride[0], g.stride[1], g.stride[2]);
            out["offsets"] = to_numpy(std::move(g.offsets), {static_cast<py::ssize_t>(g.counts.size() + 1)});
            out["indices"] = to_numpy(std::move(g.indices), {members});
            if (!g.shifts.empty()) out["shifts"] = to_numpy(std::move(g.shifts), {members, 3});
            out["counts"] = to_numpy(std::move(g.counts), {static_cast<py::ssize_t>(g.shape[0]), static_cast<py::ssize_t>(g.shape[1]), static_cast<py::ssize_t>(g.shape[2])});
            return out;
        },
        py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("box"), py::arg("stride"),
        py::arg("slab_axis") = -1, py::arg("periodic") = false,
        "Strided cubic boxes (edge `box`, step `stride`, Å). Returns grid centres per axis, CSR "
        "offsets/indices (box order z, y, x), optional periodic shifts and per-box counts.");
}
