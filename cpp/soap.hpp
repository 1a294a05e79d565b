// SOAP power spectrum reproducing quippy's `soap` descriptor (equispaced Gaussian radial basis,
// the default of quippy for GAP xml_version < 1987654320) and ARISE's species-pair construction
// (Leitherer thesis 4.3.1-4.3.2): per substructure (alpha, beta) the structure is scaled by the
// nearest-neighbour distance d_NN(alpha, beta), quippy's averaged SOAP with centres alpha and
// neighbours beta is computed, and the S^2 normalised vectors are averaged.
//
// Units: SoapSettings lengths are in the units of the coordinates that reach the SOAP kernel,
// i.e. in units of d_NN when ARISE scaling is on, in Å otherwise.
//
// Output layout (as quippy): for a in [0, n_max), b in [0, a], l in [0, l_max]:
//   p[a,b,l] = sum_m c[a,l,m] c[b,l,m] / sqrt(2l+1) * (a != b ? sqrt(2) : 1),
// then one trailing 0 (quippy's covariance_sigma0 slot); the vector is normalised to 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace cryspext {

struct SoapSettings {
    double cutoff = 4.0;           // r_cut
    double transition = 0.5;       // quippy cutoff_transition_width: cosine taper over [r_cut - w, r_cut]
    double sigma = 0.1;            // atom_sigma, Gaussian width
    int n_max = 9;
    int l_max = 6;
    double central_weight = 0.0;   // weight of the centre's own Gaussian
    double basis_error_exponent = 10.0;
};

// Number of values of the (normalised) power spectrum including quippy's trailing zero.
int soap_dimension(int n_max, int l_max);

class SoapBasis {
public:
    explicit SoapBasis(const SoapSettings& settings);  // throws std::invalid_argument
    const SoapSettings& settings() const { return s_; }
    // Instruction set of the block kernel chosen at run time: "avx512", "avx2" or "generic".
    const char* isa() const { return use_avx512_ ? "avx512" : (use_avx2_ ? "avx2" : "generic"); }
    int dim() const { return dim_; }
    int n_lm() const { return (s_.l_max + 1) * (s_.l_max + 1); }
    int stride() const { return s_.n_max; }
    // Accumulators hold kLanes partial sums per coefficient: acc[(lm * n_max + a) * kLanes + lane].
    static constexpr int kLanes = 4;
    int acc_size() const { return n_lm() * stride() * kLanes; }
    const std::vector<double>& r_basis() const { return r_basis_; }
    const std::vector<double>& transform() const { return transform_; }  // row-major (a, b)

    // Adds the density of one neighbour at vector d (length r < cutoff) to coefficient (lm, a) of acc
    // (coefficients before the radial transform). `parity`: +1 adds d, -1 adds -d, 2 adds both
    // d and -d (an unordered pair seen from both ends: odd l cancel, even l double), 3 adds d to
    // acc and -d to acc2 (the pair seen from both ends by two substructures with equal scaling).
    void add_neighbor(const double d[3], double r, int parity, double* acc, double* work, double* acc2 = nullptr) const;
    int work_size() const { return (s_.l_max + 1) * stride() + n_lm() + 2 * (s_.l_max + 1) + s_.n_max; }

    // Neighbours collected in blocks and evaluated by a kernel vectorised across the block
    // (same sums as add_neighbor up to rounding). Neighbours are bucketed by their nearest radial
    // centre a0, so that a block only evaluates the window of centres [a0 - K, a0 + K] whose
    // Gaussians are not negligible (below exp(-60) of the peak, as add_neighbor drops them):
    // 5 of 9 centres for ARISE's settings. A target (mode, accumulators) owns n_buckets() Blocks.
    static constexpr int kBlock = 32;
    struct Block {
        int count = 0;
        alignas(64) double x[kBlock], y[kBlock], z[kBlock], r[kBlock], w[kBlock];
    };
    int n_buckets() const { return s_.n_max; }
    // Queues one neighbour (mode as add_neighbor's parity) into its bucket of `buckets`
    // (n_buckets() Blocks); evaluates the bucket when full. Inline: it runs once per pair.
    void block_add(Block* buckets, const double d[3], double r, int mode, double* acc, double* acc2, double* work) const {
        if (fast_ok_ && r > 0.0) {
            if (r >= s_.cutoff) return;
            const int a0 = std::min(static_cast<int>(r * inv_spacing_ + 0.5), s_.n_max - 1);
            queue(buckets, a0, d, r, mode, acc, acc2, work);
            return;
        }
        block_add_slow(buckets, d, r, mode, acc, acc2, work);
    }
    // Evaluates what is left in every bucket.
    void block_flush(Block* buckets, int mode, double* acc, double* acc2, double* work) const;
    int block_work_size() const { return (2 * s_.n_max + (s_.l_max + 1) * s_.n_max + n_lm() + 3 * (s_.l_max + 1) + 12) * kBlock + work_size(); }

    // Power spectrum of accumulated coefficients; `central` is the summed central weight
    // (number of centres x central_weight). Returns false (and fills NaN) when the norm is 0.
    bool power_spectrum(const double* acc, double central, double* out, double* work) const;
    int ps_work_size() const { return n_lm() * s_.n_max; }

private:
    template <int LT>
    void add_neighbor_body(const double d[3], double r, int parity, double* acc, double* work, double* acc2) const;
    void flush_bucket(Block& block, int a0, int mode, double* acc, double* acc2, double* work) const;
    void block_add_slow(Block* buckets, const double d[3], double r, int mode, double* acc, double* acc2,
                        double* work) const;
    void queue(Block* buckets, int a0, const double d[3], double r, int mode, double* acc, double* acc2,
               double* work) const {
        // The cutoff taper and the mode's weight are applied when the block is evaluated.
        Block& b = buckets[a0];
        const int k = b.count++;
        b.x[k] = d[0];
        b.y[k] = d[1];
        b.z[k] = d[2];
        b.r[k] = r;
        if (b.count == kBlock) flush_bucket(b, a0, mode, acc, acc2, work);
    }
    template <int WT, int MT>
    void accumulate(const double* rad, const double* ylm, int lo, int mode, double* acc, double* acc2,
                    int w_runtime = 0) const;
    template <int Variant>
    void block_kernel(const Block& block, int lo, int hi, int mode, double* acc, double* acc2, double* work) const;
    void block_kernel_avx2(const Block& block, int lo, int hi, int mode, double* acc, double* acc2, double* work) const;
    void block_kernel_avx512(const Block& block, int lo, int hi, int mode, double* acc, double* acc2, double* work) const;
    bool batch_ok_ = false;    // the block kernel's ratio recurrence cannot overflow for these settings
    bool fast_ok_ = false;     // every 0 < r < cutoff can take the block kernel
    bool use_avx2_ = false;
    bool use_avx512_ = false;
    SoapSettings s_;
    int dim_;
    double alpha_;
    std::vector<double> r_basis_;
    std::vector<double> transform_;   // n x n
    double central_coefficient_;      // cholesky(0, 0) * Y00
    std::vector<double> ylm_norm_;    // per (l, m>=0)
    std::vector<double> inv_sqrt_2l1_;
    double spacing_ = 0.0, q_step_ = 0.0, gauss_step_ = 0.0;
    double inv_spacing_ = 0.0;
    int window_ = 0;                  // K: half width of a bucket's window of radial centres
    std::vector<double> inv_index_;  // 1 / a
    std::vector<double> qmm_, ylm_a_, ylm_b_;  // spherical-harmonic recurrence coefficients
};

// ARISE's nearest-neighbour distance from per-atom nearest distances: histogram with `bins` equal
// bins over [min, max] (numpy.histogram semantics, bit for bit), counts divided by the squared
// left edge, centre of the fullest bin. Exactly equal values: numpy's range [x - 0.5, x + 0.5]
// (ARISE gives x +- 0.005 there). A spread of a few ulps, where numpy raises "Too many bins":
// min. kDegenerateRobust also treats spreads <= rtol * min as exactly equal (rotation- and
// supercell-stable, unlike ARISE). Returns NaN for an empty list.
constexpr int kDegenerateArise = 0;
constexpr int kDegenerateRobust = 1;
double arise_histogram_distance(std::vector<double> distances, int bins, int rule, double rtol);

struct AriseOptions {
    SoapSettings soap;
    bool scale = true;             // lengths in units of d_NN(alpha, beta)
    int bins = 100;
    double rtol = 1e-9;            // "equal up to rounding" for the histogram
    int degenerate = kDegenerateArise;
    bool fma_norm = false;         // evaluate |x|^2 with fused multiply-adds (BLAS ddot style)
    double nn_search_max = 20.2;   // Å, largest radius searched for a nearest neighbour (ARISE: 2 x 10 + skin)
};

struct AriseResult {
    std::vector<double> vector;    // dim values (NaN when undefined)
    std::vector<int32_t> species;  // sorted atomic numbers
    std::vector<double> dnn;       // S x S, d_NN(alpha, beta) (Å), NaN when undefined
    bool ok = false;
    std::string error;
};

// One structure: positions (n, 3) Å, numbers (n), cell rows, pbc.
AriseResult arise_soap(const double* positions, const int32_t* numbers, int64_t n, const double* cell_rows,
                       const bool* pbc, const AriseOptions& options);

// Per-atom nearest distances to atoms of `neighbor_species` (any species when 0) for atoms of
// `center_species` (all when 0). Atoms without such a neighbour within `max_radius` get NaN.
std::vector<double> nearest_distances(const double* positions, const int32_t* numbers, int64_t n,
                                      const double* cell_rows, const bool* pbc, int32_t center_species,
                                      int32_t neighbor_species, double max_radius);

// quippy average=F with all species as one (Z=0, species_Z=0): one row per atom, lengths
// divided by `scale` (> 0), written to out (n x dim, row-major; rows without neighbours NaN).
void soap_per_atom(const double* positions, int64_t n, const double* cell_rows, const bool* pbc,
                   const SoapSettings& settings, double scale, double* out);

}  // namespace cryspext
