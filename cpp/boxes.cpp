#include "boxes.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.hpp"

namespace cryspext {

namespace {

// Centres along one axis for a sample spanning [lo, hi]: the grid is centred on the
// sample and covers it with boxes of edge L every s; a sample thinner than L gets one
// centre in its middle (slab-like direction).
std::vector<double> open_axis(double lo, double hi, double box, double stride) {
    double extent = hi - lo;
    int64_t n = 1;
    if (extent > box) n = static_cast<int64_t>(std::floor((extent - box) / stride + 1e-9)) + 1;
    double span = (n - 1) * stride;
    double first = 0.5 * (lo + hi) - 0.5 * span;
    std::vector<double> c(n);
    for (int64_t k = 0; k < n; ++k) c[k] = first + k * stride;
    return c;
}

}  // namespace

BoxGrid extract_boxes(const double* positions, int64_t n_atoms, const double* cell_rows, const bool* pbc,
                      const BoxOptions& opt) {
    if (!(opt.box > 0.0) || !std::isfinite(opt.box)) throw std::invalid_argument("box edge must be a positive number (Å)");
    if (!(opt.stride > 0.0) || !std::isfinite(opt.stride)) throw std::invalid_argument("stride must be a positive number (Å)");
    if (opt.stride > opt.box)
        throw std::invalid_argument("stride (" + std::to_string(opt.stride) + " Å) larger than the box edge (" +
                                    std::to_string(opt.box) + " Å) would leave atoms in no box");
    if (opt.slab_axis < -1 || opt.slab_axis > 2) throw std::invalid_argument("slab_axis must be -1, 0, 1 or 2");
    if (n_atoms <= 0) throw std::invalid_argument("structure has no atoms");
    if (n_atoms >= std::numeric_limits<int32_t>::max()) throw std::invalid_argument("too many atoms for 32-bit indices");

    std::array<double, 3> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (int64_t a = 0; a < n_atoms; ++a)
        for (int d = 0; d < 3; ++d) {
            double x = positions[3 * a + d];
            if (!std::isfinite(x)) throw std::invalid_argument("position of atom " + std::to_string(a) + " is not finite");
            lo[d] = std::min(lo[d], x);
            hi[d] = std::max(hi[d], x);
        }

    // Wrapped axes: periodic and axis-aligned (the cell row d is along Cartesian axis d).
    std::array<bool, 3> wrap{false, false, false};
    std::array<double, 3> length{0, 0, 0};
    if (opt.periodic) {
        for (int d = 0; d < 3; ++d) {
            if (!pbc[d]) continue;
            double along = cell_rows[3 * d + d];
            double off = std::abs(cell_rows[3 * d + (d + 1) % 3]) + std::abs(cell_rows[3 * d + (d + 2) % 3]);
            if (!(along > 0.0) || off > 1e-9 * along)
                throw std::invalid_argument(
                    "periodic box wrapping needs an orthorhombic, axis-aligned cell (cell vector " +
                    std::to_string(d) + " is not along axis " + std::to_string(d) + ")");
            if (opt.box >= along)
                throw std::invalid_argument("box edge must be smaller than the periodic cell length " +
                                            std::to_string(along) + " Å to wrap boxes");
            wrap[d] = true;
            length[d] = along;
        }
    }

    BoxGrid grid;
    for (int d = 0; d < 3; ++d) {
        if (d == opt.slab_axis) {
            grid.axis_centres[d] = {0.5 * (lo[d] + hi[d])};
            grid.stride[d] = 0.0;
        } else if (wrap[d]) {
            // Tile the cell exactly: the stride is adjusted to length / round(length / s).
            int64_t n = std::max<int64_t>(1, std::llround(length[d] / opt.stride));
            grid.stride[d] = length[d] / n;
            grid.axis_centres[d].resize(n);
            for (int64_t k = 0; k < n; ++k) grid.axis_centres[d][k] = (k + 0.5) * grid.stride[d];
        } else {
            grid.axis_centres[d] = open_axis(lo[d], hi[d], opt.box, opt.stride);
            grid.stride[d] = grid.axis_centres[d].size() > 1 ? opt.stride : 0.0;
        }
    }
    const int64_t nx = grid.axis_centres[0].size(), ny = grid.axis_centres[1].size(), nz = grid.axis_centres[2].size();
    grid.shape = {nz, ny, nx};
    const int64_t n_boxes = nx * ny * nz;
    const double half = 0.5 * opt.box;

    // For an atom coordinate x along axis d, enumerate (box k, image m) with
    // c_k - L/2 <= x + m*length <= c_k + L/2.
    auto for_each_box = [&](int d, double x, auto&& visit) {
        const auto& c = grid.axis_centres[d];
        const int64_t n = c.size();
        if (!wrap[d]) {
            if (n == 1 || grid.stride[d] == 0.0) {
                for (int64_t k = 0; k < n; ++k)
                    if (c[k] - half <= x && x <= c[k] + half) visit(k, 0);
                return;
            }
            double s = grid.stride[d];
            int64_t k0 = static_cast<int64_t>(std::ceil((x - half - c[0]) / s)) - 1;
            int64_t k1 = static_cast<int64_t>(std::floor((x + half - c[0]) / s)) + 1;
            for (int64_t k = std::max<int64_t>(0, k0); k <= std::min(n - 1, k1); ++k)
                if (c[k] - half <= x && x <= c[k] + half) visit(k, 0);
            return;
        }
        double L = length[d];
        double xw = x - std::floor(x / L) * L;
        int m0 = static_cast<int>(std::floor(x / L));
        double s = grid.stride[d];
        // Candidates on the unwrapped line: xw + m'*L for m' in {-1, 0, 1} (box < L).
        for (int mp = -1; mp <= 1; ++mp) {
            double xu = xw + mp * L;
            int64_t k0 = static_cast<int64_t>(std::ceil((xu - half - c[0]) / s)) - 1;
            int64_t k1 = static_cast<int64_t>(std::floor((xu + half - c[0]) / s)) + 1;
            for (int64_t k = std::max<int64_t>(0, k0); k <= std::min(n - 1, k1); ++k)
                if (c[k] - half <= xu && xu <= c[k] + half) visit(k, mp - m0);
        }
    };

    // Pass 1: counts. Pass 2: fill. Both parallel over atoms with atomic per-box cursors.
    std::vector<std::atomic<int64_t>> count(n_boxes);
    for (auto& c : count) c.store(0, std::memory_order_relaxed);
    auto visit_atom = [&](int64_t a, auto&& emit) {
        const double* r = positions + 3 * a;
        int64_t kx[64], ky[64], kz[64];
        int mx[64], my[64], mz[64];
        int nxa = 0, nya = 0, nza = 0;
        // Boxes per axis per atom is at most ceil(L/s)+1 <= 64 for L/s <= 62.
        for_each_box(0, r[0], [&](int64_t k, int m) { if (nxa < 64) { kx[nxa] = k; mx[nxa++] = m; } });
        for_each_box(1, r[1], [&](int64_t k, int m) { if (nya < 64) { ky[nya] = k; my[nya++] = m; } });
        for_each_box(2, r[2], [&](int64_t k, int m) { if (nza < 64) { kz[nza] = k; mz[nza++] = m; } });
        for (int c = 0; c < nza; ++c)
            for (int b = 0; b < nya; ++b)
                for (int x = 0; x < nxa; ++x) emit((kz[c] * ny + ky[b]) * nx + kx[x], mx[x], my[b], mz[c]);
    };
    if (opt.box / opt.stride > 62.0) throw std::invalid_argument("box/stride ratio above 62 is not supported");

#ifdef CRYSPEXT_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t a = 0; a < n_atoms; ++a)
        visit_atom(a, [&](int64_t b, int, int, int) { count[b].fetch_add(1, std::memory_order_relaxed); });

    grid.offsets.assign(n_boxes + 1, 0);
    grid.counts.resize(n_boxes);
    for (int64_t b = 0; b < n_boxes; ++b) {
        grid.counts[b] = count[b].load();
        grid.offsets[b + 1] = grid.offsets[b] + grid.counts[b];
    }
    const int64_t members = grid.offsets[n_boxes];
    grid.indices.resize(members);
    const bool any_wrap = wrap[0] || wrap[1] || wrap[2];
    if (any_wrap) grid.shifts.resize(3 * members);
    for (int64_t b = 0; b < n_boxes; ++b) count[b].store(grid.offsets[b], std::memory_order_relaxed);

#ifdef CRYSPEXT_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t a = 0; a < n_atoms; ++a)
        visit_atom(a, [&](int64_t b, int mx, int my, int mz) {
            int64_t slot = count[b].fetch_add(1, std::memory_order_relaxed);
            grid.indices[slot] = static_cast<int32_t>(a);
            if (any_wrap) {
                grid.shifts[3 * slot] = mx;
                grid.shifts[3 * slot + 1] = my;
                grid.shifts[3 * slot + 2] = mz;
            }
        });

    // Deterministic order inside each box (atom index, then shift).
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel for schedule(dynamic, 64)
#endif
    for (int64_t b = 0; b < n_boxes; ++b) {
        const int64_t s = grid.offsets[b], e = grid.offsets[b + 1];
        if (!any_wrap) {
            std::sort(grid.indices.begin() + s, grid.indices.begin() + e);
            continue;
        }
        std::vector<int64_t> order(e - s);
        for (int64_t k = 0; k < e - s; ++k) order[k] = s + k;
        auto key = [&](int64_t p) {
            return std::array<int64_t, 4>{grid.indices[p], grid.shifts[3 * p], grid.shifts[3 * p + 1], grid.shifts[3 * p + 2]};
        };
        std::sort(order.begin(), order.end(), [&](int64_t p, int64_t q) { return key(p) < key(q); });
        std::vector<int32_t> idx(e - s), sh(3 * (e - s));
        for (int64_t k = 0; k < e - s; ++k) {
            idx[k] = grid.indices[order[k]];
            for (int d = 0; d < 3; ++d) sh[3 * k + d] = grid.shifts[3 * order[k] + d];
        }
        std::copy(idx.begin(), idx.end(), grid.indices.begin() + s);
        std::copy(sh.begin(), sh.end(), grid.shifts.begin() + 3 * s);
    }
    return grid;
}

}  // namespace cryspext
