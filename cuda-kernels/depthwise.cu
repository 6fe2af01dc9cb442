// depthwise.cu: groups == C (one input channel per group), channel multiplier M = K / C.
// Layouts: x N x C x H x W, w K x 1 x R x S, bias K or C, y N x K x P x Q.
// jconv_depthwise_fwd: one thread per output y[n][k][p][q]; its only input channel is c = k / M.
// jconv_depthwise_transposed: one thread per output x[n][c][h][w] of conv_transpose2d; it gathers from the
// M channels k = c*M .. c*M + M - 1 of y over the taps whose position is whole and in range.
#include "jconv_common.cuh"

extern "C" __global__ void jconv_depthwise_fwd(ConvParams a, const float* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ bias, float* __restrict__ y) {
    const int mult = a.k / a.c;
    const i64 total = (i64)a.n * a.k * a.p * a.q;
    JCONV_FOR_EACH(i, total) {
        const int q = (int)(i % a.q);
        i64 t = i / a.q;
        const int p = (int)(t % a.p);
        t /= a.p;
        const int k = (int)(t % a.k);
        const int n = (int)(t / a.k);
        const float* xc = x + ((i64)n * a.c + k / mult) * a.h * a.w;
        const float* wk = w + (i64)k * a.r * a.s;
        float acc = a.hasBias ? bias[k] : 0.0f;
        for (int r = 0; r < a.r; r++) {
            const int ih = p * a.strideH - a.padTop + r * a.dilationH;
            if (ih < 0 || ih >= a.h) continue;
            for (int s = 0; s < a.s; s++) {
                const int iw = q * a.strideW - a.padLeft + s * a.dilationW;
                if (iw < 0 || iw >= a.w) continue;
                acc += xc[(i64)ih * a.w + iw] * wk[r * a.s + s];
            }
        }
        y[i] = acc;
    }
}
JCONV_KERNEL_REGISTER(jconv_depthwise_fwd)

extern "C" __global__ void jconv_depthwise_transposed(ConvParams a, const float* __restrict__ y, const float* __restrict__ w,
                                                      const float* __restrict__ bias, float* __restrict__ x) {
    const int mult = a.k / a.c;
    const i64 total = (i64)a.n * a.c * a.h * a.w;
    JCONV_FOR_EACH(i, total) {
        const int iw = (int)(i % a.w);
        i64 t = i / a.w;
        const int ih = (int)(t % a.h);
        t /= a.h;
        const int c = (int)(t % a.c);
        const int n = (int)(t / a.c);
        float acc = a.hasBias ? bias[c] : 0.0f;
        for (int m = 0; m < mult; m++) {
            const int k = c * mult + m;
            const float* yk = y + ((i64)n * a.k + k) * a.p * a.q;
            const float* wk = w + (i64)k * a.r * a.s;
            for (int r = 0; r < a.r; r++) {
                const int ph = ih + a.padTop - r * a.dilationH;
                if (ph < 0 || ph % a.strideH != 0 || ph / a.strideH >= a.p) continue;
                for (int s = 0; s < a.s; s++) {
                    const int qw = iw + a.padLeft - s * a.dilationW;
                    if (qw < 0 || qw % a.strideW != 0 || qw / a.strideW >= a.q) continue;
                    acc += yk[(i64)(ph / a.strideH) * a.q + qw / a.strideW] * wk[r * a.s + s];
                }
            }
        }
        x[i] = acc;
    }
}
JCONV_KERNEL_REGISTER(jconv_depthwise_transposed)
