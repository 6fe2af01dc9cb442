package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;
import io.github.jconv.cpu.Weights;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.cuda.DeviceBuffer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One convolution built once and run many times (cuDNN's plan, CUTLASS's {@code can_implement / initialize / run},
 * oneDNN's primitive): building checks the shapes, chooses the algorithm (the autotuner for {@code auto}), and puts a
 * copy of the weights and bias on the device (uploaded once on a GPU); {@link #run(DeviceTensor, DeviceTensor)} then
 * only computes, on device tensors, without touching the host (on a GPU it is queued on the device's stream and
 * returns at once).
 *
 * <pre>{@code
 * try (Device gpu = Device.open("cuda");
 *      ConvPlan conv = ConvPlan.conv2d(gpu, new int[] {1, 64, 56, 56}, w, b, ConvSpec.builder().padding(1).build())
 *              .epilogue(Epilogue.of(Epilogue.Activation.RELU)).build();
 *      DeviceTensor x = gpu.upload(input);
 *      DeviceTensor y = gpu.allocate(conv.outputShape())) {
 *     conv.run(x, y);
 *     Tensor out = y.download();
 * }
 * }</pre>
 *
 * <p>Threads: {@code run} may be called from any thread; runs on one device are serialised on its stream (see
 * {@link Device}). Close the plan (or its device) to free the weights.
 */
public final class ConvPlan implements AutoCloseable {
    private final Device device;
    private final ConvGeometry geometry;
    private final Algorithm algorithm;
    private final Epilogue epilogue;
    private final int threads;
    private final String why;
    private final Weights hostWeight;                    // CPU: the plan's own copy, packed at build
    private final float[] hostBias;                      // CPU: the plan's copy; GPU: kept only for the plan cache's check
    private final float[] weightCopy;                    // the plan's copy of the weights (GPU: only for the plan cache)
    private final DeviceBuffer deviceWeight, deviceBias; // GPU: uploaded once
    private final MathMode math;
    private final Layout layout;
    private final Dtype dtype;
    private final boolean stored; // GPU: the kernel loads and stores the tensors as they are (half precision in its own math, or channelsLast)
    private final boolean channelsLast; // NHWC tensors on the channels-last kernels, as they are (weights K x R x S x C)
    private final io.github.jconv.cuda.CudnnPlan cudnn;  // the cudnn backend: descriptors, algorithm, workspace
    private volatile boolean closed;

    private ConvPlan(Builder b, ConvGeometry g) {
        this.device = b.device;
        this.geometry = g;
        this.epilogue = b.epilogue;
        this.threads = b.threads;
        this.math = b.math;
        this.layout = b.layout;
        this.dtype = b.dtype;
        Backend backend = device.backend();
        String mathWhy = backend.cannotUseMath(math);
        if (mathWhy != null) {
            throw new InvalidConvolutionException("math " + math.label() + ": " + mathWhy);
        }
        boolean onCudnn = backend == io.github.jconv.cuda.CudnnBackend.INSTANCE;
        if (onCudnn && io.github.jconv.cuda.CudnnPlan.cannotTake(epilogue) != null) {
            throw new InvalidConvolutionException("epilogue " + epilogue + ": " + io.github.jconv.cuda.CudnnPlan.cannotTake(epilogue));
        }
        Algorithm forMath = b.algorithm == Algorithm.AUTO && backend instanceof CudaBackend cb ? cb.chooseFor(math, g) : null;
        if (forMath != null) {
            this.algorithm = forMath;
            this.why = "auto: math " + math.label() + " runs on the implicit GEMM's tensor-core kernels";
        } else if (b.algorithm == Algorithm.AUTO) {
            Autotuner tuner = Autotuner.global();
            this.algorithm = tuner.choose(backend, g, threads, b.tune);
            Object tuned = tuner.cached(backend, g, threads);
            this.why = tuned != null ? "auto: autotuned (cache " + tuner.cacheFile() + ")"
                    : "auto: the " + backend.name() + " backend's heuristic (" + (b.tune ? "below the tuning threshold" : "tuning off") + ")";
        } else {
            backend.requireImplementable(b.algorithm, g);
            this.algorithm = b.algorithm;
            this.why = "requested";
        }
        this.channelsLast = backend instanceof CudaBackend && layout == Layout.NHWC && CudaBackend.takesChannelsLast(algorithm, math, dtype, g);
        this.stored = channelsLast || backend instanceof CudaBackend && layout == Layout.NCHW && CudaBackend.loadsAsStored(algorithm, math, dtype);
        boolean copies = device.isCpu() || b.cached;
        float[] weight = dtype.round(b.weight.data()), bias = b.bias == null ? null : dtype.round(b.bias.data());
        boolean own = b.cached || dtype != Dtype.FP32; // the arrays are the plan's already: the cache's copies, or rounded ones
        this.weightCopy = !copies ? null : own ? weight : weight.clone();
        this.hostBias = !copies || bias == null ? null : own ? bias : bias.clone();
        if (device.isCpu()) {
            this.hostWeight = Weights.kept(weightCopy);
            this.deviceWeight = null;
            this.deviceBias = null;
            if (!b.cached) { // the cache's plans pack on their first run, which follows at once
                packWeights();
            }
        } else {
            synchronized (device) {
                float[] w = channelsLast ? CudaBackend.channelsLastWeights(g, weight) : weight;
                this.deviceWeight = stored && dtype != Dtype.FP32 ? uploadHalves(device.arena(), dtype, w) : device.arena().upload(w);
                this.deviceBias = bias == null ? null : device.arena().upload(bias);
                if (b.cached) { // its runs come on streams of their own: the upload must be complete first
                    device.arena().stream().synchronize();
                }
                this.cudnn = !onCudnn || g.isEmpty() ? null : new io.github.jconv.cuda.CudnnPlan(g, io.github.jconv.cuda.CudnnBackend.pass(g),
                        epilogue, device.arena(), null, true, math == MathMode.FP32);
            }
            this.hostWeight = null;
            return;
        }
        this.cudnn = null;
    }

    /** A buffer of {@code a}'s elements as {@code dtype}'s 16 bits (two to a float). */
    private static DeviceBuffer uploadHalves(io.github.jconv.cuda.DeviceArena arena, Dtype dtype, float[] a) {
        short[] bits = new short[a.length];
        dtype.encode(a, bits, a.length, 0);
        DeviceBuffer b = arena.allocate(Math.max(1, (a.length + 1L) / 2));
        b.uploadHalves(bits);
        return b;
    }

    /**
     * Packs the CPU weights into the algorithm's layout now, so that {@code run} only computes: one run of a single
     * sample of zeros (the packed form does not depend on the batch), which also compiles the kernel's code paths.
     */
    private void packWeights() {
        if (geometry.isEmpty()) {
            return;
        }
        int[] one = geometry.inputShape();
        one[0] = 1;
        ConvGeometry single = ConvGeometry.of(geometry.op, one, geometry.weightShape(),
                hostBias == null ? null : new int[] {hostBias.length}, geometry.explicitSpec());
        cpu().run(algorithm, single, new float[Math.toIntExact(Tensor.elementCount(one))], hostWeight, hostBias, Epilogue.none(), null,
                new float[Math.toIntExact(Tensor.elementCount(single.outputShape()))], threads);
    }

    private CpuBackend cpu() {
        return (CpuBackend) device.backend();
    }

    /** A conv2d plan for inputs of {@code inputShape} (N x C x H x W) with PyTorch's weight (K x C/G x R x S) and bias (or null). */
    public static Builder conv2d(Device device, int[] inputShape, Tensor weight, Tensor bias, ConvSpec spec) {
        return new Builder(device, ConvGeometry.Op.CONV2D, inputShape, weight, bias, spec);
    }

    /** A plan for a checked geometry (its operation, shapes and resolved padding). */
    public static Builder of(Device device, ConvGeometry g, Tensor weight, Tensor bias) {
        return new Builder(device, g.op, g.inputShape(), weight, bias, g.explicitSpec());
    }

    /** A conv_transpose2d plan (weight C_in x C_out/G x R x S). */
    public static Builder convTranspose2d(Device device, int[] inputShape, Tensor weight, Tensor bias, ConvSpec spec) {
        return new Builder(device, ConvGeometry.Op.CONV_TRANSPOSE2D, inputShape, weight, bias, spec);
    }

    public ConvGeometry geometry() {
        return geometry;
    }

    public Algorithm algorithm() {
        return algorithm;
    }

    public Epilogue epilogue() {
        return epilogue;
    }

    public int[] outputShape() {
        return geometry.outputShape();
    }

    /** The layout of the plan's input, residual and output tensors ({@link Builder#layout}). */
    public Layout layout() {
        return layout;
    }

    /** The storage of the plan's input, residual and output tensors ({@link Builder#dtype}). */
    public Dtype dtype() {
        return dtype;
    }

    /** What the plan runs and why: the operation, the device, the algorithm and how it was chosen, the epilogue. */
    public String explain() {
        String notChannelsLast = channelsLastWhyNot();
        String variant = cudnn != null ? cudnn.explain() : channelsLast ? CudaBackend.channelsLastVariant(geometry, math, dtype)
                : device.backend() instanceof CudaBackend cb ? cb.variant(algorithm, geometry, math, stored ? dtype : Dtype.FP32)
                : device.backend().variant(algorithm, geometry);
        return geometry + " on " + device.name() + ": " + algorithm + " (" + why + ")" + (variant == null ? "" : cudnn != null ? ", " + variant : ", kernel " + variant)
                + (layout == Layout.NCHW ? "" : ", layout " + layout.label() + (channelsLast ? " (read and written as it is by the kernel)"
                : " (converted to and from nchw around the kernel" + (notChannelsLast == null ? "" : ": " + notChannelsLast) + ")"))
                + (dtype == Dtype.FP32 ? "" : ", dtype " + dtype.label() + (stored ? " (loaded and stored as " + dtype.label() + " by the kernel)"
                : " (widened to fp32 around the kernel, the result rounded)"))
                + ", math " + math.label() + (math.tensorCores() && cudnn == null && algorithm != Algorithm.IMPLICIT_GEMM
                ? " (allowed; " + algorithm + " computes in fp32)" : "") + ", epilogue " + epilogue + ", workspace "
                + (cudnn != null ? "(cuDNN's, above)" : (channelsLast ? CudaBackend.channelsLastWorkspaceBytes(geometry, dtype)
                : device.backend().workspaceBytes(algorithm, geometry)) + " bytes")
                + (hostWeight == null ? "" : ", packed weights " + hostWeight.packedBytes() + " bytes");
    }

    /**
     * Why a GPU plan of NHWC tensors in a math of the channels-last kernels ({@link CudaBackend#channelsLastMath}) converts
     * instead of running on them; null where it does not convert or is not such a plan.
     */
    private String channelsLastWhyNot() {
        return channelsLast || !(device.backend() instanceof CudaBackend) || !CudaBackend.channelsLastMath(algorithm, math, dtype) ? null
                : "not on the channels-last kernels: " + CudaBackend.cannotTakeChannelsLast(geometry, dtype);
    }

    /**
     * Whether {@link #run(DeviceTensor, DeviceTensor, DeviceTensor)} may be given y as the residual, adding it in place
     * (as ResNet's blocks do: the block's input, read by nothing after, becomes its output): on the cpu backend, float32
     * NCHW, where the algorithm reads each output element's residual just before writing that element
     * ({@link CpuBackend#residualInPlace}: direct's 1 x 1 kernel with a ReLU, ReLU6 or no activation). In place the output
     * takes no memory of its own, and its lines are in cache when written (ResNet-50's 1 x 1 layers at 56 x 56 and 28 x 28,
     * batch 1, about 6% faster).
     */
    public boolean runsResidualInPlace() {
        return device.isCpu() && epilogue.hasResidual() && layout == Layout.NCHW && dtype == Dtype.FP32
                && CpuBackend.residualInPlace(algorithm, geometry, epilogue);
    }

    /**
     * Null where this plan (a 1 x 1 expansion) and {@code next} (a depthwise layer reading this plan's output) run as one pass
     * ({@link #runWith}), else why not: both on one cpu device, float32 nchw, this plan on direct's 1 x 1 kernel and {@code
     * next} on depthwise's kernel for MobileNet's 3 x 3 layers, no residual in either ({@link
     * CpuBackend#cannotFuseExpandDepthwise}). MobileNetV2's inverted residual blocks: the expanded tensor is never written.
     */
    public String cannotRunWith(ConvPlan next) {
        if (!device.isCpu() || next.device != device) {
            return "the two plans are not on one cpu device";
        }
        if (layout != Layout.NCHW || dtype != Dtype.FP32 || next.layout != Layout.NCHW || next.dtype != Dtype.FP32) {
            return "the two plans do not both run on float32 nchw tensors";
        }
        return CpuBackend.cannotFuseExpandDepthwise(algorithm, geometry, epilogue, next.algorithm, next.geometry, next.epilogue);
    }

    /**
     * y = next(this(x)) in one pass, where {@link #cannotRunWith} is null: the same values as {@code run(x, t); next.run(t,
     * y)} without the intermediate t, on this plan's threads.
     */
    public void runWith(ConvPlan next, DeviceTensor x, DeviceTensor y) {
        requireOpen();
        next.requireOpen();
        String why = cannotRunWith(next);
        if (why != null) {
            throw new InvalidConvolutionException("these two plans do not run as one pass: " + why);
        }
        DeviceTensor.requirePlanOperand("input", x, device, geometry.inputShape(), layout, dtype);
        DeviceTensor.requirePlanOperand("output", y, device, next.geometry.outputShape(), layout, dtype);
        if (x == y) {
            throw new InvalidConvolutionException("the output tensor must not be the input (no in-place convolution)");
        }
        if (geometry.isEmpty() || next.geometry.isEmpty()) {
            return;
        }
        cpu().runExpandDepthwise(geometry, x.host(), hostWeight, hostBias, epilogue, next.geometry, next.hostWeight, next.hostBias,
                next.epilogue, y.host(), threads);
    }

    /** y = epilogue(op(x) + bias) on device tensors of the plan's device. */
    public void run(DeviceTensor x, DeviceTensor y) {
        run(x, null, y);
    }

    /**
     * y = epilogue(op(x) + bias, residual): the residual has the output's shape, given exactly when the epilogue adds one.
     * It may be y itself where {@link #runsResidualInPlace()}: then y = epilogue(op(x) + bias, y), in place. x is never y.
     */
    public void run(DeviceTensor x, DeviceTensor residual, DeviceTensor y) {
        requireOpen();
        DeviceTensor.requirePlanOperand("input", x, device, geometry.inputShape(), layout, dtype);
        DeviceTensor.requirePlanOperand("output", y, device, geometry.outputShape(), layout, dtype);
        if (residual != null) {
            DeviceTensor.requirePlanOperand("residual", residual, device, geometry.outputShape(), layout, dtype);
        }
        if (epilogue.hasResidual() != (residual != null)) {
            throw new InvalidConvolutionException(epilogue.hasResidual() ? "this plan's epilogue adds a residual: pass one"
                    : "a residual was given but this plan's epilogue adds none");
        }
        if (x == y) {
            throw new InvalidConvolutionException("the output tensor must not be the input (no in-place convolution)");
        }
        if (residual == y && !runsResidualInPlace()) {
            throw new InvalidConvolutionException("the output tensor must not be the residual here: " + algorithm.label() + " on "
                    + device.backend().name() + " adds a residual in place only on the cpu backend's 1x1 kernel (direct, float32 nchw, "
                    + "relu/relu6/no activation); pass a separate output");
        }
        if (geometry.isEmpty()) {
            return; // no output element: nothing to compute
        }
        boolean asKernels = layout == Layout.NCHW && dtype == Dtype.FP32 || stored; // the tensors are what the kernels read and write
        if (device.isCpu()) {
            if (asKernels) {
                cpu().run(algorithm, geometry, x.host(), hostWeight, hostBias, epilogue, residual == null ? null : residual.host(),
                        y.host(), threads);
            } else {
                runConverted(x, residual, y, new HostFloats());
            }
            return;
        }
        synchronized (device) {
            if (asKernels) {
                runOnDevice(x.buffer(), residual == null ? null : residual.buffer(), y.buffer());
            } else {
                runConverted(x, residual, y, new DeviceFloats());
            }
        }
    }

    /** The GPU run on the buffers the kernels take (NCHW, or NHWC on the channels-last kernels), queued on the device's stream (the caller holds the device). */
    private void runOnDevice(DeviceBuffer x, DeviceBuffer residual, DeviceBuffer y) {
        if (channelsLast) {
            ((CudaBackend) device.backend()).runChannelsLastOnDevice(geometry, math, dtype, device.arena(), x, deviceWeight, deviceBias, epilogue,
                    residual, y);
        } else if (stored) {
            ((CudaBackend) device.backend()).runStoredOnDevice(geometry, math, dtype, device.arena(), x, deviceWeight, deviceBias, epilogue,
                    residual, y);
        } else if (cudnn != null) {
            cudnn.run(x, deviceWeight, deviceBias, residual, y);
        } else if (device.backend() instanceof CudaBackend cuda) {
            cuda.runOnDevice(algorithm, geometry, math, device.arena(), x, deviceWeight, deviceBias, epilogue, residual, y);
        }
    }

    /**
     * The run of a plan whose tensors are not what the kernels take (NCHW float32), the same steps on either side: x (and
     * the residual) widened and converted into float32 NCHW temporaries, the kernel run on them, its NCHW result
     * converted (transposed, then rounded) into y, which only the last step writes, so a failure leaves it as it was.
     * {@link Floats} does each step on one side: on the CPU on arrays of the device's pool, on a GPU on buffers (widened
     * by cuda-kernels/dtype.cu, transposed by layout.cu, also on a cudnn device: the same GPU and stream) freed in stream
     * order after the work queued on them.
     */
    private <B> void runConverted(DeviceTensor x, DeviceTensor residual, DeviceTensor y, Floats<B> f) {
        try {
            B xc = toKernel(x, geometry.inputShape(), f);
            B rc = residual == null ? null : toKernel(residual, geometry.outputShape(), f);
            B yc = f.temp(y.size());
            f.run(xc, rc, yc);
            B out = yc;
            if (layout != Layout.NCHW) {
                out = dtype == Dtype.FP32 ? f.of(y) : f.temp(y.size());
                f.convert(geometry.outputShape(), true, yc, out);
            }
            if (dtype != Dtype.FP32) {
                f.round(out, y);
            }
        } finally {
            f.release();
        }
    }

    /** t (of logical shape {@code shape}) as float32 NCHW storage: t's own, or a temporary of f it was converted into. */
    private <B> B toKernel(DeviceTensor t, int[] shape, Floats<B> f) {
        B b = f.of(t);
        if (dtype != Dtype.FP32) {
            b = f.temp(t.size());
            f.widen(t, b);
        }
        if (layout != Layout.NCHW) {
            B c = f.temp(t.size());
            f.convert(shape, false, b, c);
            b = c;
        }
        return b;
    }

    /** Float32 storage on one side ({@code float[]} on the CPU, {@link DeviceBuffer} on a GPU) and {@link #runConverted}'s steps on it. */
    private interface Floats<B> {
        /** A float32 tensor's own storage. */
        B of(DeviceTensor t);

        /** A temporary of {@code floats} floats, given back by {@link #release}. */
        B temp(int floats);

        /** t's half-precision values, widened into {@code into}. */
        void widen(DeviceTensor t, B into);

        /** from, of logical shape {@code shape}, into {@code to}: NCHW to the plan's layout ({@code toLayout}) or back. */
        void convert(int[] shape, boolean toLayout, B from, B to);

        /** The plan's kernel on NCHW float32 storage. */
        void run(B x, B residual, B y);

        /** from rounded into y's half-precision storage. */
        void round(B from, DeviceTensor y);

        void release();
    }

    /** {@link Floats} on the CPU: arrays of the device's pool, the plan's threads. */
    private final class HostFloats implements Floats<float[]> {
        private final List<float[]> taken = new ArrayList<>(5);

        @Override
        public float[] of(DeviceTensor t) {
            return t.host();
        }

        @Override
        public float[] temp(int floats) {
            float[] a = device.hostArrays().take(floats);
            taken.add(a);
            return a;
        }

        @Override
        public void widen(DeviceTensor t, float[] into) {
            t.widenInto(into, threads);
        }

        @Override
        public void convert(int[] shape, boolean toLayout, float[] from, float[] to) {
            Layout.convert(from, toLayout ? Layout.NCHW : layout, to, toLayout ? layout : Layout.NCHW, shape, threads);
        }

        @Override
        public void run(float[] x, float[] residual, float[] y) {
            cpu().run(algorithm, geometry, x, hostWeight, hostBias, epilogue, residual, y, threads);
        }

        @Override
        public void round(float[] from, DeviceTensor y) {
            y.roundFrom(from, threads);
        }

        @Override
        public void release() {
            HostArrays pool = device.hostArrays();
            taken.forEach(pool::give);
        }
    }

    /** {@link Floats} on a GPU: buffers of the device's arena, the kernels queued on its stream (the caller holds the device). */
    private final class DeviceFloats implements Floats<DeviceBuffer> {
        private final List<DeviceBuffer> temps = new ArrayList<>(5);

        @Override
        public DeviceBuffer of(DeviceTensor t) {
            return t.buffer();
        }

        @Override
        public DeviceBuffer temp(int floats) {
            DeviceBuffer b = device.arena().allocate(Math.max(1, floats));
            temps.add(b);
            return b;
        }

        @Override
        public void widen(DeviceTensor t, DeviceBuffer into) {
            t.widenInto(into);
        }

        @Override
        public void convert(int[] shape, boolean toLayout, DeviceBuffer from, DeviceBuffer to) {
            CudaBackend.kernelsFor(device.backend()).convertLayoutOnDevice(device.arena(), shape, toLayout, from, to);
        }

        @Override
        public void run(DeviceBuffer x, DeviceBuffer residual, DeviceBuffer y) {
            runOnDevice(x, residual, y);
        }

        @Override
        public void round(DeviceBuffer from, DeviceTensor y) {
            y.roundFrom(from);
        }

        @Override
        public void release() {
            temps.forEach(DeviceBuffer::close);
        }
    }

    /**
     * A host convenience: uploads x (and the residual), rounded to the plan's dtype, runs, downloads the result (in the
     * plan's layout; the values of its dtype).
     */
    public Tensor run(Tensor x, Tensor residual) {
        try (DeviceTensor dx = device.upload(x, dtype);
             DeviceTensor dr = residual == null ? null : device.upload(residual, dtype);
             DeviceTensor dy = device.allocate(layout, dtype, outputShape())) {
            run(dx, dr, dy);
            return dy.download();
        }
    }

    /**
     * The plan cache's run ({@link PlanCache}) on host arrays of the right lengths: on the CPU the kernels read and write
     * them directly; on a GPU x (and the residual) go up and y comes down on a stream of the call's own, so calls from
     * many threads overlap as stateless calls do (the plan's weights were uploaded and synchronised at build).
     */
    void runHost(float[] x, float[] residual, float[] y) {
        requireOpen();
        if (device.isCpu()) {
            cpu().run(algorithm, geometry, x, hostWeight, hostBias, epilogue, residual, y, threads);
            return;
        }
        try (io.github.jconv.cuda.DeviceArena call = device.arena().sibling();
             DeviceBuffer in = call.upload(x);
             DeviceBuffer r = residual == null ? null : call.upload(residual);
             DeviceBuffer out = call.allocate(y.length)) {
            ((CudaBackend) device.backend()).runOnDevice(algorithm, geometry, math, call, in, deviceWeight, deviceBias, epilogue, r, out);
            out.download(y);
        }
    }

    /** Whether the plan was built from exactly these weights and bias, bit for bit (needs the copies a cached plan keeps). */
    boolean holds(float[] weight, float[] bias) {
        return Arrays.equals(weightCopy, weight) && Arrays.equals(hostBias, bias);
    }

    /** Bytes of host and device memory the plan holds for its weights (copies, packed forms, uploads). */
    long heldBytes() {
        long copies = 4L * ((weightCopy == null ? 0 : weightCopy.length) + (hostBias == null ? 0 : hostBias.length));
        long packed = hostWeight == null ? 0 : hostWeight.packedBytes();
        long uploaded = deviceWeight == null ? 0 : 4L * (deviceWeight.floats() + (deviceBias == null ? 0 : deviceBias.floats()));
        return copies + packed + uploaded;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("run: the plan " + geometry.op + " " + Arrays.toString(geometry.inputShape()) + " was closed");
        }
        device.requireOpen("run");
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (deviceWeight != null) {
            synchronized (device) {
                if (cudnn != null) {
                    cudnn.close();
                }
                deviceWeight.close();
                if (deviceBias != null) {
                    deviceBias.close();
                }
            }
        }
        device.closed(this);
    }

    /** The plan's parameters; {@link #build()} checks them and builds. */
    public static final class Builder {
        private final Device device;
        private final ConvGeometry.Op op;
        private final int[] inputShape;
        private final Tensor weight, bias;
        private final ConvSpec spec;
        private Epilogue epilogue = Epilogue.none();
        private Algorithm algorithm = Algorithm.AUTO;
        private int threads;
        private boolean tune = true;
        private MathMode math = MathMode.FP32;
        private Layout layout = Layout.NCHW;
        private Dtype dtype = Dtype.FP32;
        private boolean cached; // built by the plan cache: the weight and bias arrays are its own copies, adopted as they are

        private Builder(Device device, ConvGeometry.Op op, int[] inputShape, Tensor weight, Tensor bias, ConvSpec spec) {
            this.device = Objects.requireNonNull(device, "device");
            this.op = op;
            this.inputShape = inputShape.clone();
            this.weight = Objects.requireNonNull(weight, "weight");
            this.bias = bias;
            this.spec = Objects.requireNonNull(spec, "spec");
        }

        public Builder epilogue(Epilogue e) {
            epilogue = Objects.requireNonNull(e, "epilogue");
            return this;
        }

        /** An algorithm by name, or {@link Algorithm#AUTO} (the default: the autotuner or the backend's heuristic). */
        public Builder algorithm(Algorithm a) {
            algorithm = Objects.requireNonNull(a, "algorithm");
            return this;
        }

        /** CPU worker threads (0: all cores). */
        public Builder threads(int t) {
            io.github.jconv.cpu.Parallel.requireValidThreads(t);
            threads = t;
            return this;
        }

        /**
         * The arithmetic allowed ({@link MathMode}; default {@code FP32}, strict float32). A backend that cannot run the
         * mode fails the build naming why.
         */
        public Builder math(MathMode m) {
            math = Objects.requireNonNull(m, "math");
            return this;
        }

        /**
         * The layout of the input, residual and output tensors the plan runs on (default {@link Layout#NCHW}); their shapes
         * stay the logical N x C x H x W, the weights PyTorch's K x C/G x R x S. An NHWC plan converts its operands to NCHW
         * and back around the kernel, which reads NCHW (on a GPU on the device, cuda-kernels/layout.cu): the result is the
         * NCHW run's, bit for bit.
         */
        public Builder layout(Layout l) {
            layout = Objects.requireNonNull(l, "layout");
            return this;
        }

        /**
         * The storage of the input, residual and output tensors (default {@link Dtype#FP32}): with {@code FP16} or
         * {@code BF16} the plan runs on half-precision device tensors, as PyTorch's convolution of a {@code .half()} or
         * {@code .bfloat16()} model: the weights and bias are rounded to the dtype at build (to nearest even), the operands
         * widen exactly to float32, the kernel computes in float32 (or in the plan's {@link #math}), and the result is
         * rounded once into the output. On a GPU the implicit GEMM in the dtype's own math ({@code FP16} tensors in
         * {@link MathMode#FP16}, {@code BF16} in {@link MathMode#BF16}; NCHW) loads and stores the 16-bit tensors as they are
         * (weights uploaded as 16 bits too); every other plan widens and rounds around kernels that read float32 NCHW (on a
         * GPU on the device, cuda-kernels/dtype.cu). Either way the result equals the float32 run (in the same math) on the
         * rounded operands, rounded, bit for bit.
         */
        public Builder dtype(Dtype d) {
            dtype = Objects.requireNonNull(d, "dtype");
            return this;
        }

        /** Whether {@code auto} may time the algorithms (default true). */
        public Builder tune(boolean on) {
            tune = on;
            return this;
        }

        /** The plan cache's build: {@code weight} and {@code bias} are fresh copies the plan may own. */
        Builder cached() {
            cached = true;
            return this;
        }

        public ConvPlan build() {
            device.requireOpen("build a plan");
            ConvGeometry g = ConvGeometry.of(op, inputShape, weight.shape(), bias == null ? null : bias.shape(), spec);
            ConvPlan plan = new ConvPlan(this, g);
            device.opened(plan, () -> "plan " + g.op + " " + Arrays.toString(g.inputShape()) + " -> " + Arrays.toString(g.outputShape()));
            return plan;
        }
    }
}
