package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reduced-precision roundings against their definitions: every binary16 and bfloat16 value, the midpoints between
 * neighbours (ties to even) and the floats just beside them, the edges (largest finite, overflow, subnormals, underflow,
 * NaN); TF32's ties away from zero; on Java 20+ also against the JDK's own {@code Float.floatToFloat16}.
 */
class PrecisionTest {
    @Test
    void everyHalfRoundTripsAndMidpointsTieToEven() {
        for (int h = 0; h < 0x7c00; h++) { // every finite non-negative binary16, and its negative
            float v = Precision.fromHalf((short) h);
            assertEquals(h, Precision.toHalf(v) & 0xffff, "round trip of 0x" + Integer.toHexString(h));
            assertEquals(h | 0x8000, Precision.toHalf(-v) & 0xffff, "negative round trip of 0x" + Integer.toHexString(h));
            if (h + 1 < 0x7c00) {
                float next = Precision.fromHalf((short) (h + 1));
                assertTrue(next > v, "binary16 values increase");
                float mid = (v + next) / 2; // exact: both have at most 11 significant bits
                int even = (h & 1) == 0 ? h : h + 1;
                assertEquals(even, Precision.toHalf(mid) & 0xffff, "tie at 0x" + Integer.toHexString(h));
                assertEquals(h + 1, Precision.toHalf(Math.nextUp(mid)) & 0xffff);
                assertEquals(h, Precision.toHalf(Math.nextDown(mid)) & 0xffff);
            }
        }
        assertEquals(65504f, Precision.fromHalf((short) 0x7bff));
        assertEquals(0x7bff, Precision.toHalf(65519.99f) & 0xffff, "just below the rounding boundary: the largest finite");
        assertEquals(0x7c00, Precision.toHalf(65520f) & 0xffff, "the boundary rounds (to even) up to infinity");
        assertEquals(0xfc00, Precision.toHalf(Float.NEGATIVE_INFINITY) & 0xffff);
        assertEquals(0, Precision.toHalf(0x1p-25f), "half of the smallest subnormal: tie to even, zero");
        assertEquals(1, Precision.toHalf(Math.nextUp(0x1p-25f)));
        assertEquals(0x8000, Precision.toHalf(-Float.MIN_VALUE) & 0xffff, "a float subnormal: signed zero");
        assertTrue(Float.isNaN(Precision.fromHalf(Precision.toHalf(Float.NaN))));
        assertEquals(0x7e00, Precision.toHalf(Float.NaN) & 0xffff, "the canonical NaN stays quiet");
    }

    @Test
    void everyBfloat16RoundTripsAndMidpointsTieToEven() {
        for (int b = 0; b < 0x7f80; b++) {
            float v = Precision.fromBfloat16((short) b);
            assertEquals(b, Precision.toBfloat16(v) & 0xffff);
            assertEquals(b | 0x8000, Precision.toBfloat16(-v) & 0xffff);
            if (b + 1 < 0x7f80 && b > 0) {
                float mid = Float.intBitsToFloat((b << 16) | 0x8000); // halfway in bits, exactly
                assertEquals((b & 1) == 0 ? b : b + 1, Precision.toBfloat16(mid) & 0xffff);
                assertEquals(b + 1, Precision.toBfloat16(Math.nextUp(mid)) & 0xffff);
                assertEquals(b, Precision.toBfloat16(Math.nextDown(mid)) & 0xffff);
            }
        }
        assertEquals(0x7f80, Precision.toBfloat16(Float.MAX_VALUE) & 0xffff, "rounds past the largest finite: infinity");
        assertTrue(Float.isNaN(Precision.fromBfloat16(Precision.toBfloat16(Float.intBitsToFloat(0x7f800001)))), "a NaN whose payload is in the dropped bits");
    }

    @Test
    void tf32RoundsToNearestWithTiesAwayFromZero() {
        assertEquals(1f + 0x1p-10f, Precision.toTf32(1f + 0x1p-11f), "a tie goes away from zero");
        assertEquals(-(1f + 0x1p-10f), Precision.toTf32(-(1f + 0x1p-11f)));
        assertEquals(1f, Precision.toTf32(Math.nextDown(1f + 0x1p-11f)));
        assertEquals(1f + 0x1p-9f, Precision.toTf32(1f + 0x1p-10f + 0x1p-11f), "ties away, not to even");
        assertEquals(Float.POSITIVE_INFINITY, Precision.toTf32(Float.MAX_VALUE));
        assertTrue(Float.isNaN(Precision.toTf32(Float.NaN)));
        assertEquals(Float.NEGATIVE_INFINITY, Precision.toTf32(Float.NEGATIVE_INFINITY));
        Random rnd = new Random(11);
        for (int i = 0; i < 100_000; i++) {
            float v = Float.intBitsToFloat(rnd.nextInt());
            if (!Float.isFinite(v) || Math.abs(v) > 3e38f) {
                continue;
            }
            float t = Precision.toTf32(v);
            assertEquals(0, Float.floatToRawIntBits(t) & 0x1fff, "10 mantissa bits kept");
            float ulp = Math.ulp(v) * 8192; // TF32's unit in the last place at v's exponent
            assertTrue(Math.abs((double) t - v) <= ulp / 2, v + " -> " + t);
        }
    }

    /** Java 20+ has Float.floatToFloat16 and float16ToFloat: the same bits on random floats and on every half. */
    @Test
    void halfMatchesTheJdkWhereItHasOne() throws Exception {
        Method to, from;
        try {
            to = Float.class.getMethod("floatToFloat16", float.class);
            from = Float.class.getMethod("float16ToFloat", short.class);
        } catch (NoSuchMethodException e) {
            org.junit.jupiter.api.Assumptions.abort("Java " + Runtime.version().feature() + " has no Float.floatToFloat16");
            return;
        }
        Random rnd = new Random(5);
        for (int i = 0; i < 200_000; i++) {
            float v = i % 2 == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(40) - 28));
            if (!Float.isNaN(v)) {
                assertEquals((short) to.invoke(null, v), Precision.toHalf(v), "toHalf(" + v + ")");
            }
        }
        for (int h = 0; h < 0x10000; h++) {
            float mine = Precision.fromHalf((short) h), jdk = (float) from.invoke(null, (short) h);
            assertTrue(Float.isNaN(mine) ? Float.isNaN(jdk) : mine == jdk && (Float.floatToRawIntBits(mine) == Float.floatToRawIntBits(jdk)));
        }
    }

    /** The TF32 oracle rounds the operands (not the bias): equal to FP32's on TF32-exact data, ~2^-11 apart on random data. */
    @Test
    void theTf32ReferenceRoundsTheOperands() {
        ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 8, 6, 6}, new int[] {4, 8, 3, 3}, new int[] {4}, ConvSpec.builder().padding(1).build());
        io.github.jconv.cpu.Parallel par = io.github.jconv.cpu.Parallel.of(1);
        Random rnd = new Random(3);
        float[] x = new float[8 * 36], w = new float[4 * 8 * 9], b = {0.1f, 0.2f, 0.3f, 1e-4f};
        for (int i = 0; i < x.length; i++) {
            x[i] = rnd.nextInt(200) - 100; // integers: exact in TF32
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (rnd.nextInt(64) - 32) / 16f;
        }
        assertEquals(java.util.Arrays.toString(io.github.jconv.cpu.ReferenceConv.compute(g, x, w, b, par)),
                java.util.Arrays.toString(io.github.jconv.cpu.ReferenceConv.compute(g, MathMode.TF32, x, w, b, par)));
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        double[] fp32 = io.github.jconv.cpu.ReferenceConv.compute(g, x, w, b, par);
        double[] tf32 = io.github.jconv.cpu.ReferenceConv.compute(g, MathMode.TF32, x, w, b, par);
        double diff = 0, scale = 0;
        for (int i = 0; i < fp32.length; i++) {
            diff = Math.max(diff, Math.abs(fp32[i] - tf32[i]));
            scale = Math.max(scale, Math.abs(fp32[i]));
        }
        assertTrue(diff > 0 && diff / scale < 2e-3, "TF32 rounding moves the result by " + diff / scale);
    }
}
