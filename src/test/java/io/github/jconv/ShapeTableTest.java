package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.cuda.CudnnBackend;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Every algorithm (and auto) of every backend, both operations, on a table of awkward shapes, against the
 * float64 reference: the CPU with 1 and 3 threads, the CUDA kernels under emulation (cuda-emu) and, where a
 * GPU is present, on it (cuda; skipped otherwise).
 */
public class ShapeTableTest {
    /** A layer: PyTorch's Conv2d(C, K, (R, S), spec) (or ConvTranspose2d(C, K, ...)) on N x C x H x W. */
    record Layer(String name, int n, int c, int h, int w, int k, int r, int s, ConvSpec spec, boolean bias) {
        ConvGeometry geometry(ConvGeometry.Op op) {
            int g = spec.groups();
            int[] b = bias ? new int[] {k} : null;
            return op == ConvGeometry.Op.CONV2D
                    ? ConvGeometry.conv2d(new int[] {n, c, h, w}, new int[] {k, c / g, r, s}, b, spec)
                    : ConvGeometry.convTranspose2d(new int[] {n, c, h, w}, new int[] {c, k / g, r, s}, b, spec);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private static ConvSpec.Builder spec() {
        return ConvSpec.builder();
    }

    static final List<Layer> LAYERS = List.of(
            new Layer("1x1", 2, 8, 5, 7, 6, 1, 1, spec().build(), true),
            new Layer("1x1 strided padded", 1, 3, 6, 6, 4, 1, 1, spec().stride(2).padding(1).build(), true),
            new Layer("1x1 strided, a downsampling shortcut in groups", 2, 6, 9, 11, 10, 1, 1, spec().stride(2, 3).groups(2).build(), true),
            new Layer("1x1, more weights than input, a pixel tail", 2, 48, 7, 7, 72, 1, 1, spec().build(), true),
            new Layer("kernel equals input", 1, 3, 5, 5, 4, 5, 5, spec().build(), true),
            new Layer("stride larger than kernel", 2, 3, 11, 11, 4, 2, 2, spec().stride(3).build(), true),
            new Layer("padding >= kernel", 1, 3, 6, 5, 2, 3, 3, spec().padding(3).build(), true),
            new Layer("non-square everything", 3, 7, 9, 13, 5, 3, 2,
                    spec().stride(2, 1).padding(1, 0).dilation(1, 2).build(), true),
            new Layer("asymmetric padding", 2, 3, 8, 6, 4, 3, 3, spec().padding(Padding.of(0, 2, 1, 3)).build(), true),
            new Layer("dilation with groups", 2, 6, 10, 10, 9, 3, 3, spec().padding(2).dilation(2).groups(3).build(), true),
            new Layer("depthwise", 2, 8, 9, 9, 8, 3, 3, spec().padding(1).groups(8).build(), true),
            new Layer("depthwise multiplier strided", 1, 4, 7, 7, 12, 3, 3, spec().stride(2).padding(1).groups(4).build(), true),
            new Layer("depthwise non-square dilated", 1, 5, 9, 8, 5, 3, 2,
                    spec().stride(1, 2).padding(Padding.of(1, 0, 2, 1)).dilation(2, 1).groups(5).build(), false),
            new Layer("C=1 batch 5", 5, 1, 8, 8, 3, 3, 3, spec().padding(1).build(), true),
            new Layer("C=33", 1, 33, 6, 6, 8, 3, 3, spec().padding(1).build(), true),
            new Layer("same stride 2", 1, 3, 9, 8, 4, 3, 3, spec().stride(2).padding(Padding.same()).build(), true),
            new Layer("same-lower dilated", 2, 3, 7, 7, 2, 2, 2, spec().dilation(2).padding(Padding.sameLower()).build(), true),
            new Layer("valid", 1, 3, 7, 7, 2, 3, 3, spec().padding(Padding.valid()).build(), true),
            new Layer("prime batch 7", 7, 3, 5, 5, 4, 3, 3, spec().padding(1).build(), true),
            new Layer("groups 2 no bias", 2, 4, 6, 6, 6, 3, 3, spec().padding(1).groups(2).build(), false),
            new Layer("wide rows, 9 output channels", 2, 3, 9, 40, 9, 3, 3, spec().padding(1).build(), true),
            new Layer("rows of exactly 32", 1, 5, 6, 34, 16, 3, 3, spec().build(), true),
            new Layer("depthwise wide dilated", 1, 4, 11, 35, 8, 3, 3,
                    spec().padding(Padding.of(1, 0, 2, 1)).dilation(1, 2).groups(4).build(), true),
            new Layer("grouped wide strided rows", 2, 16, 13, 21, 16, 3, 1, spec().stride(2, 1).padding(1, 0).groups(2).build(), false),
            new Layer("40 output channels", 2, 5, 9, 21, 40, 3, 3, spec().padding(1).build(), true),
            new Layer("33 output channels dilated along rows", 1, 3, 10, 12, 33, 3, 3, spec().padding(1, 2).dilation(1, 2).build(), true),
            new Layer("32 output channels, padding wider than the taps", 1, 2, 6, 8, 32, 3, 3, spec().padding(3).build(), true),
            new Layer("two groups of 32 dilated", 1, 6, 7, 8, 64, 3, 3,
                    spec().padding(Padding.of(0, 2, 1, 3)).dilation(2).groups(2).build(), false),
            new Layer("large kernel strided", 1, 2, 12, 10, 3, 7, 5, spec().stride(2).padding(3).build(), true),
            new Layer("transposed output padding", 2, 4, 5, 6, 3, 3, 3, spec().stride(3, 2).padding(1).outputPadding(2, 1).build(), true),
            new Layer("kernel wider than the input, one-sided padding", 2, 3, 2, 1, 4, 3, 5,
                    spec().padding(Padding.of(1, 2, 8, 0)).dilation(1, 2).build(), true),
            new Layer("single output column, dilated kernel in the padding", 1, 4, 7, 2, 6, 2, 3,
                    spec().stride(2, 3).padding(Padding.of(1, 0, 4, 2)).dilation(2, 3).groups(2).build(), true),
            new Layer("transposed output size", 2, 4, 5, 6, 3, 3, 3, spec().stride(2).outputSize(10, 13).build(), true),
            new Layer("transposed output size same-lower", 1, 4, 4, 5, 6, 4, 3,
                    spec().stride(2, 3).padding(Padding.sameLower()).outputSize(7, 16).groups(2).build(), false));

    /** Every backend that runs our own kernels; one that is not available here is reported as skipped. */
    static final List<Backend> BACKENDS = selected(List.of(CpuBackend.INSTANCE, CudaBackend.EMU, CudaBackend.CUDA, CudnnBackend.INSTANCE));

    /** {@code -Djconv.test.backends=cuda,cudnn} keeps only those (the GPU check's compute-sanitizer runs); default all. */
    private static List<Backend> selected(List<Backend> all) {
        String only = System.getProperty("jconv.test.backends", "");
        if (only.isBlank()) {
            return all;
        }
        List<String> names = List.of(only.split(","));
        return all.stream().filter(b -> names.contains(b.name())).toList();
    }

    /**
     * The table as cuda-kernels/emu/shape_table.inc, which the standalone sanitizer driver (sanitize_driver.cpp,
     * scripts/emu-sanitize.sh) includes: every layer and operation the cases below run, its padding resolved.
     */
    static String sanitizerTable() {
        StringBuilder b = new StringBuilder("// Generated from ShapeTableTest.LAYERS (its test sanitizerTableIsCurrent checks it;\n"
                + "// mvn test -Dtest=ShapeTableTest -Djconv.regenerate=true rewrites it). Fields: sanitize_driver.cpp's Problem.\n");
        for (Run run : runs()) {
            ConvGeometry g = run.geometry();
            b.append(String.format("{\"%s\", %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d},%n",
                    run.layer().name(), g.transposed() ? 1 : 0, g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.p, g.q, g.padTop, g.padBottom,
                    g.padLeft, g.padRight, g.strideH, g.strideW, g.dilationH, g.dilationW, g.groups, g.hasBias ? 1 : 0));
        }
        return b.toString();
    }

    @org.junit.jupiter.api.Test
    void sanitizerTableIsCurrent() throws java.io.IOException {
        java.nio.file.Path file = java.nio.file.Path.of("cuda-kernels", "emu", "shape_table.inc");
        Assumptions.assumeTrue(java.nio.file.Files.isDirectory(file.getParent()), "run from the repository (not the GPU bundle)");
        if (Boolean.getBoolean("jconv.regenerate")) {
            java.nio.file.Files.writeString(file, sanitizerTable());
        }
        org.junit.jupiter.api.Assertions.assertEquals(sanitizerTable(), java.nio.file.Files.readString(file),
                file + " is out of date: mvn test -Dtest=ShapeTableTest -Djconv.regenerate=true rewrites it");
    }

    /** A layer run as one operation. */
    record Run(Layer layer, ConvGeometry.Op op) {
        ConvGeometry geometry() {
            return layer.geometry(op);
        }
    }

    /** Every layer with every operation it takes (output padding and output size are conv_transpose2d's). */
    static List<Run> runs() {
        List<Run> out = new ArrayList<>();
        for (Layer l : LAYERS) {
            boolean transposedOnly = l.spec().outputPaddingH() != 0 || l.spec().outputPaddingW() != 0 || l.spec().hasOutputSize();
            for (ConvGeometry.Op op : ConvGeometry.Op.values()) {
                if (op == ConvGeometry.Op.CONV_TRANSPOSE2D || !transposedOnly) {
                    out.add(new Run(l, op));
                }
            }
        }
        return out;
    }

    /** The geometries of {@link #runs()} (for tests in other packages). */
    public static List<ConvGeometry> geometries() {
        return runs().stream().map(Run::geometry).toList();
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Backend backend : BACKENDS) {
            for (Run run : runs()) {
                List<Algorithm> algorithms = new ArrayList<>(backend.algorithms());
                algorithms.remove(Algorithm.REFERENCE);
                algorithms.add(Algorithm.AUTO);
                for (Algorithm a : algorithms) {
                    for (int threads : backend == CpuBackend.INSTANCE ? new int[] {1, 3} : new int[] {0}) {
                        out.add(Arguments.of(backend.name(), run.layer(), run.op(), a, threads));
                    }
                }
            }
        }
        return out.stream();
    }

    /**
     * Whether algorithm a must take geometry g (false: it must refuse, a documented limitation); null when a
     * size limit decides (kernel-matrix).
     */
    static Boolean mustTake(Algorithm a, ConvGeometry g) {
        switch (a) {
            case DEPTHWISE: return g.isDepthwise();
            case KERNEL_MATRIX: return null;
            case WINOGRAD: return io.github.jconv.cpu.Sgemm.VECTOR && winogradShape(g);
            case VENDOR: return g.padTop == g.padBottom && g.padLeft == g.padRight ? null : Boolean.FALSE;
            default: return true;
        }
    }

    /**
     * A 3x3 kernel at stride 1 and dilation 1 with one group: forward, or transposed where the equivalent forward
     * convolution's padding (2 - pad, plus the output padding at the far sides) is not negative.
     */
    static boolean winogradShape(ConvGeometry g) {
        if (g.r != 3 || g.s != 3 || g.strideH != 1 || g.strideW != 1 || g.dilationH != 1 || g.dilationW != 1 || g.groups != 1) {
            return false;
        }
        int outPadH = g.h - (g.p + 2 - g.padTop - g.padBottom), outPadW = g.w - (g.q + 2 - g.padLeft - g.padRight);
        return !g.transposed() || g.padTop <= 2 && g.padLeft <= 2 && g.padBottom - outPadH <= 2 && g.padRight - outPadW <= 2;
    }

    /** The backend of that name; the test is reported as skipped when it cannot run here (no GPU). */
    private static Backend availableBackend(String name) {
        Backend backend = BACKENDS.stream().filter(b -> b.name().equals(name)).findFirst().orElseThrow();
        Assumptions.assumeTrue(backend.unavailableReason() == null, () -> name + ": " + backend.unavailableReason());
        return backend;
    }

    @ParameterizedTest(name = "{0} {1} {2} {3} threads={4}")
    @MethodSource("cases")
    void matchesFloat64Reference(String backendName, Layer layer, ConvGeometry.Op op, Algorithm algorithm, int threads) {
        Backend backend = availableBackend(backendName);
        ConvGeometry g = layer.geometry(op);
        String why = algorithm == Algorithm.AUTO ? null : backend.cannotImplement(algorithm, g);
        Boolean must = algorithm == Algorithm.AUTO ? Boolean.TRUE : mustTake(algorithm, g);
        if (Boolean.FALSE.equals(must)) {
            assertNotNull(why, algorithm + " must refuse " + g);
            return;
        }
        assertNull(why, "every algorithm takes every layer of this table but the documented refusals");
        float[][] d = TestSupport.data(g, layer.name().hashCode());
        float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
        java.util.Arrays.fill(y, Float.NaN); // outputs must be fully overwritten
        Jconv.run(g, d[0], d[1], d[2], y, ConvOptions.defaults().withBackend(backendName).withAlgorithm(algorithm)
                .withThreads(threads));
        TestSupport.assertMatchesReference(backendName + "/" + algorithm + "/" + threads + "t", backend, algorithm, g, d[0], d[1], d[2], y);
    }

    /**
     * CUTLASS's check: inputs, weights and bias are small integers in [-8, 8], so every product and partial
     * sum is exact in float32 and every algorithm must reproduce the float64 reference bit for bit.
     */
    @ParameterizedTest(name = "{0} {1} {2} {3} threads={4}")
    @MethodSource("cases")
    void exactOnSmallIntegers(String backendName, Layer layer, ConvGeometry.Op op, Algorithm algorithm, int threads) {
        Backend backend = availableBackend(backendName);
        ConvGeometry g = layer.geometry(op);
        if (algorithm != Algorithm.AUTO && backend.cannotImplement(algorithm, g) != null) {
            return; // refusals are checked by matchesFloat64Reference
        }
        java.util.Random rnd = new java.util.Random(layer.name().hashCode() * 31L + op.ordinal());
        float[] x = integers(rnd, Tensor.elementCount(g.inputShape()));
        float[] w = integers(rnd, Tensor.elementCount(g.weightShape()));
        float[] b = g.hasBias ? integers(rnd, g.biasLength()) : null;
        float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
        Jconv.run(g, x, w, b, y, ConvOptions.defaults().withBackend(backendName).withAlgorithm(algorithm).withThreads(threads));
        if (TestSupport.mayRunWinograd(backend, algorithm, g)) { // its transforms divide by 6 and 24: within its bound, not exact
            TestSupport.assertMatchesReference(backendName + "/" + algorithm + " (small integers)", backend, algorithm, g, x, w, b, y);
            return;
        }
        double[] ref = io.github.jconv.cpu.ReferenceConv.compute(g, x, w, b, io.github.jconv.cpu.Parallel.SERIAL);
        for (int i = 0; i < ref.length; i++) {
            if (y[i] != (float) ref[i]) {
                org.junit.jupiter.api.Assertions.fail(backendName + "/" + algorithm + " on " + g + ": element " + i + " is "
                        + y[i] + ", exact result " + ref[i]);
            }
        }
    }

    private static float[] integers(java.util.Random rnd, long n) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = rnd.nextInt(17) - 8;
        }
        return a;
    }
}
