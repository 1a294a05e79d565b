// Python bindings for the XRD δ-profile (cryspext.xrd wraps these).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "xrd.hpp"

namespace py = pybind11;

namespace {

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

cryspext::FormFactorTable make_table(const DArray& coefficients, int kind) {
    if (coefficients.ndim() != 2 || coefficients.shape(0) != cryspext::FormFactorTable::kRows ||
        coefficients.shape(1) != 9)
        throw std::invalid_argument("form-factor table must have shape (119, 9): a1..a4, b1..b4, c per Z");
    if (kind != 0 && kind != 1) throw std::invalid_argument("form-factor kind must be 0 (Cromer-Mann) or 1 (Mott-Bethe)");
    cryspext::FormFactorTable table;
    table.kind = kind;
    auto a = coefficients.unchecked<2>();
    for (int z = 0; z < cryspext::FormFactorTable::kRows; ++z)
        for (int c = 0; c < 9; ++c) table.rows[z][c] = a(z, c);
    return table;
}

cryspext::XrdInput make_input(const DArray& frac, const DArray& cell, const IArray& numbers, const DArray& occupancy,
                              const DArray& b_factor) {
    if (frac.ndim() != 2 || frac.shape(1) != 3) throw std::invalid_argument("fractional coordinates must have shape (n, 3)");
    if (cell.ndim() != 2 || cell.shape(0) != 3 || cell.shape(1) != 3) throw std::invalid_argument("cell must have shape (3, 3)");
    const py::ssize_t n = frac.shape(0);
    if (numbers.ndim() != 1 || numbers.shape(0) != n) throw std::invalid_argument("numbers must have shape (n,)");
    if (occupancy.ndim() != 1 || occupancy.shape(0) != n) throw std::invalid_argument("occupancies must have shape (n,)");
    if (b_factor.ndim() != 1 || b_factor.shape(0) != n) throw std::invalid_argument("B factors must have shape (n,)");
    cryspext::XrdInput in;
    in.frac.assign(frac.data(), frac.data() + 3 * n);
    std::copy(cell.data(), cell.data() + 9, in.cell.begin());
    in.numbers.assign(numbers.data(), numbers.data() + n);
    in.occupancy.assign(occupancy.data(), occupancy.data() + n);
    in.b_factor.assign(b_factor.data(), b_factor.data() + n);
    return in;
}

}  // namespace

void bind_xrd(py::module_& m) {
    m.def(
        "xrd_reflections",
        [](DArray frac, DArray cell, IArray numbers, DArray occupancy, DArray b_factor, DArray table, int kind,
           double inv_d_min, double inv_d_max) {
            auto t = make_table(table, kind);
            auto in = make_input(frac, cell, numbers, occupancy, b_factor);
            cryspext::Reflections r;
            {
                py::gil_scoped_release release;
                r = cryspext::xrd_reflections(in, t, inv_d_min, inv_d_max);
            }
            const py::ssize_t count = static_cast<py::ssize_t>(r.inv_d.size());
            py::array_t<int32_t> hkl({count, py::ssize_t(3)});
            std::copy(r.hkl.begin(), r.hkl.end(), hkl.mutable_data());
            py::dict out;
            out["hkl"] = hkl;
            out["inv_d"] = py::array_t<double>(count, r.inv_d.data());
            out["intensity"] = py::array_t<double>(count, r.intensity.data());
            return out;
        },
        py::arg("frac"), py::arg("cell"), py::arg("numbers"), py::arg("occupancy"), py::arg("b_factor"),
        py::arg("table"), py::arg("kind"), py::arg("inv_d_min"), py::arg("inv_d_max"),
        "Reflections with inv_d_min <= 1/d <= inv_d_max (Å⁻¹), one per Friedel pair: hkl (m, 3), "
        "inv_d (m,), intensity = 2|F|² (m,).");

    m.def(
        "xrd_profiles",
        [](py::list structures, DArray table, int kind, double inv_d_min, double inv_d_max, int64_t n_bins,
           bool normalize) {
            auto t = make_table(table, kind);
            std::vector<cryspext::XrdInput> inputs;
            inputs.reserve(structures.size());
            for (py::handle item : structures) {
                auto tup = item.cast<py::tuple>();
                if (tup.size() != 5)
                    throw std::invalid_argument("each structure must be (frac, cell, numbers, occupancy, b_factor)");
                inputs.push_back(make_input(tup[0].cast<DArray>(), tup[1].cast<DArray>(), tup[2].cast<IArray>(),
                                            tup[3].cast<DArray>(), tup[4].cast<DArray>()));
            }
            cryspext::XrdGrid grid;
            grid.inv_d_min = inv_d_min;
            grid.inv_d_max = inv_d_max;
            grid.n_bins = n_bins;
            if (n_bins < 2) throw std::invalid_argument("n_bins must be at least 2");
            py::array_t<float> out({static_cast<py::ssize_t>(inputs.size()), static_cast<py::ssize_t>(n_bins)});
            float* data = out.mutable_data();
            {
                py::gil_scoped_release release;
                cryspext::xrd_profiles(inputs, t, grid, normalize, data);
            }
            return out;
        },
        py::arg("structures"), py::arg("table"), py::arg("kind"), py::arg("inv_d_min"), py::arg("inv_d_max"),
        py::arg("n_bins"), py::arg("normalize"),
        "δ-profiles of many structures (OpenMP over structures): float32 array (n_structures, n_bins) on a "
        "uniform 1/d grid from inv_d_min to inv_d_max (Å⁻¹), each normalised to max 1 when asked.");
}
