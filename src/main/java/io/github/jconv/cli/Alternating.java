package io.github.jconv.cli;

import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * jconv's work and a peer's timed in alternating slots, the order swapped every round, so that a slow stretch of a shared
 * machine slows both sides of a round alike: on a 2-vCPU VM (AMD EPYC Zen 4, 2026-12-05) one process's ResNet-50 trunk
 * moved between 39 and 49 ms for seconds at a time, so rows timed seconds apart could differ by that much where each
 * round's ratio does not. A slot is a pause (the other side's idle threads stop spinning: ONNX Runtime's intra-op workers
 * spin after a run; back to back, jconv's trunk ran 51-52 ms beside them against 40-42 alone), then runs of one side until
 * {@code slotMs} has passed (at least one); its time is the slot's mean per run. The ratio is each round's peer time over
 * jconv's (jconv's speed over the peer's), the median over the rounds.
 */
public final class Alternating {
    /** Each side's median time per run (ms) and the median, lowest and highest of the rounds' ratios. */
    public record Result(int rounds, double jconvMs, double peerMs, double ratio, double ratioMin, double ratioMax) {
    }

    /** The pause before each slot. */
    static final long PAUSE_MS = 30;

    private Alternating() {
    }

    /** One side's call, which may throw E. */
    @FunctionalInterface
    interface Call<E extends Exception> {
        void run() throws E;
    }

    /** {@code rounds} rounds of a slot of {@code mine} and one of {@code theirs}, each at least {@code slotMs} long (0: one run). */
    public static Result run(Runnable mine, PeerSession theirs, int rounds, long slotMs) throws IOException {
        return Alternating.<IOException>run(mine::run, theirs::run, rounds, slotMs, System::nanoTime, Alternating::pause);
    }

    /**
     * Two of jconv's own calls alternated (bench --thread-scaling: a layer on --threads threads as {@code mine}, on one
     * thread as {@code theirs}); the ratio is then {@code theirs}' time over {@code mine}'s, the speedup.
     */
    static Result run(Runnable mine, Runnable theirs, int rounds, long slotMs) {
        return Alternating.<RuntimeException>run(mine::run, theirs::run, rounds, slotMs, System::nanoTime, Alternating::pause);
    }

    /** {@link #run(Runnable, PeerSession, int, long)} on a clock (ns) and with a pause before each slot, both given (for tests). */
    static <E extends Exception> Result run(Call<E> mine, Call<E> theirs, int rounds, long slotMs, LongSupplier clock, Runnable pause)
            throws E {
        double[] jconv = new double[rounds], peer = new double[rounds], ratio = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            for (int side = 0; side < 2; side++) {
                pause.run();
                boolean jconvSide = (side + r) % 2 == 0;
                long t0 = clock.getAsLong(), end = t0 + slotMs * 1_000_000L, t;
                int n = 0;
                do {
                    if (jconvSide) {
                        mine.run();
                    } else {
                        theirs.run();
                    }
                    n++;
                    t = clock.getAsLong();
                } while (t < end);
                double perRun = (t - t0) / 1e6 / n;
                if (jconvSide) {
                    jconv[r] = perRun;
                } else {
                    peer[r] = perRun;
                }
            }
            ratio[r] = peer[r] / jconv[r];
        }
        Arrays.sort(jconv);
        Arrays.sort(peer);
        Arrays.sort(ratio);
        return new Result(rounds, BenchCommand.median(jconv), BenchCommand.median(peer), BenchCommand.median(ratio), ratio[0],
                ratio[rounds - 1]);
    }

    /** The JSON fields of a result. */
    static Map<String, Object> toMap(Result r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("rounds", r.rounds());
        m.put("jconv_median_ms", r.jconvMs());
        m.put("peer_median_ms", r.peerMs());
        m.put("ratio", r.ratio());
        m.put("ratio_min", r.ratioMin());
        m.put("ratio_max", r.ratioMax());
        return m;
    }

    private static void pause() {
        try {
            Thread.sleep(PAUSE_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
