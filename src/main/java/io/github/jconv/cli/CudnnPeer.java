package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.Device;
import io.github.jconv.DeviceTensor;
import io.github.jconv.MathMode;
import io.github.jconv.Tensor;
import io.github.jconv.WeightGradientPlan;
import io.github.jconv.cuda.CudnnBackend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * cuDNN as the GPU peer of `jconv bench --backend cuda`, used as a user who knows cuDNN would: per layer one plan built
 * once on a {@code cudnn} device (descriptors, the algorithm from cudnnFind, a workspace, its own handle on the device's
 * stream), weights uploaded once, then timed like jconv's rows: the kernels alone by CUDA events around the plan's run on
 * device tensors (the median reported), and separately the whole call with the input's upload and the output's download
 * ({@code e2e_ms}). Twice: with CUDNN_FMA_MATH (strict float32, math fp32) and cuDNN's default math (math tf32: it may use
 * TF32 tensor cores). For {@code --op conv2d-backward-weight}, cudnnConvolutionBackwardFilter (FMA math) the same way.
 * A layer cuDNN cannot take (asymmetric padding) gets no row.
 */
final class CudnnPeer implements Peer {
    private final MathMode math;
    private final boolean wgrad;

    CudnnPeer(MathMode math, boolean wgrad) {
        this.math = math;
        this.wgrad = wgrad;
    }

    @Override
    public String label() {
        return math == MathMode.FP32 ? "cudnn-fma" : "cudnn-default";
    }

    @Override
    public String operation(boolean transposed) {
        return wgrad ? "BackwardFilter" : transposed ? "BackwardData" : "Forward";
    }

    @Override
    public List<Result> run(List<Problem> problems, List<float[][]> data, int threads, int runs, int warmup) {
        CudnnBackend cudnn = CudnnBackend.INSTANCE;
        List<Result> out = new ArrayList<>();
        try (Device dev = Device.open("cudnn")) {
            for (int i = 0; i < problems.size(); i++) {
                ConvGeometry g = problems.get(i).geometry;
                out.add(cudnn.cannotImplement(Algorithm.VENDOR, g) != null ? null : wgrad ? backwardFilter(dev, g, data.get(i), runs, warmup)
                        : forward(dev, g, data.get(i), runs, warmup));
            }
        }
        return out;
    }

    private Result forward(Device dev, ConvGeometry g, float[][] d, int runs, int warmup) {
        Tensor w = Tensor.of(d[1], g.weightShape());
        Tensor b = g.hasBias ? Tensor.of(d[2], g.biasLength()) : null;
        try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.VENDOR).math(math).build();
             DeviceTensor x = dev.upload(d[0], g.inputShape());
             DeviceTensor y = dev.allocate(g.outputShape())) {
            Tensor host = Tensor.of(d[0], g.inputShape());
            return timed(dev, () -> plan.run(x, y), () -> plan.run(host, null), y, runs, warmup);
        }
    }

    private Result backwardFilter(Device dev, ConvGeometry g, float[][] d, int runs, int warmup) {
        int[] kernel = {g.r, g.s};
        try (WeightGradientPlan plan = WeightGradientPlan.conv2d(dev, g.inputShape(), g.outputShape(), kernel, g.explicitSpec())
                .algorithm(Algorithm.VENDOR).build();
             DeviceTensor x = dev.upload(d[0], g.inputShape());
             DeviceTensor dy = dev.upload(d[3], g.outputShape());
             DeviceTensor dw = dev.allocate(g.weightShape())) {
            Tensor hx = Tensor.of(d[0], g.inputShape()), hdy = Tensor.of(d[3], g.outputShape());
            return timed(dev, () -> plan.run(x, dy, dw), () -> plan.run(hx, hdy), dw, runs, warmup);
        }
    }

    /** Device times of {@code kernel} (its median, min, max), the median wall time of {@code endToEnd}, and the result. */
    private static Result timed(Device dev, Runnable kernel, Runnable endToEnd, DeviceTensor result, int runs, int warmup) {
        double[] ms = BenchCommand.deviceTimes(dev, kernel, warmup, runs), e2e = new double[runs];
        for (int r = 0; r < runs; r++) {
            long t0 = System.nanoTime();
            endToEnd.run();
            e2e[r] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        Arrays.sort(e2e);
        return new Result(BenchCommand.median(ms), ms[0], ms[runs - 1], result.download().data(), BenchCommand.median(e2e));
    }
}
