// jconv_splitk.cuh: split-K's second pass, shared by the implicit GEMM's layouts (implicit_gemm.cu: NCHW planes,
// implicit_gemm_nhwc.cu: channels last).
#pragma once
#include "jconv_warp.cuh"

// out[i] = epilogue(the sum of the `splits` workspace planes of `total` floats at i, in slice order, + bias[channel(i)])
// for every i < total (a grid-stride loop), stored as Out; a's bias flag and epilogue.
template <typename Out, typename Channel>
__device__ __forceinline__ void jconv_splitk_reduce(const ConvParams& a, int splits, i64 total, Channel channel, const float* __restrict__ ws,
                                                    const float* __restrict__ bias, const Out* __restrict__ res, Out* __restrict__ out) {
    JCONV_FOR_EACH(i, total) {
        float sum = 0.0f;
        for (int s = 0; s < splits; s++) sum += ws[(i64)s * total + i];
        out[i] = jconv_narrow<Out>(jconv_epilogue(a.activation, a.residual, sum + (a.hasBias ? bias[channel(i)] : 0.0f), res, i));
    }
}
