// cuda_emu.h: just enough CUDA for jconv's kernels to compile with g++ and run on the CPU.
//
// Semantics (emu_runtime.cpp): a launch runs its blocks one after another; the threads of a block run
// as cooperative fibers, all of them started, and __syncthreads() is a real barrier: a fiber that reaches
// it waits until every thread of the block has reached it (a kernel whose threads disagree on barriers
// fails the launch). Since blocks do not overlap in time, __shared__ variables can be function statics.
// Launches are serialised. jconv's kernels use no warp intrinsics or atomics, so none are emulated.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};

namespace jconv_emu {
struct ThreadState {
    uint3 threadIdx, blockIdx;
    dim3 blockDim, gridDim;
};
ThreadState& current();
void syncthreads();

using Launcher = std::function<void(void**)>;

struct Registrar {
    Registrar(const char* name, Launcher launcher);
};

template <typename... A, std::size_t... I>
void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

// A launcher that calls f with its arguments read from a cuLaunchKernel-style array of pointers.
template <typename... A>
Launcher launcher_for(void (*f)(A...)) {
    return [f](void** args) { call_with(f, args, std::index_sequence_for<A...>{}); };
}
}  // namespace jconv_emu

#define threadIdx (jconv_emu::current().threadIdx)
#define blockIdx (jconv_emu::current().blockIdx)
#define blockDim (jconv_emu::current().blockDim)
#define gridDim (jconv_emu::current().gridDim)
#define __syncthreads() jconv_emu::syncthreads()
