#include "cell.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace cryspext {

CellFrame make_frame(const double* cell_rows, const bool* pbc) {
    CellFrame frame;
    for (int d = 0; d < 3; ++d) {
        frame.pbc[d] = pbc[d];
        for (int k = 0; k < 3; ++k) frame.cell(d, k) = cell_rows[3 * d + k];
    }
    std::vector<int> periodic, open;
    for (int d = 0; d < 3; ++d) (pbc[d] ? periodic : open).push_back(d);
    for (int d : periodic) {
        Vec3 v = frame.cell.row(d).transpose();
        if (!v.allFinite()) throw std::invalid_argument("cell vector " + std::to_string(d) + " is not finite");
    }

    // Relative tolerance for linear dependence of the periodic vectors.
    const double eps = 1e-10;
    if (periodic.size() == 3) {
        Vec3 a = frame.cell.row(0), b = frame.cell.row(1), c = frame.cell.row(2);
        double scale = a.norm() * b.norm() * c.norm();
        if (!(std::abs(a.dot(b.cross(c))) > eps * scale))
            throw std::invalid_argument("cell is singular (zero volume) but all directions are periodic");
    } else if (periodic.size() == 2) {
        Vec3 a = frame.cell.row(periodic[0]), b = frame.cell.row(periodic[1]);
        Vec3 n = a.cross(b);
        if (!(n.norm() > eps * a.norm() * b.norm()) || a.norm() == 0.0)
            throw std::invalid_argument("the two periodic cell vectors are parallel or zero");
        frame.cell.row(open[0]) = n.normalized().transpose();
    } else if (periodic.size() == 1) {
        Vec3 a = frame.cell.row(periodic[0]);
        if (!(a.norm() > 0.0)) throw std::invalid_argument("the periodic cell vector is zero");
        Vec3 ah = a.normalized();
        // Pick the Cartesian axis least aligned with a to build an orthonormal complement.
        int axis = 0;
        for (int k = 1; k < 3; ++k)
            if (std::abs(ah[k]) < std::abs(ah[axis])) axis = k;
        Vec3 e = Vec3::Zero();
        e[axis] = 1.0;
        Vec3 u = (e - e.dot(ah) * ah).normalized();
        Vec3 w = ah.cross(u);
        frame.cell.row(open[0]) = u.transpose();
        frame.cell.row(open[1]) = w.transpose();
    } else {
        frame.cell.setIdentity();
    }

    frame.inverse = frame.cell.inverse();
    double volume = std::abs(frame.cell.determinant());
    for (int d = 0; d < 3; ++d) {
        Vec3 b = frame.cell.row((d + 1) % 3), c = frame.cell.row((d + 2) % 3);
        frame.heights[d] = volume / b.cross(c).norm();
    }
    return frame;
}

}  // namespace cryspext
