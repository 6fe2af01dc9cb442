// depthwise.cu: groups == C (one input channel per group), channel multiplier M = K / C.
// Layouts: x N x C x H x W, w K x 1 x R x S, bias K or C, y N x K x P x Q.
// jconv_depthwise_fprop: one thread per output y[n][k][p][q]; its only input channel is c = k / M.
// jconv_depthwise_dgrad: one thread per output x[n][c][h][w] of conv_transpose2d; it gathers from the
// M channels k = c*M .. c*M + M - 1 of y over the taps whose position is whole and in range.
// Both end with the bias and the epilogue (res: the residual, if any).
#include "jconv_common.cuh"

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
