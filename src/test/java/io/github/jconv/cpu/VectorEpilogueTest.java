package io.github.jconv.cpu;

import io.github.jconv.Epilogue;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link VectorEpilogue} against {@link Epilogue#applyInPlace} bit for bit: every activation and residual placement, on
 * runs of every length and offset around the vector width, with NaN, -0, +-inf and values at ReLU6's edges in both the
 * output and the residual; both through {@link VectorEpilogue#region} and vector by vector ({@link VectorEpilogue#vector},
 * as {@link Pointwise} applies it), and which epilogues fuse.
 */
class VectorEpilogueTest {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Test
    void matchesTheScalarEpilogueBitForBit() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Random r = new Random(7);
        float[] specials = {Float.NaN, -0f, 0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 6f, Math.nextUp(6f), Math.nextDown(6f),
                -Float.MIN_VALUE, Float.MIN_VALUE, -6f};
        int n = 3 * 64 + 5;
        float[] base = new float[n], res = new float[n];
        for (int i = 0; i < n; i++) {
            base[i] = r.nextInt(3) == 0 ? specials[r.nextInt(specials.length)] : (float) (r.nextGaussian() * 5);
            res[i] = r.nextInt(4) == 0 ? specials[r.nextInt(specials.length)] : (float) (r.nextGaussian() * 5);
        }
        int checked = 0;
        for (Epilogue.Activation a : Epilogue.Activation.values()) {
            for (Epilogue.Residual where : Epilogue.Residual.values()) {
                Epilogue e = Epilogue.of(a).withResidual(where);
                for (int from : new int[] {0, 1, 7, 16}) {
                    for (int to : new int[] {from, from + 1, from + 15, from + 16, from + 17, n}) {
                        float[] want = base.clone(), got = base.clone(), perVector = base.clone();
                        e.applyInPlace(want, res, from, to);
                        new VectorEpilogue(e, got, res).region(from, to);
                        sameBits(want, got, e + " [" + from + ", " + to + ")");
                        VectorEpilogue fused = new VectorEpilogue(e, perVector, res);
                        assertEquals(a == Epilogue.Activation.NONE || a == Epilogue.Activation.RELU || a == Epilogue.Activation.RELU6, fused.fuses(), e.toString());
                        if (fused.fuses()) { // a kernel's vectors on their way to the output, then the last elements by region
                            int i = from;
                            for (; i + S.length() <= to; i += S.length()) {
                                fused.vector(FloatVector.fromArray(S, perVector, i), i).intoArray(perVector, i);
                            }
                            fused.region(i, to);
                            sameBits(want, perVector, e + " per vector [" + from + ", " + to + ")");
                        }
                        checked++;
                    }
                }
            }
        }
        assertEquals(5 * 3 * 4 * 6, checked);
    }

    private static void sameBits(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToRawIntBits(want[i]) == Float.floatToRawIntBits(got[i]) || Float.isNaN(want[i]) && Float.isNaN(got[i]),
                    true, what + " at " + i + ": " + want[i] + " vs " + got[i]);
        }
    }
}
