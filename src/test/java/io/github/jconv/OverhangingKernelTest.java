package io.github.jconv;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Kernels whose taps can lie wholly in the padding: a kernel wider or taller than the input, padding on one side
 * only, a single output column or row. im2col crashed here (its unfold did not cap the first valid output column
 * at Q and copied zero elements from an offset past the end of x); the general properties never generated it.
 */
public class OverhangingKernelTest {
    /** The examples that crashed im2col (and auto, which ran or tuned it), in PyTorch's terms. */
    public static ConvGeometry example(int i) {
        switch (i) {
            case 0: // x 1x2x1x1, w 4x2x5x5, padding 2
                return ConvGeometry.conv2d(new int[] {1, 2, 1, 1}, new int[] {4, 2, 5, 5}, null, ConvSpec.builder().padding(2).build());
            case 1: // x 1x1x1x1, w 1x1x1x5, padding (0, 2)
                return ConvGeometry.conv2d(new int[] {1, 1, 1, 1}, new int[] {1, 1, 1, 5}, null, ConvSpec.builder().padding(0, 2).build());
            case 2: // x 1x3x2x2, w 8x3x7x7, padding 3
                return ConvGeometry.conv2d(new int[] {1, 3, 2, 2}, new int[] {8, 3, 7, 7}, null, ConvSpec.builder().padding(3).build());
            case 3: // x 2x21x2x2, w 7x3x1x5, stride (1, 3), padding 1,1,4,0, dilation (3, 1), groups 7
                return ConvGeometry.conv2d(new int[] {2, 21, 2, 2}, new int[] {7, 3, 1, 5}, null, ConvSpec.builder().stride(1, 3)
                        .padding(Padding.of(1, 1, 4, 0)).dilation(3, 1).groups(7).build());
            default: // x 1x4x18x6, w 2x4x3x5, stride (3, 2), padding 1,1,4,4, dilation (1, 3), bias
                return ConvGeometry.conv2d(new int[] {1, 4, 18, 6}, new int[] {2, 4, 3, 5}, new int[] {2}, ConvSpec.builder()
                        .stride(3, 2).padding(Padding.of(1, 1, 4, 4)).dilation(1, 3).build());
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4})
    void theReportedExamplesMatchTheReferenceOnEveryAlgorithm(int i) {
        ConvGeometry g = example(i);
        for (int threads : new int[] {1, 3}) {
            TestSupport.everyAlgorithmMatches(g, threads, i);
            TestSupport.everyAlgorithmMatches(adjointOf(g), threads, i);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4})
    void autoTunesThemWithoutCrashing(int i) {
        ConvGeometry g = example(i);
        float[][] d = TestSupport.data(g, i);
        Autotuner tuner = Autotuner.withCacheFile(null).withMinFlops(0);
        Algorithm chosen = tuner.choose(io.github.jconv.cpu.CpuBackend.INSTANCE, g, 2, true);
        org.junit.jupiter.api.Assertions.assertEquals(1, tuner.tunings());
        float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
        Jconv.run(g, d[0], d[1], d[2], y, ConvOptions.defaults().withBackend("cpu").withAlgorithm(chosen));
        TestSupport.assertMatchesReference("auto -> " + chosen, g, d[0], d[1], d[2], y);
    }

    /**
     * The conv_transpose2d that is {@code fwd}'s adjoint: the same weight and padding, and the output padding that
     * gives back the forward input's H x W.
     */
    static ConvGeometry adjointOf(ConvGeometry fwd) {
        int opH = fwd.h + fwd.padTop + fwd.padBottom - fwd.effectiveR() - (fwd.p - 1) * fwd.strideH;
        int opW = fwd.w + fwd.padLeft + fwd.padRight - fwd.effectiveS() - (fwd.q - 1) * fwd.strideW;
        ConvSpec ts = ConvSpec.builder().stride(fwd.strideH, fwd.strideW).dilation(fwd.dilationH, fwd.dilationW)
                .groups(fwd.groups).outputPadding(opH, opW)
                .padding(Padding.of(fwd.padTop, fwd.padBottom, fwd.padLeft, fwd.padRight)).build();
        return ConvGeometry.convTranspose2d(fwd.outputShape(), fwd.weightShape(), fwd.hasBias ? new int[] {fwd.c} : null, ts);
    }

    /**
     * The regime on purpose: inputs of 1-3 rows and columns, kernels up to 7 taps (dilated up to 3), just enough
     * padding for the kernel to fit plus up to 3 more, all of it on one side or split at random; both operations.
     */
    @Property(tries = 120)
    void kernelsLargerThanTheInputMatchTheReference(@ForAll boolean transposed,
                                                    @ForAll @IntRange(min = 1, max = 2) int n,
                                                    @ForAll @IntRange(min = 1, max = 3) int groups,
                                                    @ForAll @IntRange(min = 1, max = 3) int cPerGroup,
                                                    @ForAll @IntRange(min = 1, max = 4) int kPerGroup,
                                                    @ForAll @IntRange(min = 1, max = 3) int h,
                                                    @ForAll @IntRange(min = 1, max = 3) int w,
                                                    @ForAll @IntRange(min = 1, max = 7) int r,
                                                    @ForAll @IntRange(min = 1, max = 7) int s,
                                                    @ForAll @IntRange(min = 1, max = 3) int strideH,
                                                    @ForAll @IntRange(min = 1, max = 3) int strideW,
                                                    @ForAll @IntRange(min = 1, max = 3) int dilH,
                                                    @ForAll @IntRange(min = 1, max = 3) int dilW,
                                                    @ForAll @IntRange(min = 0, max = 3) int extraH,
                                                    @ForAll @IntRange(min = 0, max = 3) int extraW,
                                                    @ForAll @IntRange(min = 0, max = 2) int splitH,
                                                    @ForAll @IntRange(min = 0, max = 2) int splitW,
                                                    @ForAll boolean bias,
                                                    @ForAll @IntRange(min = 1, max = 3) int threads,
                                                    @ForAll long seed) {
        int[] ph = overhangPadding(h, r, dilH, extraH, splitH, seed);
        int[] pw = overhangPadding(w, s, dilW, extraW, splitW, seed >>> 7);
        int c = groups * cPerGroup, k = groups * kPerGroup;
        ConvGeometry fwd = ConvGeometry.conv2d(new int[] {n, c, h, w}, new int[] {k, cPerGroup, r, s}, bias ? new int[] {k} : null,
                ConvSpec.builder().stride(strideH, strideW).dilation(dilH, dilW).groups(groups)
                        .padding(Padding.of(ph[0], ph[1], pw[0], pw[1])).build());
        TestSupport.everyAlgorithmMatches(transposed ? adjointOf(fwd) : fwd, threads, seed);
    }

    /** {begin, end}: the padding the kernel needs to fit, plus {@code extra}, all at the begin (0), end (1) or split (2). */
    static int[] overhangPadding(int in, int kernel, int dilation, int extra, int split, long seed) {
        int total = Math.max(0, dilation * (kernel - 1) + 1 - in) + extra;
        switch (split) {
            case 0: return new int[] {total, 0};
            case 1: return new int[] {0, total};
            default:
                int begin = (int) Math.floorMod(seed, (long) total + 1);
                return new int[] {begin, total - begin};
        }
    }
}
