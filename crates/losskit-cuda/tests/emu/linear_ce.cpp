// Runs the launch sequence of a LinearCePlan (src/linear_ce.rs) over the kernels of src/kernels/linear_ce.cu under
// the CPU emulation of shim.h, on inputs written by tests/gpu.rs, and writes the outputs back; tests/gpu.rs compares
// them with LinearCrossEntropy::compute_cpu (losskit-losses on H·Wᵀ, f64). `kernel.cu` is the kernel file with its
// PTX-only LkF16 struct removed (shim.h has one).
//
// Usage: linear_ce_emu IN OUT. IN (little-endian): i32 n, c, d, elem size (4 or 2), label size (8 or 4), has class
// weights, has sample weights, has adjustment, grad, ws_rows, ws_cols, launch count; i64 ignore index; f32 eps, wsum,
// gscale, gamma; H (n·d raw elements), W (c·d), labels (n), class weights (c f32, if any), sample weights (n f32, if
// any), adjustment (c f32, if any); then per launch: u32 name length, name, i32 grid, block, row0, rows, col0, cols.
// OUT: f32 per-row losses (n), then with grad the raw dH (n·d elements) and dW (c·d), then one byte: 1 when a kernel
// wrote outside its buffers, else 0.
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

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: linear_ce_emu IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    int h[12];
    get(in, h, 12);
    const int n = h[0], c = h[1], d = h[2], elem = h[3], lsize = h[4], has_cw = h[5], has_sw = h[6], has_adj = h[7],
              grad = h[8], ws_rows = h[9], ws_cols = h[10], nl = h[11];
    long long ignore_index = 0;
    get(in, &ignore_index, 1);
    float p[4];
    get(in, p, 4);
    Guarded hb(size_t(n) * d * elem), wb(size_t(c) * d * elem), yb(size_t(n) * lsize);
    get(in, hb.data(), hb.len);
    get(in, wb.data(), wb.len);
    get(in, yb.data(), yb.len);
    std::vector<float> cw(has_cw ? c : 0), sw(has_sw ? n : 0), adj(has_adj ? c : 0);
    get(in, cw.data(), cw.size());
    get(in, sw.data(), sw.size());
    get(in, adj.data(), adj.size());
    Guarded ws(size_t(ws_rows) * ws_cols * 4), st(size_t(n) * 8 * 4), co(size_t(n) * 4 * 4), loss(size_t(n) * 4);
    Guarded dh(grad ? size_t(n) * d * 4 : 0), dw(grad ? size_t(ws_cols) * d * 4 : 0);
    Guarded dho(grad ? size_t(n) * d * elem : 0), dwo(grad ? size_t(c) * d * elem : 0);
    LkLceArgs a;
    a.h = hb.data();
    a.w = wb.data();
    a.y = yb.data();
    a.cw = has_cw ? cw.data() : nullptr;
    a.sw = has_sw ? sw.data() : nullptr;
    a.adj = has_adj ? adj.data() : nullptr;
    a.ws = reinterpret_cast<float*>(ws.data());
    a.st = reinterpret_cast<float*>(st.data());
    a.co = reinterpret_cast<float*>(co.data());
    a.loss = reinterpret_cast<float*>(loss.data());
    a.dh = grad ? reinterpret_cast<float*>(dh.data()) : nullptr;
    a.dw = grad ? reinterpret_cast<float*>(dw.data()) : nullptr;
    a.dh_out = grad ? dho.data() : nullptr;
    a.dw_out = grad ? dwo.data() : nullptr;
    a.ignore_index = ignore_index;
    a.n = n;
    a.c = c;
    a.d = d;
    a.has_ignore = 1;
    a.eps = p[0];
    a.wsum = p[1];
    a.gscale = p[2];
    a.gamma = p[3];
    for (int l = 0; l < nl; ++l) {
        unsigned len = 0;
        get(in, &len, 1);
        std::string name(len, ' ');
        get(in, name.data(), len);
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
        la.col0 = g[4];
        la.cols = g[5];
        Kernel k = it->second;
        launch(unsigned(g[0]), unsigned(g[1]), [&] { k(la); });
    }
    fclose(in);
    unsigned char outside = 0;
    for (const Guarded* b : {&hb, &wb, &yb, &ws, &st, &co, &loss, &dh, &dw, &dho, &dwo})
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
