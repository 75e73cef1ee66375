// Exact k-nearest-neighbour candidates (src/knn.rs), the GPU half of losskit_samplers::knn's strategy.
//
// The host centres and scales the data exactly as the CPU search does (f32 rows x̃), and lets cuBLAS write, for a
// block of data rows j0..j0+nb and a tile of queries q0..q0+t, the transposed product tile Gᵀ[jj, r] = x̃_{j0+jj}·q̃_r
// (nb × t, row-major), so that the threads of a warp (consecutive queries) read consecutive addresses. knn_select
// gives each query one thread, which turns the tile into approximate squared distances a = ‖q̃‖² + ‖x̃‖² − 2·q̃·x̃ (f32)
// and keeps the K smallest (K = k + a margin) in a list sorted by a, ties to the earlier column, across data blocks.
// The host then re-ranks the candidates by the exact f64 distance and proves, from an error bound, that no row
// outside the list can be among the k nearest (else it searches that query exactly on the CPU).
//
// Every kernel takes one LkArgs by value (as pairwise.cu).

struct LkArgs {
    unsigned long long p[8];
    float f[8];
    int i[8];
};

// p0 Gᵀ tile f32 [nb, t]; p1 query squared norms f32 [m]; p2 data squared norms f32 [n]; p3 list values f32 [K, m]
// (slot-major: slot s of query q at s·m + q); p4 list indices i32 [K, m]; p5 each query's own data row i32 [m] to
// exclude, or 0. i0 q0, i1 t, i2 j0, i3 nb, i4 K, i5 m.
extern "C" __global__ void knn_select(const LkArgs a) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    const int t = a.i[1];
    if (r >= t) {
        return;
    }
    const int q = a.i[0] + r;
    const int j0 = a.i[2], nb = a.i[3], kk = a.i[4];
    const long long m = a.i[5];
    // Distinct buffers (__restrict__): lets the compiler keep several tile loads in flight across the list updates.
    const float* __restrict__ g = (const float*)a.p[0];
    const float qn = ((const float*)a.p[1])[q];
    const float* __restrict__ bn = (const float*)a.p[2];
    float* __restrict__ vals = (float*)a.p[3];
    int* __restrict__ idx = (int*)a.p[4];
    const int self = a.p[5] ? ((const int*)a.p[5])[q] : -1;
    float thr = vals[(long long)(kk - 1) * m + q];
    for (int jj = 0; jj < nb; ++jj) {
        const int j = j0 + jj;
        const float d = qn + bn[j] - 2.0f * g[(long long)jj * t + r];
        // Strict: among equal values the earlier column stays (columns arrive in increasing order).
        if (d < thr && j != self) {
            int s = kk - 1;
            while (s > 0 && vals[(long long)(s - 1) * m + q] > d) {
                vals[(long long)s * m + q] = vals[(long long)(s - 1) * m + q];
                idx[(long long)s * m + q] = idx[(long long)(s - 1) * m + q];
                --s;
            }
            vals[(long long)s * m + q] = d;
            idx[(long long)s * m + q] = j;
            thr = vals[(long long)(kk - 1) * m + q];
        }
    }
}
