// jconv_common.cuh: what every jconv kernel shares.
//
// Build: all kernels are one translation unit, jconv_kernels.cu (scripts/build-kernels.sh for nvcc,
// scripts/build-emu.sh for the CPU emulation: g++ with emu/cuda_emu.h).
//
// Names follow io.github.jconv.ConvGeometry (forward-convolution terms): input x is N x C x H x W, weight
// w is K x C/G x R x S (PyTorch's conv2d layout; for conv_transpose2d the same array is PyTorch's
// C_in x C_out/G x R x S with C_in = K), output y is N x K x P x Q, G groups. conv_transpose2d reads y
// and writes x. All tensors are NCHW float32. Index arithmetic on tensor offsets is 64-bit.
#pragma once

#include <cstddef>

#ifdef JCONV_EMU
#include "emu/cuda_emu.h"
#endif

// The convolution's sizes, passed by value. The Java side (io.github.jconv.cuda.Launcher.params) fills an
// int[] in exactly this field order (checked below, and end to end by selftest.cu's jconv_selftest_params).
struct ConvParams {
    int n, c, h, w;
    int k, r, s;
    int p, q;
    int padTop, padLeft;
    int strideH, strideW;
    int dilationH, dilationW;
    int groups;
    int hasBias;
    int sample;  // im2col / col2im: the batch index n this launch works on
    int group;   // im2col / col2im: the group g this launch works on; implicit GEMM: the launch's first group
    int activation;  // the epilogue (io.github.jconv.Epilogue): 0 none, 1 relu, 2 relu6, 3 silu, 4 gelu (tanh form)
    int residual;    // 0 none, 1 added after the activation, 2 added before it
};

// Sizes of a row-major GEMM C[m x n] = A[m x k] * B[k x n] (+ C when accumulate), with A and B addressed
// through strides so either may be transposed: A(i, l) = a[i * aRow + l * aCol], B(l, j) = b[l * bRow + j * bCol].
struct GemmParams {
    int m, n, k;
    int aRow, aCol;
    int bRow, bCol;
    int ldc;
    int accumulate;
    int activation;  // the epilogue on each stored C element, as in ConvParams (im2col's forward GEMM)
    int residual;
};

// The weight gradient's sizes (wgrad.cu): the convolution and its split of the pixel range (io.github.jconv.cuda.WgradLauncher).
struct WgradParams {
    ConvParams conv;
    int splits;  // slices of the pixel range (blockIdx.z = group-in-launch * splits + slice)
    int chunk;   // steps per slice (a step: 8 consecutive q of one output row)
};

// The Java side passes the structs as packed int arrays: no padding, every field at its index.
#define JCONV_FIELD_AT(T, f, i) static_assert(offsetof(T, f) == (i) * sizeof(int), #T "." #f " is int " #i " of the Java packing")
static_assert(sizeof(ConvParams) == 21 * sizeof(int), "ConvParams is 21 ints (io.github.jconv.cuda.Launcher.params)");
JCONV_FIELD_AT(ConvParams, n, 0); JCONV_FIELD_AT(ConvParams, c, 1); JCONV_FIELD_AT(ConvParams, h, 2);
JCONV_FIELD_AT(ConvParams, w, 3); JCONV_FIELD_AT(ConvParams, k, 4); JCONV_FIELD_AT(ConvParams, r, 5);
JCONV_FIELD_AT(ConvParams, s, 6); JCONV_FIELD_AT(ConvParams, p, 7); JCONV_FIELD_AT(ConvParams, q, 8);
JCONV_FIELD_AT(ConvParams, padTop, 9); JCONV_FIELD_AT(ConvParams, padLeft, 10); JCONV_FIELD_AT(ConvParams, strideH, 11);
JCONV_FIELD_AT(ConvParams, strideW, 12); JCONV_FIELD_AT(ConvParams, dilationH, 13); JCONV_FIELD_AT(ConvParams, dilationW, 14);
JCONV_FIELD_AT(ConvParams, groups, 15); JCONV_FIELD_AT(ConvParams, hasBias, 16); JCONV_FIELD_AT(ConvParams, sample, 17);
JCONV_FIELD_AT(ConvParams, group, 18); JCONV_FIELD_AT(ConvParams, activation, 19); JCONV_FIELD_AT(ConvParams, residual, 20);
static_assert(sizeof(WgradParams) == 23 * sizeof(int), "WgradParams is 23 ints (io.github.jconv.cuda.WgradLauncher)");
JCONV_FIELD_AT(WgradParams, splits, 21); JCONV_FIELD_AT(WgradParams, chunk, 22);
static_assert(sizeof(GemmParams) == 11 * sizeof(int), "GemmParams is 11 ints (io.github.jconv.cuda.SgemmLauncher)");
JCONV_FIELD_AT(GemmParams, m, 0); JCONV_FIELD_AT(GemmParams, n, 1); JCONV_FIELD_AT(GemmParams, k, 2);
JCONV_FIELD_AT(GemmParams, aRow, 3); JCONV_FIELD_AT(GemmParams, aCol, 4); JCONV_FIELD_AT(GemmParams, bRow, 5);
JCONV_FIELD_AT(GemmParams, bCol, 6); JCONV_FIELD_AT(GemmParams, ldc, 7); JCONV_FIELD_AT(GemmParams, accumulate, 8);
JCONV_FIELD_AT(GemmParams, activation, 9); JCONV_FIELD_AT(GemmParams, residual, 10);

// sgemm.cu's batch of GEMMs (io.github.jconv.cuda.SgemmLauncher): block z runs product b = first + blockIdx.z,
// b = sample * groups + group, each operand at its base + sample * xSample + group * xGroup floats (x = a, b, c; the
// residual as c).
struct BatchedGemmParams {
    GemmParams g;
    int first, groups;
    int aSample, aGroup, bSample, bGroup, cSample, cGroup;
};
static_assert(sizeof(BatchedGemmParams) == 19 * sizeof(int), "BatchedGemmParams is 19 ints (io.github.jconv.cuda.SgemmLauncher)");
JCONV_FIELD_AT(BatchedGemmParams, first, 11); JCONV_FIELD_AT(BatchedGemmParams, cGroup, 18);

// im2col.cu's unfold and fold over a chunk of samples (io.github.jconv.cuda.Im2colLauncher): conv.sample is the first,
// `samples` how many; every group at once.
struct Im2colParams {
    ConvParams conv;
    int samples;
};
static_assert(sizeof(Im2colParams) == 22 * sizeof(int), "Im2colParams is 22 ints (io.github.jconv.cuda.Im2colLauncher)");
JCONV_FIELD_AT(Im2colParams, samples, 21);

// implicit_gemm.cu's GEMM (io.github.jconv.cuda.ImplicitGemmLauncher); ConvParams conv gives the group count, the launch's first group (conv.group), bias and epilogue.
struct IgemmParams {
    ConvParams conv;
    int inC, inH, inW;      // the gathered tensor: channels (all groups) and plane
    int outC, outH, outW;   // the written tensor
    int redC, cols;         // reduction channels and GEMM columns per group
    int mH, mW;             // the launch's pixel grid (M = conv.n * mH * mW)
    int inStrideH, inOffH, inStrideW, inOffW;      // gathered row of pixel row u before the tap: u*inStrideH + inOffH
    int outStrideH, outOffH, outStrideW, outOffW;  // written row of pixel row u: u*outStrideH + outOffH
    int tapsH, tapsW;                              // taps (i, j) of the launch
    int tapDh0, tapDhStep, tapDw0, tapDwStep;      // tap offsets: tapDh(i) = tapDh0 + i*tapDhStep
    int rs0, rsStepH, rsStepW;                     // weight tap index: rs(i, j) = rs0 + i*rsStepH + j*rsStepW
    int wColStride, wRedStride;                    // B's strides in w (w's group block: K/G * C/G * R * S floats)
    int splits, splitSteps;  // split-K: blockIdx.z = group-in-launch * splits + slice; slice s runs steps [s, s + 1) * splitSteps
};
static_assert(sizeof(IgemmParams) == 52 * sizeof(int), "IgemmParams is 52 ints (io.github.jconv.cuda.ImplicitGemmLauncher)");

// implicit_gemm_nhwc.cu's launch (io.github.jconv.cuda.ImplicitGemmNhwcLauncher): the convolution and its split-K.
struct NhwcParams {
    ConvParams conv;
    int splits, splitSteps;  // blockIdx.z = slice; slice s runs the 32-deep steps [s, s + 1) * splitSteps
};
static_assert(sizeof(NhwcParams) == 23 * sizeof(int), "NhwcParams is 23 ints (io.github.jconv.cuda.ImplicitGemmNhwcLauncher)");
JCONV_FIELD_AT(IgemmParams, splits, 50); JCONV_FIELD_AT(IgemmParams, splitSteps, 51);
JCONV_FIELD_AT(IgemmParams, inC, 21); JCONV_FIELD_AT(IgemmParams, outC, 24); JCONV_FIELD_AT(IgemmParams, redC, 27); JCONV_FIELD_AT(IgemmParams, mH, 29);
JCONV_FIELD_AT(IgemmParams, inStrideH, 31); JCONV_FIELD_AT(IgemmParams, outStrideH, 35);
JCONV_FIELD_AT(IgemmParams, tapsH, 39); JCONV_FIELD_AT(IgemmParams, tapDh0, 41); JCONV_FIELD_AT(IgemmParams, rs0, 45);
JCONV_FIELD_AT(IgemmParams, wColStride, 48); JCONV_FIELD_AT(IgemmParams, wRedStride, 49);

typedef long long i64;

// Unroll the next loop fully (nvcc; g++ unrolls what it likes in the emulator).
#ifdef JCONV_EMU
#define JCONV_UNROLL
#else
#define JCONV_UNROLL _Pragma("unroll")
#endif

// Grid-stride loop over [0, total) with a 64-bit index.
#define JCONV_FOR_EACH(i, total) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (total); i += (i64)gridDim.x * blockDim.x)

// The fused epilogue of one output value v (conv + bias) at index i: the residual res[i] added before or after the
// activation (io.github.jconv.Epilogue; NaN passes through ReLU and ReLU6, as in PyTorch).
__device__ __forceinline__ float jconv_activate(int activation, float v) {
    switch (activation) {
        case 1: return v < 0.0f ? 0.0f : v;
        case 2: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
        case 3: return v / (1.0f + expf(-v));
        case 4: return 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
        default: return v;
    }
}
// The float32 value of a stored element: a float itself; the 16-bit storage types (jconv_warp.cuh's jconv_f16 and
// jconv_bf16) overload it, and a residual of theirs is widened the same way.
__device__ __forceinline__ float jconv_widen(float v) { return v; }

template <typename R>
__device__ __forceinline__ float jconv_epilogue(int activation, int residual, float v, const R* res, i64 i) {
    if (residual == 2) v += jconv_widen(res[i]);
    v = jconv_activate(activation, v);
    if (residual == 1) v += jconv_widen(res[i]);
    return v;
}

// Division by a divisor fixed for the kernel without a divide instruction in the loops (Granlund and Montgomery's
// round-up method, as CUTLASS's FastDivmod): built once per thread, before the loops (one 128-bit division there), then
// n / d = (mulhi(n, mul) + n) >> shift, exact for 0 <= n < 2^63 and 1 <= d < 2^63 (mul = 2^64 (2^shift - d) / d + 1,
// shift = ceil(log2 d); the sum cannot overflow since mulhi(n, mul) <= n).
struct FastDiv {
    unsigned long long d, mul;
    unsigned shift;
    __device__ explicit FastDiv(i64 divisor) : d((unsigned long long)divisor) {
        shift = d > 1 ? 64 - __clzll((long long)(d - 1)) : 0;
        mul = (unsigned long long)((((unsigned __int128)((1ull << shift) - d)) << 64) / d) + 1;
    }
    __device__ __forceinline__ i64 div(i64 n) const {
        return (i64)((__umul64hi((unsigned long long)n, mul) + (unsigned long long)n) >> shift);
    }
    // n / d and n % d
    __device__ __forceinline__ i64 divmod(i64 n, int& rem) const {
        const i64 q = div(n);
        rem = (int)(n - q * (i64)d);
        return q;
    }
};

// Splits i, a row-major index over (d0, d1, d2, d3), into its coordinates (d0 is implied); FastDivs of d1, d2, d3.
__device__ __forceinline__ void unflatten4(i64 i, const FastDiv& d1, const FastDiv& d2, const FastDiv& d3, int& c0, int& c1, int& c2,
                                           int& c3) {
    i64 t = d3.divmod(i, c3);
    t = d2.divmod(t, c2);
    c0 = (int)d1.divmod(t, c1);
}

// Forward convolution, one input plane: acc += xc[ih][iw] * wc[r][s] over the taps (r, s) of output (p, q)
// that lie inside the H x W plane xc (wc is one R x S kernel).
__device__ __forceinline__ void window_add(const ConvParams& a, const float* xc, const float* wc, int p, int q, float& acc) {
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

// conv_transpose2d's gather on one axis: output position `in` reads forward output position (in + pad - tap * dilation)
// / stride of tap `tap` when that is whole and in [0, size). Walked tap by tap without dividing: v = in + pad - tap *
// dilation kept as v = quot * stride + rem (0 <= rem < stride), each tap subtracting dilation = dq * stride + dm.
struct GatherAxis {
    FastDiv stride;
    int dq, dm, pad, size;
    __device__ GatherAxis(int stride_, int dilation, int pad_, int size_)
        : stride(stride_), dq(dilation / stride_), dm(dilation % stride_), pad(pad_), size(size_) {}
    // quot and rem of the first tap (tap 0) of output position `in`
    __device__ __forceinline__ void start(int in, int& quot, int& rem) const { quot = (int)stride.divmod(in + pad, rem); }
    // to the next tap
    __device__ __forceinline__ void next(int& quot, int& rem) const {
        quot -= dq;
        rem -= dm;
        if (rem < 0) {
            rem += (int)stride.d;
            quot--;
        }
    }
    __device__ __forceinline__ bool hit(int quot, int rem) const { return rem == 0 && quot >= 0 && quot < size; }
};

// conv_transpose2d's gather for output (ih, iw): f(tap, at) for every tap r*S + s whose forward output position
// (p, q) exists, with at = p*Q + q its index in a P x Q plane.
template <typename F>
__device__ __forceinline__ void for_each_source(const ConvParams& a, const GatherAxis& gh, const GatherAxis& gw, int ih, int iw, F f) {
    int ph, rh, pw0, rw0;
    gh.start(ih, ph, rh);
    gw.start(iw, pw0, rw0);
    for (int r = 0; r < a.r; r++, gh.next(ph, rh)) {
        if (!gh.hit(ph, rh)) continue;
        int pw = pw0, rw = rw0;
        for (int s = 0; s < a.s; s++, gw.next(pw, rw)) {
            if (gw.hit(pw, rw)) f(r * a.s + s, (i64)ph * a.q + pw);
        }
    }
}

// conv_transpose2d, one plane of y (P x Q) and one kernel wk (R x S): acc += y[p][q] * wk[r][s] over the taps
// whose source position (p, q) of output (ih, iw) exists.
__device__ __forceinline__ void gather_add(const ConvParams& a, const GatherAxis& gh, const GatherAxis& gw, const float* yk, const float* wk,
                                           int ih, int iw, float& acc) {
    for_each_source(a, gh, gw, ih, iw, [&](int tap, i64 at) { acc += yk[at] * wk[tap]; });
}

#ifdef JCONV_EMU
#define JCONV_KERNEL_REGISTER(fn) \
    static jconv_emu::Registrar jconv_register_##fn(#fn, jconv_emu::launcher_for(&fn), jconv_emu::param_bytes(&fn));
#else
#define JCONV_KERNEL_REGISTER(fn)
#endif
