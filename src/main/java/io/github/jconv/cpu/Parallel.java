package io.github.jconv.cpu;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * Parallel loops over an index range on a fork-join pool of a fixed size (one shared pool per thread
 * count, daemon threads). With one thread the loop runs inline in the caller.
 */
public final class Parallel {
    /** Runs everything in the calling thread. */
    public static final Parallel SERIAL = new Parallel(1, null);

    private static final ConcurrentHashMap<Integer, ForkJoinPool> POOLS = new ConcurrentHashMap<>();

    private final int threads;
    private final ForkJoinPool pool;

    private Parallel(int threads, ForkJoinPool pool) {
        this.threads = threads;
        this.pool = pool;
    }

    /** {@code threads} workers; 0 means one per available core. */
    public static Parallel of(int threads) {
        int t = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        if (t < 0) {
            throw new IllegalArgumentException("threads must be >= 0, got " + threads);
        }
        if (t == 1) {
            return SERIAL;
        }
        return new Parallel(t, POOLS.computeIfAbsent(t, ForkJoinPool::new));
    }

    public int threads() {
        return threads;
    }

    /** Calls {@code body} for every index in [0, count), in parallel; returns when all are done. */
    public void forEach(int count, IntConsumer body) {
        if (threads == 1 || count <= 1) {
            for (int i = 0; i < count; i++) {
                body.accept(i);
            }
            return;
        }
        int grain = Math.max(1, count / (threads * 4));
        Range task = new Range(0, count, grain, body);
        if (ForkJoinTask.inForkJoinPool() && ForkJoinTask.getPool() == pool) {
            task.invoke();
        } else {
            pool.invoke(task);
        }
    }

    private static final class Range extends RecursiveAction {
        private static final long serialVersionUID = 1L;
        private final int lo, hi, grain;
        private final transient IntConsumer body;

        Range(int lo, int hi, int grain, IntConsumer body) {
            this.lo = lo;
            this.hi = hi;
            this.grain = grain;
            this.body = body;
        }

        @Override
        protected void compute() {
            if (hi - lo <= grain) {
                for (int i = lo; i < hi; i++) {
                    body.accept(i);
                }
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Range(lo, mid, grain, body), new Range(mid, hi, grain, body));
        }
    }
}
