// depthwise.cu: groups == C (one input channel per group), channel multiplier M = K / C.
// Layouts: x N x C x H x W, w K x 1 x R x S, bias K or C, y N x K x P x Q.
// jconv_depthwise_fprop: one thread per output y[n][k][p][q]; its only input channel is c = k / M.
// jconv_depthwise_dgrad: one thread per output x[n][c][h][w] of conv_transpose2d; it gathers from the
// M channels k = c*M .. c*M + M - 1 of y over the taps whose position is whole and in range.
// jconv_depthwise_fprop_tiled: one block of 128 threads per DW_TH x DW_TW tile of one output plane (n, k): the input
//   window of the tile (with its halo, zeros in the padding) and the channel's R x S kernel are staged in shared memory
//   once, then each thread computes DW_TH / 4 outputs of one column from it, the taps' weights read once per tap for
//   all of them. Grid: (tiles of the P x Q plane, channels k - a.group, samples n - a.sample). The launcher takes it when
//   the window fits DW_SMEM floats and the kernel DW_MAX_TAPS, else jconv_depthwise_fprop.
// All end with the bias and the epilogue (res: the residual, if any).
#include "jconv_common.cuh"

#define DW_TH 16
#define DW_TW 32
#define DW_SMEM 4096
#define DW_MAX_TAPS 256

extern "C" __global__ void jconv_depthwise_fprop(ConvParams a, const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ bias, const float* __restrict__ res, float* __restrict__ y) {
    const int mult = a.k / a.c;
    const i64 total = (i64)a.n * a.k * a.p * a.q;
    const FastDiv dk(a.k), dp(a.p), dq(a.q), dmult(mult);
    JCONV_FOR_EACH(i, total) {
        int n, k, p, q;
        unflatten4(i, dk, dp, dq, n, k, p, q);
        float acc = a.hasBias ? bias[k] : 0.0f;
        window_add(a, x + ((i64)n * a.c + dmult.div(k)) * a.h * a.w, w + (i64)k * a.r * a.s, p, q, acc);
        y[i] = jconv_epilogue(a.activation, a.residual, acc, res, i);
    }
}
JCONV_KERNEL_REGISTER(jconv_depthwise_fprop)

extern "C" __global__ void __launch_bounds__(128) jconv_depthwise_fprop_tiled(ConvParams a, const float* __restrict__ x,
                                                                              const float* __restrict__ w, const float* __restrict__ bias,
                                                                              const float* __restrict__ res, float* __restrict__ y) {
    __shared__ float tile[DW_SMEM];
    __shared__ float wk[DW_MAX_TAPS];
    const int t = threadIdx.x, tx = t % 32, ty = t / 32;
    const int k = a.group + (int)blockIdx.y, n = a.sample + (int)blockIdx.z;
    const int tilesQ = (a.q + DW_TW - 1) / DW_TW;
    const int tp = (int)blockIdx.x / tilesQ, tq = (int)blockIdx.x - tp * tilesQ;
    const int p0 = tp * DW_TH, q0 = tq * DW_TW;
    const int rows = (DW_TH - 1) * a.strideH + (a.r - 1) * a.dilationH + 1, cols = (DW_TW - 1) * a.strideW + (a.s - 1) * a.dilationW + 1;
    const int ih0 = p0 * a.strideH - a.padTop, iw0 = q0 * a.strideW - a.padLeft;
    const float* xc = x + ((i64)n * a.c + k / (a.k / a.c)) * a.h * a.w;
    for (int i = ty; i < rows; i += 4) {
        const int ih = ih0 + i;
        const bool rowOk = (unsigned)ih < (unsigned)a.h;
        for (int j = tx; j < cols; j += 32) {
            const int iw = iw0 + j;
            tile[i * cols + j] = rowOk && (unsigned)iw < (unsigned)a.w ? xc[(i64)ih * a.w + iw] : 0.0f;
        }
    }
    const int taps = a.r * a.s;
    for (int e = t; e < taps; e += 128) wk[e] = w[(i64)k * taps + e];
    __syncthreads();
    constexpr int PER = DW_TH / 4;  // outputs per thread: rows ty*PER .. ty*PER + PER - 1 of column tx
    float acc[PER];
    JCONV_UNROLL
    for (int i = 0; i < PER; i++) acc[i] = 0.0f;
    const int rowStep = a.strideH * cols;
    for (int r = 0; r < a.r; r++) {
        const float* tr = tile + (ty * PER * a.strideH + r * a.dilationH) * cols + tx * a.strideW;
        for (int s = 0; s < a.s; s++) {
            const float wv = wk[r * a.s + s];
            const float* ts = tr + s * a.dilationW;
            JCONV_UNROLL
            for (int i = 0; i < PER; i++) acc[i] += ts[i * rowStep] * wv;
        }
    }
    const int q = q0 + tx;
    const float b = a.hasBias ? bias[k] : 0.0f;
    JCONV_UNROLL
    for (int i = 0; i < PER; i++) {
        const int p = p0 + ty * PER + i;
        if (p < a.p && q < a.q) {
            const i64 at = (((i64)n * a.k + k) * a.p + p) * a.q + q;
            y[at] = jconv_epilogue(a.activation, a.residual, acc[i] + b, res, at);
        }
    }
}
JCONV_KERNEL_REGISTER(jconv_depthwise_fprop_tiled)

extern "C" __global__ void jconv_depthwise_dgrad(ConvParams a, const float* __restrict__ y, const float* __restrict__ w,
                                                      const float* __restrict__ bias, const float* __restrict__ res, float* __restrict__ x) {
    const int mult = a.k / a.c;
    const i64 total = (i64)a.n * a.c * a.h * a.w;
    const FastDiv dc(a.c), dh(a.h), dw(a.w);
    const GatherAxis gh(a.strideH, a.dilationH, a.padTop, a.p), gw(a.strideW, a.dilationW, a.padLeft, a.q);
    JCONV_FOR_EACH(i, total) {
        int n, c, ih, iw;
        unflatten4(i, dc, dh, dw, n, c, ih, iw);
        float acc = a.hasBias ? bias[c] : 0.0f;
        for (int k = c * mult; k < (c + 1) * mult; k++) {
            gather_add(a, gh, gw, y + ((i64)n * a.k + k) * a.p * a.q, w + (i64)k * a.r * a.s, ih, iw, acc);
        }
        x[i] = jconv_epilogue(a.activation, a.residual, acc, res, i);
    }
}
JCONV_KERNEL_REGISTER(jconv_depthwise_dgrad)
