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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Parallel loops over an index range on a pool of a fixed size. With one thread the loop runs inline
 * in the caller.
 *
 * <p>A loop runs on its pool's crew when the crew is free: the calling thread and T - 1 helper threads claim chunks of
 * indices, each first from its own share of the range (the caller the first T-th, helper i the (i+1)-th), then from the
 * others' (see {@link Loop#work(int)}), and between loops the helpers spin for {@link #SPIN_NANOS} ({@code
 * -Djconv.pool.spinMicros}, default 50) before they park, or for as long as a {@link #hold} is open. A fork-join pool took 23-30 us per loop on a 2-vCPU VM even
 * back to back (two thread wake-ups: a worker's, then the blocked caller's), and a ResNet-50 trunk runs 130 loops at
 * batch 1. A second caller that finds the crew busy runs on the fork-join pool, as before. The caller's share of a loop
 * runs on its own set of {@link Workspace} buffers, so a buffer the caller holds around the loop is never handed to a
 * task.
 *
 * <p>Pools: one per thread count in use (daemon threads named {@code jconv-cpu-T-i} and {@code jconv-cpu-T-hi}), shared
 * by every caller asking for that count. A pool that has run nothing for {@link #idleMillis()} ({@code -Djconv.pool.idleMillis},
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

    /** How long a crew's helpers and a waiting caller spin before they park (read once: it is used around every loop). */
    private static final long SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(Long.getLong("jconv.pool.spinMicros", 50L));

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
        boolean serial = threads == 1 || count <= 1;
        Pool inUse = serial ? null : POOLS.get(threads);
        if (serial || (inUse != null && Crew.RUNNING.get() == inUse.crew)) { // or nested in a loop of the same crew
            for (int i = 0; i < count; i++) {
                body.accept(i);
            }
            return;
        }
        int grain = Math.max(1, count / (threads * 4));
        if (inUse != null && ForkJoinTask.inForkJoinPool() && ForkJoinTask.getPool() == inUse.fjp) {
            new Range(0, count, grain, body).invoke(); // nested in a loop of the same pool, which the outer call holds
            return;
        }
        Pool pool = acquire(threads);
        try {
            if (pool.crew.tryEnter()) {
                pool.crew.run(count, grain, body);
            } else {
                pool.fjp.invoke(new Range(0, count, grain, body));
            }
        } finally {
            pool.release();
        }
    }

    /**
     * Keeps this pool's helpers spinning between loops until the returned hold is closed, instead of parking after {@link
     * #SPIN_NANOS}: for a caller about to run many loops with serial work between them (a network's layers). A parked helper
     * has to be woken for the next loop, and on a shared VM a vCPU left idle can take milliseconds to get its core back:
     * ResNet-50's trunk at batch 1 after 1 s idle, 2 threads, AMD EPYC Zen 4 2-vCPU VM, medians of 21 runs alternating held
     * and unheld in one process, 62.9 ms unheld against 51.2 held (after 30 ms idle 57.5 / 56.8, back to back 42.5 / 42.7). A hold costs one
     * core's spinning for as long as it is held (the caller is running loops meanwhile); nested and concurrent holds count.
     */
    public Held hold() {
        if (threads == 1) {
            return Held.NONE;
        }
        Pool pool = acquire(threads);
        pool.crew.holders.incrementAndGet();
        return new Held(pool);
    }

    /** A {@link #hold}: closing it (once; again does nothing) lets the helpers park again. */
    public static final class Held implements AutoCloseable {
        static final Held NONE = new Held(null);
        private Pool pool;

        private Held(Pool pool) {
            this.pool = pool;
        }

        @Override
        public void close() {
            Pool p = pool;
            if (p != null) {
                pool = null;
                p.crew.holders.decrementAndGet();
                p.release();
            }
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
                p.crew.close();
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
        final Crew crew;
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
            this.crew = new Crew(threads);
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

    /** The caller and threads - 1 helpers running one loop at a time (see the class comment). */
    private static final class Crew {
        /** The crew whose loop this thread is running a share of (a nested loop on the same crew runs inline). */
        static final ThreadLocal<Crew> RUNNING = new ThreadLocal<>();
        private final AtomicBoolean busy = new AtomicBoolean();
        /** Open {@link Parallel#hold}s: while there are any the helpers spin between loops and do not park. */
        final AtomicInteger holders = new AtomicInteger();
        private final Helper[] helpers;
        /** The loop being run, published before {@link #generation} moves on; null between loops (holds no body). */
        private volatile Loop loop;
        private volatile long generation;
        private volatile boolean closed;

        Crew(int threads) {
            helpers = new Helper[threads - 1];
            for (int i = 0; i < helpers.length; i++) {
                helpers[i] = new Helper(this, "jconv-cpu-" + threads + "-h" + (i + 1), i + 1);
                helpers[i].start();
            }
        }

        boolean tryEnter() {
            return busy.compareAndSet(false, true);
        }

        /** Runs body over [0, count) with the helpers; returns when every index is done; the crew is free again. */
        void run(int count, int grain, IntConsumer body) {
            Loop l = new Loop(count, grain, body, Thread.currentThread(), helpers.length + 1);
            try {
                loop = l;
                generation++;
                for (Helper h : helpers) {
                    if (h.parked) {
                        LockSupport.unpark(h);
                    }
                }
                RUNNING.set(this);
                Workspace.enterTask();
                try {
                    l.work(0);
                } finally {
                    Workspace.exitTask();
                    RUNNING.remove();
                }
                l.await();
            } finally {
                loop = null;
                busy.set(false);
            }
            l.rethrow();
        }

        void close() {
            closed = true;
            for (Helper h : helpers) {
                LockSupport.unpark(h);
            }
        }
    }

    /** One loop's shared state: the next chunk to claim in each share, the indices done, the first error. */
    private static final class Loop {
        private final int count, grain, parts;
        private final IntConsumer body;
        private final Thread caller;
        private final AtomicInteger done = new AtomicInteger();
        /** Share j, [count * j / parts, count * (j + 1) / parts): its next index to claim. */
        private final AtomicInteger[] cursors;
        private volatile Throwable error;

        Loop(int count, int grain, IntConsumer body, Thread caller, int parts) {
            this.count = count;
            this.grain = grain;
            this.body = body;
            this.caller = caller;
            this.parts = parts;
            cursors = new AtomicInteger[parts];
            for (int j = 0; j < parts; j++) {
                cursors[j] = new AtomicInteger((int) ((long) count * j / parts));
            }
        }

        /**
         * Participant {@code who} (0: the caller) runs its own share's chunks, then claims what is left of the others'.
         * A thread so takes the same indices loop after loop wherever it is not held up: a kernel that splits its tasks
         * the same way writes the same part of its output tensor from the same thread each time, and a next layer split
         * alike reads it there, from the cache of the core that wrote it. With one shared counter the claims fell
         * differently each time; on a VM whose two vCPUs are far apart (a cache line took 230 ns from one to the other,
         * AMD EPYC Zen 5) a 3x3 layer's tasks ran 16-20% longer on two threads than on one. ResNet-50's trunk, runs
         * alternating the shared counter and the shares in one process (AMD EPYC Zen 5, 2 threads, medians of the
         * per-pair ratios): 1.021 and 1.014 faster at batch 1 (81 and 101 pairs), 1.048 at batch 8 (21).
         */
        void work(int who) {
            for (int j = 0; j < parts; j++) {
                int r = (who + j) % parts;
                work(cursors[r], (int) ((long) count * (r + 1) / parts));
            }
        }

        /** Claims and runs a share's chunks until none is left; after an error the rest are claimed and skipped. */
        private void work(AtomicInteger next, int end) {
            for (int s = next.getAndAdd(grain); s < end; s = next.getAndAdd(grain)) {
                int e = Math.min(end, s + grain);
                try {
                    for (int i = s; i < e && error == null; i++) {
                        body.accept(i);
                    }
                } catch (Throwable t) {
                    synchronized (this) {
                        if (error == null) {
                            error = t;
                        }
                    }
                } finally {
                    if (done.addAndGet(e - s) == count) {
                        LockSupport.unpark(caller);
                    }
                }
            }
        }

        /** The caller: spins, then parks until the last chunk's finisher unparks it. */
        void await() {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (done.get() < count) {
                if (System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
        }

        void rethrow() {
            Throwable t = error;
            if (t instanceof RuntimeException) {
                throw (RuntimeException) t;
            }
            if (t instanceof Error) {
                throw (Error) t;
            }
            if (t != null) {
                throw new RuntimeException(t);
            }
        }
    }

    /** A crew's helper: runs each new loop's chunks, spins for the next, parks. */
    private static final class Helper extends Thread {
        private final Crew crew;
        private final int index;
        volatile boolean parked;

        Helper(Crew crew, String name, int index) {
            super(name);
            this.crew = crew;
            this.index = index;
            setDaemon(true);
        }

        @Override
        public void run() {
            long seen = crew.generation;
            while (!crew.closed) {
                long g = crew.generation;
                if (g != seen) {
                    seen = g;
                    Loop l = crew.loop;
                    if (l != null) {
                        Crew.RUNNING.set(crew);
                        try {
                            l.work(index);
                        } finally {
                            Crew.RUNNING.remove();
                        }
                    }
                    continue;
                }
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while (crew.generation == seen && !crew.closed && (crew.holders.get() > 0 || System.nanoTime() < spinUntil)) {
                    Thread.onSpinWait();
                }
                if (crew.generation == seen && !crew.closed) {
                    parked = true;
                    if (crew.generation == seen && !crew.closed) {
                        LockSupport.park(crew);
                    }
                    parked = false;
                }
            }
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
