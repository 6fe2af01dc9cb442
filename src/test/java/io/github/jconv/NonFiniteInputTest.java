package io.github.jconv;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

/**
 * NaN and infinities in the input reach exactly the outputs that read them, as in PyTorch: every other output
 * stays finite and right. kernel-matrix multiplied one NaN pixel by its matrix's structural zeros and made
 * every output of the sample NaN. A finite call after a non-finite one on the same thread must be clean too
 * (no NaN left in a reused workspace).
 */
class NonFiniteInputTest {
    static Stream<Arguments> cases() {
        return ShapeTableTest.runs().stream().map(r -> Arguments.of(r.layer().name(), r.geometry()));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void nonFiniteValuesReachOnlyTheOutputsThatReadThem(String name, ConvGeometry g) {
        float[][] d = TestSupport.data(g, name.hashCode());
        float[] poisoned = d[0].clone();
        Random rnd = new Random(name.hashCode() * 31L);
        float[] bad = {Float.NaN, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (float v : bad) {
            poisoned[rnd.nextInt(poisoned.length)] = v;
        }
        TestSupport.forEachAlgorithm(g, (backend, a) -> {
            for (int threads : new int[] {1, 3}) {
                String what = backend.name() + "/" + a.label() + "/" + threads + "t";
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                backend.run(a, g, poisoned, d[1], d[2], y, threads);
                TestSupport.assertMatchesReference(what + " (NaN/Inf input)", backend, a, g, poisoned, d[1], d[2], y);
                Arrays.fill(y, Float.NaN);
                backend.run(a, g, d[0], d[1], d[2], y, threads);
                TestSupport.assertMatchesReference(what + " (finite input after a NaN one)", backend, a, g, d[0], d[1], d[2], y);
            }
        });
    }
}
