package io.github.jconv.cuda;

/** Device memory of {@link #floats()} floats from a {@link DeviceArena}; close it to free it. */
public final class DeviceBuffer implements AutoCloseable {
    private final DeviceArena arena;
    private final long handle;
    private final long floats;

    DeviceBuffer(DeviceArena arena, long handle, long floats) {
        this.arena = arena;
        this.handle = handle;
        this.floats = floats;
    }

    long handle() {
        return handle;
    }

    public long floats() {
        return floats;
    }

    /**
     * Copies the whole buffer into {@code dst} (which must hold {@link #floats()} floats) after the work queued
     * before it: it waits for the stream, and throws the error of any queued work that failed.
     */
    public void download(float[] dst) {
        arena.stream().copyToHost(dst, 0, handle, 0, Math.toIntExact(floats));
        arena.stream().synchronize();
    }

    /** Queues a copy of {@code src} (which must hold {@link #floats()} floats) into the buffer; src may change afterwards. */
    public void upload(float[] src) {
        if (src.length != floats) {
            throw new IllegalArgumentException("upload of " + src.length + " floats into a buffer of " + floats);
        }
        arena.stream().copyToDevice(handle, 0, src, 0, src.length);
    }

    /**
     * As {@link #download(float[])} for a buffer of 16-bit elements (half-precision storage, two to a float): the first
     * {@code dst.length} of them, at most 2 x {@link #floats()}.
     */
    public void downloadHalves(short[] dst) {
        requireHalves(dst.length);
        arena.stream().copyToHost(dst, 0, handle, 0, dst.length);
        arena.stream().synchronize();
    }

    /** As {@link #upload(float[])} for 16-bit elements: {@code src} into the buffer's first {@code src.length} of them. */
    public void uploadHalves(short[] src) {
        requireHalves(src.length);
        arena.stream().copyToDevice(handle, 0, src, 0, src.length);
    }

    private void requireHalves(int count) {
        if (count > 2 * floats) {
            throw new IllegalArgumentException("copy of " + count + " 16-bit elements with a buffer of " + floats + " floats");
        }
    }

    @Override
    public void close() {
        arena.released(this);
    }
}
