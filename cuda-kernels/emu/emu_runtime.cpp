// emu_runtime.cpp: the CUDA-on-CPU runtime behind cuda_emu.h. Its faces: emu_jni.cpp (the cuda-emu backend's JNI
// library) and sanitize_driver.cpp (a standalone test driver built with AddressSanitizer).
//
// What it catches, and how (what only a GPU can show is in the README's emulator section):
// - Device memory: each block has a guard zone of GUARD bytes on each side holding a signalling-NaN pattern;
//   new memory is NaN (0xFF bytes). A read past either end gives NaN, which propagates into the result; a write
//   there changes the pattern, and every launch ends with a check of all guards (the kernel is named).
//   Freed memory is filled with NaN and kept in a quarantine (up to QUARANTINE bytes) before it is released, so
//   a read through a stale pointer gives NaN; a quarantined block that no longer holds only NaN when it leaves
//   the quarantine (or at the next check) was written after its free, and the next call fails.
//   Built with JCONV_EMU_PLAIN_MEMORY (the sanitizer driver) every block is a plain malloc and every free a plain
//   free, so AddressSanitizer sees each out-of-bounds access and use after free.
// - Launch limits, checked as the driver's cuLaunchKernel does (CUDA_ERROR_INVALID_VALUE): block dimensions at
//   most 1024 x 1024 x 64 and 1024 threads, grid at most (2^31 - 1) x 65535 x 65535, none zero.
// - Schedules: the blocks of a launch run one at a time in a random order, and between two synchronisation
//   points the fibers of a block are resumed in a random order; both come from a 64-bit seed (JCONV_EMU_SEED,
//   else random; JCONV_EMU_SCHEDULE=fixed gives the old in-order schedule) that every fault message prints. So a
//   missing barrier whose race is benign in one order fails in another.
// - Shared memory: the __shared__ section is filled with NaN at the start of every block.
// - Barriers and warp collectives: a fiber yields to the scheduler at __syncthreads() and at every warp
//   collective. A round ends when no fiber can run; then a block barrier opens when every unfinished thread of
//   the block waits at it, and a warp collective when every lane of the warp waits at the same one (the lanes'
//   operands are combined here). Threads that returned while others wait, lanes at different collectives, or
//   lanes split between a collective and a barrier: the launch fails (on a GPU: a hang or undefined behaviour).
#include "emu_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define JCONV_ASAN_FIBERS 1
#endif

extern "C" {
// The __shared__ section's bounds, provided by the linker (weak: a build without shared memory has none).
extern char __start_jconv_emu_shared[] __attribute__((weak));
extern char __stop_jconv_emu_shared[] __attribute__((weak));
}

namespace jconv_emu {
namespace {
constexpr std::size_t GUARD = 4096;
constexpr std::uint32_t GUARD_WORD = 0x7FA5A5A5u;  // a signalling NaN: reads propagate NaN, writes are detected
constexpr std::size_t QUARANTINE = 4u << 20;
constexpr std::size_t FIBER_STACK = 256 * 1024;
constexpr unsigned WARP = 32;

struct Kernel {
    Launcher launcher;
    std::size_t paramBytes;
};
std::map<std::string, Kernel>& kernels() {
    static std::map<std::string, Kernel> k;
    return k;
}

// ------------------------------------------------------------------------------------------------ memory

struct Allocation {
    unsigned char* base;  // the guard zone before the user's bytes (PLAIN: the user's bytes)
    std::size_t bytes;
};
std::map<std::uintptr_t, Allocation>& allocations() {
    static std::map<std::uintptr_t, Allocation> a;
    return a;
}
struct Freed {
    Allocation a;
    std::uint64_t launch;  // launches run before the free
};
std::deque<Freed> quarantine;
[[maybe_unused]] std::size_t quarantined = 0;
std::uint64_t launches = 0;
std::string pending_fault;  // found outside a launch (a quarantined block written after its free)

[[maybe_unused]] void fill_guard(unsigned char* p) {
    for (std::size_t i = 0; i < GUARD; i += 4) std::memcpy(p + i, &GUARD_WORD, 4);
}

[[maybe_unused]] bool guard_intact(const unsigned char* p, std::size_t& bad) {
    for (std::size_t i = 0; i < GUARD; i += 4) {
        std::uint32_t v;
        std::memcpy(&v, p + i, 4);
        if (v != GUARD_WORD) {
            bad = i;
            return false;
        }
    }
    return true;
}

[[maybe_unused]] bool all_nan_bytes(const unsigned char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; i++)
        if (p[i] != 0xFF) return false;
    return true;
}

void release(const Freed& f) {
#ifdef JCONV_EMU_PLAIN_MEMORY
    std::free(f.a.base);
#else
    if (pending_fault.empty() && !all_nan_bytes(f.a.base + GUARD, f.a.bytes))
        pending_fault = "device memory of " + std::to_string(f.a.bytes) + " bytes freed after launch #" +
                        std::to_string(f.launch) + " was written after its free (by one of the " +
                        std::to_string(launches - f.launch) + " launches since)";
    std::free(f.a.base);
#endif
}

// "" or what a kernel wrote out of bounds; the guards are repaired.
std::string check_guards() {
#ifdef JCONV_EMU_PLAIN_MEMORY
    return "";
#else
    std::string fault;
    for (auto& [ptr, a] : allocations()) {
        std::size_t bad;
        if (!guard_intact(a.base, bad) && fault.empty())
            fault = "wrote " + std::to_string(GUARD - bad) + " bytes before an allocation of " + std::to_string(a.bytes) + " bytes";
        if (!guard_intact(a.base + GUARD + a.bytes, bad) && fault.empty())
            fault = "wrote past the end of an allocation of " + std::to_string(a.bytes) + " bytes (at byte " +
                    std::to_string(a.bytes + bad) + ")";
        if (!fault.empty()) {
            fill_guard(a.base);
            fill_guard(a.base + GUARD + a.bytes);
        }
    }
    return fault;
#endif
}

std::string take_pending_fault() {
    std::string f;
    f.swap(pending_fault);
    return f;
}

// ------------------------------------------------------------------------------------------------ schedules

std::uint64_t splitmix(std::uint64_t& s) {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::uint64_t initial_seed() {
    if (const char* s = std::getenv("JCONV_EMU_SEED")) return std::strtoull(s, nullptr, 0);
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}
const std::uint64_t SEED = initial_seed();
const bool FIXED_SCHEDULE = [] {
    const char* s = std::getenv("JCONV_EMU_SCHEDULE");
    return s != nullptr && std::string(s) == "fixed";
}();

// An order of [0, n): random from rng, or in order with a fixed schedule.
void order(std::vector<unsigned>& idx, unsigned n, std::uint64_t& rng) {
    idx.resize(n);
    for (unsigned i = 0; i < n; i++) idx[i] = i;
    if (FIXED_SCHEDULE) return;
    for (unsigned i = n; i > 1; i--) std::swap(idx[i - 1], idx[splitmix(rng) % i]);
}

// ------------------------------------------------------------------------------------------------ fibers
//
// A fiber switch saves the callee-saved registers and the floating-point control words on the stack it leaves
// and loads the other stack's (x86-64 System V; build-emu.sh builds for linux-x86_64 only). The ucontext
// switch this replaces also saved the signal mask, two system calls per switch: the emulator switches at every
// warp collective, and a tensor-core trunk spent half its time in the kernel (sys 57 s of 124 s).
extern "C" void jconv_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .pushsection .text
    .p2align 4
    .type jconv_emu_switch, @function
jconv_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size jconv_emu_switch, .-jconv_emu_switch
    .popsection
)");

struct Copy {
    void* dst;
    const void* src;
    std::size_t bytes, srcBytes;  // srcBytes read from src, the rest of the bytes zero
};

struct Fiber {
    void* sp = nullptr;  // the saved stack pointer while the fiber is not running
    ThreadState state;
    unsigned lane = 0, warp = 0;
    bool done = false;
    enum Wait { NONE, BARRIER, COLLECTIVE } wait = NONE;
    Collective collective{};
    unsigned mask = 0;
    LaneSlot slot{};
    std::vector<std::vector<Copy>> async_groups{1};  // committed groups, then the open one
    std::unique_ptr<char[]> stack;
    void* fake_stack = nullptr;
};

void* scheduler_sp = nullptr;
Fiber* running = nullptr;
ThreadState host_state{};
Launcher* body = nullptr;
void** body_args = nullptr;
std::string fiber_error;
const void* scheduler_stack_bottom = nullptr;
std::size_t scheduler_stack_size = 0;

// AddressSanitizer must be told about every switch between the scheduler's stack and a fiber's.
inline void switching_to(void** fake, const void* bottom, std::size_t size) {
#ifdef JCONV_ASAN_FIBERS
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}
inline void switched(void* fake, const void** bottom, std::size_t* size) {
#ifdef JCONV_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}

void fail(const std::string& what) {
    if (fiber_error.empty()) fiber_error = what;
}

[[noreturn]] void fiber_main() {
    switched(nullptr, &scheduler_stack_bottom, &scheduler_stack_size);
    try {
        (*body)(body_args);
    } catch (const std::exception& e) {
        fail(e.what());
    }
    Fiber* self = running;
    self->done = true;
    if (self->async_groups.size() > 1 || !self->async_groups.back().empty())
        fail("a thread returned with cp.async copies it never waited for");
    switching_to(nullptr, scheduler_stack_bottom, scheduler_stack_size);  // this fiber's stack is done
    jconv_emu_switch(&self->sp, scheduler_sp);
    __builtin_unreachable();  // a finished fiber is started afresh by init_fiber, never resumed
}

// A fresh stack whose first switch "returns" into fiber_main with the stack aligned as after a call: the saved
// registers zero, MXCSR and the x87 control word at their defaults (all exceptions masked, round to nearest).
void init_fiber(Fiber& f) {
#ifdef JCONV_ASAN_FIBERS
    // the frames of the stack's last fiber never returned: their redzones are still poisoned
    ASAN_UNPOISON_MEMORY_REGION(f.stack.get(), FIBER_STACK);
#endif
    auto top = (reinterpret_cast<std::uintptr_t>(f.stack.get()) + FIBER_STACK) & ~std::uintptr_t{15};
    auto* slot = reinterpret_cast<std::uint64_t*>(top);
    *--slot = 0;                                                   // fiber_main's return address: it never returns
    *--slot = reinterpret_cast<std::uint64_t>(&fiber_main);        // where the switch's ret goes
    for (int r = 0; r < 6; r++) *--slot = 0;                       // rbp, rbx, r12-r15
    *--slot = 0x1F80ull | (0x037Full << 32);                       // mxcsr, x87 control word
    f.sp = slot;
}

__attribute__((noinline)) void resume(Fiber& f) {
    f.wait = Fiber::NONE;
    running = &f;
    void* fake = nullptr;
    switching_to(&fake, f.stack.get(), FIBER_STACK);
    jconv_emu_switch(&scheduler_sp, f.sp);
    switched(fake, nullptr, nullptr);
    running = nullptr;
}

// From a fiber back to the scheduler, until it is resumed.
void yield(Fiber::Wait why) {
    Fiber* self = running;
    self->wait = why;
    switching_to(&self->fake_stack, scheduler_stack_bottom, scheduler_stack_size);
    jconv_emu_switch(&self->sp, scheduler_sp);
    switched(self->fake_stack, &scheduler_stack_bottom, &scheduler_stack_size);
}

// ------------------------------------------------------------------------------------------------ warps

const char* collective_name(Collective c) {
    switch (c) {
        case Collective::SYNCWARP: return "__syncwarp";
        case Collective::SHFL_IDX: return "__shfl_sync";
        case Collective::SHFL_XOR: return "__shfl_xor_sync";
        case Collective::SHFL_UP: return "__shfl_up_sync";
        case Collective::SHFL_DOWN: return "__shfl_down_sync";
        case Collective::BALLOT: return "__ballot_sync";
        case Collective::MMA_M16N8K8_TF32: return "mma.sync.m16n8k8.tf32";
        case Collective::MMA_M16N8K16_F16: return "mma.sync.m16n8k16.f16";
        case Collective::MMA_M16N8K16_BF16: return "mma.sync.m16n8k16.bf16";
        case Collective::LDMATRIX_X4: return "ldmatrix.sync.m8n8.x4";
        case Collective::LDMATRIX_X4_TRANS: return "ldmatrix.sync.m8n8.x4.trans";
    }
    return "a warp collective";
}

float as_float(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
std::uint32_t as_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Each lane's D fragment (c0..c3's positions) of C + A * B, A 16 x K and B K x 8: the products and sum in float64,
// rounded once to float32.
template <int K>
void mma_result(Fiber* const* lanes, const float (&A)[16][K], const float (&B)[K][8], const float (&C)[16][8]) {
    for (unsigned l = 0; l < WARP; l++) {
        unsigned g = l / 4, t = l % 4;
        const unsigned rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; e++) {
            double acc = C[rows[e]][cols[e]];
            for (int kk = 0; kk < K; kk++) acc += (double)A[rows[e]][kk] * (double)B[kk][cols[e]];
            lanes[l]->slot.out[e] = as_bits((float)acc);
        }
    }
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 on the lanes' fragments, laid out as the PTX ISA says
// (group = lane / 4, t = lane % 4): a0 A[group][t], a1 A[group+8][t], a2 A[group][t+4], a3 A[group+8][t+4];
// b0 B[t][group], b1 B[t+4][group]; c0..c3 (and d0..d3) C[group][2t], C[group][2t+1], C[group+8][2t], C[group+8][2t+1].
// A and B are read as TF32 (the low 13 bits of each register are ignored); products are exact and the sum is
// rounded once to float32.
void mma_m16n8k8_tf32(Fiber* const* lanes) {
    float A[16][8], B[8][8], C[16][8];
    // the tensor cores read the top 19 bits; a NaN whose payload is only in the dropped bits stays a NaN
    auto tf32 = [](std::uint32_t u) { return std::isnan(as_float(u)) ? as_float(u | 0x400000u) : as_float(u & 0xFFFFE000u); };
    for (unsigned l = 0; l < WARP; l++) {
        const std::uint32_t* in = lanes[l]->slot.in;
        unsigned g = l / 4, t = l % 4;
        A[g][t] = tf32(in[0]);
        A[g + 8][t] = tf32(in[1]);
        A[g][t + 4] = tf32(in[2]);
        A[g + 8][t + 4] = tf32(in[3]);
        B[t][g] = tf32(in[4]);
        B[t + 4][g] = tf32(in[5]);
        C[g][2 * t] = as_float(in[6]);
        C[g][2 * t + 1] = as_float(in[7]);
        C[g + 8][2 * t] = as_float(in[8]);
        C[g + 8][2 * t + 1] = as_float(in[9]);
    }
    mma_result(lanes, A, B, C);
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32: two 16-bit elements per register, the lower-numbered
// column (A) or row (B) in the low half: a0 A[group][2t, 2t+1], a1 A[group+8][2t, 2t+1], a2 A[group][2t+8, 2t+9],
// a3 A[group+8][2t+8, 2t+9]; b0 B[2t, 2t+1][group], b1 B[2t+8, 2t+9][group]; c and d as m16n8k8's. The products of
// 11- (or 8-) bit significands are exact and the sum is rounded once to float32.
void mma_m16n8k16_half(Fiber* const* lanes, bool bf16) {
    float A[16][16], B[16][8], C[16][8];
    auto half = [bf16](std::uint32_t h) {
        h &= 0xffffu;
        if (bf16) return as_float(h << 16);
        const std::uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
        if (e == 0x1f) return as_float(sign | 0x7f800000u | (m << 13));           // infinity, NaN
        if (e == 0) return (sign ? -1.0f : 1.0f) * (float)m * 5.9604644775390625e-8f;  // subnormal: m * 2^-24, exact
        return as_float(sign | ((e + 112u) << 23) | (m << 13));
    };
    for (unsigned l = 0; l < WARP; l++) {
        const std::uint32_t* in = lanes[l]->slot.in;
        unsigned g = l / 4, t = l % 4;
        for (unsigned h = 0; h < 2; h++) {  // the register's low, then high half
            A[g][2 * t + h] = half(in[0] >> (16 * h));
            A[g + 8][2 * t + h] = half(in[1] >> (16 * h));
            A[g][2 * t + 8 + h] = half(in[2] >> (16 * h));
            A[g + 8][2 * t + 8 + h] = half(in[3] >> (16 * h));
            B[2 * t + h][g] = half(in[4] >> (16 * h));
            B[2 * t + 8 + h][g] = half(in[5] >> (16 * h));
        }
        C[g][2 * t] = as_float(in[6]);
        C[g][2 * t + 1] = as_float(in[7]);
        C[g + 8][2 * t] = as_float(in[8]);
        C[g + 8][2 * t + 1] = as_float(in[9]);
    }
    mma_result(lanes, A, B, C);
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane l's slot holds the address of row l % 8 of matrix l / 8
// (16 bytes of shared memory, 16-byte aligned: anything else is refused, as the hardware faults on it). Lane
// (group = l / 4, t = l % 4) receives in out[i] matrix i's elements (group, 2t) and (group, 2t + 1), or with .trans
// (2t, group) and (2t + 1, group), the first in the low half.
void ldmatrix_x4(Fiber* const* lanes, bool trans) {
    const unsigned char* rows[4][8];
    for (unsigned l = 0; l < WARP; l++) {
        const std::uint64_t at = (std::uint64_t)lanes[l]->slot.in[0] | (std::uint64_t)lanes[l]->slot.in[1] << 32;
        if (at % 16 != 0)
            throw std::runtime_error("ldmatrix: lane " + std::to_string(l) + "'s row address is not 16-byte aligned");
        rows[l / 8][l % 8] = reinterpret_cast<const unsigned char*>((std::uintptr_t)at);
    }
    auto element = [&](int m, unsigned row, unsigned col) {
        std::uint16_t h;
        std::memcpy(&h, rows[m][row] + 2 * col, 2);
        return (std::uint32_t)h;
    };
    for (unsigned l = 0; l < WARP; l++) {
        const unsigned g = l / 4, t = l % 4;
        for (int m = 0; m < 4; m++)
            lanes[l]->slot.out[m] = trans ? element(m, 2 * t, g) | element(m, 2 * t + 1, g) << 16
                                          : element(m, g, 2 * t) | element(m, g, 2 * t + 1) << 16;
    }
}

// The lanes of one warp all wait at the same collective: combine their slots.
void combine(Collective c, Fiber* const* lanes, unsigned n) {
    if (c == Collective::LDMATRIX_X4 || c == Collective::LDMATRIX_X4_TRANS) {
        if (n != WARP) throw std::runtime_error("ldmatrix needs a full warp of 32 lanes, this one has " + std::to_string(n));
        ldmatrix_x4(lanes, c == Collective::LDMATRIX_X4_TRANS);
        return;
    }
    if (c == Collective::MMA_M16N8K8_TF32) {
        if (n != WARP) throw std::runtime_error("mma.sync needs a full warp of 32 lanes, this one has " + std::to_string(n));
        mma_m16n8k8_tf32(lanes);
        return;
    }
    if (c == Collective::MMA_M16N8K16_F16 || c == Collective::MMA_M16N8K16_BF16) {
        if (n != WARP) throw std::runtime_error("mma.sync needs a full warp of 32 lanes, this one has " + std::to_string(n));
        mma_m16n8k16_half(lanes, c == Collective::MMA_M16N8K16_BF16);
        return;
    }
    if (c == Collective::SYNCWARP) return;
    if (c == Collective::BALLOT) {
        std::uint32_t bits = 0;
        for (unsigned l = 0; l < n; l++)
            if (lanes[l]->slot.in[0] != 0) bits |= 1u << l;
        for (unsigned l = 0; l < n; l++) lanes[l]->slot.out[0] = bits;
        return;
    }
    for (unsigned l = 0; l < n; l++) {
        const LaneSlot& s = lanes[l]->slot;
        const int width = s.width;
        if (width < 1 || width > 32 || (width & (width - 1)) != 0)
            throw std::runtime_error(std::string(collective_name(c)) + " with width " + std::to_string(width) + " (a power of 2 up to 32)");
        const int base = (int)l & ~(width - 1);
        int src = (int)l;
        switch (c) {
            case Collective::SHFL_IDX: src = base + (s.arg & (width - 1)); break;
            case Collective::SHFL_XOR: src = (int)l ^ s.arg; break;
            case Collective::SHFL_UP: src = (int)l - s.arg >= base ? (int)l - s.arg : (int)l; break;
            case Collective::SHFL_DOWN: src = (int)l + s.arg < base + width ? (int)l + s.arg : (int)l; break;
            default: break;
        }
        if (src < 0 || src >= (int)n) src = (int)l;  // outside the warp: the lane's own value, as the hardware
        lanes[l]->slot.out[0] = lanes[src]->slot.in[0];
    }
}

// After a round in which no fiber could run: open what can be opened. Returns false when nothing could. Warp `slow`
// (none when negative) is held at its collectives while another warp can go on: it falls behind the rest of the block
// up to their next barrier, as a warp the hardware does not schedule for a while, so a missing __syncthreads() between
// warps that share memory shows (in lockstep, one collective each per round, the warps never drift that far apart).
bool open_barriers(std::vector<Fiber>& fibers, const std::string& name, int slow) {
    unsigned finished = 0, barrier = 0, collective = 0;
    for (auto& f : fibers) {
        finished += f.done;
        barrier += f.wait == Fiber::BARRIER;
        collective += f.wait == Fiber::COLLECTIVE;
    }
    bool progress = false;
    // warps whose every lane waits at a collective
    for (std::size_t w0 = 0; w0 < fibers.size(); w0 += WARP) {
        std::size_t n = std::min<std::size_t>(WARP, fibers.size() - w0);
        Fiber* lanes[WARP];
        unsigned waiting = 0, done = 0, atBarrier = 0;
        for (std::size_t l = 0; l < n; l++) {
            lanes[l] = &fibers[w0 + l];
            waiting += lanes[l]->wait == Fiber::COLLECTIVE;
            done += lanes[l]->done;
            atBarrier += lanes[l]->wait == Fiber::BARRIER;
        }
        if (waiting == 0 || (int)(w0 / WARP) == slow) continue;
        if (waiting != n) {
            const Fiber* first = lanes[0];
            for (std::size_t l = 0; l < n && first->wait != Fiber::COLLECTIVE; l++) first = lanes[l];
            throw std::runtime_error(name + ": divergent " + collective_name(first->collective) +
                                     " in warp " + std::to_string(w0 / WARP) + " (" + std::to_string(waiting) + " of " +
                                     std::to_string(n) + " lanes reached it, " + std::to_string(done) + " returned, " +
                                     std::to_string(atBarrier) + " wait at __syncthreads)");
        }
        for (std::size_t l = 1; l < n; l++) {
            if (lanes[l]->collective != lanes[0]->collective || lanes[l]->mask != lanes[0]->mask)
                throw std::runtime_error(name + ": lanes of warp " + std::to_string(w0 / WARP) + " wait at different warp collectives (" +
                                         collective_name(lanes[0]->collective) + " and " + collective_name(lanes[l]->collective) +
                                         ", or different masks)");
        }
        if (lanes[0]->mask != 0xffffffffu)
            throw std::runtime_error(name + ": " + collective_name(lanes[0]->collective) + " with mask " +
                                     std::to_string(lanes[0]->mask) + ": only full-warp masks (0xffffffff) are emulated");
        combine(lanes[0]->collective, lanes, (unsigned)n);
        for (std::size_t l = 0; l < n; l++) lanes[l]->wait = Fiber::NONE;
        progress = true;
    }
    if (progress) return true;
    if (slow >= 0 && (std::size_t)slow * WARP < fibers.size()) return open_barriers(fibers, name, -1);  // only the slow warp can go on
    if (barrier > 0 && barrier + finished == fibers.size()) {
        if (finished > 0)
            throw std::runtime_error(name + ": divergent __syncthreads() (" + std::to_string(finished) + " threads returned while " +
                                     std::to_string(barrier) + " wait at a barrier)");
        for (auto& f : fibers) f.wait = Fiber::NONE;
        return true;
    }
    if (barrier > 0 && collective > 0)
        throw std::runtime_error(name + ": some threads wait at __syncthreads() while others wait at a warp collective");
    return false;
}

void check_limits(const std::string& name, dim3 grid, dim3 block) {
    auto bad = [&](const std::string& why) {
        throw std::runtime_error("CUDA_ERROR_INVALID_VALUE: kernel " + name + " launched with grid (" + std::to_string(grid.x) + ", " +
                                 std::to_string(grid.y) + ", " + std::to_string(grid.z) + ") and block (" + std::to_string(block.x) +
                                 ", " + std::to_string(block.y) + ", " + std::to_string(block.z) + "): " + why);
    };
    if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0) bad("a dimension is 0");
    if (block.x > 1024 || block.y > 1024 || block.z > 64) bad("block dimensions are at most 1024 x 1024 x 64");
    if ((std::uint64_t)block.x * block.y * block.z > 1024) bad("a block has at most 1024 threads");
    if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) bad("grid dimensions are at most 2147483647 x 65535 x 65535");
}

void run_launch(const std::string& name, dim3 grid, dim3 block, void** args, std::size_t paramBytes) {
    auto it = kernels().find(name);
    if (it == kernels().end()) throw std::runtime_error("no kernel named " + name + " in the emulation library");
    if (paramBytes != it->second.paramBytes)
        throw std::runtime_error("kernel " + name + " reads a " + std::to_string(it->second.paramBytes) + "-byte parameter struct, the launch packed " +
                                 std::to_string(paramBytes) + " bytes (the Java packing and jconv_common.cuh disagree)");
    check_limits(name, grid, block);
    const unsigned threads = block.x * block.y * block.z;
    static std::vector<Fiber> fibers;  // kept between launches: a launch does not allocate 256 stacks anew
    fibers.resize(threads);
    for (auto& f : fibers)
        if (!f.stack) f.stack.reset(new char[FIBER_STACK]);
    body = &it->second.launcher;
    body_args = args;
    fiber_error.clear();
    std::uint64_t rng = SEED ^ (0xD1B54A32D192ED03ull * (launches + 1));
    const std::uint64_t blocks = (std::uint64_t)grid.x * grid.y * grid.z;
    std::vector<unsigned> blockOrder, fiberOrder;
    const bool shuffleBlocks = blocks <= (1u << 20);  // larger grids run in order (and are never that large in tests)
    if (shuffleBlocks) order(blockOrder, (unsigned)blocks, rng);
    const std::size_t sharedBytes = __start_jconv_emu_shared ? (std::size_t)(__stop_jconv_emu_shared - __start_jconv_emu_shared) : 0;
    for (std::uint64_t b = 0; b < blocks; b++) {
        const std::uint64_t id = shuffleBlocks ? blockOrder[b] : b;
        const uint3 bi{(unsigned)(id % grid.x), (unsigned)(id / grid.x % grid.y), (unsigned)(id / ((std::uint64_t)grid.x * grid.y))};
        if (sharedBytes) std::memset(__start_jconv_emu_shared, 0xFF, sharedBytes);
        unsigned t = 0;
        for (unsigned tz = 0; tz < block.z; tz++)
            for (unsigned ty = 0; ty < block.y; ty++)
                for (unsigned tx = 0; tx < block.x; tx++, t++) {
                    Fiber& f = fibers[t];
                    f.state = ThreadState{{tx, ty, tz}, bi, block, grid};
                    f.lane = t % WARP;
                    f.warp = t / WARP;
                    f.done = false;
                    f.wait = Fiber::NONE;
                    f.async_groups.assign(1, {});
                    init_fiber(f);
                }
        // half of the blocks of more than one warp hold one warp back (open_barriers)
        const unsigned warps = (threads + WARP - 1) / WARP;
        const int slow = FIXED_SCHEDULE || warps < 2 || splitmix(rng) % 2 ? -1 : (int)(splitmix(rng) % warps);
        for (;;) {
            bool ran = false;
            order(fiberOrder, threads, rng);
            for (unsigned i : fiberOrder) {
                Fiber& f = fibers[i];
                if (f.done || f.wait != Fiber::NONE) continue;
                resume(f);
                ran = true;
                if (!fiber_error.empty()) throw std::runtime_error(name + ": " + fiber_error);
            }
            if (ran) continue;
            bool all = true;
            for (auto& f : fibers) all &= f.done;
            if (all) break;
            if (!open_barriers(fibers, name, slow)) throw std::runtime_error(name + ": threads wait for each other for ever (a deadlock)");
        }
    }
}
}  // namespace

std::mutex& device_lock() {
    static std::mutex m;
    return m;
}

std::uint64_t schedule_seed() { return SEED; }

void* device_alloc(std::size_t bytes) {
    std::string fault = take_pending_fault();
    if (!fault.empty()) throw std::runtime_error(fault);
#ifdef JCONV_EMU_PLAIN_MEMORY
    auto* base = static_cast<unsigned char*>(std::malloc(bytes == 0 ? 1 : bytes));
    if (base == nullptr) throw std::runtime_error("emulated device out of memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(base, 0xFF, bytes);
    allocations()[reinterpret_cast<std::uintptr_t>(base)] = Allocation{base, bytes};
    return base;
#else
    auto* base = static_cast<unsigned char*>(std::malloc(bytes + 2 * GUARD));
    if (base == nullptr) throw std::runtime_error("emulated device out of memory allocating " + std::to_string(bytes) + " bytes");
    fill_guard(base);
    std::memset(base + GUARD, 0xFF, bytes);
    fill_guard(base + GUARD + bytes);
    allocations()[reinterpret_cast<std::uintptr_t>(base + GUARD)] = Allocation{base, bytes};
    return base + GUARD;
#endif
}

void device_free(void* ptr) {
    auto it = allocations().find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == allocations().end()) throw std::runtime_error("free of an address that is not an emulated allocation");
    Freed f{it->second, launches};
    allocations().erase(it);
#ifdef JCONV_EMU_PLAIN_MEMORY
    release(f);
#else
    std::memset(f.a.base + GUARD, 0xFF, f.a.bytes);  // a read through a stale pointer gives NaN
    quarantine.push_back(f);
    quarantined += f.a.bytes;
    while (quarantined > QUARANTINE && !quarantine.empty()) {
        quarantined -= quarantine.front().a.bytes;
        release(quarantine.front());
        quarantine.pop_front();
    }
#endif
}

void launch(const std::string& name, dim3 grid, dim3 block, void** args, std::size_t paramBytes) {
    std::string fault = take_pending_fault();
    if (!fault.empty()) throw std::runtime_error(fault);
    launches++;
    try {
        run_launch(name, grid, block, args, paramBytes);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + " (emulator schedule seed " + std::to_string(SEED) + ", launch #" +
                                 std::to_string(launches) + "; JCONV_EMU_SEED=" + std::to_string(SEED) + " repeats it)");
    }
    std::string bad = check_guards();
    if (!bad.empty()) throw std::runtime_error("kernel " + name + " " + bad);
}

std::vector<std::string> kernel_names() {
    std::vector<std::string> names;
    for (auto& [name, l] : kernels()) names.push_back(name);
    return names;
}

ThreadState& current() { return running ? running->state : host_state; }

void syncthreads() { yield(Fiber::BARRIER); }

LaneSlot& lane_slot() { return running->slot; }

int lane_id() { return (int)running->lane; }

void warp_collective(Collective c, unsigned mask) {
    running->collective = c;
    running->mask = mask;
    yield(Fiber::COLLECTIVE);
}

void cp_async(void* dst, const void* src, std::size_t bytes, std::size_t srcBytes) {
    if (srcBytes > bytes) throw std::runtime_error("cp.async: src-size " + std::to_string(srcBytes) + " above the copy's " + std::to_string(bytes) + " bytes");
    if (((std::uintptr_t)dst | (std::uintptr_t)src) % bytes != 0)  // the PTX ISA: both addresses aligned to cp-size
        throw std::runtime_error("cp.async: a " + std::to_string(bytes) + "-byte copy between addresses not aligned to " + std::to_string(bytes) + " bytes");
    std::memset(dst, 0xFF, bytes);  // nothing is there until a wait retires the copy
    running->async_groups.back().push_back(Copy{dst, src, bytes, srcBytes});
}

void cp_async_commit() { running->async_groups.emplace_back(); }

void cp_async_wait(int pending) {
    auto& groups = running->async_groups;  // committed groups, oldest first, then the open one
    const std::size_t committed = groups.size() - 1;
    const std::size_t retire = committed > (std::size_t)pending ? committed - pending : 0;
    for (std::size_t g = 0; g < retire; g++)
        for (const Copy& c : groups[g]) {
            std::memcpy(c.dst, c.src, c.srcBytes);  // nothing read past src-size (src-size 0: no read at all)
            std::memset(static_cast<unsigned char*>(c.dst) + c.srcBytes, 0, c.bytes - c.srcBytes);
        }
    groups.erase(groups.begin(), groups.begin() + (long)retire);
}

Registrar::Registrar(const char* name, Launcher launcher, std::size_t paramBytes) {
    kernels()[name] = Kernel{std::move(launcher), paramBytes};
}
}  // namespace jconv_emu
