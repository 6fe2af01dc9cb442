package io.github.jconv.cpu;

import io.github.jconv.InvalidConvolutionException;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.RecursiveAction;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * Parallel loops over an index range on a fork-join pool of a fixed size. With one thread the loop runs inline
 * in the caller.
 *
 * <p>Pools: one per thread count in use (daemon threads named {@code jconv-cpu-T-i}), shared by every caller
 * asking for that count. A pool that has run nothing for {@link #idleMillis()} ({@code -Djconv.pool.idleMillis},
 * default 30 s) is shut down and its threads exit; the next call with that count makes a new one. Thread counts
 * are at most {@link #maxThreads()}, so a service calling with many different counts holds at most that many
 * pools, and only while it uses them.
 */
public final class Parallel {
    /** Runs everything in the calling thread. */
    public static final Parallel SERIAL = new Parallel(1);

    private static final Map<Integer, Pool> POOLS = new ConcurrentHashMap<>();
    private static volatile ScheduledExecutorService reaper;

    private final int threads;

    private Parallel(int threads) {
        this.threads = threads;
    }

    /** The largest thread count: 8 per core, at least 64 (more workers than that only compete for the cores). */
    public static int maxThreads() {
        return Math.max(64, 8 * Runtime.getRuntime().availableProcessors());
    }

    /** How long an unused pool lives. */
    static long idleMillis() {
        return Long.getLong("jconv.pool.idleMillis", 30_000L);
    }

    /** Checks a thread count as the API takes it: 0 (all cores) to {@link #maxThreads()}. */
    public static void requireValidThreads(int threads) {
        if (threads < 0 || threads > maxThreads()) {
            throw new InvalidConvolutionException("threads must be between 0 (all cores) and " + maxThreads() + " (8 per core, at least 64), got "
                    + threads);
        }
    }

    /** {@code threads} workers; 0 means one per available core. */
    public static Parallel of(int threads) {
        requireValidThreads(threads);
        int t = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        return t == 1 ? SERIAL : new Parallel(t);
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
        Pool inUse = POOLS.get(threads);
        if (inUse != null && ForkJoinTask.inForkJoinPool() && ForkJoinTask.getPool() == inUse.fjp) {
            task.invoke(); // nested in a loop of the same pool, which the outer call holds
            return;
        }
        Pool pool = acquire(threads);
        try {
            pool.fjp.invoke(task);
        } finally {
            pool.release();
        }
    }

    /** The pool for {@code threads}, marked in use (a pool being shut down as idle is replaced). */
    private static Pool acquire(int threads) {
        while (true) {
            Pool p = POOLS.computeIfAbsent(threads, Pool::new);
            if (p.tryAcquire()) {
                return p;
            }
            POOLS.remove(threads, p);
        }
    }

    /** Shuts down every pool unused for at least {@code idleMillis} (the reaper's job; tests call it). */
    static void releaseIdlePools(long idleMillis) {
        long now = System.nanoTime();
        for (Pool p : POOLS.values()) {
            if (now - p.lastUsed >= TimeUnit.MILLISECONDS.toNanos(idleMillis) && p.tryClose()) {
                POOLS.remove(p.threads, p);
                p.fjp.shutdown();
            }
        }
    }

    /** Pools alive now (tests). */
    static int livePools() {
        return POOLS.size();
    }

    private static void startReaper() {
        if (reaper == null) {
            synchronized (Parallel.class) {
                if (reaper == null) {
                    ScheduledThreadPoolExecutor r = new ScheduledThreadPoolExecutor(1, job -> {
                        Thread t = new Thread(job, "jconv-cpu-pool-reaper");
                        t.setDaemon(true);
                        return t;
                    });
                    long period = Math.max(100, idleMillis() / 2);
                    r.scheduleWithFixedDelay(() -> releaseIdlePools(idleMillis()), period, period, TimeUnit.MILLISECONDS);
                    reaper = r;
                }
            }
        }
    }

    /** A fork-join pool with a use count; -1 once it is closed. */
    private static final class Pool {
        final int threads;
        final ForkJoinPool fjp;
        final AtomicInteger users = new AtomicInteger();
        volatile long lastUsed = System.nanoTime();

        Pool(int threads) {
            this.threads = threads;
            AtomicInteger ids = new AtomicInteger();
            this.fjp = new ForkJoinPool(threads, pool -> {
                ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
                t.setName("jconv-cpu-" + threads + "-" + ids.getAndIncrement());
                t.setDaemon(true);
                return t;
            }, null, false);
            startReaper();
        }

        boolean tryAcquire() {
            for (int u = users.get(); u >= 0; u = users.get()) {
                if (users.compareAndSet(u, u + 1)) {
                    return true;
                }
            }
            return false;
        }

        void release() {
            lastUsed = System.nanoTime();
            users.decrementAndGet();
        }

        boolean tryClose() {
            return users.compareAndSet(0, -1);
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
