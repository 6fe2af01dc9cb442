package io.github.jconv.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A short measurement of the machine's float32 FMA peak through the Vector API: every thread runs
 * 12 independent FMA chains on registers (enough to hide the FMA latency on two ports) for a fixed number
 * of iterations; the best of a few trials counts. Loaded only when the Vector API module is present.
 */
final class PeakProbe {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private PeakProbe() {
    }

    /** GFLOP/s of one thread over {@code iterations} x 12 vector FMAs. */
    private static double oneThread(long iterations, float[] sink) {
        FloatVector a = FloatVector.broadcast(S, 0.999f), b = FloatVector.broadcast(S, 1e-7f);
        FloatVector c0 = FloatVector.broadcast(S, 1f), c1 = c0.add(b), c2 = c1.add(b), c3 = c2.add(b), c4 = c3.add(b),
                c5 = c4.add(b), c6 = c5.add(b), c7 = c6.add(b), c8 = c7.add(b), c9 = c8.add(b), c10 = c9.add(b),
                c11 = c10.add(b);
        long t0 = System.nanoTime();
        for (long i = 0; i < iterations; i++) {
            c0 = c0.fma(a, b); c1 = c1.fma(a, b); c2 = c2.fma(a, b); c3 = c3.fma(a, b);
            c4 = c4.fma(a, b); c5 = c5.fma(a, b); c6 = c6.fma(a, b); c7 = c7.fma(a, b);
            c8 = c8.fma(a, b); c9 = c9.fma(a, b); c10 = c10.fma(a, b); c11 = c11.fma(a, b);
        }
        long t1 = System.nanoTime();
        c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11).intoArray(sink, 0);
        return 12.0 * 2 * S.length() * iterations / (t1 - t0);
    }

    /** Measured peak GFLOP/s with {@code threads} threads running at once (best of five ~50 ms trials). */
    static double measure(int threads) {
        long iterations = 2_000_000;
        oneThread(iterations / 10, new float[S.length()]); // compile
        double best = 0;
        for (int trial = 0; trial < 5; trial++) {
            double[] rates = new double[threads];
            Thread[] ts = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                int id = t;
                ts[t] = new Thread(() -> rates[id] = oneThread(iterations, new float[S.length()]));
                ts[t].start();
            }
            double sum = 0;
            for (int t = 0; t < threads; t++) {
                try {
                    ts[t].join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return best;
                }
                sum += rates[t];
            }
            best = Math.max(best, sum);
        }
        return best;
    }
}
