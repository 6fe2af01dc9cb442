package io.github.jconv;

import java.util.Locale;

/**
 * The arithmetic a plan may use. {@link #FP32} (the default) is strict float32: every product and sum in float32, as
 * PyTorch computes on the CPU and with {@code allow_tf32 = False} on a GPU. {@link #TF32} allows tensor-core math that
 * rounds the operands to TF32 (10-bit mantissa) before multiplying, accumulating in float32 (PyTorch's
 * {@code allow_tf32 = True}; cuDNN's default math). Nothing switches the mode by itself: the caller opts in, and a
 * backend that cannot run a mode says so when the plan is built. {@link #TF32X3} ({@code 3xtf32}, CUTLASS's 3xTF32)
 * runs on the TF32 tensor cores with FP32-level accuracy: each operand is split into a TF32 "big" part and a TF32
 * "small" remainder and three products are summed (small x big, big x small, big x big).
 *
 * <p>Where they run: {@code cuda} (sm_80 and newer) and {@code cuda-emu} run {@code tf32} and {@code 3xtf32} with the
 * implicit GEMM's tensor-core kernels (other algorithms stay in FP32, which the mode allows); {@code cudnn} runs
 * {@code tf32} (CUDNN_DEFAULT_MATH); the CPU computes in FP32 only.
 */
public enum MathMode {
    FP32, TF32, TF32X3;

    /** {@code fp32}, {@code tf32} or {@code 3xtf32}, as the CLI spells it. */
    public String label() {
        return this == TF32X3 ? "3xtf32" : name().toLowerCase(Locale.ROOT);
    }

    /** True for the modes that run on TF32 tensor cores ({@code tf32}, {@code 3xtf32}). */
    public boolean tensorCores() {
        return this != FP32;
    }

    /** {@code fp32}, {@code tf32} or {@code 3xtf32}, any case; anything else fails naming the choices. */
    public static MathMode parse(String s) {
        for (MathMode m : values()) {
            if (m.label().equalsIgnoreCase(s.trim())) {
                return m;
            }
        }
        throw new InvalidConvolutionException("unknown math mode '" + s + "' (fp32, tf32, 3xtf32)");
    }
}
