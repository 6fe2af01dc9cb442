package io.github.jconv;

import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;
import io.github.jconv.cpu.WeightGradient;
import io.github.jconv.io.Npy;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The weight and bias gradients: against float64, PyTorch's cases, the adjoint identity, finite differences, determinism. */
public class WeightGradientTest {
    private static final List<Algorithm> CANDIDATES = List.of(Algorithm.REFERENCE, Algorithm.DIRECT, Algorithm.IM2COL, Algorithm.IMPLICIT_GEMM,
            Algorithm.VENDOR);

    /** Every available backend's every weight-gradient algorithm that takes g. */
    static void forEachWgrad(ConvGeometry g, BiConsumer<Backend, Algorithm> body) {
        for (Backend b : ShapeTableTest.BACKENDS) {
            if (b.unavailableReason() != null) {
                continue;
            }
            for (Algorithm a : CANDIDATES) {
                if (b.cannotImplementBackwardWeight(a, g) == null) {
                    body.accept(b, a);
                }
            }
        }
    }

    private static float[] random(long seed, long n) {
        return TestSupport.gaussian(new Random(seed), n);
    }

    private static float[] abs(float[] a) {
        float[] r = a.clone();
        for (int i = 0; i < r.length; i++) {
            r[i] = Math.abs(r[i]);
        }
        return r;
    }

    /**
     * dw within the rounding bound of a float sum of N*P*Q products: |dw - ref| <= (terms + 2) eps * sum|dy x| (the
     * float64 reference of |dy| and |x|), for every element; dw starts as NaN so an unwritten element fails.
     */
    public static void assertMatchesReference(String what, ConvGeometry g, float[] x, float[] dy, float[] dw) {
        double[] ref = WeightGradient.reference(g, x, dy, Parallel.of(2));
        double[] mag = WeightGradient.reference(g, abs(x), abs(dy), Parallel.of(2));
        double terms = (double) g.n * g.p * g.q + 2;
        for (int i = 0; i < ref.length; i++) {
            double tol = terms * TestSupport.EPS * mag[i] + 1e-30;
            if (!(Math.abs(dw[i] - ref[i]) <= tol)) {
                fail(what + " on " + g + ": dw[" + i + "] = " + dw[i] + ", float64 reference " + ref[i] + " (bound " + tol + ")");
            }
        }
    }

    /** The shape table (conv2d and conv_transpose2d geometries, each in its forward names) on every backend and algorithm. */
    @Test
    void everyAlgorithmMatchesFloat64OnTheShapeTable() {
        int runs = 0;
        for (ConvGeometry g : ShapeTableTest.geometries()) {
            float[] x = random(g.hashCode(), (long) g.n * g.c * g.h * g.w), dy = random(g.hashCode() + 1L, (long) g.n * g.k * g.p * g.q);
            int[] count = {0};
            forEachWgrad(g, (b, a) -> {
                for (int threads : new int[] {1, 3}) {
                    float[] dw = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
                    Arrays.fill(dw, Float.NaN);
                    b.backwardWeight(a, g, x, dy, dw, threads);
                    assertMatchesReference(b.name() + "/" + a + "/" + threads + "t", g, x, dy, dw);
                    count[0]++;
                }
            });
            runs += count[0];
        }
        assertTrue(runs >= ShapeTableTest.geometries().size() * 6, "ran " + runs);
    }

    /** A weight-gradient case of ../shared/golden-wgrad. */
    record WgradCase(Path dir, int[] kernel, ConvSpec spec) {
        static List<WgradCase> all() {
            Path root = TestSupport.goldenDir().resolveSibling("golden-wgrad");
            try (Stream<Path> dirs = Files.list(root)) {
                List<WgradCase> cases = new ArrayList<>();
                dirs.filter(d -> Files.isRegularFile(d.resolve("case.json"))).sorted().forEach(d -> cases.add(load(d)));
                return cases;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        static WgradCase load(Path dir) {
            try {
                String json = Files.readString(dir.resolve("case.json"));
                int[] k = pair(json, "kernel_size"), st = pair(json, "stride"), pad = pair(json, "padding"), dil = pair(json, "dilation");
                Matcher m = Pattern.compile("\"groups\"\\s*:\\s*(\\d+)").matcher(json);
                assertTrue(m.find(), json);
                return new WgradCase(dir, k, ConvSpec.builder().stride(st[0], st[1]).padding(pad[0], pad[1]).dilation(dil[0], dil[1])
                        .groups(Integer.parseInt(m.group(1))).build());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private static int[] pair(String json, String key) {
            Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\]").matcher(json);
            assertTrue(m.find(), key + " in " + json);
            return new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))};
        }

        Tensor read(String name) {
            return Npy.read(dir.resolve(name));
        }
    }

    /** The 30 PyTorch-made cases (float64 torch.nn.grad.conv2d_weight) through the API, on every backend and algorithm. */
    @Test
    void pyTorchCasesOnEveryBackendAndAlgorithm() {
        List<WgradCase> cases = WgradCase.all();
        assertEquals(30, cases.size(), "golden-wgrad cases");
        for (WgradCase c : cases) {
            Tensor x = c.read("x.npy"), dy = c.read("dy.npy"), dwRef = c.read("dw.npy"), dbRef = c.read("db.npy");
            ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, x.shape(), dy.shape(), c.kernel(), c.spec());
            int[] ran = {0};
            forEachWgrad(g, (b, a) -> {
                Tensor dw = Jconv.conv2dBackwardWeight(x, dy, c.kernel(), c.spec(),
                        ConvOptions.defaults().withBackend(b.name()).withAlgorithm(a).withThreads(2));
                assertArrayEquals(dwRef.shape(), dw.shape(), c.dir().toString());
                double e = GoldenCase.error(dw.data(), dwRef.data());
                assertTrue(e <= 1e-4, c.dir().getFileName() + " " + b.name() + "/" + a + ": error " + e);
                Tensor db = Jconv.conv2dBackwardBias(dy, ConvOptions.defaults().withBackend(b.name()));
                double eb = GoldenCase.error(db.data(), dbRef.data());
                assertTrue(eb <= 1e-4, c.dir().getFileName() + " bias on " + b.name() + ": error " + eb);
                ran[0]++;
            });
            assertTrue(ran[0] >= 3, c.dir() + ": " + ran[0] + " runs");
        }
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    private static double dot(float[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /**
     * The adjoint identity that defines the weight gradient: {@code <dW, V> = <dy, op(x, V)>} for any V, for conv2d and
     * conv_transpose2d (its weight gradient is conv2d's with x and dy swapped), on random small geometries.
     */
    @Property(tries = 60)
    void theWeightGradientIsTheAdjointOfTheConvolutionInItsWeight(@ForAll @IntRange(min = 1, max = 3) int n,
                                                                  @ForAll @IntRange(min = 1, max = 3) int groups,
                                                                  @ForAll @IntRange(min = 1, max = 3) int cPer,
                                                                  @ForAll @IntRange(min = 1, max = 3) int kPer,
                                                                  @ForAll @IntRange(min = 1, max = 4) int r, @ForAll @IntRange(min = 1, max = 4) int s,
                                                                  @ForAll @IntRange(min = 1, max = 3) int stride,
                                                                  @ForAll @IntRange(min = 0, max = 2) int pad,
                                                                  @ForAll @IntRange(min = 1, max = 2) int dilation,
                                                                  @ForAll boolean transposed, @ForAll @IntRange(min = 0, max = 1000) int seed) {
        int h = 9, w = 7;
        ConvSpec spec = ConvSpec.builder().stride(stride, 1).padding(pad, Math.min(pad, 1)).dilation(dilation, 1).groups(groups).build();
        int c = cPer * groups, k = kPer * groups;
        ConvGeometry.Op op = transposed ? ConvGeometry.Op.CONV_TRANSPOSE2D : ConvGeometry.Op.CONV2D;
        int[] wShape = transposed ? new int[] {c, kPer, r, s} : new int[] {k, cPer, r, s};
        ConvGeometry g;
        try {
            g = ConvGeometry.of(op, new int[] {n, c, h, w}, wShape, null, spec);
        } catch (InvalidConvolutionException tooLarge) {
            return; // a kernel larger than the padded input: not a convolution
        }
        Tensor x = Tensor.of(random(seed, Tensor.elementCount(g.inputShape())), g.inputShape());
        Tensor dy = Tensor.of(random(seed + 1, Tensor.elementCount(g.outputShape())), g.outputShape());
        Tensor v = Tensor.of(random(seed + 2, Tensor.elementCount(wShape)), wShape);
        double[] conv = ReferenceConv.compute(g, x.data(), v.data(), null, Parallel.SERIAL);
        double want = dot(dy.data(), conv);
        double scale = 1;
        for (int i = 0; i < conv.length; i++) {
            scale += Math.abs(dy.data()[i] * conv[i]);
        }
        int[] kernel = {r, s};
        for (Backend b : ShapeTableTest.BACKENDS) {
            if (b.unavailableReason() != null) {
                continue;
            }
            ConvGeometry gw = ConvGeometry.backwardWeight(op, x.shape(), dy.shape(), kernel, spec);
            for (Algorithm a : CANDIDATES) {
                if (b.cannotImplementBackwardWeight(a, gw) != null) {
                    continue;
                }
                ConvOptions o = ConvOptions.defaults().withBackend(b.name()).withAlgorithm(a).withThreads(2);
                Tensor dw = transposed ? Jconv.convTranspose2dBackwardWeight(x, dy, kernel, spec, o) : Jconv.conv2dBackwardWeight(x, dy, kernel, spec, o);
                assertArrayEquals(wShape, dw.shape());
                double got = dot(dw.data(), v.data());
                assertEquals(want, got, 1e-4 * scale, b.name() + "/" + a + " on " + g);
            }
        }
    }

    /** Central differences of L(W) = <dy, conv2d(x, W)> (float64 convolution) agree with dW on tiny shapes. */
    @Test
    void finiteDifferencesAgree() {
        ConvSpec spec = ConvSpec.builder().stride(2, 1).padding(1, 2).dilation(1, 2).groups(2).build();
        int[] xShape = {2, 4, 6, 7}, kernel = {3, 2};
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, xShape,
                ConvGeometry.conv2d(xShape, new int[] {6, 2, 3, 2}, null, spec).outputShape(), kernel, spec);
        float[] x = random(1, Tensor.elementCount(xShape)), dy = random(2, Tensor.elementCount(g.outputShape()));
        float[] w0 = random(3, Tensor.elementCount(g.weightShape()));
        Tensor dw = Jconv.conv2dBackwardWeight(Tensor.of(x, xShape), Tensor.of(dy, g.outputShape()), kernel, spec,
                ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.IM2COL));
        float h = 0.25f; // L is linear in W: the difference is exact up to float64 rounding
        for (int i = 0; i < w0.length; i++) {
            float[] plus = w0.clone(), minus = w0.clone();
            plus[i] += h;
            minus[i] -= h;
            double diff = (dot(dy, ReferenceConv.compute(g, x, plus, null, Parallel.SERIAL))
                    - dot(dy, ReferenceConv.compute(g, x, minus, null, Parallel.SERIAL))) / (2 * h);
            assertEquals(diff, dw.data()[i], 1e-4 * (1 + Math.abs(diff)), "dW[" + i + "]");
        }
    }

    /** The same bits whatever the thread count (CPU) and run after run under the emulator's random schedules. */
    @Test
    void resultsAreDeterministic() {
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, new int[] {8, 24, 24, 24}, new int[] {8, 32, 24, 24},
                new int[] {3, 3}, ConvSpec.builder().padding(1).build());
        float[] x = random(5, (long) g.n * g.c * g.h * g.w), dy = random(6, (long) g.n * g.k * g.p * g.q);
        forEachWgrad(g, (b, a) -> {
            float[] first = null;
            for (int threads : new int[] {1, 2, 3, 5}) {
                float[] dw = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
                b.backwardWeight(a, g, x, dy, dw, threads);
                if (first == null) {
                    first = dw;
                    assertMatchesReference(b.name() + "/" + a, g, x, dy, dw);
                } else {
                    assertArrayEquals(first, dw, 0f, b.name() + "/" + a + " with " + threads + " threads");
                }
            }
        });
    }

    /** NaN and infinity reach exactly the weight-gradient elements whose taps read them (as in the float64 reference). */
    @Test
    void nonFiniteValuesReachExactlyTheElementsThatReadThem() {
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, new int[] {2, 4, 9, 9}, new int[] {2, 8, 9, 9},
                new int[] {3, 3}, ConvSpec.builder().padding(1).build());
        float[] x = random(7, (long) g.n * g.c * g.h * g.w), dy = random(8, (long) g.n * g.k * g.p * g.q);
        x[(0 * g.c + 1) * g.h * g.w + 9 * 4 + 8] = Float.NaN;    // sample 0, channel 1, row 4, last column
        dy[(1 * g.k + 5) * g.p * g.q + 9 * 8] = Float.POSITIVE_INFINITY; // sample 1, channel 5, last row, first column
        double[] ref = WeightGradient.reference(g, x, dy, Parallel.SERIAL);
        int nonFinite = 0;
        for (double v : ref) {
            nonFinite += Double.isFinite(v) ? 0 : 1;
        }
        assertTrue(nonFinite > 0 && nonFinite < ref.length, nonFinite + " of " + ref.length);
        forEachWgrad(g, (b, a) -> {
            float[] dw = new float[ref.length];
            b.backwardWeight(a, g, x, dy, dw, 2);
            for (int i = 0; i < ref.length; i++) {
                if (Double.isFinite(ref[i]) != Float.isFinite(dw[i]) || (Double.isNaN(ref[i]) != Float.isNaN(dw[i]))) {
                    fail(b.name() + "/" + a + ": dw[" + i + "] = " + dw[i] + ", reference " + ref[i]);
                }
            }
        });
    }

    /** A weight-gradient plan on device tensors gives the stateless call's bits, for both operations, on cpu and cuda-emu. */
    @Test
    void plansOnDeviceTensorsEqualTheStatelessCall() {
        ConvSpec spec = ConvSpec.builder().stride(2, 1).padding(1).groups(2).build();
        int[] x2 = {2, 4, 9, 7}, kernel = {3, 3};
        int[] y2 = ConvGeometry.conv2d(x2, new int[] {6, 2, 3, 3}, null, spec).outputShape();
        int[] xt = {2, 6, 5, 7};
        int[] yt = ConvGeometry.convTranspose2d(xt, new int[] {6, 2, 3, 3}, null, spec).outputShape();
        for (String name : List.of("cpu", "cuda-emu")) {
            if (Backends.all().stream().noneMatch(b -> b.name().equals(name) && b.unavailableReason() == null)) {
                continue;
            }
            try (Device dev = Device.open(name)) {
                for (boolean transposed : new boolean[] {false, true}) {
                    int[] xs = transposed ? xt : x2, dys = transposed ? yt : y2;
                    Tensor x = Tensor.of(random(11, Tensor.elementCount(xs)), xs), dy = Tensor.of(random(12, Tensor.elementCount(dys)), dys);
                    WeightGradientPlan.Builder pb = transposed ? WeightGradientPlan.convTranspose2d(dev, xs, dys, kernel, spec)
                            : WeightGradientPlan.conv2d(dev, xs, dys, kernel, spec);
                    try (WeightGradientPlan plan = pb.threads(2).build()) {
                        Tensor got = plan.run(x, dy);
                        ConvOptions o = ConvOptions.defaults().withBackend(name).withAlgorithm(plan.algorithm()).withThreads(3);
                        Tensor want = transposed ? Jconv.convTranspose2dBackwardWeight(x, dy, kernel, spec, o)
                                : Jconv.conv2dBackwardWeight(x, dy, kernel, spec, o);
                        assertArrayEquals(want.shape(), got.shape());
                        assertArrayEquals(want.data(), got.data(), 0f, name + (transposed ? " conv_transpose2d" : " conv2d"));
                        try (DeviceTensor dx = dev.upload(x); DeviceTensor wrong = dev.allocate(1, 2, 3, 4)) {
                            assertTrue(assertThrows(InvalidConvolutionException.class, () -> plan.run(dx, wrong, wrong)).getMessage()
                                    .contains("dy tensor has shape [1, 2, 3, 4]"));
                        }
                    }
                }
                WeightGradientPlan leaked = WeightGradientPlan.conv2d(dev, x2, y2, kernel, spec).build();
                assertTrue(assertThrows(DeviceLeakException.class, dev::close).getMessage().contains("weight-gradient plan conv2d [2, 4, 9, 7]"));
                assertThrows(IllegalStateException.class, () -> leaked.run(Tensor.zeros(x2), Tensor.zeros(y2)));
            }
        }
    }

    @Test
    void anEmptyBatchGivesZeros() {
        ConvGeometry g = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, new int[] {0, 4, 5, 5}, new int[] {0, 6, 3, 3},
                new int[] {3, 3}, ConvSpec.defaults());
        forEachWgrad(g, (b, a) -> {
            float[] dw = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
            Arrays.fill(dw, Float.NaN);
            b.backwardWeight(a, g, new float[0], new float[0], dw, 2);
            assertArrayEquals(new float[dw.length], dw, 0f, b.name() + "/" + a);
        });
        assertArrayEquals(new float[6], Jconv.conv2dBackwardBias(Tensor.zeros(0, 6, 3, 3)).data(), 0f);
    }

    @Test
    void shapesThatCannotBelongToOneConvolutionAreRefusedNamingBoth() {
        Tensor x = Tensor.zeros(2, 4, 8, 8);
        InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2dBackwardWeight(x, Tensor.zeros(2, 6, 7, 7), new int[] {3, 3}, ConvSpec.defaults()));
        assertEquals("dy has shape [2, 6, 7, 7], but conv2d of x [2, 4, 8, 8] with a 3x3 kernel and this spec gives [2, 6, 6, 6]: "
                + "x and dy cannot belong to one convolution", e.getMessage());
        assertTrue(assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2dBackwardWeight(x, Tensor.zeros(3, 6, 6, 6), new int[] {3, 3}, ConvSpec.defaults()))
                .getMessage().contains("dy has shape [3, 6, 6, 6]"));
        assertTrue(assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2dBackwardWeight(x, Tensor.zeros(2, 6, 6, 6), new int[] {3, 3}, ConvSpec.builder().groups(4).build()))
                .getMessage().startsWith("dy has 6 channels, not a multiple of groups 4"));
        assertTrue(assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2dBackwardWeight(x, Tensor.zeros(2, 6, 6, 6), new int[] {0, 3}, ConvSpec.defaults()))
                .getMessage().startsWith("kernel size must be two positive integers"));
        assertTrue(assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2dBackwardWeight(x, Tensor.zeros(2, 6, 6, 6), new int[] {3, 3}, ConvSpec.defaults(),
                        ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.KERNEL_MATRIX)))
                .getMessage().contains("algorithm 'kernel-matrix' cannot compute this weight gradient on backend 'cpu'"));
        assertTrue(assertThrows(InvalidConvolutionException.class, () -> Jconv.conv2dBackwardBias(Tensor.zeros(2, 6, 6)))
                .getMessage().startsWith("dy must have 4 dimensions"));
    }
}
