package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Random valid convolutions, new ones on every run: {@code jconv.fuzz.cases} (default 2,000) specs, both operations,
 * every algorithm of every available backend (the CPU with 1 and 3 threads, cuda-emu, a GPU where there is one)
 * against the float64 reference. The cases are drawn from regimes on purpose, not only uniformly: kernels larger
 * than the input with one-sided padding, wide channel blocks (the CPU's channels-in-lanes kernel), depthwise with
 * multipliers, 1x1, transposed same / same-lower / output size, and empty batches. Every eighth case also runs the
 * implicit GEMM's tensor-core kernels (math tf32 and 3xtf32) on the CUDA backends that take them, each against its
 * math's oracle.
 *
 * <p>The run's seed is printed; every failure names its case's own seed, and
 * {@code mvn test -Dtest=FuzzTest -Djconv.fuzz.seed=S -Djconv.fuzz.cases=1} replays exactly that case.
 */
class FuzzTest {
    private static final long MIX = 0x9E3779B97F4A7C15L;

    @Test
    void randomValidSpecsMatchTheReferenceOnEveryAlgorithm() {
        long base = Long.getLong("jconv.fuzz.seed", System.nanoTime() ^ System.currentTimeMillis() * MIX);
        int cases = Integer.getInteger("jconv.fuzz.cases", 2000);
        System.out.println("FuzzTest: " + cases + " cases from seed " + base + " (-Djconv.fuzz.seed=" + base + " repeats this run)");
        List<String> failures = new ArrayList<>();
        int runs = 0, drawn = 0;
        for (int i = 0; i < cases; i++) {
            long seed = base + i * MIX;
            SplittableRandom rnd = new SplittableRandom(seed);
            ConvGeometry g = null;
            while (g == null) { // a draw that is not a valid convolution is drawn again from the same stream
                drawn++;
                g = draw(rnd);
            }
            String replay = " [case seed " + seed + ": -Djconv.fuzz.seed=" + seed + " -Djconv.fuzz.cases=1]";
            try {
                runs += check(g, rnd.nextLong(), failures, replay, i % 8 == 0);
            } catch (RuntimeException | AssertionError e) {
                failures.add(g + ": " + e + replay);
            }
            if (failures.size() >= 10) {
                break;
            }
        }
        if (!failures.isEmpty()) {
            fail(failures.size() + " fuzz failure(s) (run seed " + base + "):\n" + String.join("\n", failures));
        }
        assertTrue(runs >= 10 * cases, runs + " algorithm runs for " + cases + " cases");
        System.out.println("FuzzTest: " + cases + " cases (" + drawn + " drawn), " + runs + " algorithm runs, all within the bound");
    }

    /** Runs every algorithm on g (and with tensorCores, the implicit GEMM in each tensor-core math); returns how many ran. */
    private static int check(ConvGeometry g, long dataSeed, List<String> failures, String replay, boolean tensorCores) {
        ConvGeometry again = ConvGeometry.of(g.op, g.inputShape(), g.weightShape(), g.hasBias ? new int[] {g.biasLength()} : null,
                g.explicitSpec());
        if (!again.toString().equals(g.toString()) || again.h != g.h || again.w != g.w) {
            failures.add("explicitSpec() of " + g + " describes " + again + replay);
        }
        float[][] d = TestSupport.data(g, dataSeed);
        TestSupport.Oracle oracle = TestSupport.oracle(g, d[0], d[1], d[2]);
        int runs = 0;
        int outLength = Math.toIntExact(Tensor.elementCount(g.outputShape()));
        for (Backend backend : ShapeTableTest.BACKENDS) {
            if (backend.unavailableReason() != null) {
                continue;
            }
            for (Algorithm a : backend.algorithms()) {
                if (backend.cannotImplement(a, g) != null) {
                    if (Boolean.TRUE.equals(ShapeTableTest.mustTake(a, g))) {
                        failures.add(backend.name() + "/" + a + " refused " + g + ": " + backend.cannotImplement(a, g) + replay);
                    }
                    continue;
                }
                for (int threads : backend.name().equals("cpu") ? new int[] {1, 3} : new int[] {0}) {
                    float[] y = new float[outLength];
                    Arrays.fill(y, Float.NaN); // every element must be written
                    String what = backend.name() + "/" + a.label() + "/" + threads + "t on " + g;
                    try {
                        backend.run(a, g, d[0], d[1], d[2], y, threads);
                    } catch (RuntimeException e) {
                        failures.add(what + ": " + e + replay);
                        continue;
                    }
                    runs++;
                    String problem = (TestSupport.mayRunWinograd(backend, a, g) ? TestSupport.oracle(backend, a, g, d[0], d[1], d[2]) : oracle).check(y);
                    if (problem != null) {
                        failures.add(what + ": " + problem + TestSupport.scheduleNote(what) + replay);
                    }
                }
            }
        }
        if (tensorCores) {
            runs += checkTensorCores(g, d, failures, replay);
        }
        return runs;
    }

    /** The implicit GEMM's tensor-core kernels (every tensor-core math) in plans on the CUDA backends that run them, against their oracles. */
    private static int checkTensorCores(ConvGeometry g, float[][] d, List<String> failures, String replay) {
        return TestSupport.forEachTensorCoreMath(g, d, (what, m, y) -> {
            String problem = TestSupport.oracle(g, m, d[0], d[1], d[2]).check(y);
            if (problem != null) {
                failures.add(what + " on " + g + ": " + problem + TestSupport.scheduleNote(what) + replay);
            }
        });
    }

    /** One random convolution from one of the regimes; null when the draw is not a valid one. */
    static ConvGeometry draw(SplittableRandom rnd) {
        boolean transposed = rnd.nextBoolean();
        int regime = rnd.nextInt(8);
        int n = regime == 7 ? 0 : 1 + rnd.nextInt(3);
        int groups = 1 + (rnd.nextInt(3) == 0 ? rnd.nextInt(4) : 0);
        int cg = 1 + rnd.nextInt(6), kg = 1 + rnd.nextInt(8);
        int h = 1 + rnd.nextInt(14), w = 1 + rnd.nextInt(20);
        int r = 1 + rnd.nextInt(5), s = 1 + rnd.nextInt(5);
        int sh = 1 + rnd.nextInt(3), sw = 1 + rnd.nextInt(3), dh = 1 + rnd.nextInt(3), dw = 1 + rnd.nextInt(3);
        int[] pad = {rnd.nextInt(4), rnd.nextInt(4), rnd.nextInt(4), rnd.nextInt(4)};
        Padding mode = null;
        switch (regime) {
            case 1: // kernels larger than the input, padding on one side or split at random
                h = 1 + rnd.nextInt(3);
                w = 1 + rnd.nextInt(3);
                r = 1 + rnd.nextInt(7);
                s = 1 + rnd.nextInt(7);
                int[] ph = OverhangingKernelTest.overhangPadding(h, r, dh, rnd.nextInt(3), rnd.nextInt(3), rnd.nextLong());
                int[] pw = OverhangingKernelTest.overhangPadding(w, s, dw, rnd.nextInt(3), rnd.nextInt(3), rnd.nextLong());
                pad = new int[] {ph[0], ph[1], pw[0], pw[1]};
                break;
            case 2: // whole vectors of output channels, three taps per row, stride 1
                kg = 30 + rnd.nextInt(41);
                groups = 1 + rnd.nextInt(2);
                s = 3;
                sh = 1;
                sw = 1;
                dw = 1 + rnd.nextInt(2);
                break;
            case 3: // depthwise, with a channel multiplier
                cg = 1;
                groups = 1 + rnd.nextInt(8);
                kg = 1 + rnd.nextInt(3);
                break;
            case 4: // 1x1
                r = 1;
                s = 1;
                if (rnd.nextBoolean()) {
                    sh = 1;
                    sw = 1;
                    pad = new int[4];
                }
                break;
            case 5: // same / same-lower (conv2d: ceil(in / stride); transposed: in x stride) or valid
                mode = new Padding[] {Padding.same(), Padding.sameLower(), Padding.valid()}[rnd.nextInt(3)];
                break;
            default:
                break;
        }
        if (mode == null) {
            mode = rnd.nextInt(3) == 0 ? Padding.of(pad[0], pad[2]) : Padding.of(pad[0], pad[1], pad[2], pad[3]);
        }
        int c = groups * cg, k = groups * kg;
        boolean bias = rnd.nextBoolean();
        ConvSpec.Builder b = ConvSpec.builder().stride(sh, sw).dilation(dh, dw).groups(groups).padding(mode);
        try {
            if (!transposed) {
                return ConvGeometry.conv2d(new int[] {n, c, h, w}, new int[] {k, cg, r, s}, bias ? new int[] {k} : null, b.build());
            }
            b.outputPadding(rnd.nextInt(Math.max(sh, dh)), rnd.nextInt(Math.max(sw, dw)));
            if (regime == 6) { // an output size near the full output (ONNX output_shape)
                int fullH = (h - 1) * sh + dh * (r - 1) + 1, fullW = (w - 1) * sw + dw * (s - 1) + 1;
                b.padding(new Padding[] {Padding.of(0), Padding.same(), Padding.sameLower()}[rnd.nextInt(3)]).outputPadding(0, 0)
                        .outputSize(Math.max(1, fullH - rnd.nextInt(4)), Math.max(1, fullW - rnd.nextInt(4) + 1));
            }
            return ConvGeometry.convTranspose2d(new int[] {n, k, h, w}, new int[] {k, cg, r, s}, bias ? new int[] {c} : null, b.build());
        } catch (InvalidConvolutionException e) {
            return null; // the kernel does not fit, the padding crops everything, ...
        }
    }
}
