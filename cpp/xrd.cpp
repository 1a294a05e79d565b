#include "xrd.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "parallel.hpp"

namespace cryspext {

namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;
// 8π² a0 (Å) of the Mott–Bethe formula as pymatgen writes it.
constexpr double kMottBethe = 41.78214;

using Mat3x = Eigen::Matrix<double, 3, 3, Eigen::RowMajor>;

// Atoms regrouped by scattering type (Z, B): the form factor and Debye–Waller factor are
// evaluated once per type and reflection, the phases once per atom and reflection.
struct Prepared {
    Mat3x recip;                  // rows a*, b*, c* (Å⁻¹, no 2π)
    std::array<int, 3> hmax{};    // |h| <= hmax[0], ...
    int n = 0;                    // atoms
    std::vector<int> type_begin;  // atoms of type t: [type_begin[t], type_begin[t+1])
    std::vector<int> type_z;
    std::vector<double> type_b;
    std::vector<double> occ, u, v, w;  // sorted by type
};

Prepared prepare(const XrdInput& in, double inv_d_max) {
    Prepared p;
    Mat3x cell;
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) cell(r, c) = in.cell[3 * r + c];
    p.recip = cell.inverse().transpose();
    for (int d = 0; d < 3; ++d)
        p.hmax[d] = static_cast<int>(std::floor(inv_d_max * cell.row(d).norm() + 1e-9));

    const int n = static_cast<int>(in.numbers.size());
    std::map<std::pair<int, double>, std::vector<int>> groups;
    for (int j = 0; j < n; ++j) {
        if (in.occupancy[j] == 0.0) continue;  // a vacancy scatters nothing
        groups[{in.numbers[j], in.b_factor[j]}].push_back(j);
    }
    p.type_begin.push_back(0);
    for (const auto& [key, atoms] : groups) {
        p.type_z.push_back(key.first);
        p.type_b.push_back(key.second);
        for (int j : atoms) {
            p.occ.push_back(in.occupancy[j]);
            p.u.push_back(in.frac[3 * j]);
            p.v.push_back(in.frac[3 * j + 1]);
            p.w.push_back(in.frac[3 * j + 2]);
        }
        p.type_begin.push_back(static_cast<int>(p.occ.size()));
    }
    p.n = static_cast<int>(p.occ.size());
    return p;
}

// exp(2πi m x_j) for m = -mmax..mmax (or 0..mmax), stored [m][j] as separate real/imag arrays.
void phase_table(const std::vector<double>& x, int mlo, int mhi, std::vector<double>& re,
                 std::vector<double>& im) {
    const int n = static_cast<int>(x.size());
    const int rows = mhi - mlo + 1;
    re.assign(static_cast<size_t>(rows) * n, 0.0);
    im.assign(static_cast<size_t>(rows) * n, 0.0);
    for (int m = mlo; m <= mhi; ++m) {
        double* r = re.data() + static_cast<size_t>(m - mlo) * n;
        double* i = im.data() + static_cast<size_t>(m - mlo) * n;
        for (int j = 0; j < n; ++j) {
            // Reduce m*x to [0, 1) first so large indices keep full precision.
            double t = m * x[j];
            t -= std::floor(t);
            r[j] = std::cos(kTwoPi * t);
            i[j] = std::sin(kTwoPi * t);
        }
    }
}

// Calls emit(h, k, l, inv_d, intensity) for one member of every Friedel pair with
// inv_d_min <= |g| <= inv_d_max; intensity = 2 |F|².
// Scattering weight f_t(s) exp(-B_t s²) of each type, either exact or linearly interpolated in s²
// from a fine table (profiles: saves the five exponentials per type and reflection; the
// interpolation error is below 1e-6 of f for these smooth functions).
struct Weights {
    const Prepared& p;
    const FormFactorTable& table;
    bool tabulate;
    static constexpr int kPoints = 2048;
    double s2_max = 0.0, step = 1.0;
    std::vector<double> values;  // [type][point]

    Weights(const Prepared& prep, const FormFactorTable& t, double inv_d_max, bool tab)
        : p(prep), table(t), tabulate(tab) {
        if (!tabulate) return;
        s2_max = 0.25 * inv_d_max * inv_d_max;
        step = s2_max / (kPoints - 1);
        const int n_types = static_cast<int>(p.type_z.size());
        values.resize(static_cast<size_t>(n_types) * kPoints);
        for (int t = 0; t < n_types; ++t)
            for (int i = 0; i < kPoints; ++i) {
                const double s2 = i * step;
                values[static_cast<size_t>(t) * kPoints + i] = exact(t, s2);
            }
    }
    double exact(int t, double s2) const {
        return table.evaluate(p.type_z[t], std::sqrt(s2)) * std::exp(-p.type_b[t] * s2);
    }
    double operator()(int t, double s2) const {
        if (!tabulate) return exact(t, s2);
        double x = s2 / step;
        int i = std::min(static_cast<int>(x), kPoints - 2);
        const double frac = x - i;
        const double* v = values.data() + static_cast<size_t>(t) * kPoints;
        return v[i] + frac * (v[i + 1] - v[i]);
    }
};

template <typename Emit>
void enumerate(const XrdInput& in, const FormFactorTable& table, double inv_d_min, double inv_d_max,
               bool tabulate, Emit&& emit) {
    const Prepared p = prepare(in, inv_d_max);
    const int n = p.n;
    const int n_types = static_cast<int>(p.type_z.size());
    if (n == 0) return;
    // Tabulate only when there are many more reflections than table points.
    const double volume = std::abs(1.0 / p.recip.determinant());
    const double n_refl = 2.0943951 * (inv_d_max * inv_d_max * inv_d_max - inv_d_min * inv_d_min * inv_d_min) * volume;
    const Weights weight(p, table, inv_d_max, tabulate && n_refl > 8.0 * Weights::kPoints);
    const int H = p.hmax[0], K = p.hmax[1], L = p.hmax[2];
    std::vector<double> ehr, ehi, ekr, eki, elr, eli;
    phase_table(p.u, 0, H, ehr, ehi);
    phase_table(p.v, -K, K, ekr, eki);
    phase_table(p.w, -L, L, elr, eli);

    const Eigen::Vector3d as = p.recip.row(0).transpose(), bs = p.recip.row(1).transpose(),
                          cs = p.recip.row(2).transpose();
    const double c2 = cs.squaredNorm();
    const double gmin2 = inv_d_min * inv_d_min, gmax2 = inv_d_max * inv_d_max;

    std::vector<double> hkr(n), hki(n), sr(n_types), si(n_types);
    for (int h = 0; h <= H; ++h) {
        const double* ehr_h = ehr.data() + static_cast<size_t>(h) * n;
        const double* ehi_h = ehi.data() + static_cast<size_t>(h) * n;
        for (int k = (h == 0 ? 0 : -K); k <= K; ++k) {
            const Eigen::Vector3d g0 = h * as + k * bs;
            // l range from |g0 + l c*|² <= gmax².
            const double b = g0.dot(cs);
            const double disc = b * b - c2 * (g0.squaredNorm() - gmax2);
            if (disc < 0) continue;
            const double root = std::sqrt(disc);
            int l_lo = std::max(-L, static_cast<int>(std::ceil((-b - root) / c2 - 1e-9)));
            int l_hi = std::min(L, static_cast<int>(std::floor((-b + root) / c2 + 1e-9)));
            if (h == 0 && k == 0) l_lo = std::max(l_lo, 1);  // one of each Friedel pair, no origin
            if (l_lo > l_hi) continue;

            const double* ekr_k = ekr.data() + static_cast<size_t>(k + K) * n;
            const double* eki_k = eki.data() + static_cast<size_t>(k + K) * n;
            for (int j = 0; j < n; ++j) {
                hkr[j] = p.occ[j] * (ehr_h[j] * ekr_k[j] - ehi_h[j] * eki_k[j]);
                hki[j] = p.occ[j] * (ehr_h[j] * eki_k[j] + ehi_h[j] * ekr_k[j]);
            }
            for (int l = l_lo; l <= l_hi; ++l) {
                const double g2 = (g0 + l * cs).squaredNorm();
                if (g2 < gmin2 || g2 > gmax2) continue;
                const double* elr_l = elr.data() + static_cast<size_t>(l + L) * n;
                const double* eli_l = eli.data() + static_cast<size_t>(l + L) * n;
                for (int t = 0; t < n_types; ++t) {
                    double ar = 0.0, ai = 0.0;
                    for (int j = p.type_begin[t]; j < p.type_begin[t + 1]; ++j) {
                        ar += hkr[j] * elr_l[j] - hki[j] * eli_l[j];
                        ai += hkr[j] * eli_l[j] + hki[j] * elr_l[j];
                    }
                    sr[t] = ar;
                    si[t] = ai;
                }
                const double g = std::sqrt(g2);
                const double s2 = 0.25 * g2;
                double fr = 0.0, fi = 0.0;
                for (int t = 0; t < n_types; ++t) {
                    const double wt = weight(t, s2);
                    fr += wt * sr[t];
                    fi += wt * si[t];
                }
                emit(h, k, l, g, 2.0 * (fr * fr + fi * fi));
            }
        }
    }
}

void validate_grid(const XrdGrid& grid) {
    if (!(std::isfinite(grid.inv_d_min) && std::isfinite(grid.inv_d_max)) || grid.inv_d_min < 0 ||
        !(grid.inv_d_max > grid.inv_d_min))
        throw std::invalid_argument("need 0 <= inv_d_min < inv_d_max (Å⁻¹), got [" +
                                    std::to_string(grid.inv_d_min) + ", " + std::to_string(grid.inv_d_max) +
                                    "]");
    if (grid.n_bins < 2) throw std::invalid_argument("n_bins must be at least 2");
}

}  // namespace

bool FormFactorTable::has(int z) const {
    if (z < 0 || z >= kRows) return false;
    for (double x : rows[z])
        if (!std::isfinite(x)) return false;
    return true;
}

double FormFactorTable::evaluate(int z, double s) const {
    const auto& r = rows[z];
    const double s2 = s * s;
    double sum = r[0] * std::exp(-r[4] * s2) + r[1] * std::exp(-r[5] * s2) + r[2] * std::exp(-r[6] * s2) +
                 r[3] * std::exp(-r[7] * s2);
    if (kind == 1) return static_cast<double>(z) - kMottBethe * s2 * sum;
    return sum + r[8];
}

void validate_input(const XrdInput& in, const FormFactorTable& table) {
    const size_t n = in.numbers.size();
    if (in.frac.size() != 3 * n || in.occupancy.size() != n || in.b_factor.size() != n)
        throw std::invalid_argument("positions, numbers, occupancies and B factors differ in length");
    Mat3x cell;
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) {
            if (!std::isfinite(in.cell[3 * r + c])) throw std::invalid_argument("cell is not finite");
            cell(r, c) = in.cell[3 * r + c];
        }
    const double scale = cell.row(0).norm() * cell.row(1).norm() * cell.row(2).norm();
    if (!(std::abs(cell.determinant()) > 1e-10 * scale))
        throw std::invalid_argument("cell is singular (zero volume)");
    for (size_t j = 0; j < n; ++j) {
        const int z = in.numbers[j];
        if (!table.has(z))
            throw std::invalid_argument("no atomic form factor for atomic number " + std::to_string(z) +
                                        " in the table");
        if (!(in.occupancy[j] >= 0.0 && in.occupancy[j] <= 1.0 + 1e-6))
            throw std::invalid_argument("occupancy of atom " + std::to_string(j) + " is outside [0, 1]");
        if (!std::isfinite(in.b_factor[j]))
            throw std::invalid_argument("Debye-Waller B of atom " + std::to_string(j) + " is not finite");
        for (int d = 0; d < 3; ++d)
            if (!std::isfinite(in.frac[3 * j + d]))
                throw std::invalid_argument("position of atom " + std::to_string(j) + " is not finite");
    }
}

Reflections xrd_reflections(const XrdInput& in, const FormFactorTable& table, double inv_d_min,
                            double inv_d_max) {
    XrdGrid grid;
    grid.inv_d_min = inv_d_min;
    grid.inv_d_max = inv_d_max;
    validate_grid(grid);
    validate_input(in, table);
    Reflections out;
    enumerate(in, table, inv_d_min, inv_d_max, false, [&](int h, int k, int l, double g, double intensity) {
        out.hkl.push_back(h);
        out.hkl.push_back(k);
        out.hkl.push_back(l);
        out.inv_d.push_back(g);
        out.intensity.push_back(intensity);
    });
    return out;
}

namespace {

void profile_unchecked(const XrdInput& in, const FormFactorTable& table, const XrdGrid& grid, bool normalize,
                       float* out) {
    const double width = grid.bin_width();
    std::vector<double> acc(static_cast<size_t>(grid.n_bins), 0.0);
    enumerate(in, table, grid.inv_d_min, grid.inv_d_max, true, [&](int, int, int, double g, double intensity) {
        int64_t bin = std::llround((g - grid.inv_d_min) / width);
        bin = std::clamp<int64_t>(bin, 0, grid.n_bins - 1);
        acc[static_cast<size_t>(bin)] += intensity;
    });
    double peak = 0.0;
    for (double x : acc) peak = std::max(peak, x);
    const double scale = (normalize && peak > 0.0) ? 1.0 / peak : 1.0;
    for (int64_t b = 0; b < grid.n_bins; ++b) out[b] = static_cast<float>(acc[static_cast<size_t>(b)] * scale);
}

}  // namespace

void xrd_profile(const XrdInput& in, const FormFactorTable& table, const XrdGrid& grid, bool normalize,
                 float* out) {
    validate_grid(grid);
    validate_input(in, table);
    profile_unchecked(in, table, grid, normalize, out);
}

void xrd_profiles(const std::vector<XrdInput>& inputs, const FormFactorTable& table, const XrdGrid& grid,
                  bool normalize, float* out) {
    validate_grid(grid);
    for (size_t i = 0; i < inputs.size(); ++i) {
        try {
            validate_input(inputs[i], table);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("structure " + std::to_string(i) + ": " + e.what());
        }
    }
    const int64_t count = static_cast<int64_t>(inputs.size());
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int64_t i = 0; i < count; ++i)
        profile_unchecked(inputs[static_cast<size_t>(i)], table, grid, normalize, out + i * grid.n_bins);
}

}  // namespace cryspext
