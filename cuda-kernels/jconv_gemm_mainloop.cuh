// jconv_gemm_mainloop.cuh: the FP32 SIMT GEMM main loop that the implicit GEMMs (implicit_gemm.cu: fprop and dgrad;
// wgrad.cu) and the plain GEMM (sgemm.cu) share; each supplies a loader that knows where its operands live.
//
// A block computes a BM x BN tile of D = A * B over `steps` 8-deep steps of the reduction. THREADS = BM/8 * BN/8
// threads, each with 8 x 8 accumulators: rows GemmTile::row(i) = ty*4 + i (i < 4) and BM/2 + ty*4 + i - 4, columns
// likewise with tx, so each 8-deep step is 4 x 128-bit shared loads and 64 FFMA per thread per depth. Shared memory
// is double-buffered with register staging (jconv_staged_steps): the next step's global loads are issued before this
// step's FMAs and stored to the other buffer after them, one barrier per step.
//
// A loader is built per thread (its coordinates found once, before the loop) and provides
//   load(ra, rb): this step's A_LOADS elements of A, row GemmTile::aRow() at depths aKk() + A_KK * i, and B_LOADS
//                 elements of B, column bCol() at depths bKk() + B_KK * i, 0 outside the operands, as its Value
//                 (float; the half-precision main loop also takes jconv_f16 / jconv_bf16, loaded from 16-bit tensors);
//   advance():    to the next step, without dividing.
#pragma once
#include "jconv_common.cuh"

#define JCONV_DEPTH 8

template <int BM, int BN>
struct GemmTile {
    static constexpr int THREADS = (BM / 8) * (BN / 8);
    static constexpr int A_LOADS = BM * JCONV_DEPTH / THREADS, A_KK = THREADS / BM;
    static constexpr int B_LOADS = BN * JCONV_DEPTH / THREADS, B_KK = THREADS / BN;
    static_assert(A_LOADS * A_KK == JCONV_DEPTH && B_LOADS * B_KK == JCONV_DEPTH, "tile and thread count do not divide");
    static __device__ __forceinline__ int aRow() { return (int)threadIdx.x % BM; }
    static __device__ __forceinline__ int aKk() { return (int)threadIdx.x / BM; }
    static __device__ __forceinline__ int bCol() { return (int)threadIdx.x % BN; }
    static __device__ __forceinline__ int bKk() { return (int)threadIdx.x / BN; }
    // the tile row of this thread's accumulator row i, and the tile column of its column j
    static __device__ __forceinline__ int row(int i) {
        const int ty = (int)threadIdx.x / (BN / 8);
        return i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4;
    }
    static __device__ __forceinline__ int col(int j) {
        const int tx = (int)threadIdx.x % (BN / 8);
        return j < 4 ? tx * 4 + j : BN / 2 + tx * 4 + j - 4;
    }
};

// base[stride * i], as one wide multiply-add of the address (offsets within an operand fit in 32 bits).
template <typename T>
__device__ __forceinline__ T load_strided(const T* base, unsigned stride, int i) {
    return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(base) + (unsigned long long)(stride * (unsigned)sizeof(T)) * (unsigned)i);
}

// dst[at..at+3] = src[0..3], one 128-bit shared load (src 16-byte aligned).
__device__ __forceinline__ void lds128(float (&dst)[8], int at, const float* src) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[at] = v.x;
    dst[at + 1] = v.y;
    dst[at + 2] = v.z;
    dst[at + 3] = v.w;
}

// The pipeline both main loops run (this one and jconv_mma_mainloop.cuh's): stage step 0 (store(0, 0)), then per step
// issue the next step's global loads (into ra, rb) before compute(buffer, step) on this step's shared buffer, store
// them into the other buffer (store(buffer, step they belong to)) after it, and one barrier.
template <typename Loader, typename V, int NA, int NB, typename Store, typename Compute>
__device__ __forceinline__ void jconv_staged_steps(Loader& ld, int steps, V (&ra)[NA], V (&rb)[NB], Store store, Compute compute) {
    ld.load(ra, rb);
    store(0, 0);
    __syncthreads();
    for (int step = 0; step < steps; step++) {
        const int cur = step & 1;
        const bool more = step + 1 < steps;
        if (more) {
            ld.advance();
            ld.load(ra, rb);
        }
        compute(cur, step);
        if (more) store(cur ^ 1, step + 1);
        __syncthreads();
    }
}

// acc = the block's A * B over `steps` steps of the loader (acc zeroed first; no step: zeros).
template <int BM, int BN, typename Loader>
__device__ __forceinline__ void gemm_mainloop(Loader& ld, int steps, float (&acc)[8][8]) {
    using T = GemmTile<BM, BN>;
    __shared__ __align__(16) float As[2][JCONV_DEPTH][BM];
    __shared__ __align__(16) float Bs[2][JCONV_DEPTH][BN];
    const int aRow = T::aRow(), aKk = T::aKk(), bCol = T::bCol(), bKk = T::bKk();
    const int tx = (int)threadIdx.x % (BN / 8), ty = (int)threadIdx.x / (BN / 8);
    JCONV_UNROLL
    for (int i = 0; i < 8; i++)
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
    if (steps <= 0) return;
    float ra[T::A_LOADS], rb[T::B_LOADS];
    auto store = [&](int buf, int) {
        JCONV_UNROLL
        for (int i = 0; i < T::A_LOADS; i++) As[buf][aKk + T::A_KK * i][aRow] = ra[i];
        JCONV_UNROLL
        for (int i = 0; i < T::B_LOADS; i++) Bs[buf][bKk + T::B_KK * i][bCol] = rb[i];
    };
    jconv_staged_steps(ld, steps, ra, rb, store, [&](int cur, int) {
        JCONV_UNROLL
        for (int kk = 0; kk < JCONV_DEPTH; kk++) {
            float fa[8], fb[8];
            lds128(fa, 0, &As[cur][kk][ty * 4]);
            lds128(fa, 4, &As[cur][kk][BM / 2 + ty * 4]);
            lds128(fb, 0, &Bs[cur][kk][tx * 4]);
            lds128(fb, 4, &Bs[cur][kk][BN / 2 + tx * 4]);
            JCONV_UNROLL
            for (int i = 0; i < 8; i++)
                JCONV_UNROLL
                for (int j = 0; j < 8; j++) acc[i][j] += fa[i] * fb[j];
        }
    });
}
