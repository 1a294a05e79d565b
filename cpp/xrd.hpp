// Ideal powder-diffraction δ-profiles (AIST SpgVolNet seed, section 2.5).
//
// For every reciprocal-lattice vector g = h a* + k b* + l c* with 1/d = |g| inside
// [inv_d_min, inv_d_max] (Å⁻¹) the structure factor
//     F(hkl) = Σ_j g_j f_j(s) exp(-B_j s²) exp(2πi (h u_j + k v_j + l w_j)),  s = |g| / 2 = sinθ/λ,
// is computed (g_j: occupancy, f_j: atomic form factor, B_j: isotropic Debye–Waller in Å²) and
// |F|² is accumulated on the nearest point of a uniform 1/d grid. Multiplicity, extinctions
// and accidental overlaps come out of the enumeration itself. Friedel mates (hkl, -h-k-l) have
// equal |F|² (no anomalous scattering), so only one of each pair is computed and counted twice.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace cryspext {

// Atomic form-factor table indexed by atomic number Z = 0..118.
// Row Z holds a1..a4, b1..b4, c. Rows of NaN mean "no coefficients for this element".
//   kind 0 (Cromer–Mann form):   f(s) = Σ a_i exp(-b_i s²) + c
//   kind 1 (pymatgen's form, Mott–Bethe from electron factors): f(s) = Z - 41.78214 s² Σ a_i exp(-b_i s²)
struct FormFactorTable {
    static constexpr int kRows = 119;
    std::vector<std::array<double, 9>> rows = std::vector<std::array<double, 9>>(kRows);
    int kind = 0;
    double evaluate(int z, double s) const;
    bool has(int z) const;
};

// One structure: fractional coordinates (n, 3), cell rows (Å), atomic numbers, occupancies,
// Debye–Waller B per atom (Å²).
struct XrdInput {
    std::vector<double> frac;
    std::array<double, 9> cell{};
    std::vector<int32_t> numbers;
    std::vector<double> occupancy;
    std::vector<double> b_factor;
};

struct XrdGrid {
    double inv_d_min = 0.1131;  // Å⁻¹
    double inv_d_max = 1.0625;  // Å⁻¹
    int64_t n_bins = 10001;
    double bin_width() const { return (inv_d_max - inv_d_min) / static_cast<double>(n_bins - 1); }
};

// Reflections of one structure, one entry per Friedel pair (intensity counted twice).
struct Reflections {
    std::vector<int32_t> hkl;        // 3 per reflection
    std::vector<double> inv_d;       // |g|, Å⁻¹
    std::vector<double> intensity;   // 2 |F|² (electrons²)
};

// Throws std::invalid_argument on malformed input or elements missing from the table.
void validate_input(const XrdInput& in, const FormFactorTable& table);

Reflections xrd_reflections(const XrdInput& in, const FormFactorTable& table, double inv_d_min,
                            double inv_d_max);

// Accumulates |F|² on the grid into out[n_bins]; normalises to max 1 when asked (an empty
// profile stays all zeros).
void xrd_profile(const XrdInput& in, const FormFactorTable& table, const XrdGrid& grid, bool normalize,
                 float* out);

// Many structures in parallel (OpenMP over structures): out is (n_structures, n_bins), row major.
void xrd_profiles(const std::vector<XrdInput>& inputs, const FormFactorTable& table, const XrdGrid& grid,
                  bool normalize, float* out);

}  // namespace cryspext
