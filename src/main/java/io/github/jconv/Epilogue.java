package io.github.jconv;

import java.util.Locale;
import java.util.Objects;

/**
 * What happens to each output value after the convolution and its bias: an activation and an optional residual
 * add, in one of the two orders networks use:
 * <ul>
 *   <li>{@link Residual#NONE}: {@code y = act(conv(x) + b)};</li>
 *   <li>{@link Residual#AFTER_ACTIVATION}: {@code y = act(conv(x) + b) + r};</li>
 *   <li>{@link Residual#BEFORE_ACTIVATION}: {@code y = act(conv(x) + b + r)} (ResNet's bottleneck: the shortcut is
 *       added before the final ReLU).</li>
 * </ul>
 * {@code r} is a tensor of the output's shape given with each call. Activations: ReLU, ReLU6, SiLU
 * ({@code v / (1 + e^-v)}), GELU in PyTorch's tanh form ({@code 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))}).
 * On the GPU the epilogue is part of each kernel's final store (or of the GEMM's); on the CPU it is applied in a
 * parallel pass over the output planes after the convolution (see the README). Immutable.
 */
public final class Epilogue {
    /** The activation applied to conv + bias (+ residual when {@link Residual#BEFORE_ACTIVATION}). */
    public enum Activation {
        NONE, RELU, RELU6, SILU, GELU;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Whether and where a residual tensor is added. */
    public enum Residual { NONE, AFTER_ACTIVATION, BEFORE_ACTIVATION }

    private static final Epilogue NONE = new Epilogue(Activation.NONE, Residual.NONE);

    private final Activation activation;
    private final Residual residual;

    private Epilogue(Activation activation, Residual residual) {
        this.activation = Objects.requireNonNull(activation, "activation");
        this.residual = Objects.requireNonNull(residual, "residual");
    }

    /** Nothing: y = conv(x) + b. */
    public static Epilogue none() {
        return NONE;
    }

    /** y = act(conv(x) + b). */
    public static Epilogue of(Activation activation) {
        return new Epilogue(activation, Residual.NONE);
    }

    /** This activation with a residual add. */
    public Epilogue withResidual(Residual where) {
        return new Epilogue(activation, where);
    }

    public Activation activation() {
        return activation;
    }

    public Residual residual() {
        return residual;
    }

    public boolean isNone() {
        return activation == Activation.NONE && residual == Residual.NONE;
    }

    public boolean hasResidual() {
        return residual != Residual.NONE;
    }

    /** The activation in float32, as the kernels compute it. */
    public static float activate(Activation a, float v) {
        switch (a) {
            case RELU: return v < 0f ? 0f : v; // NaN stays NaN, as in PyTorch
            case RELU6: return v < 0f ? 0f : v > 6f ? 6f : v;
            case SILU: return v / (1f + (float) Math.exp(-v));
            case GELU: return 0.5f * v * (1f + (float) Math.tanh(0.7978845608028654 * (v + 0.044715f * v * v * v)));
            default: return v;
        }
    }

    /** The activation in float64 (the reference). */
    public static double activate(Activation a, double v) {
        switch (a) {
            case RELU: return v < 0 ? 0 : v;
            case RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
            case SILU: return v / (1 + Math.exp(-v));
            case GELU: return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            default: return v;
        }
    }

    /** The epilogue of one value: {@code v} is conv + bias, {@code r} the residual (ignored without one). */
    public float apply(float v, float r) {
        switch (residual) {
            case AFTER_ACTIVATION: return activate(activation, v) + r;
            case BEFORE_ACTIVATION: return activate(activation, v + r);
            default: return activate(activation, v);
        }
    }

    /** {@link #apply(float, float)} in float64. */
    public double apply(double v, double r) {
        switch (residual) {
            case AFTER_ACTIVATION: return activate(activation, v) + r;
            case BEFORE_ACTIVATION: return activate(activation, v + r);
            default: return activate(activation, v);
        }
    }

    /** Applies the epilogue to out[from, to) in place, with the residual at the same indices (null without one). */
    public void applyInPlace(float[] out, float[] residualValues, int from, int to) {
        if (isNone()) {
            return;
        }
        for (int i = from; i < to; i++) {
            out[i] = apply(out[i], residualValues == null ? 0f : residualValues[i]);
        }
    }

    /** Checks that a residual is given exactly when this epilogue adds one, with the output's element count. */
    public void requireResidual(float[] residualValues, long outputElements) {
        if (hasResidual() && (residualValues == null || residualValues.length != outputElements)) {
            throw new InvalidConvolutionException("the epilogue adds a residual " + residual.name().toLowerCase(Locale.ROOT)
                    + ": it needs a residual tensor of the output's " + outputElements + " elements, got "
                    + (residualValues == null ? "none" : residualValues.length + " elements"));
        }
        if (!hasResidual() && residualValues != null) {
            throw new InvalidConvolutionException("a residual tensor was given but the epilogue adds none (use withResidual)");
        }
    }

    /** The two ints the kernels' parameter structs carry: {activation, residual} ordinals. */
    public int[] kernelCodes() {
        return new int[] {activation.ordinal(), residual.ordinal()};
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Epilogue && ((Epilogue) o).activation == activation && ((Epilogue) o).residual == residual;
    }

    @Override
    public int hashCode() {
        return activation.hashCode() * 31 + residual.hashCode();
    }

    @Override
    public String toString() {
        return isNone() ? "none" : activation.label() + (residual == Residual.NONE ? "" : ", residual " + residual.name().toLowerCase(Locale.ROOT));
    }
}
