// implicit_gemm.cu: forward convolution as a GEMM without an im2col buffer.
// Per group g (a.group + blockIdx.z: a launch covers at most 65535 groups): D[M x Kg] = A[M x Kc] * B[Kc x Kg] with M = N*P*Q output pixels,
// Kc = C/G*R*S, A(m, l) = the input value that tap l = (c, r, s) of pixel m = (n, p, q) reads (0 in the
// padding), B(l, j) = w[g*Kg + j][l] (w is K x C/G*R*S row-major); y[n][g*Kg + j][p][q] = D(m, j) + bias.
// Block: 16 x 16 threads, a 64-pixel x 64-channel tile, 4 x 4 outputs per thread (pixels ty + 16*i,
// channels tx + 16*j); 8-deep slices of A and B in shared memory, gathered straight from x and w. The store adds
// the bias and applies the epilogue (res: the residual, if any).
#include "jconv_common.cuh"

#define IG_TILE 64
#define IG_DEPTH 8

extern "C" __global__ void jconv_implicit_gemm_fwd(ConvParams a, const float* __restrict__ x, const float* __restrict__ w,
                                                   const float* __restrict__ bias, const float* __restrict__ res,
                                                   float* __restrict__ y) {
    __shared__ float As[IG_DEPTH][IG_TILE];
    __shared__ float Bs[IG_DEPTH][IG_TILE];
    const int cg = a.c / a.groups, kg = a.k / a.groups, grp = a.group + blockIdx.z;
    const int kc = cg * a.r * a.s;
    const i64 pq = (i64)a.p * a.q, pixels = (i64)a.n * pq;
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const i64 m0 = (i64)blockIdx.x * IG_TILE;
    const int j0 = blockIdx.y * IG_TILE;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int l0 = 0; l0 < kc; l0 += IG_DEPTH) {
        for (int e = tid; e < IG_TILE * IG_DEPTH; e += 256) {
            const int row = e / IG_DEPTH, kk = e % IG_DEPTH;
            const i64 m = m0 + row;
            const int l = l0 + kk;
            float v = 0.0f;
            if (m < pixels && l < kc) {
                const int n = (int)(m / pq), p = (int)((m % pq) / a.q), q = (int)(m % a.q);
                const int s = l % a.s, r = (l / a.s) % a.r, c = l / (a.r * a.s);
                const int ih = p * a.strideH - a.padTop + r * a.dilationH;
                const int iw = q * a.strideW - a.padLeft + s * a.dilationW;
                if (ih >= 0 && ih < a.h && iw >= 0 && iw < a.w)
                    v = x[(((i64)n * a.c + (i64)grp * cg + c) * a.h + ih) * a.w + iw];
            }
            As[kk][row] = v;
            const int kb = e / IG_TILE, colb = e % IG_TILE;
            const int lb = l0 + kb, j = j0 + colb;
            Bs[kb][colb] = (lb < kc && j < kg) ? w[((i64)grp * kg + j) * kc + lb] : 0.0f;
        }
        __syncthreads();
        tile_fma<IG_DEPTH, IG_TILE>(As, Bs, tx, ty, acc);
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        const i64 m = m0 + ty + 16 * i;
        if (m >= pixels) continue;
        const int n = (int)(m / pq);
        const i64 pix = m % pq;
        for (int j = 0; j < 4; j++) {
            const int jj = j0 + tx + 16 * j;
            if (jj >= kg) continue;
            const int k = grp * kg + jj;
            const i64 at = ((i64)n * a.k + k) * pq + pix;
            y[at] = jconv_epilogue(a.activation, a.residual, acc[i][j] + (a.hasBias ? bias[k] : 0.0f), res, at);
        }
    }
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_fwd)
