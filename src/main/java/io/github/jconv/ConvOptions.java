package io.github.jconv;

import java.util.Objects;

/** How to run a convolution: backend name, algorithm and thread count. Immutable. */
public final class ConvOptions {
    private static final ConvOptions DEFAULTS = new ConvOptions("auto", Algorithm.AUTO, 0);

    private final String backend;
    private final Algorithm algorithm;
    private final int threads;

    private ConvOptions(String backend, Algorithm algorithm, int threads) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.algorithm = Objects.requireNonNull(algorithm, "algorithm");
        if (threads < 0) {
            throw new InvalidConvolutionException("threads must be >= 0 (0 = all cores), got " + threads);
        }
        this.threads = threads;
    }

    /** Backend {@code auto}, algorithm {@code auto}, all cores. */
    public static ConvOptions defaults() {
        return DEFAULTS;
    }

    public ConvOptions withBackend(String name) {
        return new ConvOptions(name, algorithm, threads);
    }

    public ConvOptions withAlgorithm(Algorithm a) {
        return new ConvOptions(backend, a, threads);
    }

    /** Worker threads on the CPU; 0 means all cores. */
    public ConvOptions withThreads(int t) {
        return new ConvOptions(backend, algorithm, t);
    }

    public String backend() { return backend; }
    public Algorithm algorithm() { return algorithm; }
    public int threads() { return threads; }

    @Override
    public String toString() {
        return "backend=" + backend + " algorithm=" + algorithm + " threads=" + (threads == 0 ? "all" : threads);
    }
}
