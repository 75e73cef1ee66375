// Fused linear + cross-entropy: hidden states H [N, d] and a classifier W [C, d] give the loss of the logits
// Z = H W^T + adj, adj_j = tau log(prior_j) (optional logit adjustment), and the gradients dH and dW. The GEMMs are
// cuBLAS calls of the host (src/linear_ce.rs); this file holds the one elementwise kernel between them. The host walks
// row tiles of r rows x all C classes: cuBLAS writes the tile's logits H_r W^T in f32 into the workspace `ws`
// [rows, C] (row-major, leading dimension C), lce_rows turns each row into its loss and, with gradients, into the row
// of G = dl/dZ (without the reduction's scale, which the host passes to cuBLAS as alpha) in the input type T, in
// place; then cuBLAS computes dH_r = gscale G W and dW (+)= gscale G^T H_r from it.
//
// Semantics, per row i with target y, per-sample weight s_i, class weights cw (1 when absent), W_sum = sum_j cw_j,
// p = softmax(z_i), u = 1 - p_y:
//   gamma = 0 (cross-entropy, PyTorch's CrossEntropyLoss with weight / label_smoothing eps / ignore_index):
//     l_i = (1 - eps) cw_y (lse_i - z_iy) + (eps / C) sum_j cw_j (lse_i - z_ij)
//     G_ij = a_i p_ij - b_i cw_j (j != y),  a_i = s_i ((1 - eps) cw_y + eps W_sum / C),  b_i = s_i eps / C
//     G_iy = s_i (-(1 - eps) cw_y u + (eps / C)(W_sum p_y - cw_y))
//   gamma > 0 (focal, eps = 0):  l_i = -cw_y u^gamma log p_y, gradient as LkFocal in softmax_family.cu
// The per-row output is s_i l_i; a row whose target is the ignore index has l_i = 0 and a zero row of G.
//
// G in place: row i of G starts where row i of the f32 tile starts (byte 4 i C), so its leading dimension is C
// elements for f32 and 2 C for 16-bit T. For 16-bit T, element j of G overwrites half of f32 element j / 2 of the
// same row, so a block walks its row in ascending segments of S = LK_PER x blockDim.x elements: every thread reads its logits of the
// segment, the block synchronises, then writes the segment's G; the f32 elements it destroys, [s / 2, (s + S) / 2),
// were all read in this or an earlier segment, and later segments' logits are untouched. One block owns one row, so
// rows never interfere.
// 16-bit inputs travel as raw bits (no cuda_fp16.h / cuda_bf16.h).

#define LK_NEG_INF (__int_as_float(0xff800000))

struct LkF32 {
    typedef float raw;
    enum { VEC = 4 };
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};

struct LkBf16 {
    typedef unsigned short raw;
    enum { VEC = 8 };
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

// Every kernel takes this one struct by value (src/linear_ce.rs mirrors it field for field, #[repr(C)]).
struct LkLceArgs {
    const void* y;      // [N] labels (L)
    const float* cw;    // [C] class weights or null
    const float* sw;    // [N] sample weights or null
    const float* adj;   // [C] logit adjustment tau log prior, or null
    float* ws;          // [rows, C] f32 logits of the tile; becomes G (T, leading dimension 4 C / sizeof(T))
    float* loss;        // [N] s_i l_i
    long long ignore_index;
    int c;              // classes C
    int row0, rows;     // the tile: rows row0 .. row0 + rows of H
    int grad;           // 1: write G
    int has_ignore;
    float eps, wsum, gamma;
};

#define LK_PER 8  // elements per thread in one segment of the G pass (a segment is LK_PER x blockDim.x elements)

template <class L>
__device__ __forceinline__ long long lk_label(const LkLceArgs& a, long long row) {
    return (long long)reinterpret_cast<const L*>(a.y)[row];
}

__device__ __forceinline__ bool lk_ignored(const LkLceArgs& a, long long target) {
    return a.has_ignore && target == a.ignore_index;
}

__device__ __forceinline__ void lk_merge(float& m, float& s, float om, float os) {
    const float mm = fmaxf(m, om);
    if (mm == LK_NEG_INF) {
        return;
    }
    s = s * expf(m - mm) + os * expf(om - mm);
    m = mm;
}

// One block (256 threads) per row of the tile: online max and sum of exp over the non-target classes and the
// class-weighted logit sum (pass 1, block reduction in a fixed order), the loss and the gradient coefficients, then
// (with gradients) the row of G in place (pass 2, see the header).
template <class T, class L>
__device__ __forceinline__ void lk_lce_rows(const LkLceArgs& a) {
    __shared__ float red[3][8];
    __shared__ float coef[4];
    const int i = (int)blockIdx.x;
    if (i >= a.rows) {
        return;  // uniform over the block
    }
    const int tid = (int)threadIdx.x;
    const int nt = (int)blockDim.x;
    const long long row = (long long)a.row0 + i;
    const long long target = lk_label<L>(a, row);
    float* z = a.ws + (long long)i * a.c;
    typename T::raw* g = reinterpret_cast<typename T::raw*>(z);
    if (lk_ignored(a, target)) {
        if (tid == 0) {
            a.loss[row] = 0.0f;
        }
        if (a.grad) {
            for (long long j = tid; j < a.c; j += nt) {
                g[j] = T::store(0.0f);  // the logits of this row are not needed
            }
        }
        return;
    }
    const float zy = z[target] + (a.adj ? a.adj[target] : 0.0f);
    const float zref = zy;  // reference of the class-weighted sum (any logit of the row would do)
    float m = LK_NEG_INF;
    float s = 0.0f;
    float zw = 0.0f;
    for (long long j = tid; j < a.c; j += nt) {
        const float v = z[j] + (a.adj ? a.adj[j] : 0.0f);
        zw += (a.cw ? a.cw[j] : 1.0f) * (v - zref);
        if (j == target) {
            continue;
        } else if (v > m) {
            s = s * expf(m - v) + 1.0f;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, m, off);
        const float os = __shfl_xor_sync(0xffffffffu, s, off);
        const float oz = __shfl_xor_sync(0xffffffffu, zw, off);
        lk_merge(m, s, om, os);
        zw += oz;
    }
    const int warp = tid >> 5;
    if ((tid & 31) == 0) {
        red[0][warp] = m;
        red[1][warp] = s;
        red[2][warp] = zw;
    }
    __syncthreads();
    if (tid == 0) {
        m = red[0][0];
        s = red[1][0];
        zw = red[2][0];
        for (int w = 1; w < (nt >> 5); ++w) {
            lk_merge(m, s, red[0][w], red[1][w]);
            zw += red[2][w];
        }
        const float mx = fmaxf(m, zy);
        const float rest = m == LK_NEG_INF ? 0.0f : s * expf(m - mx);
        const float ey = expf(zy - mx);
        const float total = rest + ey;
        // When y holds the maximum, total = 1 + rest and log1p keeps the digits of a small rest.
        const float lnt = zy == mx ? log1pf(rest) : logf(total);
        const float lp = (zy - mx) - lnt;  // log p_y
        const float u = rest / total;      // 1 - p_y without cancellation
        const float py = ey / total;
        const float si = a.sw ? a.sw[row] : 1.0f;
        const float cwy = a.cw ? a.cw[target] : 1.0f;
        coef[0] = mx + logf(total);
        if (a.gamma > 0.0f) {
            const float ug = powf(u, a.gamma);
            a.loss[row] = si * (-(cwy * ug * lp));
            const float focus = u > 0.0f ? a.gamma * ug * py * (lp / u) : 0.0f;
            const float cf = si * cwy * (focus - ug);
            coef[1] = -cf;
            coef[2] = 0.0f;
            coef[3] = cf * u;
        } else {
            const float b = a.eps / (float)a.c;
            // sum_j cw_j (lse - z_j) = W_sum (lse - z_ref) - sum_j cw_j (z_j - z_ref), lse - z_ref = (mx - z_ref) + log total
            const float smooth = a.wsum * ((mx - zref) + logf(total)) - zw;
            a.loss[row] = si * ((1.0f - a.eps) * cwy * (-lp) + b * smooth);
            coef[1] = si * ((1.0f - a.eps) * cwy + b * a.wsum);
            coef[2] = si * b;
            coef[3] = si * (-(1.0f - a.eps) * cwy * u + b * (a.wsum * py - cwy));
        }
    }
    if (!a.grad) {
        return;
    }
    __syncthreads();
    const float lse = coef[0];
    const float ca = coef[1];
    const float cb = coef[2];
    const float gy = coef[3];
    for (long long s0 = 0; s0 < a.c; s0 += (long long)LK_PER * nt) {
        float gv[LK_PER];
#pragma unroll
        for (int q = 0; q < LK_PER; ++q) {
            const long long j = s0 + (long long)q * nt + tid;
            gv[q] = 0.0f;
            if (j < a.c) {
                if (j == target) {
                    gv[q] = gy;
                } else {
                    const float v = z[j] + (a.adj ? a.adj[j] : 0.0f);
                    gv[q] = ca * expf(v - lse) - cb * (a.cw ? a.cw[j] : 1.0f);
                }
            }
        }
        __syncthreads();  // every logit this segment's stores destroy has been read
#pragma unroll
        for (int q = 0; q < LK_PER; ++q) {
            const long long j = s0 + (long long)q * nt + tid;
            if (j < a.c) {
                g[j] = T::store(gv[q]);
            }
        }
    }
}

// The emulator (tests/emu/linear_ce.cpp) defines LK_REGISTER to build its table of kernels.
#ifndef LK_REGISTER
#define LK_REGISTER(NAME)
#endif

#define LK_LCE_KERNEL(NAME, T, L)                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) NAME(LkLceArgs a) { lk_lce_rows<T, L>(a); }                  \
    LK_REGISTER(NAME)

// One line per kernel (tests/gpu.rs reads the names from the lines starting with "LK_LCE_KERNEL(").
LK_LCE_KERNEL(lce_rows_f32_i64, LkF32, long long)
LK_LCE_KERNEL(lce_rows_f32_i32, LkF32, int)
LK_LCE_KERNEL(lce_rows_bf16_i64, LkBf16, long long)
LK_LCE_KERNEL(lce_rows_bf16_i32, LkBf16, int)
LK_LCE_KERNEL(lce_rows_f16_i64, LkF16, long long)
LK_LCE_KERNEL(lce_rows_f16_i32, LkF16, int)
