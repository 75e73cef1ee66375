// Binary losses on logits, one thread per element (grid-stride): per-element loss s_i * l_i and gradient
// r_i * dl_i/dx_i (r_i = s_i * gscale, gscale = 1 / the Mean's denominator or 1), with the semantics of the CPU configs:
//   bce     (p0 = pos_weight pw):  l = (1 - y) softplus(x) + pw y softplus(-x)     (binary_cross_entropy_with_logits)
//   sfocal  (p0 = gamma, p1 = alpha, p2 = 1 when alpha is used):                  (torchvision sigmoid_focal_loss)
//           l = a_t ce (1 - p_t)^gamma, ce = bce with pw = 1, 1 - p_t = y sigmoid(-x) + (1 - y) sigmoid(x),
//           a_t = alpha y + (1 - alpha)(1 - y)
// Targets are probabilities in [0, 1] of the scores' type. All arithmetic is f32; 16-bit values travel as raw bits.

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

__device__ __forceinline__ float lk_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

__device__ __forceinline__ float lk_sigmoid(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    const float e = expf(x);
    return e / (1.0f + e);
}

struct LkBce {
    static __device__ __forceinline__ float elem(float x, float y, float p0, float, float, float& d) {
        const float neg = 1.0f - y;
        const float pwy = p0 * y;
        d = neg * lk_sigmoid(x) - pwy * lk_sigmoid(-x);
        return neg * lk_softplus(x) + pwy * lk_softplus(-x);
    }
};

struct LkSigmoidFocal {
    static __device__ __forceinline__ float elem(float x, float y, float gamma, float alpha, float has_alpha,
                                                 float& d) {
        const float p = lk_sigmoid(x);
        const float q = lk_sigmoid(-x);
        const float neg = 1.0f - y;
        const float ce = neg * lk_softplus(x) + y * lk_softplus(-x);
        const float u = y * q + neg * p;
        const float ug = powf(u, gamma);  // 0^0 = 1
        const float at = has_alpha != 0.0f ? alpha * y + (1.0f - alpha) * neg : 1.0f;
        const float dce = neg * p - y * q;
        const float focus = (gamma > 0.0f && u > 0.0f) ? ce * gamma * ug * (neg - y) * (p * q / u) : 0.0f;
        d = at * (dce * ug + focus);
        return at * ce * ug;
    }
};

template <class M, class T>
__device__ __forceinline__ void lk_binary(const typename T::raw* __restrict__ x, const typename T::raw* __restrict__ y,
                                          const float* __restrict__ sw, typename T::raw* __restrict__ g,
                                          float* __restrict__ loss, int n, float p0, float p1, float p2,
                                          float gscale) {
    const long long stride = (long long)gridDim.x * (long long)blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)n; i += stride) {
        const float si = sw ? sw[i] : 1.0f;
        float d;
        const float l = M::elem(T::load(x[i]), T::load(y[i]), p0, p1, p2, d);
        loss[i] = si * l;
        if (g) {
            g[i] = T::store(si * gscale * d);
        }
    }
}

#ifndef LK_REGISTER
#define LK_REGISTER(NAME)
#endif

#define LK_BIN_KERNEL(NAME, M, T)                                                                                    \
    extern "C" __global__ void __launch_bounds__(256)                                                                \
        NAME(const T::raw* __restrict__ x, const T::raw* __restrict__ y, const float* __restrict__ sw,               \
             T::raw* __restrict__ g, float* __restrict__ loss, int n, float p0, float p1, float p2, float gscale) {  \
        lk_binary<M, T>(x, y, sw, g, loss, n, p0, p1, p2, gscale);                                                   \
    }                                                                                                                \
    LK_REGISTER(NAME)

// One line per kernel (tests/gpu.rs reads the names from the lines starting with "LK_BIN_KERNEL(").
LK_BIN_KERNEL(bce_f32, LkBce, LkF32)
LK_BIN_KERNEL(bce_bf16, LkBce, LkBf16)
LK_BIN_KERNEL(bce_f16, LkBce, LkF16)
LK_BIN_KERNEL(sfocal_f32, LkSigmoidFocal, LkF32)
LK_BIN_KERNEL(sfocal_bf16, LkSigmoidFocal, LkBf16)
LK_BIN_KERNEL(sfocal_f16, LkSigmoidFocal, LkF16)
