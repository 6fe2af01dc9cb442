package io.github.jconv;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The seed notebook's printed example (PyTorch output printed to 4 decimals). */
class SeedExampleTest {
    @Test
    void everyAlgorithmReproducesThePrintedOutput() {
        Tensor x = Tensor.of(new float[] {
                -0.5313f, 0.2610f, -0.7020f, -1.0472f,
                1.6464f, -0.7453f, 0.6006f, -0.4810f,
                0.2911f, -0.3596f, 0.0160f, -0.5955f,
                -0.7642f, -0.5402f, -0.7338f, -0.5263f}, 1, 1, 4, 4);
        Tensor w = Tensor.of(new float[] {
                0.0543f, -0.2173f, -0.0795f,
                -0.0767f, 0.3148f, -0.2659f,
                -0.2994f, -0.0280f, -0.0093f}, 1, 1, 3, 3);
        float[] expected = {-0.6276f, 0.7368f, 0.3146f, 0.2455f};
        // Inputs and outputs were printed to 4 decimals: each output may be off by half a unit of the 4th decimal,
        // plus what the rounding of its 9 inputs and 9 weights (half a unit each) propagates.
        float[] tolerance = new float[4];
        for (int p = 0; p < 2; p++) {
            for (int q = 0; q < 2; q++) {
                double sum = 0;
                for (int r = 0; r < 3; r++) {
                    for (int s = 0; s < 3; s++) {
                        sum += Math.abs(x.data()[(p + r) * 4 + q + s]) + Math.abs(w.data()[r * 3 + s]) + 0.5e-4;
                    }
                }
                tolerance[p * 2 + q] = (float) (0.5e-4 * (1 + sum) + 1e-6);
            }
        }
        java.util.List<Algorithm> cpu = new java.util.ArrayList<>(io.github.jconv.cpu.CpuBackend.INSTANCE.algorithms());
        cpu.add(Algorithm.AUTO);
        for (Algorithm a : cpu) {
            if (a == Algorithm.WINOGRAD && !io.github.jconv.cpu.Sgemm.VECTOR) {
                continue; // it needs the Vector API, absent in the scalar-path test run (it refuses with one line there)
            }
            Tensor y = Jconv.conv2d(x, w, null, ConvSpec.defaults(), ConvOptions.defaults().withAlgorithm(a));
            assertArrayEquals(new int[] {1, 1, 2, 2}, y.shape());
            for (int i = 0; i < 4; i++) {
                assertEquals(expected[i], y.data()[i], tolerance[i], a.label() + " element " + i);
            }
        }
        for (Algorithm a : io.github.jconv.cuda.CudaBackend.EMU.algorithms()) {
            if (a == Algorithm.DEPTHWISE) {
                continue; // C = 1, groups = 1 is depthwise too, but covered above
            }
            Tensor y = Jconv.conv2d(x, w, null, ConvSpec.defaults(), ConvOptions.defaults().withBackend("cuda-emu").withAlgorithm(a));
            for (int i = 0; i < 4; i++) {
                assertEquals(expected[i], y.data()[i], tolerance[i], "cuda-emu/" + a.label() + " element " + i);
            }
        }
    }
}
