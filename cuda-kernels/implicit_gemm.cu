// implicit_gemm.cu: conv2d (fprop) and conv_transpose2d / the data gradient (dgrad) as one tiled GEMM main loop
// without an im2col buffer (io.github.jconv.cuda.ImplicitGemmLauncher fills IgemmParams).
//
// Per group g and launch: D[M x cols] = A[M x L] * B[L x cols], stored through the epilogue into `out`.
//   M: the launch's output pixels m = (n, u, v), n < N, u < mH, v < mW;
//   L: (tap, ch), tap = (i, j) < tapsH x tapsW outermost, then the reduction channel ch < redC in 8-deep steps;
//   A(m, (tap, ch)) = in[n][g*redC + ch][u*inStrideH + inOffH + tapDh(i)][v*inStrideW + inOffW + tapDw(j)], 0 outside
//     the plane (the padding);
//   B((tap, ch), col) = w[g's block + col*wColStride + ch*wRedStride + rs(i, j)];
//   out[n][g*cols + col][u*outStrideH + outOffH][v*outStrideW + outOffW] = epilogue(D + bias[g*cols + col]).
// fprop: in = x, out = y, the pixels are all of P x Q, the taps all of R x S (tapDh(i) = i * dilationH, rs = i*S + j).
// dgrad: in = y, out = x, one launch per stride phase (CUTLASS's strided dgrad): the x pixels whose (row + padTop) %
// strideH and column likewise are one phase, and exactly the taps (r, s) with r*dilationH = phase (mod strideH) (and
// so for s) reach them, each at a fixed offset in y: a dense GEMM with no per-tap division and no wasted tap.
//
// Block tile BM pixels x BN columns, THREADS = BM/8 * BN/8 threads, each with 8 x 8 accumulators (rows ty*4 + {0..3}
// and BM/2 + ty*4 + {0..3}, columns likewise) read as 128-bit shared loads. Shared memory double-buffered: the
// next step's A and B are loaded into registers before the current step's FMAs and stored to the other buffer after,
// one barrier per step. Each thread loads one pixel row of A (its (n, u, v) and plane offsets found once, before
// the loop) and one column of B; the loop advances channel and tap by adds and compares: no division in it.
#include "jconv_common.cuh"

#define IG_DEPTH 8

// dst[at..at+3] = src[0..3], one 128-bit shared load (src 16-byte aligned).
__device__ __forceinline__ void lds128(float (&dst)[8], int at, const float* src) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[at] = v.x;
    dst[at + 1] = v.y;
    dst[at + 2] = v.z;
    dst[at + 3] = v.w;
}

template <int BM, int BN>
__device__ __forceinline__ void igemm_main(const IgemmParams& p, const float* __restrict__ in, const float* __restrict__ w,
                                           const float* __restrict__ bias, const float* __restrict__ res,
                                           float* __restrict__ out) {
    constexpr int THREADS = (BM / 8) * (BN / 8);
    constexpr int A_LOADS = BM * IG_DEPTH / THREADS, A_KK = THREADS / BM;  // per thread: A_LOADS rows kk, A_KK apart
    constexpr int B_LOADS = BN * IG_DEPTH / THREADS, B_KK = THREADS / BN;
    static_assert(A_LOADS * A_KK == IG_DEPTH && B_LOADS * B_KK == IG_DEPTH, "tile and thread count do not divide");
    __shared__ __align__(16) float As[2][IG_DEPTH][BM];
    __shared__ __align__(16) float Bs[2][IG_DEPTH][BN];

    const ConvParams& a = p.conv;
    const int t = threadIdx.x;
    const int grp = a.group + (int)blockIdx.z;
    const int mPlane = p.mH * p.mW, mTotal = a.n * mPlane;
    const int inHW = p.inH * p.inW;  // offsets within one sample's group of channels and one w group fit in 32 bits (the launcher checks)
    const i64 outHW = (i64)p.outH * p.outW;

    // A's loader: pixel row t % BM, rows kk = t / BM + A_KK * i of each step
    const int aRow = t % BM, aKk = t / BM;
    const int am = (int)blockIdx.x * BM + aRow;
    const bool aPix = am < mTotal;
    int an = 0, au = 0, av = 0;
    if (aPix) {
        an = am / mPlane;
        const int rem = am - an * mPlane;
        au = rem / p.mW;
        av = rem - au * p.mW;
    }
    const int aRow0 = au * p.inStrideH + p.inOffH, aCol0 = av * p.inStrideW + p.inOffW;
    const float* aBase = in + ((i64)an * p.inC + (i64)grp * p.redC) * inHW;
    const int aKkStride = A_KK * inHW, aStep = IG_DEPTH * inHW;
    // B's loader: column t % BN, rows kk = t / BN + B_KK * i
    const int bCol = t % BN, bKk = t / BN;
    const int bc = (int)blockIdx.y * BN + bCol;
    const bool bOk = bc < p.cols;
    const float* bBase = w + (i64)grp * ((i64)(a.k / a.groups) * (a.c / a.groups) * a.r * a.s) + (i64)(bOk ? bc : 0) * p.wColStride;
    const int bKkStride = B_KK * p.wRedStride, bStep = IG_DEPTH * p.wRedStride;

    // the iterator: channel step c0 (aChan, bChan: its offsets), tap (ti, tj) with its offsets dh, dw and weight tap rs
    int c0 = 0, aChan = aKk * inHW, bChan = bKk * p.wRedStride;
    int tj = 0, dh = p.tapDh0, dw = p.tapDw0, rsRow = p.rs0, rs = p.rs0;
    const int chSteps = (p.redC + IG_DEPTH - 1) / IG_DEPTH;
    const int steps = chSteps * p.tapsH * p.tapsW;
    float ra[A_LOADS], rb[B_LOADS];
    // element i of a load lies stride * i floats past the step's first; written as one wide multiply-add per load
    auto at = [](const float* base, unsigned stride, int i) {
        return *reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + (unsigned long long)(stride * 4u) * (unsigned)i);
    };
    auto load = [&]() {
        const int ih = aRow0 + dh, iw = aCol0 + dw;
        const bool tapOk = aPix && (unsigned)ih < (unsigned)p.inH && (unsigned)iw < (unsigned)p.inW;
        const float* ap = aBase + (tapOk ? aChan + ih * p.inW + iw : 0);
        const float* bp = bBase + (bChan + rs);
        const int aLeft = p.redC - c0 - aKk, bLeft = p.redC - c0 - bKk;  // rows kk of this step still below redC
JCONV_UNROLL
        for (int i = 0; i < A_LOADS; i++) ra[i] = (tapOk && A_KK * i < aLeft) ? at(ap, aKkStride, i) : 0.0f;
JCONV_UNROLL
        for (int i = 0; i < B_LOADS; i++) rb[i] = (bOk && B_KK * i < bLeft) ? at(bp, bKkStride, i) : 0.0f;
    };
    auto advance = [&]() {
        c0 += IG_DEPTH;
        aChan += aStep;
        bChan += bStep;
        if (c0 >= p.redC) {
            c0 = 0;
            aChan = aKk * inHW;
            bChan = bKk * p.wRedStride;
            dw += p.tapDwStep;
            rs += p.rsStepW;
            if (++tj == p.tapsW) {
                tj = 0;
                dw = p.tapDw0;
                dh += p.tapDhStep;
                rsRow += p.rsStepH;
                rs = rsRow;
            }
        }
    };
    auto store = [&](int buf) {
JCONV_UNROLL
        for (int i = 0; i < A_LOADS; i++) As[buf][aKk + A_KK * i][aRow] = ra[i];
JCONV_UNROLL
        for (int i = 0; i < B_LOADS; i++) Bs[buf][bKk + B_KK * i][bCol] = rb[i];
    };

    const int tx = t % (BN / 8), ty = t / (BN / 8);
    float acc[8][8];
JCONV_UNROLL
    for (int i = 0; i < 8; i++)
JCONV_UNROLL
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

    if (steps > 0) {
        load();
        store(0);
        __syncthreads();
        for (int step = 0; step < steps; step++) {
            const int cur = step & 1;
            const bool more = step + 1 < steps;
            if (more) {
                advance();
                load();
            }
JCONV_UNROLL
            for (int kk = 0; kk < IG_DEPTH; kk++) {
                float fa[8], fb[8];
                lds128(fa, 0, &As[cur][kk][ty * 4]);
                lds128(fa, 4, &As[cur][kk][BM / 2 + ty * 4]);
                lds128(fb, 0, &Bs[cur][kk][tx * 4]);
                lds128(fb, 4, &Bs[cur][kk][BN / 2 + tx * 4]);
JCONV_UNROLL
                for (int i = 0; i < 8; i++)
JCONV_UNROLL
                    for (int j = 0; j < 8; j++) acc[i][j] += fa[i] * fb[j];
            }
            if (more) store(cur ^ 1);
            __syncthreads();
        }
    }

    // the store: row i is pixel ty*4 + i (i < 4) or BM/2 + ty*4 + i - 4, column j likewise
JCONV_UNROLL
    for (int i = 0; i < 8; i++) {
        const int m = (int)blockIdx.x * BM + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4);
        if (m >= mTotal) continue;
        const int n = m / mPlane, rem = m - n * mPlane;
        const int u = rem / p.mW, v = rem - u * p.mW;
        const i64 rowAt = ((i64)n * p.outC + (i64)grp * p.cols) * outHW + (i64)(u * p.outStrideH + p.outOffH) * p.outW +
                          v * p.outStrideW + p.outOffW;
JCONV_UNROLL
        for (int j = 0; j < 8; j++) {
            const int col = (int)blockIdx.y * BN + (j < 4 ? tx * 4 + j : BN / 2 + tx * 4 + j - 4);
            if (col >= p.cols) continue;
            const i64 at = rowAt + (i64)col * outHW;
            const float b = a.hasBias ? bias[grp * p.cols + col] : 0.0f;
            out[at] = jconv_epilogue(a.activation, a.residual, acc[i][j] + b, res, at);
        }
    }
}

// One entry point per operation and tile shape, so reports and profiles name what ran (fprop and dgrad share the code).
#define JCONV_IGEMM_ARGS IgemmParams p, const float* __restrict__ in, const float* __restrict__ w, const float* __restrict__ bias, \
                         const float* __restrict__ res, float* __restrict__ out
extern "C" __global__ void __launch_bounds__(256) jconv_implicit_gemm_fprop_128x128(JCONV_IGEMM_ARGS) {
    igemm_main<128, 128>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_fprop_128x128)
extern "C" __global__ void __launch_bounds__(128) jconv_implicit_gemm_fprop_128x64(JCONV_IGEMM_ARGS) {
    igemm_main<128, 64>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_fprop_128x64)
extern "C" __global__ void __launch_bounds__(64) jconv_implicit_gemm_fprop_64x64(JCONV_IGEMM_ARGS) {
    igemm_main<64, 64>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_fprop_64x64)
extern "C" __global__ void __launch_bounds__(256) jconv_implicit_gemm_dgrad_128x128(JCONV_IGEMM_ARGS) {
    igemm_main<128, 128>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_dgrad_128x128)
extern "C" __global__ void __launch_bounds__(128) jconv_implicit_gemm_dgrad_128x64(JCONV_IGEMM_ARGS) {
    igemm_main<128, 64>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_dgrad_128x64)
extern "C" __global__ void __launch_bounds__(64) jconv_implicit_gemm_dgrad_64x64(JCONV_IGEMM_ARGS) {
    igemm_main<64, 64>(p, in, w, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_dgrad_64x64)
