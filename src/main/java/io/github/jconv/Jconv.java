package io.github.jconv;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jconv API: {@code conv2d} and {@code convTranspose2d} on NCHW float32 tensors, with PyTorch's
 * semantics and weight layouts. Thread-safe; every call checks its arguments before any work is done. Activations may
 * also be channels last ({@link Layout#NHWC}; shapes stay N x C x H x W): the result takes the input's layout, as in
 * PyTorch, and the arrays are converted to NCHW around the computation.
 *
 * <pre>{@code
 * Tensor y = Jconv.conv2d(x, w, bias, ConvSpec.builder().stride(2).padding(1).build());
 * }</pre>
 */
public final class Jconv {
    private static final Logger LOG = LoggerFactory.getLogger(Jconv.class);

    private Jconv() {
    }

    /** PyTorch's {@code F.conv2d(x, weight, bias, ...)} with the default backend and algorithm. */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec) {
        return conv2d(x, weight, bias, spec, ConvOptions.defaults());
    }

    /** x: N x C x H x W; weight: K x C/G x R x S; bias: K or null. Returns N x K x P x Q. */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec, ConvOptions options) {
        return compute(ConvGeometry.Op.CONV2D, x, weight, bias, spec, Epilogue.none(), null, options);
    }

    /**
     * {@code epilogue(conv2d(x, weight) + bias, residual)}: an activation and an optional residual add (residual: the
     * output's shape, exactly when the epilogue adds one), fused where the backend can ({@link Epilogue}).
     */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec, Epilogue epilogue, Tensor residual,
                                ConvOptions options) {
        return compute(ConvGeometry.Op.CONV2D, x, weight, bias, spec, epilogue, residual, options);
    }

    /** PyTorch's {@code F.conv_transpose2d(x, weight, bias, ...)} with the default backend and algorithm. */
    public static Tensor convTranspose2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec) {
        return convTranspose2d(x, weight, bias, spec, ConvOptions.defaults());
    }

    /** x: N x C_in x H x W; weight: C_in x C_out/G x R x S; bias: C_out or null. Output padding from the spec. */
    public static Tensor convTranspose2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec, ConvOptions options) {
        return compute(ConvGeometry.Op.CONV_TRANSPOSE2D, x, weight, bias, spec, Epilogue.none(), null, options);
    }

    /** {@code epilogue(conv_transpose2d(x, weight) + bias, residual)} (see {@link #conv2d(Tensor, Tensor, Tensor, ConvSpec, Epilogue, Tensor, ConvOptions)}). */
    public static Tensor convTranspose2d(Tensor x, Tensor weight, Tensor bias, ConvSpec spec, Epilogue epilogue, Tensor residual,
                                         ConvOptions options) {
        return compute(ConvGeometry.Op.CONV_TRANSPOSE2D, x, weight, bias, spec, epilogue, residual, options);
    }

    // ------------------------------------------------------------ the training path

    /**
     * PyTorch's {@code torch.nn.grad.conv2d_weight(x, weight_size, dy, ...)}: the gradient of a loss with respect to
     * conv2d's weight, given the layer's input x (N x C x H x W) and the gradient of its output dy (N x K x P x Q);
     * returns K x C/G x R x S for {@code kernelSize} = {R, S}. Deterministic (the same bits whatever the thread count).
     */
    public static Tensor conv2dBackwardWeight(Tensor x, Tensor dy, int[] kernelSize, ConvSpec spec) {
        return conv2dBackwardWeight(x, dy, kernelSize, spec, ConvOptions.defaults());
    }

    /** {@link #conv2dBackwardWeight(Tensor, Tensor, int[], ConvSpec)} on a chosen backend and algorithm. */
    public static Tensor conv2dBackwardWeight(Tensor x, Tensor dy, int[] kernelSize, ConvSpec spec, ConvOptions options) {
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, x.shape(), dy.shape(), kernelSize, spec);
        Tensor dw = Tensor.zeros(g.weightShape());
        backwardWeight(g, nchw(x), nchw(dy), dw.data(), options);
        return dw;
    }

    /**
     * The weight gradient of conv_transpose2d: x is its input (N x C_in x H x W), dy the gradient of its output; returns
     * C_in x C_out/G x R x S. conv_transpose2d is conv2d's data gradient, so this is conv2d's weight gradient with x and
     * dy swapped (conv2d's input is dy here, its output gradient x).
     */
    public static Tensor convTranspose2dBackwardWeight(Tensor x, Tensor dy, int[] kernelSize, ConvSpec spec, ConvOptions options) {
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV_TRANSPOSE2D, x.shape(), dy.shape(), kernelSize, spec);
        Tensor dw = Tensor.zeros(g.weightShape());
        backwardWeight(g, nchw(dy), nchw(x), dw.data(), options);
        return dw;
    }

    /**
     * The low-level weight gradient on a checked geometry, in its forward names ({@link Backend#backwardWeight}): x is
     * N x C x H x W, dy N x K x P x Q, dw K x C/G x R x S (overwritten). Returns the algorithm that ran.
     */
    public static Algorithm backwardWeight(ConvGeometry g, float[] x, float[] dy, float[] dw, ConvOptions options) {
        requireLength("x", x, (long) g.n * g.c * g.h * g.w);
        requireLength("dy", dy, (long) g.n * g.k * g.p * g.q);
        requireLength("dw", dw, Tensor.elementCount(g.weightShape()));
        Backend backend = Backends.get(options.backend());
        Algorithm a = backend.resolveBackwardWeight(options.algorithm(), g);
        backend.backwardWeight(a, g, x, dy, dw, options.threads());
        return a;
    }

    /** The bias gradient of conv2d and conv_transpose2d: dy (N x K x P x Q) summed over N, P and Q, in float64. */
    public static Tensor conv2dBackwardBias(Tensor dy) {
        return conv2dBackwardBias(dy, ConvOptions.defaults());
    }

    /** {@link #conv2dBackwardBias(Tensor)} on a chosen backend. */
    public static Tensor conv2dBackwardBias(Tensor dy, ConvOptions options) {
        int[] s = dy.shape();
        if (s.length != 4 || s[1] == 0 || s[2] == 0 || s[3] == 0) {
            throw new InvalidConvolutionException("dy must have 4 dimensions (N x K x P x Q), only N may be 0, got shape "
                    + java.util.Arrays.toString(s));
        }
        Tensor db = Tensor.zeros(s[1]);
        Backends.get(options.backend()).backwardBias(nchw(dy), s[0], s[1], s[2] * s[3], db.data(), options.threads());
        return db;
    }

    private static Tensor compute(ConvGeometry.Op op, Tensor x, Tensor weight, Tensor bias, ConvSpec spec, Epilogue epilogue,
                                  Tensor residual, ConvOptions options) {
        ConvGeometry g = ConvGeometry.of(op, x.shape(), weight.shape(), bias == null ? null : bias.shape(), spec);
        if (residual != null && !java.util.Arrays.equals(residual.shape(), g.outputShape())) {
            throw new InvalidConvolutionException("residual must have the output's shape " + java.util.Arrays.toString(g.outputShape())
                    + ", got " + java.util.Arrays.toString(residual.shape()));
        }
        if (weight.layout() != Layout.NCHW) {
            throw new InvalidConvolutionException("weight must be in C order (K x C/G x R x S, layout nchw), got " + weight.layout().label());
        }
        Tensor out = Tensor.zeros(g.outputShape());
        run(g, nchw(x), weight.data(), bias == null ? null : bias.data(), epilogue, residual == null ? null : nchw(residual),
                out.data(), options);
        return out.to(x.layout());
    }

    /** t's data in NCHW: its own array, or a converted copy of a channels-last tensor's. */
    private static float[] nchw(Tensor t) {
        return t.to(Layout.NCHW).data();
    }

    /**
     * The low-level call: runs a checked geometry on raw NCHW arrays, writing {@code output} (whose length must
     * be the output's element count). Returns the algorithm that ran. Calls that come back with the same weight array
     * (unchanged) run on a cached plan ({@link PlanCache}): the same result, bit for bit, without packing or uploading the
     * weights again.
     */
    public static Algorithm run(ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                                ConvOptions options) {
        return run(g, input, weight, bias, Epilogue.none(), null, output, options);
    }

    /**
     * {@link #run(ConvGeometry, float[], float[], float[], float[], ConvOptions)} with an epilogue (residual: null for none).
     * The residual may be the output array (output = epilogue(conv + bias, output)); it is then copied first. For the
     * in-place run without a copy, see {@link ConvPlan#runsResidualInPlace}.
     */
    public static Algorithm run(ConvGeometry g, float[] input, float[] weight, float[] bias, Epilogue epilogue, float[] residual,
                                float[] output, ConvOptions options) {
        requireLength("input", input, Tensor.elementCount(g.inputShape()));
        requireLength("weight", weight, Tensor.elementCount(g.weightShape()));
        if (bias != null) {
            requireLength("bias", bias, g.biasLength());
        }
        requireLength("output", output, Tensor.elementCount(g.outputShape()));
        epilogue.requireResidual(residual, output.length);
        if (input == output) {
            throw new InvalidConvolutionException("the output array must not be the input array (no in-place convolution)");
        }
        if (residual == output) { // most kernels store their sums before adding the residual: add a copy of it
            residual = residual.clone();
        }
        Backend backend = Backends.get(options.backend());
        boolean recheck = options.algorithm() == Algorithm.AUTO && options.tune();
        long t0 = recheck ? System.nanoTime() : 0;
        Algorithm algorithm = PlanCache.global().run(backend, g, input, weight, bias, epilogue, residual, output, options);
        if (algorithm == null) {
            algorithm = options.algorithm();
            if (algorithm == Algorithm.AUTO) {
                algorithm = Autotuner.global().choose(backend, g, options.threads(), options.tune());
                LOG.debug("auto chose {} on {} for {}", algorithm, backend.name(), g);
                t0 = System.nanoTime(); // the run alone, not the tuning
            } else {
                backend.requireImplementable(algorithm, g);
            }
            backend.run(algorithm, g, input, weight, bias, epilogue, residual, output, options.threads());
        }
        if (recheck) { // a cached choice that has become slow is tuned again (Autotuner.observe)
            Autotuner.global().observe(backend, g, options.threads(), algorithm, (System.nanoTime() - t0) / 1e6);
        }
        return algorithm;
    }

    private static void requireLength(String what, float[] a, long expected) {
        if (a == null || a.length != expected) {
            throw new InvalidConvolutionException(what + " array has " + (a == null ? "no" : Integer.toString(a.length))
                    + " elements, the geometry needs " + expected);
        }
    }
}
