package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * ONNX ConvTranspose's {@code auto_pad} SAME_UPPER / SAME_LOWER and {@code output_shape}, against the formulas of
 * the ONNX operator spec written out here independently of {@link ConvGeometry}:
 * <pre>
 *   SAME_*: output_shape[i] = input_shape[i] * strides[i]
 *   total_padding[i] = stride[i] * (input_size[i] - 1) + output_padding[i] + ((kernel_shape[i] - 1) * dilations[i] + 1)
 *                      - output_shape[i]
 *   SAME_UPPER: pads[start_i] = total_padding[i] / 2; pads[end_i] = total_padding[i] - (total_padding[i] / 2)
 *   else:       pads[start_i] = total_padding[i] - (total_padding[i] / 2); pads[end_i] = (total_padding[i] / 2)
 * </pre>
 * (floor division, as the ONNX reference implementation's {@code //}), and the values against the operator's
 * definition: the full (uncropped) transposed convolution scattered naively, then output[o] = full[o + pads[start]]
 * (bias only where that lies beyond the full output).
 */
class OnnxConvTransposeTest {
    /** {begin, end} by the spec's formulas. */
    static long[] onnxPads(int in, int out, int kernel, int stride, int dilation, int outputPadding, boolean upper) {
        long total = (long) stride * (in - 1) + outputPadding + ((long) (kernel - 1) * dilation + 1) - out;
        long half = Math.floorDiv(total, 2);
        return upper ? new long[] {half, total - half} : new long[] {total - half, half};
    }

    @Test
    void sameGivesInputTimesStrideWithTheSpecsPads() {
        int checked = 0, refused = 0;
        for (int in = 1; in <= 6; in++) {
            for (int stride = 1; stride <= 3; stride++) {
                for (int kernel = 1; kernel <= 4; kernel++) {
                    for (int dil = 1; dil <= 2; dil++) {
                        for (int op = 0; op < Math.max(stride, dil); op++) {
                            for (boolean upper : new boolean[] {true, false}) {
                                int out = in * stride;
                                long[] pads = onnxPads(in, out, kernel, stride, dil, op, upper);
                                ConvSpec spec = ConvSpec.builder().stride(stride, 1).dilation(dil, 1).outputPadding(op, 0)
                                        .padding(upper ? Padding.same() : Padding.sameLower()).build();
                                int[] x = {1, 1, in, 1}, w = {1, 1, kernel, 1};
                                if (pads[0] < 0) {
                                    InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class,
                                            () -> ConvGeometry.convTranspose2d(x, w, null, spec));
                                    assertTrue(e.getMessage().contains("needs padding " + pads[0] + " at the start"), e.getMessage());
                                    refused++;
                                    continue;
                                }
                                ConvGeometry g = ConvGeometry.convTranspose2d(x, w, null, spec);
                                assertEquals(out, g.h, spec + " in=" + in + " k=" + kernel);
                                assertEquals(pads[0], g.padTop);
                                assertEquals(Math.max(0, pads[1]), g.padBottom);
                                assertValuesFollowTheDefinition(g, (int) pads[0], in * 1000 + stride * 100 + kernel * 10 + dil);
                                checked++;
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 500 && refused > 0, checked + " checked, " + refused + " refused");
    }

    @Test
    void outputSizeDerivesThePadsAsTheSpecSays() {
        int checked = 0;
        for (int in = 1; in <= 5; in++) {
            for (int stride = 1; stride <= 3; stride++) {
                for (int kernel = 1; kernel <= 4; kernel++) {
                    int full = (in - 1) * stride + kernel;
                    for (int out = 1; out <= full + stride; out++) {
                        for (Padding mode : new Padding[] {Padding.of(0), Padding.same(), Padding.sameLower()}) {
                            boolean upper = mode.equals(Padding.same());
                            long[] pads = onnxPads(in, out, kernel, stride, 1, 0, upper);
                            ConvSpec spec = ConvSpec.builder().stride(1, stride).padding(mode).outputSize(1, out).build();
                            int[] x = {2, 3, 1, in}, w = {3, 2, 1, kernel};
                            boolean fits = pads[0] >= 0 && -Math.min(0, pads[1]) < stride;
                            if (!fits) {
                                assertThrows(InvalidConvolutionException.class, () -> ConvGeometry.convTranspose2d(x, w, new int[] {2}, spec));
                                continue;
                            }
                            ConvGeometry g = ConvGeometry.convTranspose2d(x, w, new int[] {2}, spec);
                            assertEquals(out, g.w);
                            assertEquals(pads[0], g.padLeft);
                            assertValuesFollowTheDefinition(g, (int) pads[0], out * 7 + in);
                            checked++;
                        }
                    }
                }
            }
        }
        assertTrue(checked > 300, checked + " checked");
    }

    @Test
    void outputSizeRefusesWhatItCannotMean() {
        InvalidConvolutionException both = assertThrows(InvalidConvolutionException.class,
                () -> ConvSpec.builder().padding(1).outputSize(4, 4).build());
        assertTrue(both.getMessage().contains("cannot both be given"), both.getMessage());
        InvalidConvolutionException conv = assertThrows(InvalidConvolutionException.class,
                () -> ConvGeometry.conv2d(new int[] {1, 1, 4, 4}, new int[] {1, 1, 3, 3}, null, ConvSpec.builder().outputSize(2, 2).build()));
        assertTrue(conv.getMessage().contains("conv_transpose2d request"), conv.getMessage());
        InvalidConvolutionException large = assertThrows(InvalidConvolutionException.class,
                () -> ConvGeometry.convTranspose2d(new int[] {1, 1, 3, 3}, new int[] {1, 1, 3, 3}, null,
                        ConvSpec.builder().stride(2).outputSize(9, 7).build()));
        assertTrue(large.getMessage().contains("output size 9 along the height is 2 larger than the full output 7; at most 1 more is possible"),
                large.getMessage());
    }

    /**
     * Runs g (a transposed convolution whose output starts at row/column {@code begin} of the full output along the
     * axis that is not 1) on every algorithm of every available backend and compares it with the operator's definition, computed here.
     */
    private static void assertValuesFollowTheDefinition(ConvGeometry g, int begin, long seed) {
        Random rnd = new Random(seed);
        float[] x = TestSupport.gaussian(rnd, Tensor.elementCount(g.inputShape()));
        float[] w = TestSupport.gaussian(rnd, Tensor.elementCount(g.weightShape()));
        float[] b = g.hasBias ? TestSupport.gaussian(rnd, g.biasLength()) : null;
        boolean alongH = g.p > 1 || g.r > 1 || g.strideH > 1;
        double[] want = definition(g, x, w, b, alongH ? begin : g.padTop, alongH ? g.padLeft : begin);
        TestSupport.forEachAlgorithm(g, (backend, a) -> {
            float[] y = new float[want.length];
            backend.run(a, g, x, w, b, y, 1);
            for (int i = 0; i < y.length; i++) {
                if (Math.abs(y[i] - want[i]) > 1e-4 * (1 + Math.abs(want[i]))) {
                    fail(backend.name() + "/" + a + " on " + g + ": element " + i + " is " + y[i] + ", the ONNX definition gives " + want[i]);
                }
            }
        });
    }

    /** conv_transpose2d by its definition: scatter every input into the full output, then crop from (top, left). */
    private static double[] definition(ConvGeometry g, float[] x, float[] w, float[] b, int top, int left) {
        int fullH = (g.p - 1) * g.strideH + g.effectiveR(), fullW = (g.q - 1) * g.strideW + g.effectiveS();
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        double[] out = new double[g.n * g.c * g.h * g.w];
        for (int n = 0; n < g.n; n++) {
            for (int c = 0; c < g.c; c++) {
                double[] full = new double[fullH * fullW];
                int grp = c / cg;
                for (int k = grp * kg; k < (grp + 1) * kg; k++) {
                    for (int p = 0; p < g.p; p++) {
                        for (int q = 0; q < g.q; q++) {
                            for (int r = 0; r < g.r; r++) {
                                for (int s = 0; s < g.s; s++) {
                                    full[(p * g.strideH + r * g.dilationH) * fullW + q * g.strideW + s * g.dilationW] +=
                                            (double) x[((n * g.k + k) * g.p + p) * g.q + q] * w[((k * cg + c % cg) * g.r + r) * g.s + s];
                                }
                            }
                        }
                    }
                }
                for (int i = 0; i < g.h; i++) {
                    for (int j = 0; j < g.w; j++) {
                        int fi = i + top, fj = j + left;
                        double v = fi < fullH && fj < fullW ? full[fi * fullW + fj] : 0;
                        out[((n * g.c + c) * g.h + i) * g.w + j] = v + (b == null ? 0 : b[c]);
                    }
                }
            }
        }
        return out;
    }
}
