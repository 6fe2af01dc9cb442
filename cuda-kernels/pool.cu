// pool.cu: max pooling (torch.nn.functional.max_pool2d without dilation or ceil_mode), for the network trunks
// (ResNet's 3x3 stride-2 pool after the stem).
// Layouts: x N x C x H x W, y N x C x P x Q; the window is R x S (a.r, a.s) with a.strideH/W and a.padTop/Left; padded
// positions count as -infinity, so they never win (NaN in a window gives NaN, as PyTorch).
// Thread: one output element (grid-stride over N*C*P*Q, 64-bit).
#include "jconv_common.cuh"

extern "C" __global__ void jconv_maxpool2d(ConvParams a, const float* __restrict__ x, float* __restrict__ y) {
    const i64 total = (i64)a.n * a.c * a.p * a.q;
    const FastDiv dc(a.c), dp(a.p), dq(a.q);
    JCONV_FOR_EACH(i, total) {
        int n, c, p, q;
        unflatten4(i, dc, dp, dq, n, c, p, q);
        const float* xc = x + ((i64)n * a.c + c) * a.h * a.w;
        float m = -INFINITY;
        for (int r = 0; r < a.r; r++) {
            const int ih = p * a.strideH - a.padTop + r;
            if (ih < 0 || ih >= a.h) continue;
            for (int s = 0; s < a.s; s++) {
                const int iw = q * a.strideW - a.padLeft + s;
                if (iw < 0 || iw >= a.w) continue;
                const float v = xc[(i64)ih * a.w + iw];
                m = (v > m || v != v) ? v : m;  // NaN wins and stays
                if (m != m) break;
            }
            if (m != m) break;
        }
        y[i] = m;
    }
}
JCONV_KERNEL_REGISTER(jconv_maxpool2d)
