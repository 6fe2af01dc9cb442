package io.github.jconv;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Random valid convolutions: every algorithm agrees with the float64 reference; conv_transpose2d is conv2d's adjoint. */
class AlgorithmPropertiesTest {
    /** Builds a valid spec from arbitrary small numbers: sizes are raised until the kernel fits. */
    static ConvGeometry geometry(boolean transposed, int n, int groups, int cPerGroup, int kPerGroup, int h, int w,
                                 int r, int s, int strideH, int strideW, int dilH, int dilW, int padMode, int pt, int pb,
                                 int pl, int pr, boolean bias) {
        Padding pad;
        switch (transposed ? padMode % 3 : padMode) {
            case 0: pad = Padding.of(pt, pl); break;
            case 1: pad = Padding.of(pt, pb, pl, pr); break;
            case 2: pad = Padding.valid(); break;
            case 3: pad = Padding.same(); break;
            default: pad = Padding.sameLower(); break;
        }
        int c = groups * cPerGroup, k = groups * kPerGroup;
        ConvSpec.Builder b = ConvSpec.builder().stride(strideH, strideW).dilation(dilH, dilW).groups(groups).padding(pad);
        if (!transposed) {
            int effR = dilH * (r - 1) + 1, effS = dilW * (s - 1) + 1;
            int hh = Math.max(h, effR), ww = Math.max(w, effS); // fits even without padding
            return ConvGeometry.conv2d(new int[] {n, c, hh, ww}, new int[] {k, cPerGroup, r, s}, bias ? new int[] {k} : null,
                    b.build());
        }
        // conv_transpose2d: input N x C_in x h x w with C_in = k here; crop no more than the full output
        int opH = Math.floorMod(pt + pb, Math.max(strideH, dilH)), opW = Math.floorMod(pl + pr, Math.max(strideW, dilW));
        b.outputPadding(opH, opW);
        int fullH = (h - 1) * strideH + dilH * (r - 1) + 1 + opH, fullW = (w - 1) * strideW + dilW * (s - 1) + 1 + opW;
        Padding p = b.build().padding();
        if (p.top() + p.bottom() >= fullH || p.left() + p.right() >= fullW) {
            b.padding(Padding.valid());
        }
        return ConvGeometry.convTranspose2d(new int[] {n, k, h, w}, new int[] {k, cPerGroup, r, s}, bias ? new int[] {c} : null,
                b.build());
    }

    @Property(tries = 150)
    void everyAlgorithmMatchesTheReference(@ForAll boolean transposed,
                                           @ForAll @IntRange(min = 1, max = 3) int n,
                                           @ForAll @IntRange(min = 1, max = 4) int groups,
                                           @ForAll @IntRange(min = 1, max = 5) int cPerGroup,
                                           @ForAll @IntRange(min = 1, max = 10) int kPerGroup,
                                           @ForAll @IntRange(min = 1, max = 11) int h,
                                           @ForAll @IntRange(min = 1, max = 40) int w,
                                           @ForAll @IntRange(min = 1, max = 5) int r,
                                           @ForAll @IntRange(min = 1, max = 5) int s,
                                           @ForAll @IntRange(min = 1, max = 3) int strideH,
                                           @ForAll @IntRange(min = 1, max = 3) int strideW,
                                           @ForAll @IntRange(min = 1, max = 3) int dilH,
                                           @ForAll @IntRange(min = 1, max = 3) int dilW,
                                           @ForAll @IntRange(min = 0, max = 4) int padMode,
                                           @ForAll @IntRange(min = 0, max = 3) int pt,
                                           @ForAll @IntRange(min = 0, max = 3) int pb,
                                           @ForAll @IntRange(min = 0, max = 3) int pl,
                                           @ForAll @IntRange(min = 0, max = 3) int pr,
                                           @ForAll boolean bias,
                                           @ForAll @IntRange(min = 1, max = 3) int threads,
                                           @ForAll long seed) {
        ConvGeometry g = geometry(transposed, n, groups, cPerGroup, kPerGroup, h, w, r, s, strideH, strideW, dilH, dilW,
                padMode, pt, pb, pl, pr, bias);
        TestSupport.everyAlgorithmMatches(g, threads, seed);
    }

    /**
     * Layers with whole blocks of output channels (the CPU's channels-in-lanes direct kernel takes stride-1 layers
     * with three taps per row and at least 2V output channels per group; the general property rarely reaches them).
     */
    @Property(tries = 40)
    void wideLayersMatchTheReference(@ForAll boolean transposed,
                                     @ForAll @IntRange(min = 1, max = 2) int n,
                                     @ForAll @IntRange(min = 1, max = 2) int groups,
                                     @ForAll @IntRange(min = 1, max = 6) int cPerGroup,
                                     @ForAll @IntRange(min = 30, max = 70) int kPerGroup,
                                     @ForAll @IntRange(min = 1, max = 9) int h,
                                     @ForAll @IntRange(min = 1, max = 24) int w,
                                     @ForAll @IntRange(min = 1, max = 4) int r,
                                     @ForAll @IntRange(min = 1, max = 3) int dilH,
                                     @ForAll @IntRange(min = 1, max = 2) int dilW,
                                     @ForAll @IntRange(min = 0, max = 4) int padMode,
                                     @ForAll @IntRange(min = 0, max = 3) int pt,
                                     @ForAll @IntRange(min = 0, max = 3) int pb,
                                     @ForAll @IntRange(min = 0, max = 3) int pl,
                                     @ForAll @IntRange(min = 0, max = 3) int pr,
                                     @ForAll boolean bias,
                                     @ForAll @IntRange(min = 1, max = 3) int threads,
                                     @ForAll long seed) {
        ConvGeometry g = geometry(transposed, n, groups, cPerGroup, kPerGroup, h, w, r, 3, 1, 1, dilH, dilW,
                padMode, pt, pb, pl, pr, bias);
        TestSupport.everyAlgorithmMatches(g, threads, seed);
    }

    /** <conv(x), y> = <x, conv_transpose(y)> for the same weight, for every algorithm. */
    @Property(tries = 60)
    void transposedConvolutionIsTheAdjoint(@ForAll @IntRange(min = 1, max = 2) int n,
                                           @ForAll @IntRange(min = 1, max = 3) int groups,
                                           @ForAll @IntRange(min = 1, max = 4) int cPerGroup,
                                           @ForAll @IntRange(min = 1, max = 4) int kPerGroup,
                                           @ForAll @IntRange(min = 1, max = 10) int h,
                                           @ForAll @IntRange(min = 1, max = 10) int w,
                                           @ForAll @IntRange(min = 1, max = 4) int r,
                                           @ForAll @IntRange(min = 1, max = 4) int s,
                                           @ForAll @IntRange(min = 1, max = 3) int stride,
                                           @ForAll @IntRange(min = 1, max = 2) int dil,
                                           @ForAll @IntRange(min = 0, max = 4) int padMode,
                                           @ForAll @IntRange(min = 0, max = 2) int pt,
                                           @ForAll @IntRange(min = 0, max = 2) int pl,
                                           @ForAll long seed) {
        ConvGeometry fwd = geometry(false, n, groups, cPerGroup, kPerGroup, h, w, r, s, stride, stride, dil, dil, padMode,
                pt, pt + 1, pl, pl, false);
        // the transposed geometry with the resolved padding and the output padding that gives back H x W
        ConvGeometry bwd = OverhangingKernelTest.adjointOf(fwd);
        assertArrayEquals(fwd.inputShape(), bwd.outputShape());

        Random rnd = new Random(seed);
        float[] x = TestSupport.gaussian(rnd, Tensor.elementCount(fwd.inputShape()));
        float[] wt = TestSupport.gaussian(rnd, Tensor.elementCount(fwd.weightShape()));
        float[] y = TestSupport.gaussian(rnd, Tensor.elementCount(fwd.outputShape()));
        for (Backend backend : ShapeTableTest.BACKENDS) {
            for (Algorithm a : backend.algorithms()) {
                if (backend.cannotImplement(a, fwd) != null || backend.cannotImplement(a, bwd) != null) {
                    continue;
                }
                adjoint(backend, a, fwd, bwd, x, wt, y);
            }
        }
    }

    private static void adjoint(Backend backend, Algorithm a, ConvGeometry fwd, ConvGeometry bwd, float[] x, float[] wt, float[] y) {
        {
            float[] ax = new float[y.length];
            float[] aty = new float[x.length];
            backend.run(a, fwd, x, wt, null, ax, 2);
            backend.run(a, bwd, y, wt, null, aty, 2);
            double lhs = 0, rhs = 0, scale = 0;
            for (int i = 0; i < y.length; i++) {
                lhs += (double) ax[i] * y[i];
                scale += Math.abs((double) ax[i] * y[i]);
            }
            for (int i = 0; i < x.length; i++) {
                rhs += (double) x[i] * aty[i];
                scale += Math.abs((double) x[i] * aty[i]);
            }
            assertEquals(lhs, rhs, 1e-5 * (scale + 1), backend.name() + "/" + a + " on " + fwd);
        }
    }
}
