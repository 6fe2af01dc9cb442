package io.github.jconv.cuda;

/**
 * jconv's CUDA kernels compiled for the CPU (scripts/build-emu.sh): the blocks of a launch run one after
 * another, the threads of a block as cooperative fibers with real __syncthreads() barriers. Every
 * allocation has guard zones that are checked after each launch, so a kernel writing out of bounds fails
 * with its name. Slow by design; it exists so every kernel runs in CI without a GPU.
 */
public final class EmuDevice implements DeviceApi {
    public static final EmuDevice INSTANCE = new EmuDevice();

    private EmuDevice() {
    }

    /** Null when the emulation library is loaded, otherwise why not. */
    public static String unavailableReason() {
        return EmuNative.loadError();
    }

    @Override
    public String describe() {
        return "CPU emulation of jconv's CUDA kernels (" + EmuNative.kernels().length + " kernels, guard-checked memory)";
    }

    @Override
    public long allocate(long bytes) {
        return EmuNative.alloc(Math.max(bytes, 1));
    }

    @Override
    public void free(long handle) {
        EmuNative.free(handle);
    }

    @Override
    public void copyToDevice(long handle, long byteOffset, float[] src, int srcOffset, int count) {
        EmuNative.copyToDevice(handle + byteOffset, src, srcOffset, count);
    }

    @Override
    public void copyToHost(float[] dst, int dstOffset, long handle, long byteOffset, int count) {
        EmuNative.copyToHost(dst, dstOffset, handle + byteOffset, count);
    }

    @Override
    public void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets) {
        long[] pointers = new long[handles.length];
        for (int i = 0; i < handles.length; i++) {
            pointers[i] = handles[i] + offsets[i];
        }
        EmuNative.launch(name, grid, block, params, pointers);
    }
}
