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

NeighborList neighbor_list(const double* positions, int64_t n_atoms, const double* cell_rows,
                           const bool* pbc, const NeighborOptions& options);

}  // namespace cryspext
