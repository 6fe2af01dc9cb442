// cuda_emu.h: just enough CUDA for jconv's kernels to compile with g++ and run on the CPU.
//
// Semantics (emu_runtime.cpp): a launch runs its blocks one after another, in a seeded random order; the threads
// of a block run as cooperative fibers, resumed in a seeded random order between synchronisation points.
// __syncthreads() is a real barrier: a fiber that reaches it waits until every thread of the block has reached
// it. Threads are grouped in warps of 32 lanes (threadIdx linearised x fastest, as on a GPU); the warp
// collectives (__shfl*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp, and the tensor-core and
// async-copy helpers of jconv_warp.cuh) wait until every lane of the warp reaches the same collective, then
// exchange values. A thread that returns while others wait at a barrier, or a lane that skips a collective its
// warp-mates reach, fails the launch (a divergent barrier).
//
// __shared__ variables live in one linker section that is filled with NaN at the start of every block, so a
// block that reads shared memory it did not write gets NaN (on a GPU: whatever is there), not the previous
// block's values.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __shared__ static __attribute__((section("jconv_emu_shared"), aligned(16)))

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
struct __align__(16) float4 {
    float x, y, z, w;
};

namespace jconv_emu {
struct ThreadState {
    uint3 threadIdx, blockIdx;
    dim3 blockDim, gridDim;
};
ThreadState& current();
void syncthreads();

// The warp collectives: each lane writes its operands into its slot, waits until the whole warp has reached
// the same collective, and reads its result back. The runtime combines the lanes' slots (emu_runtime.cpp).
enum class Collective : int { SYNCWARP = 1, SHFL_IDX, SHFL_XOR, SHFL_UP, SHFL_DOWN, BALLOT, MMA_M16N8K8_TF32, MMA_M16N8K16_F16,
                                MMA_M16N8K16_BF16, LDMATRIX_X4, LDMATRIX_X4_TRANS };
struct LaneSlot {
    std::uint32_t in[16];
    std::uint32_t out[16];
    int arg, width;
    unsigned mask;
};
LaneSlot& lane_slot();
void warp_collective(Collective c, unsigned mask);
int lane_id();

// cp.async: the copy is recorded in the thread's open group (its destination is poisoned with NaN until then)
// and carried out when a wait retires the group, so a kernel that reads before waiting reads NaN; srcBytes of the
// bytes come from src, the rest are zero (cp.async's src-size).
void cp_async(void* dst, const void* src, std::size_t bytes, std::size_t srcBytes);
void cp_async_commit();
void cp_async_wait(int pending);

using Launcher = std::function<void(void**)>;

struct Registrar {
    Registrar(const char* name, Launcher launcher, std::size_t paramBytes);
};

// The size of a kernel's first parameter (its parameter struct), which a launch's packed parameters must match.
template <typename P, typename... A>
constexpr std::size_t param_bytes(void (*)(P, A...)) {
    return sizeof(P);
}

template <typename... A, std::size_t... I>
void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

// A launcher that calls f with its arguments read from a cuLaunchKernel-style array of pointers.
template <typename... A>
Launcher launcher_for(void (*f)(A...)) {
    return [f](void** args) { call_with(f, args, std::index_sequence_for<A...>{}); };
}

template <typename T>
T shfl(Collective c, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    LaneSlot& s = lane_slot();
    std::memcpy(s.in, &v, 4);
    s.arg = arg;
    s.width = width;
    warp_collective(c, mask);
    T r;
    std::memcpy(&r, lane_slot().out, 4);
    return r;
}
}  // namespace jconv_emu

#define threadIdx (jconv_emu::current().threadIdx)
#define blockIdx (jconv_emu::current().blockIdx)
#define blockDim (jconv_emu::current().blockDim)
#define gridDim (jconv_emu::current().gridDim)
#define warpSize 32
#define __syncthreads() jconv_emu::syncthreads()

inline void __syncwarp(unsigned mask = 0xffffffffu) { jconv_emu::warp_collective(jconv_emu::Collective::SYNCWARP, mask); }
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return jconv_emu::shfl(jconv_emu::Collective::SHFL_IDX, mask, v, src, width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    return jconv_emu::shfl(jconv_emu::Collective::SHFL_XOR, mask, v, laneMask, width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return jconv_emu::shfl(jconv_emu::Collective::SHFL_UP, mask, v, (int)delta, width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return jconv_emu::shfl(jconv_emu::Collective::SHFL_DOWN, mask, v, (int)delta, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    return jconv_emu::shfl(jconv_emu::Collective::BALLOT, mask, (unsigned)(predicate != 0), 0, 32);
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, !predicate) == 0; }

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    std::memcpy(&i, &f, 4);
    return i;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
