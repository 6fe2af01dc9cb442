// jconv_mma_mainloop.cuh: the tensor-core counterpart of jconv_gemm_mainloop.cuh: the same tiles, thread counts and
// loaders (a loader does not know which main loop it feeds), the reduction on mma.sync.m16n8k8 TF32 (sm_80+).
//
// Math: MmaMath::TF32 rounds each operand to TF32 (jconv_to_tf32, cvt.rna) as it is staged into shared memory and
// issues one MMA per 16 x 8 x 8 product, accumulating in FP32 (PyTorch's allow_tf32). MmaMath::TF32X3 (CUTLASS's 3xTF32) splits each operand x into
// big = tf32(x) and small = tf32(x - big) and issues small*big + big*small + big*big (the small*small term is below
// FP32's rounding): FP32-level accuracy on the tensor cores. An infinite or NaN operand takes no part in the cross
// terms (jconv_split_tf32), so big*big alone carries it and results are non-finite exactly where FP32's are.
//
// Warps: BM/64 x BN/32, each a 64 x 32 warp tile = 4 x 4 MMA tiles of 16 x 8, 64 FP32 accumulators per thread. Rows
// and columns are permuted (the order of a GEMM's rows and columns is free) so that each lane's operands are
// contiguous in shared memory: MMA tile i's row r is warp row 8*(r % 8) + 2i + r / 8 and tile j's column c is warp
// column 4c + j, so lane (g = lane / 4, t = lane % 4) reads A at warp rows 8g..8g+7 (two 128-bit loads per depth) and
// B at warp columns 4g..4g+3 (one 128-bit load per depth), for depths t and t + 4. Its accumulators are then the
// 8 x 8 block acc[a][b] at warp row 8g + a, warp column 8t + b (MmaTile::row / col).
//
// Shared memory is As[depth][BM] and Bs[depth][BN] as in the SIMT loop, XOR-swizzled so that those 128-bit loads have
// no bank conflicts: the 16-byte chunk of row m at depth k moves by jconv_swizzle_a(k) (chunk bits 0 and 2 flipped
// by the two low bits of k), and of column n by jconv_swizzle_b(k) (chunk bits 1 and 2); the loaders' stores (32
// consecutive rows per warp) stay conflict-free as the swizzle permutes within aligned groups of 32 floats. Double
// buffered with register staging, one barrier per 8-deep step, as the SIMT loop.
#pragma once
#include "jconv_gemm_mainloop.cuh"
#include "jconv_warp.cuh"

enum class MmaMath : int { TF32 = 1, TF32X3 = 3 };

// the float offset XOR-ed into row m (A) or column n (B) at depth k
__device__ __forceinline__ int jconv_swizzle_a(int k) { return ((k & 1) | ((k & 2) << 1)) << 2; }  // 0, 4, 16, 20
__device__ __forceinline__ int jconv_swizzle_b(int k) { return (k & 3) << 3; }                     // 0, 8, 16, 24

template <int BM, int BN>
struct MmaTile {
    static constexpr int WARPS_M = BM / 64, WARPS_N = BN / 32;
    static_assert(WARPS_M * WARPS_N * 32 == GemmTile<BM, BN>::THREADS, "the MMA warps must be the SIMT tile's threads");
    static __device__ __forceinline__ int warpRow() { return (int)threadIdx.x / 32 % WARPS_M * 64; }
    static __device__ __forceinline__ int warpCol() { return (int)threadIdx.x / 32 / WARPS_M * 32; }
    // the tile row of this thread's accumulator row a (< 8), and the tile column of its column b (< 8)
    static __device__ __forceinline__ int row(int a) { return warpRow() + (int)threadIdx.x % 32 / 4 * 8 + a; }
    static __device__ __forceinline__ int col(int b) { return warpCol() + (int)threadIdx.x % 4 * 8 + b; }
};

template <int N>
__device__ __forceinline__ void lds128n(float (&dst)[N], int at, const float* src) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[at] = v.x;
    dst[at + 1] = v.y;
    dst[at + 2] = v.z;
    dst[at + 3] = v.w;
}

// big = tf32(x); small = tf32(x - big); cross = big for the cross terms small*big and big*small. Where x is infinite or
// NaN, small and cross are 0: the cross terms stay finite (an infinite big times the other operand's small part, which
// may be 0 or of the opposite sign, would make NaN) and big*big alone carries the non-finite value, as FP32 does.
__device__ __forceinline__ void jconv_split_tf32(float x, unsigned& big, unsigned& small, unsigned& cross) {
    big = jconv_to_tf32(x);
    const bool finite = fabsf(x) <= 3.402823466e38f;
    const float rest = x - __int_as_float((int)big);
    small = finite ? jconv_to_tf32(rest) : 0u;
    cross = finite ? big : 0u;
}

// acc (as MmaTile lays it out) = the block's A * B over `steps` steps of the loader (zeros first; no step: zeros).
template <int BM, int BN, MmaMath MATH, typename Loader>
__device__ __forceinline__ void mma_mainloop(Loader& ld, int steps, float (&acc)[8][8]) {
    using T = GemmTile<BM, BN>;
    using W = MmaTile<BM, BN>;
    __shared__ __align__(16) float As[2][JCONV_DEPTH][BM];
    __shared__ __align__(16) float Bs[2][JCONV_DEPTH][BN];
    JCONV_UNROLL
    for (int i = 0; i < 8; i++)
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
    if (steps <= 0) return;
    const int aRow = T::aRow(), aKk = T::aKk(), bCol = T::bCol(), bKk = T::bKk();
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
    // this lane's fragment addresses: depths t and t + 4 share the swizzle
    const int aAt = (W::warpRow() + 8 * g) ^ jconv_swizzle_a(t), bAt = (W::warpCol() + 4 * g) ^ jconv_swizzle_b(t);
    float ra[T::A_LOADS], rb[T::B_LOADS];
    // TF32 rounds as it stores (each element once); 3xTF32 stores FP32 and splits in the fragments
    auto stored = [](float x) { return MATH == MmaMath::TF32 ? __int_as_float((int)jconv_to_tf32(x)) : x; };
    auto store = [&](int buf) {
        JCONV_UNROLL
        for (int i = 0; i < T::A_LOADS; i++) {
            const int k = aKk + T::A_KK * i;
            As[buf][k][aRow ^ jconv_swizzle_a(k)] = stored(ra[i]);
        }
        JCONV_UNROLL
        for (int i = 0; i < T::B_LOADS; i++) {
            const int k = bKk + T::B_KK * i;
            Bs[buf][k][bCol ^ jconv_swizzle_b(k)] = stored(rb[i]);
        }
    };
    ld.load(ra, rb);
    store(0);
    __syncthreads();
    for (int step = 0; step < steps; step++) {
        const int cur = step & 1;
        const bool more = step + 1 < steps;
        if (more) {
            ld.advance();
            ld.load(ra, rb);
        }
        float fa0[8], fa1[8], fb0[4], fb1[4];  // A rows 8g..8g+7 and B columns 4g..4g+3 at depths t and t + 4
        lds128n(fa0, 0, &As[cur][t][aAt]);
        lds128n(fa0, 4, &As[cur][t][aAt ^ 4]);
        lds128n(fa1, 0, &As[cur][t + 4][aAt]);
        lds128n(fa1, 4, &As[cur][t + 4][aAt ^ 4]);
        lds128n(fb0, 0, &Bs[cur][t][bAt]);
        lds128n(fb1, 0, &Bs[cur][t + 4][bAt]);
        unsigned ab[4][4], as[4][4], ac[4][4], bb[4][2], bs[4][2], bc[4][2];  // big, small, cross (3xTF32)
        JCONV_UNROLL
        for (int i = 0; i < 4; i++) {
            const float x[4] = {fa0[2 * i], fa0[2 * i + 1], fa1[2 * i], fa1[2 * i + 1]};
            JCONV_UNROLL
            for (int e = 0; e < 4; e++) {
                if constexpr (MATH == MmaMath::TF32X3) jconv_split_tf32(x[e], ab[i][e], as[i][e], ac[i][e]);
                else ab[i][e] = (unsigned)__float_as_int(x[e]);  // rounded when stored
            }
        }
        JCONV_UNROLL
        for (int j = 0; j < 4; j++) {
            const float y[2] = {fb0[j], fb1[j]};
            JCONV_UNROLL
            for (int e = 0; e < 2; e++) {
                if constexpr (MATH == MmaMath::TF32X3) jconv_split_tf32(y[e], bb[j][e], bs[j][e], bc[j][e]);
                else bb[j][e] = (unsigned)__float_as_int(y[e]);
            }
        }
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) {
                float c[4] = {acc[2 * i][j], acc[2 * i][4 + j], acc[2 * i + 1][j], acc[2 * i + 1][4 + j]};
                if constexpr (MATH == MmaMath::TF32X3) {
                    jconv_mma_m16n8k8_tf32(c, as[i], bc[j], c);
                    jconv_mma_m16n8k8_tf32(c, ac[i], bs[j], c);
                }
                jconv_mma_m16n8k8_tf32(c, ab[i], bb[j], c);
                acc[2 * i][j] = c[0];
                acc[2 * i][4 + j] = c[1];
                acc[2 * i + 1][j] = c[2];
                acc[2 * i + 1][4 + j] = c[3];
            }
        if (more) store(cur ^ 1);
        __syncthreads();
    }
}
