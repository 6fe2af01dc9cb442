package io.github.jconv;

/**
 * Rounding to the reduced-precision formats that tensor cores compute in and half-precision tensors are stored in,
 * bit-exact with the hardware (Java 17 has no half type; {@code Float.floatToFloat16} arrived in Java 20):
 * <ul>
 *   <li>TF32 (1 sign, 8 exponent, 10 mantissa bits, kept in a float's 32 bits): {@link #toTf32} rounds as PTX's
 *       {@code cvt.rna.tf32.f32} does, to nearest with ties away from zero; infinities and NaN pass unchanged, a value
 *       that rounds past the largest finite one becomes infinity;</li>
 *   <li>IEEE binary16 ({@link #toHalf} / {@link #fromHalf}) and bfloat16 ({@link #toBfloat16} / {@link #fromBfloat16}):
 *       round to nearest, ties to even (as {@code cvt.rn.f16.f32} and {@code cvt.rn.bf16.f32}), overflow to infinity,
 *       gradual underflow to subnormals (binary16), NaN kept as a quiet NaN with the sign and the payload's top bits.</li>
 * </ul>
 * A CPU reference that rounds its operands the same way ({@link io.github.jconv.cpu.ReferenceConv#compute(ConvGeometry,
 * MathMode, float[], float[], float[], io.github.jconv.cpu.Parallel)}) is what a tensor-core kernel's result is compared with.
 */
public final class Precision {
    private Precision() {
    }

    /** v rounded to TF32 (cvt.rna.tf32.f32): the low 13 mantissa bits cleared after adding half of their weight. */
    public static float toTf32(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7f800000) == 0x7f800000) {
            return v; // infinity or NaN
        }
        return Float.intBitsToFloat((bits + 0x1000) & 0xffffe000);
    }

    /** A copy of {@code a} with every element rounded to TF32. */
    public static float[] toTf32(float[] a) {
        float[] out = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = toTf32(a[i]);
        }
        return out;
    }

    /** v as IEEE binary16 bits, rounded to nearest even. */
    public static short toHalf(float v) {
        int bits = Float.floatToRawIntBits(v);
        int sign = (bits >>> 16) & 0x8000, exp = (bits >>> 23) & 0xff, mant = bits & 0x7fffff;
        if (exp == 0xff) {
            return (short) (sign | 0x7c00 | (mant == 0 ? 0 : 0x200 | (mant >>> 13)));
        }
        int e = exp - 127 + 15; // the binary16 exponent field this magnitude would have
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) { // a subnormal (or zero) binary16: the 24-bit significand shifted into units of 2^-24
            int shift = 14 - e;
            if (exp == 0 || shift > 24) {
                return (short) sign; // float subnormals and anything below half of 2^-24
            }
            int m = mant | 0x800000;
            return (short) (sign | roundShift(m, shift));
        }
        return (short) (sign | roundShift((e << 23) | mant, 13)); // a carry into the exponent (up to infinity) is right
    }

    /** The float value of binary16 bits h (exact). */
    public static float fromHalf(short h) {
        int sign = (h & 0x8000) << 16, exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) { // zero or subnormal: mant * 2^-24
            float m = mant * 0x1p-24f;
            return sign == 0 ? m : -m;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** v as bfloat16 bits (the float's top 16 bits), rounded to nearest even. */
    public static short toBfloat16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7f800000) == 0x7f800000 && (bits & 0x7fffff) != 0) {
            return (short) ((bits >>> 16) | 0x40); // NaN, quiet
        }
        return (short) roundShift(bits, 16);
    }

    /** The float value of bfloat16 bits b (exact). */
    public static float fromBfloat16(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** m >> shift rounded to nearest, ties to even (1 <= shift <= 24; m non-negative). */
    private static int roundShift(int m, int shift) {
        int r = m >>> shift, rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
        return rem > half || (rem == half && (r & 1) == 1) ? r + 1 : r;
    }
}
