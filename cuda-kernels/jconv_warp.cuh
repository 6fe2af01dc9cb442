// jconv_warp.cuh: the tensor-core and asynchronous-copy primitives jconv's kernels use, one definition with two
// bodies: inline PTX for nvcc (sm_80 and newer; below that TF32 MMA traps and cp.async copies synchronously) and
// the emulator's warp collectives for g++ (emu/cuda_emu.h), with the same per-lane contract:
//
// jconv_mma_m16n8k8_tf32(d, a, b, c): mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32, D = A * B + C for the
//   warp, A 16 x 8 (row), B 8 x 8 (col), C and D 16 x 8, fragments as the PTX ISA lays them out (group = lane / 4,
//   t = lane % 4): a = {A[group][t], A[group+8][t], A[group][t+4], A[group+8][t+4]}, b = {B[t][group], B[t+4][group]},
//   c and d = {C[group][2t], C[group][2t+1], C[group+8][2t], C[group+8][2t+1]}. a and b hold TF32 values
//   (jconv_to_tf32); every lane of the warp must call it.
// jconv_to_tf32(x): cvt.rna.tf32.f32, x rounded to 10 mantissa bits, ties away from zero, as a 32-bit pattern.
// jconv_mma_m16n8k16<BF16>(d, a, b, c): mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32, A 16 x 16,
//   B 16 x 8, two 16-bit elements per register, the lower-numbered column (A) or row (B) in the low half:
//   a = {A[group][2t, 2t+1], A[group+8][2t, 2t+1], A[group][2t+8, 2t+9], A[group+8][2t+8, 2t+9]},
//   b = {B[2t, 2t+1][group], B[2t+8, 2t+9][group]}, c and d as m16n8k8's. sm_80 and newer.
// jconv_to_f16(x), jconv_to_bf16(x): cvt.rn.f16.f32 / cvt.rn.bf16.f32, x rounded to nearest even as a 16-bit pattern
//   (overflow to infinity, NaN stays NaN; f16's subnormals kept).
// jconv_cp_async_16(smem, gmem), jconv_cp_async_commit(), jconv_cp_async_wait<N>(): cp.async.cg of 16 bytes into
//   shared memory, commit_group, wait_group N (all but the newest N committed groups are complete and visible to
//   this thread; a __syncthreads() makes them visible to the block). The emulator poisons the destination until the
//   wait, so a read before it gives NaN. jconv_cp_async_16_zfill(smem, gmem, full): the same copy where full, else 16
//   zero bytes and no read (src-size 0).
// jconv_ldmatrix_x4<TRANS>(r, row): ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16, four 8 x 8 matrices of 16-bit
//   elements from shared memory: lane l gives the address of row l % 8 of matrix l / 8 (16 bytes, 16-byte aligned) and
//   receives in r[i] two elements of matrix i: without .trans row group = l / 4, columns 2t and 2t + 1 (t = l % 4),
//   with .trans column group, rows 2t and 2t + 1 (the lower-numbered in the low half) -- an m16n8k16 A fragment from
//   a row-major tile, or a B fragment from a tile stored with its reduction dimension contiguous (or, .trans, the other
//   way). Every lane of the warp must call it; sm_75 and newer.
#pragma once
#include <type_traits>
#include "jconv_common.cuh"

__device__ __forceinline__ unsigned jconv_to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned u;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(u) : "f"(x));
    return u;
#else
    unsigned u = (unsigned)__float_as_int(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;  // Inf and NaN as they are
    return (u + 0x1000u) & 0xffffe000u;              // half of the dropped 13 bits: ties go away from zero
#endif
}

// One mma.sync with FP32 C and D and four A, two B registers (every shape jconv issues), as inline PTX.
#define JCONV_MMA_F32(ptx)                                                                                              \
    asm volatile(ptx " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"                          \
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                                     \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]))

#ifdef JCONV_EMU
// The emulator's mma.sync: the lane's fragments into its slot, the warp's collective, d from the slot.
inline void jconv_emu_mma(jconv_emu::Collective kind, float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
    jconv_emu::LaneSlot& s = jconv_emu::lane_slot();
    for (int i = 0; i < 4; i++) s.in[i] = a[i];
    s.in[4] = b[0];
    s.in[5] = b[1];
    std::memcpy(s.in + 6, c, sizeof c);
    jconv_emu::warp_collective(kind, 0xffffffffu);
    std::memcpy(d, jconv_emu::lane_slot().out, sizeof d);
}
#endif

__device__ __forceinline__ unsigned short jconv_to_f16(float x) {
#if defined(__CUDA_ARCH__)
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(x));
    return h;
#else
    const unsigned u = (unsigned)__float_as_int(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN, quiet
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // at or above 65520 (a tie that rounds up): infinity
    if (a < 0x38800000u) {  // below 2^-14: a multiple of 2^-24 (1024 of them is the least normal, encoded alike)
        return (unsigned short)(sign | (unsigned)rintf(__int_as_float((int)a) * 16777216.0f));
    }
    return (unsigned short)(sign | ((a + 0xfffu + ((a >> 13) & 1u) - (112u << 23)) >> 13));  // rebias 127 - 15, ties to even
#endif
}

__device__ __forceinline__ unsigned short jconv_to_bf16(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned short h;
    asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(h) : "f"(x));
    return h;
#else
    const unsigned u = (unsigned)__float_as_int(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN, quiet
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);                   // ties to even, overflow to infinity
#endif
}

// jconv_from_f16(h), jconv_from_bf16(h): the float32 value of a 16-bit pattern (exact: every f16 and bf16 value,
//   subnormals and infinities, is a float32 one; NaN stays NaN).
__device__ __forceinline__ float jconv_from_f16(unsigned short h) {
#if defined(__CUDA_ARCH__)
    float f;
    asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"(h));
    return f;
#else
    const unsigned sign = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return __int_as_float((int)(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u)));  // Inf, NaN quiet
    if (e == 0) {  // zero and subnormals: m * 2^-24, exact
        const float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return __int_as_float((int)(sign | ((e + 112u) << 23) | (m << 13)));  // rebias 15 -> 127
#endif
}

__device__ __forceinline__ float jconv_from_bf16(unsigned short h) {
    return __int_as_float((int)((unsigned)h << 16));  // bfloat16 is float32's top half
}

// Half-precision storage elements (io.github.jconv.Dtype FP16 / BF16 tensors): the 16 bits of one value, a type per
// format so that a load widens (jconv_widen) and a store rounds (jconv_narrow<T>) by its own rule, and so that a
// loader of them feeds the half-precision main loop its bits as they are (jconv_half_bits).
struct jconv_f16 {
    unsigned short bits;
};
struct jconv_bf16 {
    unsigned short bits;
};
__device__ __forceinline__ float jconv_widen(jconv_f16 v) { return jconv_from_f16(v.bits); }
__device__ __forceinline__ float jconv_widen(jconv_bf16 v) { return jconv_from_bf16(v.bits); }

// v stored as T: as it is for float, rounded to nearest even for the 16-bit formats.
template <typename T>
__device__ __forceinline__ T jconv_narrow(float v) {
    if constexpr (std::is_same<T, jconv_f16>::value) return jconv_f16{jconv_to_f16(v)};
    else if constexpr (std::is_same<T, jconv_bf16>::value) return jconv_bf16{jconv_to_bf16(v)};
    else return v;
}

// The 16 bits a half-precision MMA operand stages for x: a float rounded to the format, a stored element of that format
// as it is (a format mismatch does not compile).
template <bool BF16>
__device__ __forceinline__ unsigned short jconv_half_bits(float x) { return BF16 ? jconv_to_bf16(x) : jconv_to_f16(x); }
template <bool BF16>
__device__ __forceinline__ unsigned short jconv_half_bits(jconv_f16 x) {
    static_assert(!BF16, "fp16 storage on the bf16 main loop");
    return x.bits;
}
template <bool BF16>
__device__ __forceinline__ unsigned short jconv_half_bits(jconv_bf16 x) {
    static_assert(BF16, "bf16 storage on the fp16 main loop");
    return x.bits;
}

template <bool BF16>
__device__ __forceinline__ void jconv_mma_m16n8k16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], const float (&c)[4]) {
#ifdef JCONV_EMU
    jconv_emu_mma(BF16 ? jconv_emu::Collective::MMA_M16N8K16_BF16 : jconv_emu::Collective::MMA_M16N8K16_F16, d, a, b, c);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (BF16) JCONV_MMA_F32("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    else JCONV_MMA_F32("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32");
#else
    (void)a, (void)b, (void)c;
    for (int i = 0; i < 4; i++) d[i] = 0.0f;
    __trap();  // half-precision m16n8k16 with FP32 accumulation: sm_80 here (callers check the architecture first)
#endif
}

__device__ __forceinline__ void jconv_mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2],
                                                       const float (&c)[4]) {
#ifdef JCONV_EMU
    jconv_emu_mma(jconv_emu::Collective::MMA_M16N8K8_TF32, d, a, b, c);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    JCONV_MMA_F32("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32");
#else
    (void)a, (void)b, (void)c;
    for (int i = 0; i < 4; i++) d[i] = 0.0f;
    __trap();  // TF32 tensor cores need sm_80; callers check the architecture first
#endif
}

template <bool TRANS>
__device__ __forceinline__ void jconv_ldmatrix_x4(unsigned (&r)[4], const void* row) {
#ifdef JCONV_EMU
    jconv_emu::LaneSlot& slot = jconv_emu::lane_slot();
    const std::uint64_t at = (std::uint64_t)(std::uintptr_t)row;
    slot.in[0] = (std::uint32_t)at;
    slot.in[1] = (std::uint32_t)(at >> 32);
    jconv_emu::warp_collective(TRANS ? jconv_emu::Collective::LDMATRIX_X4_TRANS : jconv_emu::Collective::LDMATRIX_X4, 0xffffffffu);
    std::memcpy(r, jconv_emu::lane_slot().out, sizeof r);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    const unsigned s = (unsigned)__cvta_generic_to_shared(row);
    if constexpr (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
#else
    (void)row;
    for (int i = 0; i < 4; i++) r[i] = 0u;
    __trap();  // ldmatrix needs sm_75
#endif
}

__device__ __forceinline__ void jconv_cp_async_16(void* smem, const void* gmem) {
#ifdef JCONV_EMU
    jconv_emu::cp_async(smem, gmem, 16, 16);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
#else
    *static_cast<float4*>(smem) = *static_cast<const float4*>(gmem);
#endif
}

// As jconv_cp_async_16 where `full`; otherwise the 16 bytes become zeros and nothing is read (cp.async's src-size 0:
// a tile's rows in the padding). gmem should still point into the tensor.
__device__ __forceinline__ void jconv_cp_async_16_zfill(void* smem, const void* gmem, bool full) {
#ifdef JCONV_EMU
    jconv_emu::cp_async(smem, gmem, 16, full ? 16 : 0);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(full ? 16 : 0));
#else
    *static_cast<float4*>(smem) = full ? *static_cast<const float4*>(gmem) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#endif
}

__device__ __forceinline__ void jconv_cp_async_commit() {
#ifdef JCONV_EMU
    jconv_emu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

template <int N>
__device__ __forceinline__ void jconv_cp_async_wait() {
#ifdef JCONV_EMU
    jconv_emu::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
