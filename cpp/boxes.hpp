// Strided box extraction: the geometric half of strided pattern matching (ARISE thesis 6.1).
//
// Axis-aligned cubic boxes of edge L (Å) are centred on a regular grid with stride s (Å).
// Box b = (kz * ny + ky) * nx + kx (array order z, y, x as in ARISE) holds the atoms with
// c - L/2 <= r <= c + L/2 along every axis. Membership is returned in CSR form.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace cryspext {

struct BoxOptions {
    double box = 16.0;        // edge L, Å
    double stride = 2.0;      // s, Å
    int slab_axis = -1;       // 0/1/2: a single layer of boxes along this axis; -1: none
    bool periodic = false;    // wrap boxes across periodic, axis-aligned cell faces
};

struct BoxGrid {
    std::array<int64_t, 3> shape{0, 0, 0};  // (nz, ny, nx)
    std::array<std::vector<double>, 3> axis_centres;  // per Cartesian axis x, y, z (Å)
    std::array<double, 3> stride{0, 0, 0};  // effective stride per Cartesian axis (Å)
    std::vector<int64_t> offsets;           // n_boxes + 1
    std::vector<int32_t> indices;           // atom indices, sorted within each box
    std::vector<int32_t> shifts;            // 3 per member (only with periodic wrapping)
    std::vector<int64_t> counts;            // atoms per box
};

// positions: (n, 3) Å; cell rows (3, 3) Å; pbc[3]. Throws std::invalid_argument on bad input.
BoxGrid extract_boxes(const double* positions, int64_t n_atoms, const double* cell_rows, const bool* pbc,
                      const BoxOptions& options);

}  // namespace cryspext
