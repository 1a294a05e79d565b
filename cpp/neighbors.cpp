#include "neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.hpp"

namespace cryspext {

namespace {

inline int floordiv(int a, int n) { return (a >= 0) ? a / n : -((-a + n - 1) / n); }

}  // namespace

CellBins make_bins(const double* positions, int64_t n_atoms, const CellFrame& frame, double cutoff,
                   double bins_per_cutoff) {
    if (!std::isfinite(cutoff) || cutoff < 0.0)
        throw std::invalid_argument("cutoff must be finite and >= 0, got " + std::to_string(cutoff));
    if (n_atoms >= std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("too many atoms for 32-bit indices");
    CellBins bins;
    bins.frame = frame;
    const int64_t n = n_atoms;
    bins.wrapped.resize(3 * n);
    bins.image.assign(3 * n, 0);
    std::vector<double> frac(3 * n);

    std::array<double, 3> fmin{0, 0, 0}, fmax{0, 0, 0};
    for (int d = 0; d < 3; ++d) {
        fmin[d] = std::numeric_limits<double>::infinity();
        fmax[d] = -std::numeric_limits<double>::infinity();
    }
    for (int64_t a = 0; a < n; ++a) {
        Eigen::Map<const Eigen::RowVector3d> r(positions + 3 * a);
        if (!r.allFinite()) throw std::invalid_argument("position of atom " + std::to_string(a) + " is not finite");
        Eigen::RowVector3d f = r * frame.inverse;
        Eigen::RowVector3d k = Eigen::RowVector3d::Zero();
        for (int d = 0; d < 3; ++d) {
            if (frame.pbc[d]) {
                double fl = std::floor(f[d]);
                double w = f[d] - fl;
                if (w >= 1.0) {  // rounding can give exactly 1 after subtraction
                    w -= 1.0;
                    fl += 1.0;
                }
                f[d] = w;
                k[d] = fl;
                bins.image[3 * a + d] = static_cast<int32_t>(fl);
            }
            fmin[d] = std::min(fmin[d], f[d]);
            fmax[d] = std::max(fmax[d], f[d]);
            frac[3 * a + d] = f[d];
        }
        // Subtract the integer image instead of re-multiplying fractional coordinates,
        // so wrapped positions keep the input's precision.
        Eigen::RowVector3d rw = r - k * frame.cell;
        for (int d = 0; d < 3; ++d) bins.wrapped[3 * a + d] = rw[d];
    }

    // Number of bins along each direction: bins at least cutoff/bins_per_cutoff high.
    double bin_target = cutoff / std::max(1.0, bins_per_cutoff);
    std::array<double, 3> bin_height{};
    std::array<double, 3> extent{};
    for (int d = 0; d < 3; ++d) {
        if (frame.pbc[d]) {
            extent[d] = frame.heights[d];
        } else {
            bins.open_min[d] = (n > 0) ? fmin[d] : 0.0;
            extent[d] = (n > 0) ? (fmax[d] - fmin[d]) * frame.heights[d] : 0.0;
        }
        int nb = 1;
        if (bin_target > 0.0 && extent[d] > 0.0) {
            double q = std::floor(extent[d] / bin_target);
            nb = static_cast<int>(std::max(1.0, std::min(q, 1.0e6)));
        }
        bins.n_bins[d] = nb;
    }
    // Never use more bins than ~2 per atom: tiny cutoffs in huge boxes would waste memory.
    const double max_bins = std::max<double>(8.0, 2.0 * static_cast<double>(n));
    while (static_cast<double>(bins.n_bins[0]) * bins.n_bins[1] * bins.n_bins[2] > max_bins) {
        int d = static_cast<int>(std::max_element(bins.n_bins.begin(), bins.n_bins.end()) - bins.n_bins.begin());
        bins.n_bins[d] = std::max(1, bins.n_bins[d] / 2);
    }
    for (int d = 0; d < 3; ++d) {
        bin_height[d] = extent[d] / bins.n_bins[d];
        if (bin_height[d] > 0.0) {
            bins.search[d] = static_cast<int>(std::ceil(cutoff / bin_height[d]));
        } else {
            // Zero extent: a periodic direction cannot have it (frame checked), an open one
            // has all atoms in the same plane; search only that bin.
            bins.search[d] = 0;
        }
        if (!frame.pbc[d]) bins.search[d] = std::min(bins.search[d], bins.n_bins[d] - 1);
    }

    // Counting sort of atoms into bins.
    const int total = bins.total_bins();
    bins.atom_bin.resize(n);
    bins.bin_start.assign(total + 1, 0);
    for (int64_t a = 0; a < n; ++a) {
        int idx[3];
        for (int d = 0; d < 3; ++d) {
            double f = frac[3 * a + d];
            double u = frame.pbc[d] ? f : ((extent[d] > 0.0) ? (f - fmin[d]) * frame.heights[d] / extent[d] : 0.0);
            int b = static_cast<int>(std::floor(u * bins.n_bins[d]));
            idx[d] = std::min(std::max(b, 0), bins.n_bins[d] - 1);
        }
        int b = (idx[0] * bins.n_bins[1] + idx[1]) * bins.n_bins[2] + idx[2];
        bins.atom_bin[a] = b;
        bins.bin_start[b + 1]++;
    }
    for (int b = 0; b < total; ++b) bins.bin_start[b + 1] += bins.bin_start[b];
    bins.sorted_atom.resize(n);
    bins.sorted_pos.resize(3 * n);
    std::vector<int32_t> fill(bins.bin_start.begin(), bins.bin_start.end() - 1);
    for (int64_t a = 0; a < n; ++a) {
        int32_t slot = fill[bins.atom_bin[a]]++;
        bins.sorted_atom[slot] = static_cast<int32_t>(a);
        for (int d = 0; d < 3; ++d) bins.sorted_pos[3 * slot + d] = bins.wrapped[3 * a + d];
    }
    return bins;
}

NeighborList neighbor_list(const double* positions, int64_t n_atoms, const double* cell_rows,
                           const bool* pbc, const NeighborOptions& options) {
    const double cutoff = options.cutoff;
    CellFrame frame = make_frame(cell_rows, pbc);
    CellBins bins = make_bins(positions, n_atoms, frame, cutoff, options.bins_per_cutoff);
    NeighborList out;
    if (n_atoms == 0 || cutoff == 0.0) return out;

    // Refuse requests that would need absurd memory or time (e.g. a 1000 Å cutoff in a
    // 3 Å cell) instead of exhausting memory: estimate candidate tests and pairs found.
    {
        double visited = 1.0, searched_volume = 1.0;
        for (int d = 0; d < 3; ++d) {
            visited *= 2.0 * bins.search[d] + 1.0;
            double height = (bins.frame.pbc[d] ? frame.heights[d] / bins.n_bins[d] : 0.0);
            double span = (2.0 * bins.search[d] + 1.0) * height;
            searched_volume *= (span > 0.0 ? std::max(span, 2.0 * cutoff) : 2.0 * cutoff);
        }
        double per_bin = static_cast<double>(n_atoms) / bins.total_bins();
        double candidates = static_cast<double>(n_atoms) * per_bin * visited;
        double sphere = 4.0 / 3.0 * M_PI * cutoff * cutoff * cutoff;
        double pairs = candidates * std::min(1.0, sphere / searched_volume);
        if (candidates > 1.0e11 || pairs > 1.0e9)
            throw std::invalid_argument("cutoff " + std::to_string(cutoff) + " Å would give about " +
                                        std::to_string(pairs) + " pairs (" + std::to_string(candidates) +
                                        " distance tests) for this cell; reduce the cutoff or check the cell");
    }

    const double cut2 = cutoff * cutoff;
    const auto nb = bins.n_bins;
    const auto sr = bins.search;
    const int n_threads = max_threads();
    std::vector<NeighborList> partial(n_threads);

#ifdef CRYSPEXT_OPENMP
#pragma omp parallel num_threads(n_threads)
#endif
    {
        const int t = thread_id();
        NeighborList& local = partial[t];
        // Contiguous, static chunks of atoms per thread: concatenating thread buffers in
        // order gives a list sorted by i, independent of the thread count.
        const int64_t chunk = (n_atoms + n_threads - 1) / n_threads;
        const int64_t a_begin = std::min<int64_t>(n_atoms, t * chunk);
        const int64_t a_end = std::min<int64_t>(n_atoms, a_begin + chunk);
        for (int64_t a = a_begin; a < a_end; ++a) {
            const int home = bins.atom_bin[a];
            const int h0 = home / (nb[1] * nb[2]);
            const int h1 = (home / nb[2]) % nb[1];
            const int h2 = home % nb[2];
            const double ri0 = bins.wrapped[3 * a], ri1 = bins.wrapped[3 * a + 1], ri2 = bins.wrapped[3 * a + 2];
            const int32_t* ki = &bins.image[3 * a];
            for (int o0 = -sr[0]; o0 <= sr[0]; ++o0) {
                int c0 = h0 + o0;
                if (!frame.pbc[0] && (c0 < 0 || c0 >= nb[0])) continue;
                int s0 = frame.pbc[0] ? floordiv(c0, nb[0]) : 0;
                c0 -= s0 * nb[0];
                for (int o1 = -sr[1]; o1 <= sr[1]; ++o1) {
                    int c1 = h1 + o1;
                    if (!frame.pbc[1] && (c1 < 0 || c1 >= nb[1])) continue;
                    int s1 = frame.pbc[1] ? floordiv(c1, nb[1]) : 0;
                    c1 -= s1 * nb[1];
                    for (int o2 = -sr[2]; o2 <= sr[2]; ++o2) {
                        int c2 = h2 + o2;
                        if (!frame.pbc[2] && (c2 < 0 || c2 >= nb[2])) continue;
                        int s2 = frame.pbc[2] ? floordiv(c2, nb[2]) : 0;
                        c2 -= s2 * nb[2];
                        const int cb = (c0 * nb[1] + c1) * nb[2] + c2;
                        // Cartesian offset of this periodic image, relative to atom a.
                        const double sx = s0 * frame.cell(0, 0) + s1 * frame.cell(1, 0) + s2 * frame.cell(2, 0) - ri0;
                        const double sy = s0 * frame.cell(0, 1) + s1 * frame.cell(1, 1) + s2 * frame.cell(2, 1) - ri1;
                        const double sz = s0 * frame.cell(0, 2) + s1 * frame.cell(1, 2) + s2 * frame.cell(2, 2) - ri2;
                        for (int32_t slot = bins.bin_start[cb]; slot < bins.bin_start[cb + 1]; ++slot) {
                            const double dx = bins.sorted_pos[3 * slot] + sx;
                            const double dy = bins.sorted_pos[3 * slot + 1] + sy;
                            const double dz = bins.sorted_pos[3 * slot + 2] + sz;
                            const double r2 = dx * dx + dy * dy + dz * dz;
                            if (r2 >= cut2) continue;
                            const int32_t b = bins.sorted_atom[slot];
                            const int32_t* kj = &bins.image[3 * b];
                            // Shift with respect to the unwrapped input positions.
                            const int32_t S0 = s0 + ki[0] - kj[0];
                            const int32_t S1 = s1 + ki[1] - kj[1];
                            const int32_t S2 = s2 + ki[2] - kj[2];
                            if (b == a && S0 == 0 && S1 == 0 && S2 == 0) continue;
                            if (options.half) {
                                if (b < a) continue;
                                if (b == a) {
                                    // keep the image with lexicographically positive shift
                                    if (S0 < 0 || (S0 == 0 && (S1 < 0 || (S1 == 0 && S2 < 0)))) continue;
                                }
                            }
                            local.i.push_back(static_cast<int32_t>(a));
                            local.j.push_back(b);
                            local.shifts.push_back(S0);
                            local.shifts.push_back(S1);
                            local.shifts.push_back(S2);
                            local.distances.push_back(std::sqrt(r2));
                            if (options.want_vectors) {
                                local.vectors.push_back(dx);
                                local.vectors.push_back(dy);
                                local.vectors.push_back(dz);
                            }
                        }
                    }
                }
            }
        }
    }

    if (n_threads == 1) return std::move(partial[0]);
    size_t total = 0;
    for (auto& p : partial) total += p.i.size();
    out.i.reserve(total);
    out.j.reserve(total);
    out.shifts.reserve(3 * total);
    out.distances.reserve(total);
    if (options.want_vectors) out.vectors.reserve(3 * total);
    for (auto& p : partial) {
        out.i.insert(out.i.end(), p.i.begin(), p.i.end());
        out.j.insert(out.j.end(), p.j.begin(), p.j.end());
        out.shifts.insert(out.shifts.end(), p.shifts.begin(), p.shifts.end());
        out.distances.insert(out.distances.end(), p.distances.begin(), p.distances.end());
        out.vectors.insert(out.vectors.end(), p.vectors.begin(), p.vectors.end());
        p = NeighborList();  // free as we go to keep the peak memory low
    }
    return out;
}

}  // namespace cryspext
