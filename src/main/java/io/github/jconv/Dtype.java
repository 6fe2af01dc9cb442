package io.github.jconv;

import java.util.Locale;

/**
 * How tensor values are stored: {@link #FP32} (float32), {@link #FP16} (IEEE binary16) or {@link #BF16} (bfloat16). jconv
 * computes in float32 whatever the storage: half-precision operands widen to float32 exactly, the products and sums are
 * float32 (as cuDNN's and PyTorch's half-precision convolutions accumulate), and a half-precision result is rounded
 * once, to nearest even ({@link Precision}). For now half precision is a storage format of the {@code .npy} files the
 * CLI reads and writes ({@link io.github.jconv.io.Npy}); tensors in memory are float32.
 */
public enum Dtype {
    FP32("<f4"), FP16("<f2"), BF16("<V2");

    private final String npyDescr;

    Dtype(String npyDescr) {
        this.npyDescr = npyDescr;
    }

    /** {@code fp32}, {@code fp16} or {@code bf16}, as the CLI spells it. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The {@code .npy} dtype jconv writes: {@code <f4}, {@code <f2}, and for bfloat16, which NumPy has no type for, 2-byte
     * void {@code <V2} holding the bits little-endian (what {@code np.save} writes for an {@code ml_dtypes.bfloat16} array;
     * {@code np.load(f).view(ml_dtypes.bfloat16)} reads it back).
     */
    public String npyDescr() {
        return npyDescr;
    }

    /** v rounded to this storage (to nearest even; float32: v itself). */
    public float round(float v) {
        switch (this) {
            case FP16: return Precision.fromHalf(Precision.toHalf(v));
            case BF16: return Precision.fromBfloat16(Precision.toBfloat16(v));
            default: return v;
        }
    }

    /** {@code fp32}, {@code fp16} or {@code bf16} (also {@code float32}, {@code float16}, {@code half}, {@code bfloat16}), any case. */
    public static Dtype parse(String s) {
        switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "fp32": case "float32": return FP32;
            case "fp16": case "float16": case "half": return FP16;
            case "bf16": case "bfloat16": return BF16;
            default: throw new InvalidConvolutionException("unknown dtype '" + s + "' (fp32, fp16, bf16)");
        }
    }
}
