package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.ConvGeometry;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnHandle;

import java.util.List;


/**
 * The cross-check: cuDNN (through JCudnn; cuDNN 9 via jcudnn-natives 12.6.0) on the same device as the
 * cuda backend. Legacy convolution API with the group count, CUDNN_FMA_MATH so the comparison is strict
 * float32 (cuDNN may use TF32 otherwise), cuDNN's own algorithm choice (Get_v7) and a workspace of the size
 * it asks for. conv_transpose2d is cuDNN's backward-data pass. Symmetric padding only.
 */
public final class CudnnBackend implements Backend {
    public static final CudnnBackend INSTANCE = new CudnnBackend();

    private volatile String unavailable;
    private volatile boolean probed;
    private cudnnHandle handle;

    private CudnnBackend() {
    }

    @Override
    public String name() {
        return "cudnn";
    }

    @Override
    public synchronized String unavailableReason() {
        if (!probed) {
            unavailable = JCudaDevice.startLibrary("cuDNN", "libcudnn.so.9 on the library path?", () -> {
                JCudnn.setExceptionsEnabled(true);
                cudnnHandle h = new cudnnHandle();
                JCudnn.cudnnCreate(h);
                handle = h;
            });
            probed = true;
        }
        return unavailable;
    }

    @Override
    public List<Algorithm> algorithms() {
        return List.of(Algorithm.VENDOR);
    }

    @Override
    public String cannotImplement(Algorithm algorithm, ConvGeometry g) {
        String why = unavailableReason();
        if (why != null) {
            return why;
        }
        if (algorithm != Algorithm.VENDOR) {
            return "the cudnn backend has only the algorithm 'vendor' (cuDNN chooses)";
        }
        if (g.padTop != g.padBottom || g.padLeft != g.padRight) {
            return "cuDNN takes symmetric padding only";
        }
        if (g.transposed() && (ConvGeometry.convOutputSize(g.h, 2 * g.padTop, g.r, g.strideH, g.dilationH) != g.p
                || ConvGeometry.convOutputSize(g.w, 2 * g.padLeft, g.s, g.strideW, g.dilationW) != g.q)) {
            return "output padding of at least the stride is not expressible as cuDNN's backward-data pass";
        }
        return null;
    }

    @Override
    public Algorithm choose(ConvGeometry g) {
        return Algorithm.VENDOR;
    }

    /** Runs with CUDNN_FMA_MATH (strict float32), as every backend call does. */
    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    int threads) {
        run(algorithm, g, input, weight, bias, output, true);
    }

    /** As {@link #run}, with cuDNN's default math instead when {@code fmaMath} is false (it may use TF32). */
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    boolean fmaMath) {
        if (!prepare(algorithm, g)) {
            return;
        }
        execute(g, pass(g), input, weight, bias, output, fmaMath);
    }

    @Override
    public String cannotImplementBackwardWeight(Algorithm algorithm, ConvGeometry g) {
        return cannotImplement(algorithm, g);
    }

    @Override
    public Algorithm chooseBackwardWeight(ConvGeometry g) {
        return Algorithm.VENDOR;
    }

    /** cudnnConvolutionBackwardFilter with CUDNN_FMA_MATH (the cross-check of jconv's weight gradient). */
    @Override
    public void backwardWeight(Algorithm algorithm, ConvGeometry g, float[] x, float[] dy, float[] dw, int threads) {
        resolveBackwardWeight(algorithm, g);
        if (g.isEmpty()) {
            java.util.Arrays.fill(dw, 0f); // a sum over no samples
            return;
        }
        execute(g, CudnnPlan.Pass.BACKWARD_FILTER, x, dy, null, dw, true);
    }

    /**
     * One stateless cuDNN call: operands uploaded on a stream of the call's own, a {@link CudnnPlan} with the shared
     * handle and the Get_v7 heuristic (no timed search for a one-off call), the result downloaded.
     */
    private void execute(ConvGeometry g, CudnnPlan.Pass pass, float[] input, float[] weight, float[] bias, float[] output, boolean fmaMath) {
        JCudaDevice device = JCudaDevice.get();
        synchronized (this) { // one shared cuDNN handle, set to this call's stream
            try (DeviceArena arena = new DeviceArena(device);
                 DeviceBuffer in = arena.upload(input);
                 DeviceBuffer w = arena.upload(weight);
                 DeviceBuffer b = bias == null ? null : arena.upload(bias);
                 DeviceBuffer out = arena.allocate(output.length);
                 CudnnPlan plan = new CudnnPlan(g, pass, io.github.jconv.Epilogue.none(), arena, handle, false, fmaMath)) {
                plan.run(in, w, b, null, out);
                out.download(output);
            }
        }
    }

    /** The pass that computes g's operation: forward for conv2d, backward-data for conv_transpose2d. */
    public static CudnnPlan.Pass pass(ConvGeometry g) {
        return g.transposed() ? CudnnPlan.Pass.BACKWARD_DATA : CudnnPlan.Pass.FORWARD;
    }

    /**
     * Plans on cudnn take FP32 (CUDNN_FMA_MATH) and TF32 (CUDNN_DEFAULT_MATH: cuDNN may use TF32 tensor cores); not 3xTF32
     * (cuDNN has none) nor fp16 / bf16 math on float32 tensors (not wired to cuDNN's conversion math here).
     */
    @Override
    public String cannotUseMath(io.github.jconv.MathMode math) {
        if (math == io.github.jconv.MathMode.TF32X3) {
            return "cuDNN has no 3xTF32 math (fp32 is CUDNN_FMA_MATH, tf32 its default math)";
        }
        return math.halfOperands() ? "the cudnn backend computes float32 tensors in fp32 or tf32 only; math " + math.label()
                + " runs on the cuda backend's tensor-core kernels" : null;
    }
}
