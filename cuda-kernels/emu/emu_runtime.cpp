// emu_runtime.cpp: the CUDA-on-CPU runtime behind cuda_emu.h, and its JNI face
// (io.github.jconv.cuda.EmuNative).
//
// - Device memory: malloc'd blocks with a guard zone of GUARD (4 KiB) bytes on each side, filled with a pattern;
//   new memory is filled with 0xFF bytes (NaN floats), so reading what no one wrote shows up. After every
//   launch all live blocks' guards are checked: a kernel that wrote out of bounds fails with its name.
// - Launch: for each block (x fastest, then y, z) one fiber per thread (ucontext, FIBER_STACK bytes of
//   stack each); the scheduler resumes every unfinished fiber in turn; __syncthreads() yields to it, and
//   a round ends when every fiber has finished or waits at the barrier. Fibers that finished while
//   others wait is a divergent barrier: the launch fails.
#include <jni.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_emu.h"

namespace jconv_emu {
namespace {
constexpr std::size_t GUARD = 4096;
constexpr unsigned char GUARD_BYTE = 0xA5;
constexpr std::size_t FIBER_STACK = 256 * 1024;

std::map<std::string, Launcher>& kernels() {
    static std::map<std::string, Launcher> k;
    return k;
}

struct Allocation {
    unsigned char* base;
    std::size_t bytes;
};
std::map<std::uintptr_t, Allocation>& allocations() {
    static std::map<std::uintptr_t, Allocation> a;
    return a;
}
std::mutex& lock() {
    static std::mutex m;
    return m;
}

struct Fiber {
    ucontext_t ctx;
    ThreadState state;
    bool done = false;
    bool waiting = false;
    std::unique_ptr<char[]> stack;
};

ucontext_t scheduler;
Fiber* running = nullptr;
ThreadState host_state{};
Launcher* body = nullptr;
void** body_args = nullptr;
std::string fiber_error;

void fiber_main() {
    try {
        (*body)(body_args);
    } catch (const std::exception& e) {
        if (fiber_error.empty()) fiber_error = e.what();
    }
    running->done = true;
}

// Kept out of line: getcontext returns twice, which must not touch the launch loop's variables.
__attribute__((noinline)) void init_fiber(Fiber& f) {
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = FIBER_STACK;
    f.ctx.uc_link = &scheduler;
    makecontext(&f.ctx, fiber_main, 0);
}

__attribute__((noinline)) void resume(Fiber& f) {
    f.waiting = false;
    running = &f;
    swapcontext(&scheduler, &f.ctx);
    running = nullptr;
}

std::string check_guards() {
    for (auto& [ptr, a] : allocations()) {
        for (std::size_t i = 0; i < GUARD; i++) {
            if (a.base[i] != GUARD_BYTE)
                return "wrote " + std::to_string(GUARD - i) + " bytes before an allocation of " + std::to_string(a.bytes) + " bytes";
        }
        for (std::size_t i = 0; i < GUARD; i++) {
            if (a.base[GUARD + a.bytes + i] != GUARD_BYTE)
                return "wrote past the end of an allocation of " + std::to_string(a.bytes) + " bytes (at byte " +
                       std::to_string(a.bytes + i) + ")";
        }
    }
    return "";
}

void repair_guards() {
    for (auto& [ptr, a] : allocations()) {
        std::memset(a.base, GUARD_BYTE, GUARD);
        std::memset(a.base + GUARD + a.bytes, GUARD_BYTE, GUARD);
    }
}

void launch(const std::string& name, dim3 grid, dim3 block, void** args) {
    auto it = kernels().find(name);
    if (it == kernels().end()) throw std::runtime_error("no kernel named " + name + " in the emulation library");
    unsigned threads = block.x * block.y * block.z;
    if (threads == 0 || threads > 1024) throw std::runtime_error("block of " + std::to_string(threads) + " threads");
    std::vector<Fiber> fibers(threads);
    for (auto& f : fibers) f.stack.reset(new char[FIBER_STACK]);
    body = &it->second;
    body_args = args;
    fiber_error.clear();
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                unsigned t = 0;
                for (unsigned tz = 0; tz < block.z; tz++)
                    for (unsigned ty = 0; ty < block.y; ty++)
                        for (unsigned tx = 0; tx < block.x; tx++, t++) {
                            Fiber& f = fibers[t];
                            f.state = ThreadState{{tx, ty, tz}, {bx, by, bz}, block, grid};
                            f.done = false;
                            init_fiber(f);
                        }
                for (;;) {
                    unsigned finished = 0, waiting = 0;
                    for (auto& f : fibers) {
                        if (f.done) continue;
                        resume(f);
                        if (!fiber_error.empty()) throw std::runtime_error(name + ": " + fiber_error);
                    }
                    for (auto& f : fibers) {
                        finished += f.done;
                        waiting += f.waiting;
                    }
                    if (finished == threads) break;
                    if (finished > 0)
                        throw std::runtime_error(name + ": divergent __syncthreads() (" + std::to_string(finished) +
                                                 " threads returned while " + std::to_string(waiting) + " wait at a barrier)");
                }
            }
}
}  // namespace

ThreadState& current() { return running ? running->state : host_state; }

void syncthreads() {
    running->waiting = true;
    Fiber* self = running;
    swapcontext(&self->ctx, &scheduler);
}

Registrar::Registrar(const char* name, Launcher launcher) { kernels()[name] = std::move(launcher); }
}  // namespace jconv_emu

using namespace jconv_emu;

namespace {
void throw_java(JNIEnv* env, const std::string& message) {
    jclass cls = env->FindClass("io/github/jconv/cuda/DeviceException");
    if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}
}  // namespace

extern "C" {
JNIEXPORT jlong JNICALL Java_io_github_jconv_cuda_EmuNative_alloc(JNIEnv* env, jclass, jlong bytes) {
    std::lock_guard<std::mutex> g(lock());
    auto* base = static_cast<unsigned char*>(std::malloc(static_cast<std::size_t>(bytes) + 2 * GUARD));
    if (base == nullptr) {
        throw_java(env, "emulated device out of memory allocating " + std::to_string(bytes) + " bytes");
        return 0;
    }
    std::memset(base, GUARD_BYTE, GUARD);
    std::memset(base + GUARD, 0xFF, static_cast<std::size_t>(bytes));
    std::memset(base + GUARD + bytes, GUARD_BYTE, GUARD);
    auto ptr = reinterpret_cast<std::uintptr_t>(base + GUARD);
    allocations()[ptr] = Allocation{base, static_cast<std::size_t>(bytes)};
    return static_cast<jlong>(ptr);
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_free(JNIEnv* env, jclass, jlong ptr) {
    std::lock_guard<std::mutex> g(lock());
    auto it = allocations().find(static_cast<std::uintptr_t>(ptr));
    if (it == allocations().end()) {
        throw_java(env, "free of an address that is not an emulated allocation");
        return;
    }
    std::free(it->second.base);
    allocations().erase(it);
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyToDevice(JNIEnv* env, jclass, jlong dst, jfloatArray src,
                                                                        jint offset, jint count) {
    std::lock_guard<std::mutex> g(lock());
    env->GetFloatArrayRegion(src, offset, count, reinterpret_cast<jfloat*>(dst));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyToHost(JNIEnv* env, jclass, jfloatArray dst, jint offset,
                                                                      jlong src, jint count) {
    std::lock_guard<std::mutex> g(lock());
    env->SetFloatArrayRegion(dst, offset, count, reinterpret_cast<const jfloat*>(src));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copy(JNIEnv*, jclass, jlong dst, jlong src, jlong bytes) {
    std::lock_guard<std::mutex> g(lock());
    std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), static_cast<std::size_t>(bytes));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_launch(JNIEnv* env, jclass, jstring jname, jintArray jgrid,
                                                                  jintArray jblock, jintArray jparams, jlongArray jpointers) {
    std::lock_guard<std::mutex> g(lock());
    const char* cname = env->GetStringUTFChars(jname, nullptr);
    std::string name(cname);
    env->ReleaseStringUTFChars(jname, cname);
    jint grid[3], block[3];
    env->GetIntArrayRegion(jgrid, 0, 3, grid);
    env->GetIntArrayRegion(jblock, 0, 3, block);
    std::vector<jint> params(env->GetArrayLength(jparams));
    env->GetIntArrayRegion(jparams, 0, static_cast<jsize>(params.size()), params.data());
    std::vector<jlong> pointers(env->GetArrayLength(jpointers));
    env->GetLongArrayRegion(jpointers, 0, static_cast<jsize>(pointers.size()), pointers.data());
    std::vector<void*> args;
    args.push_back(params.data());  // the params struct: ints in field order
    for (auto& p : pointers) args.push_back(&p);
    try {
        launch(name, dim3{unsigned(grid[0]), unsigned(grid[1]), unsigned(grid[2])},
               dim3{unsigned(block[0]), unsigned(block[1]), unsigned(block[2])}, args.data());
    } catch (const std::exception& e) {
        throw_java(env, e.what());
        return;
    }
    std::string bad = check_guards();
    if (!bad.empty()) {
        repair_guards();
        throw_java(env, "kernel " + name + " " + bad);
    }
}

JNIEXPORT jobjectArray JNICALL Java_io_github_jconv_cuda_EmuNative_kernels(JNIEnv* env, jclass) {
    jobjectArray out = env->NewObjectArray(static_cast<jsize>(kernels().size()), env->FindClass("java/lang/String"), nullptr);
    jsize i = 0;
    for (auto& [name, l] : kernels()) env->SetObjectArrayElement(out, i++, env->NewStringUTF(name.c_str()));
    return out;
}
}
