package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** max_pool2d as torch.nn.functional.max_pool2d: windows over the padding, NaN propagating, on the CPU and on cuda-emu. */
class MaxPool2dTest {
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void matchesItsDefinition(String name) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals(name) && b.unavailableReason() == null)
                || name.equals("cpu"), name);
        for (int[] in : new int[][] {{2, 3, 9, 8}, {1, 4, 17, 23}}) {
            float[] x = TestSupport.gaussian(new Random(3), Tensor.elementCount(in));
            x[5] = Float.NaN;
            x[in[3] * in[2] + 1] = Float.NaN; // in the second plane's first row too
            check(name, in, x);
        }
        // 3x3 windows (with the Vector API the CPU's VectorPool, widths below, at and past a vector; without it the loops over
        // rows copied PITCH apart) on maps of one to three rows, a row wider than the pitch (the general loop), and
        // ResNet-50's pool
        for (int[] in : new int[][] {{1, 2, 1, 1}, {1, 2, 2, 3}, {1, 1, 3, 2}, {2, 1, 4, 5}, {1, 2, 5, 1100}, {1, 2, 6, 16}, {1, 2, 7, 33}, {1, 3, 112, 112}}) {
            float[] x = TestSupport.gaussian(new Random(in[3]), Tensor.elementCount(in));
            x[x.length / 2] = Float.NaN;
            x[x.length / 3] = -0f;
            for (int[] ksp : new int[][] {{3, 2, 1}, {3, 1, 1}, {3, 3, 1}, {3, 2, 0}, {3, 1, 0}}) {
                if (in[2] + 2 * ksp[2] >= 3 && in[3] + 2 * ksp[2] >= 3) {
                    check(name, in, x, ksp);
                }
            }
        }
        assertArrayEquals(new int[] {2, 3, 5, 4}, MaxPool2d.outputShape(new int[] {2, 3, 9, 8}, 3, 2, 1), "torch: floor((9 + 2 - 3) / 2) + 1 = 5");
    }

    /**
     * The thread count on the CPU: on 7 threads a crew of 7 runs it (the caller and helpers jconv-cpu-7-h1 to h6; all
     * cores took it before, whatever a network's layers ran on), the same result as on 1; outside 0 to the maximum, the
     * one-line error.
     */
    @Test
    void runsOnTheThreadsAskedFor() {
        int[] in = {1, 64, 20, 20}, out = MaxPool2d.outputShape(in, 3, 2, 1);
        float[] x = TestSupport.gaussian(new Random(7), Tensor.elementCount(in));
        try (Device dev = Device.open("cpu"); DeviceTensor dx = dev.upload(x, in); DeviceTensor one = dev.allocate(out);
             DeviceTensor seven = dev.allocate(out)) {
            MaxPool2d.run(dx, one, 3, 2, 1, 1);
            MaxPool2d.run(dx, seven, 3, 2, 1, 7);
            assertArrayEquals(one.download().data(), seven.download().data());
            assertEquals(6, TestSupport.cpuHelpers(7).size(), "a crew of 7: the caller and 6 helpers");
            InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, () -> MaxPool2d.run(dx, one, 3, 2, 1, -1));
            assertTrue(e.getMessage().startsWith("threads must be between 0"), e.getMessage());
        }
    }

    private static void check(String name, int[] in, float[] x) {
        check(name, in, x, new int[] {3, 2, 1}, new int[] {2, 2, 0}, new int[] {3, 1, 1}, new int[] {2, 3, 1}, new int[] {5, 2, 2},
                new int[] {1, 1, 0});
    }

    private static void check(String name, int[] in, float[] x, int[]... windows) {
        for (int[] ksp : windows) {
            int k = ksp[0], s = ksp[1], p = ksp[2];
            int[] out = MaxPool2d.outputShape(in, k, s, p);
            float[] got;
            try (Device dev = Device.open(name); DeviceTensor dx = dev.upload(x, in); DeviceTensor dy = dev.allocate(out)) {
                MaxPool2d.run(dx, dy, k, s, p);
                got = dy.download().data();
            }
            for (int plane = 0; plane < in[0] * in[1]; plane++) {
                for (int i = 0; i < out[2]; i++) {
                    for (int j = 0; j < out[3]; j++) {
                        float m = Float.NEGATIVE_INFINITY;
                        boolean nan = false;
                        for (int r = 0; r < k; r++) {
                            for (int c = 0; c < k; c++) {
                                int h = i * s - p + r, w = j * s - p + c;
                                if (h >= 0 && h < in[2] && w >= 0 && w < in[3]) {
                                    float v = x[(plane * in[2] + h) * in[3] + w];
                                    nan |= Float.isNaN(v);
                                    m = Math.max(m, v);
                                }
                            }
                        }
                        float g = got[(plane * out[2] + i) * out[3] + j];
                        if (nan) {
                            assertTrue(Float.isNaN(g), name + " k" + k + ": a window with NaN gives NaN");
                        } else {
                            assertEquals(m, g, name + " k" + k + " s" + s + " p" + p + " at " + plane + "," + i + "," + j);
                        }
                    }
                }
            }
        }
    }
}
