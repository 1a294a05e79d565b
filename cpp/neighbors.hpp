// Neighbour lists with a cell-list (linked-bin) algorithm, O(N) in the number of atoms.
//
// Semantics follow ase.neighborlist.neighbor_list("ijSd"): every pair (i, j, S) with
// |r_j + S·cell − r_i| < cutoff, excluding i == j with S == 0. Shifts S refer to the
// positions as given (not wrapped). Triclinic cells, mixed periodicity and cutoffs
// larger than the cell (many periodic images) are all handled.
#pragma once

#include <cstdint>
#include <vector>

#include "cell.hpp"
#include "uninit.hpp"

namespace cryspext {

struct NeighborList {
    // Uninitialised on resize: every slot is written by the second pass.
    uvector<int32_t> i, j;
    uvector<int32_t> shifts;         // 3 per pair
    uvector<double> distances;       // Å
    uvector<double> vectors;         // 3 per pair (only when requested), Å
};

struct NeighborOptions {
    double cutoff = 0.0;             // Å
    bool half = false;               // each unordered pair once (i < j, or i == j with S > 0)
    bool want_vectors = false;
    double bins_per_cutoff = 1.0;    // >1: finer bins, fewer distance tests, more bin visits
};

// Atoms sorted into bins of the (completed) cell frame. Periodic coordinates are wrapped
// into [0, 1); `image[3*a+d]` is the integer image the original atom a was moved from.
struct CellBins {
    CellFrame frame;
    std::array<int, 3> n_bins{1, 1, 1};
    std::array<int, 3> search{0, 0, 0};       // neighbour-bin range per direction
    std::array<double, 3> open_min{0, 0, 0};  // fractional origin along open directions
    std::vector<int32_t> bin_start;           // size n_bins_total + 1
    std::vector<int32_t> sorted_atom;         // atom index in bin order
    std::vector<double> sorted_pos;           // wrapped Cartesian positions in bin order (3 per atom)
    std::vector<double> wrapped;              // wrapped Cartesian positions, original order
    std::vector<int32_t> image;               // 3 per atom
    std::vector<int32_t> atom_bin;            // bin of each atom (original order)

    int total_bins() const { return n_bins[0] * n_bins[1] * n_bins[2]; }
};

// Throws std::invalid_argument for a non-finite position, non-finite or negative cutoff.
CellBins make_bins(const double* positions, int64_t n_atoms, const CellFrame& frame, double cutoff,
                   double bins_per_cutoff = 1.0);

// A non-empty neighbour bin of a home bin, with the integer image shift `s` (wrapped frame)
// and its Cartesian offset s·cell (Å).
struct Stencil {
    int bin;
    int32_t s[3];
    double offset[3];
};

// Fills `stencil` with the non-empty bins within the search range of bin `home`.
void build_stencil(const CellBins& bins, int home, std::vector<Stencil>& stencil);

// Calls visit(b, dx, dy, dz, r2, s0, s1, s2) for every atom b in the bins of `stencil` (built
// for the bin of atom a, whose wrapped position is ri) with r2 = |r_b + s·cell − r_a|² < cut2,
// except a itself at zero shift. The one distance loop of the cell list.
template <typename F>
inline void visit_stencil(const CellBins& bins, const std::vector<Stencil>& stencil, int32_t a, const double* ri,
                          double cut2, F&& visit) {
    for (const Stencil& st : stencil) {
        const double ox = st.offset[0] - ri[0], oy = st.offset[1] - ri[1], oz = st.offset[2] - ri[2];
        const bool zero_shift = (st.s[0] == 0 && st.s[1] == 0 && st.s[2] == 0);
        const int32_t end = bins.bin_start[st.bin + 1];
        for (int32_t slot = bins.bin_start[st.bin]; slot < end; ++slot) {
            const double dx = bins.sorted_pos[3 * slot] + ox;
            const double dy = bins.sorted_pos[3 * slot + 1] + oy;
            const double dz = bins.sorted_pos[3 * slot + 2] + oz;
            const double r2 = dx * dx + dy * dy + dz * dz;
            if (r2 >= cut2) continue;
            const int32_t b = bins.sorted_atom[slot];
            if (b == a && zero_shift) continue;
            visit(b, dx, dy, dz, r2, st.s[0], st.s[1], st.s[2]);
        }
    }
}

// Calls visit(b, dx, dy, dz, r2, s0, s1, s2) for every atom b (any periodic image, shift s in
// the wrapped frame) with r2 = |r_b + s·cell − r_a|² < cutoff², except a itself at zero shift.
// `cutoff` must not exceed the one `bins` was built for.
template <typename F>
void for_each_neighbor(const CellBins& bins, int32_t a, double cutoff, F&& visit) {
    thread_local std::vector<Stencil> stencil;
    build_stencil(bins, bins.atom_bin[a], stencil);
    visit_stencil(bins, stencil, a, &bins.wrapped[3 * a], cutoff * cutoff, visit);
}

NeighborList neighbor_list(const double* positions, int64_t n_atoms, const double* cell_rows,
                           const bool* pbc, const NeighborOptions& options);

}  // namespace cryspext
