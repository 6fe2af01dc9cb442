package io.github.jconv.cuda;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Where device buffers come from: one caller's {@link DeviceStream} plus a count of live bytes and buffers;
 * {@link #close()} fails on a leak (after freeing what was left, so the device does not keep it). Like
 * Arrow's allocators. Buffers are allocated, filled and freed in the stream's order.
 */
public final class DeviceArena implements AutoCloseable {
    private final DeviceStream stream;
    private final boolean ownsStream;
    private final AtomicLong liveBytes = new AtomicLong();
    private final AtomicLong liveBuffers = new AtomicLong();
    private final Set<DeviceBuffer> open = ConcurrentHashMap.newKeySet();

    /** An arena on a stream of its own, closed with the arena. */
    public DeviceArena(DeviceApi device) {
        this(device.openStream(), true);
    }

    /** An arena on {@code stream}, which the caller closes after the arena. */
    public DeviceArena(DeviceStream stream) {
        this(stream, false);
    }

    /** An arena on {@code stream}, which it closes with itself (for a caller's CUDA stream: that releases jconv's staging only). */
    public static DeviceArena owning(DeviceStream stream) {
        return new DeviceArena(stream, true);
    }

    private DeviceArena(DeviceStream stream, boolean ownsStream) {
        this.stream = stream;
        this.ownsStream = ownsStream;
    }

    /** A new arena on a stream of its own on the same device (closed with it); its buffers and this one's share the device. */
    public DeviceArena sibling() {
        return new DeviceArena(stream.device());
    }

    public DeviceStream stream() {
        return stream;
    }

    /** A buffer of {@code floats} floats, contents undefined. */
    public DeviceBuffer allocate(long floats) {
        long bytes = 4L * floats;
        DeviceBuffer b = new DeviceBuffer(this, stream.allocate(bytes), floats);
        liveBytes.addAndGet(bytes);
        liveBuffers.incrementAndGet();
        open.add(b);
        return b;
    }

    /** A buffer holding a copy of {@code data} (copied to staging now, so {@code data} may change afterwards). */
    public DeviceBuffer upload(float[] data) {
        DeviceBuffer b = allocate(data.length);
        try {
            stream.copyToDevice(b.handle(), 0, data, 0, data.length);
        } catch (RuntimeException e) {
            b.close();
            throw e;
        }
        return b;
    }

    void released(DeviceBuffer b) {
        if (open.remove(b)) {
            stream.free(b.handle());
            liveBytes.addAndGet(-4L * b.floats());
            liveBuffers.decrementAndGet();
        }
    }

    public long liveBytes() {
        return liveBytes.get();
    }

    /** Frees anything still open and throws if there was any: a leak. Closes the stream if the arena opened it. */
    @Override
    public void close() {
        long bytes = liveBytes.get(), buffers = liveBuffers.get();
        try {
            if (buffers != 0) {
                for (DeviceBuffer b : open) {
                    released(b);
                }
                throw new DeviceException("device memory leak: " + buffers + " buffer(s), " + bytes
                        + " bytes still open when the arena closed");
            }
        } finally {
            if (ownsStream) {
                stream.close();
            }
        }
    }
}
