package io.github.jconv.cuda;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Where device buffers come from: it counts live bytes and buffers, and {@link #close()} fails on a leak
 * (after freeing what was left, so the device does not keep it). Like Arrow's allocators.
 */
public final class DeviceArena implements AutoCloseable {
    private final DeviceApi device;
    private final AtomicLong liveBytes = new AtomicLong();
    private final AtomicLong liveBuffers = new AtomicLong();
    private final java.util.Set<DeviceBuffer> open = java.util.concurrent.ConcurrentHashMap.newKeySet();

    public DeviceArena(DeviceApi device) {
        this.device = device;
    }

    public DeviceApi device() {
        return device;
    }

    /** A buffer of {@code floats} floats, contents undefined. */
    public DeviceBuffer allocate(long floats) {
        long bytes = 4L * floats;
        DeviceBuffer b = new DeviceBuffer(this, device.allocate(bytes), floats);
        liveBytes.addAndGet(bytes);
        liveBuffers.incrementAndGet();
        open.add(b);
        return b;
    }

    /** A buffer holding a copy of {@code data}. */
    public DeviceBuffer upload(float[] data) {
        DeviceBuffer b = allocate(data.length);
        try {
            device.copyToDevice(b.handle(), 0, data, 0, data.length);
        } catch (RuntimeException e) {
            b.close();
            throw e;
        }
        return b;
    }

    void released(DeviceBuffer b) {
        if (open.remove(b)) {
            device.free(b.handle());
            liveBytes.addAndGet(-4L * b.floats());
            liveBuffers.decrementAndGet();
        }
    }

    public long liveBytes() {
        return liveBytes.get();
    }

    /** Frees anything still open and throws if there was any: a leak. */
    @Override
    public void close() {
        long bytes = liveBytes.get(), buffers = liveBuffers.get();
        if (buffers == 0) {
            return;
        }
        for (DeviceBuffer b : open) {
            released(b);
        }
        throw new DeviceException("device memory leak: " + buffers + " buffer(s), " + bytes + " bytes still open when the arena closed");
    }
}
