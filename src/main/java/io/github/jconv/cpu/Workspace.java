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
    /** Only {@link VectorDirect#padOnce}'s: what it holds is known by the call that filled it. */
    static final int PADDED = 7;
    /** {@link ExpandDepthwise}'s planes of one channel tile, read by the depthwise kernel (which holds {@link #COL}). */
    static final int FUSED = 8;
    private static final int SLOTS = 9;

    /** 16 Mi floats (64 MiB) per slot and thread at most stay cached. */
    static final int CACHE_LIMIT = 1 << 24;

    /**
     * Per thread: a set of buffers for its own calls, and one more for each loop whose tasks it runs as the loop's caller
     * ({@link Parallel}'s crew), so a buffer it holds around a loop is never handed to one of that loop's tasks.
     */
    private static final ThreadLocal<Sets> BUFFERS = ThreadLocal.withInitial(Sets::new);

    private static final class Sets {
        float[][][] byDepth = {new float[SLOTS][]};
        int depth;
        /** Bytes of the buffers above {@link #CACHE_LIMIT} this thread has allocated (each call allocates them again). */
        long uncachedBytes;
    }

    /** Bytes this thread has allocated for buffers above {@link #CACHE_LIMIT}, which are allocated on every call. */
    static long uncachedBytes() {
        return BUFFERS.get().uncachedBytes;
    }

    private Workspace() {
    }

    /** A buffer of at least {@code size} floats; its contents are unspecified. */
    static float[] get(int slot, long size) {
        if (size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("workspace of " + size + " floats is more than a Java array holds");
        }
        Sets sets = BUFFERS.get();
        if (size > CACHE_LIMIT) {
            sets.uncachedBytes += 4 * size;
            return new float[(int) size];
        }
        float[][] buffers = sets.byDepth[sets.depth];
        float[] b = buffers[slot];
        if (b == null || b.length < size) {
            b = new float[(int) Math.max(size, b == null ? 0 : Math.min(CACHE_LIMIT, b.length * 2L))];
            buffers[slot] = b;
        }
        return b;
    }

    /** The calling thread starts running a loop's tasks itself: {@link #get} hands out the next set until {@link #exitTask}. */
    static void enterTask() {
        Sets sets = BUFFERS.get();
        if (++sets.depth == sets.byDepth.length) {
            sets.byDepth = java.util.Arrays.copyOf(sets.byDepth, sets.depth + 1);
            sets.byDepth[sets.depth] = new float[SLOTS][];
        }
    }

    static void exitTask() {
        BUFFERS.get().depth--;
    }
}
