// dtype.cu: half-precision storage (io.github.jconv.Dtype fp16 / bf16) converted on the device around the kernels,
// which read and write float32 (CudaBackend.convertDtypeOnDevice). Params: a.n elements; a.c = 1 for bfloat16, 0 for
// IEEE binary16. Grid-stride, one element per thread and trip.
// To float32: exact (jconv_from_f16 / jconv_from_bf16). To 16 bits: rounded once to nearest even, as PyTorch's
// .half() / .bfloat16() (jconv_to_f16 / jconv_to_bf16: overflow to infinity, NaN stays NaN).
#include "jconv_warp.cuh"

extern "C" __global__ void jconv_half_to_float(ConvParams a, const unsigned short* __restrict__ x, float* __restrict__ y) {
    const bool bf16 = a.c != 0;
    JCONV_FOR_EACH(i, (i64)a.n) y[i] = bf16 ? jconv_from_bf16(x[i]) : jconv_from_f16(x[i]);
}
JCONV_KERNEL_REGISTER(jconv_half_to_float)

extern "C" __global__ void jconv_float_to_half(ConvParams a, const float* __restrict__ x, unsigned short* __restrict__ y) {
    const bool bf16 = a.c != 0;
    JCONV_FOR_EACH(i, (i64)a.n) y[i] = bf16 ? jconv_to_bf16(x[i]) : jconv_to_f16(x[i]);
}
JCONV_KERNEL_REGISTER(jconv_float_to_half)
