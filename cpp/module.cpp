// cryspext._core: the compiled core. Each concept registers its own bindings
// (bind_<concept>.cpp) so modules can grow independently.
#include <pybind11/pybind11.h>

#include "parallel.hpp"

namespace py = pybind11;

void bind_neighbors(py::module_& m);
void bind_boxes(py::module_& m);
void bind_soap(py::module_& m);
void bind_xrd(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "cryspext compiled core: neighbour lists, strided boxes, SOAP, XRD delta profiles";
#ifdef CRYSPEXT_OPENMP
    m.attr("has_openmp") = true;
#else
    m.attr("has_openmp") = false;
#endif
    m.def("set_num_threads", [](int n) {
#ifdef CRYSPEXT_OPENMP
        if (n > 0) omp_set_num_threads(n);
#endif
    }, py::arg("n"), "Number of OpenMP threads used by the core (no effect without OpenMP).");
    m.def("get_num_threads", []() { return cryspext::max_threads(); });
    bind_neighbors(m);
    bind_boxes(m);
    bind_soap(m);
    bind_xrd(m);
}
