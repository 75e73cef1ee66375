// Pairwise metric-learning losses on similarity tiles (losskit_losses::{MultiSimilarity, Contrastive, SupCon}).
//
// The host (src/pairwise.rs) L2-normalises the embeddings (pw_normalize_*), counts each row's same-label and
// other-label columns (pw_label_counts, for the zero rules), then, for each tile of rows r0..r0+t, lets cuBLAS write
// the similarity tile S = H[r0..r0+t] · Hᵀ (t × B, row-major) into one workspace, runs one kernel over the tile (one
// block per anchor row) that turns S into the coefficient tile dL/dS in place (plus the row's loss and tallies), and
// lets two GEMMs accumulate dH += dS·H and dH += dSᵀ·H[r0..r0+t]. For the Euclidean distance the tile kernel reads
// v = sqrt(max(‖hᵢ‖² + ‖hⱼ‖² − 2·sᵢⱼ, 0)) and writes −wᵢⱼ = −(dL/dv)/v (0 at v = 0, as torch.cdist), keeping Σⱼ wᵢⱼ
// per row; pw_colsum adds the column sums Σᵢ wᵢⱼ; pw_finish_* adds those diagonal terms, applies the reduction's scale
// and the normalisation's backward pass. pw_reduce sums per-row tables in f64 into one small buffer, the host's only
// download (value, scale, zero rules, input check). The contrastive loss under Mean first needs the numbers of
// non-zero terms of the whole batch: pw_contrastive_stats runs over every tile before, pw_reduce sums them, and
// pw_contrastive reads the scales from the device.
// This is the math of losskit_losses::embedding::driver (its tiled mode) and the three PairKernel implementations.
//
// Every kernel takes one LkArgs by value: device pointers p[], floats f[] and ints i[] (what each holds is listed
// above each kernel). All arithmetic is f32 (pw_reduce: f64); 16-bit inputs travel as raw `unsigned short` bits.
// Reductions run in a fixed order (warp butterflies, shared-memory trees), so results are bitwise reproducible.
// blockDim.x must be a power of two, from 32 to 1024.

struct LkArgs {
    unsigned long long p[8];
    float f[8];
    int i[8];
};

#define PW_INF (__int_as_float(0x7f800000))
#define PW_NEG_INF (__int_as_float(0xff800000))

#ifndef LK_EMULATED
__device__ __forceinline__ float pw_h2f(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short pw_f2h(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#endif

struct PwF32 {
    typedef float raw;
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float v) { return v; }
};
struct PwBf16 {
    typedef unsigned short raw;
    static __device__ __forceinline__ float load(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }
    // Round to nearest, ties to even (as half::bf16::from_f32); NaN stays a quiet NaN.
    static __device__ __forceinline__ unsigned short store(float f) {
        unsigned int u = __float_as_uint(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            return (unsigned short)((u >> 16) | 0x0040u);
        }
        u += 0x7fffu + ((u >> 16) & 1u);
        return (unsigned short)(u >> 16);
    }
};
struct PwF16 {
    typedef unsigned short raw;
    static __device__ __forceinline__ float load(unsigned short h) { return pw_h2f(h); }
    static __device__ __forceinline__ unsigned short store(float f) { return pw_f2h(f); }
};

// Block-wide reductions: a butterfly over each warp (__shfl_xor_sync; every lane ends with the same value, since each
// step adds the same two operands on both lanes), the warps' partials through shared memory, then the same butterfly
// over the partials in every warp. A fixed order, so results are bitwise reproducible; two barriers per reduction.
// blockDim.x must be a multiple of 32. `sh` needs blockDim.x / 32 floats.
__device__ __forceinline__ float pw_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}
__device__ __forceinline__ float pw_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}
__device__ __forceinline__ float pw_block_sum(float v, float* sh) {
    v = pw_warp_sum(v);
    const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) {
        sh[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    v = pw_warp_sum(lane < nw ? sh[lane] : 0.0f);
    __syncthreads();
    return v;
}
__device__ __forceinline__ float pw_block_max(float v, float* sh) {
    v = pw_warp_max(v);
    const int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) {
        sh[threadIdx.x >> 5] = v;
    }
    __syncthreads();
    v = pw_warp_max(lane < nw ? sh[lane] : PW_NEG_INF);
    __syncthreads();
    return v;
}
__device__ __forceinline__ float pw_block_min(float v, float* sh) {
    return -pw_block_max(-v, sh);
}

// p0 x raw [n, d]; p1 h f32 [n, d] out; p2 norms f32 [n] out; p3 squared norms of h f32 [n] out.
// i0 n, i1 d, i2 normalise (else copy). f0 eps (1e-12: F.normalize's max(‖x‖, eps)).
template <class T>
__device__ __forceinline__ void pw_normalize(const LkArgs& a) {
    __shared__ float sh[32];
    const typename T::raw* x = (const typename T::raw*)a.p[0];
    float* h = (float*)a.p[1];
    float* norms = (float*)a.p[2];
    float* sq = (float*)a.p[3];
    const int d = a.i[1];
    const long long row = blockIdx.x;
    if (row >= a.i[0]) {
        return;
    }
    const typename T::raw* xr = x + row * d;
    float* hr = h + row * d;
    float acc = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const float v = T::load(xr[j]);
        acc += v * v;
    }
    const float norm = sqrtf(pw_block_sum(acc, sh));
    const float inv = a.i[2] ? 1.0f / fmaxf(norm, a.f[0]) : 1.0f;
    float acc2 = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const float v = T::load(xr[j]) * inv;
        hr[j] = v;
        acc2 += v * v;
    }
    const float s2 = pw_block_sum(acc2, sh);
    if (threadIdx.x == 0) {
        norms[row] = norm;
        sq[row] = s2;
    }
}

// The value v of column j of an anchor row: the similarity itself (cosine) or the distance from the expansion.
__device__ __forceinline__ float pw_value(const float* s, const float* sq, float sq_i, int euclid, int j) {
    if (!euclid) {
        return s[j];
    }
    return sqrtf(fmaxf(sq_i + sq[j] - 2.0f * s[j], 0.0f));
}

// Writes the coefficient dL/dv of column j into the tile: as is (cosine) or −(dL/dv)/v (Euclidean), and returns the
// w it contributes to the row's Σ w.
__device__ __forceinline__ float pw_store(float* s, int euclid, int j, float g, float v) {
    if (!euclid) {
        s[j] = g;
        return 0.0f;
    }
    const float w = v > 0.0f ? g / v : 0.0f;
    s[j] = -w;
    return w;
}

// Common tile-kernel arguments: p0 tile S f32 [t, B] (in: similarities; out: coefficients), p1 labels i64 [B],
// p2 squared norms f32 [B], p3 per-row loss f32 [B] out (at the global row), p4 per-row tallies f32 [B, 4] out
// (tally 3 is the row's Σ w for the Euclidean chain rule), i0 r0, i1 t, i2 B, i3 euclid, i4 grad.
struct PwRow {
    float* s;
    const long long* labels;
    const float* sq;
    float sq_i;
    long long label;
    int b;
    int self_col;
    int euclid;
    int grad;
    float sign;
};

__device__ __forceinline__ bool pw_row_setup(const LkArgs& a, PwRow& r) {
    const int k = blockIdx.x;
    if (k >= a.i[1]) {
        return false;
    }
    const int i = a.i[0] + k;
    r.b = a.i[2];
    r.s = (float*)a.p[0] + (long long)k * r.b;
    r.labels = (const long long*)a.p[1];
    r.sq = (const float*)a.p[2];
    r.euclid = a.i[3];
    r.grad = a.i[4];
    r.sq_i = r.euclid ? r.sq[i] : 0.0f;
    r.label = r.labels[i];
    r.self_col = i;
    r.sign = r.euclid ? -1.0f : 1.0f;
    return true;
}

__device__ __forceinline__ void pw_row_out(const LkArgs& a, float loss, float t0, float t1, float t2, float wsum) {
    if (threadIdx.x == 0) {
        const int i = a.i[0] + blockIdx.x;
        ((float*)a.p[3])[i] = loss;
        float* tally = (float*)a.p[4] + 4LL * i;
        tally[0] = t0;
        tally[1] = t1;
        tally[2] = t2;
        tally[3] = wsum;
    }
}

// Multi-similarity (PairKernel of embedding/multi_similarity.rs). f0 α, f1 β, f2 λ, f3 ε; i5 miner, i6 skip_anchors.
// Tallies: [ℓᵢ, |Pᵢ| kept, |Nᵢ| kept].
extern "C" __global__ void pw_multi_similarity(const LkArgs a) {
    __shared__ float sh[32];
    PwRow r;
    if (!pw_row_setup(a, r)) {
        return;
    }
    const float alpha = a.f[0], beta = a.f[1], base = a.f[2];
    const int miner = a.i[5], skip = a.i[6];
    const float sg = r.sign;
    // The miner's bounds: min closeness over positives, max over negatives (±∞ without the miner).
    float min_pos = PW_NEG_INF, max_neg = PW_INF, eps = 0.0f;
    if (miner) {
        eps = a.f[3];
        float lo = PW_INF, hi = PW_NEG_INF;
        for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
            const float u = sg * pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
            const bool same = r.labels[j] == r.label;
            if (same && j != r.self_col) {
                lo = fminf(lo, u);
            }
            if (!same) {
                hi = fmaxf(hi, u);
            }
        }
        min_pos = pw_block_min(lo, sh);
        max_neg = pw_block_max(hi, sh);
    }
    // Exponents α·σ(λ − v) (positives) and β·σ(v − λ) (negatives); kind: 1 kept positive, 2 kept negative, 0 else.
    const float ap = alpha * sg, bn = beta * sg;
    float mp = 0.0f, mn = 0.0f, np = 0.0f, nn = 0.0f;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        const bool same = r.labels[j] == r.label;
        if (same && j != r.self_col && sg * v - eps < max_neg) {
            mp = fmaxf(mp, ap * (base - v));
            np += 1.0f;
        } else if (!same && sg * v + eps > min_pos) {
            mn = fmaxf(mn, bn * (v - base));
            nn += 1.0f;
        }
    }
    mp = pw_block_max(mp, sh);
    mn = pw_block_max(mn, sh);
    np = pw_block_sum(np, sh);
    nn = pw_block_sum(nn, sh);
    if (skip && (np == 0.0f || nn == 0.0f)) {
        if (r.grad) {
            for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
                r.s[j] = 0.0f;
            }
        }
        pw_row_out(a, 0.0f, 0.0f, np, nn, 0.0f);
        return;
    }
    float zp = 0.0f, zn = 0.0f;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        const bool same = r.labels[j] == r.label;
        if (same && j != r.self_col && sg * v - eps < max_neg) {
            zp += expf(ap * (base - v) - mp);
        } else if (!same && sg * v + eps > min_pos) {
            zn += expf(bn * (v - base) - mn);
        }
    }
    // The "1 +" inside each log: e^{−m}.
    zp = pw_block_sum(zp, sh) + expf(-mp);
    zn = pw_block_sum(zn, sh) + expf(-mn);
    float wsum = 0.0f;
    if (r.grad) {
        // ∂ℓ/∂v: −σ·softmax for kept positives, +σ·softmax for kept negatives, 0 elsewhere (self column included).
        const float cp = -sg / zp, cn = sg / zn;
        for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
            const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
            const bool same = r.labels[j] == r.label;
            float g = 0.0f;
            if (same && j != r.self_col && sg * v - eps < max_neg) {
                g = cp * expf(ap * (base - v) - mp);
            } else if (!same && sg * v + eps > min_pos) {
                g = cn * expf(bn * (v - base) - mn);
            }
            wsum += pw_store(r.s, r.euclid, j, g, v);
        }
        wsum = pw_block_sum(wsum, sh);
    }
    const float lp = np > 0.0f ? mp + logf(zp) : 0.0f;
    const float ln = nn > 0.0f ? mn + logf(zn) : 0.0f;
    const float loss = lp / alpha + ln / beta;
    pw_row_out(a, loss, loss, np, nn, wsum);
}

// Contrastive statistics: the numbers of positive terms σ(m⁺ − v) > 0 and negative terms σ(v − m⁻) > 0 of each row,
// written as tallies [#ℓ⁺ > 0, #ℓ⁻ > 0]. f0 m⁺, f1 m⁻.
extern "C" __global__ void pw_contrastive_stats(const LkArgs a) {
    __shared__ float sh[32];
    PwRow r;
    if (!pw_row_setup(a, r)) {
        return;
    }
    const float pm = a.f[0], nm = a.f[1], sg = r.sign;
    float cp = 0.0f, cn = 0.0f;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        const bool same = r.labels[j] == r.label;
        if (same && j != r.self_col) {
            cp += sg * (pm - v) > 0.0f ? 1.0f : 0.0f;
        } else if (!same) {
            cn += sg * (v - nm) > 0.0f ? 1.0f : 0.0f;
        }
    }
    cp = pw_block_sum(cp, sh);
    cn = pw_block_sum(cn, sh);
    pw_row_out(a, 0.0f, cp, cn, 0.0f, 0.0f);
}

// Contrastive (embedding/contrastive.rs). f0 m⁺, f1 m⁻, f2 positive-side gradient scale, f3 negative-side scale;
// i5 = 1 (Mean): the scales are 1/#ℓ⁺>0 and 1/#ℓ⁻>0 of the whole batch instead (1 when the count is 0), read from
// p5 = the f64 sums of pw_reduce over the statistics tallies (at p5[4], p5[5]), so no host round trip is needed.
// Tallies: [Σ ℓ⁺, Σ ℓ⁻].
extern "C" __global__ void pw_contrastive(const LkArgs a) {
    __shared__ float sh[32];
    PwRow r;
    if (!pw_row_setup(a, r)) {
        return;
    }
    const float pm = a.f[0], nm = a.f[1], sg = r.sign;
    float sp = a.f[2], sn = a.f[3];
    if (a.i[5]) {
        const double* st = (const double*)a.p[5];
        sp = st[4] > 0.0 ? (float)(1.0 / st[4]) : 1.0f;
        sn = st[5] > 0.0 ? (float)(1.0 / st[5]) : 1.0f;
    }
    float lp = 0.0f, ln = 0.0f, wsum = 0.0f;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        const bool same = r.labels[j] == r.label;
        float g = 0.0f;
        if (same && j != r.self_col) {
            const float t = sg * (pm - v);
            if (t > 0.0f) {
                lp += t;
                g = -sg * sp;
            }
        } else if (!same) {
            const float t = sg * (v - nm);
            if (t > 0.0f) {
                ln += t;
                g = sg * sn;
            }
        }
        if (r.grad) {
            wsum += pw_store(r.s, r.euclid, j, g, v);
        }
    }
    lp = pw_block_sum(lp, sh);
    ln = pw_block_sum(ln, sh);
    if (r.grad) {
        wsum = pw_block_sum(wsum, sh);
    }
    pw_row_out(a, lp + ln, lp, ln, 0.0f, wsum);
}

// SupCon (embedding/supcon.rs). f0 1/τ. Tallies: [ℓᵢ, ℓᵢ > 0]. One pass for the row's max, one for its log-sum-exp
// and the positives, one for the gradient: the whole row is in the tile, so the row-global LSE needs no second tile
// pass.
extern "C" __global__ void pw_supcon(const LkArgs a) {
    __shared__ float sh[32];
    PwRow r;
    if (!pw_row_setup(a, r)) {
        return;
    }
    const float k = r.sign * a.f[0];
    float np = 0.0f, m = PW_NEG_INF;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        if (j == r.self_col) {
            continue;
        }
        const float w = k * pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        m = fmaxf(m, w);
        np += r.labels[j] == r.label ? 1.0f : 0.0f;
    }
    np = pw_block_sum(np, sh);
    if (np == 0.0f) {
        if (r.grad) {
            for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
                r.s[j] = 0.0f;
            }
        }
        pw_row_out(a, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
        return;
    }
    m = pw_block_max(m, sh);
    float z = 0.0f, sum_pos = 0.0f;
    for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
        if (j == r.self_col) {
            continue;
        }
        const float w = k * pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
        z += expf(w - m);
        sum_pos += r.labels[j] == r.label ? w : 0.0f;
    }
    z = pw_block_sum(z, sh);
    sum_pos = pw_block_sum(sum_pos, sh);
    float wsum = 0.0f;
    if (r.grad) {
        // ∂ℓ/∂v = (σ/τ)·(q − [pos]/|P|), 0 at the anchor's own column.
        const float inv_z = 1.0f / z, inv_p = 1.0f / np;
        for (int j = threadIdx.x; j < r.b; j += blockDim.x) {
            const float v = pw_value(r.s, r.sq, r.sq_i, r.euclid, j);
            float g = 0.0f;
            if (j != r.self_col) {
                g = k * (expf(k * v - m) * inv_z);
                if (r.labels[j] == r.label) {
                    g -= k * inv_p;
                }
            }
            wsum += pw_store(r.s, r.euclid, j, g, v);
        }
        wsum = pw_block_sum(wsum, sh);
    }
    const float loss = m + logf(z) - sum_pos / np;
    pw_row_out(a, loss, loss, loss > 0.0f ? 1.0f : 0.0f, 0.0f, wsum);
}

// Per-row pair counts and the row norm, for the host's zero rules and input check: p0 labels i64 [n], p1 norms f32
// [n], p2 out f32 [n, 4] = [#{j ≠ i: yⱼ = yᵢ}, #{j: yⱼ ≠ yᵢ}, ‖xᵢ‖, 0]; i0 n. One block per row.
extern "C" __global__ void pw_label_counts(const LkArgs a) {
    __shared__ float sh[32];
    const int n = a.i[0];
    const int i = blockIdx.x;
    if (i >= n) {
        return;
    }
    const long long* labels = (const long long*)a.p[0];
    const long long li = labels[i];
    float same = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        same += (labels[j] == li && j != i) ? 1.0f : 0.0f;
    }
    same = pw_block_sum(same, sh);
    if (threadIdx.x == 0) {
        float* out = (float*)a.p[2] + 4LL * i;
        out[0] = same;
        out[1] = (float)(n - 1) - same;
        out[2] = ((const float*)a.p[1])[i];
        out[3] = 0.0f;
    }
}

// Column sums in f64 of a per-row table f32 [n, 4] (tallies or counts): p0 table, p1 out f64 [16], written at
// p1[i1 .. i1 + 4]; i0 n. One block; each thread sums a strided set of rows in order, then a fixed shared-memory tree.
extern "C" __global__ void pw_reduce(const LkArgs a) {
    __shared__ double sh[1024];
    const int n = a.i[0];
    const float* t = (const float*)a.p[0];
    double* out = (double*)a.p[1] + a.i[1];
    for (int c = 0; c < 4; ++c) {
        double acc = 0.0;
        for (int r = threadIdx.x; r < n; r += blockDim.x) {
            acc += (double)t[4LL * r + c];
        }
        sh[threadIdx.x] = acc;
        __syncthreads();
        for (int w = blockDim.x >> 1; w > 0; w >>= 1) {
            if ((int)threadIdx.x < w) {
                sh[threadIdx.x] += sh[threadIdx.x + w];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            out[c] = sh[0];
        }
        __syncthreads();
    }
}

// Column sums of a coefficient tile (Euclidean only): col[j] += Σᵢ wᵢⱼ = −Σᵢ tileᵢⱼ, rows summed in order.
// p0 tile [t, B], p1 col f32 [B]; i1 t, i2 B. One thread per column.
extern "C" __global__ void pw_colsum(const LkArgs a) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    const int t = a.i[1], b = a.i[2];
    if (j >= b) {
        return;
    }
    const float* s = (const float*)a.p[0];
    float acc = 0.0f;
    for (int i = 0; i < t; ++i) {
        acc += s[(long long)i * b + j];
    }
    ((float*)a.p[1])[j] -= acc;
}

// The gradient rows: g = scale · (G + (wsumᵢ + colᵢ)·hᵢ), then back through the normalisation
// (gx = (g − (g·h)·h)/‖x‖ when ‖x‖ ≥ eps, else g/eps), written in the input type.
// p0 G f32 [n, d], p1 h f32 [n, d], p2 norms f32 [n], p3 tallies f32 [n, 4] (tally 3 = wsum), p4 col f32 [n] or 0,
// p5 out raw [n, d]; i0 n, i1 d, i2 normalise, i3 euclid; f0 scale, f1 eps.
template <class T>
__device__ __forceinline__ void pw_finish(const LkArgs& a) {
    __shared__ float sh[32];
    const int d = a.i[1];
    const long long row = blockIdx.x;
    if (row >= a.i[0]) {
        return;
    }
    const float* g = (const float*)a.p[0] + row * d;
    const float* h = (const float*)a.p[1] + row * d;
    typename T::raw* out = (typename T::raw*)a.p[5] + row * d;
    const float diag = a.i[3] ? ((const float*)a.p[3])[4 * row + 3] + ((const float*)a.p[4])[row] : 0.0f;
    const float scale = a.f[0];
    if (!a.i[2]) {
        for (int j = threadIdx.x; j < d; j += blockDim.x) {
            out[j] = T::store((g[j] + diag * h[j]) * scale);
        }
        return;
    }
    float dot = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        dot += (g[j] + diag * h[j]) * scale * h[j];
    }
    dot = pw_block_sum(dot, sh);
    const float norm = ((const float*)a.p[2])[row];
    const float eps = a.f[1];
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        const float gj = (g[j] + diag * h[j]) * scale;
        out[j] = T::store(norm >= eps ? (gj - dot * h[j]) / norm : gj / eps);
    }
}

#define PW_TYPED(T, SUFFIX)                                                                                       \
    extern "C" __global__ void pw_normalize_##SUFFIX(const LkArgs a) { pw_normalize<T>(a); }                     \
    extern "C" __global__ void pw_finish_##SUFFIX(const LkArgs a) { pw_finish<T>(a); }

PW_TYPED(PwF32, f32)
PW_TYPED(PwBf16, bf16)
PW_TYPED(PwF16, f16)
