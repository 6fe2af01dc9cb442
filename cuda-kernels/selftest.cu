// selftest.cu: small kernels that check the contracts the convolution kernels rely on, on the emulator in every
// test run and on a GPU where there is one (io.github.jconv.cuda.SelfTestKernelsTest). Not used by any algorithm.
//
// jconv_selftest_params: thread 0 writes ConvParams' 21 fields, in order, to out (as ints): the Java packing
//   (Launcher.params) and the struct must agree (the struct's layout is also static_assert'ed in jconv_common.cuh).
// jconv_selftest_warp: one value in[t] per thread t; per thread 8 results out[8t + i]: __shfl_sync from lane + 3,
//   __shfl_xor_sync 5, __shfl_up_sync 2, __shfl_down_sync 3, the __ballot_sync of in > 0 (its bits as a float),
//   the warp's sum by an xor-shuffle tree, __shfl_sync from lane 1 of each group of 8 (width 8), and in[t] after
//   __syncwarp.
// jconv_selftest_mma: one warp; D (16 x 8, row-major) = A (16 x 8, row-major) * B (8 x 8, row-major) in TF32 through
//   jconv_mma_m16n8k8_tf32, A and B rounded with jconv_to_tf32; C = 0.
// jconv_selftest_cp_async: 128 threads copy two stages of 512 floats from src into shared memory with cp.async
//   (16 bytes per thread per stage, one commit group per stage), then write stage 0 after wait_group 1 and stage 1
//   after wait_group 0 to out. With g.k = 1 stage 1 is read before its wait (a deliberate bug the emulator must
//   show as NaN; on a GPU the result is undefined, so the test runs that variant on the emulator only).
// jconv_selftest_fastdiv: g.m pairs (n, d) of 64-bit integers, each as 4 floats of int bits (n low, n high, d low,
//   d high); thread t writes FastDiv(d).div(n) and n - that * d, the same way, to out[4t..4t+3].
// jconv_selftest_divergent: lane 0 of the warp returns before a __shfl_sync the other lanes reach (emulator only:
//   it must fail the launch; on a GPU it is undefined behaviour).
#include "jconv_warp.cuh"

extern "C" __global__ void jconv_selftest_fastdiv(GemmParams g, const float* __restrict__ in, float* __restrict__ out) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= g.m) return;
    auto word = [&](int i) { return (unsigned long long)(unsigned)__float_as_int(in[4 * t + i]); };
    const i64 n = (i64)(word(0) | word(1) << 32), d = (i64)(word(2) | word(3) << 32);
    const FastDiv fd(d);
    const i64 q = fd.div(n), r = n - q * d;
    out[4 * t] = __int_as_float((int)(unsigned)q);
    out[4 * t + 1] = __int_as_float((int)(unsigned)((unsigned long long)q >> 32));
    out[4 * t + 2] = __int_as_float((int)(unsigned)r);
    out[4 * t + 3] = __int_as_float((int)(unsigned)((unsigned long long)r >> 32));
}
JCONV_KERNEL_REGISTER(jconv_selftest_fastdiv)

extern "C" __global__ void jconv_selftest_params(ConvParams a, float* __restrict__ out) {
    if (threadIdx.x != 0) return;
    const int f[21] = {a.n, a.c, a.h, a.w, a.k, a.r, a.s, a.p, a.q, a.padTop, a.padLeft, a.strideH, a.strideW,
                       a.dilationH, a.dilationW, a.groups, a.hasBias, a.sample, a.group, a.activation, a.residual};
    for (int i = 0; i < 21; i++) out[i] = __int_as_float(f[i]);
}
JCONV_KERNEL_REGISTER(jconv_selftest_params)

extern "C" __global__ void jconv_selftest_warp(GemmParams g, const float* __restrict__ in, float* __restrict__ out) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
    const unsigned all = 0xffffffffu;
    const float v = in[t];
    float* o = out + 8 * t;
    o[0] = __shfl_sync(all, v, (lane + 3) % 32);
    o[1] = __shfl_xor_sync(all, v, 5);
    o[2] = __shfl_up_sync(all, v, 2);
    o[3] = __shfl_down_sync(all, v, 3);
    o[4] = __int_as_float((int)__ballot_sync(all, v > 0.0f));
    float sum = v;
    for (int m = 16; m > 0; m /= 2) sum += __shfl_xor_sync(all, sum, m);
    o[5] = sum;
    o[6] = __shfl_sync(all, v, 1, 8);
    __syncwarp();
    o[7] = v + (float)g.m;
}
JCONV_KERNEL_REGISTER(jconv_selftest_warp)

extern "C" __global__ void jconv_selftest_mma(GemmParams g, const float* __restrict__ a, const float* __restrict__ b,
                                              float* __restrict__ d) {
    const int lane = threadIdx.x % 32, grp = lane / 4, t = lane % 4;
    const unsigned af[4] = {jconv_to_tf32(a[grp * 8 + t]), jconv_to_tf32(a[(grp + 8) * 8 + t]), jconv_to_tf32(a[grp * 8 + t + 4]),
                            jconv_to_tf32(a[(grp + 8) * 8 + t + 4])};
    const unsigned bf[2] = {jconv_to_tf32(b[t * 8 + grp]), jconv_to_tf32(b[(t + 4) * 8 + grp])};
    const float cf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float df[4];
    jconv_mma_m16n8k8_tf32(df, af, bf, cf);
    d[grp * 8 + 2 * t] = df[0];
    d[grp * 8 + 2 * t + 1] = df[1];
    d[(grp + 8) * 8 + 2 * t] = df[2];
    d[(grp + 8) * 8 + 2 * t + 1] = df[3];
    (void)g;
}
JCONV_KERNEL_REGISTER(jconv_selftest_mma)

extern "C" __global__ void jconv_selftest_cp_async(GemmParams g, const float* __restrict__ src, float* __restrict__ out) {
    __shared__ __align__(16) float stage[2][512];
    const int t = threadIdx.x;
    jconv_cp_async_16(&stage[0][4 * t], src + 4 * t);
    jconv_cp_async_commit();
    jconv_cp_async_16(&stage[1][4 * t], src + 512 + 4 * t);
    jconv_cp_async_commit();
    jconv_cp_async_wait<1>();
    __syncthreads();
    for (int i = 0; i < 4; i++) out[4 * t + i] = stage[0][(4 * t + 4 + i) % 512];  // a neighbour's part: needs the barrier
    if (g.k == 1) {
        __syncthreads();
        for (int i = 0; i < 4; i++) out[512 + 4 * t + i] = stage[1][4 * t + i];  // before its wait: the bug
        jconv_cp_async_wait<0>();
    } else {
        jconv_cp_async_wait<0>();
        __syncthreads();
        for (int i = 0; i < 4; i++) out[512 + 4 * t + i] = stage[1][(4 * t + 4 + i) % 512];
    }
}
JCONV_KERNEL_REGISTER(jconv_selftest_cp_async)

// cp.async with zero fill: thread t's 16 bytes from src + 4t where t % 3 != 0, zeros elsewhere. g.k = 1: thread 7's
// source 4 bytes off (a misaligned copy, which the hardware faults on; emulator only).
extern "C" __global__ void jconv_selftest_cp_async_zfill(GemmParams g, const float* __restrict__ src, float* __restrict__ out) {
    __shared__ __align__(16) float stage[512];
    const int t = threadIdx.x;
    jconv_cp_async_16_zfill(&stage[4 * t], src + 4 * t + (g.k == 1 && t == 7 ? 1 : 0), t % 3 != 0);
    jconv_cp_async_commit();
    jconv_cp_async_wait<0>();
    __syncthreads();
    for (int i = 0; i < 4; i++) out[4 * t + i] = stage[4 * t + i];
}
JCONV_KERNEL_REGISTER(jconv_selftest_cp_async_zfill)

// ldmatrix x4: the 128 words of in (four 8 x 8 matrices of 16-bit elements, rows of 16 bytes) staged in shared memory;
// each lane gives its row's address (row l % 8 of matrix l / 8) and writes its four registers to out[4 l .. 4 l + 3].
// g.k: 0 plain, 1 .trans, 2 lane 5's address 8 bytes off its row (a misaligned row, which the hardware faults on).
extern "C" __global__ void jconv_selftest_ldmatrix(GemmParams g, const float* __restrict__ in, float* __restrict__ out) {
    __shared__ __align__(16) unsigned tile[128];
    const int lane = threadIdx.x % 32;
    for (int i = lane; i < 128; i += 32) tile[i] = (unsigned)__float_as_int(in[i]);
    __syncwarp();
    const unsigned* row = &tile[(lane / 8) * 32 + (lane % 8) * 4] + (g.k == 2 && lane == 5 ? 2 : 0);
    unsigned r[4];
    if (g.k == 1) jconv_ldmatrix_x4<true>(r, row);
    else jconv_ldmatrix_x4<false>(r, row);
    for (int i = 0; i < 4; i++) out[4 * lane + i] = __int_as_float((int)r[i]);
}
JCONV_KERNEL_REGISTER(jconv_selftest_ldmatrix)

extern "C" __global__ void jconv_selftest_divergent(GemmParams g, const float* __restrict__ in, float* __restrict__ out) {
    const int lane = threadIdx.x % 32;
    if (lane == 0 && g.k == 1) return;
    out[threadIdx.x] = __shfl_sync(0xffffffffu, in[threadIdx.x], (lane + 1) % 32);
}
JCONV_KERNEL_REGISTER(jconv_selftest_divergent)
