// Device-resident training of the small models of losskit-models (src/train.rs): the pieces around cuBLAS's GEMMs and
// the fused loss kernels of cross_entropy.cu / softmax_family.cu. Everything is f32; parameters, optimiser state,
// training rows and every intermediate stay on the device for the whole training.
//
// One step on the rows idx[0..b) of the training set (x [N, D], y [N], optional per-sample weights w [N]):
//   tr_gather        xb = x[idx], yb = y[idx], wb = w[idx]
//   (cuBLAS)         a = xb·W1ᵀ (MLP) or logits = xb·Wᵀ (linear)
//   tr_bias_act      a += b1, h = φ(a)  /  logits += b
//   (loss kernel)    per-row losses and G = ∂L/∂logits, then ce_reduce into the step's loss slot
//   (cuBLAS)         ∂W = Gᵀ·h (or Gᵀ·xb), dh = G·W2
//   tr_colsum        ∂b = Σ_rows G
//   tr_act_grad      da = dh ⊙ φ′(a)   (ReLU: 0 where a ≤ 0; tanh: 1 − h²), as the CPU Mlp::backward
//   tr_sgd/tr_adam   θ ← update(θ, ∂θ) with torch.optim.SGD / Adam's rules, as losskit-models' optimisers
//
// Every kernel takes one LkTrainArgs by value (device pointers p[], floats f[], ints i[]; each kernel lists what it
// reads) and runs one thread per element with a grid-stride loop; blockDim.x is 256. No kernel reduces across
// threads except tr_colsum, which sums each column in row order, so results are bitwise reproducible.

struct LkTrainArgs {
    unsigned long long p[8];
    float f[8];
    int i[8];
};

#define TR_LOOP(I, N) for (long long I = blockIdx.x * (long long)blockDim.x + threadIdx.x; I < (N); I += (long long)gridDim.x * blockDim.x)

// p0 x [N, D], p1 y [N] (long long), p2 w [N] or 0, p3 idx [b] (int), p4 xb [b, D], p5 yb [b], p6 wb [b] or 0;
// i0 b, i1 D.
__device__ __forceinline__ void tr_gather(const LkTrainArgs& a) {
    const float* x = (const float*)a.p[0];
    const long long* y = (const long long*)a.p[1];
    const float* w = (const float*)a.p[2];
    const int* idx = (const int*)a.p[3];
    float* xb = (float*)a.p[4];
    long long* yb = (long long*)a.p[5];
    float* wb = (float*)a.p[6];
    const int b = a.i[0], d = a.i[1];
    TR_LOOP(t, (long long)b * d) {
        const long long r = t / d, col = t % d;
        const long long src = idx[r];
        xb[t] = x[src * d + col];
        if (col == 0) {
            yb[r] = y[src];
            if (w && wb) wb[r] = w[src];
        }
    }
}

// p0 a [b, K] (in place: a += bias), p1 bias [K], p2 h [b, K] or 0 (h = φ(a)); i0 b, i1 K, i2 activation
// (0 none, 1 ReLU, 2 tanh).
__device__ __forceinline__ void tr_bias_act(const LkTrainArgs& a) {
    float* z = (float*)a.p[0];
    const float* bias = (const float*)a.p[1];
    float* h = (float*)a.p[2];
    const int b = a.i[0], k = a.i[1], act = a.i[2];
    TR_LOOP(t, (long long)b * k) {
        const float v = z[t] + bias[t % k];
        z[t] = v;
        if (h) h[t] = act == 1 ? fmaxf(v, 0.0f) : act == 2 ? tanhf(v) : v;
    }
}

// p0 da [n] (in place: da *= φ′), p1 a [n] (pre-activation), p2 h [n] (activation); i0 n, i1 activation.
__device__ __forceinline__ void tr_act_grad(const LkTrainArgs& a) {
    float* da = (float*)a.p[0];
    const float* z = (const float*)a.p[1];
    const float* h = (const float*)a.p[2];
    const int n = a.i[0], act = a.i[1];
    TR_LOOP(t, (long long)n) {
        if (act == 1) {
            if (z[t] <= 0.0f) da[t] = 0.0f;
        } else if (act == 2) {
            da[t] *= 1.0f - h[t] * h[t];
        }
    }
}

// p0 g [b, C], p1 out [C]: out[j] = Σ_i g[i, j] in row order; i0 b, i1 C.
__device__ __forceinline__ void tr_colsum(const LkTrainArgs& a) {
    const float* g = (const float*)a.p[0];
    float* out = (float*)a.p[1];
    const int b = a.i[0], c = a.i[1];
    TR_LOOP(j, (long long)c) {
        float s = 0.0f;
        for (int r = 0; r < b; ++r) s += g[(long long)r * c + j];
        out[j] = s;
    }
}

// torch.optim.SGD. p0 θ [n], p1 ∂θ [n], p2 momentum buffer [n]; f0 lr, f1 momentum μ, f2 dampening τ, f3 weight
// decay λ; i0 n, i1 nesterov, i2 first step (the buffer is the gradient itself, undampened).
__device__ __forceinline__ void tr_sgd(const LkTrainArgs& a) {
    float* p = (float*)a.p[0];
    const float* g = (const float*)a.p[1];
    float* buf = (float*)a.p[2];
    const float lr = a.f[0], mu = a.f[1], damp = a.f[2], wd = a.f[3];
    const int n = a.i[0], nesterov = a.i[1], first = a.i[2];
    TR_LOOP(t, (long long)n) {
        const float gt = g[t] + wd * p[t];
        if (mu == 0.0f) {
            p[t] -= lr * gt;
        } else {
            const float bt = first ? gt : mu * buf[t] + (1.0f - damp) * gt;
            buf[t] = bt;
            p[t] -= lr * (nesterov ? gt + mu * bt : bt);
        }
    }
}

// torch.optim.Adam (AdamW with decoupled decay). p0 θ [n], p1 ∂θ [n], p2 m [n], p3 v [n]; f0 β₁, f1 β₂, f2 ε,
// f3 L2 decay, f4 decoupled factor (1 − ηλ, or 1), f5 step size η / (1 − β₁ᵗ), f6 √(1 − β₂ᵗ); i0 n.
__device__ __forceinline__ void tr_adam(const LkTrainArgs& a) {
    float* p = (float*)a.p[0];
    const float* g = (const float*)a.p[1];
    float* m = (float*)a.p[2];
    float* v = (float*)a.p[3];
    const float b1 = a.f[0], b2 = a.f[1], eps = a.f[2], l2 = a.f[3], decay = a.f[4], step = a.f[5], bc2 = a.f[6];
    const int n = a.i[0];
    TR_LOOP(t, (long long)n) {
        const float pt = p[t] * decay;
        const float gt = g[t] + l2 * pt;
        const float mt = b1 * m[t] + (1.0f - b1) * gt;
        const float vt = b2 * v[t] + (1.0f - b2) * gt * gt;
        m[t] = mt;
        v[t] = vt;
        p[t] = pt - step * mt / (sqrtf(vt) / bc2 + eps);
    }
}

// The one-struct-argument kernel form of anyloss.cu; tests/gpu.rs checks that every name on a line starting with
// "LK_TRAIN_KERNEL(" is a PTX entry point.
#define LK_TRAIN_KERNEL(NAME, BODY) \
    extern "C" __global__ void __launch_bounds__(256) NAME(LkTrainArgs a) { BODY(a); }

// One line per kernel.
LK_TRAIN_KERNEL(train_gather, tr_gather)
LK_TRAIN_KERNEL(train_bias_act, tr_bias_act)
LK_TRAIN_KERNEL(train_act_grad, tr_act_grad)
LK_TRAIN_KERNEL(train_colsum, tr_colsum)
LK_TRAIN_KERNEL(train_sgd, tr_sgd)
LK_TRAIN_KERNEL(train_adam, tr_adam)
