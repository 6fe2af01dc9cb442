package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.ConvGeometry;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.MathMode;

import java.util.List;
import java.util.function.Supplier;

/**
 * jconv's own CUDA kernels behind {@link DeviceApi}: {@link #CUDA} on a GPU through JCuda, {@link #EMU}
 * ({@code cuda-emu}) on the CPU emulation of the same kernel sources. Every call takes a stream of its own
 * (so calls from many threads overlap on the device), uploads its operands through the stream's pinned
 * staging, queues the launcher(s) and downloads the result; device memory comes from an arena that fails on
 * a leak.
 */
public final class CudaBackend implements Backend {
    public static final CudaBackend CUDA = new CudaBackend("cuda", JCudaDevice::unavailableReason, JCudaDevice::get);
    public static final CudaBackend EMU = new CudaBackend("cuda-emu", EmuDevice::unavailableReason, () -> EmuDevice.INSTANCE);

    /**
     * What launches jconv's own kernels (pool.cu, layout.cu) on a device of {@code backend}: that backend itself, or on a
     * cudnn device (the same GPU and stream) the cuda one.
     */
    public static CudaBackend kernelsFor(Backend backend) {
        return backend instanceof CudaBackend cuda ? cuda : CUDA;
    }

    private static final List<Algorithm> ALGORITHMS =
            List.of(Algorithm.DIRECT, Algorithm.IM2COL, Algorithm.IMPLICIT_GEMM, Algorithm.DEPTHWISE);
    private static final Launcher DIRECT = new DirectLauncher();
    private static final Launcher TRANSPOSED = new TransposedLauncher();
    private static final Launcher IM2COL = new Im2colLauncher();
    private static final ImplicitGemmLauncher IMPLICIT_GEMM = new ImplicitGemmLauncher();
    private static final Launcher DEPTHWISE = new DepthwiseLauncher();

    private final String name;
    private final Supplier<String> unavailable;
    private final Supplier<DeviceApi> device;

    private CudaBackend(String name, Supplier<String> unavailable, Supplier<DeviceApi> device) {
        this.name = name;
        this.unavailable = unavailable;
        this.device = device;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String unavailableReason() {
        return unavailable.get();
    }

    /** The device behind this backend (a GPU through JCuda, or the emulator); only when available. */
    public DeviceApi device() {
        return device.get();
    }

    /**
     * Queues the operation on buffers that are already on the device, on {@code arena}'s stream, without touching the
     * host (a plan's run): out = epilogue(op(in, w) + bias, residual). Bias and residual may be null. With a
     * tensor-core math ({@link MathMode#tensorCores()}) the implicit GEMM runs its TF32 / 3xTF32 / FP16 / BF16 kernels; the other
     * algorithms compute in FP32 (which those modes allow).
     */
    public void runOnDevice(Algorithm algorithm, ConvGeometry g, MathMode math, DeviceArena arena, DeviceBuffer in, DeviceBuffer w,
                            DeviceBuffer bias, Epilogue epilogue, DeviceBuffer residual, DeviceBuffer out) {
        if (!prepare(algorithm, g)) {
            return;
        }
        if (algorithm == Algorithm.IMPLICIT_GEMM) {
            IMPLICIT_GEMM.run(arena, g, math, in, w, bias, epilogue, residual, out);
        } else {
            launcher(algorithm, g).run(arena, g, in, w, bias, epilogue, residual, out);
        }
    }

    /**
     * Whether a plan of {@code algorithm} in {@code math} on tensors of {@code storage} runs on them as they are stored
     * ({@link #runStoredOnDevice}): the implicit GEMM in fp16 math on fp16 tensors, or bf16 on bf16 ones.
     */
    public static boolean loadsAsStored(Algorithm algorithm, MathMode math, Dtype storage) {
        return algorithm == Algorithm.IMPLICIT_GEMM && ImplicitGemmLauncher.loadsAsStored(math, storage);
    }

    /**
     * The implicit GEMM on half-precision tensors as they are stored ({@link #loadsAsStored}): in, w, residual and out
     * hold 16-bit elements of {@code storage}, the bias float32; the kernels load them into the half-precision main loop
     * and round the result as they store it.
     */
    public void runStoredOnDevice(ConvGeometry g, MathMode math, Dtype storage, DeviceArena arena, DeviceBuffer in, DeviceBuffer w,
                                  DeviceBuffer bias, Epilogue epilogue, DeviceBuffer residual, DeviceBuffer out) {
        if (prepare(Algorithm.IMPLICIT_GEMM, g)) {
            IMPLICIT_GEMM.run(arena, g, math, storage, in, w, bias, epilogue, residual, out);
        }
    }

    /**
     * Whether the channels-last kernels compute plans of {@code algorithm} in {@code math} on tensors of {@code storage}: the
     * implicit GEMM on fp16 tensors in fp16, bf16 in bf16, or float32 in tf32 / 3xtf32 (cuda-kernels/implicit_gemm_nhwc.cu).
     */
    public static boolean channelsLastMath(Algorithm algorithm, MathMode math, Dtype storage) {
        return algorithm == Algorithm.IMPLICIT_GEMM && ImplicitGemmNhwcLauncher.takes(math, storage);
    }

    /**
     * Whether a plan of {@code algorithm} in {@code math} on channels-last tensors of {@code storage} runs on them as they are
     * stored ({@link #runChannelsLastOnDevice}): {@link #channelsLastMath}, and the channels-last kernels take g (one group,
     * C whole 16-byte chunks, K even).
     */
    public static boolean takesChannelsLast(Algorithm algorithm, MathMode math, Dtype storage, ConvGeometry g) {
        return channelsLastMath(algorithm, math, storage) && ImplicitGemmNhwcLauncher.cannotImplement(g, storage) == null;
    }

    /** Why the channels-last kernels cannot take g on tensors of {@code storage}, or null (for a plan's explain). */
    public static String cannotTakeChannelsLast(ConvGeometry g, Dtype storage) {
        return ImplicitGemmNhwcLauncher.cannotImplement(g, storage);
    }

    /** PyTorch's K x C x R x S weights as the channels-last kernels read them, K x R x S x C. */
    public static float[] channelsLastWeights(ConvGeometry g, float[] kcrs) {
        return ImplicitGemmNhwcLauncher.krsc(g, kcrs);
    }

    /**
     * conv2d on channels-last tensors as they are stored ({@link #takesChannelsLast}): in, residual and out NHWC buffers of
     * {@code storage} elements, w K x R x S x C ({@link #channelsLastWeights}) of them, the bias float32.
     */
    public void runChannelsLastOnDevice(ConvGeometry g, MathMode math, Dtype storage, DeviceArena arena, DeviceBuffer in, DeviceBuffer w,
                                        DeviceBuffer bias, Epilogue epilogue, DeviceBuffer residual, DeviceBuffer out) {
        if (prepare(Algorithm.IMPLICIT_GEMM, g)) {
            ImplicitGemmNhwcLauncher.run(arena, g, math, storage, in, w, bias, epilogue, residual, out);
        }
    }

    /** Device memory the channels-last kernels take beyond the operands for g: split-K's partial outputs. */
    public static long channelsLastWorkspaceBytes(ConvGeometry g, Dtype storage) {
        return ImplicitGemmNhwcLauncher.workspaceBytes(g, storage);
    }

    /** The channels-last kernel, tile and pipeline for g (from the geometry alone). */
    public static String channelsLastVariant(ConvGeometry g, MathMode math, Dtype storage) {
        return ImplicitGemmNhwcLauncher.variant(g, math, storage);
    }

    /**
     * Null when plans on this backend can compute in {@code math}: FP32 always; the tensor-core modes on the emulator, and
     * on a GPU with TF32 and BF16 tensor cores (sm_80 or newer; GPU 0 is asked).
     */
    @Override
    public String cannotUseMath(MathMode math) {
        if (!math.tensorCores() || unavailableReason() != null) {
            return null; // an unavailable backend fails when its device opens, naming why
        }
        int cc = device().computeCapability();
        return cc >= 80 ? null : "needs " + (math.halfOperands() ? "m16n8k16 " + math.label() : "TF32") + " tensor cores (sm_80 or newer); this GPU is sm_" + cc;
    }

    /** The algorithm a plan with tensor-core math takes for {@code auto}: the implicit GEMM where it can; null (tune as for fp32) otherwise. */
    public Algorithm chooseFor(MathMode math, ConvGeometry g) {
        return math.tensorCores() && IMPLICIT_GEMM.cannotImplement(g) == null ? Algorithm.IMPLICIT_GEMM : null;
    }

    /**
     * Queues max pooling (cuda-kernels/pool.cu) of an N x C x H x W buffer into N x C x P x Q with a square window,
     * stride and padding, on {@code arena}'s stream.
     */
    public void maxPoolOnDevice(DeviceArena arena, int[] in, int[] out, int kernel, int stride, int padding, DeviceBuffer x,
                                DeviceBuffer y) {
        int[] params = {in[0], in[1], in[2], in[3], in[1], kernel, kernel, out[2], out[3], padding, padding, stride, stride, 1, 1, 1,
                0, 0, 0, 0, 0};
        Launcher.launch(arena, "jconv_maxpool2d", Launcher.grid1d((long) out[0] * out[1] * out[2] * out[3]), Launcher.BLOCK_1D, params,
                y, x, y);
    }

    /**
     * Queues the conversion (cuda-kernels/layout.cu) of the 4-D activation x, of logical shape N x C x H x W, from NCHW to
     * NHWC ({@code toNhwc}) or back, into y, on {@code arena}'s stream: per sample a transpose of C x HW into HW x C, or
     * back.
     */
    public void convertLayoutOnDevice(DeviceArena arena, int[] shape, boolean toNhwc, DeviceBuffer x, DeviceBuffer y) {
        int c = shape[1], hw = shape[2] * shape[3];
        int[] params = new int[21];
        params[0] = shape[0];
        params[2] = toNhwc ? c : hw; // rows and columns of each sample's matrix
        params[3] = toNhwc ? hw : c;
        long tiles = (long) shape[0] * ((params[2] + 31) / 32) * ((params[3] + 31) / 32);
        Launcher.launch(arena, "jconv_transpose_planes", new int[] {(int) Math.max(1, Math.min(Launcher.MAX_BLOCKS, tiles)), 1, 1},
                Launcher.BLOCK_1D, params, y, x, y);
    }

    /**
     * Queues the conversion (cuda-kernels/dtype.cu) of {@code count} elements between float32 and half-precision storage:
     * {@code toHalf} rounds the floats of x to the 16-bit elements of y (to nearest even), otherwise the 16-bit elements of
     * x become the floats of y (exactly). {@code bf16}: bfloat16, else IEEE binary16.
     */
    public void convertDtypeOnDevice(DeviceArena arena, long count, boolean bf16, boolean toHalf, DeviceBuffer x, DeviceBuffer y) {
        int[] params = new int[21];
        params[0] = Math.toIntExact(count);
        params[1] = bf16 ? 1 : 0;
        Launcher.launch(arena, toHalf ? "jconv_float_to_half" : "jconv_half_to_float", Launcher.grid1d(count), Launcher.BLOCK_1D, params,
                y, x, y);
    }

    /** What runs the kernels (device name or the emulator); only when available. */
    public String describeDevice() {
        return device.get().describe();
    }

    /**
     * The device's float32 FMA rate in GFLOP/s, measured now with cuda-kernels/fma_probe.cu (best of three
     * launches of 8 chains x 4096 steps on 1024 x 256 threads); NaN for the emulator, whose rate means nothing.
     */
    public double measuredPeakGflops() {
        if (this == EMU || unavailableReason() != null) {
            return Double.NaN;
        }
        int blocks = 1024, threads = 256, steps = 4096;
        double best = 0;
        try (DeviceArena arena = new DeviceArena(device.get());
             DeviceBuffer seed = arena.upload(new float[] {1f});
             DeviceBuffer out = arena.allocate((long) blocks * threads)) {
            for (int i = 0; i < 4; i++) {
                long t0 = System.nanoTime();
                Launcher.launch(arena, "jconv_fma_probe", new int[] {blocks, 1, 1}, new int[] {threads, 1, 1},
                        new int[] {0, 0, steps, 0, 0, 0, 0, 0, 0, 0, 0}, out, seed, out);
                arena.stream().synchronize();
                double s = (System.nanoTime() - t0) / 1e9;
                if (i > 0) { // the first launch pays for loading the module
                    best = Math.max(best, 2.0 * 8 * steps * blocks * threads / s / 1e9);
                }
            }
        }
        return best;
    }

    /**
     * For a fault report: the emulator's schedule seed and how to repeat it ({@code JCONV_EMU_SEED}); empty for a
     * GPU, whose schedule nothing repeats.
     */
    public String scheduleNote() {
        return this == EMU && unavailableReason() == null
                ? "emulator schedule seed " + EmuNative.scheduleSeed() + " (JCONV_EMU_SEED=" + EmuNative.scheduleSeed() + " repeats it)"
                : "";
    }

    /** Which GEMM im2col uses here: cuBLAS, or our sgemm.cu and why not cuBLAS. */
    public String gemm() {
        if (this == EMU) {
            return "own sgemm.cu kernel (emulated)";
        }
        String why = CublasGemm.unavailableReason();
        return why == null ? "cuBLAS" : "own sgemm.cu kernel (" + why + ")";
    }

    @Override
    public List<Algorithm> algorithms() {
        return ALGORITHMS;
    }

    private static Launcher launcher(Algorithm a, ConvGeometry g) {
        switch (a) {
            case DIRECT: return g.transposed() ? TRANSPOSED : DIRECT;
            case IM2COL: return IM2COL;
            case IMPLICIT_GEMM: return IMPLICIT_GEMM;
            case DEPTHWISE: return DEPTHWISE;
            default: return null;
        }
    }

    @Override
    public String cannotImplement(Algorithm algorithm, ConvGeometry g) {
        String why = unavailableReason();
        if (why != null) {
            return why;
        }
        Launcher l = launcher(algorithm, g);
        return l == null ? "the " + name + " backend has no algorithm '" + algorithm + "'" : l.cannotImplement(g);
    }

    /** Device memory beyond inputs and output: im2col's column buffer, implicit GEMM's split-K partial outputs. */
    @Override
    public long workspaceBytes(Algorithm algorithm, ConvGeometry g) {
        return algorithm == Algorithm.IM2COL ? 4L * Im2colLauncher.colFloats(g)
                : algorithm == Algorithm.IMPLICIT_GEMM && IMPLICIT_GEMM.cannotImplement(g) == null ? ImplicitGemmLauncher.workspaceBytes(g) : 0;
    }

    /** Depthwise layers to depthwise.cu, the others to implicit GEMM (fprop, or dgrad by stride phases for conv_transpose2d). */
    @Override
    public Algorithm choose(ConvGeometry g) {
        if (g.groups > 1 && g.isDepthwise()) {
            return Algorithm.DEPTHWISE;
        }
        return IMPLICIT_GEMM.cannotImplement(g) == null ? Algorithm.IMPLICIT_GEMM : Algorithm.IM2COL;
    }

    /** The implicit GEMM's kernel, tile and why (the geometry alone decides, so this holds without a device). */
    @Override
    public String variant(Algorithm algorithm, ConvGeometry g) {
        return variant(algorithm, g, MathMode.FP32);
    }

    /** {@link #variant(Algorithm, ConvGeometry)} under a math mode (its tensor-core kernel, for the implicit GEMM). */
    public String variant(Algorithm algorithm, ConvGeometry g, MathMode math) {
        return variant(algorithm, g, math, Dtype.FP32);
    }

    /** As above on tensors of {@code storage} (the 16-bit kernels where {@link #loadsAsStored}). */
    public String variant(Algorithm algorithm, ConvGeometry g, MathMode math, Dtype storage) {
        return algorithm == Algorithm.IMPLICIT_GEMM && IMPLICIT_GEMM.cannotImplement(g) == null
                ? ImplicitGemmLauncher.variant(g, math, loadsAsStored(algorithm, math, storage) ? storage : Dtype.FP32) : null;
    }

    @Override
    public String cannotImplementBackwardWeight(Algorithm algorithm, ConvGeometry g) {
        String why = unavailableReason();
        if (why != null) {
            return why;
        }
        return algorithm == Algorithm.IMPLICIT_GEMM ? WgradLauncher.cannotImplement(g)
                : "the weight gradient runs on implicit-gemm on the " + name + " backend, not " + algorithm;
    }

    @Override
    public Algorithm chooseBackwardWeight(ConvGeometry g) {
        return Algorithm.IMPLICIT_GEMM;
    }

    /** The weight gradient's kernel, tile and split-K for g (from the geometry alone); null when the kernel cannot take g. */
    public String backwardWeightVariant(ConvGeometry g) {
        return WgradLauncher.cannotImplement(g) == null ? WgradLauncher.variant(g) : null;
    }

    /** The weight gradient of g on buffers already on the device, queued on {@code arena}'s stream (a plan's run). */
    public void backwardWeightOnDevice(Algorithm algorithm, ConvGeometry g, DeviceArena arena, DeviceBuffer x, DeviceBuffer dy,
                                       DeviceBuffer dw) {
        resolveBackwardWeight(algorithm, g);
        WgradLauncher.run(arena, g, x, dy, dw);
    }

    /** cuda-kernels/wgrad.cu: uploads x and dy, queues the kernels, downloads dW. */
    @Override
    public void backwardWeight(Algorithm algorithm, ConvGeometry g, float[] x, float[] dy, float[] dw, int threads) {
        try (DeviceArena arena = new DeviceArena(device.get());
             DeviceBuffer dx = arena.upload(x); DeviceBuffer ddy = arena.upload(dy); DeviceBuffer ddw = arena.allocate(dw.length)) {
            backwardWeightOnDevice(algorithm, g, arena, dx, ddy, ddw);
            ddw.download(dw);
        }
    }

    /** cuda-kernels/wgrad.cu's jconv_bias_wgrad (a fixed reduction tree per channel, in float32). */
    @Override
    public void backwardBias(float[] dy, int n, int k, int pq, float[] db, int threads) {
        requireAvailable();
        try (DeviceArena arena = new DeviceArena(device.get());
             DeviceBuffer ddy = arena.upload(dy); DeviceBuffer ddb = arena.allocate(k)) {
            WgradLauncher.bias(arena, n, k, pq, ddy, ddb);
            ddb.download(db);
        }
    }

    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    int threads) {
        run(algorithm, g, input, weight, bias, Epilogue.none(), null, output, threads);
    }

    /** The epilogue is fused into the kernels' final stores. */
    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, Epilogue epilogue,
                    float[] residual, float[] output, int threads) {
        if (!prepare(algorithm, g, epilogue, residual, output)) {
            return;
        }
        Launcher l = launcher(algorithm, g);
        try (DeviceArena arena = new DeviceArena(device.get())) {
            try (DeviceBuffer in = arena.upload(input);
                 DeviceBuffer w = arena.upload(weight);
                 DeviceBuffer b = bias == null ? null : arena.upload(bias);
                 DeviceBuffer r = residual == null ? null : arena.upload(residual);
                 DeviceBuffer out = arena.allocate(output.length)) {
                l.run(arena, g, in, w, b, epilogue, r, out);
                out.download(output);
            }
        }
    }
}
