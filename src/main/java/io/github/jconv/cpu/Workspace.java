package io.github.jconv.cpu;

/**
 * Thread-confined scratch buffers, reused across calls so the hot paths allocate nothing. Each purpose
 * has its own slot, so a buffer held by an outer loop is never handed to a nested one on the same thread.
 * Buffers above {@link #CACHE_LIMIT} floats are not kept.
 */
final class Workspace {
    static final int COL = 0;
    static final int PACK = 1;
    static final int MATRIX = 2;
    static final int PACK_B = 3;
    static final int WEIGHTS = 4;
    static final int ROW = 5;
    static final int SCRATCH = 6;

    /** 16 Mi floats (64 MiB) per slot and thread at most stay cached. */
    static final int CACHE_LIMIT = 1 << 24;

    private static final ThreadLocal<float[][]> BUFFERS = ThreadLocal.withInitial(() -> new float[7][]);

    private Workspace() {
    }

    /** A buffer of at least {@code size} floats; its contents are unspecified. */
    static float[] get(int slot, long size) {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("workspace of " + size + " floats is more than a Java array holds");
        }
        if (size > CACHE_LIMIT) {
            return new float[(int) size];
        }
        float[][] buffers = BUFFERS.get();
        float[] b = buffers[slot];
        if (b == null || b.length < size) {
            b = new float[(int) Math.max(size, b == null ? 0 : Math.min(CACHE_LIMIT, b.length * 2L))];
            buffers[slot] = b;
        }
        return b;
    }
}
