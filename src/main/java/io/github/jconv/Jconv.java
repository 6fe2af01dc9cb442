package io.github.jconv;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The jconv API: {@code conv2d} and {@code convTranspose2d} on NCHW float32 tensors, with PyTorch's
 * semantics and weight layouts. Thread-safe; every call checks its arguments before any work is done.
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

    private static Tensor compute(ConvGeometry.Op op, Tensor x, Tensor weight, Tensor bias, ConvSpec spec, Epilogue epilogue,
                                  Tensor residual, ConvOptions options) {
        ConvGeometry g = ConvGeometry.of(op, x.shape(), weight.shape(), bias == null ? null : bias.shape(), spec);
        if (residual != null && !java.util.Arrays.equals(residual.shape(), g.outputShape())) {
            throw new InvalidConvolutionException("residual must have the output's shape " + java.util.Arrays.toString(g.outputShape())
                    + ", got " + java.util.Arrays.toString(residual.shape()));
        }
        Tensor out = Tensor.zeros(g.outputShape());
        run(g, x.data(), weight.data(), bias == null ? null : bias.data(), epilogue, residual == null ? null : residual.data(),
                out.data(), options);
        return out;
    }

    /**
     * The low-level call: runs a checked geometry on raw NCHW arrays, writing {@code output} (whose length must
     * be the output's element count). Returns the algorithm that ran.
     */
    public static Algorithm run(ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                                ConvOptions options) {
        return run(g, input, weight, bias, Epilogue.none(), null, output, options);
    }

    /** {@link #run(ConvGeometry, float[], float[], float[], float[], ConvOptions)} with an epilogue (residual: null for none). */
    public static Algorithm run(ConvGeometry g, float[] input, float[] weight, float[] bias, Epilogue epilogue, float[] residual,
                                float[] output, ConvOptions options) {
        requireLength("input", input, Tensor.elementCount(g.inputShape()));
        requireLength("weight", weight, Tensor.elementCount(g.weightShape()));
        if (bias != null) {
            requireLength("bias", bias, g.biasLength());
        }
        requireLength("output", output, Tensor.elementCount(g.outputShape()));
        epilogue.requireResidual(residual, output.length);
        Backend backend = Backends.get(options.backend());
        Algorithm algorithm = options.algorithm();
        if (algorithm == Algorithm.AUTO) {
            algorithm = Autotuner.global().choose(backend, g, options.threads(), options.tune());
            LOG.debug("auto chose {} on {} for {}", algorithm, backend.name(), g);
        } else {
            backend.requireImplementable(algorithm, g);
        }
        backend.run(algorithm, g, input, weight, bias, epilogue, residual, output, options.threads());
        return algorithm;
    }

    private static void requireLength(String what, float[] a, long expected) {
        if (a == null || a.length != expected) {
            throw new InvalidConvolutionException(what + " array has " + (a == null ? "no" : Integer.toString(a.length))
                    + " elements, the geometry needs " + expected);
        }
    }
}
