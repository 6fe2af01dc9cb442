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

    @Override
    public void close() {
        arena.released(this);
    }
}
