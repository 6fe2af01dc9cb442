package io.github.jconv;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Runs a call until it is at steady state, as the autotuner and {@code bench} need before timing: in a fresh JVM the
 * first runs time code the JIT has not finished compiling (on two cores the compiler threads compete with the workers
 * for seconds), so a fixed warm-up can time cold code. Steady means: the last {@link #RUNS} runs agree within
 * {@link #SPREAD} (slowest / fastest), or all took under {@link #FLOOR_NANOS} (where the clock and the scheduler, not
 * the code, decide a 5% difference), <em>and</em> the JIT finished no compilation during those runs nor in the last
 * {@link #QUIET_NANOS} (the JVM's total compilation time, {@link CompilationMXBean}, did not move). Agreement alone was
 * not enough: in a fresh JVM a kernel runs on C1's code for many runs at a steady, 2-5x too slow pace while C2 compiles
 * it, and the tuner crowned im2col over direct on every stride-1 3x3 layer of ResNet-50 at batch 1 (direct timed at
 * 6.4 ms in tuning, 1.3 ms warm).
 */
public final class Warmup {
    /** Runs that must agree. */
    public static final int RUNS = 3;
    /** How far apart (max / min) they may be. */
    public static final double SPREAD = 1.05;
    /** Runs this short count as steady once they are the last {@link #RUNS}: 50 us. */
    public static final long FLOOR_NANOS = 50_000;
    /** How long the JIT must have finished no compilation: 100 ms (C2 takes ~100-270 ms on the largest kernels). */
    public static final long QUIET_NANOS = 100_000_000L;
    private static final CompilationMXBean JIT = ManagementFactory.getCompilationMXBean();

    private Warmup() {
    }

    /**
     * Runs {@code call} at least {@code minRuns} times and for at least {@code minMillis}, then until it is steady (the
     * class comment) or {@code maxMillis} have passed; returns whether it got there.
     */
    public static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis) {
        return untilSteady(call, minRuns, minMillis, maxMillis, Warmup::compilationMillis);
    }

    /** The JIT's total compilation time so far, in ms; 0 where the JVM does not report it (then only the times count). */
    static long compilationMillis() {
        return JIT != null && JIT.isCompilationTimeMonitoringSupported() ? JIT.getTotalCompilationTime() : 0;
    }

    /** As {@link #untilSteady(Runnable, int, long, long)} with the JIT's activity read from {@code jitMillis}. */
    static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis, LongSupplier jitMillis) {
        double[] last = new double[RUNS];
        long[] began = new long[RUNS];
        long start = System.nanoTime();
        long jit = jitMillis.getAsLong(), quietSince = start;
        for (int i = 0; ; i++) {
            long s = System.nanoTime();
            call.run();
            long now = System.nanoTime();
            last[i % RUNS] = now - s;
            began[i % RUNS] = s;
            long j = jitMillis.getAsLong();
            if (j != jit) {
                jit = j;
                quietSince = now;
            }
            boolean enough = i + 1 >= Math.max(minRuns, RUNS) && now - start >= minMillis * 1_000_000L;
            if (enough) {
                double lo = Arrays.stream(last).min().getAsDouble(), hi = Arrays.stream(last).max().getAsDouble();
                long windowStart = Arrays.stream(began).min().getAsLong();
                boolean quiet = quietSince <= windowStart && now - quietSince >= QUIET_NANOS;
                if ((hi <= lo * SPREAD || hi < FLOOR_NANOS) && quiet) {
                    return true;
                }
                if (now - start > maxMillis * 1_000_000L) {
                    return false;
                }
            }
        }
    }
}
