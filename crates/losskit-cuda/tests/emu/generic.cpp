// Runs one kernel of a kernel file whose kernels take one `LkArgs` by value (src/kernels/pairwise.cu, knn.cu) under
// the CPU emulation of shim.h. Driven by the EmuExec of src/pairwise.rs (unit tests): `kernel.cu` is the kernel file
// followed by one LK_REGISTER(name) line per kernel.
//
// Usage: generic_emu IN OUT. IN (little-endian): u32 name length, name bytes, u32 grid, u32 block, u32 buffer count,
// then per buffer u64 length and its bytes (length 0 = a null pointer), then f32 f[8], i32 i[8]. The buffers become
// p[0], p[1], ... OUT: every non-null buffer's bytes in order after the launch, then one byte: 1 when the kernel wrote
// into the 64 poison bytes around a buffer, else 0.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#define LK_EMULATED 1
#include "shim.h"

static inline float pw_h2f(unsigned short h) { return LkF16::load(h); }
static inline unsigned short pw_f2h(float f) { return LkF16::store(f); }

struct LkArgs;
typedef void (*Kernel)(const LkArgs);
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

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: generic_emu IN OUT\n");
        return 2;
    }
    FILE* in = fopen(argv[1], "rb");
    if (!in) return 2;
    unsigned len = 0;
    get(in, &len, 1);
    std::string name(len, ' ');
    get(in, name.data(), len);
    unsigned grid = 0, block = 0, nbuf = 0;
    get(in, &grid, 1);
    get(in, &block, 1);
    get(in, &nbuf, 1);
    if (nbuf > 8) {
        fprintf(stderr, "at most 8 buffers\n");
        return 2;
    }
    const size_t pad = 64;
    std::vector<std::vector<unsigned char>> bufs(nbuf);
    std::vector<unsigned long long> lens(nbuf);
    LkArgs a{};
    for (unsigned b = 0; b < nbuf; ++b) {
        unsigned long long n = 0;
        get(in, &n, 1);
        lens[b] = n;
        bufs[b].assign(n + 2 * pad, 0x5a);
        get(in, bufs[b].data() + pad, n);
        a.p[b] = n ? (unsigned long long)(bufs[b].data() + pad) : 0ull;
    }
    get(in, a.f, 8);
    get(in, a.i, 8);
    fclose(in);
    auto it = table().find(name);
    if (it == table().end()) {
        fprintf(stderr, "no kernel %s\n", name.c_str());
        return 2;
    }
    Kernel k = it->second;
    launch(grid, block, [&] { k(a); });
    unsigned char outside = 0;
    FILE* o = fopen(argv[2], "wb");
    if (!o) return 2;
    for (unsigned b = 0; b < nbuf; ++b) {
        if (!lens[b]) continue;
        for (size_t q = 0; q < pad; ++q) {
            if (bufs[b][q] != 0x5a || bufs[b][pad + lens[b] + q] != 0x5a) outside = 1;
        }
        fwrite(bufs[b].data() + pad, 1, lens[b], o);
    }
    fwrite(&outside, 1, 1, o);
    fclose(o);
    return 0;
}
