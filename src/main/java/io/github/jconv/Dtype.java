package io.github.jconv;

import io.github.jconv.cpu.Parallel;

import java.util.Locale;

/**
 * How tensor values are stored: {@link #FP32} (float32), {@link #FP16} (IEEE binary16) or {@link #BF16} (bfloat16). jconv
 * computes in float32 whatever the storage: half-precision operands widen to float32 exactly, the products and sums are
 * float32 (as cuDNN's and PyTorch's half-precision convolutions accumulate), and a half-precision result is rounded
 * once, to nearest even ({@link Precision}). Half precision is the storage of device tensors
 * ({@link Device#allocate(Layout, Dtype, int...)}: two bytes an element on a GPU and on the CPU), of the plans that run on
 * them ({@link ConvPlan.Builder#dtype}) and of the {@code .npy} files the CLI reads and writes ({@link io.github.jconv.io.Npy});
 * host {@link Tensor}s are float32.
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

    /** Bytes per element: 4 for float32, 2 for the half formats. */
    public int bytes() {
        return this == FP32 ? 4 : 2;
    }

    /** v as this half format's 16 bits, rounded to nearest even (FP32 has no 16-bit form: it throws). */
    public short encode(float v) {
        switch (this) {
            case FP16: return Precision.toHalf(v);
            case BF16: return Precision.toBfloat16(v);
            default: throw new IllegalStateException("fp32 has no 16-bit form");
        }
    }

    /** The float value of this half format's 16 bits h (exact; FP32 has no 16-bit form: it throws). */
    public float decode(short h) {
        switch (this) {
            case FP16: return Precision.fromHalf(h);
            case BF16: return Precision.fromBfloat16(h);
            default: throw new IllegalStateException("fp32 has no 16-bit form");
        }
    }

    /** Elements per task of the array conversions (a few microseconds of work). */
    private static final int CHUNK = 1 << 14;

    /**
     * src[0 .. n) encoded into dst[0 .. n), as {@link #encode(float)} bit for bit (a branch-free form of it), spread over
     * {@code threads} (0: all cores) in chunks. Scalar on purpose: a Vector API form needs 16-bit lanes, a change of vector
     * shape, which JDK 17's C2 punished by compiling the other kernels' vector code slowly (VectorShapeGuardTest).
     */
    void encode(float[] src, short[] dst, int n, int threads) {
        if (this == FP32) {
            throw new IllegalStateException("fp32 has no 16-bit form");
        }
        boolean half = this == FP16;
        Parallel.of(threads).forEach((n + CHUNK - 1) / CHUNK, task -> {
            int from = task * CHUNK, end = Math.min(n, from + CHUNK);
            for (int i = from; i < end; i++) {
                dst[i] = half ? fastHalf(src[i]) : fastBfloat16(src[i]);
            }
        });
    }

    /** src[0 .. n) decoded into dst[0 .. n), exactly ({@link #decode(short)}: a table for fp16, a shift for bf16), over {@code threads} in chunks. */
    void decode(short[] src, float[] dst, int n, int threads) {
        if (this == FP32) {
            throw new IllegalStateException("fp32 has no 16-bit form");
        }
        boolean half = this == FP16;
        Parallel.of(threads).forEach((n + CHUNK - 1) / CHUNK, task -> {
            if (half) {
                float[] table = HalfTable.VALUES;
                for (int i = task * CHUNK, end = Math.min(n, i + CHUNK); i < end; i++) {
                    dst[i] = table[src[i] & 0xffff];
                }
            } else {
                for (int i = task * CHUNK, end = Math.min(n, i + CHUNK); i < end; i++) {
                    dst[i] = Float.intBitsToFloat((src[i] & 0xffff) << 16);
                }
            }
        });
    }

    /** The float value of every binary16 pattern (256 KiB, built on first use). */
    private static final class HalfTable {
        static final float[] VALUES = new float[1 << 16];

        static {
            for (int h = 0; h < VALUES.length; h++) {
                VALUES[h] = Precision.fromHalf((short) h);
            }
        }
    }

    /**
     * {@link Precision#toHalf}'s result without a data-dependent branch (a ReLU's output mixes zeros, which take the
     * subnormal path, with normal values: branching on it mispredicted so often that rounding a ResNet-50 trunk's tensors
     * to fp16 took a third of the trunk's time). A normal result rounds by adding just under half of the 13 dropped bits
     * plus the kept lowest bit (ties to even), carrying into the exponent as it should; a subnormal one by float addition
     * of 0.5 (whose sum's low bits are the result, rounded by the FPU); both are computed, and overflow, infinity and NaN's
     * results too, and masks select. About 3 ns an element on a Zen 4 (the branching form: 6 ns on data half zeros, an
     * integer shift for the subnormals: 3.9).
     */
    static short fastHalf(float v) {
        int bits = Float.floatToRawIntBits(v), sign = (bits >>> 16) & 0x8000, a = bits & 0x7fffffff;
        int normal = (a - (112 << 23) + 0xfff + ((a >>> 13) & 1)) >>> 13;
        int sub = Float.floatToRawIntBits(Float.intBitsToFloat(a) + 0.5f) - 0x3f000000; // below 2^-14: multiples of 2^-24
        // masks of all ones (a >= 0, so no difference overflows): below 2^-14; at or above 65520 (rounds to infinity,
        // infinity, NaN); NaN (quiet, the payload's top bits)
        int below = (a - 0x38800000) >> 31, big = (0x477fefff - a) >> 31, nan = (0x7f800000 - a) >> 31;
        int r = (sub & below) | (normal & ~below);
        int special = (0x7c00 & ~nan) | ((0x7e00 | ((a >>> 13) & 0x3ff)) & nan);
        return (short) (sign | (special & big) | (r & ~big));
    }

    /** {@link Precision#toBfloat16}'s result: the top half rounded to nearest even (NaN kept quiet). */
    static short fastBfloat16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** {@code a} with every element rounded to this storage ({@link #round(float)}): a copy, or {@code a} itself for float32. */
    public float[] round(float[] a) {
        if (this == FP32) {
            return a;
        }
        float[] r = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = round(a[i]);
        }
        return r;
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
