package io.github.jconv;

import io.github.jconv.cpu.Parallel;

import java.util.Objects;

/** How to run a convolution: backend name, algorithm and thread count. Immutable. */
public final class ConvOptions {
    private static final ConvOptions DEFAULTS = new ConvOptions("auto", Algorithm.AUTO, 0, true);

    private final String backend;
    private final Algorithm algorithm;
    private final int threads;
    private final boolean tune;

    private ConvOptions(String backend, Algorithm algorithm, int threads, boolean tune) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.algorithm = Objects.requireNonNull(algorithm, "algorithm");
        Parallel.requireValidThreads(threads);
        this.threads = threads;
        this.tune = tune;
    }

    /** Backend {@code auto}, algorithm {@code auto} (autotuned), all cores. */
    public static ConvOptions defaults() {
        return DEFAULTS;
    }

    public ConvOptions withBackend(String name) {
        return new ConvOptions(name, algorithm, threads, tune);
    }

    public ConvOptions withAlgorithm(Algorithm a) {
        return new ConvOptions(backend, a, threads, tune);
    }

    /** Worker threads on the CPU; 0 means all cores; at most {@link Parallel#maxThreads()}. */
    public ConvOptions withThreads(int t) {
        return new ConvOptions(backend, algorithm, t, tune);
    }

    /** Whether {@code auto} may time the algorithms ({@link Autotuner}); off: the backend's heuristic. */
    public ConvOptions withTuning(boolean on) {
        return new ConvOptions(backend, algorithm, threads, on);
    }

    public boolean tune() { return tune; }
    public String backend() { return backend; }
    public Algorithm algorithm() { return algorithm; }
    public int threads() { return threads; }

    @Override
    public String toString() {
        return "backend=" + backend + " algorithm=" + algorithm + " threads=" + (threads == 0 ? "all" : threads)
                + (tune ? "" : " no-tune");
    }
}
