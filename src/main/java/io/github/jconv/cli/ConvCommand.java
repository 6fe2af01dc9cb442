package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvOptions;
import io.github.jconv.ConvPlan;
import io.github.jconv.ConvSpec;
import io.github.jconv.Device;
import io.github.jconv.Dtype;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.Jconv;
import io.github.jconv.Layout;
import io.github.jconv.MathMode;
import io.github.jconv.Tensor;
import io.github.jconv.io.AtomicFile;
import io.github.jconv.io.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code conv2d} and {@code conv-transpose2d}: read .npy inputs, compute, write the .npy output. */
abstract class ConvCommand implements Callable<Integer> {
    @Option(names = "--input", required = true, paramLabel = "X.npy", description = "Input, N x C x H x W (N x H x W x C with --layout nhwc).")
    Path input;

    @Option(names = "--weight", required = true, paramLabel = "W.npy", description = "Weight in PyTorch's layout.")
    Path weight;

    @Option(names = "--bias", paramLabel = "B.npy", description = "Optional bias, one value per output channel.")
    Path bias;

    @Option(names = "--output", required = true, paramLabel = "Y.npy",
            description = "Output file (float32, or --dtype), written only on success; a symbolic link is followed, only regular files are written.")
    Path output;

    @Mixin
    Options.Spec geometry;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "auto|cpu|cuda|cuda-emu|cudnn",
            description = "Backend (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--algorithm", defaultValue = "auto", paramLabel = "NAME",
            description = "auto, reference, direct, im2col, implicit-gemm, kernel-matrix, depthwise or winograd (default: ${DEFAULT-VALUE}).")
    String algorithm;

    @Mixin
    Options.Threads threads;

    @Option(names = "--no-tune", description = "The auto algorithm uses the backend's heuristic instead of autotuning.")
    boolean noTune;

    @Option(names = "--math", defaultValue = "fp32", paramLabel = "fp32|tf32|3xtf32|fp16|bf16",
            description = "Arithmetic (default: ${DEFAULT-VALUE}, strict float32): tf32 and 3xtf32 run the implicit GEMM on TF32 "
                    + "tensor cores, fp16 and bf16 on half-precision ones with the operands rounded (cuda sm_80+, cuda-emu; cudnn "
                    + "takes tf32); see the README's accuracy table.")
    String math;

    @Option(names = "--layout", defaultValue = "nchw", paramLabel = "nchw|nhwc",
            description = "Layout of the input and output arrays (default: ${DEFAULT-VALUE}); nhwc (channels last): N x H x W x C "
                    + "files, converted to NCHW around the kernels. The weight stays K x C/G x R x S.")
    String layout;

    @Option(names = "--dtype", paramLabel = "fp32|fp16|bf16",
            description = "Storage of the output: fp32 ('<f4'), fp16 ('<f2') or bf16 ('<V2', bfloat16 bits), rounded once to nearest "
                    + "even (default: the input's, fp32 for float64). Inputs of any of these read exactly; the arithmetic is float32.")
    String dtype;

    @Mixin
    Options.Debug debug;

    abstract ConvGeometry.Op op();

    ConvSpec.Builder spec() {
        return geometry.builder();
    }

    @Override
    public Integer call() {
        MathMode mathMode = MathMode.parse(math);
        Layout lay = Layout.parse(layout);
        Dtype outType = dtype == null ? null : Dtype.parse(dtype);
        ConvSpec sp = spec().build();
        ConvOptions opts = ConvOptions.defaults().withBackend(backend).withAlgorithm(Algorithm.parse(algorithm))
                .withThreads(threads.count).withTuning(!noTune);
        Backend be = Backends.get(backend); // an unknown or unavailable backend fails before any file is read
        String mathWhy = be.cannotUseMath(mathMode);
        if (mathWhy != null) {
            throw new InvalidConvolutionException("--math " + mathMode.label() + ": " + mathWhy);
        }
        Path target = AtomicFile.target(output); // so does an output that cannot be written
        Npy.Header hx = Npy.readHeader(input), hw = Npy.readHeader(weight);
        Npy.Header hb = bias == null ? null : Npy.readHeader(bias);
        ConvGeometry g = ConvGeometry.of(op(), lay.logicalShape(hx.shape()), hw.shape(), hb == null ? null : hb.shape(), sp);
        if (opts.algorithm() != Algorithm.AUTO) {
            be.requireImplementable(opts.algorithm(), g);
        }
        HeapCheck.require(g, be, opts.algorithm() == Algorithm.AUTO ? be.choose(g) : opts.algorithm());
        Tensor x = Npy.read(input);
        x = Tensor.of(lay, x.data(), lay.logicalShape(x.shape())); // a file of N x H x W x C is that memory
        Tensor w = Npy.read(weight);
        Tensor b = bias == null ? null : Npy.read(bias);
        Tensor y;
        if (mathMode == MathMode.FP32) {
            y = op() == ConvGeometry.Op.CONV2D ? Jconv.conv2d(x, w, b, sp, opts) : Jconv.convTranspose2d(x, w, b, sp, opts);
        } else { // the stateless calls compute in fp32: other math runs through a plan
            try (Device dev = Device.open(be.name());
                 ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(opts.algorithm()).math(mathMode).tune(!noTune).build()) {
                y = plan.run(x.to(Layout.NCHW), null).to(lay);
            }
        }
        Npy.write(target, y, outType != null ? outType : hx.dtype());
        return 0;
    }

    @Command(name = "conv2d", mixinStandardHelpOptions = true,
            description = "y = conv2d(x, w, b) as torch.nn.functional.conv2d.")
    static final class Conv2d extends ConvCommand {
        @Override
        ConvGeometry.Op op() {
            return ConvGeometry.Op.CONV2D;
        }
    }

    @Command(name = "conv-transpose2d", mixinStandardHelpOptions = true,
            description = "y = conv_transpose2d(x, w, b) as torch.nn.functional.conv_transpose2d (weight C_in x C_out/G x R x S).")
    static final class ConvTranspose2d extends ConvCommand {
        @Option(names = "--output-padding", defaultValue = "0", paramLabel = "OP|OPH,OPW",
                description = "Extra rows/columns at the end of the output (default: ${DEFAULT-VALUE}).")
        String outputPadding;

        @Override
        ConvGeometry.Op op() {
            return ConvGeometry.Op.CONV_TRANSPOSE2D;
        }

        @Option(names = "--output-size", paramLabel = "H,W",
                description = "The output's H,W (ONNX ConvTranspose output_shape): the padding is derived from it, an odd row or "
                        + "column at the start, or at the end with --padding same. Not with explicit non-zero --padding.")
        String outputSize;

        @Override
        ConvSpec.Builder spec() {
            int[] op = Options.pair("--output-padding", outputPadding);
            ConvSpec.Builder b = super.spec().outputPadding(op[0], op[1]);
            if (outputSize != null) {
                int[] size = Options.pair("--output-size", outputSize);
                b.outputSize(size[0], size[1]);
            }
            return b;
        }
    }
}
