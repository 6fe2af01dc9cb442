package io.github.jconv;

import java.util.Locale;

/**
 * The arithmetic a plan may use. {@link #FP32} (the default) is strict float32: every product and sum in float32, as
 * PyTorch computes on the CPU and with {@code allow_tf32 = False} on a GPU. {@link #TF32} allows tensor-core math that
 * rounds the operands to TF32 (10-bit mantissa) before multiplying, accumulating in float32 (PyTorch's
 * {@code allow_tf32 = True}; cuDNN's default math). Nothing switches the mode by itself: the caller opts in, and a
 * backend that cannot run a mode says so when the plan is built. Today only the {@code cudnn} backend runs
 * {@code TF32} (cuDNN's CUDNN_DEFAULT_MATH); jconv's own kernels compute in FP32.
 */
public enum MathMode {
    FP32, TF32;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** {@code fp32} or {@code tf32}, any case; anything else fails naming the choices. */
    public static MathMode parse(String s) {
        for (MathMode m : values()) {
            if (m.label().equalsIgnoreCase(s.trim())) {
                return m;
            }
        }
        throw new InvalidConvolutionException("unknown math mode '" + s + "' (fp32, tf32)");
    }
}
