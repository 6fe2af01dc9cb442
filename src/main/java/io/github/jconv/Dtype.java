package io.github.jconv;

import io.github.jconv.cpu.HalfVectors;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.Sgemm;

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
     * src[0 .. n) encoded into dst[0 .. n), as {@link #encode(float)} bit for bit, spread over {@code threads} (0: all
     * cores) in chunks: with the Vector API branch-free ({@link HalfVectors}), else a branch-light scalar form.
     */
    void encode(float[] src, short[] dst, int n, int threads) {
        if (this == FP32) {
            throw new IllegalStateException("fp32 has no 16-bit form");
        }
        boolean half = this == FP16;
        Parallel.of(threads).forEach((n + CHUNK - 1) / CHUNK, task -> {
            int from = task * CHUNK, end = Math.min(n, from + CHUNK);
            if (Sgemm.VECTOR) {
                HalfVectors.encode(src, dst, from, end, !half);
                return;
            }
            for (int i = from; i < end; i++) {
                dst[i] = half ? fastHalf(src[i]) : fastBfloat16(src[i]);
            }
        });
    }

    /**
     * src[0 .. n) decoded into dst[0 .. n), exactly ({@link #decode(short)}), spread over {@code threads} in chunks (with the
     * Vector API {@link HalfVectors}, else a table for fp16 and a shift for bf16).
     */
    void decode(short[] src, float[] dst, int n, int threads) {
        if (this == FP32) {
            throw new IllegalStateException("fp32 has no 16-bit form");
        }
        boolean half = this == FP16;
        Parallel.of(threads).forEach((n + CHUNK - 1) / CHUNK, task -> {
            if (Sgemm.VECTOR) {
                HalfVectors.decode(src, dst, task * CHUNK, Math.min(n, task * CHUNK + CHUNK), !half);
                return;
            }
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
     * {@link Precision#toHalf}'s result by the common path of float-to-half conversions: a normal result rounds by adding
     * just under half of the 13 dropped bits plus the kept lowest bit (ties to even), carrying into the exponent as it
     * should; a subnormal one by float addition of 0.5 (whose sum's low bits are the result, rounded by the FPU).
     */
    static short fastHalf(float v) {
        int bits = Float.floatToRawIntBits(v), sign = (bits >>> 16) & 0x8000, a = bits & 0x7fffffff;
        if (a >= 0x477ff000) { // at or above 65520 (rounds to infinity), infinity or NaN
            return a > 0x7f800000 ? Precision.toHalf(v) : (short) (sign | 0x7c00);
        }
        if (a < 0x38800000) { // below 2^-14: a multiple of 2^-24; 0.5f + |v| keeps it in its last 11 bits, rounded to even
            return (short) (sign | (Float.floatToRawIntBits(Float.intBitsToFloat(a) + 0.5f) - 0x3f000000));
        }
        return (short) (sign | ((a - (112 << 23) + 0xfff + ((a >>> 13) & 1)) >>> 13));
    }

    /** {@link Precision#toBfloat16}'s result: the top half rounded to nearest even (NaN kept quiet). */
    static short fastBfloat16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
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
