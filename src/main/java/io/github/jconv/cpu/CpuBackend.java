package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** The pure-Java backend: always available, multi-threaded. */
public final class CpuBackend implements Backend {
    /**
     * y = max_pool2d(x, kernel, stride, pad) over {@code planes} planes of h x w -> p x q on {@code threads} threads (0:
     * all cores) on the Vector API ({@link VectorPool}) where it is loaded and takes the window ({@link
     * VectorPool#applies}); returns false (nothing done) otherwise, for the caller's own loops.
     */
    public static boolean maxPool(float[] x, int planes, int h, int w, float[] y, int p, int q, int kernel, int stride, int pad,
                                  int threads) {
        if (!Sgemm.VECTOR || !VectorPool.applies(kernel, pad)) {
            return false;
        }
        VectorPool.pool3(x, planes, h, w, y, p, q, stride, pad, Parallel.of(threads));
        return true;
    }

    public static final CpuBackend INSTANCE = new CpuBackend();

    private final Map<Algorithm, CpuConvolution> algorithms = new EnumMap<>(Algorithm.class);

    /**
     * Bytes the calling thread has allocated for scratch buffers too large to keep between calls (above 64 MiB each; the
     * smaller ones are allocated once and reused): the one allocation a CPU call makes on purpose, which the warm-up's
     * allocation rule ({@link io.github.jconv.Warmup}) leaves out.
     */
    public static long workspaceBytesAllocated() {
        return Workspace.uncachedBytes();
    }

    private CpuBackend() {
        algorithms.put(Algorithm.REFERENCE, new ReferenceConv());
        algorithms.put(Algorithm.DIRECT, new DirectConv());
        algorithms.put(Algorithm.IM2COL, new Im2colConv());
        algorithms.put(Algorithm.KERNEL_MATRIX, new KernelMatrixConv());
        algorithms.put(Algorithm.DEPTHWISE, new DepthwiseConv());
        algorithms.put(Algorithm.WINOGRAD, new WinogradConv());
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String unavailableReason() {
        return null;
    }

    @Override
    public List<Algorithm> algorithms() {
        return List.copyOf(algorithms.keySet());
    }

    @Override
    public String cannotImplement(Algorithm algorithm, ConvGeometry g) {
        CpuConvolution impl = algorithms.get(algorithm);
        if (impl == null) {
            return "the cpu backend has no algorithm '" + algorithm + "'";
        }
        return impl.cannotImplement(g);
    }

    /** Per call, on the calling thread's (or each worker's) reused buffers. */
    @Override
    public long workspaceBytes(Algorithm algorithm, ConvGeometry g) {
        long col = (long) g.cPerGroup() * g.r * g.s * g.p * g.q;
        long weights = (long) g.k * g.cPerGroup() * g.r * g.s;
        long padded = (long) g.cPerGroup() * g.paddedH() * g.paddedW();
        switch (algorithm) {
            case REFERENCE: return 8L * (g.transposed() ? (long) g.n * g.c * g.h * g.w : (long) g.n * g.k * g.p * g.q);
            case IM2COL: return 4L * (col + weights);
            case KERNEL_MATRIX: return 4L * g.cPerGroup() * g.h * g.w * g.kPerGroup() * g.p * g.q;
            case DIRECT:
                if (Sgemm.VECTOR && Pointwise.appliesStrided(g)) {
                    return 4L * Pointwise.stridedWorkspaceFloats(g);
                }
                if (DirectConv.onChannelsKernel(g)) {
                    return 4L * VectorDirectChannels.workspaceFloats(DirectConv.vectorForm(g));
                }
                if (DirectConv.onDeinterleavedKernel(g)) {
                    return 4L * VectorDirectDeinterleaved.workspaceFloats(g);
                }
                if (DirectConv.onStridedKernel(g)) {
                    return 4L * VectorDirectStrided.workspaceFloats(g);
                }
                return Sgemm.VECTOR ? 4L * (padded + weights) : 0;
            case DEPTHWISE:
                if (Sgemm.VECTOR && VectorDepthwiseChannels.applies(g)) {
                    return 4L * (VectorDepthwiseChannels.workspaceFloats(g) + weights);
                }
                if (Sgemm.VECTOR && VectorDepthwise.applies(g)) {
                    return 4L * VectorDepthwise.workspaceFloats(g);
                }
                return Sgemm.VECTOR ? 4L * (padded + weights) : 0;
            case WINOGRAD:
                return cannotImplement(algorithm, g) == null ? 4L * VectorWinograd.workspaceFloats(DirectConv.vectorForm(g)) : 0;
            default: return 0;
        }
    }

    /**
     * Transformed weights per output (36 C / (N P Q) for F(4x4, 3x3)) above which the tuner times the candidates with the
     * caches cleared ({@link #timedCold}): Winograd reads them all every call, 4x direct's weights, and in a network at
     * batch 1 they come from memory. On weights it had just used the tuner timed Winograd 1.07-1.17x faster than direct
     * on ResNet-50's 256 -> 256 3x3 layer at 14x14 (47 per output) and picked it in 2 of 10 fresh tunings, while inside the
     * trunk it ran 0.80 vs 0.76 ms and 1.0 vs 0.87 (AMD EPYC Zen 5, 2 threads); so it was left out of tuning there. On a Zen
     * 4 VM (2026-12-05) the same layer ran 0.61-0.86 ms with Winograd inside the trunk against direct's 1.31-1.33, and
     * the 512 one at 7x7 1.07-1.28 against 1.37-1.39 (ONNX Runtime 1.01-1.04 and 1.18): which wins depends on the machine,
     * so the tuner times it as the trunk runs it instead of leaving it out. At or below this (128 -> 128 at 28x28: 5.9,
     * 64 -> 64 at 56x56: 0.7, batch 8 at 14x14: 5.9) the weights stay in the caches and the timing is warm. Swept caches
     * alone also evicted the input and Winograd's workspaces, which stay in the caches inside a trunk: at one thread
     * (Zen 5) the tuner saw Winograd 1.05-1.19x ahead on the 14x14 layer, inside the trunk 1.3-1.45x, and kept direct in
     * one of two trunk tunings; with a run on a copy of the weights after the sweep, Winograd in 3 of 3.
     */
    static final int WINOGRAD_WEIGHTS_PER_OUTPUT = 16;

    @Override
    public boolean timedCold(ConvGeometry g) {
        if (cannotImplement(Algorithm.WINOGRAD, g) != null) {
            return false;
        }
        ConvGeometry f = DirectConv.vectorForm(g);
        return 36.0 * f.c / ((double) f.n * f.p * f.q) > WINOGRAD_WEIGHTS_PER_OUTPUT;
    }

    /**
     * Depthwise layers go to the depthwise kernel; with the Vector API, dense 3x3-like stride-1 layers
     * ({@link VectorDirectChannels}) and other grouped layers with stride 1 along W (transposed: stride 1) to the
     * direct kernels (faster than im2col there: 1.2-1.8x on the dense 3x3 layers of the README, and im2col's GEMMs
     * are too small for grouped layers), and so do layers strided along W with a kernel larger than 1x1 and at least 64
     * output channels per group ({@link VectorDirectStrided}: 1.3-1.9x on ResNet-50's stem and stride-2 3x3 layers at
     * batch 1; stems of at most 4 input channels now {@link VectorDirectDeinterleaved}, faster still), and unpadded 1x1
     * layers ({@link Pointwise}: faster than im2col on 29 of ResNet-50's 30 1x1 layers at batch 1 and 8 in one run on
     * Zen 5, 1.03-2.4x; 0.84x on 1024 -> 2048 s2 at batch 1, which it won in another); the rest to im2col + GEMM (direct
     * if im2col cannot). Chosen from the bench figures in the README. Never Winograd: its error is ~10x direct's and
     * whether it wins depends on the machine, so only the tuner picks it, where it measures it faster by a margin
     * ({@link io.github.jconv.Autotuner#WINOGRAD_MARGIN}; with the caches cleared where its weights outweigh the work).
     */
    @Override
    public Algorithm choose(ConvGeometry g) {
        if (g.groups > 1 && g.isDepthwise()) {
            return Algorithm.DEPTHWISE;
        }
        if (DirectConv.onChannelsKernel(g)) {
            return Algorithm.DIRECT;
        }
        if (DirectConv.onPointwiseKernel(g)) {
            return Algorithm.DIRECT;
        }
        if (g.groups > 1 && Sgemm.VECTOR && (g.transposed() ? StrideOneTransposed.applies(g) : g.strideW == 1)) {
            return Algorithm.DIRECT;
        }
        if ((DirectConv.onStridedKernel(g) || DirectConv.onDeinterleavedKernel(g)) && g.r * g.s > 1) {
            return Algorithm.DIRECT;
        }
        return cannotImplement(Algorithm.IM2COL, g) == null ? Algorithm.IM2COL : Algorithm.DIRECT;
    }

    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    int threads) {
        run(algorithm, g, input, weight, bias, Epilogue.none(), null, output, threads);
    }

    @Override
    public String cannotImplementBackwardWeight(Algorithm algorithm, ConvGeometry g) {
        return WeightGradient.cannotImplement(algorithm, g);
    }

    @Override
    public Algorithm chooseBackwardWeight(ConvGeometry g) {
        return WeightGradient.choose(g);
    }

    @Override
    public void backwardWeight(Algorithm algorithm, ConvGeometry g, float[] x, float[] dy, float[] dw, int threads) {
        WeightGradient.run(algorithm, g, x, dy, dw, Parallel.of(threads));
    }

    /**
     * The epilogue is applied by the worker that finishes each run of the output, while it is in that worker's cache
     * ({@link CpuConvolution.Finish}): no extra pass over the output.
     */
    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, Epilogue epilogue,
                    float[] residual, float[] output, int threads) {
        run(algorithm, g, input, Weights.of(weight), bias, epilogue, residual, output, threads);
    }

    /**
     * {@link #run(Algorithm, ConvGeometry, float[], float[], float[], Epilogue, float[], float[], int)} with the weights
     * held by a plan ({@link Weights#kept}): the first run packs them (in the algorithm's layout for g), the later ones
     * reuse the packed form.
     */
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, Weights weight, float[] bias, Epilogue epilogue,
                    float[] residual, float[] output, int threads) {
        if (residual != null && residual == output && !residualInPlace(algorithm, g, epilogue)) {
            throw new IllegalArgumentException(algorithm.label() + " does not add a residual in place on " + g + " (residual == output)");
        }
        if (!prepare(algorithm, g, epilogue, residual, output)) {
            return;
        }
        CpuConvolution impl = algorithms.get(algorithm);
        Parallel par = Parallel.of(threads);
        CpuConvolution.Finish done = finish(epilogue, output, residual);
        if (g.transposed()) {
            impl.transposed(g, input, weight, bias, output, done, par);
        } else {
            impl.forward(g, input, weight, bias, output, done, par);
        }
    }

    /**
     * Null where {@link #runExpandDepthwise} runs a 1 x 1 expansion on {@code a1} and the depthwise layer after it on
     * {@code a2} as one pass ({@link ExpandDepthwise}, the same bits as the two calls), else why not: direct's 1 x 1
     * kernel and the depthwise algorithm's plane kernel for MobileNet's 3 x 3 layers ({@link ExpandDepthwise#cannotFuse}).
     */
    public static String cannotFuseExpandDepthwise(Algorithm a1, ConvGeometry g1, Epilogue e1, Algorithm a2, ConvGeometry g2, Epilogue e2) {
        if (a1 != Algorithm.DIRECT || a2 != Algorithm.DEPTHWISE) {
            return "the pair runs as one pass on the direct and depthwise algorithms, not " + a1.label() + " and " + a2.label();
        }
        return ExpandDepthwise.cannotFuse(g1, e1, g2, e2);
    }

    /**
     * y = e2(conv(e1(conv(x, w1) + b1), w2) + b2) for a pair {@link #cannotFuseExpandDepthwise} takes, without the
     * intermediate tensor; the weights held by the two plans ({@link Weights#kept}).
     */
    public void runExpandDepthwise(ConvGeometry g1, float[] x, Weights w1, float[] b1, Epilogue e1, ConvGeometry g2, Weights w2, float[] b2,
                                   Epilogue e2, float[] y, int threads) {
        ExpandDepthwise.forward(g1, x, w1, b1, e1, g2, w2, b2, y, finish(e2, y, null), Parallel.of(threads));
    }

    /** The epilogue on output's finished runs: nothing, the vector epilogue, or the scalar one without the Vector API. */
    private static CpuConvolution.Finish finish(Epilogue epilogue, float[] output, float[] residual) {
        return epilogue.isNone() ? CpuConvolution.Finish.NONE
                : Sgemm.VECTOR ? new VectorEpilogue(epilogue, output, residual)
                : (from, to) -> epilogue.applyInPlace(output, residual, from, to);
    }

    /**
     * Whether {@link #run} may be given the output array as the residual (y = act(conv + bias + y), in place): where every
     * output element's residual is read just before that element is written, and by nothing else. {@link Pointwise}'s 1 x 1
     * kernel ({@code direct} on an unpadded 1 x 1 forward layer) applies a ReLU, ReLU6 or no activation with the residual
     * to each result in registers before its store ({@link VectorEpilogue#vector}, {@link VectorEpilogue#value}); the other
     * kernels store their sums and add the residual over the stored run, which in place would add the sums to themselves.
     * In place the output's lines are not fetched from memory before being written (they are the residual's, just read):
     * ResNet-50's 64 -> 256 at 56 x 56 with relu(conv + residual), batch 1, 2 threads, 0.628 -> 0.587 ms, 128 -> 512 at
     * 28 x 28 0.568 -> 0.536, 256 -> 1024 at 14 x 14 0.501 -> 0.497 (medians of 30-call slots alternating in one process,
     * AMD EPYC Zen 4 VM).
     */
    public static boolean residualInPlace(Algorithm algorithm, ConvGeometry g, Epilogue epilogue) {
        return algorithm == Algorithm.DIRECT && DirectConv.onPointwiseKernel(g) && epilogue.hasResidual()
                && VectorEpilogue.vectorises(epilogue.activation());
    }
}
