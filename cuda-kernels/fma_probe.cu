// fma_probe.cu: the GPU's float32 FMA rate, for `jconv bench`'s "% of peak" on the cuda backend.
// Layout: out has one float per thread (written so the chains are not optimised away).
// Thread: 8 independent FMA chains of `iterations` steps each, in registers; the host times the launch
// and counts 2 * 8 * iterations FLOPs per thread.
#include "jconv_common.cuh"

extern "C" __global__ void jconv_fma_probe(GemmParams p, const float* __restrict__ seed, float* __restrict__ out) {
    const float a = 0.999f, b = 1e-7f;
    float c0 = seed[0], c1 = c0 + b, c2 = c1 + b, c3 = c2 + b, c4 = c3 + b, c5 = c4 + b, c6 = c5 + b, c7 = c6 + b;
    for (int i = 0; i < p.k; i++) {
        c0 = c0 * a + b;
        c1 = c1 * a + b;
        c2 = c2 * a + b;
        c3 = c3 * a + b;
        c4 = c4 * a + b;
        c5 = c5 * a + b;
        c6 = c6 * a + b;
        c7 = c7 * a + b;
    }
    out[(i64)blockIdx.x * blockDim.x + threadIdx.x] = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
}
JCONV_KERNEL_REGISTER(jconv_fma_probe)
