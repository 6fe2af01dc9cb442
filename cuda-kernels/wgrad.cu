// wgrad.cu: the weight and bias gradients of conv2d (conv_transpose2d's weight gradient is the same with x and dy
// swapped; io.github.jconv.cuda.WgradLauncher).
//
// Weight gradient, per group g, as an implicit GEMM over the output pixels:
//   dW[Kg x Kc] = sum over m of A(j, m) * B(m, l),  m = (n, p, q), Kc = C/G*R*S,
//   A(j, m) = dy[n][g*Kg + j][p][q],  B(m, l) = the input value tap l = (c, r, s) of pixel m reads (0 in the padding).
// The main loop is jconv_gemm_mainloop.cuh's: tiles of BM channels x BN taps, 8 x 8 accumulators per thread. A step is
// 8 consecutive q of one output row (n, p) (q past Q reads 0), so a thread walks its pixels by adds: (n, p, q-block)
// found once, then q-block, row and sample advance with carries. Each thread loads one channel row of A (8 consecutive
// dy values per step) and one tap column of B, its tap (c, r, s) found once.
// Split-K: the steps are cut into `splits` slices of `chunk` steps (from the geometry alone); with more than one each
// block writes its partial tile to its own plane of the workspace and jconv_implicit_gemm_wgrad_reduce adds the planes
// in slice order. No atomics: every element is summed in an order fixed by the geometry, the same bits run after run.
#include "jconv_gemm_mainloop.cuh"

template <int BM, int BN>
struct WgradLoader {
    using T = GemmTile<BM, BN>;
    const ConvParams& a;
    int qBlocks, p, qb, n;
    const float* aPtr;  // dy at this step's first q for this thread's channel (past the tensor when !aOk: never read)
    bool aOk, bOk;
    int aKk, bKk, aRowWrap, aSampleWrap;
    const float* xBase;  // x at this thread's channel c of sample n
    int xSample, ihTap, iwTap, bKkStep;

    __device__ WgradLoader(const WgradParams& wp, const float* dy, const float* x, int grp, int first) : a(wp.conv) {
        const int cg = a.c / a.groups, kg = a.k / a.groups, kc = cg * a.r * a.s;
        qBlocks = (a.q + JCONV_DEPTH - 1) / JCONV_DEPTH;
        const int rowSteps = a.p * qBlocks;
        n = first > 0 ? first / rowSteps : 0;  // first > 0 only where there are steps
        const int rem = first - n * rowSteps;
        p = first > 0 ? rem / qBlocks : 0;
        qb = rem - p * qBlocks;
        const int j = (int)blockIdx.y * BM + T::aRow();
        aOk = j < kg;
        aKk = T::aKk();
        const i64 pq = (i64)a.p * a.q;
        aPtr = dy + ((i64)n * a.k + (i64)grp * kg + (aOk ? j : 0)) * pq + (i64)p * a.q + qb * JCONV_DEPTH + aKk;
        aRowWrap = a.q - qBlocks * JCONV_DEPTH;             // from past a row's last block to the next row's first
        aSampleWrap = (int)((i64)(a.k - 1) * pq);           // from past a plane's last row to the next sample's plane
        const int l = (int)blockIdx.x * BN + T::bCol();
        bOk = l < kc;
        int tapS = 0, tapR = 0, tapC = 0;
        if (bOk) {
            const int rs = a.r * a.s;
            tapC = l / rs;
            tapR = (l - tapC * rs) / a.s;
            tapS = l - tapC * rs - tapR * a.s;
        }
        bKk = T::bKk();
        xSample = a.c * a.h * a.w;
        xBase = x + ((i64)n * a.c + (i64)grp * cg + tapC) * a.h * a.w;
        ihTap = tapR * a.dilationH - a.padTop;
        iwTap = tapS * a.dilationW - a.padLeft + bKk * a.strideW;
        bKkStep = T::B_KK * a.strideW;
    }

    template <int NA, int NB>
    __device__ __forceinline__ void load(float (&ra)[NA], float (&rb)[NB]) const {
        const int q0 = qb * JCONV_DEPTH;
        const int aLeft = a.q - q0 - aKk, bLeft = a.q - q0 - bKk;  // depths of this step still below Q
        JCONV_UNROLL
        for (int i = 0; i < NA; i++) ra[i] = (aOk && T::A_KK * i < aLeft) ? aPtr[T::A_KK * i] : 0.0f;
        const int ih = p * a.strideH + ihTap, iw0 = q0 * a.strideW + iwTap;
        const bool rowOk = bOk && (unsigned)ih < (unsigned)a.h;
        const float* bp = xBase + (ih * a.w + iw0);  // outside the plane when !rowOk: formed, never read
        JCONV_UNROLL
        for (int i = 0; i < NB; i++) {
            const int iw = iw0 + bKkStep * i;
            rb[i] = (rowOk && T::B_KK * i < bLeft && (unsigned)iw < (unsigned)a.w) ? load_strided(bp, bKkStep, i) : 0.0f;
        }
    }

    __device__ __forceinline__ void advance() {
        aPtr += JCONV_DEPTH;
        if (++qb == qBlocks) {
            qb = 0;
            aPtr += aRowWrap;
            if (++p == a.p) {
                p = 0;
                aPtr += aSampleWrap;
                xBase += xSample;
            }
        }
    }
};

// out: dW itself (splits == 1) or the workspace of `splits` planes of K x Kc. Grid: (tap tiles, channel tiles, groups x slices).
template <int BM, int BN>
__device__ __forceinline__ void wgrad_tile(const WgradParams& wp, const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ out) {
    using T = GemmTile<BM, BN>;
    const ConvParams& a = wp.conv;
    const int cg = a.c / a.groups, kg = a.k / a.groups, kc = cg * a.r * a.s;
    const int grp = a.group + (int)blockIdx.z / wp.splits, slice = (int)blockIdx.z % wp.splits;
    const i64 steps = (i64)a.n * a.p * ((a.q + JCONV_DEPTH - 1) / JCONV_DEPTH);
    const i64 first = (i64)slice * wp.chunk;
    const int mine = (int)(steps - first < wp.chunk ? (steps - first > 0 ? steps - first : 0) : wp.chunk);
    WgradLoader<BM, BN> ld(wp, dy, x, grp, mine > 0 ? (int)first : 0);
    float acc[8][8];
    gemm_mainloop<BM, BN>(ld, mine, acc);
    float* dst = out + (wp.splits > 1 ? (i64)slice * a.k * kc : 0) + (i64)grp * kg * kc;
    JCONV_UNROLL
    for (int i = 0; i < 8; i++) {
        const int j = (int)blockIdx.y * BM + T::row(i);
        if (j >= kg) continue;
        JCONV_UNROLL
        for (int jj = 0; jj < 8; jj++) {
            const int l = (int)blockIdx.x * BN + T::col(jj);
            if (l < kc) dst[(i64)j * kc + l] = acc[i][jj];
        }
    }
}

#define JCONV_WGRAD_ARGS WgradParams wp, const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ out
extern "C" __global__ void __launch_bounds__(256) jconv_implicit_gemm_wgrad_128x128(JCONV_WGRAD_ARGS) {
    wgrad_tile<128, 128>(wp, x, dy, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_wgrad_128x128)
extern "C" __global__ void __launch_bounds__(128) jconv_implicit_gemm_wgrad_64x128(JCONV_WGRAD_ARGS) {
    wgrad_tile<64, 128>(wp, x, dy, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_wgrad_64x128)
extern "C" __global__ void __launch_bounds__(64) jconv_implicit_gemm_wgrad_64x64(JCONV_WGRAD_ARGS) {
    wgrad_tile<64, 64>(wp, x, dy, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_wgrad_64x64)

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
