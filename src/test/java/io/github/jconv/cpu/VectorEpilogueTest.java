package io.github.jconv.cpu;

import io.github.jconv.Epilogue;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link VectorEpilogue} against {@link Epilogue#applyInPlace} bit for bit: every activation and residual placement, on
 * runs of every length and offset around the vector width, with NaN, -0, +-inf and values at ReLU6's edges in both the
 * output and the residual.
 */
class VectorEpilogueTest {
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
                        float[] want = base.clone(), got = base.clone();
                        e.applyInPlace(want, res, from, to);
                        VectorEpilogue.apply(e, got, res, from, to);
                        for (int i = 0; i < n; i++) {
                            assertEquals(Float.floatToRawIntBits(want[i]) == Float.floatToRawIntBits(got[i]) || Float.isNaN(want[i]) && Float.isNaN(got[i]),
                                    true, e + " [" + from + ", " + to + ") at " + i + ": " + want[i] + " vs " + got[i]);
                        }
                        checked++;
                    }
                }
            }
        }
        assertEquals(5 * 3 * 4 * 6, checked);
    }
}
