// AnyLoss (Han, Moniz, Chawla 2024) on the GPU with the semantics of losskit_losses::AnyLoss: 1 - a confusion-matrix
// metric of amplified probabilities y^ = sigmoid(L (p - 0.5)) over the whole batch, binary (p = sigmoid(x), targets in
// [0, 1]) or one-vs-rest macro over C classes (p = softmax row, y_ik = [label_i == k], loss = mean over k).
//
// Per column k (the binary form has one), with relative weights w_i (N w_i / sum w, or 1):
//   N = sum w, n1 = sum w y, n0 = sum w (1 - y), TP = sum w y y^, TN = sum w (1 - y)(1 - y^), S = sum w y^  (f64)
//   metric 0 accuracy (TP + TN) / N;  1 fbeta (1 + b2) TP / (b2 n1 + S + s);  2 gmean TP TN / (n1 n0 + s);
//   3 balanced accuracy (n0 TP + n1 TN) / (2 n1 n0 + s);  s = 1e-5
// dM/dy^_i = w_i (alpha_k y_i + beta_k) for every metric (it is affine in y_i), so the column kernel stores
// (alpha_k, beta_k) and 1 - M_k, and the gradient kernel forms
//   binary:     dL/dx_i = -gscale w_i (alpha y_i + beta) L y^_i (1 - y^_i) p_i (1 - p_i)
//   multiclass: h_ik = -w_i (alpha_k y_ik + beta_k) L y^_ik (1 - y^_ik) / C,  dL/dz_ik = gscale p_ik (h_ik - sum_j p_ij h_ij)
// gscale = 1 under Mean and sum of the raw weights under Sum / None (the host also forms the value and per-sample
// shares). Launches: multiclass any_rows (row max and 1 / sum exp, one warp per row), then any_cols (one block per
// column, fixed-order f64 tree sums, so results are bitwise reproducible), then the gradient; binary any_cols_bin then
// any_grad_bin. 16-bit values travel as raw bits.

#define LK_NEG_INF (__int_as_float(0xff800000))

struct LkF32 {
    typedef float raw;
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};

struct LkBf16 {
    typedef unsigned short raw;
    static __device__ __forceinline__ float load(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }
    static __device__ __forceinline__ unsigned short store(float f) {
        unsigned int u = __float_as_uint(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            return (unsigned short)((u >> 16) | 0x0040u);
        }
        u += 0x7fffu + ((u >> 16) & 1u);
        return (unsigned short)(u >> 16);
    }
};

struct LkF16 {
    typedef unsigned short raw;
    static __device__ __forceinline__ float load(unsigned short h) {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
        return f;
    }
    static __device__ __forceinline__ unsigned short store(float f) {
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
        return h;
    }
};

// Every kernel takes this one struct by value (src/binary.rs mirrors it, #[repr(C)]).
struct LkAnyArgs {
    const void* x;     // [N] scores or [N, C] logits (T)
    const void* t;     // [N] targets (T, binary) or labels (L, multiclass)
    const float* rel;  // [N] relative weights or null (all 1)
    float* rowst;      // [N, 2] row max and 1 / sum exp (multiclass)
    float* coef;       // [C, 2] alpha, beta
    double* closs;     // [C] 1 - M_k
    void* g;           // gradient (T) or null
    int n, c, metric;
    float amp, beta2, gscale;
};

__device__ __forceinline__ float lk_sig(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    const float e = expf(x);
    return e / (1.0f + e);
}

// One column's statistics over all rows: one block of 256 threads, f64 sums, a fixed-order tree.
template <class P>
__device__ __forceinline__ void lk_any_cols(const LkAnyArgs& a, const P& prob) {
    __shared__ double sh[6][256];
    const int k = (int)blockIdx.x;
    const int t = (int)threadIdx.x;
    double acc[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (int i = t; i < a.n; i += 256) {
        float p, y;
        prob.get(a, i, k, p, y);
        const float w = a.rel ? a.rel[i] : 1.0f;
        const float yh = lk_sig(a.amp * (p - 0.5f));
        const float yl = lk_sig(-a.amp * (p - 0.5f));
        acc[0] += (double)w;
        acc[1] += (double)(w * y);
        acc[2] += (double)(w * (1.0f - y));
        acc[3] += (double)(w * y * yh);
        acc[4] += (double)(w * (1.0f - y) * yl);
        acc[5] += (double)(w * yh);
    }
    for (int q = 0; q < 6; ++q) {
        sh[q][t] = acc[q];
    }
    __syncthreads();
    for (int half = 128; half > 0; half >>= 1) {
        if (t < half) {
            for (int q = 0; q < 6; ++q) {
                sh[q][t] += sh[q][t + half];
            }
        }
        __syncthreads();
    }
    if (t == 0) {
        const double total = sh[0][0], n1 = sh[1][0], n0 = sh[2][0], tp = sh[3][0], tn = sh[4][0], s_hat = sh[5][0];
        const double s = 1e-5;
        const double b2 = (double)a.beta2;
        double m, alpha, beta;
        if (a.metric == 0) {
            m = (tp + tn) / total;
            alpha = 2.0 / total;
            beta = -1.0 / total;
        } else if (a.metric == 1) {
            const double den = b2 * n1 + s_hat + s;
            m = (1.0 + b2) * tp / den;
            alpha = (1.0 + b2) / den;
            beta = -(1.0 + b2) * tp / (den * den);
        } else if (a.metric == 2) {
            const double den = n1 * n0 + s;
            m = tp * tn / den;
            alpha = (tn + tp) / den;
            beta = -tp / den;
        } else {
            const double den = 2.0 * n1 * n0 + s;
            m = (n0 * tp + n1 * tn) / den;
            alpha = (n0 + n1) / den;
            beta = -n1 / den;
        }
        a.coef[2 * k] = (float)alpha;
        a.coef[2 * k + 1] = (float)beta;
        a.closs[k] = 1.0 - m;
    }
}

template <class T>
struct LkBinProb {
    __device__ __forceinline__ void get(const LkAnyArgs& a, int i, int, float& p, float& y) const {
        p = lk_sig(T::load(reinterpret_cast<const typename T::raw*>(a.x)[i]));
        y = T::load(reinterpret_cast<const typename T::raw*>(a.t)[i]);
    }
};

template <class T, class L>
struct LkSoftProb {
    __device__ __forceinline__ void get(const LkAnyArgs& a, int i, int k, float& p, float& y) const {
        const float z = T::load(reinterpret_cast<const typename T::raw*>(a.x)[(long long)i * a.c + k]);
        p = expf(z - a.rowst[2 * i]) * a.rowst[2 * i + 1];
        y = (long long)reinterpret_cast<const L*>(a.t)[i] == (long long)k ? 1.0f : 0.0f;
    }
};

template <class T>
__device__ __forceinline__ void lk_any_cols_bin(const LkAnyArgs& a) {
    lk_any_cols(a, LkBinProb<T>());
}

template <class T, class L>
__device__ __forceinline__ void lk_any_cols_class(const LkAnyArgs& a) {
    lk_any_cols(a, LkSoftProb<T, L>());
}

template <class T>
__device__ __forceinline__ void lk_any_grad_bin(const LkAnyArgs& a) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    const typename T::raw* x = reinterpret_cast<const typename T::raw*>(a.x);
    const typename T::raw* tg = reinterpret_cast<const typename T::raw*>(a.t);
    typename T::raw* g = reinterpret_cast<typename T::raw*>(a.g);
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)a.n; i += stride) {
        const float xi = T::load(x[i]);
        const float p = lk_sig(xi);
        const float q = lk_sig(-xi);
        const float y = T::load(tg[i]);
        const float w = a.rel ? a.rel[i] : 1.0f;
        const float yh = lk_sig(a.amp * (p - 0.5f));
        const float yl = lk_sig(-a.amp * (p - 0.5f));
        const float dm = w * (a.coef[0] * y + a.coef[1]);
        g[i] = T::store(a.gscale * (-dm * a.amp * yh * yl) * p * q);
    }
}

// Row max and 1 / sum exp, one warp per row (8 rows per 256-thread block).
template <class T>
__device__ __forceinline__ void lk_any_rows(const LkAnyArgs& a) {
    const int lane = (int)(threadIdx.x & 31);
    const long long i = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= (long long)a.n) {
        return;
    }
    const typename T::raw* xr = reinterpret_cast<const typename T::raw*>(a.x) + i * a.c;
    float m = LK_NEG_INF;
    float s = 0.0f;
    for (int j = lane; j < a.c; j += 32) {
        const float v = T::load(xr[j]);
        if (v > m) {
            s = s * expf(m - v) + 1.0f;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, m, off);
        const float os = __shfl_xor_sync(0xffffffffu, s, off);
        const float mm = fmaxf(m, om);
        if (mm != LK_NEG_INF) {
            s = s * expf(m - mm) + os * expf(om - mm);
            m = mm;
        }
    }
    if (lane == 0) {
        a.rowst[2 * i] = m;
        a.rowst[2 * i + 1] = 1.0f / s;
    }
}

// Multiclass gradient through the softmax, one warp per row.
template <class T, class L>
__device__ __forceinline__ void lk_any_grad_class(const LkAnyArgs& a) {
    const int lane = (int)(threadIdx.x & 31);
    const long long i = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= (long long)a.n) {
        return;
    }
    const typename T::raw* xr = reinterpret_cast<const typename T::raw*>(a.x) + i * a.c;
    typename T::raw* gr = reinterpret_cast<typename T::raw*>(a.g) + i * a.c;
    const long long label = (long long)reinterpret_cast<const L*>(a.t)[i];
    const float m = a.rowst[2 * i];
    const float inv = a.rowst[2 * i + 1];
    const float w = a.rel ? a.rel[i] : 1.0f;
    const float kinv = 1.0f / (float)a.c;
    float dot = 0.0f;
    for (int pass = 0; pass < 2; ++pass) {
        for (int j = lane; j < a.c; j += 32) {
            const float p = expf(T::load(xr[j]) - m) * inv;
            const float y = (long long)j == label ? 1.0f : 0.0f;
            const float yh = lk_sig(a.amp * (p - 0.5f));
            const float yl = lk_sig(-a.amp * (p - 0.5f));
            const float h = -w * (a.coef[2 * j] * y + a.coef[2 * j + 1]) * a.amp * yh * yl * kinv;
            if (pass == 0) {
                dot += p * h;
            } else {
                gr[j] = T::store(a.gscale * p * (h - dot));
            }
        }
        if (pass == 0) {
            for (int off = 16; off > 0; off >>= 1) {
                dot += __shfl_xor_sync(0xffffffffu, dot, off);
            }
        }
    }
}

// The emulator (tests/emu/anyloss.cpp) defines LK_REGISTER to build its table of kernels.
#ifndef LK_REGISTER
#define LK_REGISTER(NAME)
#endif

#define LK_ANY_KERNEL(NAME, BODY)                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) NAME(LkAnyArgs a) { BODY(a); }                                 \
    LK_REGISTER(NAME)

// One line per kernel (tests/gpu.rs reads the names from the lines starting with "LK_ANY_KERNEL(").
LK_ANY_KERNEL(any_cols_bin_f32, lk_any_cols_bin<LkF32>)
LK_ANY_KERNEL(any_cols_bin_bf16, lk_any_cols_bin<LkBf16>)
LK_ANY_KERNEL(any_cols_bin_f16, lk_any_cols_bin<LkF16>)
LK_ANY_KERNEL(any_grad_bin_f32, lk_any_grad_bin<LkF32>)
LK_ANY_KERNEL(any_grad_bin_bf16, lk_any_grad_bin<LkBf16>)
LK_ANY_KERNEL(any_grad_bin_f16, lk_any_grad_bin<LkF16>)
LK_ANY_KERNEL(any_rows_f32, lk_any_rows<LkF32>)
LK_ANY_KERNEL(any_rows_bf16, lk_any_rows<LkBf16>)
LK_ANY_KERNEL(any_rows_f16, lk_any_rows<LkF16>)
LK_ANY_KERNEL(any_cols_f32_i64, (lk_any_cols_class<LkF32, long long>))
LK_ANY_KERNEL(any_cols_f32_i32, (lk_any_cols_class<LkF32, int>))
LK_ANY_KERNEL(any_cols_bf16_i64, (lk_any_cols_class<LkBf16, long long>))
LK_ANY_KERNEL(any_cols_bf16_i32, (lk_any_cols_class<LkBf16, int>))
LK_ANY_KERNEL(any_cols_f16_i64, (lk_any_cols_class<LkF16, long long>))
LK_ANY_KERNEL(any_cols_f16_i32, (lk_any_cols_class<LkF16, int>))
LK_ANY_KERNEL(any_grad_f32_i64, (lk_any_grad_class<LkF32, long long>))
LK_ANY_KERNEL(any_grad_f32_i32, (lk_any_grad_class<LkF32, int>))
LK_ANY_KERNEL(any_grad_bf16_i64, (lk_any_grad_class<LkBf16, long long>))
LK_ANY_KERNEL(any_grad_bf16_i32, (lk_any_grad_class<LkBf16, int>))
LK_ANY_KERNEL(any_grad_f16_i64, (lk_any_grad_class<LkF16, long long>))
LK_ANY_KERNEL(any_grad_f16_i32, (lk_any_grad_class<LkF16, int>))
