// transposed.cu: conv_transpose2d in gather form (no atomics).
// Layouts: the op's input is y N x K x P x Q, w K x C/G x R x S (PyTorch's C_in x C_out/G x R x S),
// bias C (if hasBias); the op's output is x N x C x H x W.
// Thread: one output element x[n][c][h][w]; it visits the taps (k in its group, r, s) whose output
// position p = (h + padTop - r*dilationH) / strideH (likewise q) is whole and inside P x Q, and adds
// y[n][k][p][q] * w[k][c % (C/G)][r][s]; then the bias and the epilogue (res: the residual, if any).
#include "jconv_common.cuh"

extern "C" __global__ void jconv_direct_dgrad(ConvParams a, const float* __restrict__ y, const float* __restrict__ w,
                                                   const float* __restrict__ bias, const float* __restrict__ res, float* __restrict__ x) {
    const int cg = a.c / a.groups, kg = a.k / a.groups;
    const i64 total = (i64)a.n * a.c * a.h * a.w;
    const FastDiv dc(a.c), dh(a.h), dw(a.w), dcg(cg);
    const GatherAxis gh(a.strideH, a.dilationH, a.padTop, a.p), gw(a.strideW, a.dilationW, a.padLeft, a.q);
    JCONV_FOR_EACH(i, total) {
        int n, c, ih, iw, ci;
        unflatten4(i, dc, dh, dw, n, c, ih, iw);
        const int k0 = (int)dcg.divmod(c, ci) * kg;
        float acc = a.hasBias ? bias[c] : 0.0f;
        for (int k = k0; k < k0 + kg; k++) {
            gather_add(a, gh, gw, y + ((i64)n * a.k + k) * a.p * a.q, w + ((i64)k * cg + ci) * a.r * a.s, ih, iw, acc);
        }
        x[i] = jconv_epilogue(a.activation, a.residual, acc, res, i);
    }
}
JCONV_KERNEL_REGISTER(jconv_direct_dgrad)
