// direct.cu: the sliding window, forward convolution.
// Layouts (jconv_common.cuh): x N x C x H x W, w K x C/G x R x S, bias K (if hasBias), y N x K x P x Q.
// Thread: one output element y[n][k][p][q] (grid-stride over N*K*P*Q, 64-bit); it sums its group's
// C/G x R x S window, skipping taps that fall into the padding, and adds the bias.
#include "jconv_common.cuh"

extern "C" __global__ void jconv_direct_fwd(ConvParams a, const float* __restrict__ x, const float* __restrict__ w,
                                            const float* __restrict__ bias, float* __restrict__ y) {
    const int cg = a.c / a.groups, kg = a.k / a.groups;
    const i64 total = (i64)a.n * a.k * a.p * a.q;
    JCONV_FOR_EACH(i, total) {
        const int q = (int)(i % a.q);
        i64 t = i / a.q;
        const int p = (int)(t % a.p);
        t /= a.p;
        const int k = (int)(t % a.k);
        const int n = (int)(t / a.k);
        const int c0 = (k / kg) * cg;
        float acc = a.hasBias ? bias[k] : 0.0f;
        for (int ci = 0; ci < cg; ci++) {
            const float* xc = x + ((i64)n * a.c + c0 + ci) * a.h * a.w;
            const float* wc = w + ((i64)k * cg + ci) * a.r * a.s;
            for (int r = 0; r < a.r; r++) {
                const int ih = p * a.strideH - a.padTop + r * a.dilationH;
                if (ih < 0 || ih >= a.h) continue;
                for (int s = 0; s < a.s; s++) {
                    const int iw = q * a.strideW - a.padLeft + s * a.dilationW;
                    if (iw < 0 || iw >= a.w) continue;
                    acc += xc[(i64)ih * a.w + iw] * wc[r * a.s + s];
                }
            }
        }
        y[i] = acc;
    }
}
JCONV_KERNEL_REGISTER(jconv_direct_fwd)
