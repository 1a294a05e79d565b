#include "soap.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "cell.hpp"
#include "neighbors.hpp"
#include "parallel.hpp"

namespace cryspext {

namespace {

constexpr double kPi = 3.14159265358979323846;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
// Radial Gaussians below exp(-60) of the neighbour's peak value are dropped (< 1e-26).
const double kTailFactor = std::exp(-60.0);

// quippy's coordination_function: 1 below r_cut - w, cosine taper to 0 at r_cut.
inline double cutoff_function(double r, double rc, double w) {
    if (r > rc) return 0.0;
    if (r > rc - w) return 0.5 * (std::cos(kPi * (r - rc + w) / w) + 1.0);
    return 1.0;
}

double factorial(int k) {
    double f = 1.0;
    for (int i = 2; i <= k; ++i) f *= i;
    return f;
}

}  // namespace

int soap_dimension(int n_max, int l_max) { return n_max * (n_max + 1) / 2 * (l_max + 1) + 1; }

SoapBasis::SoapBasis(const SoapSettings& settings) : s_(settings) {
    if (!(s_.cutoff > 0.0) || !std::isfinite(s_.cutoff)) throw std::invalid_argument("SOAP cutoff must be a positive number");
    if (!(s_.sigma > 0.0) || !std::isfinite(s_.sigma)) throw std::invalid_argument("SOAP sigma must be a positive number");
    if (!(s_.transition >= 0.0) || s_.transition > s_.cutoff)
        throw std::invalid_argument("SOAP cutoff transition width must be in [0, cutoff]");
    if (s_.n_max < 1 || s_.n_max > 40) throw std::invalid_argument("SOAP n_max must be in [1, 40]");
    if (s_.l_max < 0 || s_.l_max > 20) throw std::invalid_argument("SOAP l_max must be in [0, 20]");
    if (!std::isfinite(s_.central_weight)) throw std::invalid_argument("central_weight must be finite");
    dim_ = soap_dimension(s_.n_max, s_.l_max);
    const int n = s_.n_max;
    alpha_ = 0.5 / (s_.sigma * s_.sigma);

    // Equispaced Gaussian basis on [0, cutoff + sigma * sqrt(2 E ln 10)) (quippy soap_initialise).
    const double cutoff_basis = s_.cutoff + s_.sigma * std::sqrt(2.0 * s_.basis_error_exponent * std::log(10.0));
    const double spacing = cutoff_basis / n;
    r_basis_.assign(n, 0.0);
    for (int i = 1; i < n; ++i) r_basis_[i] = r_basis_[i - 1] + spacing;

    const double a = alpha_;
    Eigen::MatrixXd cov(n, n), overlap(n, n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            const double ri = r_basis_[i], rj = r_basis_[j];
            cov(j, i) = std::exp(-a * (ri - rj) * (ri - rj));
            overlap(j, i) = (std::exp(-a * (ri * ri + rj * rj)) * std::sqrt(2.0) * std::pow(a, 1.5) * (ri + rj) +
                             a * std::exp(-0.5 * a * (ri - rj) * (ri - rj)) * std::sqrt(kPi) *
                                 (1.0 + a * (ri + rj) * (ri + rj)) * (1.0 + std::erf(std::sqrt(a / 2.0) * (ri + rj)))) /
                            std::sqrt(128.0 * std::pow(a, 5));
        }
    Eigen::LLT<Eigen::MatrixXd> llt(overlap);
    if (llt.info() != Eigen::Success) throw std::invalid_argument("SOAP radial basis overlap is not positive definite");
    Eigen::MatrixXd L = llt.matrixL();
    Eigen::LLT<Eigen::MatrixXd> cov_llt(cov);
    if (cov_llt.info() != Eigen::Success) throw std::invalid_argument("SOAP radial basis covariance is singular");
    Eigen::MatrixXd T = cov_llt.solve(L);
    transform_.resize(n * n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) transform_[i * n + j] = T(i, j);
    central_coefficient_ = L(0, 0) / std::sqrt(4.0 * kPi);

    ylm_norm_.resize((s_.l_max + 1) * (s_.l_max + 1));
    for (int l = 0; l <= s_.l_max; ++l)
        for (int m = 0; m <= l; ++m) {
            double nrm = std::sqrt((2.0 * l + 1.0) / (4.0 * kPi) * factorial(l - m) / factorial(l + m));
            if (m > 0) nrm *= std::sqrt(2.0);
            ylm_norm_[l * (s_.l_max + 1) + m] = nrm;
        }
    spacing_ = spacing;
    q_step_ = std::exp(-2.0 * alpha_ * spacing * spacing);
    gauss_step_ = std::exp(-alpha_ * spacing * spacing);
    // Window of a bucket: centres a0 +- K around the nearest centre a0 (|r - r_a0| <= h/2). A
    // centre further than D = sqrt(60 / alpha) from r has a Gaussian below exp(-60) (dropped, as
    // in add_neighbor), and every centre beyond a0 +- K is at least (K + 1/2) h > D away.
    window_ = std::min(n - 1, static_cast<int>(std::floor(std::sqrt(60.0 / alpha_) / spacing + 0.5)));
    inv_spacing_ = 1.0 / spacing;
    inv_index_.assign(n, 0.0);
    for (int i = 1; i < n; ++i) inv_index_[i] = 1.0 / i;
    // Block kernel: Gaussians by ratios from the top centre down; the largest ratio exponent is
    // alpha (2 h r_top), which must stay far from overflow.
    batch_ok_ = alpha_ * (2.0 * spacing * r_basis_[n - 1] + spacing * spacing) < 600.0 && n >= 2;
    // Every 0 < r < cutoff can take the kernel when no window's top Gaussian can underflow:
    // |r - r_top| <= max((K + 1/2) h, cutoff - r_(n-1)).
    const double far = std::max((window_ + 0.5) * spacing, s_.cutoff - r_basis_[n - 1]);
    fast_ok_ = batch_ok_ && alpha_ * far * far <= 600.0;
#if defined(__GNUC__) && defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    use_avx2_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    use_avx512_ = use_avx2_ && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512dq");
    // CRYSPEXT_SOAP_ISA=generic|avx2 caps the instruction set (benchmarks, cross-checks).
    if (const char* isa = std::getenv("CRYSPEXT_SOAP_ISA")) {
        const std::string cap(isa);
        if (cap == "generic") use_avx2_ = use_avx512_ = false;
        else if (cap == "avx2") use_avx512_ = false;
    }
#endif
    const int lp = s_.l_max + 1;
    qmm_.assign(lp, 1.0);
    for (int m = 1; m <= s_.l_max; ++m) qmm_[m] = qmm_[m - 1] * (2 * m - 1);
    ylm_a_.assign(lp * lp, 0.0);
    ylm_b_.assign(lp * lp, 0.0);
    for (int m = 0; m <= s_.l_max; ++m)
        for (int l = m + 1; l <= s_.l_max; ++l) {
            // Q_{m+1}^m = (2m + 1) z Q_m^m fits the general form with Q_{m-1}^m = 0.
            ylm_a_[l * lp + m] = (2.0 * l - 1.0) / (l - m);
            ylm_b_[l * lp + m] = (l + m - 1.0) / (l - m);
        }
    inv_sqrt_2l1_.resize(s_.l_max + 1);
    for (int l = 0; l <= s_.l_max; ++l) inv_sqrt_2l1_[l] = 1.0 / std::sqrt(2.0 * l + 1.0);
}

template <int LT>
inline void SoapBasis::add_neighbor_body(const double d[3], double r, int parity, double* acc, double* work,
                                         double* acc2) const {
    // LT >= 0: l_max known at compile time (ARISE's 6), so the short loops unroll.
    const int n = s_.n_max;
    const int L = (LT >= 0) ? LT : s_.l_max;
    const int lp = L + 1;
    const double fc = cutoff_function(r, s_.cutoff, s_.transition);
    if (fc == 0.0) return;
    const int st = stride();               // row stride of radial and acc
    double* radial = work;                 // (L + 1) x st: radial[l * st + a]
    double* ylm = radial + lp * st;        // lp * lp
    double* cm = ylm + lp * lp;            // Re/Im (x + iy)^m
    double* sm = cm + lp;
    double* em = sm + lp;                  // exp(-alpha (r - r_a)^2)

    // exp(-alpha (r - r_a)^2) on the equispaced centres r_a = a * spacing: one exp at the
    // nearest centre, then ratios (bounded exponents, no overflow); centres where the Gaussian
    // is below exp(-kTail) of its peak contribute < 1e-26 and are skipped.
    const double a_ = alpha_, h = spacing_;
    int a0 = static_cast<int>(std::lround(r / h));
    a0 = std::min(std::max(a0, 0), n - 1);
    const double t0 = r - r_basis_[a0];
    const double peak = std::exp(-a_ * t0 * t0);
    em[a0] = peak;
    const double floor_value = peak * kTailFactor;
    int a_hi = a0, a_lo = a0;
    {
        // ratio up = exp(-alpha h^2) e, ratio down = exp(-alpha h^2) / e with e = exp(2 alpha h t0)
        const double e = std::exp(2.0 * a_ * h * t0);
        double value = peak, ratio = gauss_step_ * e;
        for (int ia = a0 + 1; ia < n; ++ia) {
            value *= ratio;
            ratio *= q_step_;
            if (!(value > floor_value)) break;
            em[ia] = value;
            a_hi = ia;
        }
        value = peak;
        ratio = gauss_step_ / e;
        for (int ia = a0 - 1; ia >= 0; --ia) {
            value *= ratio;
            ratio *= q_step_;
            if (!(value > floor_value)) break;
            em[ia] = value;
            a_lo = ia;
        }
    }

    // Radial integrals exp(-alpha (r^2 + r_a^2)) i_l(2 alpha r r_a) by quippy's upward recurrence.
    const double inv_2arh = (r > 0.0) ? 1.0 / (2.0 * a_ * r * h) : 0.0;
    for (int ia = a_lo; ia <= a_hi; ++ia) {
        const double ra = r_basis_[ia];
        const double arg = 2.0 * a_ * r * ra;
        if (arg == 0.0) {
            radial[ia] = std::exp(-a_ * (ra * ra + r * r));
            for (int l = 1; l <= L; ++l) radial[l * st + ia] = 0.0;
            continue;
        }
        const double m_ = em[ia];
        // exp(-alpha (r + r_a)^2) = em * exp(-2 arg): below rounding of em once 2 arg > 40.
        const double p_ = (arg < 20.0) ? std::exp(-a_ * (r + ra) * (r + ra)) : 0.0;
        const double inv = inv_2arh * inv_index_[ia];  // 1 / (2 alpha r r_a), r_a = ia * spacing
        double lmm, lm = 0.5 * (m_ + p_) * inv, lc = 0.5 * (m_ - p_) * inv;
        radial[ia] = lc;
        for (int l = 1; l <= L; ++l) {
            lmm = lm;
            lm = lc;
            lc = lmm - (2 * l - 1) * lm * inv;
            radial[l * st + ia] = lc;
        }
    }

    // Real orthonormal spherical harmonics of the unit vector (the power spectrum is invariant
    // under the unitary change from quippy's complex harmonics).
    double x = 0.0, y = 0.0, z = 1.0;
    if (r > 0.0) {
        const double inv_r = 1.0 / std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        x = d[0] * inv_r;
        y = d[1] * inv_r;
        z = d[2] * inv_r;
    }
    cm[0] = 1.0;
    sm[0] = 0.0;
    for (int m = 1; m <= L; ++m) {
        cm[m] = x * cm[m - 1] - y * sm[m - 1];
        sm[m] = x * sm[m - 1] + y * cm[m - 1];
    }
    // Q_l^m(z) = P_l^m / sin^m (sign dropped: irrelevant for the power spectrum).
    for (int m = 0; m <= L; ++m) {
        double q2 = 0.0, q1 = qmm_[m];
        for (int l = m; l <= L; ++l) {
            double ql;
            if (l == m) {
                ql = q1;
            } else {
                ql = ylm_a_[l * lp + m] * z * q1 - ylm_b_[l * lp + m] * q2;
                q2 = q1;
                q1 = ql;
            }
            const double v = ylm_norm_[l * lp + m] * ql;
            if (m == 0) {
                ylm[l * l + l] = v;
            } else {
                ylm[l * l + l + m] = v * cm[m];
                ylm[l * l + l - m] = v * sm[m];
            }
        }
    }

    if (parity == 3) {
        // Two substructures with the same scaling: d into `acc`, -d into `acc2` (odd l flip sign).
        for (int l = 0; l <= L; ++l) {
            const double* rad = radial + l * st;
            const double sign = (l & 1) ? -1.0 : 1.0;
            for (int m = -l; m <= l; ++m) {
                const int lm = l * l + l + m;
                const double yw = fc * ylm[lm];
                double* dst = acc + lm * st * kLanes;
                double* dst2 = acc2 + lm * st * kLanes;
                for (int ia = a_lo; ia <= a_hi; ++ia) {
                    const double v = yw * rad[ia];
                    dst[ia * kLanes] += v;
                    dst2[ia * kLanes] += sign * v;
                }
            }
        }
        return;
    }
    for (int l = 0; l <= L; ++l) {
        double w;
        if (parity == 2) {
            if (l & 1) continue;
            w = 2.0 * fc;
        } else {
            w = (parity < 0 && (l & 1)) ? -fc : fc;
        }
        const double* rad = radial + l * st;
        for (int m = -l; m <= l; ++m) {
            const int lm = l * l + l + m;
            const double yw = w * ylm[lm];
            double* dst = acc + lm * st * kLanes;
            for (int ia = a_lo; ia <= a_hi; ++ia) dst[ia * kLanes] += yw * rad[ia];
        }
    }
}

void SoapBasis::add_neighbor(const double d[3], double r, int parity, double* acc, double* work, double* acc2) const {
    if (parity == 3 && acc2 == nullptr) throw std::invalid_argument("add_neighbor: parity 3 needs a second accumulator");
    if (s_.l_max == 6) add_neighbor_body<6>(d, r, parity, acc, work, acc2);
    else add_neighbor_body<-1>(d, r, parity, acc, work, acc2);
}

#ifdef CRYSPEXT_OPENMP
#define CRYSPEXT_SIMD _Pragma("omp simd")
#define CRYSPEXT_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")
#else
#define CRYSPEXT_SIMD
#define CRYSPEXT_SIMD_SUM_S
#endif

// The block kernel may fuse multiply-adds (the module is built with -ffp-contract=off so that
// the d_NN distances round exactly as numpy's do; the SOAP sums have no such constraint).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif

namespace {

// exp(x) for x in [-708, 708] (callers guarantee the range) to ~1 ulp, written so that compilers
// vectorise it (Cody-Waite reduction, degree-13 Taylor polynomial, 2^k from the bits of a
// rounded double). No clamping: GCC 12 stops vectorising with it.
inline double vexp(double x) {
    const double shifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    const double kd = x * 1.4426950408889634 + shifter;
    const double k = kd - shifter;
    const double f = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * f + 1.0 / 479001600.0;
    p = p * f + 1.0 / 39916800.0;
    p = p * f + 1.0 / 3628800.0;
    p = p * f + 1.0 / 362880.0;
    p = p * f + 1.0 / 40320.0;
    p = p * f + 1.0 / 5040.0;
    p = p * f + 1.0 / 720.0;
    p = p * f + 1.0 / 120.0;
    p = p * f + 1.0 / 24.0;
    p = p * f + 1.0 / 6.0;
    p = p * f + 0.5;
    p = p * f + 1.0;
    p = p * f + 1.0;
#if defined(__GNUC__) && __GNUC__ >= 11
    const uint64_t bits = (__builtin_bit_cast(uint64_t, kd) + 1023u) << 52;  // low bits of kd hold k
    return p * __builtin_bit_cast(double, bits);
#else
    uint64_t bits;
    std::memcpy(&bits, &kd, sizeof bits);
    bits = (bits + 1023u) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
#endif
}

}  // namespace

void SoapBasis::block_add_slow(Block* buckets, const double d[3], double r, int mode, double* acc, double* acc2,
                               double* work) const {
    // Pairs the kernel cannot take (zero distance, or a Gaussian of the window underflowing) go
    // through the scalar path.
    if (!batch_ok_ || !(r > 0.0)) {
        add_neighbor(d, r, mode, acc, work, acc2);
        return;
    }
    if (r >= s_.cutoff) return;
    const int n = s_.n_max;
    const int a0 = std::min(std::max(static_cast<int>(r / spacing_ + 0.5), 0), n - 1);
    const double top = r_basis_[std::min(a0 + window_, n - 1)];
    if (alpha_ * (r - top) * (r - top) > 600.0) {
        add_neighbor(d, r, mode, acc, work, acc2);
        return;
    }
    queue(buckets, a0, d, r, mode, acc, acc2, work);
}

void SoapBasis::block_flush(Block* buckets, int mode, double* acc, double* acc2, double* work) const {
    for (int a0 = 0; a0 < n_buckets(); ++a0) flush_bucket(buckets[a0], a0, mode, acc, acc2, work);
}

void SoapBasis::flush_bucket(Block& b, int a0, int mode, double* acc, double* acc2, double* work) const {
    if (b.count == 0) return;
    const int lo = std::max(a0 - window_, 0), hi = std::min(a0 + window_, s_.n_max - 1);
    // Weight of the mode (an unordered pair seen from both ends counts twice); padding lanes
    // are copies of the first neighbour with zero weight.
    const double weight = (mode == 2) ? 2.0 : 1.0;
    for (int k = 0; k < kBlock; ++k) b.w[k] = (k < b.count) ? weight : 0.0;
    for (int k = b.count; k < kBlock; ++k) {
        b.x[k] = b.x[0];
        b.y[k] = b.y[0];
        b.z[k] = b.z[0];
        b.r[k] = b.r[0];
    }
#if defined(__GNUC__) && defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
    if (use_avx512_) block_kernel_avx512(b, lo, hi, mode, acc, acc2, work);
    else if (use_avx2_) block_kernel_avx2(b, lo, hi, mode, acc, acc2, work);
    else block_kernel<0>(b, lo, hi, mode, acc, acc2, work);
#else
    block_kernel<0>(b, lo, hi, mode, acc, acc2, work);
#endif
    b.count = 0;
}

#if defined(__GNUC__)
#define CRYSPEXT_INLINE inline __attribute__((always_inline))
#else
#define CRYSPEXT_INLINE inline
#endif

namespace {

// s[mm][k][v] = sum over the block of Y[mm] * R[k], kept in kLanes partial sums: M x W
// accumulators stay in registers while each loaded value feeds several products.
// Always inlined: it must be compiled for the caller's instruction set (the AVX2 kernel clone).
template <int M, int W>
CRYSPEXT_INLINE void product_tile(const double* y, const double* r, double s[M][W][SoapBasis::kLanes]) {
    constexpr int B = SoapBasis::kBlock, V = SoapBasis::kLanes;
    for (int mm = 0; mm < M; ++mm)
        for (int k = 0; k < W; ++k)
            for (int v = 0; v < V; ++v) s[mm][k][v] = 0.0;
    for (int c = 0; c < B; c += V)
        for (int mm = 0; mm < M; ++mm)
            for (int k = 0; k < W; ++k)
                for (int v = 0; v < V; ++v) s[mm][k][v] += y[mm * B + c + v] * r[k * B + c + v];
}

}  // namespace

template <int WT, int MT>
CRYSPEXT_INLINE void SoapBasis::accumulate(const double* rad, const double* ylm, int lo, int mode, double* acc, double* acc2,
                                  int w_runtime) const {
    // WT > 0: window width known at compile time (tiles of MT m x WT centres in registers);
    // WT == 0: any width, one (m, centre) at a time.
    constexpr int B = kBlock, V = kLanes;
    const int L = s_.l_max, st = stride();
    const int W = WT > 0 ? WT : w_runtime;
    auto store = [&](int lm, int k, const double* sum, double sign) {
        double* dst = acc + (lm * st + lo + k) * V;
        if (mode == -1) {
            for (int v = 0; v < V; ++v) dst[v] += sign * sum[v];
        } else {
            for (int v = 0; v < V; ++v) dst[v] += sum[v];
        }
        if (mode == 3) {
            double* dst2 = acc2 + (lm * st + lo + k) * V;
            for (int v = 0; v < V; ++v) dst2[v] += sign * sum[v];
        }
    };
    for (int l = 0; l <= L; ++l) {
        if (mode == 2 && (l & 1)) continue;
        const double sign = (l & 1) ? -1.0 : 1.0;
        const double* rl = rad + l * W * B;
        if constexpr (WT > 0) {
            int m = -l;
            for (; m + MT - 1 <= l; m += MT) {
                double sm[MT][WT][V];
                product_tile<MT, WT>(ylm + (l * l + l + m) * B, rl, sm);
                for (int mm = 0; mm < MT; ++mm)
                    for (int k = 0; k < WT; ++k) store(l * l + l + m + mm, k, sm[mm][k], sign);
            }
            for (; m <= l; ++m) {
                double s1[1][WT][V];
                product_tile<1, WT>(ylm + (l * l + l + m) * B, rl, s1);
                for (int k = 0; k < WT; ++k) store(l * l + l + m, k, s1[0][k], sign);
            }
        } else {
            for (int k = 0; k < W; ++k)
                for (int m = -l; m <= l; ++m) {
                    double s1[1][1][V];
                    product_tile<1, 1>(ylm + (l * l + l + m) * B, rl + k * B, s1);
                    store(l * l + l + m, k, s1[0][0], sign);
                }
        }
    }
}

// Always inlined into its callers, so that block_kernel_avx2 compiles it for AVX2 + FMA.
template <int Variant>
CRYSPEXT_INLINE void SoapBasis::block_kernel(const Block& b, int lo, int hi, int mode, double* acc, double* acc2,
                                    double* work) const {
    // Evaluates the radial centres lo..hi (the bucket's window) for the kBlock queued neighbours.
    constexpr int B = kBlock;
    const int n = s_.n_max, L = s_.l_max, lp = L + 1, st = stride();
    const int W = hi - lo + 1;
    const double a_ = alpha_, h = spacing_, q = q_step_;
    double* em = work;                 // W x B: w * exp(-alpha (r - r_a)^2)
    double* ep = em + n * B;           // W x B: w * exp(-alpha (r + r_a)^2)
    double* rad = ep + n * B;          // (L + 1) x W x B
    double* ylm = rad + lp * n * B;    // (L + 1)^2 x B
    double* cm = ylm + lp * lp * B;    // (L + 1) x B
    double* sm = cm + lp * B;
    double* qm = sm + lp * B;          // Legendre scratch (L + 1) x B
    double* t = qm + lp * B;           // 12 x B scratch
    double *ux = t, *uy = t + B, *uz = t + 2 * B, *val = t + 3 * B, *ratio = t + 4 * B, *inv_ar = t + 5 * B;
    double *lm1 = t + 6 * B, *lc = t + 7 * B, *q1 = t + 8 * B, *q2 = t + 9 * B, *fcut = t + 10 * B;

    CRYSPEXT_SIMD
    for (int p = 0; p < B; ++p) {
        const double inv = 1.0 / b.r[p];
        ux[p] = b.x[p] * inv;
        uy[p] = b.y[p] * inv;
        uz[p] = b.z[p] * inv;
        inv_ar[p] = inv / (2.0 * a_ * h);
    }
    // quippy's cosine taper over [r_cut - w, r_cut): cos(pi t) = sin(pi (1/2 - t)), Taylor series
    // on |u| <= pi/2 (error < 3e-16); t is zeroed below the taper (branch-free for vectorising).
    if (s_.transition > 0.0) {
        const double r0 = s_.cutoff - s_.transition, inv_w = 1.0 / s_.transition;
        CRYSPEXT_SIMD
        for (int p = 0; p < B; ++p) {
            double tt = (b.r[p] - r0) * inv_w;
            tt = 0.5 * (tt + std::fabs(tt));  // max(t, 0) without a branch
            const double u = 3.14159265358979323846 * (0.5 - tt), u2 = u * u;
            double sn = 1.0 / 121645100408832000.0;  // 1/19!
            sn = sn * u2 - 1.0 / 355687428096000.0;
            sn = sn * u2 + 1.0 / 1307674368000.0;
            sn = sn * u2 - 1.0 / 6227020800.0;
            sn = sn * u2 + 1.0 / 39916800.0;
            sn = sn * u2 - 1.0 / 362880.0;
            sn = sn * u2 + 1.0 / 5040.0;
            sn = sn * u2 - 1.0 / 120.0;
            sn = sn * u2 + 1.0 / 6.0;
            sn = sn * u2 - 1.0;
            sn = -sn * u;  // sin(u) = u (1 - u^2/6 + ...)
            fcut[p] = b.w[p] * 0.5 * (1.0 + sn);
        }
    } else {
        for (int p = 0; p < B; ++p) fcut[p] = b.w[p];
    }
    // Gaussians from the window's top centre down: exp(-alpha (r - r_a)^2) grows towards the
    // peak, so no value underflows before it matters. Exponents are clamped at -700 (vexp's range;
    // such values are far below what survives rounding).
    const double top = r_basis_[hi];
    CRYSPEXT_SIMD
    for (int p = 0; p < B; ++p) {
        const double tt = b.r[p] - top;
        double x1 = -a_ * tt * tt, x2 = -a_ * (2.0 * h * tt + h * h);
        x1 = x1 < -700.0 ? -700.0 : x1;
        x2 = x2 < -700.0 ? -700.0 : x2;
        val[p] = fcut[p] * vexp(x1);
        ratio[p] = vexp(x2);
    }
    for (int k = W - 1; k >= 0; --k)
        CRYSPEXT_SIMD
        for (int p = 0; p < B; ++p) {
            em[k * B + p] = val[p];
            val[p] *= ratio[p];
            ratio[p] *= q;
        }
    // exp(-alpha (r + r_a)^2) = exp(-alpha (r - r_a)^2) exp(-4 alpha r r_a). Below 2^-54 the
    // second factor vanishes in m - p and m + p (exactly, in rounding), so it is only evaluated
    // when some neighbour of the block is close enough to the origin: never for ARISE's settings
    // once r >= ~0.4 d_NN. When evaluated, the geometric factor is held at >= 1e-150, which keeps
    // every product a normal number (no denormal stalls) and changes nothing that survives rounding.
    const int first = std::max(lo, 1);  // r_0 = 0 is handled apart
    double rmin = b.r[0];
    for (int p = 1; p < B; ++p) rmin = std::min(rmin, b.r[p]);
    const bool need_ep = first <= hi && 4.0 * a_ * rmin * r_basis_[first] < 40.0;
    if (need_ep) {
        const double r_lo = r_basis_[lo];
        CRYSPEXT_SIMD
        for (int p = 0; p < B; ++p) {
            double x1 = -4.0 * a_ * b.r[p] * r_lo, x2 = -4.0 * a_ * b.r[p] * h;
            x1 = x1 < -345.0 ? -345.0 : x1;  // exp(-345) ~ 1e-150
            x2 = x2 < -345.0 ? -345.0 : x2;
            val[p] = vexp(x1);
            ratio[p] = vexp(x2);
        }
        for (int k = 0; k < W; ++k)
            CRYSPEXT_SIMD
            for (int p = 0; p < B; ++p) {
                ep[k * B + p] = em[k * B + p] * val[p];
                const double nxt = val[p] * ratio[p];
                val[p] = nxt < 1e-150 ? 1e-150 : nxt;
            }
    }
    // Radial integrals (quippy's upward recurrence); r_0 = 0 has only l = 0.
    for (int k = 0; k < W; ++k) {
        const int ia = lo + k;
        if (ia == 0) {
            CRYSPEXT_SIMD
            for (int p = 0; p < B; ++p) rad[k * B + p] = em[k * B + p];
            for (int l = 1; l <= L; ++l)
                CRYSPEXT_SIMD
                for (int p = 0; p < B; ++p) rad[(l * W + k) * B + p] = 0.0;
            continue;
        }
        const double ii = inv_index_[ia];
        if (need_ep) {
            CRYSPEXT_SIMD
            for (int p = 0; p < B; ++p) {
                const double inv = inv_ar[p] * ii;
                const double m_ = em[k * B + p], q_ = ep[k * B + p];
                lm1[p] = 0.5 * (m_ + q_) * inv;
                lc[p] = 0.5 * (m_ - q_) * inv;
                rad[k * B + p] = lc[p];
            }
        } else {
            CRYSPEXT_SIMD
            for (int p = 0; p < B; ++p) {
                const double v = 0.5 * em[k * B + p] * (inv_ar[p] * ii);
                lm1[p] = v;
                lc[p] = v;
                rad[k * B + p] = v;
            }
        }
        for (int l = 1; l <= L; ++l) {
            const double c = 2.0 * l - 1.0;
            double* dst = rad + (l * W + k) * B;
            CRYSPEXT_SIMD
            for (int p = 0; p < B; ++p) {
                const double inv = inv_ar[p] * ii;
                const double nxt = lm1[p] - c * lc[p] * inv;
                lm1[p] = lc[p];
                lc[p] = nxt;
                dst[p] = nxt;
            }
        }
    }
    // Real spherical harmonics.
    CRYSPEXT_SIMD
    for (int p = 0; p < B; ++p) {
        cm[p] = 1.0;
        sm[p] = 0.0;
    }
    for (int m = 1; m <= L; ++m)
        CRYSPEXT_SIMD
        for (int p = 0; p < B; ++p) {
            cm[m * B + p] = ux[p] * cm[(m - 1) * B + p] - uy[p] * sm[(m - 1) * B + p];
            sm[m * B + p] = ux[p] * sm[(m - 1) * B + p] + uy[p] * cm[(m - 1) * B + p];
        }
    for (int m = 0; m <= L; ++m) {
        const double qmm = qmm_[m];
        CRYSPEXT_SIMD
        for (int p = 0; p < B; ++p) {
            q1[p] = qmm;
            q2[p] = 0.0;
        }
        for (int l = m; l <= L; ++l) {
            const double nrm = ylm_norm_[l * lp + m];
            if (l > m) {
                const double ca = ylm_a_[l * lp + m], cb = ylm_b_[l * lp + m];
                CRYSPEXT_SIMD
                for (int p = 0; p < B; ++p) {
                    const double ql = ca * uz[p] * q1[p] - cb * q2[p];
                    q2[p] = q1[p];
                    q1[p] = ql;
                }
            }
            if (mode == 2 && (l & 1)) continue;  // odd l cancel for a pair seen from both ends
            if (m == 0) {
                double* y0 = ylm + (l * l + l) * B;
                CRYSPEXT_SIMD
                for (int p = 0; p < B; ++p) y0[p] = nrm * q1[p];
            } else {
                double* yp = ylm + (l * l + l + m) * B;
                double* yn = ylm + (l * l + l - m) * B;
                CRYSPEXT_SIMD
                for (int p = 0; p < B; ++p) {
                    const double v = nrm * q1[p];
                    yp[p] = v * cm[m * B + p];
                    yn[p] = v * sm[m * B + p];
                }
            }
        }
    }
    // Accumulate: acc[lm, a] += sum_p Y[lm, p] rad[l, a, p] (weights are inside rad), a small
    // matrix product per l. The sum over p stays split over kLanes partial sums (no horizontal
    // reduction per block); they are added up once, in power_spectrum.
    // Rows of m per register tile: AVX-512 has 32 vector registers, the others 16.
    constexpr int kTileM = (Variant == 2) ? 4 : 3;
    switch (W) {
        case 5: accumulate<5, kTileM>(rad, ylm, lo, mode, acc, acc2); break;
        case 4: accumulate<4, kTileM>(rad, ylm, lo, mode, acc, acc2); break;
        case 3: accumulate<3, kTileM>(rad, ylm, lo, mode, acc, acc2); break;
        case 2: accumulate<2, kTileM>(rad, ylm, lo, mode, acc, acc2); break;
        case 1: accumulate<1, kTileM>(rad, ylm, lo, mode, acc, acc2); break;
        default: accumulate<0, kTileM>(rad, ylm, lo, mode, acc, acc2, W); break;
    }
    (void)Variant;
}

#if defined(__GNUC__) && defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("avx2,fma"))) void SoapBasis::block_kernel_avx2(const Block& b, int lo, int hi, int mode,
                                                                       double* acc, double* acc2, double* work) const {
    block_kernel<1>(b, lo, hi, mode, acc, acc2, work);
}
// AVX-512 (32 vector registers, masked tails): the same code.
__attribute__((target("avx2,fma,avx512f,avx512vl,avx512dq"))) void SoapBasis::block_kernel_avx512(
    const Block& b, int lo, int hi, int mode, double* acc, double* acc2, double* work) const {
    block_kernel<2>(b, lo, hi, mode, acc, acc2, work);
}
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

bool SoapBasis::power_spectrum(const double* acc, double central, double* out, double* work) const {
    const int n = s_.n_max, L = s_.l_max;
    const int nlm = n_lm();
    const int st = stride();
    double* c = work;  // c[lm * n + b] = sum_a (sum of the lanes of acc[lm, a]) T(a, b)
    double row[64];
    for (int lm = 0; lm < nlm; ++lm) {
        const double* src = acc + lm * st * kLanes;
        for (int ia = 0; ia < n; ++ia) {
            double t = 0.0;
            for (int v = 0; v < kLanes; ++v) t += src[ia * kLanes + v];
            row[ia] = t;
        }
        double* dst = c + lm * n;
        for (int b = 0; b < n; ++b) {
            double s = 0.0;
            for (int ia = 0; ia < n; ++ia) s += row[ia] * transform_[ia * n + b];
            dst[b] = s;
        }
    }
    if (central != 0.0) c[0] += central * central_coefficient_;
    int k = 0;
    double norm2 = 0.0;
    const double sqrt2 = std::sqrt(2.0);
    for (int ia = 0; ia < n; ++ia)
        for (int jb = 0; jb <= ia; ++jb)
            for (int l = 0; l <= L; ++l) {
                double s = 0.0;
                for (int m = -l; m <= l; ++m) {
                    const int lm = l * l + l + m;
                    s += c[lm * n + ia] * c[lm * n + jb];
                }
                s *= inv_sqrt_2l1_[l];
                if (ia != jb) s *= sqrt2;
                out[k++] = s;
                norm2 += s * s;
            }
    out[k] = 0.0;
    const double nrm = std::sqrt(norm2);
    if (!(nrm > 0.0) || !std::isfinite(nrm)) {
        for (int i = 0; i < dim_; ++i) out[i] = kNaN;
        return false;
    }
    for (int i = 0; i < k; ++i) out[i] /= nrm;
    return true;
}

double arise_histogram_distance(std::vector<double> v, int bins, int rule, double rtol) {
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
    if (v.empty() || bins < 1) return kNaN;
    double first = *std::min_element(v.begin(), v.end());
    double last = *std::max_element(v.begin(), v.end());
    // numpy.linspace(first, last, bins + 1): k * step + first, the last edge exactly `last`.
    std::vector<double> edges(bins + 1);
    auto make_edges = [&]() {
        const double step = (last - first) / bins;
        for (int k = 0; k < bins; ++k) edges[k] = static_cast<double>(k) * step + first;
        edges[bins] = last;
        for (int k = 0; k < bins; ++k)
            if (!(edges[k] < edges[k + 1])) return false;
        return true;
    };
    bool equal = (first == last);
    if (rule == kDegenerateRobust && last - first <= rtol * std::abs(first)) equal = true;
    if (equal) {
        // numpy for equal values: range [x - 0.5, x + 0.5] with x = the (common) minimum.
        std::fill(v.begin(), v.end(), first);
        last = first + 0.5;
        first = first - 0.5;
        make_edges();
    } else if (!make_edges()) {
        // A spread of a few ulps: current numpy raises "Too many bins"; the centre of any bin
        // inside [min, max] (what older numpy returned) equals min to rounding.
        return first;
    }
    std::vector<int64_t> count(bins, 0);
    const double denom = last - first;
    for (double x : v) {
        if (x < first || x > last) continue;
        const double f = ((x - first) / denom) * bins;
        int64_t idx = static_cast<int64_t>(f);
        if (idx == bins) idx -= 1;
        if (x < edges[idx]) idx -= 1;
        if (idx != bins - 1 && x >= edges[idx + 1]) idx += 1;
        count[idx] += 1;
    }
    // Counts divided by r^2 of the left edge (area of spherical shells); first maximum wins.
    int best = -1;
    double best_value = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < bins; ++k) {
        const double value = static_cast<double>(count[k]) / (edges[k] * edges[k]);
        if (std::isnan(value)) {  // numpy.argmax returns the first NaN
            best = k;
            break;
        }
        if (value > best_value) {
            best_value = value;
            best = k;
        }
    }
    return (edges[best] + edges[best + 1]) / 2.0;
}

namespace {

// A search radius that usually holds a few neighbours: ~1.6 x the volume per atom^(1/3).
double initial_radius(const double* positions, int64_t n, const CellFrame& frame) {
    double volume = 1.0;
    int open = 0;
    std::array<double, 3> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (int64_t i = 0; i < n; ++i)
        for (int d = 0; d < 3; ++d) {
            lo[d] = std::min(lo[d], positions[3 * i + d]);
            hi[d] = std::max(hi[d], positions[3 * i + d]);
        }
    double periodic_volume = std::abs(frame.cell.determinant());
    for (int d = 0; d < 3; ++d)
        if (!frame.pbc[d]) ++open;
    if (open == 0) {
        volume = periodic_volume;
    } else {
        // Rough: bounding box of the atoms, at least 1 Å thick along every axis.
        volume = 1.0;
        for (int d = 0; d < 3; ++d) volume *= std::max(1.0, hi[d] - lo[d]);
    }
    double r = 1.6 * std::cbrt(volume / std::max<int64_t>(1, n));
    return std::max(r, 1.0);
}


}  // namespace

// Distance |r_b + S.cell - r_a| evaluated in the order ARISE's ai4materials code does it
// (numpy: positions[j] + dot(offset, cell) - positions[i], then linalg.norm = sqrt(dot(x, x))),
// so that "all nearest distances exactly equal" is decided on the same bits as in ARISE.
inline double ase_distance(const double* pa, const double* pb, const int32_t S[3], const Mat3& cell, bool fma_norm) {
    double x[3];
    for (int k = 0; k < 3; ++k) {
        const double shift = static_cast<double>(S[0]) * cell(0, k) + static_cast<double>(S[1]) * cell(1, k) +
                             static_cast<double>(S[2]) * cell(2, k);
        x[k] = (pb[k] + shift) - pa[k];
    }
    double sq;
    if (fma_norm) sq = std::fma(x[2], x[2], std::fma(x[1], x[1], x[0] * x[0]));
    else sq = (x[0] * x[0] + x[1] * x[1]) + x[2] * x[2];
    return std::sqrt(sq);
}

// Nearest distance from every atom to each species (n x S table); NaN where none within max_radius.
static std::vector<double> nearest_table(const double* positions, int64_t n,
                                         const CellFrame& frame, int S, const std::vector<int>& species_index,
                                         double max_radius, bool fma_norm) {
    std::vector<double> table(n * S, kNaN);
    double radius = std::min(initial_radius(positions, n, frame), max_radius);
    std::vector<int32_t> todo(n);
    for (int64_t i = 0; i < n; ++i) todo[i] = static_cast<int32_t>(i);
    std::vector<double> best(S), best_r2(S);
    while (true) {
        CellBins bins = make_bins(positions, n, frame, radius);
        std::vector<int32_t> next;
        for (int32_t i : todo) {
            double* row = &table[static_cast<int64_t>(i) * S];
            std::fill(best.begin(), best.end(), std::numeric_limits<double>::infinity());
            std::fill(best_r2.begin(), best_r2.end(), std::numeric_limits<double>::infinity());
            const int32_t* ki = &bins.image[3 * i];
            for_each_neighbor(bins, i, radius, [&](int32_t b, double, double, double, double r2, int s0, int s1, int s2) {
                const int sp = species_index[b];
                // Only candidates that can be the minimum need the exact evaluation.
                if (r2 > best_r2[sp] * (1.0 + 1e-9)) return;
                const int32_t* kj = &bins.image[3 * b];
                const int32_t S3[3] = {s0 + ki[0] - kj[0], s1 + ki[1] - kj[1], s2 + ki[2] - kj[2]};
                const double d = ase_distance(positions + 3 * i, positions + 3 * b, S3, frame.cell, fma_norm);
                if (d < best[sp]) best[sp] = d;
                if (r2 < best_r2[sp]) best_r2[sp] = r2;
            });
            bool missing = false;
            for (int sp = 0; sp < S; ++sp) {
                if (std::isfinite(best[sp])) row[sp] = best[sp];
                else missing = true;
            }
            if (missing) next.push_back(i);
        }
        if (next.empty() || radius >= max_radius) break;
        todo.swap(next);
        radius = std::min(radius * 1.7, max_radius);
    }
    return table;
}

std::vector<double> nearest_distances(const double* positions, const int32_t* numbers, int64_t n,
                                      const double* cell_rows, const bool* pbc, int32_t center_species,
                                      int32_t neighbor_species, double max_radius) {
    CellFrame frame = make_frame(cell_rows, pbc);
    std::vector<int32_t> species{0};
    std::vector<int> index(n, 0);
    if (neighbor_species != 0) {
        // Two classes: 0 = the neighbour species, 1 = the others.
        species = {neighbor_species, -1};
        for (int64_t i = 0; i < n; ++i) index[i] = (numbers[i] == neighbor_species) ? 0 : 1;
    }
    const int S = static_cast<int>(species.size());
    std::vector<double> table = nearest_table(positions, n, frame, S, index, max_radius, false);
    std::vector<double> out;
    for (int64_t i = 0; i < n; ++i) {
        if (center_species != 0 && numbers[i] != center_species) continue;
        out.push_back(table[i * S]);
    }
    return out;
}

AriseResult arise_soap(const double* positions, const int32_t* numbers, int64_t n, const double* cell_rows,
                       const bool* pbc, const AriseOptions& options) {
    SoapBasis basis(options.soap);
    AriseResult res;
    res.vector.assign(basis.dim(), kNaN);
    if (n <= 0) {
        res.error = "structure has no atoms";
        return res;
    }
    CellFrame frame = make_frame(cell_rows, pbc);
    std::vector<int32_t>& species = res.species;
    species.assign(numbers, numbers + n);
    std::sort(species.begin(), species.end());
    species.erase(std::unique(species.begin(), species.end()), species.end());
    const int S = static_cast<int>(species.size());
    std::vector<int> index(n);
    for (int64_t i = 0; i < n; ++i)
        index[i] = static_cast<int>(std::lower_bound(species.begin(), species.end(), numbers[i]) - species.begin());

    res.dnn.assign(S * S, 1.0);
    if (options.scale) {
        std::vector<double> table =
            nearest_table(positions, n, frame, S, index, options.nn_search_max, options.fma_norm);
        std::vector<double> list;
        for (int a = 0; a < S; ++a)
            for (int b = 0; b < S; ++b) {
                list.clear();
                for (int64_t i = 0; i < n; ++i)
                    if (index[i] == a) list.push_back(table[i * S + b]);
                res.dnn[a * S + b] = arise_histogram_distance(list, options.bins, options.degenerate, options.rtol);
            }
    }
    double dmax = 0.0;
    for (int k = 0; k < S * S; ++k) {
        if (!std::isfinite(res.dnn[k]) || !(res.dnn[k] > 0.0)) {
            res.error = "no nearest neighbour of species " + std::to_string(species[k % S]) + " around atoms of species " +
                        std::to_string(species[k / S]) + " (d_NN undefined)";
            return res;
        }
        dmax = std::max(dmax, res.dnn[k]);
    }

    // Half neighbour list within cutoff x the largest d_NN; each unordered pair feeds both ends.
    const double rc = options.soap.cutoff;
    NeighborOptions nopt;
    nopt.cutoff = rc * dmax;
    nopt.half = true;
    nopt.want_vectors = true;
    // Small clusters (ARISE boxes): a direct double loop over pairs beats building a list.
    const bool direct = !pbc[0] && !pbc[1] && !pbc[2] && n <= 1500;
    NeighborList nl;
    if (!direct) nl = neighbor_list(positions, n, cell_rows, pbc, nopt);
    const int64_t n_pairs = direct ? n * (n - 1) / 2 : static_cast<int64_t>(nl.i.size());
    const int acc_size = basis.acc_size();
    std::vector<double> acc(static_cast<size_t>(S) * S * acc_size, 0.0);
    std::vector<double> inv_d(S * S);
    for (int k = 0; k < S * S; ++k) inv_d[k] = 1.0 / res.dnn[k];

    const bool outer_parallel = n_pairs > 4096
#ifdef CRYSPEXT_OPENMP
                                && !omp_in_parallel()
#endif
        ;
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel if (outer_parallel)
#endif
    {
        std::vector<double> local(acc.size(), 0.0), work(basis.block_work_size());
        // One block per target: 4 kinds (same species, shared, forward, backward) x S x S.
        const int nb = basis.n_buckets();
        std::vector<SoapBasis::Block> blocks(4 * static_cast<size_t>(S) * S * nb);
        auto bucket = [&](int k) { return &blocks[static_cast<size_t>(k) * nb]; };
        auto target = [&](int a, int b) { return &local[static_cast<size_t>(a * S + b) * acc_size]; };
        // One unordered pair (i, j) with vector v = r_j - r_i of length r (Å).
        auto process = [&](int32_t i, int32_t j, const double* v, double r) {
            const int a = index[i], b = index[j];
            const int ab = a * S + b;
            if (a == b) {
                const double s = inv_d[a * S + a];
                const double rs = r * s;
                if (rs >= rc) return;
                const double d[3] = {v[0] * s, v[1] * s, v[2] * s};
                basis.block_add(bucket(4 * ab), d, rs, 2, target(a, a), nullptr, work.data());
                return;
            }
            const double s1 = inv_d[a * S + b], s2 = inv_d[b * S + a];
            const double r1 = r * s1, r2 = r * s2;
            if (s1 == s2) {  // same d_NN for (a, b) and (b, a): one evaluation feeds both
                if (r1 < rc) {
                    const double d[3] = {v[0] * s1, v[1] * s1, v[2] * s1};
                    basis.block_add(bucket(4 * ab + 1), d, r1, 3, target(a, b), target(b, a), work.data());
                }
                return;
            }
            if (r1 < rc) {
                const double d[3] = {v[0] * s1, v[1] * s1, v[2] * s1};
                basis.block_add(bucket(4 * ab + 2), d, r1, 1, target(a, b), nullptr, work.data());
            }
            if (r2 < rc) {
                const double d[3] = {v[0] * s2, v[1] * s2, v[2] * s2};
                basis.block_add(bucket(4 * ab + 3), d, r2, -1, target(b, a), nullptr, work.data());
            }
        };
        if (direct) {
            // One species: lengths are scaled in the distance pass and pairs go straight to the
            // kernel's queue (no per-pair species lookups).
            const bool single = (S == 1);
            const double pre = single ? inv_d[0] : 1.0;
            const double r2max = single ? rc * rc : nopt.cutoff * nopt.cutoff;
            // Distances to all later atoms in one vectorisable pass over coordinate arrays, then
            // only the pairs inside the cutoff go on (branch-free compaction).
            std::vector<double> dx(n), dy(n), dz(n), r2(n), rr(n);
            std::vector<int32_t> hit(n);
#ifdef CRYSPEXT_OPENMP
#pragma omp for schedule(dynamic, 8)
#endif
            for (int64_t i = 0; i < n; ++i) {
                const double xi = positions[3 * i], yi = positions[3 * i + 1], zi = positions[3 * i + 2];
                const int64_t m = n - i - 1;
                const double* pj = positions + 3 * (i + 1);
                for (int64_t k = 0; k < m; ++k) {
                    const double vx = (pj[3 * k] - xi) * pre, vy = (pj[3 * k + 1] - yi) * pre,
                                 vz = (pj[3 * k + 2] - zi) * pre;
                    dx[k] = vx;
                    dy[k] = vy;
                    dz[k] = vz;
                    r2[k] = vx * vx + vy * vy + vz * vz;
                    rr[k] = std::sqrt(r2[k]);
                }
                int64_t count = 0;
                for (int64_t k = 0; k < m; ++k) {
                    hit[count] = static_cast<int32_t>(k);
                    count += (r2[k] < r2max) ? 1 : 0;
                }
                if (single) {
                    SoapBasis::Block* own = bucket(0);
                    double* t = target(0, 0);
                    for (int64_t h = 0; h < count; ++h) {
                        const int32_t k = hit[h];
                        const double v[3] = {dx[k], dy[k], dz[k]};
                        basis.block_add(own, v, rr[k], 2, t, nullptr, work.data());
                    }
                    continue;
                }
                for (int64_t h = 0; h < count; ++h) {
                    const int32_t k = hit[h];
                    const double v[3] = {dx[k], dy[k], dz[k]};
                    process(static_cast<int32_t>(i), static_cast<int32_t>(i + 1 + k), v, rr[k]);
                }
            }
        } else {
#ifdef CRYSPEXT_OPENMP
#pragma omp for schedule(static)
#endif
            for (int64_t p = 0; p < n_pairs; ++p) process(nl.i[p], nl.j[p], &nl.vectors[3 * p], nl.distances[p]);
        }
        for (int a = 0; a < S; ++a)
            for (int b = 0; b < S; ++b) {
                const int ab = a * S + b;
                basis.block_flush(bucket(4 * ab), 2, target(a, a), nullptr, work.data());
                basis.block_flush(bucket(4 * ab + 1), 3, target(a, b), target(b, a), work.data());
                basis.block_flush(bucket(4 * ab + 2), 1, target(a, b), nullptr, work.data());
                basis.block_flush(bucket(4 * ab + 3), -1, target(b, a), nullptr, work.data());
            }
#ifdef CRYSPEXT_OPENMP
#pragma omp critical
#endif
        for (size_t k = 0; k < acc.size(); ++k) acc[k] += local[k];
    }

    std::vector<int64_t> centres(S, 0);
    for (int64_t i = 0; i < n; ++i) centres[index[i]]++;
    std::vector<double> p(basis.dim()), work(basis.ps_work_size());
    std::vector<double> mean(basis.dim(), 0.0);
    for (int a = 0; a < S; ++a)
        for (int b = 0; b < S; ++b) {
            const bool ok = basis.power_spectrum(&acc[(a * S + b) * acc_size],
                                                 options.soap.central_weight * centres[a], p.data(), work.data());
            if (!ok) {
                res.error = "no atom of species " + std::to_string(species[b]) + " within the cutoff of atoms of species " +
                            std::to_string(species[a]) + " (SOAP undefined)";
                return res;
            }
            for (int k = 0; k < basis.dim(); ++k) mean[k] += p[k];
        }
    for (int k = 0; k < basis.dim(); ++k) mean[k] /= static_cast<double>(S * S);
    res.vector = mean;
    res.ok = true;
    return res;
}

void soap_per_atom(const double* positions, int64_t n, const double* cell_rows, const bool* pbc,
                   const SoapSettings& settings, double scale, double* out) {
    if (!(scale > 0.0) || !std::isfinite(scale)) throw std::invalid_argument("scale must be a positive number");
    SoapBasis basis(settings);
    const int dim = basis.dim();
    if (n <= 0) return;
    CellFrame frame = make_frame(cell_rows, pbc);
    const double radius = settings.cutoff * scale;
    CellBins bins = make_bins(positions, n, frame, radius);
    const double inv = 1.0 / scale;
    const double rc = settings.cutoff;
#ifdef CRYSPEXT_OPENMP
#pragma omp parallel
#endif
    {
        std::vector<double> acc(basis.acc_size()), work(basis.block_work_size()), ps_work(basis.ps_work_size());
        std::vector<SoapBasis::Block> block(basis.n_buckets());
#ifdef CRYSPEXT_OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t i = 0; i < n; ++i) {
            std::fill(acc.begin(), acc.end(), 0.0);
            for_each_neighbor(bins, static_cast<int32_t>(i), radius, [&](int32_t, double dx, double dy, double dz, double r2, int, int, int) {
                const double r = std::sqrt(r2) * inv;
                if (r >= rc) return;
                const double d[3] = {dx * inv, dy * inv, dz * inv};
                basis.block_add(block.data(), d, r, 1, acc.data(), nullptr, work.data());
            });
            basis.block_flush(block.data(), 1, acc.data(), nullptr, work.data());
            basis.power_spectrum(acc.data(), settings.central_weight, out + i * dim, ps_work.data());
        }
    }
}

}  // namespace cryspext
