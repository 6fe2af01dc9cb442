package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConvGeometryTest {
    /** PyTorch's documented Conv2d formula, written independently: floor((in + 2p - d(k-1) - 1) / s + 1). */
    private static int torchConvOut(int in, int pad, int k, int s, int d) {
        return Math.floorDiv(in + 2 * pad - d * (k - 1) - 1, s) + 1;
    }

    /** PyTorch's documented ConvTranspose2d formula: (in - 1) s - 2p + d(k-1) + op + 1. */
    private static int torchTransposedOut(int in, int pad, int k, int s, int d, int op) {
        return (in - 1) * s - 2 * pad + d * (k - 1) + op + 1;
    }

    @Test
    void outputSizesMatchPyTorchFormulasOverAGrid() {
        int checked = 0;
        for (int in = 1; in <= 12; in++) {
            for (int k = 1; k <= 5; k++) {
                for (int s = 1; s <= 4; s++) {
                    for (int d = 1; d <= 3; d++) {
                        for (int pad = 0; pad <= 3; pad++) {
                            ConvSpec spec = ConvSpec.builder().stride(s, 1).dilation(d, 1).padding(pad, 0).build();
                            int expected = torchConvOut(in, pad, k, s, d);
                            if (d * (k - 1) + 1 > in + 2 * pad) {
                                int[] x = {1, 1, in, 3};
                                int[] w = {1, 1, k, 1};
                                assertThrows(InvalidConvolutionException.class, () -> ConvGeometry.conv2d(x, w, null, spec));
                                continue;
                            }
                            ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 1, in, 3}, new int[] {1, 1, k, 1}, null, spec);
                            assertEquals(expected, g.p, "conv out in=" + in + " k=" + k + " s=" + s + " d=" + d + " p=" + pad);
                            for (int op = 0; op < Math.max(s, d); op++) {
                                int t = torchTransposedOut(in, pad, k, s, d, op);
                                ConvSpec ts = spec.toBuilder().outputPadding(op, 0).build();
                                if (t < 1) {
                                    int[] x = {1, 1, in, 3};
                                    int[] w = {1, 1, k, 1};
                                    assertThrows(InvalidConvolutionException.class, () -> ConvGeometry.convTranspose2d(x, w, null, ts));
                                    continue;
                                }
                                ConvGeometry tg = ConvGeometry.convTranspose2d(new int[] {1, 1, in, 3}, new int[] {1, 1, k, 1}, null, ts);
                                assertEquals(t, tg.h, "transposed out in=" + in + " k=" + k + " s=" + s + " d=" + d + " op=" + op);
                                checked++;
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 1000, "grid too small: " + checked);
    }

    @ParameterizedTest
    @CsvSource({
            // in, k, stride, dilation, upperBegin, upperEnd (ONNX SAME_UPPER), out
            "5, 3, 2, 1, 1, 1, 3",
            "6, 3, 2, 1, 0, 1, 3",
            "4, 4, 1, 1, 1, 2, 4",
            "7, 3, 1, 2, 2, 2, 7",
            "1, 5, 3, 1, 2, 2, 1",
            "10, 1, 3, 1, 0, 0, 4",
            "8, 2, 4, 1, 0, 0, 2",
    })
    void samePaddingFollowsOnnx(int in, int k, int s, int d, int begin, int end, int out) {
        assertArrayEquals(new int[] {begin, end}, ConvGeometry.samePadding(in, k, s, d, true));
        assertArrayEquals(new int[] {end, begin}, ConvGeometry.samePadding(in, k, s, d, false));
        ConvSpec spec = ConvSpec.builder().stride(s).dilation(d).padding(Padding.same()).build();
        ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 1, in, in}, new int[] {1, 1, k, k}, null, spec);
        assertEquals(out, g.p);
        assertEquals((in + s - 1) / s, g.q);
        assertEquals(begin, g.padTop);
        assertEquals(end, g.padBottom);
        ConvGeometry lower = ConvGeometry.conv2d(new int[] {1, 1, in, in}, new int[] {1, 1, k, k}, null,
                spec.toBuilder().padding(Padding.sameLower()).build());
        assertEquals(end, lower.padTop);
        assertEquals(begin, lower.padBottom);
    }

    @Test
    void validMeansNoPaddingAndAsymmetricPaddingIsPerSide() {
        ConvGeometry v = ConvGeometry.conv2d(new int[] {1, 1, 9, 9}, new int[] {1, 1, 3, 3}, null,
                ConvSpec.builder().padding(Padding.valid()).build());
        assertEquals(7, v.p);
        ConvGeometry a = ConvGeometry.conv2d(new int[] {1, 1, 9, 9}, new int[] {1, 1, 3, 3}, null,
                ConvSpec.builder().padding(Padding.of(0, 2, 1, 3)).build());
        assertEquals(9, a.p);
        assertEquals(11, a.q);
    }

    @Test
    void flopsAndGemmMappingFollowCutlass() {
        ConvGeometry g = ConvGeometry.conv2d(new int[] {8, 64, 56, 56}, new int[] {128, 16, 3, 3}, new int[] {128},
                ConvSpec.builder().padding(1).groups(4).build());
        assertEquals(8L * 56 * 56, g.gemmM());
        assertEquals(32, g.gemmN());
        assertEquals(16 * 9, g.gemmK());
        assertEquals(2L * 8 * 128 * 56 * 56 * 16 * 9, g.flops());
        assertArrayEquals(new int[] {8, 128, 56, 56}, g.outputShape());
        ConvGeometry t = ConvGeometry.convTranspose2d(new int[] {2, 6, 5, 5}, new int[] {6, 4, 3, 3}, new int[] {8},
                ConvSpec.builder().stride(2).groups(2).padding(1).outputPadding(1).build());
        assertArrayEquals(new int[] {2, 8, 10, 10}, t.outputShape());
        assertArrayEquals(new int[] {2, 6, 5, 5}, t.inputShape());
        assertEquals(2L * 10 * 10, t.gemmM());
        assertEquals(4, t.gemmN());
        assertEquals(3 * 9, t.gemmK());
        assertEquals(2L * 2 * 6 * 5 * 5 * 4 * 9, t.flops());
    }

    @Test
    void depthwiseAndPointwiseAreRecognised() {
        ConvGeometry dw = ConvGeometry.conv2d(new int[] {1, 8, 5, 5}, new int[] {16, 1, 3, 3}, null,
                ConvSpec.builder().groups(8).build());
        assertTrue(dw.isDepthwise());
        assertFalse(dw.isPointwise());
        ConvGeometry pw = ConvGeometry.conv2d(new int[] {1, 8, 5, 5}, new int[] {16, 8, 1, 1}, null, ConvSpec.defaults());
        assertTrue(pw.isPointwise());
        assertFalse(pw.isDepthwise());
        // A 1x1 transposed conv with dilation > 1 may have output padding, so its output is not its input size.
        ConvGeometry t = ConvGeometry.convTranspose2d(new int[] {1, 8, 5, 5}, new int[] {8, 4, 1, 1}, null,
                ConvSpec.builder().dilation(2).outputPadding(1).build());
        assertEquals(6, t.h);
        assertFalse(t.isPointwise());
        // unpadded 1x1 at any stride, forward only
        assertTrue(pw.isUnpadded1x1());
        ConvGeometry strided = ConvGeometry.conv2d(new int[] {1, 8, 9, 9}, new int[] {16, 8, 1, 1}, null, ConvSpec.builder().stride(2).build());
        assertTrue(strided.isUnpadded1x1());
        assertFalse(strided.isPointwise());
        assertFalse(ConvGeometry.conv2d(new int[] {1, 8, 5, 5}, new int[] {16, 8, 1, 1}, null, ConvSpec.builder().padding(1).build())
                .isUnpadded1x1());
        assertFalse(dw.isUnpadded1x1());
        assertFalse(ConvGeometry.convTranspose2d(new int[] {1, 8, 5, 5}, new int[] {8, 4, 1, 1}, null, ConvSpec.defaults()).isUnpadded1x1());
    }
}
