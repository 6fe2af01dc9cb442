// direct.cu: the sliding window, forward convolution.
// Layouts (jconv_common.cuh): x N x C x H x W, w K x C/G x R x S, bias K (if hasBias), y N x K x P x Q.
// Thread: one output element y[n][k][p][q] (grid-stride over N*K*P*Q, 64-bit); it sums its group's
// C/G x R x S window, skipping taps that fall into the padding, adds the bias and applies the epilogue (res: the
// residual, read only when a.residual says so).
#include "jconv_common.cuh"

extern "C" __global__ void jconv_direct_fprop(ConvParams a, const float* __restrict__ x, const float* __restrict__ w,
                                            const float* __restrict__ bias, const float* __restrict__ res, float* __restrict__ y) {
    const int cg = a.c / a.groups, kg = a.k / a.groups;
    const i64 total = (i64)a.n * a.k * a.p * a.q;
    const FastDiv dk(a.k), dp(a.p), dq(a.q), dkg(kg);
    JCONV_FOR_EACH(i, total) {
        int n, k, p, q;
        unflatten4(i, dk, dp, dq, n, k, p, q);
        const int c0 = (int)dkg.div(k) * cg;
        float acc = a.hasBias ? bias[k] : 0.0f;
        for (int ci = 0; ci < cg; ci++) {
            window_add(a, x + ((i64)n * a.c + c0 + ci) * a.h * a.w, w + ((i64)k * cg + ci) * a.r * a.s, p, q, acc);
        }
        y[i] = jconv_epilogue(a.activation, a.residual, acc, res, i);
    }
}
JCONV_KERNEL_REGISTER(jconv_direct_fprop)
