// implicit_gemm.cu: conv2d (fprop) and conv_transpose2d / the data gradient (dgrad) as one tiled implicit GEMM
// without an im2col buffer (io.github.jconv.cuda.ImplicitGemmLauncher fills IgemmParams, jconv_common.cuh).
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
// The main loop is jconv_gemm_mainloop.cuh's (FP32 SIMT; tiles of BM pixels x BN columns, 8 x 8 accumulators per
// thread), or with math tf32 / 3xtf32 / fp16 / bf16 jconv_mma_mainloop.cuh's (the same tiles and loader on the tensor
// cores: m16n8k8 TF32, or m16n8k16 on operands rounded to FP16 / BF16 as they are staged, two loader steps per MMA
// depth; kernels jconv_implicit_gemm_<tf32|3xtf32|fp16|bf16>_<fprop|dgrad>_<tile>; sm_80 and newer). On half-precision
// tensors in their own math (a plan of dtype fp16 in math fp16, or bf16 in bf16) the <fp16io|bf16io> kernels load the
// 16-bit input, weight and residual elements as they are (jconv_f16 / jconv_bf16: the loader's values go into the MMA
// stage without a conversion) and round the result as they store it; the bias and the split-K workspace stay float32. The loader: each thread loads one pixel row of A (its (n, u, v) and plane offsets found once, before the loop) and one
// column of B; it advances channel and tap by adds and compares.
//
// Split-K (splits > 1, layers with few tiles): slice s of a block's steps writes its partial tile, without bias or
// epilogue, to plane s of the workspace (each plane laid out like out), and jconv_implicit_gemm_splitk_reduce adds the
// planes in slice order, then the bias and the epilogue: no atomics, the same bits every run.
#include "jconv_gemm_mainloop.cuh"
#include "jconv_mma_mainloop.cuh"
#include "jconv_splitk.cuh"

template <int BM, int BN, typename In = float>
struct ConvLoader {
    using T = GemmTile<BM, BN>;
    using Value = In;  // what load gives: the tensors' elements as they are stored
    const IgemmParams& p;
    bool aPix, bOk;
    int aRow0, aCol0, aKk, bKk, inHW;
    const In* aBase;
    const In* bBase;
    int aKkStride, aStep, bKkStride, bStep;
    int c0, aChan, bChan, tj, dh, dw, rsRow, rs;

    // the loader of group grp's block (blockIdx.x, blockIdx.y), positioned at step `first`
    __device__ ConvLoader(const IgemmParams& prm, const In* in, const In* w, int grp, int first) : p(prm) {
        const ConvParams& a = p.conv;
        const int mPlane = p.mH * p.mW;
        inHW = p.inH * p.inW;  // offsets within one sample's group of channels and one w group fit in 32 bits (the launcher checks)
        const int am = (int)blockIdx.x * BM + T::aRow();
        aPix = am < a.n * mPlane;
        int an = 0, au = 0, av = 0;
        if (aPix) {
            an = am / mPlane;
            const int rem = am - an * mPlane;
            au = rem / p.mW;
            av = rem - au * p.mW;
        }
        aRow0 = au * p.inStrideH + p.inOffH;
        aCol0 = av * p.inStrideW + p.inOffW;
        aKk = T::aKk();
        aBase = in + ((i64)an * p.inC + (i64)grp * p.redC) * inHW;
        aKkStride = T::A_KK * inHW;
        aStep = JCONV_DEPTH * inHW;
        const int bc = (int)blockIdx.y * BN + T::bCol();
        bOk = bc < p.cols;
        bKk = T::bKk();
        bBase = w + (i64)grp * ((i64)(a.k / a.groups) * (a.c / a.groups) * a.r * a.s) + (i64)(bOk ? bc : 0) * p.wColStride;
        bKkStride = T::B_KK * p.wRedStride;
        bStep = JCONV_DEPTH * p.wRedStride;
        // step `first` = (tap, channel step), tap = (ti, tj) (first > 0 only where there are taps and channels)
        const int chSteps = (p.redC + JCONV_DEPTH - 1) / JCONV_DEPTH;
        const int tap = first > 0 ? first / chSteps : 0, ti = first > 0 ? tap / p.tapsW : 0;
        tj = tap - ti * p.tapsW;
        c0 = (first - tap * chSteps) * JCONV_DEPTH;
        aChan = (aKk + c0) * inHW;
        bChan = (bKk + c0) * p.wRedStride;
        dh = p.tapDh0 + ti * p.tapDhStep;
        dw = p.tapDw0 + tj * p.tapDwStep;
        rsRow = p.rs0 + ti * p.rsStepH;
        rs = rsRow + tj * p.rsStepW;
    }

    template <int NA, int NB>
    __device__ __forceinline__ void load(In (&ra)[NA], In (&rb)[NB]) const {
        const int ih = aRow0 + dh, iw = aCol0 + dw;
        const bool tapOk = aPix && (unsigned)ih < (unsigned)p.inH && (unsigned)iw < (unsigned)p.inW;
        const In* ap = aBase + (aChan + ih * p.inW + iw);  // outside the plane when !tapOk: formed, never read
        const In* bp = bBase + (bChan + rs);
        const int aLeft = p.redC - c0 - aKk, bLeft = p.redC - c0 - bKk;  // depths of this step still below redC
        JCONV_UNROLL
        for (int i = 0; i < NA; i++) ra[i] = (tapOk && T::A_KK * i < aLeft) ? load_strided(ap, aKkStride, i) : In{};
        JCONV_UNROLL
        for (int i = 0; i < NB; i++) rb[i] = (bOk && T::B_KK * i < bLeft) ? load_strided(bp, bKkStride, i) : In{};
    }

    __device__ __forceinline__ void advance() {
        c0 += JCONV_DEPTH;
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
    }
};

// out (splits == 1) or the workspace ws (splits > 1: raw float32 sums in plane `slice`; the float32 kernels pass their
// out as both, hence neither is __restrict__ here) = the block's tile; MATH 0 is
// the FP32 SIMT main loop, else the tensor-core one in that MmaMath. In: the tensors' storage (float, or the 16-bit
// jconv_f16 / jconv_bf16 of a half-precision plan, loaded as they are by the half-precision main loop, the output rounded
// to it as it is stored); the bias is float32.
template <int BM, int BN, int MATH = 0, typename In = float>
__device__ __forceinline__ void igemm_conv(const IgemmParams& p, const In* __restrict__ in, const In* __restrict__ w,
                                           const float* __restrict__ bias, const In* __restrict__ res, In* out, float* ws) {
    using T = GemmTile<BM, BN>;
    const ConvParams& a = p.conv;
    const int grp = a.group + (int)blockIdx.z / p.splits, slice = (int)blockIdx.z % p.splits;
    const int steps = (p.redC + JCONV_DEPTH - 1) / JCONV_DEPTH * p.tapsH * p.tapsW;
    const int first = slice * p.splitSteps;
    const int mine = steps - first < p.splitSteps ? steps - first : p.splitSteps;
    ConvLoader<BM, BN, In> ld(p, in, w, grp, mine > 0 ? first : 0);
    float acc[8][8];
    if constexpr (MATH == 0) gemm_mainloop<BM, BN>(ld, mine, acc);
    else mma_mainloop<BM, BN, (MmaMath)MATH>(ld, mine, acc);
    auto tileRow = [](int i) { return MATH == 0 ? T::row(i) : MmaTile<BM, BN>::row(i); };
    auto tileCol = [](int j) { return MATH == 0 ? T::col(j) : MmaTile<BM, BN>::col(j); };

    const int mPlane = p.mH * p.mW, mTotal = a.n * mPlane;
    const i64 outHW = (i64)p.outH * p.outW;
    float* part = p.splits > 1 ? ws + (i64)slice * a.n * p.outC * outHW : nullptr;
    JCONV_UNROLL
    for (int i = 0; i < 8; i++) {
        const int m = (int)blockIdx.x * BM + tileRow(i);
        if (m >= mTotal) continue;
        const int n = m / mPlane, rem = m - n * mPlane;
        const int u = rem / p.mW, v = rem - u * p.mW;
        const i64 rowAt = ((i64)n * p.outC + (i64)grp * p.cols) * outHW + (i64)(u * p.outStrideH + p.outOffH) * p.outW +
                          v * p.outStrideW + p.outOffW;
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) {
            const int col = (int)blockIdx.y * BN + tileCol(j);
            if (col >= p.cols) continue;
            const i64 at = rowAt + (i64)col * outHW;
            if (p.splits > 1) {
                part[at] = acc[i][j];
            } else {
                const float b = a.hasBias ? bias[grp * p.cols + col] : 0.0f;
                out[at] = jconv_narrow<In>(jconv_epilogue(a.activation, a.residual, acc[i][j] + b, res, at));
            }
        }
    }
}

// One entry point per math, operation and tile shape, so reports and profiles name what ran (fprop and dgrad share
// the code).
#define JCONV_IGEMM_ARGS IgemmParams p, const float* __restrict__ in, const float* __restrict__ w, const float* __restrict__ bias, \
                         const float* __restrict__ res, float* __restrict__ out
#define JCONV_IGEMM_ENTRY(name, bounds, bm, bn, math)                                   \
    extern "C" __global__ void __launch_bounds__ bounds name(JCONV_IGEMM_ARGS) {      \
        igemm_conv<bm, bn, math>(p, in, w, bias, res, out, out);                       \
    }                                                                                  \
    JCONV_KERNEL_REGISTER(name)
// bounds128: the 128 x 128 tile's __launch_bounds__ arguments. (256) for FP32 and TF32; (256, 2) for the half-precision
// main loop, which stages two steps in registers: unasked it took 153 (one block of 256 threads per SM, 12.5%
// occupancy), asked for two blocks it fits 128 without spilling (25%). Not for the others: TF32's 128 x 128 took 139
// registers when given an explicit 1 (125 unasked), and the narrower half-precision tiles spilled when asked for more.
#define JCONV_IGEMM_TILES(prefix, math, bounds128)                                     \
    JCONV_IGEMM_ENTRY(prefix##fprop_128x128, bounds128, 128, 128, math)                \
    JCONV_IGEMM_ENTRY(prefix##fprop_128x64, (128), 128, 64, math)                      \
    JCONV_IGEMM_ENTRY(prefix##fprop_64x64, (64), 64, 64, math)                         \
    JCONV_IGEMM_ENTRY(prefix##dgrad_128x128, bounds128, 128, 128, math)                \
    JCONV_IGEMM_ENTRY(prefix##dgrad_128x64, (128), 128, 64, math)                      \
    JCONV_IGEMM_ENTRY(prefix##dgrad_64x64, (64), 64, 64, math)
// The float32 kernels' `out` is also their split-K workspace (the launcher passes the workspace there); a half-precision
// plan's kernels (<fp16|bf16>io: fp16 / bf16 tensors in and out, on that format's main loop) take it apart.
#define JCONV_IGEMM_IO_ENTRY(name, bounds, bm, bn, math, In)                                                          \
    extern "C" __global__ void __launch_bounds__ bounds name(IgemmParams p, const In* __restrict__ in, const In* __restrict__ w, \
                                                            const float* __restrict__ bias, const In* __restrict__ res,       \
                                                            In* __restrict__ out, float* __restrict__ ws) {                    \
        igemm_conv<bm, bn, math, In>(p, in, w, bias, res, out, ws);                                                    \
    }                                                                                                                  \
    JCONV_KERNEL_REGISTER(name)
#define JCONV_IGEMM_IO_TILES(prefix, math, In)                                              \
    JCONV_IGEMM_IO_ENTRY(prefix##fprop_128x128, (256, 2), 128, 128, math, In)               \
    JCONV_IGEMM_IO_ENTRY(prefix##fprop_128x64, (128), 128, 64, math, In)                    \
    JCONV_IGEMM_IO_ENTRY(prefix##fprop_64x64, (64), 64, 64, math, In)                       \
    JCONV_IGEMM_IO_ENTRY(prefix##dgrad_128x128, (256, 2), 128, 128, math, In)               \
    JCONV_IGEMM_IO_ENTRY(prefix##dgrad_128x64, (128), 128, 64, math, In)                    \
    JCONV_IGEMM_IO_ENTRY(prefix##dgrad_64x64, (64), 64, 64, math, In)
JCONV_IGEMM_TILES(jconv_implicit_gemm_, 0, (256))
JCONV_IGEMM_TILES(jconv_implicit_gemm_tf32_, (int)MmaMath::TF32, (256))
JCONV_IGEMM_TILES(jconv_implicit_gemm_3xtf32_, (int)MmaMath::TF32X3, (256))
JCONV_IGEMM_TILES(jconv_implicit_gemm_fp16_, (int)MmaMath::F16, (256, 2))
JCONV_IGEMM_TILES(jconv_implicit_gemm_bf16_, (int)MmaMath::BF16, (256, 2))
JCONV_IGEMM_IO_TILES(jconv_implicit_gemm_fp16io_, (int)MmaMath::F16, jconv_f16)
JCONV_IGEMM_IO_TILES(jconv_implicit_gemm_bf16io_, (int)MmaMath::BF16, jconv_bf16)

// Split-K's second pass: out[i] = epilogue(the sum of the `splits` workspace planes at i in slice order + bias) over the
// whole output (N x outC x outH x outW; IgemmParams as the launches', any phase), stored as Out.
template <typename Out>
__device__ __forceinline__ void igemm_splitk_reduce(const IgemmParams& p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                    const Out* __restrict__ res, Out* __restrict__ out) {
    const i64 plane = (i64)p.outH * p.outW;
    const FastDiv dplane(plane), dc(p.outC);
    auto channel = [&](i64 i) {
        int c;
        dc.divmod(dplane.div(i), c);
        return c;
    };
    jconv_splitk_reduce(p.conv, p.splits, (i64)p.conv.n * p.outC * plane, channel, ws, bias, res, out);
}
extern "C" __global__ void jconv_implicit_gemm_splitk_reduce(IgemmParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                             const float* __restrict__ res, float* __restrict__ out) {
    igemm_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_splitk_reduce)
extern "C" __global__ void jconv_implicit_gemm_splitk_reduce_fp16io(IgemmParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                                    const jconv_f16* __restrict__ res, jconv_f16* __restrict__ out) {
    igemm_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_splitk_reduce_fp16io)
extern "C" __global__ void jconv_implicit_gemm_splitk_reduce_bf16io(IgemmParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                                    const jconv_bf16* __restrict__ res, jconv_bf16* __restrict__ out) {
    igemm_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_splitk_reduce_bf16io)
