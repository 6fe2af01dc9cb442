package io.github.jconv;

import java.util.Locale;

/**
 * The arithmetic a plan may use. {@link #FP32} (the default) is strict float32: every product and sum in float32, as
 * PyTorch computes on the CPU and with {@code allow_tf32 = False} on a GPU. {@link #TF32} allows tensor-core math that
 * rounds the operands to TF32 (10-bit mantissa) before multiplying, accumulating in float32 (PyTorch's
 * {@code allow_tf32 = True}; cuDNN's default math). Nothing switches the mode by itself: the caller opts in, and a
 * backend that cannot run a mode says so when the plan is built. {@link #TF32X3} ({@code 3xtf32}, CUTLASS's 3xTF32)
 * runs on the TF32 tensor cores with FP32-level accuracy: each operand is split into a TF32 "big" part and a TF32
 * "small" remainder and three products are summed (small x big, big x small, big x big). {@link #FP16} and {@link
 * #BF16} round the float32 operands to half precision (to nearest even; fp16 overflows to infinity above 65504) and
 * multiply them on the half-precision tensor cores ({@code mma.sync m16n8k16}), accumulating in float32: oneDNN's
 * {@code fpmath_mode} f16 / bf16, cuDNN's {@code CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION}, on float32 tensors; on tensors
 * stored in that format ({@link ConvPlan.Builder#dtype}) the implicit GEMM loads the 16-bit values as they are.
 *
 * <p>Where they run: {@code cuda} (sm_80 and newer) and {@code cuda-emu} run every mode with the implicit GEMM's
 * tensor-core kernels (other algorithms stay in FP32, which the modes allow); {@code cudnn} runs {@code tf32}
 * (CUDNN_DEFAULT_MATH); the CPU computes in FP32 only.
 */
public enum MathMode {
    FP32, TF32, TF32X3, FP16, BF16;

    /** {@code fp32}, {@code tf32}, {@code 3xtf32}, {@code fp16} or {@code bf16}, as the CLI spells it. */
    public String label() {
        return this == TF32X3 ? "3xtf32" : name().toLowerCase(Locale.ROOT);
    }

    /** True for the modes that run on tensor cores (all but {@code fp32}). */
    public boolean tensorCores() {
        return this != FP32;
    }

    /** True for the modes that round the operands to half precision ({@code fp16}, {@code bf16}). */
    public boolean halfOperands() {
        return this == FP16 || this == BF16;
    }

    /** The storage format whose values this mode multiplies: {@code FP16} / {@code BF16} for those modes, null for the others. */
    public Dtype operandDtype() {
        return this == FP16 ? Dtype.FP16 : this == BF16 ? Dtype.BF16 : null;
    }

    /** The mode that multiplies values of {@code d} as they are ({@link #operandDtype}'s inverse): FP32 for float32. */
    public static MathMode of(Dtype d) {
        return d == Dtype.FP16 ? FP16 : d == Dtype.BF16 ? BF16 : FP32;
    }

    /**
     * An operand as this mode rounds it before multiplying (a copy): TF32 ({@link Precision#toTf32}), FP16 or BF16 (to
     * nearest even, {@link Dtype#round}); FP32 and 3xTF32 (whose split loses nothing FP32 keeps) return it as it is.
     */
    public float[] roundOperand(float[] a) {
        if (this == TF32) {
            return Precision.toTf32(a);
        }
        if (!halfOperands()) {
            return a;
        }
        return operandDtype().round(a);
    }

    /** {@code fp32}, {@code tf32}, {@code 3xtf32}, {@code fp16} or {@code bf16}, any case; anything else fails naming the choices. */
    public static MathMode parse(String s) {
        for (MathMode m : values()) {
            if (m.label().equalsIgnoreCase(s.trim())) {
                return m;
            }
        }
        throw new InvalidConvolutionException("unknown math mode '" + s + "' (fp32, tf32, 3xtf32, fp16, bf16)");
    }
}
