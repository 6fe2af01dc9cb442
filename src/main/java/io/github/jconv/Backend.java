package io.github.jconv;

import java.util.List;

/**
 * Something that runs convolutions: the CPU, a CUDA device, cuDNN. Tensors are described by a checked
 * {@link ConvGeometry}; arrays are NCHW float32 and the weight is in PyTorch's layout.
 */
public interface Backend {
    /** The name users select it by ({@code cpu}, {@code cuda}, ...). */
    String name();

    /** Null when the backend can run here, otherwise the one-line reason it cannot. */
    String unavailableReason();

    /** The concrete algorithms it has (never {@link Algorithm#AUTO}). */
    List<Algorithm> algorithms();

    /** Null when {@code algorithm} can compute {@code geometry}, otherwise the reason it cannot. */
    String cannotImplement(Algorithm algorithm, ConvGeometry geometry);

    /** Throws {@link BackendUnavailableException} with the reason when the backend cannot run here. */
    default void requireAvailable() {
        String why = unavailableReason();
        if (why != null) {
            throw new BackendUnavailableException("backend '" + name() + "' not available: " + why);
        }
    }

    /**
     * {@link #requireAvailable()}, then an {@link InvalidConvolutionException} naming the algorithm, the operation,
     * the backend and the reason when {@code algorithm} cannot compute {@code geometry}.
     */
    default void requireImplementable(Algorithm algorithm, ConvGeometry geometry) {
        requireAvailable();
        String why = cannotImplement(algorithm, geometry);
        if (why != null) {
            throw new InvalidConvolutionException("algorithm '" + algorithm + "' cannot run this " + geometry.op
                    + " on backend '" + name() + "': " + why);
        }
    }

    /**
     * What every {@link #run} does first: {@link #requireImplementable}, then whether there is anything to compute
     * (false for an empty output, N = 0, which is then complete as it is).
     */
    default boolean prepare(Algorithm algorithm, ConvGeometry geometry) {
        requireImplementable(algorithm, geometry);
        return !geometry.isEmpty();
    }

    /** {@link #prepare(Algorithm, ConvGeometry)} for a run with an epilogue: also checks the residual against it. */
    default boolean prepare(Algorithm algorithm, ConvGeometry geometry, Epilogue epilogue, float[] residual, float[] output) {
        epilogue.requireResidual(residual, output.length);
        return prepare(algorithm, geometry);
    }

    /** Null when plans on this backend can compute in {@code math}, otherwise why not (by default: FP32 only). */
    default String cannotUseMath(MathMode math) {
        return math == MathMode.FP32 ? null : "backend '" + name() + "' computes in strict float32 only (math fp32)";
    }

    /** Scratch memory (bytes) the algorithm allocates for {@code geometry} beyond inputs and output; 0 if none. */
    default long workspaceBytes(Algorithm algorithm, ConvGeometry geometry) {
        return 0;
    }

    /** The algorithm {@code auto} means for this problem (one that can implement it). */
    Algorithm choose(ConvGeometry geometry);

    /**
     * Null when {@code auto}'s tuner may time {@code algorithm} on {@code geometry} (one it can implement), otherwise why
     * the tuner leaves it out though it runs: a candidate whose speed in the tuner's loop, on operands it has just used,
     * would not hold where they come from memory, as in a network. By default none is left out.
     */
    default String notTuned(Algorithm algorithm, ConvGeometry geometry) {
        return null;
    }

    /**
     * Whether the tuner times the candidates for {@code geometry} with the caches cleared before each timed run, then one
     * run of the same candidate on a copy of the weights, so only its weights come from memory (see {@link Autotuner}):
     * where a candidate's weights outweigh the work, its speed on weights it has just used would not hold in a network,
     * where the other layers' weights pass through the caches between two of its calls (its input and workspaces stay
     * there). By default not.
     */
    default boolean timedCold(ConvGeometry geometry) {
        return false;
    }

    /**
     * Which kernel variant {@code algorithm} runs for {@code geometry} and why (tile shape, phases), for explain; null
     * when the algorithm has no variants to tell apart.
     */
    default String variant(Algorithm algorithm, ConvGeometry geometry) {
        return null;
    }

    /**
     * Computes the operation: {@code output} (overwritten) = op(input, weight) + bias.
     *
     * @param bias    null for none
     * @param threads worker threads; 0 for all cores
     */
    void run(Algorithm algorithm, ConvGeometry geometry, float[] input, float[] weight, float[] bias, float[] output,
             int threads);

    // ------------------------------------------------------------ the training path: weight and bias gradients

    /**
     * Null when {@code algorithm} computes the weight gradient of {@code geometry} here, otherwise why not (by default
     * the backend has none).
     */
    default String cannotImplementBackwardWeight(Algorithm algorithm, ConvGeometry geometry) {
        String why = unavailableReason();
        return why != null ? why : "backend '" + name() + "' has no weight gradient";
    }

    /** The algorithm {@code auto} means for the weight gradient of {@code geometry} (one that can compute it). */
    default Algorithm chooseBackwardWeight(ConvGeometry geometry) {
        throw new InvalidConvolutionException(cannotImplementBackwardWeight(Algorithm.AUTO, geometry));
    }

    /**
     * The weight gradient in {@code geometry}'s forward names (conv_transpose2d: the caller swaps its x and dy):
     * {@code dw} (K x C/G x R x S, overwritten) = sum over n, p, q of dy[n][k][p][q] * x[n][c][p*sH - pt + r*dH][q*sW - pl + s*dW],
     * x N x C x H x W, dy N x K x P x Q. Deterministic: the same bits whatever {@code threads}.
     */
    default void backwardWeight(Algorithm algorithm, ConvGeometry geometry, float[] x, float[] dy, float[] dw, int threads) {
        throw new InvalidConvolutionException(cannotImplementBackwardWeight(algorithm, geometry));
    }

    /**
     * The algorithm a weight gradient of {@code geometry} runs: {@code requested}, or {@link #chooseBackwardWeight} for
     * {@link Algorithm#AUTO}; an {@link InvalidConvolutionException} naming the algorithm, the backend and the reason
     * when it cannot.
     */
    default Algorithm resolveBackwardWeight(Algorithm requested, ConvGeometry geometry) {
        requireAvailable();
        Algorithm a = requested == Algorithm.AUTO ? chooseBackwardWeight(geometry) : requested;
        String why = cannotImplementBackwardWeight(a, geometry);
        if (why != null) {
            throw new InvalidConvolutionException("algorithm '" + a + "' cannot compute this weight gradient on backend '" + name()
                    + "': " + why);
        }
        return a;
    }

    /** The bias gradient: db[k] = sum over n, p, q of dy[n][k][p][q] (dy N x K x P x Q, as {@code pq} = P*Q), in float64 here. */
    default void backwardBias(float[] dy, int n, int k, int pq, float[] db, int threads) {
        requireAvailable();
        io.github.jconv.cpu.WeightGradient.bias(dy, n, k, pq, db, io.github.jconv.cpu.Parallel.of(threads));
    }

    /**
     * {@code output} = epilogue(op(input, weight) + bias, residual). This default runs the plain operation and then the
     * epilogue on the host; backends that fuse it into their kernels override it.
     *
     * @param residual the residual tensor (the output's shape) when the epilogue adds one, else null
     */
    default void run(Algorithm algorithm, ConvGeometry geometry, float[] input, float[] weight, float[] bias, Epilogue epilogue,
                     float[] residual, float[] output, int threads) {
        if (prepare(algorithm, geometry, epilogue, residual, output)) {
            run(algorithm, geometry, input, weight, bias, output, threads);
            epilogue.applyInPlace(output, residual, 0, output.length);
        }
    }
}
