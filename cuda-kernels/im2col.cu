// im2col.cu: the unfold and fold kernels of the im2col + GEMM algorithm, and the bias fill, over a chunk of
// `samples` samples from conv.sample and all groups at once (Im2colParams, jconv_common.cuh).
// Layouts: x N x C x H x W, y N x K x P x Q; col holds one C/G*R*S x P*Q row-major block per (sample, group) of the
// chunk, block b = sample-in-chunk * G + group:
// col[b][(c*R + r)*S + s][p*Q + q] = x[sample][group*C/G + c][p*sH - padTop + r*dH][q*sW - padLeft + s*dW] (0 in the padding).
// jconv_im2col_fprop_unfold: one thread per col element (64-bit grid-stride).
// jconv_im2col_dgrad_fold: conv_transpose2d's fold, gather form: one thread per x element of the chunk;
//   x = bias + the sum of the col entries (c, r, s; p, q) that map onto it (whole, in-range p and q only), then the
//   epilogue (res: the residual of the whole x, if any).
// jconv_im2col_fprop_bias: one thread per y element, y[n][k][p][q] = bias[k] (or 0), before the GEMMs accumulate.
#include "jconv_common.cuh"

extern "C" __global__ void jconv_im2col_fprop_unfold(Im2colParams ip, const float* __restrict__ x, float* __restrict__ col) {
    const ConvParams& a = ip.conv;
    const int cg = a.c / a.groups;
    const i64 pq = (i64)a.p * a.q;
    const i64 block = (i64)cg * a.r * a.s * pq, total = (i64)ip.samples * a.groups * block;
    const FastDiv dblock(block), dgroups(a.groups), dpq(pq), ds(a.s), dr(a.r), dq(a.q);
    const float* xs = x + (i64)a.sample * a.c * a.h * a.w;
    JCONV_FOR_EACH(i, total) {
        int within, grp, j, s, r, q;
        const i64 b = dblock.divmod(i, within);
        const int n = (int)dgroups.divmod(b, grp);
        const i64 row = dpq.divmod(within, j);
        const int c = (int)dr.divmod(ds.divmod(row, s), r);
        const int p = (int)dq.divmod(j, q);
        const int ih = p * a.strideH - a.padTop + r * a.dilationH;
        const int iw = q * a.strideW - a.padLeft + s * a.dilationW;
        col[i] = (ih >= 0 && ih < a.h && iw >= 0 && iw < a.w)
                     ? xs[(((i64)n * a.c + (i64)grp * cg + c) * a.h + ih) * a.w + iw]
                     : 0.0f;
    }
}
JCONV_KERNEL_REGISTER(jconv_im2col_fprop_unfold)

extern "C" __global__ void jconv_im2col_dgrad_fold(Im2colParams ip, const float* __restrict__ col, const float* __restrict__ bias,
                                                   const float* __restrict__ res, float* __restrict__ x) {
    const ConvParams& a = ip.conv;
    const int cg = a.c / a.groups;
    const i64 pq = (i64)a.p * a.q, rspq = (i64)a.r * a.s * pq;
    const i64 total = (i64)ip.samples * a.c * a.h * a.w;
    const i64 slice = (i64)a.sample * a.c * a.h * a.w;
    const FastDiv dc(a.c), dh(a.h), dw(a.w), dcg(cg);
    const GatherAxis gh(a.strideH, a.dilationH, a.padTop, a.p), gw(a.strideW, a.dilationW, a.padLeft, a.q);
    JCONV_FOR_EACH(i, total) {
        int n, c, ih, iw, ci;
        unflatten4(i, dc, dh, dw, n, c, ih, iw);
        const int grp = (int)dcg.divmod(c, ci);
        float acc = a.hasBias ? bias[c] : 0.0f;
        const float* colc = col + ((i64)n * a.groups + grp) * cg * rspq + (i64)ci * rspq;  // the rows (ci, r, s) of this channel
        for_each_source(a, gh, gw, ih, iw, [&](int tap, i64 at) { acc += colc[tap * pq + at]; });
        x[slice + i] = jconv_epilogue(a.activation, a.residual, acc, res, slice + i);
    }
}
JCONV_KERNEL_REGISTER(jconv_im2col_dgrad_fold)

extern "C" __global__ void jconv_im2col_fprop_bias(ConvParams a, const float* __restrict__ bias, float* __restrict__ y) {
    const i64 plane = (i64)a.p * a.q;
    const i64 total = (i64)a.n * a.k * plane;
    const FastDiv dplane(plane), dk(a.k);
    JCONV_FOR_EACH(i, total) {
        int k;
        dk.divmod(dplane.div(i), k);
        y[i] = a.hasBias ? bias[k] : 0.0f;
    }
}
JCONV_KERNEL_REGISTER(jconv_im2col_fprop_bias)
