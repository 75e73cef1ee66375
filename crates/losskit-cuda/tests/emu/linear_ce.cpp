// Runs the step sequence of a LinearCePlan (src/linear_ce.rs) under the CPU emulation of shim.h: its kernels
// (src/kernels/linear_ce.cu) as they are, its cuBLAS GEMMs as plain loops with cuBLAS's semantics (column-major
// C = alpha op(A) op(B) + beta C, products in f32, the sum in f64 then rounded to f32, alpha and beta applied in f32,
// one rounding to C's type; beta = 0 never reads C). Inputs are written by tests/gpu.rs, which compares the outputs
// with LinearCrossEntropy::compute_cpu (losskit-losses on H·Wᵀ, f64). `kernel.cu` is the kernel file with its
// PTX-only LkF16 struct removed (shim.h has one).
//
// Usage: linear_ce_emu IN OUT. IN (little-endian): i32 n, c, d, element type (0 f32, 1 bf16, 2 f16), label size
// (8 or 4), has class weights, has sample weights, has adjustment, grad, ws_rows, grad_ld, step count; i64 ignore
// index; f32 eps, wsum, gamma; H (n·d raw elements), W (c·d), labels (n), class weights (c f32, if any), sample weights
// (n f32, if any), adjustment (c f32, if any); then per step: u32 name length, name, and for a kernel i32 grid,
// block, row0, rows, col0, cols, for a GEMM (name "gemm") i32 trans_a, trans_b, m, n, k, three operands A, B, C of
// (i32 buffer, i64 offset, i32 ld) and f32 alpha, beta. Buffers: 0 H, 1 W, 2 tile as f32 logits, 3 tile as G (input
// type), 4 dH, 5 dW. OUT: f32 per-row losses (n), then with grad the raw dH (n·d elements) and dW (c·d), then one
// byte: 1 when a kernel wrote outside its buffers or a GEMM reached outside them, else 0.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "shim.h"

struct LkLceArgs;
typedef void (*Kernel)(LkLceArgs);
static std::map<std::string, Kernel>& table() {
    static std::map<std::string, Kernel> t;
    return t;
}
static bool lk_register(const char* name, Kernel k) {
    table()[name] = k;
    return true;
}
#define LK_REGISTER(NAME) static const bool lk_reg_##NAME = lk_register(#NAME, &NAME);

#include "kernel.cu"

template <class V>
static void get(FILE* f, V* out, size_t count) {
    if (count && fread(out, sizeof(V), count, f) != count) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
}

// A buffer with 64 poison bytes on each side.
struct Guarded {
    std::vector<unsigned char> bytes;
    size_t len;
    explicit Guarded(size_t n) : bytes(n + 128, 0x7e), len(n) {}
    unsigned char* data() { return bytes.data() + 64; }
    bool intact() const {
        for (size_t i = 0; i < 64; ++i)
            if (bytes[i] != 0x7e || bytes[64 + len + i] != 0x7e) return false;
        return true;
    }
};

// A typed view of a guarded buffer: type 0 f32, 1 bf16, 2 f16.
struct View {
    Guarded* buf;
    int type;
    size_t size() const { return buf->len / (type == 0 ? 4 : 2); }
    float load(size_t i) const {
        const unsigned char* p = buf->data() + i * (type == 0 ? 4 : 2);
        if (type == 0) {
            float f;
            memcpy(&f, p, 4);
            return f;
        }
        unsigned short h;
        memcpy(&h, p, 2);
        return type == 1 ? LkBf16::load(h) : LkF16::load(h);
    }
    void store(size_t i, float v) {
        unsigned char* p = buf->data() + i * (type == 0 ? 4 : 2);
        if (type == 0) {
            memcpy(p, &v, 4);
            return;
        }
        unsigned short h = type == 1 ? LkBf16::store(v) : LkF16::store(v);
        memcpy(p, &h, 2);
    }
};

static bool g_outside = false;

static float at(const View& v, long long i) {
    if (i < 0 || size_t(i) >= v.size()) {
        g_outside = true;
        return 0.0f;
    }
    return v.load(size_t(i));
}

// cuBLAS's column-major GEMM: C(i, j) = alpha sum_l op(A)(i, l) op(B)(l, j) + beta C(i, j).
static void gemm(int ta, int tb, int m, int n, int k, const View& a, long long oa, int lda, const View& b,
                 long long ob, int ldb, View& c, long long oc, int ldc, float alpha, float beta) {
    for (int j = 0; j < n; ++j) {
        for (int i = 0; i < m; ++i) {
            double acc = 0.0;
            for (int l = 0; l < k; ++l) {
                const float x = at(a, oa + (ta ? l + (long long)i * lda : i + (long long)l * lda));
                const float y = at(b, ob + (tb ? j + (long long)l * ldb : l + (long long)j * ldb));
                acc += (double)(x * y);
            }
            float r = alpha * (float)acc;
            const long long ci = oc + i + (long long)j * ldc;
            if (beta != 0.0f) r += beta * at(c, ci);
            if (ci < 0 || size_t(ci) >= c.size()) {
                g_outside = true;
                continue;
            }
            c.store(size_t(ci), r);
        }
    }
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: linear_ce_emu IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    int h[12];
    get(in, h, 12);
    const int n = h[0], c = h[1], d = h[2], type = h[3], lsize = h[4], has_cw = h[5], has_sw = h[6],
              has_adj = h[7], grad = h[8], ws_rows = h[9], grad_ld = h[10], ns = h[11];
    const int elem = type == 0 ? 4 : 2;
    long long ignore_index = 0;
    get(in, &ignore_index, 1);
    float p[3];
    get(in, p, 3);
    Guarded hb(size_t(n) * d * elem), wb(size_t(c) * d * elem), yb(size_t(n) * lsize);
    get(in, hb.data(), hb.len);
    get(in, wb.data(), wb.len);
    get(in, yb.data(), yb.len);
    std::vector<float> cw(has_cw ? c : 0), sw(has_sw ? n : 0), adj(has_adj ? c : 0);
    get(in, cw.data(), cw.size());
    get(in, sw.data(), sw.size());
    get(in, adj.data(), adj.size());
    Guarded ws(size_t(ws_rows) * c * 4), loss(size_t(n) * 4);
    Guarded dho(grad ? size_t(n) * d * elem : 0), dwo(grad ? size_t(c) * d * elem : 0);
    // The G view of the tile covers ws_rows rows of grad_ld elements of the input type: exactly the tile's bytes.
    if (size_t(ws_rows) * grad_ld * elem != ws.len) {
        fprintf(stderr, "grad_ld %d does not cover the tile\n", grad_ld);
        return 2;
    }
    View views[6] = {{&hb, type}, {&wb, type}, {&ws, 0}, {&ws, type}, {&dho, type}, {&dwo, type}};
    LkLceArgs a;
    a.y = yb.data();
    a.cw = has_cw ? cw.data() : nullptr;
    a.sw = has_sw ? sw.data() : nullptr;
    a.adj = has_adj ? adj.data() : nullptr;
    a.ws = reinterpret_cast<float*>(ws.data());
    a.loss = reinterpret_cast<float*>(loss.data());
    a.ignore_index = ignore_index;
    a.c = c;
    a.grad = grad;
    a.has_ignore = 1;
    a.eps = p[0];
    a.wsum = p[1];
    a.gamma = p[2];
    for (int s = 0; s < ns; ++s) {
        unsigned len = 0;
        get(in, &len, 1);
        std::string name(len, ' ');
        get(in, name.data(), len);
        if (name == "gemm") {
            int g[5];
            get(in, g, 5);
            int buf[3], ld[3];
            long long off[3];
            for (int o = 0; o < 3; ++o) {
                get(in, &buf[o], 1);
                get(in, &off[o], 1);
                get(in, &ld[o], 1);
                if (buf[o] < 0 || buf[o] > 5) {
                    fprintf(stderr, "bad buffer %d\n", buf[o]);
                    return 2;
                }
            }
            float ab[2];
            get(in, ab, 2);
            gemm(g[0], g[1], g[2], g[3], g[4], views[buf[0]], off[0], ld[0], views[buf[1]], off[1], ld[1],
                 views[buf[2]], off[2], ld[2], ab[0], ab[1]);
            continue;
        }
        int g[6];
        get(in, g, 6);
        auto it = table().find(name);
        if (it == table().end()) {
            fprintf(stderr, "no kernel %s\n", name.c_str());
            return 2;
        }
        LkLceArgs la = a;
        la.row0 = g[2];
        la.rows = g[3];
        Kernel k = it->second;
        launch(unsigned(g[0]), unsigned(g[1]), [&] { k(la); });
    }
    fclose(in);
    unsigned char outside = g_outside ? 1 : 0;
    for (const Guarded* b : {&hb, &wb, &yb, &ws, &loss, &dho, &dwo})
        if (!b->intact()) outside = 1;
    FILE* o = fopen(argv[2], "wb");
    if (!o) return 2;
    fwrite(loss.data(), 1, loss.len, o);
    if (grad) {
        fwrite(dho.data(), 1, dho.len, o);
        fwrite(dwo.data(), 1, dwo.len, o);
    }
    fwrite(&outside, 1, 1, o);
    fclose(o);
    return 0;
}
