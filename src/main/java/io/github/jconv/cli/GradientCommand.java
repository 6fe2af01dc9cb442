package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvOptions;
import io.github.jconv.ConvSpec;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.Jconv;
import io.github.jconv.Tensor;
import io.github.jconv.io.AtomicFile;
import io.github.jconv.io.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** The training path on .npy files: the weight gradient of conv2d / conv_transpose2d and the bias gradient. */
final class GradientCommand {
    private GradientCommand() {
    }

    /** {@code conv2d-backward-weight} and {@code conv-transpose2d-backward-weight}: dW from x and dy. */
    abstract static class Weight implements Callable<Integer> {
        @Option(names = "--input", required = true, paramLabel = "X.npy", description = "The layer's input x, N x C x H x W.")
        Path input;

        @Option(names = "--grad-output", required = true, paramLabel = "DY.npy", description = "The gradient of the layer's output.")
        Path gradOutput;

        @Option(names = "--kernel-size", required = true, paramLabel = "R|R,S", description = "The kernel's height and width.")
        String kernelSize;

        @Option(names = "--output", required = true, paramLabel = "DW.npy",
                description = "Weight gradient file (float32), written only on success; a symbolic link is followed, only regular files are written.")
        Path output;

        @Mixin
        Options.Spec geometry;

        @Option(names = "--backend", defaultValue = "auto", paramLabel = "auto|cpu|cuda|cuda-emu",
                description = "Backend (default: ${DEFAULT-VALUE}).")
        String backend;

        @Option(names = "--algorithm", defaultValue = "auto", paramLabel = "NAME",
                description = "auto, reference, direct or im2col (cpu); implicit-gemm (cuda, cuda-emu) (default: ${DEFAULT-VALUE}).")
        String algorithm;

        @Mixin
        Options.Threads threads;

        @Mixin
        Options.Debug debug;

        abstract ConvGeometry.Op op();

        ConvSpec.Builder spec() {
            return geometry.builder();
        }

        @Override
        public Integer call() {
            ConvSpec sp = spec().build();
            int[] kernel = Options.pair("--kernel-size", kernelSize);
            ConvOptions opts = ConvOptions.defaults().withBackend(backend).withAlgorithm(Algorithm.parse(algorithm)).withThreads(threads.count);
            Backend be = Backends.get(backend); // an unknown or unavailable backend fails before any file is read
            Path target = AtomicFile.target(output); // so does an output that cannot be written
            Npy.Header hx = Npy.readHeader(input), hdy = Npy.readHeader(gradOutput);
            ConvGeometry g = ConvGeometry.backwardWeight(op(), hx.shape(), hdy.shape(), kernel, sp);
            Algorithm a = be.resolveBackwardWeight(opts.algorithm(), g);
            HeapCheck.requireWeightGradient(g, be, a);
            Tensor x = Npy.read(input), dy = Npy.read(gradOutput);
            Tensor dw = op() == ConvGeometry.Op.CONV2D ? Jconv.conv2dBackwardWeight(x, dy, kernel, sp, opts)
                    : Jconv.convTranspose2dBackwardWeight(x, dy, kernel, sp, opts);
            Npy.write(target, dw);
            return 0;
        }
    }

    @Command(name = "conv2d-backward-weight", mixinStandardHelpOptions = true,
            description = "dW = torch.nn.grad.conv2d_weight(x, (K, C/G, R, S), dy): the weight gradient of conv2d (K x C/G x R x S).")
    static final class Conv2dWeight extends Weight {
        @Override
        ConvGeometry.Op op() {
            return ConvGeometry.Op.CONV2D;
        }
    }

    @Command(name = "conv-transpose2d-backward-weight", mixinStandardHelpOptions = true,
            description = "The weight gradient of conv_transpose2d (C_in x C_out/G x R x S): conv2d's with x and dy swapped.")
    static final class ConvTranspose2dWeight extends Weight {
        @Option(names = "--output-padding", defaultValue = "0", paramLabel = "OP|OPH,OPW",
                description = "The layer's output padding (default: ${DEFAULT-VALUE}).")
        String outputPadding;

        @Override
        ConvGeometry.Op op() {
            return ConvGeometry.Op.CONV_TRANSPOSE2D;
        }

        @Override
        ConvSpec.Builder spec() {
            int[] op = Options.pair("--output-padding", outputPadding);
            return super.spec().outputPadding(op[0], op[1]);
        }
    }

    @Command(name = "conv2d-backward-bias", mixinStandardHelpOptions = true,
            description = "dB = dy summed over N, H and W: the bias gradient of conv2d and conv_transpose2d (float64 sums on the cpu).")
    static final class Bias implements Callable<Integer> {
        @Option(names = "--grad-output", required = true, paramLabel = "DY.npy", description = "The gradient of the layer's output, N x K x P x Q.")
        Path gradOutput;

        @Option(names = "--output", required = true, paramLabel = "DB.npy", description = "Bias gradient file (float32, K values), written only on success.")
        Path output;

        @Option(names = "--backend", defaultValue = "auto", paramLabel = "auto|cpu|cuda|cuda-emu", description = "Backend (default: ${DEFAULT-VALUE}).")
        String backend;

        @Mixin
        Options.Threads threads;

        @Mixin
        Options.Debug debug;

        @Override
        public Integer call() {
            Backends.get(backend);
            Path target = AtomicFile.target(output);
            int[] shape = Npy.readHeader(gradOutput).shape();
            if (shape.length != 4 || shape[1] == 0 || shape[2] == 0 || shape[3] == 0) {
                throw new InvalidConvolutionException("--grad-output must have 4 dimensions (N x K x P x Q), only N may be 0, got shape "
                        + java.util.Arrays.toString(shape));
            }
            Tensor db = Jconv.conv2dBackwardBias(Npy.read(gradOutput), ConvOptions.defaults().withBackend(backend).withThreads(threads.count));
            Npy.write(target, db);
            return 0;
        }
    }
}
