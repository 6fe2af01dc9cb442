package io.github.jconv;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * The CPU device's cache of freed tensor arrays, as a GPU caching allocator keeps freed blocks: a closed tensor's array
 * goes here and the next tensor of the same size takes it instead of a new {@code float[]}. A loop that allocates its
 * output and closes it every call (a network trunk's result, {@code run(input)} in a service) otherwise asks the heap for
 * fresh memory each time: the JVM grows its heap into memory it has not touched, and each first touch is a page fault
 * (on the 2-vCPU test VM a 400 KB tensor took 19-990 us to allocate, 13-36 us with the heap pre-touched).
 *
 * <p>At most {@link #limitBytes} are kept (system property {@code jconv.cpu.tensorCacheBytes}; 0 turns the cache off;
 * by default 1/8 of the JVM's maximum heap, at most 256 MiB): an array that would go past it is left to the garbage
 * collector. The contents of a reused array are whatever its last tensor held: {@link Device#allocate} promises no
 * values. Thread-safe; emptied when the device closes.
 */
final class HostArrays {
    private final long limitBytes;
    private final Map<Integer, ArrayDeque<float[]>> free = new HashMap<>();
    private long bytes;

    HostArrays(long limitBytes) {
        this.limitBytes = limitBytes;
    }

    /** The default cache size: the system property {@code jconv.cpu.tensorCacheBytes}, else min(256 MiB, max heap / 8). */
    static long defaultLimit() {
        String p = System.getProperty("jconv.cpu.tensorCacheBytes");
        if (p != null) {
            try {
                return Math.max(0, Long.parseLong(p.trim()));
            } catch (NumberFormatException e) {
                throw new InvalidConvolutionException("system property jconv.cpu.tensorCacheBytes: expected a number of bytes, got '" + p + "'");
            }
        }
        return Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 8);
    }

    /** An array of {@code size} floats: a cached one if there is one, else a new one. */
    synchronized float[] take(int size) {
        ArrayDeque<float[]> q = free.get(size);
        float[] a = q == null ? null : q.pollLast();
        if (a == null) {
            return new float[size];
        }
        bytes -= 4L * size;
        return a;
    }

    /** Keeps {@code a} for a later {@link #take} if the cache has room; the caller no longer uses it. */
    synchronized void give(float[] a) {
        if (bytes + 4L * a.length > limitBytes) {
            return;
        }
        free.computeIfAbsent(a.length, k -> new ArrayDeque<>()).addLast(a);
        bytes += 4L * a.length;
    }

    /** Bytes held now. */
    synchronized long bytes() {
        return bytes;
    }

    synchronized void clear() {
        free.clear();
        bytes = 0;
    }
}
