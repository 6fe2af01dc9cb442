package io.github.jconv;

import java.util.Arrays;

/**
 * Runs a call until it is at steady state, as the autotuner and {@code bench} need before timing: in a fresh JVM the
 * first runs time code the JIT has not finished compiling (on two cores the compiler threads compete with the workers
 * for seconds), so a fixed warm-up can time cold code. Steady means: the last {@link #RUNS} runs agree within
 * {@link #SPREAD} (slowest / fastest), or all took under {@link #FLOOR_NANOS} (where the clock and the scheduler, not
 * the code, decide a 5% difference).
 */
public final class Warmup {
    /** Runs that must agree. */
    public static final int RUNS = 3;
    /** How far apart (max / min) they may be. */
    public static final double SPREAD = 1.05;
    /** Runs this short count as steady once they are the last {@link #RUNS}: 50 us. */
    public static final long FLOOR_NANOS = 50_000;

    private Warmup() {
    }

    /**
     * Runs {@code call} at least {@code minRuns} times and for at least {@code minMillis}, then until the last
     * {@link #RUNS} runs agree within {@link #SPREAD} or {@code maxMillis} have passed; returns whether it got there.
     */
    public static boolean untilSteady(Runnable call, int minRuns, long minMillis, long maxMillis) {
        double[] last = new double[RUNS];
        long start = System.nanoTime();
        for (int i = 0; ; i++) {
            long s = System.nanoTime();
            call.run();
            long now = System.nanoTime();
            last[i % RUNS] = now - s;
            boolean enough = i + 1 >= Math.max(minRuns, RUNS) && now - start >= minMillis * 1_000_000L;
            if (enough) {
                double lo = Arrays.stream(last).min().getAsDouble(), hi = Arrays.stream(last).max().getAsDouble();
                if (hi <= lo * SPREAD || hi < FLOOR_NANOS) {
                    return true;
                }
                if (now - start > maxMillis * 1_000_000L) {
                    return false;
                }
            }
        }
    }
}
