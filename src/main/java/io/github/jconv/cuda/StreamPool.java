package io.github.jconv.cuda;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A device's idle streams, kept for reuse with their staging buffers (pinned memory and a CUstream are slow to
 * make). At most {@link #MAX_IDLE} are kept, so a burst of many concurrent callers does not leave that many
 * pinned buffers (up to 64 MiB each) behind: a stream given back beyond that is destroyed.
 */
final class StreamPool<S extends DeviceStream> {
    /** Idle streams kept: one per core, at least 4. */
    static final int MAX_IDLE = Math.max(4, Runtime.getRuntime().availableProcessors());

    private final ConcurrentLinkedQueue<S> idle = new ConcurrentLinkedQueue<>();
    private final AtomicInteger size = new AtomicInteger();

    /** An idle stream, or a new one from {@code make}. */
    S take(Supplier<S> make) {
        S s = idle.poll();
        if (s == null) {
            return make.get();
        }
        size.decrementAndGet();
        return s;
    }

    /** Keeps {@code s} for reuse, or destroys it when enough are idle. */
    void give(S s) {
        if (size.incrementAndGet() <= MAX_IDLE) {
            idle.add(s);
        } else {
            size.decrementAndGet();
            s.destroy();
        }
    }

    /** Idle streams now (for tests). */
    int idle() {
        return size.get();
    }
}
