// Cell geometry shared by the neighbour list, box extraction and descriptors.
//
// Conventions: cell vectors are rows (Å), fractional coordinates f satisfy
// r = f * cell. Non-periodic directions may have any (even zero) cell vector:
// they are replaced by unit vectors orthogonal to the periodic ones, so that
// the frame is always invertible and shifts along them are always zero.
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cstdint>

namespace cryspext {

using Mat3 = Eigen::Matrix<double, 3, 3, Eigen::RowMajor>;
using Vec3 = Eigen::Vector3d;

struct CellFrame {
    Mat3 cell;                     // rows: basis vectors (non-periodic rows completed)
    Mat3 inverse;                  // cell^-1, so that f = r * inverse
    std::array<bool, 3> pbc;
    std::array<double, 3> heights; // distance between opposite faces along each basis vector (Å)
};

// Builds the frame; throws std::invalid_argument when the periodic vectors are
// not linearly independent (singular cell with pbc) or not finite.
CellFrame make_frame(const double* cell_rows, const bool* pbc);

}  // namespace cryspext
