// Runs the launch sequence of an AnyLossPlan (src/binary.rs) over the kernels of src/kernels/anyloss.cu under the CPU
// emulation of shim.h, on inputs written by tests/gpu.rs, and writes the outputs back; tests/gpu.rs compares them with
// losskit_losses::AnyLoss. `kernel.cu` is the kernel file with its PTX-only LkF16 struct removed (shim.h has one).
//
// Usage: anyloss_emu IN OUT. IN (little-endian): i32 n, c, elem size (4 or 2), target size (the element size for
// the binary form, 8 or 4 for labels), has relative weights, grad, metric, launch count; f32 amp, beta2, gscale; the
// inputs (n·c raw elements), the targets (n), the relative weights (n f32, if any); per launch: u32 name length,
// name, i32 grid, block. OUT: f64 column losses (c), then with grad the raw gradient (n·c elements), then one byte: 1
// when a kernel wrote outside its buffers, else 0.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "shim.h"

struct LkAnyArgs;
typedef void (*Kernel)(LkAnyArgs);
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
        fprintf(stderr, "usage: anyloss_emu IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    int h[8];
    get(in, h, 8);
    const int n = h[0], c = h[1], elem = h[2], tsize = h[3], has_rel = h[4], grad = h[5], metric = h[6], nl = h[7];
    float p[3];
    get(in, p, 3);
    Guarded x(size_t(n) * c * elem), t(size_t(n) * tsize), rel(has_rel ? size_t(n) * 4 : 0);
    get(in, x.data(), x.len);
    get(in, t.data(), t.len);
    get(in, rel.data(), rel.len);
    Guarded rowst(size_t(n) * 8), coef(size_t(c) * 8), closs(size_t(c) * 8), g(grad ? size_t(n) * c * elem : 0);
    LkAnyArgs a;
    a.x = x.data();
    a.t = t.data();
    a.rel = has_rel ? reinterpret_cast<const float*>(rel.data()) : nullptr;
    a.rowst = reinterpret_cast<float*>(rowst.data());
    a.coef = reinterpret_cast<float*>(coef.data());
    a.closs = reinterpret_cast<double*>(closs.data());
    a.g = grad ? g.data() : nullptr;
    a.n = n;
    a.c = c;
    a.metric = metric;
    a.amp = p[0];
    a.beta2 = p[1];
    a.gscale = p[2];
    for (int l = 0; l < nl; ++l) {
        unsigned len = 0;
        get(in, &len, 1);
        std::string name(len, ' ');
        get(in, name.data(), len);
        int gb[2];
        get(in, gb, 2);
        auto it = table().find(name);
        if (it == table().end()) {
            fprintf(stderr, "no kernel %s\n", name.c_str());
            return 2;
        }
        Kernel k = it->second;
        launch(unsigned(gb[0]), unsigned(gb[1]), [&] { k(a); });
    }
    fclose(in);
    unsigned char outside = 0;
    for (const Guarded* b : {&x, &t, &rel, &rowst, &coef, &closs, &g})
        if (!b->intact()) outside = 1;
    FILE* o = fopen(argv[2], "wb");
    if (!o) return 2;
    fwrite(closs.data(), 1, closs.len, o);
    if (grad) fwrite(g.data(), 1, g.len, o);
    fwrite(&outside, 1, 1, o);
    fclose(o);
    return 0;
}
