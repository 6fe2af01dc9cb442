package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Runs a call until it is at steady state, as the autotuner and {@code bench} need before timing: in a fresh JVM the
 * first runs time code the JIT has not finished compiling (on two cores the compiler threads compete with the workers
 * for seconds), so a fixed warm-up can time cold code. Steady means: the last {@link #RUNS} runs agree within
 * {@link #SPREAD} (slowest / fastest), or all took under {@link #FLOOR_NANOS} (where the clock and the scheduler, not
 * the code, decide a 5% difference), <em>and</em> the JIT was quiet during those runs and the last {@link #QUIET_NANOS}:
 * its compiler threads' CPU time ({@link #jitActivityMillis}; without /proc the JVM's total compilation time, {@link
 * CompilationMXBean}) moved by at most {@link #SLACK_MILLIS}. Agreement alone was
 * not enough: in a fresh JVM a kernel runs on C1's code for many runs at a steady, 2-5x too slow pace while C2 compiles
 * it, and the tuner crowned im2col over direct on every stride-1 3x3 layer of ResNet-50 at batch 1 (direct timed at
 * 6.4 ms in tuning, 1.3 ms warm).
 * <p>
 * A quiet JIT was not enough either: after C1 has compiled a kernel with profiling, C2 waits until the method has run
 * enough times (more when its queue is long), and meanwhile the Vector API runs its Java fallback, which allocates an
 * object for every vector operation: in a fresh JVM compiling ResNet-50 the tuner timed Winograd at 6.4 ms over 104
 * agreeing runs with the JIT quiet (0.6 ms once compiled) and direct's 1 x 1 kernel at 10 ms (0.35 ms), and cached the
 * losers. So steady also means the runs have stopped allocating: each of the last {@link #RUNS} allocated (on the calling
 * thread, leaving out {@link CpuBackend#workspaceBytesAllocated the CPU backend's unkept scratch buffers}) at most
 * {@link #ALLOC_SLACK} bytes more than the floor: 0 for a call that allocates nothing of its own ({@code
 * allocationFree}, the tuner's), else the least any run has allocated so far (a bench's call that returns a new tensor).
 */
public final class Warmup {
    /** Runs that must agree. */
    public static final int RUNS = 3;
    /** How far apart (max / min) they may be. */
    public static final double SPREAD = 1.05;
    /** Runs this short count as steady once they are the last {@link #RUNS}: 50 us. */
    public static final long FLOOR_NANOS = 50_000;
    /** How long the JIT must have been quiet: 100 ms (C2 takes ~100-270 ms on the largest kernels). */
    public static final long QUIET_NANOS = 100_000_000L;
    /**
     * JIT activity that still counts as quiet, in ms: in a fresh JVM small compilations of other methods (1-20 ms
     * each, every 10-200 ms) go on for seconds after a kernel's own C2 compilation (~100-270 ms of a compiler thread's
     * time), and on a 2-vCPU AMD Zen 5 they kept a 0.3 ms layer from ever counting as steady within the tuner's 2 s
     * (with the compiler threads' CPU time, at a 10 ms tick, 10 ms left eight concurrent tunings of tiny layers
     * unsettled; a kernel's compilation in flight moves it by ~100 ms in the 100 ms window).
     */
    public static final long SLACK_MILLIS = 30;
    /** Bytes a run may allocate above the floor and still count as steady: 256 KiB. */
    public static final long ALLOC_SLACK = 256 << 10;
    private static final CompilationMXBean JIT = ManagementFactory.getCompilationMXBean();
    private static final com.sun.management.ThreadMXBean THREADS = threads();

    private Warmup() {
    }

    /**
     * Runs {@code call} at least {@code minRuns} times and for at least {@code minMillis}, then until it is steady (the
     * class comment) or {@code maxMillis} have passed; returns whether it got there.
     */
    public static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis) {
        return untilSteady(call, minRuns, minMillis, maxMillis, false);
    }

    /**
     * As {@link #untilSteady(Runnable, int, long, long)}; {@code allocationFree}: the call allocates nothing of its own,
     * so a run that allocates more than {@link #ALLOC_SLACK} is not at steady state however its time compares.
     */
    public static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis, boolean allocationFree) {
        return untilSteady(call, minRuns, minMillis, maxMillis, Warmup::jitActivityMillis, Warmup::allocatedBytes, allocationFree);
    }

    /**
     * Bytes the calling thread has allocated so far, less the CPU backend's unkept scratch buffers; -1 where the JVM does
     * not count a thread's allocations (then the allocation rule is off).
     */
    static long allocatedBytes() {
        if (THREADS == null) {
            return -1;
        }
        long b = THREADS.getCurrentThreadAllocatedBytes();
        return b < 0 ? -1 : b - CpuBackend.workspaceBytesAllocated();
    }

    private static com.sun.management.ThreadMXBean threads() {
        try {
            java.lang.management.ThreadMXBean t = ManagementFactory.getThreadMXBean();
            if (t instanceof com.sun.management.ThreadMXBean && ((com.sun.management.ThreadMXBean) t).isThreadAllocatedMemorySupported()) {
                com.sun.management.ThreadMXBean sun = (com.sun.management.ThreadMXBean) t;
                sun.setThreadAllocatedMemoryEnabled(true);
                return sun;
            }
        } catch (RuntimeException | LinkageError e) {
            // not HotSpot's management extension: no allocation counts
        }
        return null;
    }

    /**
     * The JIT's activity so far, in ms: the CPU time of its compiler threads where Linux reports it ({@link
     * #compilerCpuMillis}), which moves while a compilation runs; else the JVM's total compilation time, which moves only
     * when a compilation ends, so a kernel's C2 compilation of a few hundred ms looked quiet while the kernel ran C1's
     * steady, 10-15x slower code (the tuner timed direct at 2.5 ms on a 0.15-0.19 ms 1x1 layer and chose im2col).
     */
    static long jitActivityMillis() {
        long cpu = compilerCpuMillis();
        return cpu >= 0 ? cpu : compilationMillis();
    }

    /** Which of this process's threads (by id under /proc/self/task) are the JIT's compiler threads. */
    private static final java.util.Map<String, Boolean> COMPILER_THREADS = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * The CPU time (user + system) of the JVM's compiler threads ("C1 CompilerThread", "C2 CompilerThread"), in ms at
     * the kernel's 10 ms tick, from /proc/self/task/TID/stat; -1 where there is no such file or no compiler thread.
     */
    static long compilerCpuMillis() {
        java.nio.file.Path tasks = java.nio.file.Path.of("/proc/self/task");
        long ticks = 0;
        boolean any = false;
        try (java.nio.file.DirectoryStream<java.nio.file.Path> dir = java.nio.file.Files.newDirectoryStream(tasks)) {
            for (java.nio.file.Path t : dir) {
                try {
                    Boolean compiler = COMPILER_THREADS.get(t.getFileName().toString());
                    if (compiler == null) {
                        String comm = java.nio.file.Files.readString(t.resolve("comm")).trim();
                        compiler = comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre");
                        COMPILER_THREADS.put(t.getFileName().toString(), compiler);
                    }
                    if (compiler) {
                        String stat = java.nio.file.Files.readString(t.resolve("stat"));
                        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                        ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime: fields 14 and 15
                        any = true;
                    }
                } catch (java.io.IOException | RuntimeException gone) {
                    // a thread that exited between the listing and the read
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            return -1;
        }
        return any ? ticks * 10 : -1;
    }

    /** The JIT's total compilation time so far, in ms; 0 where the JVM does not report it (then only the times count). */
    static long compilationMillis() {
        return JIT != null && JIT.isCompilationTimeMonitoringSupported() ? JIT.getTotalCompilationTime() : 0;
    }

    /** As {@link #untilSteady(Runnable, int, long, long)} with the JIT's activity read from {@code jitMillis}. */
    static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis, LongSupplier jitMillis) {
        return untilSteady(call, minRuns, minMillis, maxMillis, jitMillis, () -> -1, false);
    }

    /** As {@link #untilSteady(Runnable, int, long, long, boolean)} with the JIT's activity and the allocations read from these. */
    static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis, LongSupplier jitMillis,
                               LongSupplier allocated, boolean allocationFree) {
        double[] last = new double[RUNS];
        long[] allocs = new long[RUNS];
        long leastAlloc = Long.MAX_VALUE;
        long[] began = new long[RUNS];
        long start = System.nanoTime();
        // the JIT's total compilation time after each run {time, ms}, oldest first: from the last reading at or before
        // the start of the window the quiet rule looks at
        ArrayDeque<long[]> readings = new ArrayDeque<>();
        readings.add(new long[] {start, jitMillis.getAsLong()});
        for (int i = 0; ; i++) {
            long a0 = allocated.getAsLong();
            long s = System.nanoTime();
            call.run();
            long now = System.nanoTime();
            long a1 = allocated.getAsLong();
            allocs[i % RUNS] = a0 < 0 || a1 < 0 ? 0 : a1 - a0;
            leastAlloc = Math.min(leastAlloc, allocs[i % RUNS]);
            last[i % RUNS] = now - s;
            began[i % RUNS] = s;
            long jit = jitMillis.getAsLong();
            readings.add(new long[] {now, jit});
            boolean enough = i + 1 >= Math.max(minRuns, RUNS) && now - start >= minMillis * 1_000_000L;
            if (enough) {
                double lo = Arrays.stream(last).min().getAsDouble(), hi = Arrays.stream(last).max().getAsDouble();
                long since = Math.min(Arrays.stream(began).min().getAsLong(), now - QUIET_NANOS);
                boolean quiet = now - start >= QUIET_NANOS && jit - from(readings, since)[1] <= SLACK_MILLIS;
                long floor = allocationFree ? 0 : leastAlloc;
                boolean compiled = Arrays.stream(allocs).allMatch(b -> b <= floor + ALLOC_SLACK);
                if ((hi <= lo * SPREAD || hi < FLOOR_NANOS) && quiet && compiled) {
                    return true;
                }
                if (now - start > maxMillis * 1_000_000L) {
                    return false;
                }
            }
        }
    }

    /** The window {@link #untilJitSettles} looks at: 2 s. */
    public static final long SETTLE_NANOS = 2_000_000_000L;
    /** The share of one core the JIT may use over that window and count as settled: 2% (40 ms in 2 s). */
    public static final double SETTLED_SHARE = 0.02;

    /**
     * Runs {@code call} (already {@link #untilSteady steady}) on until the JIT has settled: its compiler threads used at
     * most {@link #SETTLED_SHARE} of a core over the last {@link #SETTLE_NANOS}; returns whether that happened within
     * {@code maxMillis}. For calls made of many methods, as a network's trunk: after its kernels are compiled and its runs
     * agree, the methods it calls once per layer or per run go on being compiled for seconds (in ResNet-50's trunk at
     * batch 1 on a 2-vCPU AMD EPYC Zen 4, run back to back after its plans were built: 350 and 320 ms of compiler time in
     * the 2nd and 3rd 2 s, 110 and 80 in the next two, then 0-20), and on two cores each compilation takes a core from
     * the trunk's two threads: runs timed in that phase spread (per layer, mean over median 4-5 ms per run) and ran 6-10%
     * slower than after it.
     */
    public static boolean untilJitSettles(Runnable call, long maxMillis) {
        return untilJitSettles(call, maxMillis, Warmup::jitActivityMillis, SETTLE_NANOS);
    }

    /** As {@link #untilJitSettles(Runnable, long)} with the JIT's activity from {@code jitMillis} and a window of {@code windowNanos}. */
    static boolean untilJitSettles(Runnable call, long maxMillis, LongSupplier jitMillis, long windowNanos) {
        long start = System.nanoTime();
        ArrayDeque<long[]> readings = new ArrayDeque<>(); // {time, JIT ms}, oldest first, from the last one at or before the window
        readings.add(new long[] {start, jitMillis.getAsLong()});
        while (true) {
            call.run();
            long now = System.nanoTime(), jit = jitMillis.getAsLong();
            readings.add(new long[] {now, jit});
            long[] first = from(readings, now - windowNanos);
            if (now - start >= windowNanos && jit - first[1] <= SETTLED_SHARE * (now - first[0]) / 1e6) {
                return true;
            }
            if (now - start > maxMillis * 1_000_000L) {
                return false;
            }
        }
    }

    /**
     * Drops the {time, JIT ms} readings (oldest first) before the last one taken at or before {@code since}, and returns
     * that one: the JIT's activity since then is the newest reading's ms less its ms.
     */
    private static long[] from(ArrayDeque<long[]> readings, long since) {
        while (readings.size() > 1) {
            java.util.Iterator<long[]> it = readings.iterator();
            it.next();
            if (it.next()[0] > since) {
                break;
            }
            readings.removeFirst();
        }
        return readings.peekFirst();
    }
}
