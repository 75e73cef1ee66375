// Fused softmax cross-entropy: per-row loss and the gradient with respect to the logits in one launch.
//
// Semantics (losskit_losses::CrossEntropy with class-index targets: PyTorch's CrossEntropyLoss, plus optional
// per-sample weights s_i and a temperature T; z = x / T, lse_i = log sum_c exp(z_ic), p = softmax(z_i)):
//   l_i = s_i * [ (1 - eps) * cw[y_i] * (lse_i - z_iy) + (eps / C) * sum_c cw[c] * (lse_i - z_ic) ]
//   dl_i/dx_ij = (s_i / T) * [ (1 - eps) * cw[y_i] * (p_ij - [j == y_i]) + (eps / C) * (W * p_ij - cw[j]) ],
//   W = sum_c cw[c]
// cw = 1 when no class weights are given; a row whose target equals the ignore index has l_i = 0 and a zero gradient.
// The host passes `gscale` (1 / the mean's denominator, or 1) so the gradient row is final when written.
//
// Layout: one warp per row (kernels *_warp, 8 rows per 256-thread block) for small C, one block per row (*_block,
// 256 or 512 threads, as the host chooses) for large C. Pass 1 reads the row once with an online max/sum (Milakov &
// Gimelshein 2018, "Online normalizer calculation for softmax") plus the class-weighted logit sum that label
// smoothing needs; pass 2 re-reads the row and writes the gradient. Rows whose length is a multiple of 16 bytes move
// as 16-byte vectors. For very long rows with a gradient (*_cached, 1024 threads, one block per SM) pass 1 also keeps
// the first `cap` elements of the row in dynamic shared memory, so pass 2 reads them from there rather than from
// device memory: with C = 131072 bf16 (256 KiB rows) and 227 KiB of shared memory, 88% of the row is never read twice,
// and pass 2 takes the rest first, while it is most likely still in L2. Logits are then read from device memory once
// and the gradient written once, the fewest bytes the kernel can move. All arithmetic is f32. 16-bit inputs travel as raw `unsigned short` bits and
// are converted here, so neither cuda_fp16.h nor cuda_bf16.h is needed (NVRTC often cannot find them).
// Reductions use a fixed shuffle/shared-memory pattern, so results are bitwise reproducible run to run.

#define LK_NEG_INF (__int_as_float(0xff800000))
// Dynamic shared memory (the CPU emulation in tests/emu/shim.h defines its own).
#ifndef LK_DYNAMIC_SHARED
#define LK_DYNAMIC_SHARED(TYPE, NAME) extern __shared__ TYPE NAME[]
#endif

struct LkF32 {
    typedef float raw;
    enum { VEC = 4 };  // elements per 16-byte vector load
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};

struct LkBf16 {
    typedef unsigned short raw;
    enum { VEC = 8 };
    // bf16 is the top half of an f32.
    static __device__ __forceinline__ float load(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }
    // Round to nearest, ties to even (as half::bf16::from_f32); NaN stays a quiet NaN. One instruction from sm_80 on.
    static __device__ __forceinline__ unsigned short store(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        unsigned short h;
        asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
        return h;
#endif
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
    enum { VEC = 8 };
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

// VEC elements of T packed in 16 bytes.
template <class T>
union LkPack {
    uint4 v;
    typename T::raw e[T::VEC];
};

#define LK_LOG2E 1.4426950408889634f

// 2^x: one MUFU.EX2 on the GPU (relative error about 2^-22, results below 2^-126 flushed to 0), the C library's on the
// CPU emulation. The exponentials of the two passes go through it: e^d = 2^(d·log2 e) with d = z − m ≤ 0 formed first,
// so that large logits lose nothing to the scaling by log2 e.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float lk_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
#else
static inline float lk_exp2(float x) { return exp2f(x); }
#endif

// Merges the online-softmax state (m2, s2) into (m, s): s is the sum of exp(x - m) over the elements seen.
__device__ __forceinline__ void lk_merge(float& m, float& s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == LK_NEG_INF) {
        return;  // both sides empty
    }
    s = s * expf(m - mm) + s2 * expf(m2 - mm);
    m = mm;
}

// Butterfly reduction over the 32 lanes of a warp; every lane ends with the same (bitwise identical) values because
// each step combines a pair with commutative operations.
__device__ __forceinline__ void lk_warp_reduce(float& m, float& s, float& z) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, off);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, off);
        const float z2 = __shfl_xor_sync(0xffffffffu, z, off);
        lk_merge(m, s, m2, s2);
        z += z2;
    }
}

// Reduction over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ void lk_block_reduce(float& m, float& s, float& z) {
    __shared__ float sh_m[32];
    __shared__ float sh_s[32];
    __shared__ float sh_z[32];
    lk_warp_reduce(m, s, z);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    if (lane == 0) {
        sh_m[warp] = m;
        sh_s[warp] = s;
        sh_z[warp] = z;
    }
    __syncthreads();
    if (warp == 0) {
        m = lane < warps ? sh_m[lane] : LK_NEG_INF;
        s = lane < warps ? sh_s[lane] : 0.0f;
        z = lane < warps ? sh_z[lane] : 0.0f;
        lk_warp_reduce(m, s, z);
        if (lane == 0) {
            sh_m[0] = m;
            sh_s[0] = s;
            sh_z[0] = z;
        }
    }
    __syncthreads();
    m = sh_m[0];
    s = sh_s[0];
    z = sh_z[0];
}

// One row per group of `group` threads (a warp, or the block). Rows are independent. CACHED (block mode only): the
// first `cap` elements of the row (a multiple of T::VEC) are kept in dynamic shared memory between the passes.
template <class T, class L, bool WARP, bool CACHED>
__device__ __forceinline__ void lk_cross_entropy(const typename T::raw* __restrict__ x, const L* __restrict__ y,
                                                 const float* __restrict__ cw, const float* __restrict__ sw,
                                                 typename T::raw* __restrict__ g, float* __restrict__ loss, int n,
                                                 int c, long long ignore_index, int has_ignore, float eps,
                                                 float wsum, float gscale, float inv_t, int cap) {
    const int group = WARP ? 32 : (int)blockDim.x;
    const int t = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const long long row =
        WARP ? (long long)blockIdx.x * (long long)(blockDim.x >> 5) + (long long)(threadIdx.x >> 5) : (long long)blockIdx.x;
    if (row >= (long long)n) {
        return;  // uniform over the group: a whole warp (warp kernels) or the whole block
    }
    const typename T::raw* xr = x + row * (long long)c;
    typename T::raw* gr = g ? g + row * (long long)c : 0;
    // 16-byte vector access needs 16-byte aligned rows (buffers from cuMemAlloc are 256-byte aligned).
    const bool vec = (c % T::VEC) == 0 && (((unsigned long long)x) & 15ull) == 0 &&
                     (((unsigned long long)g) & 15ull) == 0;
    const int nv = c / T::VEC;
    const long long target = (long long)y[row];
    LK_DYNAMIC_SHARED(uint4, lk_row_cache);
    // Vectors [0, nc) of the row live in lk_row_cache between the passes (none unless CACHED, vectorised and asked).
    const int nc = (CACHED && vec && g) ? (cap / T::VEC < nv ? cap / T::VEC : nv) : 0;

    if (has_ignore && target == ignore_index) {
        if (t == 0) {
            loss[row] = 0.0f;
        }
        if (gr) {
            if (vec) {
                LkPack<T> zero;
                zero.v = make_uint4(0u, 0u, 0u, 0u);
                for (int k = t; k < nv; k += group) {
                    reinterpret_cast<uint4*>(gr)[k] = zero.v;
                }
            } else {
                for (int j = t; j < c; j += group) {
                    gr[j] = T::store(0.0f);
                }
            }
        }
        return;  // uniform over the group
    }

    // Pass 1 (on z = x / T): online max m and s = sum exp(z - m); zsum = sum cw[j] * (z_j - z_0). The shift by z_0
    // keeps the smoothing term free of cancellation when a row carries a large common offset.
    const float x0 = T::load(xr[0]) * inv_t;
    float m = LK_NEG_INF;
    float s = 0.0f;
    float z = 0.0f;
    const bool smooth = eps != 0.0f;
    if (vec) {
        // Folds one vector (index k) into (m, s, z).
        auto absorb = [&](const LkPack<T>& p, int k) {
            float v[T::VEC];
            float cm = LK_NEG_INF;
#pragma unroll
            for (int q = 0; q < T::VEC; ++q) {
                v[q] = T::load(p.e[q]) * inv_t;
                cm = fmaxf(cm, v[q]);
            }
            if (cm > m) {
                s *= lk_exp2((m - cm) * LK_LOG2E);
                m = cm;
            }
#pragma unroll
            for (int q = 0; q < T::VEC; ++q) {
                s += lk_exp2((v[q] - m) * LK_LOG2E);
            }
            if (!smooth) {
                // z only serves label smoothing (its term is multiplied by eps / C = 0 otherwise).
            } else if (cw) {
#pragma unroll
                for (int q = 0; q < T::VEC; ++q) {
                    z += cw[k * T::VEC + q] * (v[q] - x0);
                }
            } else {
#pragma unroll
                for (int q = 0; q < T::VEC; ++q) {
                    z += v[q] - x0;
                }
            }
        };
        // Two 16-byte loads in flight per thread before either is used (the same vectors, in the same order, as a
        // loop over one at a time: the result does not change).
        for (int k = t; k < nv; k += 2 * group) {
            const int k1 = k + group;
            LkPack<T> p0, p1;
            p0.v = reinterpret_cast<const uint4*>(xr)[k];
            if (k1 < nv) {
                p1.v = reinterpret_cast<const uint4*>(xr)[k1];
            }
            if (CACHED && k < nc) {
                lk_row_cache[k] = p0.v;
            }
            if (CACHED && k1 < nc) {
                lk_row_cache[k1] = p1.v;
            }
            absorb(p0, k);
            if (k1 < nv) {
                absorb(p1, k1);
            }
        }
    } else {
        for (int j = t; j < c; j += group) {
            const float v = T::load(xr[j]) * inv_t;
            if (v > m) {
                s = s * expf(m - v) + 1.0f;
                m = v;
            } else {
                s += expf(v - m);
            }
            z += cw ? cw[j] * (v - x0) : (v - x0);
        }
    }
    if (WARP) {
        lk_warp_reduce(m, s, z);
    } else {
        lk_block_reduce(m, s, z);
    }

    const float log_s = logf(s);
    const float cwt = cw ? cw[target] : 1.0f;
    const float si = sw ? sw[row] : 1.0f;
    const float b = eps / (float)c;
    if (t == 0) {
        const float xt = T::load(xr[target]) * inv_t;
        // lse - x_t = (m - x_t) + log s; sum_c cw_c (lse - x_c) = W (m - x_0 + log s) - z.
        const float nll = (m - xt) + log_s;
        const float smooth = wsum * ((m - x0) + log_s) - z;
        loss[row] = si * ((1.0f - eps) * cwt * nll + b * smooth);
    }
    if (!gr) {
        return;
    }

    // Pass 2: g_j = r (a (p_j - [j == y]) + b (W p_j - cw_j)), p_j = exp(z_j - m) / s, r = s_i gscale / T. Keeping
    // the two brackets separate (rather than folding them into one affine form in p_j) makes a one-class row's
    // gradient exactly 0.
    // p_j = 2^((z_j − m)·log2 e − log2 s): one FMA for z_j − m, one for the exponent, one MUFU (s is the pass-1 sum
    // of the same exponentials, so a one-class row has p = 1 exactly).
    const float l2s = log2f(s);
    const float inv_s = 1.0f / s;
    const float r = si * gscale * inv_t;
    const float a = (1.0f - eps) * cwt;
    if (vec) {
        const float ra = r * a;
        const int kt = (int)(target / T::VEC);  // the vector holding the target, and its lane
        const int qt = (int)(target % T::VEC);
        // The uncached tail [nc, nv) first (read last in pass 1, so the likeliest to be in L2), then the cached head.
        for (int k0 = nc + t; k0 < nv + nc; k0 += group) {
            const int k = k0 < nv ? k0 : k0 - nv;
            LkPack<T> p;
            p.v = (CACHED && k < nc) ? lk_row_cache[k] : reinterpret_cast<const uint4*>(xr)[k];
            LkPack<T> out;
            if (!smooth) {
                // eps = 0: g_j = r a (p_j − [j == y]).
#pragma unroll
                for (int q = 0; q < T::VEC; ++q) {
                    const float pj = lk_exp2(fmaf(fmaf(T::load(p.e[q]), inv_t, -m), LK_LOG2E, -l2s));
                    out.e[q] = T::store(ra * (k == kt && q == qt ? pj - 1.0f : pj));
                }
            } else {
#pragma unroll
                for (int q = 0; q < T::VEC; ++q) {
                    const int j = k * T::VEC + q;
                    const float pj = lk_exp2(fmaf(fmaf(T::load(p.e[q]), inv_t, -m), LK_LOG2E, -l2s));
                    const float hard = pj - (k == kt && q == qt ? 1.0f : 0.0f);
                    const float soft = wsum * pj - (cw ? cw[j] : 1.0f);
                    out.e[q] = T::store(r * (a * hard + b * soft));
                }
            }
            reinterpret_cast<uint4*>(gr)[k] = out.v;
        }
    } else {
        for (int j = t; j < c; j += group) {
            const float pj = expf(T::load(xr[j]) * inv_t - m) * inv_s;
            const float hard = pj - ((long long)j == target ? 1.0f : 0.0f);
            const float soft = wsum * pj - (cw ? cw[j] : 1.0f);
            gr[j] = T::store(r * (a * hard + b * soft));
        }
    }
}

// Every kernel takes the same parameters; `cap` (elements kept in dynamic shared memory) is read by *_cached only.
#define LK_CE_KERNEL(NAME, T, L, WARP, CACHED, THREADS, MIN_BLOCKS)                                                  \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)                                               \
        NAME(const T::raw* __restrict__ x, const L* __restrict__ y, const float* __restrict__ cw,                   \
             const float* __restrict__ sw, T::raw* __restrict__ g, float* __restrict__ loss, int n, int c,          \
             long long ignore_index, int has_ignore, float eps, float wsum, float gscale, float inv_t, int cap) {   \
        lk_cross_entropy<T, L, WARP, CACHED>(x, y, cw, sw, g, loss, n, c, ignore_index, has_ignore, eps, wsum,     \
                                             gscale, inv_t, cap);                                                 \
    }

LK_CE_KERNEL(ce_f32_i64_warp, LkF32, long long, true, false, 256, 4)
LK_CE_KERNEL(ce_f32_i32_warp, LkF32, int, true, false, 256, 4)
LK_CE_KERNEL(ce_bf16_i64_warp, LkBf16, long long, true, false, 256, 4)
LK_CE_KERNEL(ce_bf16_i32_warp, LkBf16, int, true, false, 256, 4)
LK_CE_KERNEL(ce_f16_i64_warp, LkF16, long long, true, false, 256, 4)
LK_CE_KERNEL(ce_f16_i32_warp, LkF16, int, true, false, 256, 4)
LK_CE_KERNEL(ce_f32_i64_block, LkF32, long long, false, false, 512, 2)
LK_CE_KERNEL(ce_f32_i32_block, LkF32, int, false, false, 512, 2)
LK_CE_KERNEL(ce_bf16_i64_block, LkBf16, long long, false, false, 512, 2)
LK_CE_KERNEL(ce_bf16_i32_block, LkBf16, int, false, false, 512, 2)
LK_CE_KERNEL(ce_f16_i64_block, LkF16, long long, false, false, 512, 2)
LK_CE_KERNEL(ce_f16_i32_block, LkF16, int, false, false, 512, 2)
LK_CE_KERNEL(ce_f32_i64_cached, LkF32, long long, false, true, 1024, 1)
LK_CE_KERNEL(ce_f32_i32_cached, LkF32, int, false, true, 1024, 1)
LK_CE_KERNEL(ce_bf16_i64_cached, LkBf16, long long, false, true, 1024, 1)
LK_CE_KERNEL(ce_bf16_i32_cached, LkBf16, int, false, true, 1024, 1)
LK_CE_KERNEL(ce_f16_i64_cached, LkF16, long long, false, true, 1024, 1)
LK_CE_KERNEL(ce_f16_i32_cached, LkF16, int, false, true, 1024, 1)

// Deterministic sum of the per-row losses times `scale` (one block of 256 threads): each thread adds a fixed strided
// subset in f64, then a fixed tree combines the partial sums.
extern "C" __global__ void __launch_bounds__(256)
    ce_reduce(const float* __restrict__ rows, int n, double scale, double* __restrict__ out) {
    __shared__ double part[256];
    double acc = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        acc += (double)rows[i];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x >> 1; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) {
            part[threadIdx.x] += part[threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = part[0] * scale;
    }
}
