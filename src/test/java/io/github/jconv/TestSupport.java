package io.github.jconv;

import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Random data, the float64 oracle and the error bound shared by the algorithm tests. */
public final class TestSupport {
    /** float32 unit roundoff times two (machine epsilon, 2^-23). */
    public static final double EPS = Math.ulp(1.0f);

    private TestSupport() {
    }

    public static float[] gaussian(Random rnd, long n) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    /** {input, weight, bias-or-null} for {@code g}, Gaussian. */
    public static float[][] data(ConvGeometry g, long seed) {
        Random rnd = new Random(seed);
        return new float[][] {gaussian(rnd, Tensor.elementCount(g.inputShape())),
                gaussian(rnd, Tensor.elementCount(g.weightShape())), g.hasBias ? gaussian(rnd, g.biasLength()) : null};
    }

    private static float[] abs(float[] a) {
        if (a == null) {
            return null;
        }
        float[] b = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = Math.abs(a[i]);
        }
        return b;
    }

    /** Products summed per output element: forward C/G*R*S (+ bias), transposed K/G*R*S (+ bias). */
    public static int terms(ConvGeometry g) {
        return (g.transposed() ? g.kPerGroup() : g.cPerGroup()) * g.r * g.s + 1;
    }

    /**
     * Checks {@code y} (computed by {@code what}) against the float64 reference element by element:
     * |y - ref| <= (4 sqrt(terms) + 1) * eps * sum|x||w| (+|b|) — the float32 accumulation error grows with
     * sqrt(C*R*S) times the magnitude of what is summed; elements that sum nothing must be exact; an element whose
     * reference is NaN or infinite (it reads a non-finite input) must be the same NaN or infinity.
     */
    public static void assertMatchesReference(String what, ConvGeometry g, float[] input, float[] w, float[] b, float[] y) {
        String problem = oracle(g, input, w, b).check(y);
        if (problem != null) {
            fail(what + " on " + g + ": " + problem + scheduleNote(what));
        }
    }

    /** {@link #assertMatchesReference} against the oracle of what {@code algorithm} computes on {@code backend}. */
    public static void assertMatchesReference(String what, Backend backend, Algorithm algorithm, ConvGeometry g, float[] input, float[] w,
                                              float[] b, float[] y) {
        String problem = oracle(backend, algorithm, g, input, w, b).check(y);
        if (problem != null) {
            fail(what + " on " + g + ": " + problem + scheduleNote(what));
        }
    }

    /** The live helper threads of the CPU backend's crew of the given size (named jconv-cpu-N-h1 to h(N-1)). */
    public static java.util.List<Thread> cpuHelpers(int threads) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("jconv-cpu-" + threads + "-h") && t.isAlive())
                .toList();
    }

    /** True on a host with a usable GPU (the cuda backend loads): tests that describe a CPU-only host check the other case. */
    public static boolean gpuPresent() {
        return io.github.jconv.cuda.CudaBackend.CUDA.unavailableReason() == null;
    }

    /** The emulator's schedule seed when {@code what} names the cuda-emu backend, so its failure can be repeated. */
    public static String scheduleNote(String what) {
        return what.contains("cuda-emu") ? " [" + io.github.jconv.cuda.CudaBackend.EMU.scheduleNote() + "]" : "";
    }

    /** The float64 reference of one problem and each element's error bound, computed once for many results. */
    public static Oracle oracle(ConvGeometry g, float[] input, float[] w, float[] b) {
        return new Oracle(ReferenceConv.compute(g, input, w, b, Parallel.SERIAL),
                ReferenceConv.compute(g, abs(input), abs(w), abs(b), Parallel.SERIAL), (4 * Math.sqrt(terms(g)) + 1) * EPS);
    }

    /**
     * The oracle of what {@code algorithm} computes on {@code backend}: {@link io.github.jconv.cpu.WinogradBound}'s looser
     * bound where the cpu backend may run Winograd (asked for it, or {@code auto}, which may pick it where it can take g)
     * on finite operands (with NaN or an infinity it runs the direct kernel), else {@link #oracle(ConvGeometry, float[], float[], float[])}.
     */
    public static Oracle oracle(Backend backend, Algorithm algorithm, ConvGeometry g, float[] input, float[] w, float[] b) {
        if (!mayRunWinograd(backend, algorithm, g) || !allFinite(input) || !allFinite(w)) { // non-finite operands: it runs direct
            return oracle(g, input, w, b);
        }
        return new Oracle(ReferenceConv.compute(g, input, w, b, Parallel.SERIAL), io.github.jconv.cpu.WinogradBound.magnitude(g, input, w, b),
                io.github.jconv.cpu.WinogradBound.factor(g));
    }

    /** {@link #oracle(Backend, Algorithm, ConvGeometry, float[], float[], float[])} of {@code epilogue(conv + b, residual)}. */
    public static Oracle oracle(Backend backend, Algorithm algorithm, ConvGeometry g, float[] input, float[] w, float[] b,
                                Epilogue epilogue, float[] residual) {
        return withEpilogue(oracle(backend, algorithm, g, input, w, b), epilogue, residual);
    }

    private static boolean allFinite(float[] a) {
        for (float v : a) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }

    /** Whether {@code algorithm} on {@code backend} may compute g with Winograd's transforms (and their larger error). */
    public static boolean mayRunWinograd(Backend backend, Algorithm algorithm, ConvGeometry g) {
        return backend == io.github.jconv.cpu.CpuBackend.INSTANCE && (algorithm == Algorithm.WINOGRAD || algorithm == Algorithm.AUTO)
                && backend.cannotImplement(Algorithm.WINOGRAD, g) == null;
    }

    /**
     * The oracle of a math mode ({@link io.github.jconv.MathMode}): FP32 as {@link #oracle(ConvGeometry, float[], float[], float[])};
     * TF32, FP16 and BF16 the float64 convolution of the input and weights rounded as the mode rounds them ({@link
     * ReferenceConv#compute(ConvGeometry, io.github.jconv.MathMode, float[], float[], float[], Parallel)}: the tensor cores'
     * products of rounded operands are exact) with FP32's accumulation bound over their magnitudes; 3xTF32 the plain float64 convolution with FP32's bound
     * over three times the terms (each product is three) plus 7 eps per product: splitting a into big A = tf32(a) and
     * small tf32(a - A) leaves at most 2^-22 |a| (A's rounding error is at most 2^-11 |a| and is itself rounded to 11 bits),
     * so small*big + big*small + big*big misses ab by at most 3 * 2^-22 |ab| (6 eps) and a term of 2^-22 |ab|.
     */
    public static Oracle oracle(ConvGeometry g, io.github.jconv.MathMode math, float[] input, float[] w, float[] b) {
        switch (math) {
            case TF32:
            case FP16:
            case BF16: {
                float[] xr = math.roundOperand(input), wr = math.roundOperand(w);
                return new Oracle(ReferenceConv.compute(g, xr, wr, b, Parallel.SERIAL),
                        ReferenceConv.compute(g, abs(xr), abs(wr), abs(b), Parallel.SERIAL), (4 * Math.sqrt(terms(g)) + 1) * EPS);
            }
            case TF32X3:
                return new Oracle(ReferenceConv.compute(g, input, w, b, Parallel.SERIAL),
                        ReferenceConv.compute(g, abs(input), abs(w), abs(b), Parallel.SERIAL), (4 * Math.sqrt(3.0 * terms(g)) + 8) * EPS);
            default:
                return oracle(g, input, w, b);
        }
    }

    /**
     * The oracle of {@code epilogue(conv + b, residual)}: the epilogue applied in float64 to the reference; every
     * activation is at most 1.1-Lipschitz, so the convolution's bound (over |conv| + |r|) grows by 1.1, plus 8 ulps of
     * the result for the activation's own float32 rounding.
     */
    public static Oracle oracle(ConvGeometry g, float[] input, float[] w, float[] b, Epilogue epilogue, float[] residual) {
        return oracle(g, io.github.jconv.MathMode.FP32, input, w, b, epilogue, residual);
    }

    /** {@link #oracle(ConvGeometry, float[], float[], float[], Epilogue, float[])} in a math mode. */
    public static Oracle oracle(ConvGeometry g, io.github.jconv.MathMode math, float[] input, float[] w, float[] b, Epilogue epilogue,
                                float[] residual) {
        return withEpilogue(oracle(g, math, input, w, b), epilogue, residual);
    }

    private static Oracle withEpilogue(Oracle plain, Epilogue epilogue, float[] residual) {
        if (epilogue.isNone()) {
            return plain;
        }
        double[] ref = plain.ref.clone(), mag = plain.mag.clone();
        for (int i = 0; i < ref.length; i++) {
            double r = residual == null ? 0 : residual[i];
            ref[i] = epilogue.apply(plain.ref[i], r);
            mag[i] = 1.1 * (mag[i] + Math.abs(r)) + 8 * EPS * Math.abs(ref[i]) / plain.factor;
        }
        return new Oracle(ref, mag, plain.factor);
    }

    /** See {@link #assertMatchesReference}. */
    public static final class Oracle {
        private final double[] ref, mag;
        private final double factor;

        Oracle(double[] ref, double[] mag, double factor) {
            this.ref = ref;
            this.mag = mag;
            this.factor = factor;
        }

        /** The float64 reference's values. */
        public double[] reference() {
            return ref.clone();
        }

        /** Null when y matches, else which element is wrong and by how much. */
        public String check(float[] y) {
            for (int i = 0; i < ref.length; i++) {
                if (!Double.isFinite(ref[i])) { // an output that reads NaN or Inf: the same NaN or infinity
                    if (Double.isNaN(ref[i]) ? !Float.isNaN(y[i]) : y[i] != ref[i]) {
                        return "element " + i + " is " + y[i] + ", reference " + ref[i];
                    }
                    continue;
                }
                double err = Math.abs(y[i] - ref[i]);
                if (!(err <= factor * mag[i])) {
                    return "element " + i + " is " + y[i] + ", reference " + ref[i] + " (error " + err + " > bound " + factor * mag[i] + ")";
                }
            }
            return null;
        }
    }

    /** The maths that run on tensor cores: tf32, 3xtf32, fp16, bf16. */
    public static final io.github.jconv.MathMode[] TENSOR_CORE_MATHS = java.util.Arrays.stream(io.github.jconv.MathMode.values())
            .filter(io.github.jconv.MathMode::tensorCores).toArray(io.github.jconv.MathMode[]::new);

    /**
     * How far a tensor-core math's result may be from PyTorch's float32 one (max |y - ref| / max |ref|): the FP32
     * algorithms' 1e-4 for 3xtf32; 2e-3 for tf32 and fp16 (each operand keeps 11 significant bits, so each product may
     * move by 2^-10 of itself); 1.6e-2 for bf16 (8 bits: 2^-7, eight times as far).
     */
    public static double pytorchBound(io.github.jconv.MathMode m) {
        switch (m) {
            case TF32:
            case FP16: return 2e-3;
            case BF16: return 1.6e-2;
            default: return 1e-4;
        }
    }

    /** What {@link #forEachTensorCoreMath} hands over: which backend and math ran, and y. */
    public interface TensorCoreResult {
        void accept(String what, io.github.jconv.MathMode math, float[] y);
    }

    /**
     * y of g's implicit GEMM in a plan in each tensor-core math ({@link #TENSOR_CORE_MATHS}) on every CUDA backend here that runs them
     * (cuda-emu; cuda on sm_80+), given to {@code body}; d is {input, weight, bias-or-null}. Returns how many ran.
     */
    public static int forEachTensorCoreMath(ConvGeometry g, float[][] d, TensorCoreResult body) {
        int runs = 0;
        for (Backend backend : ShapeTableTest.BACKENDS) {
            if (!(backend instanceof io.github.jconv.cuda.CudaBackend) || backend.unavailableReason() != null
                    || backend.cannotUseMath(io.github.jconv.MathMode.TF32) != null || backend.cannotImplement(Algorithm.IMPLICIT_GEMM, g) != null) {
                continue;
            }
            try (Device dev = Device.open(backend.name())) {
                for (io.github.jconv.MathMode m : TENSOR_CORE_MATHS) {
                    try (ConvPlan plan = ConvPlan.of(dev, g, Tensor.of(d[1], g.weightShape()), d[2] == null ? null : Tensor.of(d[2], g.biasLength()))
                            .algorithm(Algorithm.IMPLICIT_GEMM).math(m).build()) {
                        body.accept(backend.name() + "/implicit-gemm math " + m.label(), m, plan.run(Tensor.of(d[0], g.inputShape()), null).data());
                        runs++;
                    }
                }
            }
        }
        return runs;
    }

    /** Calls {@code body} for every algorithm of every available backend that can compute {@code g}. */
    public static void forEachAlgorithm(ConvGeometry g, java.util.function.BiConsumer<Backend, Algorithm> body) {
        for (Backend backend : ShapeTableTest.BACKENDS) {
            if (backend.unavailableReason() != null) {
                continue;
            }
            for (Algorithm a : backend.algorithms()) {
                if (backend.cannotImplement(a, g) == null) {
                    body.accept(backend, a);
                }
            }
        }
    }

    /**
     * Every available backend's every algorithm that takes {@code g} matches the float64 reference (and refuses only
     * as documented); the output starts as NaN, so an element an algorithm forgets to write fails too.
     */
    public static void everyAlgorithmMatches(ConvGeometry g, int threads, long seed) {
        float[][] d = data(g, seed);
        for (Backend backend : ShapeTableTest.BACKENDS) {
            if (backend.unavailableReason() != null) {
                continue;
            }
            for (Algorithm a : backend.algorithms()) {
                if (backend.cannotImplement(a, g) != null) {
                    assertNotEquals(Boolean.TRUE, ShapeTableTest.mustTake(a, g), backend.name() + "/" + a + " refused " + g);
                    continue;
                }
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                Arrays.fill(y, Float.NaN);
                backend.run(a, g, d[0], d[1], d[2], y, threads);
                assertMatchesReference(backend.name() + "/" + a.label() + "/" + threads + "t", backend, a, g, d[0], d[1], d[2], y);
            }
        }
    }

    /** The shared golden cases directory (../shared/golden), set by the build as jconv.golden.dir. */
    public static Path goldenDir() {
        String d = System.getProperty("jconv.golden.dir", "../shared/golden");
        Path p = Path.of(d);
        if (!Files.isDirectory(p)) {
            fail("golden cases not found at " + p.toAbsolutePath() + " (../shared/golden beside the checkout)");
        }
        return p;
    }
}
