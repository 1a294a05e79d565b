// SOAP bindings: filled in by the SOAP module (issue 3).
#include <pybind11/pybind11.h>
namespace py = pybind11;
void bind_soap(py::module_& /*m*/) {}
