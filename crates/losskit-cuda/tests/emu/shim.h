// CPU emulation of the CUDA features the losskit kernels use, so their logic can be tested without a GPU:
// blocks run one after another, each CUDA thread of a block is a std::thread, __syncthreads is a std::barrier over the
// block and __shfl_xor_sync exchanges through a buffer between two barriers over the warp. `__shared__` becomes
// `static`, which is right because only one block runs at a time. Used by tests/gpu.rs (`kernels_match_oracle_...`).
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>
#include <math.h>
struct uint4 { unsigned int x, y, z, w; };
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
struct dim3 { unsigned x = 1, y = 1, z = 1; };
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
// Dynamic shared memory: one buffer, sized by the emulator before a launch (one block runs at a time).
static std::vector<uint4> g_dyn_smem;
#define LK_DYNAMIC_SHARED(TYPE, NAME) TYPE* NAME = reinterpret_cast<TYPE*>(g_dyn_smem.data())
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static std::unique_ptr<std::barrier<>> g_block_bar;
static std::vector<std::unique_ptr<std::barrier<>>> g_warp_bars;
static std::vector<float> g_shfl;
// 16-bit float conversions for the emulated LkF16 (the real one uses PTX cvt instructions).
struct LkF16 {
    typedef unsigned short raw;
    enum { VEC = 8 };
    static inline float load(unsigned short h) { _Float16 v; memcpy(&v, &h, 2); return (float)v; }
    static inline unsigned short store(float f) { _Float16 v = (_Float16)f; unsigned short h; memcpy(&h, &v, 2); return h; }
};
static inline void __syncthreads() { g_block_bar->arrive_and_wait(); }
static inline float __shfl_xor_sync(unsigned, float v, int off) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    g_shfl[warp * 32 + lane] = v;
    g_warp_bars[warp]->arrive_and_wait();
    float r = g_shfl[warp * 32 + (lane ^ off)];
    g_warp_bars[warp]->arrive_and_wait();
    return r;
}
static void launch(unsigned grid, unsigned block, const std::function<void()>& k) {
    blockDim.x = block; gridDim.x = grid;
    for (unsigned b = 0; b < grid; ++b) {
        g_block_bar = std::make_unique<std::barrier<>>(block);
        g_warp_bars.clear();
        for (unsigned w = 0; w < block / 32; ++w) g_warp_bars.push_back(std::make_unique<std::barrier<>>(32));
        g_shfl.assign(block, 0.f);
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; ++t) ts.emplace_back([=, &k] { threadIdx.x = t; blockIdx.x = b; k(); });
        for (auto& t : ts) t.join();
    }
}
