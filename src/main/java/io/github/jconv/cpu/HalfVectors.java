package io.github.jconv.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 <-> fp16 / bf16 array conversion with the Vector API (loaded only when the module is present; {@code Dtype}
 * calls it when {@link Sgemm#VECTOR}), bit for bit {@link io.github.jconv.Precision}'s scalar rounding: branch-free, so
 * data mixing zeros (a ReLU's output) and normal values costs no mispredicted branches, which made the scalar fp16
 * rounding a third of a half-precision ResNet-50 trunk on the CPU. Each vector of floats is reinterpreted as ints, the
 * format's cases (normal, subnormal, overflow, NaN) computed side by side and blended, and narrowed to 16-bit lanes
 * (and back: widened, cases blended, reinterpreted as floats).
 */
public final class HalfVectors {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final int N = F.length();

    private HalfVectors() {
    }

    /** dst[from .. to) = src[from .. to) rounded to nearest even to fp16 ({@code bf16} false) or bfloat16 bits. */
    public static void encode(float[] src, short[] dst, int from, int to, boolean bf16) {
        int i = from;
        for (; i + N <= to; i += N) {
            IntVector bits = FloatVector.fromArray(F, src, i).reinterpretAsInts();
            IntVector r = bf16 ? bfloat16(bits) : half(bits);
            ((ShortVector) r.convertShape(VectorOperators.I2S, H, 0)).intoArray(dst, i);
        }
        for (; i < to; i++) {
            dst[i] = bf16 ? io.github.jconv.Precision.toBfloat16(src[i]) : io.github.jconv.Precision.toHalf(src[i]);
        }
    }

    /** dst[from .. to) = the float values of the fp16 ({@code bf16} false) or bfloat16 bits src[from .. to) (exact). */
    public static void decode(short[] src, float[] dst, int from, int to, boolean bf16) {
        int i = from;
        for (; i + N <= to; i += N) {
            IntVector h = ((IntVector) ShortVector.fromArray(H, src, i).convertShape(VectorOperators.S2I, I, 0)).and(0xffff);
            IntVector r = bf16 ? h.lanewise(VectorOperators.LSHL, 16) : widenHalf(h);
            r.reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < to; i++) {
            dst[i] = bf16 ? io.github.jconv.Precision.fromBfloat16(src[i]) : io.github.jconv.Precision.fromHalf(src[i]);
        }
    }

    /** fp16 bits (in the low 16 of each lane) of the floats whose bits are {@code bits}: Precision.toHalf's cases. */
    private static IntVector half(IntVector bits) {
        IntVector sign = bits.lanewise(VectorOperators.LSHR, 16).and(0x8000);
        IntVector a = bits.and(0x7fffffff);
        IntVector kept = a.lanewise(VectorOperators.LSHR, 13);
        // normal: rebias 127 -> 15, add just under half of the 13 dropped bits plus the kept lowest one (ties to even)
        IntVector r = a.add(0xfff - (112 << 23)).add(kept.and(1)).lanewise(VectorOperators.LSHR, 13);
        // below 2^-14: 0.5f + |v| rounds |v| to a multiple of 2^-24 in its low bits
        IntVector sub = a.reinterpretAsFloats().add(0.5f).reinterpretAsInts().sub(0x3f000000);
        r = r.blend(sub, a.compare(VectorOperators.LT, 0x38800000));
        r = r.blend(0x7c00, a.compare(VectorOperators.GE, 0x477ff000)); // 65520 and above, infinity: infinity
        VectorMask<Integer> nan = a.compare(VectorOperators.GT, 0x7f800000);
        r = r.blend(kept.and(0x3ff).or(0x7e00), nan); // NaN: quiet, the payload's top bits
        return r.or(sign);
    }

    /** bfloat16 bits of the floats whose bits are {@code bits}: the top half rounded to nearest even, NaN kept quiet. */
    private static IntVector bfloat16(IntVector bits) {
        IntVector top = bits.lanewise(VectorOperators.LSHR, 16);
        IntVector r = bits.add(0x7fff).add(top.and(1)).lanewise(VectorOperators.LSHR, 16);
        return r.blend(top.or(0x40), bits.and(0x7fffffff).compare(VectorOperators.GT, 0x7f800000));
    }

    /** Float bits of fp16 values h (0 <= h < 2^16 in each lane): Precision.fromHalf's cases. */
    private static IntVector widenHalf(IntVector h) {
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector e = h.lanewise(VectorOperators.LSHR, 10).and(0x1f), m = h.and(0x3ff);
        IntVector mant = m.lanewise(VectorOperators.LSHL, 13);
        IntVector r = e.add(112).lanewise(VectorOperators.LSHL, 23).or(mant);
        r = r.blend(mant.or(0x7f800000), e.compare(VectorOperators.EQ, 0x1f));
        IntVector sub = ((FloatVector) m.convert(VectorOperators.I2F, 0)).mul(0x1p-24f).reinterpretAsInts();
        r = r.blend(sub, e.compare(VectorOperators.EQ, 0));
        return r.or(sign);
    }
}
