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

#ifdef JCONV_EMU
#include "emu/cuda_emu.h"
#endif

// The convolution's sizes, passed by value. The Java side (io.github.jconv.cuda.KernelParams) fills an
// int[] in exactly this field order.
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
    int group;   // im2col / col2im: the group g this launch works on
};

// Sizes of a row-major GEMM C[m x n] = A[m x k] * B[k x n] (+ C when accumulate), with A and B addressed
// through strides so either may be transposed: A(i, l) = a[i * aRow + l * aCol], B(l, j) = b[l * bRow + j * bCol].
struct GemmParams {
    int m, n, k;
    int aRow, aCol;
    int bRow, bCol;
    int ldc;
    int accumulate;
};

typedef long long i64;

// Grid-stride loop over [0, total) with a 64-bit index.
#define JCONV_FOR_EACH(i, total) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (total); i += (i64)gridDim.x * blockDim.x)

#ifdef JCONV_EMU
#define JCONV_KERNEL_REGISTER(fn) static jconv_emu::Registrar jconv_register_##fn(#fn, jconv_emu::launcher_for(&fn));
#else
#define JCONV_KERNEL_REGISTER(fn)
#endif
