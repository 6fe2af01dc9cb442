// jconv_kernels.cu: the one translation unit that scripts/build-kernels.sh (nvcc, one fatbin) and
// scripts/build-emu.sh (g++, the CPU emulation library) compile. One file per algorithm:
#include "direct.cu"
#include "transposed.cu"
#include "depthwise.cu"
#include "im2col.cu"
#include "sgemm.cu"
#include "implicit_gemm.cu"
#include "wgrad.cu"
#include "pool.cu"
#include "layout.cu"
#include "dtype.cu"
#include "fma_probe.cu"
#include "selftest.cu"
