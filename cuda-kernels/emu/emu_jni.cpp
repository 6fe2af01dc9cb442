// emu_jni.cpp: the JNI face of the CUDA emulation runtime (io.github.jconv.cuda.EmuNative). Every call holds the
// device lock; a fault of the runtime becomes an io.github.jconv.cuda.DeviceException with its message.
#include <jni.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "emu_runtime.h"

using namespace jconv_emu;

namespace {
void throw_java(JNIEnv* env, const std::string& message) {
    jclass cls = env->FindClass("io/github/jconv/cuda/DeviceException");
    if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}

void* address(jlong p) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(p)); }
}  // namespace

extern "C" {
JNIEXPORT jlong JNICALL Java_io_github_jconv_cuda_EmuNative_alloc(JNIEnv* env, jclass, jlong bytes) {
    std::lock_guard<std::mutex> g(device_lock());
    try {
        return static_cast<jlong>(reinterpret_cast<std::uintptr_t>(device_alloc(static_cast<std::size_t>(bytes))));
    } catch (const std::exception& e) {
        throw_java(env, e.what());
        return 0;
    }
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_free(JNIEnv* env, jclass, jlong ptr) {
    std::lock_guard<std::mutex> g(device_lock());
    try {
        device_free(address(ptr));
    } catch (const std::exception& e) {
        throw_java(env, e.what());
    }
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyToDevice(JNIEnv* env, jclass, jlong dst, jfloatArray src,
                                                                        jint offset, jint count) {
    std::lock_guard<std::mutex> g(device_lock());
    env->GetFloatArrayRegion(src, offset, count, static_cast<jfloat*>(address(dst)));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyToHost(JNIEnv* env, jclass, jfloatArray dst, jint offset,
                                                                      jlong src, jint count) {
    std::lock_guard<std::mutex> g(device_lock());
    env->SetFloatArrayRegion(dst, offset, count, static_cast<const jfloat*>(address(src)));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyShortsToDevice(JNIEnv* env, jclass, jlong dst, jshortArray src,
                                                                              jint offset, jint count) {
    std::lock_guard<std::mutex> g(device_lock());
    env->GetShortArrayRegion(src, offset, count, static_cast<jshort*>(address(dst)));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copyShortsToHost(JNIEnv* env, jclass, jshortArray dst, jint offset,
                                                                            jlong src, jint count) {
    std::lock_guard<std::mutex> g(device_lock());
    env->SetShortArrayRegion(dst, offset, count, static_cast<const jshort*>(address(src)));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_copy(JNIEnv*, jclass, jlong dst, jlong src, jlong bytes) {
    std::lock_guard<std::mutex> g(device_lock());
    std::memcpy(address(dst), address(src), static_cast<std::size_t>(bytes));
}

JNIEXPORT void JNICALL Java_io_github_jconv_cuda_EmuNative_launch(JNIEnv* env, jclass, jstring jname, jintArray jgrid,
                                                                  jintArray jblock, jintArray jparams, jlongArray jpointers) {
    std::lock_guard<std::mutex> g(device_lock());
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
        // a negative Java int is a dimension beyond 2^31 - 1: the limit check reports it
        launch(name, dim3{static_cast<unsigned>(grid[0]), static_cast<unsigned>(grid[1]), static_cast<unsigned>(grid[2])},
               dim3{static_cast<unsigned>(block[0]), static_cast<unsigned>(block[1]), static_cast<unsigned>(block[2])}, args.data(),
               params.size() * sizeof(jint));
    } catch (const std::exception& e) {
        throw_java(env, e.what());
    }
}

JNIEXPORT jobjectArray JNICALL Java_io_github_jconv_cuda_EmuNative_kernels(JNIEnv* env, jclass) {
    std::vector<std::string> names = kernel_names();
    jobjectArray out = env->NewObjectArray(static_cast<jsize>(names.size()), env->FindClass("java/lang/String"), nullptr);
    for (std::size_t i = 0; i < names.size(); i++) env->SetObjectArrayElement(out, static_cast<jsize>(i), env->NewStringUTF(names[i].c_str()));
    return out;
}

JNIEXPORT jlong JNICALL Java_io_github_jconv_cuda_EmuNative_scheduleSeed(JNIEnv*, jclass) {
    return static_cast<jlong>(schedule_seed());
}
}
