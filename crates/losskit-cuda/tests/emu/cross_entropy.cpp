// Runs src/kernels/cross_entropy.cu under the CPU emulation of shim.h and compares every output with an f64 oracle
// transcribed from the formula (PyTorch's CrossEntropyLoss with class indices, plus per-sample weights). Built and
// run by tests/gpu.rs; `kernel.cu` is the kernel file with its PTX-only LkF16 struct removed (shim.h has one).
// Prints one line per case and exits non-zero when any case fails.
#include "shim.h"
#include "kernel.cu"
#include <algorithm>
#include <cstdio>
#include <random>

typedef void (*Kernel)(const void*, const void*, const float*, const float*, void*, float*, int, int, long long, int,
                       float, float, float, float, int);

struct Case {
    int n, c;
    int dtype;  // 0 f32, 1 bf16, 2 f16
    bool i32, class_weights, sample_weights;
    double eps;
    int reduction;  // 0 mean, 1 sum, 2 none
    bool ignore;
    double spread;   // logit standard deviation
    bool misalign;   // offset the buffers by one element (forces the scalar path)
    bool grad;
    double temperature;
    int cap = 0;  // > 0: the *_cached kernel (1024 threads) keeping this many elements in dynamic shared memory
};

static Kernel pick(int dtype, bool i32, bool warp, bool cached) {
#define LK_K(f) reinterpret_cast<Kernel>(&f)
    if (cached) {
        Kernel table[3][2] = {{LK_K(ce_f32_i64_cached), LK_K(ce_f32_i32_cached)},
                              {LK_K(ce_bf16_i64_cached), LK_K(ce_bf16_i32_cached)},
                              {LK_K(ce_f16_i64_cached), LK_K(ce_f16_i32_cached)}};
        return table[dtype][i32];
    }
    Kernel table[3][2][2] = {
        {{LK_K(ce_f32_i64_block), LK_K(ce_f32_i64_warp)}, {LK_K(ce_f32_i32_block), LK_K(ce_f32_i32_warp)}},
        {{LK_K(ce_bf16_i64_block), LK_K(ce_bf16_i64_warp)}, {LK_K(ce_bf16_i32_block), LK_K(ce_bf16_i32_warp)}},
        {{LK_K(ce_f16_i64_block), LK_K(ce_f16_i64_warp)}, {LK_K(ce_f16_i32_block), LK_K(ce_f16_i32_warp)}},
    };
#undef LK_K
    return table[dtype][i32][warp];
}

static unsigned short to16(int dtype, float f) { return dtype == 1 ? LkBf16::store(f) : LkF16::store(f); }
static float from16(int dtype, unsigned short b) { return dtype == 1 ? LkBf16::load(b) : LkF16::load(b); }

static int run(const Case& cs, unsigned seed) {
    const int n = cs.n, c = cs.c;
    const size_t nc = size_t(n) * c, off = cs.misalign ? 1 : 0;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<float> x(nc + 16);
    std::vector<unsigned short> x16(nc + 16);
    for (size_t i = 0; i < nc; ++i) {
        float v = float(normal(rng) * cs.spread + double(i / c) * 0.37);  // rows with different offsets
        if (cs.dtype != 0) {
            x16[off + i] = to16(cs.dtype, v);
            v = from16(cs.dtype, x16[off + i]);
        }
        x[off + i] = v;
    }
    std::vector<long long> y(n);
    std::vector<int> y32(n);
    for (int i = 0; i < n; ++i) {
        y[i] = (long long)(rng() % (unsigned long long)c);
        if (cs.ignore && i % 3 == 1) y[i] = -100;
        y32[i] = (int)y[i];
    }
    std::vector<float> cw(c), sw(n);
    for (auto& v : cw) v = 0.25f + float(rng() % 100) / 40.0f;
    for (auto& v : sw) v = float(rng() % 100) / 50.0f;
    auto cwj = [&](long long j) { return cs.class_weights ? double(cw[j]) : 1.0; };
    auto swi = [&](int i) { return cs.sample_weights ? double(sw[i]) : 1.0; };
    auto ignored = [&](int i) { return cs.ignore && y[i] == -100; };

    // f64 oracle.
    double wsum = 0.0, denom = 0.0, total = 0.0;
    for (int j = 0; j < c; ++j) wsum += cwj(j);
    for (int i = 0; i < n; ++i)
        if (!ignored(i)) denom += swi(i) * cwj(y[i]);
    const double scale = cs.reduction == 0 ? 1.0 / denom : 1.0;
    std::vector<double> ref_loss(n, 0.0), ref_grad(nc, 0.0);
    for (int i = 0; i < n; ++i) {
        if (ignored(i)) continue;
        std::vector<double> r(c);  // z = x / T
        for (int j = 0; j < c; ++j) r[j] = double(x[off + size_t(i) * c + j]) / cs.temperature;
        double m = -1e300, s = 0.0, smooth = 0.0;
        for (int j = 0; j < c; ++j) m = std::max(m, r[j]);
        for (int j = 0; j < c; ++j) s += std::exp(r[j] - m);
        const double lse = m + std::log(s);
        for (int j = 0; j < c; ++j) smooth += cwj(j) * (lse - r[j]);
        const double a = (1.0 - cs.eps) * cwj(y[i]), b = cs.eps / c;
        ref_loss[i] = swi(i) * (a * (lse - r[y[i]]) + b * smooth);
        total += ref_loss[i];
        for (int j = 0; j < c; ++j) {
            const double p = std::exp(r[j] - lse);
            ref_grad[size_t(i) * c + j] =
                swi(i) * scale / cs.temperature * (a * (p - (j == y[i])) + b * (wsum * p - cwj(j)));
        }
    }
    const double ref_value = total * scale;

    // Emulated launches, with the host's launch shape (src/cross_entropy.rs: launch_shape).
    const bool cached = cs.cap > 0;
    const bool warp = !cached && c <= 1024;
    const unsigned block = cached ? 1024 : warp ? 256 : (c >= 4096 ? 512 : 256);
    const unsigned grid = warp ? unsigned((n + 7) / 8) : unsigned(n);
    const unsigned short poison16 = 0x7e7e;
    const float poison = -7.0f;
    std::vector<float> loss(n, poison), g(nc + 16, poison);
    std::vector<unsigned short> g16(nc + 16, poison16);
    const void* xp = cs.dtype == 0 ? (const void*)(x.data() + off) : (const void*)(x16.data() + off);
    void* gp = !cs.grad ? nullptr : cs.dtype == 0 ? (void*)(g.data() + off) : (void*)(g16.data() + off);
    const void* yp = cs.i32 ? (const void*)y32.data() : (const void*)y.data();
    Kernel k = pick(cs.dtype, cs.i32, warp, cached);
    // Poisoned, so that a read of a cache slot pass 1 did not fill shows up in the gradient.
    g_dyn_smem.assign(size_t(cs.cap) / 4 + 1, make_uint4(0x7f7f7f7fu, 0x7f7f7f7fu, 0x7f7f7f7fu, 0x7f7f7f7fu));
    launch(grid, block, [&] {
        k(xp, yp, cs.class_weights ? cw.data() : nullptr, cs.sample_weights ? sw.data() : nullptr, gp, loss.data(), n,
          c, -100, cs.ignore ? 1 : 0, float(cs.eps), float(wsum), float(scale), float(1.0 / cs.temperature), cs.cap);
    });
    double value = -1.0;
    launch(1, 256, [&] { ce_reduce(loss.data(), n, scale, &value); });

    // Compare: per-row loss and value to 2e-5 relative (f32 arithmetic); the gradient to the element type's rounding
    // (f32: 2e-5, 16-bit: half an ulp plus f32 error) plus a small absolute floor relative to the largest gradient.
    const double rel = cs.dtype == 0 ? 2e-5 : cs.dtype == 1 ? 1.0 / 128 : 1.0 / 1024;
    const double floor_rel = cs.dtype == 0 ? 1e-7 : 1e-6;
    double gmax = 0.0;
    for (double v : ref_grad) gmax = std::max(gmax, std::fabs(v));
    int bad = 0;
    double worst = 0.0;
    for (int i = 0; i < n; ++i) {
        const double err = std::fabs(loss[i] - ref_loss[i]);
        if (err > 2e-5 * std::fabs(ref_loss[i]) + 1e-6 && bad++ < 5)
            printf("  row %d: loss %.9g, oracle %.9g\n", i, loss[i], ref_loss[i]);
    }
    if (std::fabs(value - ref_value) > 2e-5 * std::fabs(ref_value) + 1e-12 && bad++ < 10)
        printf("  value %.9g, oracle %.9g\n", value, ref_value);
    if (cs.grad) {
        for (size_t e = 0; e < nc; ++e) {
            const double got = cs.dtype == 0 ? double(g[off + e]) : double(from16(cs.dtype, g16[off + e]));
            const double tol = rel * std::fabs(ref_grad[e]) + floor_rel * gmax;
            const double err = std::fabs(got - ref_grad[e]);
            worst = std::max(worst, tol > 0 ? err / tol : (err > 0 ? 1e9 : 0.0));
            if (!(err <= tol) && bad++ < 10)
                printf("  grad[%zu, %zu]: %.9g, oracle %.9g\n", e / c, e % c, got, ref_grad[e]);
        }
        const bool overran = cs.dtype == 0 ? g[off + nc] != poison : g16[off + nc] != poison16;
        const bool underran = cs.misalign && (cs.dtype == 0 ? g[0] != poison : g16[0] != poison16);
        if ((overran || underran) && bad++ < 10) printf("  wrote outside the gradient buffer\n");
    } else {
        const bool touched = cs.dtype == 0 ? std::any_of(g.begin(), g.end(), [&](float v) { return v != poison; })
                                           : std::any_of(g16.begin(), g16.end(), [&](unsigned short v) { return v != poison16; });
        if (touched && bad++ < 10) printf("  wrote a gradient though none was asked for\n");
    }
    static const char* names[] = {"f32", "bf16", "f16"};
    printf("%s %s/%s %s n=%d c=%d cw=%d sw=%d eps=%g T=%g reduction=%d ignore=%d spread=%g misalign=%d grad=%d: "
           "value %.9g oracle %.9g, worst grad error %.2f of tolerance\n",
           bad ? "FAIL" : "ok  ", names[cs.dtype], cs.i32 ? "i32" : "i64", cached ? "cache" : warp ? "warp " : "block", n, c,
           cs.class_weights, cs.sample_weights, cs.eps, cs.temperature, cs.reduction, cs.ignore, cs.spread,
           cs.misalign, cs.grad, value, ref_value, worst);
    return bad != 0;
}

int main() {
    const Case cases[] = {
        // n, c, dtype, i32, cw, sw, eps, reduction, ignore, spread, misalign, grad, temperature
        {64, 10, 0, false, false, false, 0.0, 0, false, 1.0, false, true, 1.0},
        {37, 1000, 0, false, true, false, 0.1, 1, true, 2.0, false, true, 1.0},
        {9, 33, 0, true, true, true, 0.2, 0, true, 1.0, false, true, 0.5},
        {17, 1, 0, false, false, false, 0.3, 0, false, 1.0, false, true, 1.0},
        {6, 24, 0, false, false, false, 0.0, 0, false, 3000.0, false, true, 1.0},
        {8, 40, 0, false, false, false, 0.1, 0, false, 1.0, false, false, 1.0},
        {5, 5003, 0, false, true, true, 0.1, 2, true, 3.0, false, true, 2.5},
        {3, 20000, 0, false, false, false, 0.05, 0, false, 1.0, false, true, 1.0},
        {3, 20000, 0, true, true, false, 0.0, 0, false, 1.0, true, true, 1.0},
        {16, 1000, 1, false, false, false, 0.0, 0, false, 1.0, false, true, 1.0},
        {16, 1000, 1, true, true, true, 0.1, 0, true, 1.0, false, true, 3.0},
        {4, 32003, 1, false, false, false, 0.1, 1, false, 1.0, false, true, 1.0},
        {4, 32768, 1, false, true, false, 0.1, 0, true, 4.0, false, true, 1.0},
        {4, 2048, 1, false, false, false, 0.0, 0, false, 1.0, true, true, 1.0},
        {11, 77, 2, false, true, false, 0.1, 0, true, 1.0, false, true, 1.0},
        {3, 4096, 2, true, false, true, 0.0, 1, false, 2.0, false, true, 0.7},
        // The shared-memory row cache: part of the row (head cached, tail re-read), all of it, and the cases where it
        // must stand aside (misaligned rows take the scalar path; no gradient, nothing to keep).
        {4, 32768, 1, false, true, false, 0.1, 0, true, 4.0, false, true, 1.0, 20000},
        {3, 20000, 0, true, true, true, 0.05, 0, false, 1.0, false, true, 2.0, 8192},
        {3, 6000, 2, false, false, false, 0.0, 2, false, 1.0, false, true, 1.0, 6000},
        {2, 5000, 1, false, false, true, 0.1, 0, true, 1.0, false, true, 1.0, 1 << 20},
        {3, 4100, 1, false, false, false, 0.0, 0, false, 1.0, true, true, 1.0, 1024},
        {3, 4096, 0, false, true, false, 0.0, 1, false, 1.0, false, false, 1.0, 2048},
    };
    int failed = 0;
    unsigned seed = 1;
    for (const Case& cs : cases) failed += run(cs, seed++);
    printf("%d of %zu cases failed\n", failed, sizeof(cases) / sizeof(cases[0]));
    return failed != 0;
}
