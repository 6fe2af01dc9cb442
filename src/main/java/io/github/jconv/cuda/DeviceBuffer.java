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

    /** Copies the whole buffer into {@code dst} (which must hold {@link #floats()} floats). */
    public void download(float[] dst) {
        arena.device().copyToHost(dst, 0, handle, 0, Math.toIntExact(floats));
    }

    @Override
    public void close() {
        arena.released(this);
    }
}
