// Python bindings for the SOAP descriptor (ARISE construction, per-atom SOAP, d_NN).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "bind_util.hpp"
#include "parallel.hpp"
#include "soap.hpp"

namespace py = pybind11;
using cryspext::AriseOptions;
using cryspext::SoapSettings;
using namespace cryspext::bind;

namespace {

SoapSettings make_settings(double cutoff, int n_max, int l_max, double sigma, double transition, double central_weight) {
    SoapSettings s;
    s.cutoff = cutoff;
    s.n_max = n_max;
    s.l_max = l_max;
    s.sigma = sigma;
    s.transition = transition;
    s.central_weight = central_weight;
    cryspext::SoapBasis check(s);  // validates, throws std::invalid_argument
    return s;
}

// The options every ARISE entry point takes, in one place.
AriseOptions make_options(double cutoff, int n_max, int l_max, double sigma, double transition, double central_weight,
                          bool scale, int degenerate, double rtol, int bins, double nn_search_max, bool fma_norm) {
    AriseOptions opt;
    opt.soap = make_settings(cutoff, n_max, l_max, sigma, transition, central_weight);
    opt.scale = scale;
    opt.degenerate = degenerate;
    opt.rtol = rtol;
    opt.bins = bins;
    opt.nn_search_max = nn_search_max;
    opt.fma_norm = fma_norm;
    return opt;
}


// arise_soap inside a parallel loop: an exception (bad settings for this structure) becomes a
// NaN vector and its message, instead of escaping the OpenMP region.
cryspext::AriseResult arise_soap_or_nan(const double* positions, const int32_t* numbers, int64_t n, const double* cell,
                                        const bool* pbc, const AriseOptions& opt, int dim) {
    try {
        return cryspext::arise_soap(positions, numbers, n, cell, pbc, opt);
    } catch (const std::exception& e) {
        cryspext::AriseResult r;
        r.vector.assign(dim, std::numeric_limits<double>::quiet_NaN());
        r.error = e.what();
        return r;
    }
}

// A structure copied out of Python objects so that the GIL can be released.
struct Item {
    std::vector<double> positions;
    std::vector<int32_t> numbers;
    double cell[9];
    bool pbc[3];
};

}  // namespace

void bind_soap(py::module_& m) {
    m.def(
        "soap_isa", [] { return std::string(cryspext::SoapBasis(cryspext::SoapSettings{}).isa()); },
        "Instruction set the SOAP kernel uses on this CPU: 'avx512', 'avx2' or 'generic' (x86-64 baseline). "
        "The environment variable CRYSPEXT_SOAP_ISA=avx2|generic caps it.");
    m.def("soap_dimension", &cryspext::soap_dimension, py::arg("n_max"), py::arg("l_max"),
          "Length of the SOAP vector (quippy layout, including the trailing zero).");

    m.def(
        "soap_basis",
        [](double cutoff, int n_max, int l_max, double sigma) {
            SoapSettings s = make_settings(cutoff, n_max, l_max, sigma, 0.5, 0.0);
            cryspext::SoapBasis b(s);
            py::dict out;
            out["r_basis"] = py::array_t<double>(b.r_basis().size(), b.r_basis().data());
            py::array_t<double> t({n_max, n_max});
            std::copy(b.transform().begin(), b.transform().end(), t.mutable_data());
            out["transform"] = t;
            out["dim"] = b.dim();
            return out;
        },
        py::arg("cutoff"), py::arg("n_max"), py::arg("l_max"), py::arg("sigma"),
        "Radial basis centres and the transform matrix (quippy's r_basis, transform_basis).");

    m.def(
        "histogram_distance",
        [](DArray distances, int bins, int degenerate, double rtol) {
            std::vector<double> v(distances.data(), distances.data() + distances.size());
            return cryspext::arise_histogram_distance(v, bins, degenerate, rtol);
        },
        py::arg("distances"), py::arg("bins") = 100, py::arg("degenerate") = 0, py::arg("rtol") = 1e-9,
        "ARISE's histogram mode of nearest-neighbour distances (numpy.histogram semantics).");

    m.def(
        "nearest_distances",
        [](DArray positions, IArray numbers, DArray cell, BArray pbc, int32_t center, int32_t neighbor, double max_radius) {
            check_structure(positions, cell, pbc);
            if (numbers.size() != positions.shape(0)) throw std::invalid_argument("one atomic number per atom is required");
            std::vector<double> out;
            {
                py::gil_scoped_release release;
                out = cryspext::nearest_distances(positions.data(), numbers.data(), positions.shape(0), cell.data(),
                                                  pbc.data(), center, neighbor, max_radius);
            }
            return py::array_t<double>(out.size(), out.data());
        },
        py::arg("positions"), py::arg("numbers"), py::arg("cell"), py::arg("pbc"), py::arg("center") = 0,
        py::arg("neighbor") = 0, py::arg("max_radius") = 20.2,
        "Per-atom nearest distance (Å) to atoms of species `neighbor` (0: any) for atoms of species `center` (0: all).");

    m.def(
        "arise_soap_batch",
        [](py::list structures, double cutoff, int n_max, int l_max, double sigma, double transition, double central_weight,
           bool scale, int degenerate, double rtol, int bins, double nn_search_max, bool fma_norm) {
            const AriseOptions opt = make_options(cutoff, n_max, l_max, sigma, transition, central_weight, scale,
                                                  degenerate, rtol, bins, nn_search_max, fma_norm);
            const int dim = cryspext::soap_dimension(n_max, l_max);
            std::vector<Item> items(structures.size());
            for (size_t k = 0; k < items.size(); ++k) {
                py::tuple t = structures[k].cast<py::tuple>();
                DArray pos = t[0].cast<DArray>();
                IArray num = t[1].cast<IArray>();
                DArray cell = t[2].cast<DArray>();
                BArray pbc = t[3].cast<BArray>();
                check_structure(pos, cell, pbc);
                if (num.size() != pos.shape(0)) throw std::invalid_argument("one atomic number per atom is required");
                items[k].positions.assign(pos.data(), pos.data() + pos.size());
                items[k].numbers.assign(num.data(), num.data() + num.size());
                std::copy(cell.data(), cell.data() + 9, items[k].cell);
                std::copy(pbc.data(), pbc.data() + 3, items[k].pbc);
            }
            const int64_t n = static_cast<int64_t>(items.size());
            py::array_t<double> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(dim)});
            std::vector<std::string> errors(n);
            double* o = out.mutable_data();
            {
                py::gil_scoped_release release;
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
                for (int64_t k = 0; k < n; ++k) {
                    const Item& it = items[k];
                    const cryspext::AriseResult r = arise_soap_or_nan(
                        it.positions.data(), it.numbers.data(), static_cast<int64_t>(it.numbers.size()), it.cell, it.pbc,
                        opt, dim);
                    std::copy(r.vector.begin(), r.vector.end(), o + k * dim);
                    errors[k] = r.error;
                }
            }
            return py::make_tuple(out, errors);
        },
        py::arg("structures"), py::arg("cutoff"), py::arg("n_max"), py::arg("l_max"), py::arg("sigma"),
        py::arg("transition") = 0.5, py::arg("central_weight") = 0.0, py::arg("scale") = true, py::arg("degenerate") = 0,
        py::arg("rtol") = 1e-9, py::arg("bins") = 100, py::arg("nn_search_max") = 20.2, py::arg("fma_norm") = false,
        "ARISE SOAP for a list of (positions, numbers, cell, pbc) tuples, parallel over structures. "
        "Returns (array (n, dim), list of error strings, '' where fine).");

    m.def(
        "arise_soap_one",
        [](DArray positions, IArray numbers, DArray cell, BArray pbc, double cutoff, int n_max, int l_max, double sigma,
           double transition, double central_weight, bool scale, int degenerate, double rtol, int bins, double nn_search_max, bool fma_norm) {
            check_structure(positions, cell, pbc);
            if (numbers.size() != positions.shape(0)) throw std::invalid_argument("one atomic number per atom is required");
            const AriseOptions opt = make_options(cutoff, n_max, l_max, sigma, transition, central_weight, scale,
                                                  degenerate, rtol, bins, nn_search_max, fma_norm);
            cryspext::AriseResult r;
            {
                py::gil_scoped_release release;
                r = cryspext::arise_soap(positions.data(), numbers.data(), positions.shape(0), cell.data(), pbc.data(), opt);
            }
            const py::ssize_t S = static_cast<py::ssize_t>(r.species.size());
            py::array_t<double> dnn({S, S});
            std::copy(r.dnn.begin(), r.dnn.end(), dnn.mutable_data());
            return py::make_tuple(py::array_t<double>(r.vector.size(), r.vector.data()),
                                  py::array_t<int32_t>(r.species.size(), r.species.data()), dnn, r.error);
        },
        py::arg("positions"), py::arg("numbers"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"), py::arg("n_max"),
        py::arg("l_max"), py::arg("sigma"), py::arg("transition") = 0.5, py::arg("central_weight") = 0.0,
        py::arg("scale") = true, py::arg("degenerate") = 0, py::arg("rtol") = 1e-9, py::arg("bins") = 100,
        py::arg("nn_search_max") = 20.2, py::arg("fma_norm") = false,
        "ARISE SOAP of one structure. Returns (vector, species, d_NN (S, S) in Å, error string).");

    m.def(
        "arise_soap_boxes",
        [](DArray positions, IArray numbers, DArray cell, py::array_t<int64_t, py::array::c_style | py::array::forcecast> offsets,
           IArray indices, py::object shifts_obj, double cutoff, int n_max, int l_max, double sigma, double transition,
           double central_weight, bool scale, int degenerate, double rtol, int bins, double nn_search_max, bool fma_norm) {
            if (positions.ndim() != 2 || positions.shape(1) != 3) throw std::invalid_argument("positions must have shape (n_atoms, 3)");
            if (numbers.size() != positions.shape(0)) throw std::invalid_argument("one atomic number per atom is required");
            const AriseOptions opt = make_options(cutoff, n_max, l_max, sigma, transition, central_weight, scale,
                                                  degenerate, rtol, bins, nn_search_max, fma_norm);
            const int dim = cryspext::soap_dimension(n_max, l_max);
            const int64_t n_boxes = offsets.size() - 1;
            const int64_t n_atoms = positions.shape(0);
            const int64_t* off = offsets.data();
            const int32_t* idx = indices.data();
            for (int64_t k = 0; k < indices.size(); ++k)
                if (idx[k] < 0 || idx[k] >= n_atoms) throw std::invalid_argument("box member index out of range");
            const int32_t* sh = nullptr;
            IArray shifts;
            if (!shifts_obj.is_none()) {
                shifts = shifts_obj.cast<IArray>();
                if (shifts.size() != 3 * indices.size()) throw std::invalid_argument("shifts must have shape (n_members, 3)");
                sh = shifts.data();
            }
            py::array_t<double> out({static_cast<py::ssize_t>(std::max<int64_t>(n_boxes, 0)), static_cast<py::ssize_t>(dim)});
            double* o = out.mutable_data();
            const double* pos = positions.data();
            const int32_t* num = numbers.data();
            const double* c = cell.data();
            {
                py::gil_scoped_release release;
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel
#endif
                {
                    std::vector<double> bpos;
                    std::vector<int32_t> bnum;
                    const double zero_cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
                    const bool no_pbc[3] = {false, false, false};
#ifdef CRYSPEXT_OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
                    for (int64_t b = 0; b < n_boxes; ++b) {
                        const int64_t s = off[b], e = off[b + 1];
                        double* row = o + b * dim;
                        if (e - s < 1) {
                            std::fill(row, row + dim, std::numeric_limits<double>::quiet_NaN());
                            continue;
                        }
                        bpos.resize(3 * (e - s));
                        bnum.resize(e - s);
                        for (int64_t k = s; k < e; ++k) {
                            const int32_t a = idx[k];
                            for (int d = 0; d < 3; ++d) {
                                double x = pos[3 * a + d];
                                if (sh) x += sh[3 * k] * c[d] + sh[3 * k + 1] * c[3 + d] + sh[3 * k + 2] * c[6 + d];
                                bpos[3 * (k - s) + d] = x;
                            }
                            bnum[k - s] = num[a];
                        }
                        const cryspext::AriseResult r =
                            arise_soap_or_nan(bpos.data(), bnum.data(), e - s, zero_cell, no_pbc, opt, dim);
                        std::copy(r.vector.begin(), r.vector.end(), row);
                    }
                }
            }
            return out;
        },
        py::arg("positions"), py::arg("numbers"), py::arg("cell"), py::arg("offsets"), py::arg("indices"),
        py::arg("shifts"), py::arg("cutoff"), py::arg("n_max"), py::arg("l_max"), py::arg("sigma"),
        py::arg("transition") = 0.5, py::arg("central_weight") = 0.0, py::arg("scale") = true, py::arg("degenerate") = 0,
        py::arg("rtol") = 1e-9, py::arg("bins") = 100, py::arg("nn_search_max") = 20.2, py::arg("fma_norm") = false,
        "ARISE SOAP of every box (CSR offsets/indices, optional periodic shifts); each box is an isolated "
        "cluster. Rows of empty or failing boxes are NaN.");

    m.def(
        "soap_per_atom",
        [](DArray positions, DArray cell, BArray pbc, double cutoff, int n_max, int l_max, double sigma, double transition,
           double central_weight, double scale) {
            check_structure(positions, cell, pbc);
            SoapSettings s = make_settings(cutoff, n_max, l_max, sigma, transition, central_weight);
            const int dim = cryspext::soap_dimension(n_max, l_max);
            // Written in place: peak memory is the output plus the cell list.
            py::array_t<double> arr({static_cast<py::ssize_t>(positions.shape(0)), static_cast<py::ssize_t>(dim)});
            double* out = arr.mutable_data();
            {
                py::gil_scoped_release release;
                cryspext::soap_per_atom(positions.data(), positions.shape(0), cell.data(), pbc.data(), s, scale, out);
            }
            return arr;
        },
        py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"), py::arg("n_max"), py::arg("l_max"),
        py::arg("sigma"), py::arg("transition") = 0.5, py::arg("central_weight") = 0.0, py::arg("scale") = 1.0,
        "Per-atom SOAP (quippy average=F, all species as one); lengths divided by `scale`.");
}
