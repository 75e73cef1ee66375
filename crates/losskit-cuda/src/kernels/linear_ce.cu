// Fused linear + cross-entropy: hidden states H [N, d] and a classifier W [C, d] give the loss of the logits
// Z = H W^T + adj, adj_j = tau log(prior_j) (optional logit adjustment), and the gradients dH and dW, without the N x C
// logits ever existing: the host (src/linear_ce.rs) walks row chunks x class chunks and every kernel here works on one
// chunk-sized f32 tile of logits in a workspace `ws` [rows, cols] (row-major, leading dimension `cols`).
//
// Semantics, per row i with target y, per-sample weight s_i, class weights cw (1 when absent), W_sum = sum_j cw_j,
// r_i = s_i * gscale (gscale = 1 / the Mean's denominator sum_i s_i cw_{y_i}, or 1), p = softmax(z_i), u = 1 - p_y:
//   gamma = 0 (cross-entropy, PyTorch's CrossEntropyLoss with weight / label_smoothing eps / ignore_index):
//     l_i = (1 - eps) cw_y (lse_i - z_iy) + (eps / C) sum_j cw_j (lse_i - z_ij)
//     dl_i/dz_ij = a_i p_ij - b_i cw_j (j != y),  a_i = r_i ((1 - eps) cw_y + eps W_sum / C),  b_i = r_i eps / C
//     dl_i/dz_iy = r_i (-(1 - eps) cw_y u + (eps / C)(W_sum p_y - cw_y))
//   gamma > 0 (focal, eps = 0):  l_i = -cw_y u^gamma log p_y, gradient as LkFocal in softmax_family.cu
// The per-row output is s_i l_i; a row whose target is the ignore index has l_i = 0 and a zero gradient row.
// dH = G W, dW = G^T H with G the [N, C] gradient of the (reduced) loss with respect to Z, formed tile by tile.
//
// Launch sequence (the host's, also replayed by tests/emu/linear_ce.cpp):
//   pass 1, for each row chunk, for each class chunk: lce_logits (tile GEMM) then lce_stats (online max and sum of
//     exp over the non-target classes, the target logit and the class-weighted logit sum, merged into st [N, 8]);
//   lce_finish: per row, loss and the gradient coefficients (lse, a, b, g_y) into co [N, 4];
//   pass 2 (with gradients), for each class chunk, for each row chunk: lce_logits again, lce_grad (tile -> G in
//     place), lce_dh (dh [N, d] f32 += G W_chunk), lce_dw (dw [cols, d] f32 += G^T H_chunk); then lce_cast_dw writes
//     the class chunk of dW in the input type; at the end lce_cast_dh writes dH.
// The GEMMs are plain shared-memory tiles (64 x 64 outputs per 256-thread block, 4 x 4 per thread, k-steps of 16) with
// f32 accumulation; every output element is summed by one thread in a fixed order, so results are bitwise
// reproducible. 16-bit inputs travel as raw bits (no cuda_fp16.h / cuda_bf16.h).

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
    const void* h;      // [N, d] hidden states (element type T)
    const void* w;      // [C, d] classifier (T)
    const void* y;      // [N] labels (L)
    const float* cw;    // [C] class weights or null
    const float* sw;    // [N] sample weights or null
    const float* adj;   // [C] logit adjustment tau log prior, or null
    float* ws;          // [rows, cols] logits / gradient tile
    float* st;          // [N, 8] pass-1 state: m, rest, z_y, zw, z_ref
    float* co;          // [N, 4] lse, a, b, g_y
    float* loss;        // [N] s_i l_i
    float* dh;          // [N, d] f32 accumulator of dH
    float* dw;          // [chunk_classes, d] f32 accumulator of one class chunk of dW
    void* dh_out;       // [N, d] dH in T
    void* dw_out;       // [C, d] dW in T
    long long ignore_index;
    int n, c, d;
    int row0, rows, col0, cols;
    int has_ignore;
    float eps, wsum, gscale, gamma;
};

#define LK_ST 8
#define LK_CO 4

template <class L>
__device__ __forceinline__ long long lk_label(const LkLceArgs& a, long long row) {
    return (long long)reinterpret_cast<const L*>(a.y)[row];
}

__device__ __forceinline__ bool lk_ignored(const LkLceArgs& a, long long target) {
    return a.has_ignore && target == a.ignore_index;
}

// ---- tile GEMM: out(i, j) (+)= sum_k A(i, k) B(k, j) for i < M, j < N, k < K.

#define LK_TM 64
#define LK_TK 16

// Operand accessors; KC says whether consecutive k are adjacent in memory (picks the coalesced load order).
template <class T>
struct LkHRows {  // A(i, k) = H[row0 + i, k]
    enum { KC = 1 };
    const typename T::raw* p;
    int d;
    __device__ __forceinline__ float get(int i, int k) const { return T::load(p[(long long)i * d + k]); }
};
template <class T>
struct LkWRowsT {  // B(k, j) = W[col0 + j, k]
    enum { KC = 1 };
    const typename T::raw* p;
    int d;
    __device__ __forceinline__ float get(int k, int j) const { return T::load(p[(long long)j * d + k]); }
};
struct LkG {  // A(i, k) = G[i, k] (leading dimension cols)
    enum { KC = 1 };
    const float* p;
    int ld;
    __device__ __forceinline__ float get(int i, int k) const { return p[(long long)i * ld + k]; }
};
struct LkGT {  // A(i, k) = G[k, i]
    enum { KC = 0 };
    const float* p;
    int ld;
    __device__ __forceinline__ float get(int i, int k) const { return p[(long long)k * ld + i]; }
};
template <class T>
struct LkRowsN {  // B(k, j) = X[k, j] (leading dimension d): W or H rows of the chunk
    enum { KC = 0 };
    const typename T::raw* p;
    int d;
    __device__ __forceinline__ float get(int k, int j) const { return T::load(p[(long long)k * d + j]); }
};

// Loads a 16 x 64 slab of operand `op` into sh[k][r]: r indexes the 64 rows (of A) or columns (of B) of the tile.
template <class Op, bool IS_A>
__device__ __forceinline__ void lk_load(const Op& op, float (*sh)[LK_TM], int base, int limit, int k0, int kmax) {
    const int t = (int)threadIdx.x;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int e = t + 256 * q;
        const int kk = Op::KC ? (e % LK_TK) : (e / LK_TM);
        const int r = Op::KC ? (e / LK_TK) : (e % LK_TM);
        const int k = k0 + kk;
        const int idx = base + r;
        float v = 0.0f;
        if (idx < limit && k < kmax) {
            v = IS_A ? op.get(idx, k) : op.get(k, idx);
        }
        sh[kk][r] = v;
    }
}

// acc[q][p] = sum_k A(i0 + ty + 16q, k) B(k, j0 + tx + 16p) for the block's tile (blockIdx.x walks the tiles row-major).
template <class OA, class OB>
__device__ __forceinline__ void lk_gemm_tile(const OA& A, const OB& B, int M, int N, int K, int& i0, int& j0,
                                             float (&acc)[4][4]) {
    __shared__ float sa[LK_TK][LK_TM];
    __shared__ float sb[LK_TK][LK_TM];
    const int tiles_n = (N + LK_TM - 1) / LK_TM;
    i0 = (int)(blockIdx.x / tiles_n) * LK_TM;
    j0 = (int)(blockIdx.x % tiles_n) * LK_TM;
    const int ty = (int)threadIdx.x / 16;
    const int tx = (int)threadIdx.x % 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            acc[q][p] = 0.0f;
        }
    }
    for (int k0 = 0; k0 < K; k0 += LK_TK) {
        lk_load<OA, true>(A, sa, i0, M, k0, K);
        lk_load<OB, false>(B, sb, j0, N, k0, K);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LK_TK; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                av[q] = sa[kk][ty + 16 * q];
                bv[q] = sb[kk][tx + 16 * q];
            }
#pragma unroll
            for (int q = 0; q < 4; ++q) {
#pragma unroll
                for (int p = 0; p < 4; ++p) {
                    acc[q][p] += av[q] * bv[p];
                }
            }
        }
        __syncthreads();
    }
}

// ws[i, j] = H[row0 + i] . W[col0 + j] + adj[col0 + j]
template <class T>
__device__ __forceinline__ void lk_lce_logits(const LkLceArgs& a) {
    const typename T::raw* h = reinterpret_cast<const typename T::raw*>(a.h) + (long long)a.row0 * a.d;
    const typename T::raw* w = reinterpret_cast<const typename T::raw*>(a.w) + (long long)a.col0 * a.d;
    LkHRows<T> A{h, a.d};
    LkWRowsT<T> B{w, a.d};
    float acc[4][4];
    int i0, j0;
    lk_gemm_tile(A, B, a.rows, a.cols, a.d, i0, j0, acc);
    const int ty = (int)threadIdx.x / 16;
    const int tx = (int)threadIdx.x % 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int i = i0 + ty + 16 * q;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const int j = j0 + tx + 16 * p;
            if (i < a.rows && j < a.cols) {
                a.ws[(long long)i * a.cols + j] = acc[q][p] + (a.adj ? a.adj[a.col0 + j] : 0.0f);
            }
        }
    }
}

// dh[row0 + i, k] (+)= sum_j G[i, j] W[col0 + j, k]; the first class chunk assigns.
template <class T>
__device__ __forceinline__ void lk_lce_dh(const LkLceArgs& a) {
    LkG A{a.ws, a.cols};
    LkRowsN<T> B{reinterpret_cast<const typename T::raw*>(a.w) + (long long)a.col0 * a.d, a.d};
    float acc[4][4];
    int i0, j0;
    lk_gemm_tile(A, B, a.rows, a.d, a.cols, i0, j0, acc);
    const int ty = (int)threadIdx.x / 16;
    const int tx = (int)threadIdx.x % 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int i = i0 + ty + 16 * q;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const int k = j0 + tx + 16 * p;
            if (i < a.rows && k < a.d) {
                float* o = a.dh + (long long)(a.row0 + i) * a.d + k;
                *o = (a.col0 == 0 ? 0.0f : *o) + acc[q][p];
            }
        }
    }
}

// dw[j, k] (+)= sum_i G[i, j] H[row0 + i, k]; the first row chunk assigns.
template <class T>
__device__ __forceinline__ void lk_lce_dw(const LkLceArgs& a) {
    LkGT A{a.ws, a.cols};
    LkRowsN<T> B{reinterpret_cast<const typename T::raw*>(a.h) + (long long)a.row0 * a.d, a.d};
    float acc[4][4];
    int i0, j0;
    lk_gemm_tile(A, B, a.cols, a.d, a.rows, i0, j0, acc);
    const int ty = (int)threadIdx.x / 16;
    const int tx = (int)threadIdx.x % 16;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int j = i0 + ty + 16 * q;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const int k = j0 + tx + 16 * p;
            if (j < a.cols && k < a.d) {
                float* o = a.dw + (long long)j * a.d + k;
                *o = (a.row0 == 0 ? 0.0f : *o) + acc[q][p];
            }
        }
    }
}

// ---- pass 1: online softmax statistics of a tile, merged into st (one warp per row, 8 rows per block).

__device__ __forceinline__ void lk_merge(float& m, float& s, float om, float os) {
    const float mm = fmaxf(m, om);
    if (mm == LK_NEG_INF) {
        return;
    }
    s = s * expf(m - mm) + os * expf(om - mm);
    m = mm;
}

template <class L>
__device__ __forceinline__ void lk_lce_stats(const LkLceArgs& a) {
    const int lane = (int)(threadIdx.x & 31);
    const int i = (int)blockIdx.x * (int)(blockDim.x >> 5) + (int)(threadIdx.x >> 5);
    if (i >= a.rows) {
        return;  // uniform over the warp
    }
    const long long row = (long long)a.row0 + i;
    const long long target = lk_label<L>(a, row);
    if (lk_ignored(a, target)) {
        return;
    }
    const float* z = a.ws + (long long)i * a.cols;
    float* st = a.st + row * LK_ST;
    const bool first = a.col0 == 0;
    const float zref = first ? z[0] : st[4];
    float m = LK_NEG_INF;
    float s = 0.0f;
    float zw = 0.0f;
    for (int j = lane; j < a.cols; j += 32) {
        const float v = z[j];
        const long long col = (long long)a.col0 + j;
        if (col == target) {
            st[2] = v;  // exactly one lane of one chunk sees the target
        } else if (v > m) {
            s = s * expf(m - v) + 1.0f;
            m = v;
        } else {
            s += expf(v - m);
        }
        zw += (a.cw ? a.cw[col] : 1.0f) * (v - zref);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float om = __shfl_xor_sync(0xffffffffu, m, off);
        const float os = __shfl_xor_sync(0xffffffffu, s, off);
        const float oz = __shfl_xor_sync(0xffffffffu, zw, off);
        lk_merge(m, s, om, os);
        zw += oz;
    }
    if (lane == 0) {
        if (first) {
            st[0] = m;
            st[1] = s;
            st[3] = zw;
            st[4] = zref;
        } else {
            float pm = st[0];
            float ps = st[1];
            lk_merge(pm, ps, m, s);
            st[0] = pm;
            st[1] = ps;
            st[3] += zw;
        }
    }
}

// ---- per row: loss and gradient coefficients (one thread per row, all N rows).

template <class L>
__device__ __forceinline__ void lk_lce_finish(const LkLceArgs& a) {
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (long long)a.n) {
        return;
    }
    float* co = a.co + row * LK_CO;
    const long long target = lk_label<L>(a, row);
    if (lk_ignored(a, target)) {
        a.loss[row] = 0.0f;
        co[0] = 0.0f;
        co[1] = 0.0f;
        co[2] = 0.0f;
        co[3] = 0.0f;
        return;
    }
    const float* st = a.st + row * LK_ST;
    const float m = st[0];
    const float rest0 = st[1];
    const float zy = st[2];
    const float zw = st[3];
    const float zref = st[4];
    const float mx = fmaxf(m, zy);
    const float rest = m == LK_NEG_INF ? 0.0f : rest0 * expf(m - mx);
    const float ey = expf(zy - mx);
    const float total = rest + ey;
    // When y holds the maximum, total = 1 + rest and log1p keeps the digits of a small rest.
    const float lnt = zy == mx ? log1pf(rest) : logf(total);
    const float lp = (zy - mx) - lnt;  // log p_y
    const float u = rest / total;      // 1 - p_y without cancellation
    const float py = ey / total;
    const float si = a.sw ? a.sw[row] : 1.0f;
    const float r = si * a.gscale;
    const float cwy = a.cw ? a.cw[target] : 1.0f;
    co[0] = mx + logf(total);
    if (a.gamma > 0.0f) {
        const float ug = powf(u, a.gamma);
        a.loss[row] = si * (-(cwy * ug * lp));
        const float focus = u > 0.0f ? a.gamma * ug * py * (lp / u) : 0.0f;
        const float coef = r * cwy * (focus - ug);
        co[1] = -coef;
        co[2] = 0.0f;
        co[3] = coef * u;
    } else {
        const float b = a.eps / (float)a.c;
        // sum_j cw_j (lse - z_j) = W_sum (lse - z_ref) - sum_j cw_j (z_j - z_ref), lse - z_ref = (mx - z_ref) + log total
        const float smooth = a.wsum * ((mx - zref) + logf(total)) - zw;
        a.loss[row] = si * ((1.0f - a.eps) * cwy * (-lp) + b * smooth);
        co[1] = r * ((1.0f - a.eps) * cwy + b * a.wsum);
        co[2] = r * b;
        co[3] = r * (-(1.0f - a.eps) * cwy * u + b * (a.wsum * py - cwy));
    }
}

// ---- pass 2: the tile of logits becomes the tile of G in place (grid-stride over rows x cols).

template <class L>
__device__ __forceinline__ void lk_lce_grad(const LkLceArgs& a) {
    const long long total = (long long)a.rows * a.cols;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long i = e / a.cols;
        const int j = (int)(e - i * a.cols);
        const long long row = (long long)a.row0 + i;
        const long long target = lk_label<L>(a, row);
        float g = 0.0f;
        if (!lk_ignored(a, target)) {
            const float* co = a.co + row * LK_CO;
            const long long col = (long long)a.col0 + j;
            if (col == target) {
                g = co[3];
            } else {
                g = co[1] * expf(a.ws[e] - co[0]) - co[2] * (a.cw ? a.cw[col] : 1.0f);
            }
        }
        a.ws[e] = g;
    }
}

// ---- f32 accumulators to the output type.

template <class T>
__device__ __forceinline__ void lk_cast(const float* src, typename T::raw* dst, long long count) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < count; e += stride) {
        dst[e] = T::store(src[e]);
    }
}

template <class T>
__device__ __forceinline__ void lk_lce_cast_dh(const LkLceArgs& a) {
    lk_cast<T>(a.dh, reinterpret_cast<typename T::raw*>(a.dh_out), (long long)a.n * a.d);
}

template <class T>
__device__ __forceinline__ void lk_lce_cast_dw(const LkLceArgs& a) {
    lk_cast<T>(a.dw, reinterpret_cast<typename T::raw*>(a.dw_out) + (long long)a.col0 * a.d, (long long)a.cols * a.d);
}

// The emulator (tests/emu/linear_ce.cpp) defines LK_REGISTER to build its table of kernels.
#ifndef LK_REGISTER
#define LK_REGISTER(NAME)
#endif

#define LK_LCE_KERNEL(NAME, BODY, P)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256) NAME(LkLceArgs a) { BODY<P>(a); }                              \
    LK_REGISTER(NAME)

// One line per kernel (tests/gpu.rs reads the names from the lines starting with "LK_LCE_KERNEL(").
LK_LCE_KERNEL(lce_logits_f32, lk_lce_logits, LkF32)
LK_LCE_KERNEL(lce_logits_bf16, lk_lce_logits, LkBf16)
LK_LCE_KERNEL(lce_logits_f16, lk_lce_logits, LkF16)
LK_LCE_KERNEL(lce_dh_f32, lk_lce_dh, LkF32)
LK_LCE_KERNEL(lce_dh_bf16, lk_lce_dh, LkBf16)
LK_LCE_KERNEL(lce_dh_f16, lk_lce_dh, LkF16)
LK_LCE_KERNEL(lce_dw_f32, lk_lce_dw, LkF32)
LK_LCE_KERNEL(lce_dw_bf16, lk_lce_dw, LkBf16)
LK_LCE_KERNEL(lce_dw_f16, lk_lce_dw, LkF16)
LK_LCE_KERNEL(lce_cast_dh_f32, lk_lce_cast_dh, LkF32)
LK_LCE_KERNEL(lce_cast_dh_bf16, lk_lce_cast_dh, LkBf16)
LK_LCE_KERNEL(lce_cast_dh_f16, lk_lce_cast_dh, LkF16)
LK_LCE_KERNEL(lce_cast_dw_f32, lk_lce_cast_dw, LkF32)
LK_LCE_KERNEL(lce_cast_dw_bf16, lk_lce_cast_dw, LkBf16)
LK_LCE_KERNEL(lce_cast_dw_f16, lk_lce_cast_dw, LkF16)
LK_LCE_KERNEL(lce_stats_i64, lk_lce_stats, long long)
LK_LCE_KERNEL(lce_stats_i32, lk_lce_stats, int)
LK_LCE_KERNEL(lce_finish_i64, lk_lce_finish, long long)
LK_LCE_KERNEL(lce_finish_i32, lk_lce_finish, int)
LK_LCE_KERNEL(lce_grad_i64, lk_lce_grad, long long)
LK_LCE_KERNEL(lce_grad_i32, lk_lce_grad, int)
