// Runs one kernel of src/kernels/softmax_family.cu under the CPU emulation of shim.h on inputs written by tests/gpu.rs
// and writes the outputs back; tests/gpu.rs compares them with the CPU implementation in losskit-losses. `kernel.cu`
// is the kernel file with its PTX-only LkF16 struct removed (shim.h has one).
//
// Also runs the kernels of binary.cu (label size 0). Usage: family_emu IN OUT. IN (little-endian): u32 name length, name bytes, then i32 n, c, elem size (4 or 2),
// label size (8 or 4), has class weights, has sample weights, has ignore, grad, grid, block, misalign; i64 ignore
// index; f32 p0, p1, p2, gscale; then the logits (n·c raw elements), the labels (n), class weights (c f32, if any),
// sample weights (n f32, if any). OUT: f32 per-row losses (n), then the raw gradient (n·c elements) when grad is set,
// then one byte: 1 when the kernel wrote outside its buffers (or a gradient that was not asked for), else 0.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "shim.h"

typedef void (*Kernel)(const void*, const void*, const float*, const float*, void*, float*, int, int, long long, int,
                       float, float, float, float);
// Kernels of binary.cu (label size 0 in the input: the targets are raw elements like the scores).
typedef void (*BinKernel)(const void*, const void*, const float*, void*, float*, int, float, float, float, float);
static std::map<std::string, Kernel>& table() {
    static std::map<std::string, Kernel> t;
    return t;
}
static bool lk_register(const char* name, Kernel k) {
    table()[name] = k;
    return true;
}
#define LK_REGISTER(NAME) static const bool lk_reg_##NAME = lk_register(#NAME, reinterpret_cast<Kernel>(&NAME));

#include "kernel.cu"

template <class V>
static void get(FILE* f, V* out, size_t count) {
    if (count && fread(out, sizeof(V), count, f) != count) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: family_emu IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    unsigned len = 0;
    get(in, &len, 1);
    std::string name(len, ' ');
    get(in, name.data(), len);
    int h[11];
    get(in, h, 11);
    const int n = h[0], c = h[1], elem = h[2], lsize = h[3], has_cw = h[4], has_sw = h[5], has_ignore = h[6],
              grad = h[7], grid = h[8], block = h[9], misalign = h[10];
    long long ignore_index = 0;
    get(in, &ignore_index, 1);
    float p[4];
    get(in, p, 4);
    const size_t nc = size_t(n) * c, off = misalign ? 16 : 0;  // bytes of offset (breaks 16-byte alignment below)
    // Buffers padded by 64 poison bytes on both sides to catch out-of-bounds writes.
    std::vector<unsigned char> x(nc * elem + 128 + off), g(nc * elem + 128 + off, 0x7e);
    unsigned char* xp = x.data() + 64 + (misalign ? elem : 0);
    unsigned char* gp = g.data() + 64 + (misalign ? elem : 0);
    get(in, xp, nc * elem);
    std::vector<unsigned char> y(size_t(n) * (lsize ? lsize : elem));
    get(in, y.data(), y.size());
    std::vector<float> cw(has_cw ? c : 0), sw(has_sw ? n : 0);
    get(in, cw.data(), cw.size());
    get(in, sw.data(), sw.size());
    fclose(in);
    auto it = table().find(name);
    if (it == table().end()) {
        fprintf(stderr, "no kernel %s\n", name.c_str());
        return 2;
    }
    std::vector<float> loss(n + 32, -7.0f);
    Kernel k = it->second;
    launch(unsigned(grid), unsigned(block), [&] {
        if (lsize == 0) {
            reinterpret_cast<BinKernel>(k)(xp, y.data(), has_sw ? sw.data() : nullptr, grad ? (void*)gp : nullptr,
                                           loss.data(), n, p[0], p[1], p[2], p[3]);
            return;
        }
        k(xp, y.data(), has_cw ? cw.data() : nullptr, has_sw ? sw.data() : nullptr, grad ? (void*)gp : nullptr,
          loss.data(), n, c, ignore_index, has_ignore, p[0], p[1], p[2], p[3]);
    });
    unsigned char outside = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        const bool inside = grad && g.data() + i >= gp && g.data() + i < gp + nc * elem;
        if (!inside && g[i] != 0x7e) outside = 1;
    }
    for (int i = n; i < n + 32; ++i)
        if (loss[i] != -7.0f) outside = 1;
    FILE* o = fopen(argv[2], "wb");
    if (!o) return 2;
    fwrite(loss.data(), sizeof(float), n, o);
    if (grad) fwrite(gp, 1, nc * elem, o);
    fwrite(&outside, 1, 1, o);
    fclose(o);
    return 0;
}
