package io.github.jconv.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * One caller's queue of device work (a CUDA stream): allocations, copies, launches and frees run in the order
 * they were queued, asynchronously to the calling thread, and concurrently with other streams. Copies go
 * through a page-locked (pinned) host staging buffer owned by the stream, so an asynchronous copy never
 * reads or writes a Java array that the garbage collector may move:
 * <ul>
 *   <li>{@link #copyToDevice} copies the floats into staging before it returns (the array may be reused at
 *       once), then queues staging → device;</li>
 *   <li>{@link #copyToHost} queues device → staging; the array is filled by {@link #synchronize()}.</li>
 * </ul>
 * Copies larger than the staging buffer go in chunks; when staging is full the stream waits for its queue
 * (that is the only wait besides {@link #synchronize()}). The staging buffer grows up to {@link #maxStagingBytes}.
 * A stream is for one thread at a time; devices keep closed streams for reuse, staging included
 * ({@link StreamPool}).
 * Errors of queued work (a faulting kernel) are thrown by the next {@link #synchronize()}.
 */
public abstract class DeviceStream implements AutoCloseable {
    /** Default cap of a stream's staging buffer: 64 MiB of pinned memory. */
    static final long DEFAULT_MAX_STAGING = 64L << 20;
    private static final long MIN_STAGING = 1L << 20;

    private final long maxStagingBytes;
    private long stagingBytes;
    private long stagingUsed;
    private final List<Runnable> pendingUnstage = new ArrayList<>();

    protected DeviceStream(long maxStagingBytes) {
        this.maxStagingBytes = Math.max(64, maxStagingBytes);
    }

    /** Device memory, ready for work queued after this call (stream-ordered where the device can). */
    abstract long allocate(long bytes);

    /** Frees {@code handle} once the work queued before this call is done. */
    abstract void free(long handle);

    /**
     * Queues kernel {@code name} on grid x block threads. Its first parameter is a struct of ints
     * ({@code params}, in field order); the others are device pointers {@code handles[i] + offsets[i]}.
     */
    abstract void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets);

    /** What runs this stream's work. */
    abstract DeviceApi device();

    /** Allocates a staging buffer of {@code bytes} bytes (there is none; the queue is idle). */
    protected abstract void allocateStaging(long bytes);

    /** Frees the staging buffer (there is one; the queue is idle). */
    protected abstract void freeStaging();

    /** Host floats into staging at {@code stagingOffset} (bytes), now. */
    protected abstract void stage(long stagingOffset, float[] src, int srcOffset, int count);

    /** Staging at {@code stagingOffset} into host floats, now (the queue is idle). */
    protected abstract void unstage(float[] dst, int dstOffset, long stagingOffset, int count);

    /** Host 16-bit elements into staging at {@code stagingOffset} (bytes), now. */
    protected abstract void stage(long stagingOffset, short[] src, int srcOffset, int count);

    /** Staging at {@code stagingOffset} into host 16-bit elements, now (the queue is idle). */
    protected abstract void unstage(short[] dst, int dstOffset, long stagingOffset, int count);

    /** Queues a copy of {@code bytes} bytes from staging to the device. */
    protected abstract void queueToDevice(long handle, long byteOffset, long stagingOffset, long bytes);

    /** Queues a copy of {@code bytes} bytes from the device to staging. */
    protected abstract void queueToHost(long stagingOffset, long handle, long byteOffset, long bytes);

    /** Waits until everything queued is done; throws the first error of queued work. */
    protected abstract void waitIdle();

    /** Queues a timestamp in the stream's order (a CUDA event on a GPU; the host clock when the emulator gets to it). */
    public abstract long recordEvent();

    /** Milliseconds between two recorded events, after waiting for the later one; both are released. */
    public abstract double elapsedMs(long start, long end);

    /** Gives the stream back to its device, which keeps it for reuse or {@link #destroy()}s it. */
    protected abstract void release();

    /** Destroys the queue itself (the CUstream, the worker thread). */
    protected abstract void destroyQueue();

    /** Frees the staging buffer and the stream itself: an idle stream its device does not keep. */
    final void destroy() {
        if (stagingBytes > 0) {
            freeStaging();
            stagingBytes = 0;
        }
        destroyQueue();
    }

    /** Copies {@code count} floats from src[srcOffset ..] to the device at handle + byteOffset; src may be reused on return. */
    public final void copyToDevice(long handle, long byteOffset, float[] src, int srcOffset, int count) {
        toDevice(handle, byteOffset, count, 4, (at, done, chunk) -> stage(at, src, srcOffset + done, chunk));
    }

    /** As {@link #copyToDevice(long, long, float[], int, int)} for 16-bit elements (half-precision storage). */
    public final void copyToDevice(long handle, long byteOffset, short[] src, int srcOffset, int count) {
        toDevice(handle, byteOffset, count, 2, (at, done, chunk) -> stage(at, src, srcOffset + done, chunk));
    }

    /** Queues a copy of {@code count} floats from the device at handle + byteOffset to dst[dstOffset ..]; filled by {@link #synchronize()}. */
    public final void copyToHost(float[] dst, int dstOffset, long handle, long byteOffset, int count) {
        toHost(handle, byteOffset, count, 4, (at, done, chunk) -> unstage(dst, dstOffset + done, at, chunk));
    }

    /** As {@link #copyToHost(float[], int, long, long, int)} for 16-bit elements. */
    public final void copyToHost(short[] dst, int dstOffset, long handle, long byteOffset, int count) {
        toHost(handle, byteOffset, count, 2, (at, done, chunk) -> unstage(dst, dstOffset + done, at, chunk));
    }

    /** One chunk's host side: {@code chunk} elements from element {@code done} of the copy, at staging offset {@code at}. */
    private interface HostSide {
        void copy(long at, int done, int chunk);
    }

    /** A copy to the device in chunks that fit the staging buffer, each staged by {@code stager} and queued. */
    private void toDevice(long handle, long byteOffset, int count, int itemBytes, HostSide stager) {
        int done = 0;
        while (done < count) {
            int chunk = chunk(count - done, itemBytes);
            long at = reserve((long) itemBytes * chunk);
            stager.copy(at, done, chunk);
            queueToDevice(handle, byteOffset + (long) itemBytes * done, at, (long) itemBytes * chunk);
            done += chunk;
        }
    }

    /** A copy to the host in chunks, each queued now and unstaged by {@code unstager} at the next synchronize. */
    private void toHost(long handle, long byteOffset, int count, int itemBytes, HostSide unstager) {
        int done = 0;
        while (done < count) {
            int chunk = chunk(count - done, itemBytes);
            long at = reserve((long) itemBytes * chunk);
            queueToHost(at, handle, byteOffset + (long) itemBytes * done, (long) itemBytes * chunk);
            int from = done;
            pendingUnstage.add(() -> unstager.copy(at, from, chunk));
            done += chunk;
        }
    }

    /** Waits for all queued work, then fills the arrays of earlier {@link #copyToHost} calls. */
    public final void synchronize() {
        try {
            waitIdle();
            for (Runnable r : pendingUnstage) {
                r.run();
            }
        } finally {
            pendingUnstage.clear();
            stagingUsed = 0;
        }
    }

    /** Waits for the queue and hands the stream back to its device; throws an error of queued work not yet thrown. */
    @Override
    public final void close() {
        try {
            synchronize();
        } finally {
            release();
        }
    }

    private int chunk(int remaining, int itemBytes) {
        return (int) Math.min(remaining, maxStagingBytes / itemBytes);
    }

    /** Room for {@code bytes} in staging: waits for the queue when staging is full, grows it when too small. */
    private long reserve(long bytes) {
        if (stagingUsed + bytes > stagingBytes) {
            long want = Math.min(maxStagingBytes, Math.max(Math.max(MIN_STAGING, 2 * stagingBytes), stagingUsed + bytes));
            if (stagingUsed > 0) {
                synchronize(); // the queued copies still use the staging buffer
            }
            if (want > stagingBytes) {
                if (stagingBytes > 0) {
                    freeStaging();
                    stagingBytes = 0;
                }
                allocateStaging(want);
                stagingBytes = want;
            }
        }
        long at = stagingUsed;
        stagingUsed += (bytes + 255) & ~255L; // keep every chunk 256-byte aligned, as DMA likes it
        return at;
    }
}
