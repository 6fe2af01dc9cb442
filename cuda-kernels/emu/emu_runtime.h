// emu_runtime.h: the CUDA-on-CPU runtime's host interface, shared by its two faces: the JNI library of the
// cuda-emu backend (emu_jni.cpp) and the standalone sanitizer driver (sanitize_driver.cpp). What it promises
// is described in emu_runtime.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emu.h"

namespace jconv_emu {
// Device memory: new memory reads as NaN. Throws std::runtime_error when out of memory, or for a free of an
// address that is not a live allocation.
void* device_alloc(std::size_t bytes);
void device_free(void* ptr);

// Runs a kernel by name with cuLaunchKernel-style arguments: checks the launch limits of a real GPU and that the
// packed parameter struct has the size the kernel reads (paramBytes), runs the blocks and their threads in a seeded
// random order, checks guard zones and freed memory afterwards. Throws std::runtime_error naming the kernel (and the
// schedule seed) on any fault.
void launch(const std::string& name, dim3 grid, dim3 block, void** args, std::size_t paramBytes);

// The kernels in this library, by name.
std::vector<std::string> kernel_names();

// The seed of the thread and block schedules (JCONV_EMU_SEED sets it; random otherwise).
std::uint64_t schedule_seed();

// Held by every host-side call: launches, copies and frees never overlap.
std::mutex& device_lock();
}  // namespace jconv_emu
