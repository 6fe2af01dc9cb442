package io.github.jconv.cuda;

/**
 * The one narrow interface between jconv's CUDA backend and a device: allocate, free, copy, launch a kernel
 * by name with cuLaunchKernel-style arguments. Two implementations: {@link JCudaDevice} (a real GPU through
 * the JCuda driver API) and {@link EmuDevice} (the same kernel sources compiled for the CPU).
 * Addresses are opaque {@code long} handles; {@code offset} arguments are in bytes.
 */
public interface DeviceApi {
    /** Human-readable description (device name, memory, which library). */
    String describe();

    long allocate(long bytes);

    void free(long handle);

    /** Copies {@code count} floats from src[srcOffset ..] to the device at handle + byteOffset. */
    void copyToDevice(long handle, long byteOffset, float[] src, int srcOffset, int count);

    /** Copies {@code count} floats from the device at handle + byteOffset to dst[dstOffset ..]. */
    void copyToHost(float[] dst, int dstOffset, long handle, long byteOffset, int count);

    /**
     * Launches kernel {@code name} on grid x block threads and waits for it. Its first parameter is a struct of
     * ints ({@code params}, in field order); the others are device pointers {@code handles[i] + offsets[i]}.
     */
    void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets);
}
