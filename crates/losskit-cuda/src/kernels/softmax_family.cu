// The softmax family beside cross-entropy, in the fused design of cross_entropy.cu: per-row loss and the gradient with
// respect to the logits in one launch, one warp per row for small C and one block per row for large C, pass 1 reading
// the row once with an online reduction, pass 2 re-reading it to write the gradient.
//
// Semantics (those of the CPU configs in losskit-losses/src/classification, with class-index targets y_i, per-sample
// weights s_i, `gscale` = 1 / the Mean's denominator or 1, r_i = s_i * gscale; p = softmax(x_i), u = 1 - p_y):
//   focal   (p0 = gamma, class weights cw):  l = -cw_y u^gamma log p_y
//   gce     (p0 = q):                        l = (1 - p_y^q) / q
//   mae:                                     l = 1 - p_y
//   cepsi   (comp-sum with Psi = CE):        l = -log p_y
//   sumexp:                                  l = sum_{j != y} e(x_j - x_y), e(d) = exp(min(d, 50)) (1 + max(d - 50, 0))
//   ldrkl   (p0 = lambda, p1 = margin):      l = lambda log((1/C) sum_j exp(a_j / lambda)), a_j = margin + x_j - x_y
//                                            for j != y, a_y = 0 (score_norm none)
//   ldrklsp, ldrkll1 (LDR-KL with score_norm softplus-mean / l1-mean): the same on the scores s instead of x,
//                                            s_j = C softplus(x_j) / U, U = max(sum_k softplus(x_k), 1e-12), or
//                                            s_j = C x_j / A, A = max(sum_k |x_k|, 1e-12); a pre-pass reads the row
//                                            once more for U or A
//   zloss   (p0 = a, p1 = b):                l = softplus(a (b - (x_y - mu) / sigma)) / a, mu and sigma^2 + 1e-12 the
//                                            row's mean and variance
// The per-row output is s_i * l_i; the gradient row is r_i * dl_i/dx_i. A row whose target equals the ignore index
// (focal only: has_ignore) has a zero loss and gradient.
//
// All arithmetic is f32; 16-bit inputs travel as raw bits (no cuda_fp16.h / cuda_bf16.h). Reductions use a fixed
// shuffle / shared-memory tree whose merge is commutative, so every lane ends with identical values and results are
// bitwise reproducible.

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

template <class T>
union LkPack {
    uint4 v;
    typename T::raw e[T::VEC];
};

// Three reduction slots; each mode gives them a meaning.
struct LkState {
    float a, b, c;
};

// What a row's pass 1 knows before reading the row.
struct LkRow {
    float zy;     // the target's logit
    float u;      // the pre-pass sum (score normalisation's denominator), when the mode has one
    float sy;     // the target's normalised score, when the mode has one
    float k;      // C as a float
    float scale;  // r_i
    float wy;     // class weight of the target (1 without class weights)
    float p0, p1, p2;
};

// What pass 2 needs: the loss and up to five coefficients.
struct LkFin {
    float loss;
    float k0, k1, k2, k3, k4;
};

// ---- online softmax around the target: a = running max (starts at x_y), b = sum_{j != y} exp(x_j - a).

__device__ __forceinline__ void lk_soft_add(LkState& s, float v) {
    if (v > s.a) {
        s.b = s.b * expf(s.a - v) + 1.0f;
        s.a = v;
    } else {
        s.b += expf(v - s.a);
    }
}

__device__ __forceinline__ void lk_soft_merge(LkState& s, const LkState& o) {
    const float mm = fmaxf(s.a, o.a);
    if (mm == LK_NEG_INF) {
        return;  // both are padding
    }
    s.b = s.b * expf(s.a - mm) + o.b * expf(o.a - mm);
    s.a = mm;
}

// Finishes the split softmax sum: fills f.k0 = m, f.k1 = 1 / total and returns log p_y, u = 1 - p_y and p_y.
__device__ __forceinline__ float lk_soft_finish(const LkState& s, const LkRow& r, LkFin& f, float& u, float& py) {
    const float m = s.a;
    const float rest = s.b;
    const float ey = expf(r.zy - m);
    const float total = rest + ey;
    // When y holds the maximum, total = 1 + rest and log1p keeps the digits of a small rest.
    const float lnt = r.zy == m ? log1pf(rest) : logf(total);
    u = rest / total;
    py = ey / total;
    f.k0 = m;
    f.k1 = 1.0f / total;
    return (r.zy - m) - lnt;
}

// Modes of the softmax form: loss from (log p_y, u, p_y); gradient g_j = k2 * p_j (j != y), g_y = k3.
struct LkSoftBase {
    enum { PRE = 0 };
    static __device__ __forceinline__ LkState init(const LkRow& r) { return LkState{r.zy, 0.0f, 0.0f}; }
    static __device__ __forceinline__ LkState pad() { return LkState{LK_NEG_INF, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void add(LkState& s, float v, bool target, const LkRow&) {
        if (!target) {
            lk_soft_add(s, v);
        }
    }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) { lk_soft_merge(s, o); }
    static __device__ __forceinline__ float grad(float v, const LkFin& f, const LkRow&) {
        return f.k2 * (expf(v - f.k0) * f.k1);
    }
    static __device__ __forceinline__ float grad_target(float, const LkFin& f, const LkRow&) { return f.k3; }
};

struct LkFocal : LkSoftBase {
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        float u, py;
        const float lp = lk_soft_finish(s, r, f, u, py);
        const float gamma = r.p0;
        const float ug = powf(u, gamma);  // 0^0 = 1: gamma = 0 is cross-entropy
        f.loss = -(r.wy * ug * lp);
        const float focus = (gamma > 0.0f && u > 0.0f) ? gamma * ug * py * (lp / u) : 0.0f;
        const float coef = r.scale * r.wy * (focus - ug);
        f.k2 = -coef;
        f.k3 = coef * u;
        return f;
    }
};

struct LkGce : LkSoftBase {
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        float u, py;
        const float lp = lk_soft_finish(s, r, f, u, py);
        const float q = r.p0;
        f.loss = -expm1f(q * lp) / q;
        const float c = r.scale * expf(q * lp);
        f.k2 = c;
        f.k3 = -c * u;
        return f;
    }
};

struct LkMae : LkSoftBase {
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        float u, py;
        lk_soft_finish(s, r, f, u, py);
        f.loss = u;
        const float c = r.scale * py;
        f.k2 = c;
        f.k3 = -c * u;
        return f;
    }
};

struct LkCePsi : LkSoftBase {
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        float u, py;
        const float lp = lk_soft_finish(s, r, f, u, py);
        f.loss = -lp;
        f.k2 = r.scale;
        f.k3 = -r.scale * u;
        return f;
    }
};

// Sum-exponential: a = sum_{j != y} e(d_j), b = sum_{j != y} exp(min(d_j, 50)), d_j = x_j - x_y.
struct LkSumExp {
    enum { PRE = 0 };
    static __device__ __forceinline__ LkState init(const LkRow&) { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ LkState pad() { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void add(LkState& s, float v, bool target, const LkRow& r) {
        if (!target) {
            const float d = v - r.zy;
            const float e = expf(fminf(d, 50.0f));
            s.a += e * (1.0f + fmaxf(d - 50.0f, 0.0f));
            s.b += e;
        }
    }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) {
        s.a += o.a;
        s.b += o.b;
    }
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        f.loss = s.a;
        f.k0 = -r.scale * s.b;
        return f;
    }
    static __device__ __forceinline__ float grad(float v, const LkFin&, const LkRow& r) {
        return r.scale * expf(fminf(v - r.zy, 50.0f));
    }
    static __device__ __forceinline__ float grad_target(float, const LkFin& f, const LkRow&) { return f.k0; }
};

// LDR-KL with score_norm none: online softmax of w_j = (margin + x_j - x_y) / lambda over j != y, around w_y = 0.
struct LkLdrKl {
    enum { PRE = 0 };
    static __device__ __forceinline__ LkState init(const LkRow&) { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ LkState pad() { return LkState{LK_NEG_INF, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void add(LkState& s, float v, bool target, const LkRow& r) {
        if (!target) {
            lk_soft_add(s, (r.p1 + v - r.zy) / r.p0);
        }
    }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) { lk_soft_merge(s, o); }
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        const float m = s.a;  // >= 0 = w_y
        const float total = s.b + expf(-m);
        f.loss = r.p0 * m + r.p0 * logf(total / r.k);
        f.k0 = m;
        f.k1 = r.scale / total;
        f.k2 = -r.scale * (s.b / total);
        return f;
    }
    static __device__ __forceinline__ float grad(float v, const LkFin& f, const LkRow& r) {
        return expf((r.p1 + v - r.zy) / r.p0 - f.k0) * f.k1;
    }
    static __device__ __forceinline__ float grad_target(float, const LkFin& f, const LkRow&) { return f.k2; }
};

__device__ __forceinline__ float lk_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

// LDR-KL with score_norm softplus-mean (NORM = 1) or l1-mean (NORM = 2) on the scores s_j (header). Online state over
// j != y: a = running max of w_j = (margin + s_j - s_y) / lambda (starts at w_y = 0), b = sum exp(w_j - a),
// c = sum exp(w_j - a) s_j. With total = b + exp(-a), p*_j = exp(w_j - a) / total, g = dl/ds = p* - e_y and
// g.s = (c - b s_y) / total; then through the normalisation (losskit-losses ldr.rs, normalize_backward):
//   softplus-mean: dl/dx_j = (C / U) sigmoid(x_j) (g_j - g.s / C);  l1-mean: dl/dx_j = (C / A) g_j - sign(x_j) g.s / A
template <int NORM>
struct LkLdrKlNorm {
    enum { PRE = 1 };
    static __device__ __forceinline__ float pre(float v) { return NORM == 1 ? lk_softplus(v) : fabsf(v); }
    static __device__ __forceinline__ float score(float v, const LkRow& r) {
        return NORM == 1 ? r.k * lk_softplus(v) / r.u : r.k * v / r.u;
    }
    static __device__ __forceinline__ LkState init(const LkRow&) { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ LkState pad() { return LkState{LK_NEG_INF, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void add(LkState& s, float v, bool target, const LkRow& r) {
        if (target) {
            return;
        }
        const float sj = score(v, r);
        const float w = (r.p1 + sj - r.sy) / r.p0;
        if (w > s.a) {
            const float f = expf(s.a - w);
            s.b = s.b * f + 1.0f;
            s.c = s.c * f + sj;
            s.a = w;
        } else {
            const float e = expf(w - s.a);
            s.b += e;
            s.c += e * sj;
        }
    }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) {
        const float mm = fmaxf(s.a, o.a);
        if (mm == LK_NEG_INF) {
            return;
        }
        const float fs = expf(s.a - mm);
        const float fo = expf(o.a - mm);
        s.b = s.b * fs + o.b * fo;
        s.c = s.c * fs + o.c * fo;
        s.a = mm;
    }
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        const float m = s.a;
        const float total = s.b + expf(-m);
        f.loss = r.p0 * m + r.p0 * logf(total / r.k);
        f.k0 = m;
        f.k1 = 1.0f / total;
        f.k2 = (s.c - s.b * r.sy) / total;  // g.s
        f.k3 = -s.b / total;                // g_y = p*_y - 1
        return f;
    }
    static __device__ __forceinline__ float chain(float v, float g, const LkFin& f, const LkRow& r) {
        if (NORM == 1) {
            const float sig = v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
            return r.scale * (r.k / r.u) * sig * (g - f.k2 / r.k);
        }
        const float sign = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
        return r.scale * ((r.k / r.u) * g - sign * f.k2 / r.u);
    }
    static __device__ __forceinline__ float grad(float v, const LkFin& f, const LkRow& r) {
        const float w = (r.p1 + score(v, r) - r.sy) / r.p0;
        return chain(v, expf(w - f.k0) * f.k1, f, r);
    }
    static __device__ __forceinline__ float grad_target(float v, const LkFin& f, const LkRow& r) {
        return chain(v, f.k3, f, r);
    }
};

// A plain sum (the pre-pass of the score normalisations).
struct LkSum {
    static __device__ __forceinline__ LkState pad() { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) { s.a += o.a; }
};

// Z-loss: a = count, b = mean, c = sum of squared deviations (Welford per thread, a symmetric Chan merge).
struct LkZLoss {
    enum { PRE = 0 };
    static __device__ __forceinline__ LkState init(const LkRow&) { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ LkState pad() { return LkState{0.0f, 0.0f, 0.0f}; }
    static __device__ __forceinline__ void add(LkState& s, float v, bool, const LkRow&) {
        s.a += 1.0f;
        const float d = v - s.b;
        s.b += d / s.a;
        s.c += d * (v - s.b);
    }
    static __device__ __forceinline__ void merge(LkState& s, const LkState& o) {
        const float n = s.a + o.a;
        if (n == 0.0f) {
            return;
        }
        const float d = o.b - s.b;
        s.c = s.c + o.c + d * d * (s.a * o.a / n);
        s.b = (s.a * s.b + o.a * o.b) / n;
        s.a = n;
    }
    static __device__ __forceinline__ LkFin finish(const LkState& s, const LkRow& r) {
        LkFin f;
        const float a = r.p0;
        const float b = r.p1;
        const float mu = s.b;
        const float var = s.c / r.k;
        const float sigma = sqrtf(fmaxf(var, 0.0f) + 1e-12f);
        const float zn = (r.zy - mu) / sigma;
        const float x = a * (b - zn);
        f.loss = (fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)))) / a;
        const float t = 1.0f / (1.0f + expf(-x));
        const float c = -r.scale * t / sigma;
        f.k0 = mu;
        f.k1 = c / r.k;                   // coefficient of -1
        f.k2 = c * zn / (r.k * sigma);    // of -(x_k - mu)
        f.k3 = c;                         // added at the target
        return f;
    }
    static __device__ __forceinline__ float grad(float v, const LkFin& f, const LkRow&) {
        return -f.k1 - f.k2 * (v - f.k0);
    }
    static __device__ __forceinline__ float grad_target(float v, const LkFin& f, const LkRow& r) {
        return grad(v, f, r) + f.k3;
    }
};

template <class M>
__device__ __forceinline__ void lk_family_warp_reduce(LkState& s) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        LkState o;
        o.a = __shfl_xor_sync(0xffffffffu, s.a, off);
        o.b = __shfl_xor_sync(0xffffffffu, s.b, off);
        o.c = __shfl_xor_sync(0xffffffffu, s.c, off);
        M::merge(s, o);
    }
}

template <class M>
__device__ __forceinline__ void lk_family_block_reduce(LkState& s) {
    __shared__ float sh_a[32];
    __shared__ float sh_b[32];
    __shared__ float sh_c[32];
    lk_family_warp_reduce<M>(s);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    if (lane == 0) {
        sh_a[warp] = s.a;
        sh_b[warp] = s.b;
        sh_c[warp] = s.c;
    }
    __syncthreads();
    if (warp == 0) {
        s = M::pad();
        if (lane < warps) {
            s.a = sh_a[lane];
            s.b = sh_b[lane];
            s.c = sh_c[lane];
        }
        lk_family_warp_reduce<M>(s);
        if (lane == 0) {
            sh_a[0] = s.a;
            sh_b[0] = s.b;
            sh_c[0] = s.c;
        }
    }
    __syncthreads();
    s.a = sh_a[0];
    s.b = sh_b[0];
    s.c = sh_c[0];
}

template <class M, class T, class L, bool WARP>
__device__ __forceinline__ void lk_family(const typename T::raw* __restrict__ x, const L* __restrict__ y,
                                          const float* __restrict__ cw, const float* __restrict__ sw,
                                          typename T::raw* __restrict__ g, float* __restrict__ loss, int n, int c,
                                          long long ignore_index, int has_ignore, float p0, float p1, float p2,
                                          float gscale) {
    const int group = WARP ? 32 : (int)blockDim.x;
    const int t = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const long long row = WARP ? (long long)blockIdx.x * (long long)(blockDim.x >> 5) + (long long)(threadIdx.x >> 5)
                               : (long long)blockIdx.x;
    if (row >= (long long)n) {
        return;  // uniform over the group
    }
    const typename T::raw* xr = x + row * (long long)c;
    typename T::raw* gr = g ? g + row * (long long)c : 0;
    const bool vec = (c % T::VEC) == 0 && (((unsigned long long)x) & 15ull) == 0 &&
                     (((unsigned long long)g) & 15ull) == 0;
    const int nv = c / T::VEC;
    const long long target = (long long)y[row];

    if (has_ignore && target == ignore_index) {
        if (t == 0) {
            loss[row] = 0.0f;
        }
        if (gr) {
            for (int j = t; j < c; j += group) {
                gr[j] = T::store(0.0f);
            }
        }
        return;  // uniform over the group
    }

    const float si = sw ? sw[row] : 1.0f;
    LkRow rp;
    rp.zy = T::load(xr[target]);
    rp.k = (float)c;
    rp.scale = si * gscale;
    rp.wy = cw ? cw[target] : 1.0f;
    rp.p0 = p0;
    rp.p1 = p1;
    rp.p2 = p2;
    rp.u = 1.0f;
    rp.sy = rp.zy;

    if constexpr (M::PRE != 0) {
        LkState acc{0.0f, 0.0f, 0.0f};
        if (vec) {
            for (int k = t; k < nv; k += group) {
                LkPack<T> p;
                p.v = reinterpret_cast<const uint4*>(xr)[k];
#pragma unroll
                for (int q = 0; q < T::VEC; ++q) {
                    acc.a += M::pre(T::load(p.e[q]));
                }
            }
        } else {
            for (int j = t; j < c; j += group) {
                acc.a += M::pre(T::load(xr[j]));
            }
        }
        if (WARP) {
            lk_family_warp_reduce<LkSum>(acc);
        } else {
            lk_family_block_reduce<LkSum>(acc);
            __syncthreads();  // the next block reduction reuses shared memory
        }
        rp.u = fmaxf(acc.a, 1e-12f);
        rp.sy = M::score(rp.zy, rp);
    }

    LkState st = M::init(rp);
    if (vec) {
        for (int k = t; k < nv; k += group) {
            LkPack<T> p;
            p.v = reinterpret_cast<const uint4*>(xr)[k];
#pragma unroll
            for (int q = 0; q < T::VEC; ++q) {
                M::add(st, T::load(p.e[q]), (long long)k * T::VEC + q == target, rp);
            }
        }
    } else {
        for (int j = t; j < c; j += group) {
            M::add(st, T::load(xr[j]), (long long)j == target, rp);
        }
    }
    if (WARP) {
        lk_family_warp_reduce<M>(st);
    } else {
        lk_family_block_reduce<M>(st);
    }
    const LkFin f = M::finish(st, rp);
    if (t == 0) {
        loss[row] = si * f.loss;
    }
    if (!gr) {
        return;
    }
    if (vec) {
        for (int k = t; k < nv; k += group) {
            LkPack<T> p;
            p.v = reinterpret_cast<const uint4*>(xr)[k];
            LkPack<T> out;
#pragma unroll
            for (int q = 0; q < T::VEC; ++q) {
                const float v = T::load(p.e[q]);
                const bool is_t = (long long)k * T::VEC + q == target;
                out.e[q] = T::store(is_t ? M::grad_target(v, f, rp) : M::grad(v, f, rp));
            }
            reinterpret_cast<uint4*>(gr)[k] = out.v;
        }
    } else {
        for (int j = t; j < c; j += group) {
            const float v = T::load(xr[j]);
            gr[j] = T::store((long long)j == target ? M::grad_target(v, f, rp) : M::grad(v, f, rp));
        }
    }
}

// The emulator (tests/emu/family.cpp) defines LK_REGISTER to build its table of kernels.
#ifndef LK_REGISTER
#define LK_REGISTER(NAME)
#endif

#define LK_SM_KERNEL(NAME, M, T, L, WARP, THREADS, MIN_BLOCKS)                                                       \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS)                                               \
        NAME(const T::raw* __restrict__ x, const L* __restrict__ y, const float* __restrict__ cw,                   \
             const float* __restrict__ sw, T::raw* __restrict__ g, float* __restrict__ loss, int n, int c,          \
             long long ignore_index, int has_ignore, float p0, float p1, float p2, float gscale) {                 \
        lk_family<M, T, L, WARP>(x, y, cw, sw, g, loss, n, c, ignore_index, has_ignore, p0, p1, p2, gscale);       \
    }                                                                                                               \
    LK_REGISTER(NAME)

// One line per kernel (tests/gpu.rs reads the names from the lines starting with "LK_SM_KERNEL(").
LK_SM_KERNEL(focal_f32_i64_warp, LkFocal, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(focal_f32_i32_warp, LkFocal, LkF32, int, true, 256, 4)
LK_SM_KERNEL(focal_bf16_i64_warp, LkFocal, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(focal_bf16_i32_warp, LkFocal, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(focal_f16_i64_warp, LkFocal, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(focal_f16_i32_warp, LkFocal, LkF16, int, true, 256, 4)
LK_SM_KERNEL(focal_f32_i64_block, LkFocal, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(focal_f32_i32_block, LkFocal, LkF32, int, false, 512, 2)
LK_SM_KERNEL(focal_bf16_i64_block, LkFocal, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(focal_bf16_i32_block, LkFocal, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(focal_f16_i64_block, LkFocal, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(focal_f16_i32_block, LkFocal, LkF16, int, false, 512, 2)
LK_SM_KERNEL(gce_f32_i64_warp, LkGce, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(gce_f32_i32_warp, LkGce, LkF32, int, true, 256, 4)
LK_SM_KERNEL(gce_bf16_i64_warp, LkGce, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(gce_bf16_i32_warp, LkGce, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(gce_f16_i64_warp, LkGce, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(gce_f16_i32_warp, LkGce, LkF16, int, true, 256, 4)
LK_SM_KERNEL(gce_f32_i64_block, LkGce, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(gce_f32_i32_block, LkGce, LkF32, int, false, 512, 2)
LK_SM_KERNEL(gce_bf16_i64_block, LkGce, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(gce_bf16_i32_block, LkGce, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(gce_f16_i64_block, LkGce, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(gce_f16_i32_block, LkGce, LkF16, int, false, 512, 2)
LK_SM_KERNEL(mae_f32_i64_warp, LkMae, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(mae_f32_i32_warp, LkMae, LkF32, int, true, 256, 4)
LK_SM_KERNEL(mae_bf16_i64_warp, LkMae, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(mae_bf16_i32_warp, LkMae, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(mae_f16_i64_warp, LkMae, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(mae_f16_i32_warp, LkMae, LkF16, int, true, 256, 4)
LK_SM_KERNEL(mae_f32_i64_block, LkMae, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(mae_f32_i32_block, LkMae, LkF32, int, false, 512, 2)
LK_SM_KERNEL(mae_bf16_i64_block, LkMae, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(mae_bf16_i32_block, LkMae, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(mae_f16_i64_block, LkMae, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(mae_f16_i32_block, LkMae, LkF16, int, false, 512, 2)
LK_SM_KERNEL(cepsi_f32_i64_warp, LkCePsi, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(cepsi_f32_i32_warp, LkCePsi, LkF32, int, true, 256, 4)
LK_SM_KERNEL(cepsi_bf16_i64_warp, LkCePsi, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(cepsi_bf16_i32_warp, LkCePsi, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(cepsi_f16_i64_warp, LkCePsi, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(cepsi_f16_i32_warp, LkCePsi, LkF16, int, true, 256, 4)
LK_SM_KERNEL(cepsi_f32_i64_block, LkCePsi, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(cepsi_f32_i32_block, LkCePsi, LkF32, int, false, 512, 2)
LK_SM_KERNEL(cepsi_bf16_i64_block, LkCePsi, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(cepsi_bf16_i32_block, LkCePsi, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(cepsi_f16_i64_block, LkCePsi, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(cepsi_f16_i32_block, LkCePsi, LkF16, int, false, 512, 2)
LK_SM_KERNEL(sumexp_f32_i64_warp, LkSumExp, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(sumexp_f32_i32_warp, LkSumExp, LkF32, int, true, 256, 4)
LK_SM_KERNEL(sumexp_bf16_i64_warp, LkSumExp, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(sumexp_bf16_i32_warp, LkSumExp, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(sumexp_f16_i64_warp, LkSumExp, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(sumexp_f16_i32_warp, LkSumExp, LkF16, int, true, 256, 4)
LK_SM_KERNEL(sumexp_f32_i64_block, LkSumExp, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(sumexp_f32_i32_block, LkSumExp, LkF32, int, false, 512, 2)
LK_SM_KERNEL(sumexp_bf16_i64_block, LkSumExp, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(sumexp_bf16_i32_block, LkSumExp, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(sumexp_f16_i64_block, LkSumExp, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(sumexp_f16_i32_block, LkSumExp, LkF16, int, false, 512, 2)
LK_SM_KERNEL(ldrkl_f32_i64_warp, LkLdrKl, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(ldrkl_f32_i32_warp, LkLdrKl, LkF32, int, true, 256, 4)
LK_SM_KERNEL(ldrkl_bf16_i64_warp, LkLdrKl, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(ldrkl_bf16_i32_warp, LkLdrKl, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(ldrkl_f16_i64_warp, LkLdrKl, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(ldrkl_f16_i32_warp, LkLdrKl, LkF16, int, true, 256, 4)
LK_SM_KERNEL(ldrkl_f32_i64_block, LkLdrKl, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(ldrkl_f32_i32_block, LkLdrKl, LkF32, int, false, 512, 2)
LK_SM_KERNEL(ldrkl_bf16_i64_block, LkLdrKl, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(ldrkl_bf16_i32_block, LkLdrKl, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(ldrkl_f16_i64_block, LkLdrKl, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(ldrkl_f16_i32_block, LkLdrKl, LkF16, int, false, 512, 2)
LK_SM_KERNEL(zloss_f32_i64_warp, LkZLoss, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(zloss_f32_i32_warp, LkZLoss, LkF32, int, true, 256, 4)
LK_SM_KERNEL(zloss_bf16_i64_warp, LkZLoss, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(zloss_bf16_i32_warp, LkZLoss, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(zloss_f16_i64_warp, LkZLoss, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(zloss_f16_i32_warp, LkZLoss, LkF16, int, true, 256, 4)
LK_SM_KERNEL(zloss_f32_i64_block, LkZLoss, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(zloss_f32_i32_block, LkZLoss, LkF32, int, false, 512, 2)
LK_SM_KERNEL(zloss_bf16_i64_block, LkZLoss, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(zloss_bf16_i32_block, LkZLoss, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(zloss_f16_i64_block, LkZLoss, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(zloss_f16_i32_block, LkZLoss, LkF16, int, false, 512, 2)
LK_SM_KERNEL(ldrklsp_f32_i64_warp, LkLdrKlNorm<1>, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(ldrklsp_f32_i32_warp, LkLdrKlNorm<1>, LkF32, int, true, 256, 4)
LK_SM_KERNEL(ldrklsp_bf16_i64_warp, LkLdrKlNorm<1>, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(ldrklsp_bf16_i32_warp, LkLdrKlNorm<1>, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(ldrklsp_f16_i64_warp, LkLdrKlNorm<1>, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(ldrklsp_f16_i32_warp, LkLdrKlNorm<1>, LkF16, int, true, 256, 4)
LK_SM_KERNEL(ldrklsp_f32_i64_block, LkLdrKlNorm<1>, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(ldrklsp_f32_i32_block, LkLdrKlNorm<1>, LkF32, int, false, 512, 2)
LK_SM_KERNEL(ldrklsp_bf16_i64_block, LkLdrKlNorm<1>, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(ldrklsp_bf16_i32_block, LkLdrKlNorm<1>, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(ldrklsp_f16_i64_block, LkLdrKlNorm<1>, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(ldrklsp_f16_i32_block, LkLdrKlNorm<1>, LkF16, int, false, 512, 2)
LK_SM_KERNEL(ldrkll1_f32_i64_warp, LkLdrKlNorm<2>, LkF32, long long, true, 256, 4)
LK_SM_KERNEL(ldrkll1_f32_i32_warp, LkLdrKlNorm<2>, LkF32, int, true, 256, 4)
LK_SM_KERNEL(ldrkll1_bf16_i64_warp, LkLdrKlNorm<2>, LkBf16, long long, true, 256, 4)
LK_SM_KERNEL(ldrkll1_bf16_i32_warp, LkLdrKlNorm<2>, LkBf16, int, true, 256, 4)
LK_SM_KERNEL(ldrkll1_f16_i64_warp, LkLdrKlNorm<2>, LkF16, long long, true, 256, 4)
LK_SM_KERNEL(ldrkll1_f16_i32_warp, LkLdrKlNorm<2>, LkF16, int, true, 256, 4)
LK_SM_KERNEL(ldrkll1_f32_i64_block, LkLdrKlNorm<2>, LkF32, long long, false, 512, 2)
LK_SM_KERNEL(ldrkll1_f32_i32_block, LkLdrKlNorm<2>, LkF32, int, false, 512, 2)
LK_SM_KERNEL(ldrkll1_bf16_i64_block, LkLdrKlNorm<2>, LkBf16, long long, false, 512, 2)
LK_SM_KERNEL(ldrkll1_bf16_i32_block, LkLdrKlNorm<2>, LkBf16, int, false, 512, 2)
LK_SM_KERNEL(ldrkll1_f16_i64_block, LkLdrKlNorm<2>, LkF16, long long, false, 512, 2)
LK_SM_KERNEL(ldrkll1_f16_i32_block, LkLdrKlNorm<2>, LkF16, int, false, 512, 2)
