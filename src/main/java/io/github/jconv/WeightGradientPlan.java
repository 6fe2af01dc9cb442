package io.github.jconv;

import io.github.jconv.cuda.CudaBackend;

import java.util.Arrays;
import java.util.Objects;

/**
 * The weight gradient built once and run many times on device tensors, as a training step runs it: building checks the
 * shapes and chooses the algorithm; {@link #run(DeviceTensor, DeviceTensor, DeviceTensor)} only computes (on a GPU it is
 * queued on the device's stream, the tensors never leave the device).
 *
 * <pre>{@code
 * try (WeightGradientPlan grad = WeightGradientPlan.conv2d(dev, x.shape(), dy.shape(), new int[] {3, 3}, spec).build();
 *      DeviceTensor dw = dev.allocate(grad.weightShape())) {
 *     grad.run(x, dy, dw);
 * }
 * }</pre>
 *
 * <p>x is the layer's input and dy the gradient of its output, in the operation's own terms; for conv_transpose2d the
 * plan swaps them into conv2d's (its weight gradient is conv2d's with x and dy swapped). Threads: as {@link ConvPlan}.
 * Deterministic: the same bits as the stateless {@link Jconv#conv2dBackwardWeight} with the same algorithm.
 */
public final class WeightGradientPlan implements AutoCloseable {
    private final Device device;
    private final ConvGeometry geometry;
    private final Algorithm algorithm;
    private final int[] xShape, dyShape;
    private final int threads;
    private final io.github.jconv.cuda.CudnnPlan cudnn; // the cudnn backend: BackwardFilter set up once
    private volatile boolean closed;

    private WeightGradientPlan(Builder b) {
        this.device = b.device;
        this.geometry = ConvGeometry.backwardWeight(b.op, b.xShape, b.dyShape, b.kernel, b.spec);
        this.xShape = b.xShape.clone();
        this.dyShape = b.dyShape.clone();
        this.threads = b.threads;
        this.algorithm = device.backend().resolveBackwardWeight(b.algorithm, geometry);
        if (device.backend() == io.github.jconv.cuda.CudnnBackend.INSTANCE && !geometry.isEmpty()) {
            synchronized (device) {
                cudnn = new io.github.jconv.cuda.CudnnPlan(geometry, io.github.jconv.cuda.CudnnPlan.Pass.BACKWARD_FILTER, Epilogue.none(),
                        device.arena(), null, true, true);
            }
        } else {
            cudnn = null;
        }
    }

    /** The weight gradient of conv2d for inputs of {@code xShape} and output gradients of {@code dyShape}. */
    public static Builder conv2d(Device device, int[] xShape, int[] dyShape, int[] kernelSize, ConvSpec spec) {
        return new Builder(device, ConvGeometry.Op.CONV2D, xShape, dyShape, kernelSize, spec);
    }

    /** The weight gradient of conv_transpose2d (weight C_in x C_out/G x R x S). */
    public static Builder convTranspose2d(Device device, int[] xShape, int[] dyShape, int[] kernelSize, ConvSpec spec) {
        return new Builder(device, ConvGeometry.Op.CONV_TRANSPOSE2D, xShape, dyShape, kernelSize, spec);
    }

    public int[] weightShape() {
        return geometry.weightShape();
    }

    public Algorithm algorithm() {
        return algorithm;
    }

    /** What the plan runs: the geometry, the device, the algorithm (and on the CUDA backends the kernel, tile and split). */
    public String explain() {
        String kernel = cudnn != null ? cudnn.explain()
                : device.backend() instanceof io.github.jconv.cuda.CudaBackend cuda ? cuda.backwardWeightVariant(geometry) : null;
        return "weight gradient of " + geometry + " on " + device.name() + ": " + algorithm + (kernel == null ? "" : ", kernel " + kernel);
    }

    /** dw (overwritten) = the weight gradient from x and dy, all on the plan's device. */
    public void run(DeviceTensor x, DeviceTensor dy, DeviceTensor dw) {
        if (closed) {
            throw new IllegalStateException("run: the weight-gradient plan " + geometry.op + " " + Arrays.toString(xShape) + " was closed");
        }
        device.requireOpen("run");
        DeviceTensor.requirePlanOperand("x", x, device, xShape, Layout.NCHW, Dtype.FP32);
        DeviceTensor.requirePlanOperand("dy", dy, device, dyShape, Layout.NCHW, Dtype.FP32);
        DeviceTensor.requirePlanOperand("dw", dw, device, geometry.weightShape(), Layout.NCHW, Dtype.FP32);
        if (dw == x || dw == dy) {
            throw new InvalidConvolutionException("dw must not be x or dy (no in-place runs)");
        }
        boolean transposed = geometry.transposed(); // forward names: conv2d's input is conv_transpose2d's dy
        DeviceTensor fx = transposed ? dy : x, fdy = transposed ? x : dy;
        if (device.isCpu()) {
            device.backend().backwardWeight(algorithm, geometry, fx.host(), fdy.host(), dw.host(), threads);
            return;
        }
        synchronized (device) {
            if (cudnn != null) {
                cudnn.run(fx.buffer(), fdy.buffer(), null, null, dw.buffer());
            } else if (device.backend() instanceof CudaBackend cuda) {
                cuda.backwardWeightOnDevice(algorithm, geometry, device.arena(), fx.buffer(), fdy.buffer(), dw.buffer());
            } else { // cudnn with an empty batch: a sum over no samples
                dw.upload(new float[dw.size()]);
            }
        }
    }

    /** A host convenience: uploads x and dy, runs, downloads dW. */
    public Tensor run(Tensor x, Tensor dy) {
        try (DeviceTensor dx = device.upload(x); DeviceTensor ddy = device.upload(dy); DeviceTensor dw = device.allocate(weightShape())) {
            run(dx, ddy, dw);
            return dw.download();
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (cudnn != null) {
                synchronized (device) {
                    cudnn.close();
                }
            }
            device.closed(this);
        }
    }

    /** The plan's parameters; {@link #build()} checks them. */
    public static final class Builder {
        private final Device device;
        private final ConvGeometry.Op op;
        private final int[] xShape, dyShape, kernel;
        private final ConvSpec spec;
        private Algorithm algorithm = Algorithm.AUTO;
        private int threads;

        private Builder(Device device, ConvGeometry.Op op, int[] xShape, int[] dyShape, int[] kernel, ConvSpec spec) {
            this.device = Objects.requireNonNull(device, "device");
            this.op = op;
            this.xShape = Objects.requireNonNull(xShape, "xShape").clone();
            this.dyShape = Objects.requireNonNull(dyShape, "dyShape").clone();
            this.kernel = Objects.requireNonNull(kernel, "kernelSize").clone();
            this.spec = Objects.requireNonNull(spec, "spec");
        }

        /** An algorithm by name, or {@link Algorithm#AUTO} (the default: the backend's choice). */
        public Builder algorithm(Algorithm a) {
            algorithm = Objects.requireNonNull(a, "algorithm");
            return this;
        }

        /** CPU worker threads (0: all cores); the result does not depend on it. */
        public Builder threads(int t) {
            io.github.jconv.cpu.Parallel.requireValidThreads(t);
            threads = t;
            return this;
        }

        public WeightGradientPlan build() {
            device.requireOpen("build a plan");
            WeightGradientPlan plan = new WeightGradientPlan(this);
            device.opened(plan, () -> "weight-gradient plan " + op + " " + Arrays.toString(xShape) + " -> " + Arrays.toString(plan.weightShape()));
            return plan;
        }
    }
}
