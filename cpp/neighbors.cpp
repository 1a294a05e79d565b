#include "neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

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
        // In double first: a tiny (but non-zero) extent would overflow an int. Zero extent
        // (all atoms in one plane along an open direction) searches only that bin.
        double range = bin_height[d] > 0.0 ? std::ceil(cutoff / bin_height[d]) : 0.0;
        if (!frame.pbc[d]) range = std::min(range, static_cast<double>(bins.n_bins[d] - 1));
        // A periodic range this large is refused by the pair estimate in neighbor_list.
        bins.search[d] = static_cast<int>(std::min(range, 1.0e6));
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

void build_stencil(const CellBins& bins, int home, std::vector<Stencil>& stencil) {
    const CellFrame& frame = bins.frame;
    const auto nb = bins.n_bins;
    const auto sr = bins.search;
    stencil.clear();
    const int h[3] = {home / (nb[1] * nb[2]), (home / nb[2]) % nb[1], home % nb[2]};
    int c[3], sh[3];
    for (int o0 = -sr[0]; o0 <= sr[0]; ++o0) {
        c[0] = h[0] + o0;
        if (!frame.pbc[0] && (c[0] < 0 || c[0] >= nb[0])) continue;
        sh[0] = frame.pbc[0] ? floordiv(c[0], nb[0]) : 0;
        c[0] -= sh[0] * nb[0];
        for (int o1 = -sr[1]; o1 <= sr[1]; ++o1) {
            c[1] = h[1] + o1;
            if (!frame.pbc[1] && (c[1] < 0 || c[1] >= nb[1])) continue;
            sh[1] = frame.pbc[1] ? floordiv(c[1], nb[1]) : 0;
            c[1] -= sh[1] * nb[1];
            for (int o2 = -sr[2]; o2 <= sr[2]; ++o2) {
                c[2] = h[2] + o2;
                if (!frame.pbc[2] && (c[2] < 0 || c[2] >= nb[2])) continue;
                sh[2] = frame.pbc[2] ? floordiv(c[2], nb[2]) : 0;
                c[2] -= sh[2] * nb[2];
                Stencil st;
                st.bin = (c[0] * nb[1] + c[1]) * nb[2] + c[2];
                if (bins.bin_start[st.bin] == bins.bin_start[st.bin + 1]) continue;
                for (int d = 0; d < 3; ++d) {
                    st.s[d] = sh[d];
                    st.offset[d] = sh[0] * frame.cell(0, d) + sh[1] * frame.cell(1, d) + sh[2] * frame.cell(2, d);
                }
                stencil.push_back(st);
            }
        }
    }
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
    const int total_bins = bins.total_bins();

    // Two passes over the same loops: count pairs per atom, then write each atom's pairs at
    // its offset. Output is sorted by i whatever the thread count, and memory is exactly the
    // output (no per-thread buffers to merge).
    std::vector<int64_t> per_atom(n_atoms + 1, 0);
    auto sweep = [&](auto write_tag) {
        constexpr bool WRITE = decltype(write_tag)::value;
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel
#endif
        {
            std::vector<Stencil> stencil;
#ifdef CRYSPEXT_OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
            for (int home = 0; home < total_bins; ++home) {
                if (bins.bin_start[home] == bins.bin_start[home + 1]) continue;
                build_stencil(bins, home, stencil);
                for (int32_t slot_i = bins.bin_start[home]; slot_i < bins.bin_start[home + 1]; ++slot_i) {
                    const int32_t a = bins.sorted_atom[slot_i];
                    const double ri0 = bins.sorted_pos[3 * slot_i], ri1 = bins.sorted_pos[3 * slot_i + 1],
                                 ri2 = bins.sorted_pos[3 * slot_i + 2];
                    const int32_t* ki = &bins.image[3 * a];
                    int64_t cursor = WRITE ? per_atom[a] : 0;
                    int64_t found = 0;
                    if constexpr (!WRITE) {
                        if (!options.half) {
                            // Full list: count branch-free (vectorisable); the only pair to drop
                            // is the atom itself at zero shift, whose r² is exactly 0.
                            int64_t inside = 0;
                            for (const Stencil& st : stencil) {
                                const double sx = st.offset[0] - ri0, sy = st.offset[1] - ri1, sz = st.offset[2] - ri2;
                                const double* p = bins.sorted_pos.data();
                                const int32_t end = bins.bin_start[st.bin + 1];
                                for (int32_t slot = bins.bin_start[st.bin]; slot < end; ++slot) {
                                    const double dx = p[3 * slot] + sx, dy = p[3 * slot + 1] + sy, dz = p[3 * slot + 2] + sz;
                                    inside += (dx * dx + dy * dy + dz * dz < cut2);
                                }
                            }
                            per_atom[a + 1] = inside - 1;
                            continue;
                        }
                    }
                    visit_stencil(bins, stencil, a, &bins.sorted_pos[3 * slot_i], cut2,
                                  [&](int32_t b, double dx, double dy, double dz, double r2, int s0, int s1, int s2) {
                        if (options.half && b < a) return;
                        const int32_t* kj = &bins.image[3 * b];
                        // Shift with respect to the unwrapped input positions.
                        const int32_t S0 = s0 + ki[0] - kj[0];
                        const int32_t S1 = s1 + ki[1] - kj[1];
                        const int32_t S2 = s2 + ki[2] - kj[2];
                        // half list, an atom and its own image: keep the lexicographically positive shift
                        if (options.half && b == a && (S0 < 0 || (S0 == 0 && (S1 < 0 || (S1 == 0 && S2 < 0))))) return;
                        if constexpr (WRITE) {
                            if (cursor == per_atom[a + 1]) return;  // never past the counted slots
                            out.i[cursor] = a;
                            out.j[cursor] = b;
                            out.shifts[3 * cursor] = S0;
                            out.shifts[3 * cursor + 1] = S1;
                            out.shifts[3 * cursor + 2] = S2;
                            out.distances[cursor] = std::sqrt(r2);
                            if (options.want_vectors) {
                                out.vectors[3 * cursor] = dx;
                                out.vectors[3 * cursor + 1] = dy;
                                out.vectors[3 * cursor + 2] = dz;
                            }
                            ++cursor;
                        } else {
                            ++found;
                        }
                    });
                    if constexpr (!WRITE) per_atom[a + 1] = found;
                }
            }
        }
    };
    sweep(std::false_type{});
    for (int64_t a = 0; a < n_atoms; ++a) per_atom[a + 1] += per_atom[a];
    const int64_t total = per_atom[n_atoms];
    out.i.resize(total);
    out.j.resize(total);
    out.shifts.resize(3 * total);
    out.distances.resize(total);
    if (options.want_vectors) out.vectors.resize(3 * total);
    sweep(std::true_type{});
    return out;
}

}  // namespace cryspext
