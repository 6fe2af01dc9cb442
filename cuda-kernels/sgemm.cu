// sgemm.cu: our own SGEMM, used by im2col when cuBLAS is not loaded (io.github.jconv.cuda.SgemmLauncher): a batch of
// products, one per blockIdx.z (BatchedGemmParams, jconv_common.cuh: each operand of product b at its own offset).
// C[m x n] (row-major, leading dimension ldc) = A * B (+ C when accumulate); A(i, l) = a[i*aRow + l*aCol],
// B(l, j) = b[l*bRow + j*bCol], so either operand may be transposed. Each C element is stored once, through the
// epilogue (res: a residual laid out like C, read only when g.residual says so).
// The main loop is jconv_gemm_mainloop.cuh's (tiles of BM x BN, 8 x 8 accumulators per thread, 128-bit shared loads);
// grid (n tiles, m tiles, products). Each thread loads one row of A and one column of B per step, by pointer adds.
// jconv_epilogue_pass: the epilogue alone on C (m x n, ldc), for a product cuBLAS computed (one thread per element).
#include "jconv_gemm_mainloop.cuh"

template <int BM, int BN>
struct GemmLoader {
    using T = GemmTile<BM, BN>;
    const GemmParams& g;
    const float* ap;
    const float* bp;
    bool aOk, bOk;
    int aKk, bKk, l0;

    __device__ GemmLoader(const GemmParams& gp, const float* a, const float* b) : g(gp), l0(0) {  // a, b: this product's
        const int i = (int)blockIdx.y * BM + T::aRow(), j = (int)blockIdx.x * BN + T::bCol();
        aOk = i < g.m;
        bOk = j < g.n;
        aKk = T::aKk();
        bKk = T::bKk();
        ap = a + (i64)(aOk ? i : 0) * g.aRow + (i64)aKk * g.aCol;
        bp = b + (i64)(bOk ? j : 0) * g.bCol + (i64)bKk * g.bRow;
    }

    template <int NA, int NB>
    __device__ __forceinline__ void load(float (&ra)[NA], float (&rb)[NB]) const {
        const int aLeft = g.k - l0 - aKk, bLeft = g.k - l0 - bKk;  // depths of this step still below k
        JCONV_UNROLL
        for (int t = 0; t < NA; t++) ra[t] = (aOk && T::A_KK * t < aLeft) ? load_strided(ap, T::A_KK * g.aCol, t) : 0.0f;
        JCONV_UNROLL
        for (int t = 0; t < NB; t++) rb[t] = (bOk && T::B_KK * t < bLeft) ? load_strided(bp, T::B_KK * g.bRow, t) : 0.0f;
    }

    __device__ __forceinline__ void advance() {
        l0 += JCONV_DEPTH;
        ap += (i64)JCONV_DEPTH * g.aCol;
        bp += (i64)JCONV_DEPTH * g.bRow;
    }
};

// product b's offset in an operand: sample * sampleStride + group * groupStride (b = sample * groups + group)
__device__ __forceinline__ i64 batch_offset(int b, int groups, int sampleStride, int groupStride) {
    const int sample = b / groups;
    return (i64)sample * sampleStride + (i64)(b - sample * groups) * groupStride;
}

template <int BM, int BN>
__device__ __forceinline__ void sgemm_tile(const BatchedGemmParams& bp, const float* __restrict__ a, const float* __restrict__ b,
                                           const float* __restrict__ res, float* __restrict__ c) {
    using T = GemmTile<BM, BN>;
    const GemmParams& g = bp.g;
    const int batch = bp.first + (int)blockIdx.z;
    const i64 cOff = batch_offset(batch, bp.groups, bp.cSample, bp.cGroup);
    GemmLoader<BM, BN> ld(g, a + batch_offset(batch, bp.groups, bp.aSample, bp.aGroup), b + batch_offset(batch, bp.groups, bp.bSample, bp.bGroup));
    float acc[8][8];
    gemm_mainloop<BM, BN>(ld, (g.k + JCONV_DEPTH - 1) / JCONV_DEPTH, acc);
    float* cb = c + cOff;
    const float* rb = res + cOff;
    JCONV_UNROLL
    for (int i = 0; i < 8; i++) {
        const int gi = (int)blockIdx.y * BM + T::row(i);
        if (gi >= g.m) continue;
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) {
            const int gj = (int)blockIdx.x * BN + T::col(j);
            if (gj >= g.n) continue;
            const i64 at = (i64)gi * g.ldc + gj;
            cb[at] = jconv_epilogue(g.activation, g.residual, g.accumulate ? cb[at] + acc[i][j] : acc[i][j], rb, at);
        }
    }
}

#define JCONV_SGEMM_ARGS BatchedGemmParams g, const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ res, \
                         float* __restrict__ c
extern "C" __global__ void __launch_bounds__(256) jconv_sgemm_128x128(JCONV_SGEMM_ARGS) { sgemm_tile<128, 128>(g, a, b, res, c); }
JCONV_KERNEL_REGISTER(jconv_sgemm_128x128)
extern "C" __global__ void __launch_bounds__(128) jconv_sgemm_128x64(JCONV_SGEMM_ARGS) { sgemm_tile<128, 64>(g, a, b, res, c); }
JCONV_KERNEL_REGISTER(jconv_sgemm_128x64)
extern "C" __global__ void __launch_bounds__(128) jconv_sgemm_64x128(JCONV_SGEMM_ARGS) { sgemm_tile<64, 128>(g, a, b, res, c); }
JCONV_KERNEL_REGISTER(jconv_sgemm_64x128)
extern "C" __global__ void __launch_bounds__(64) jconv_sgemm_64x64(JCONV_SGEMM_ARGS) { sgemm_tile<64, 64>(g, a, b, res, c); }
JCONV_KERNEL_REGISTER(jconv_sgemm_64x64)

extern "C" __global__ void jconv_epilogue_pass(GemmParams g, const float* __restrict__ res, float* __restrict__ c) {
    const FastDiv dn(g.n);
    JCONV_FOR_EACH(i, (i64)g.m * g.n) {
        int col;
        const i64 at = dn.divmod(i, col) * g.ldc + col;
        c[at] = jconv_epilogue(g.activation, g.residual, c[at], res, at);
    }
}
JCONV_KERNEL_REGISTER(jconv_epilogue_pass)
