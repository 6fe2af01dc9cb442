// wgrad.cu: the weight and bias gradients of conv2d (conv_transpose2d's weight gradient is the same with x and dy
// swapped; io.github.jconv.cuda.WgradLauncher).
//
// Weight gradient, per group g, as an implicit GEMM over the output pixels:
//   dW[Kg x Kc] = sum over m of A(j, m) * B(m, l),  m = (n, p, q) in [0, N*P*Q), Kc = C/G*R*S,
//   A(j, m) = dy[n][g*Kg + j][p][q],  B(m, l) = the input value tap l = (c, r, s) of pixel m reads (0 in the padding).
// Block: 16 x 16 threads, a 64-channel x 64-tap tile of dW, 4 x 4 outputs per thread (channels ty + 16*i, taps
// tx + 16*j), 8-deep slices of A and B in shared memory. Split-K: the pixel range is cut into `splits` slices of `chunk`
// pixels, one per block; with more than one slice each block writes its partial tile to its own plane of the workspace
// and jconv_implicit_gemm_wgrad_reduce adds the planes in slice order. No atomics: every element is summed in an order fixed by the
// geometry and the split (chosen from the geometry alone), so the result is the same bits run after run.
#include "jconv_common.cuh"

#define WG_TILE 64
#define WG_DEPTH 8

// out: dW itself (splits == 1) or the workspace of `splits` planes of K x Kc.
extern "C" __global__ void jconv_implicit_gemm_wgrad(WgradParams wp, const float* __restrict__ x, const float* __restrict__ dy,
                                                     float* __restrict__ out) {
    __shared__ float As[WG_DEPTH][WG_TILE];
    __shared__ float Bs[WG_DEPTH][WG_TILE];
    const ConvParams& a = wp.conv;
    const int cg = a.c / a.groups, kg = a.k / a.groups;
    const int grp = a.group + (int)(blockIdx.z / wp.splits), slice = (int)(blockIdx.z % wp.splits);
    const int rs = a.r * a.s, kc = cg * rs;
    const i64 pq = (i64)a.p * a.q, pixels = (i64)a.n * pq;
    const i64 mBegin = (i64)slice * wp.chunk;
    const i64 mEnd = mBegin + wp.chunk < pixels ? mBegin + wp.chunk : pixels;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const int l0 = blockIdx.x * WG_TILE, j0 = blockIdx.y * WG_TILE;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    // Each thread loads the same A row kk and B column (tap) at every step: its tap (c, r, s) is found once, here.
    const FastDiv dpq(pq), dq(a.q);
    const int col = tid % WG_TILE, l = l0 + col;
    int tapC = 0, tapR = 0, tapS = 0;
    if (l < kc) {
        const FastDiv ds(a.s), dr(a.r);
        tapC = (int)dr.divmod(ds.divmod(l, tapS), tapR);
    }
    for (i64 m0 = mBegin; m0 < mEnd; m0 += WG_DEPTH) {
        JCONV_UNROLL
        for (int e = tid; e < WG_TILE * WG_DEPTH; e += 256) {
            // A: channel j0 + row, pixel m0 + kk (consecutive threads read consecutive pixels)
            const int row = e / WG_DEPTH, kk = e % WG_DEPTH;
            const i64 m = m0 + kk;
            const int ch = j0 + row;
            float av = 0.0f;
            if (m < mEnd && ch < kg) {
                int pix;
                const i64 n = dpq.divmod(m, pix);
                av = dy[(n * a.k + (i64)grp * kg + ch) * pq + pix];
            }
            As[kk][row] = av;
            // B: pixel m0 + kb, tap l (consecutive threads read consecutive taps)
            const int kb = e / WG_TILE;
            const i64 mb = m0 + kb;
            float bv = 0.0f;
            if (mb < mEnd && l < kc) {
                int pix, q;
                const i64 n = dpq.divmod(mb, pix);
                const int p = (int)dq.divmod(pix, q);
                const int ih = p * a.strideH - a.padTop + tapR * a.dilationH;
                const int iw = q * a.strideW - a.padLeft + tapS * a.dilationW;
                if (ih >= 0 && ih < a.h && iw >= 0 && iw < a.w)
                    bv = x[((n * a.c + (i64)grp * cg + tapC) * a.h + ih) * a.w + iw];
            }
            Bs[kb][col] = bv;
        }
        __syncthreads();
        tile_fma<WG_DEPTH, WG_TILE>(As, Bs, tx, ty, acc);
        __syncthreads();
    }
    const i64 plane = wp.splits > 1 ? (i64)slice * a.k * kc : 0;
    for (int i = 0; i < 4; i++) {
        const int ch = j0 + ty + 16 * i;
        if (ch >= kg) continue;
        for (int j = 0; j < 4; j++) {
            const int l = l0 + tx + 16 * j;
            if (l < kc) out[plane + ((i64)grp * kg + ch) * kc + l] = acc[i][j];
        }
    }
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_wgrad)

// dw[i] = the sum of the workspace's `splits` planes at i, in slice order.
extern "C" __global__ void jconv_implicit_gemm_wgrad_reduce(WgradParams wp, const float* __restrict__ ws, float* __restrict__ dw) {
    const ConvParams& a = wp.conv;
    const i64 total = (i64)a.k * (a.c / a.groups) * a.r * a.s;
    JCONV_FOR_EACH(i, total) {
        float sum = 0.0f;
        for (int s = 0; s < wp.splits; s++) sum += ws[(i64)s * total + i];
        dw[i] = sum;
    }
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_wgrad_reduce)

// db[k] = sum over n, p, q of dy[n][k][p][q]: one block of 256 threads per channel (blockIdx.x + a.group), each thread
// summing a fixed stride of the channel's values, then a fixed tree in shared memory.
extern "C" __global__ void jconv_bias_wgrad(ConvParams a, const float* __restrict__ dy, float* __restrict__ db) {
    __shared__ float part[256];
    const int k = a.group + blockIdx.x, tid = threadIdx.x;
    const i64 pq = (i64)a.p * a.q, total = (i64)a.n * pq;
    float sum = 0.0f;
    const FastDiv dpq(pq);
    for (i64 m = tid; m < total; m += 256) {
        int pix;
        const i64 n = dpq.divmod(m, pix);
        sum += dy[(n * a.k + k) * pq + pix];
    }
    part[tid] = sum;
    __syncthreads();
    for (int half = 128; half > 0; half >>= 1) {
        if (tid < half) part[tid] += part[tid + half];
        __syncthreads();
    }
    if (tid == 0) db[k] = part[0];
}
JCONV_KERNEL_REGISTER(jconv_bias_wgrad)
