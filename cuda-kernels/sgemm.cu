// sgemm.cu: our own tiled SGEMM, used by im2col when cuBLAS is not loaded.
// C[m x n] (row-major, leading dimension ldc) = A * B (+ C when accumulate); A(i, l) = a[i*aRow + l*aCol],
// B(l, j) = b[l*bRow + j*bCol], so either operand may be transposed.
// Block: 16 x 16 threads computing a 64 x 64 tile of C; each thread keeps a 4 x 4 register tile
// (rows ty + 16*i, columns tx + 16*j, so neighbouring threads touch neighbouring columns). The k loop
// stages 8-deep slices of A (64 x 8) and B (8 x 64) in shared memory; each thread loads two elements
// of each, zero outside the matrices. Each C element is stored once, through the epilogue (res: a residual laid out
// like C, read only when g.residual says so).
// jconv_epilogue_pass: the epilogue alone on C (m x n, ldc), for a product cuBLAS computed (one thread per element).
#include "jconv_common.cuh"

#define SG_TILE 64
#define SG_DEPTH 8

extern "C" __global__ void jconv_sgemm(GemmParams g, const float* __restrict__ a, const float* __restrict__ b,
                                       const float* __restrict__ res, float* __restrict__ c) {
    __shared__ float As[SG_DEPTH][SG_TILE];
    __shared__ float Bs[SG_DEPTH][SG_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int m0 = blockIdx.y * SG_TILE, n0 = blockIdx.x * SG_TILE;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < g.k; k0 += SG_DEPTH) {
        for (int e = tid; e < SG_TILE * SG_DEPTH; e += 256) {
            const int row = e / SG_DEPTH, kk = e % SG_DEPTH;
            const int gi = m0 + row, gl = k0 + kk;
            As[kk][row] = (gi < g.m && gl < g.k) ? a[(i64)gi * g.aRow + (i64)gl * g.aCol] : 0.0f;
            const int kb = e / SG_TILE, colb = e % SG_TILE;
            const int bl = k0 + kb, gj = n0 + colb;
            Bs[kb][colb] = (bl < g.k && gj < g.n) ? b[(i64)bl * g.bRow + (i64)gj * g.bCol] : 0.0f;
        }
        __syncthreads();
        tile_fma<SG_DEPTH, SG_TILE>(As, Bs, tx, ty, acc);
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        const int gi = m0 + ty + 16 * i;
        if (gi >= g.m) continue;
        for (int j = 0; j < 4; j++) {
            const int gj = n0 + tx + 16 * j;
            if (gj >= g.n) continue;
            const i64 at = (i64)gi * g.ldc + gj;
            c[at] = jconv_epilogue(g.activation, g.residual, g.accumulate ? c[at] + acc[i][j] : acc[i][j], res, at);
        }
    }
}
JCONV_KERNEL_REGISTER(jconv_sgemm)

extern "C" __global__ void jconv_epilogue_pass(GemmParams g, const float* __restrict__ res, float* __restrict__ c) {
    const FastDiv dn(g.n);
    JCONV_FOR_EACH(i, (i64)g.m * g.n) {
        int col;
        const i64 at = dn.divmod(i, col) * g.ldc + col;
        c[at] = jconv_epilogue(g.activation, g.residual, c[at], res, at);
    }
}
JCONV_KERNEL_REGISTER(jconv_epilogue_pass)
