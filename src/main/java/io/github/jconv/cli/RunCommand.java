package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Device;
import io.github.jconv.DeviceTensor;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.Tensor;
import io.github.jconv.io.AtomicFile;
import io.github.jconv.io.Npy;
import io.github.jconv.net.Network;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/**
 * {@code run --network NAME}: a network's convolution trunk ({@link Network}) with seeded weights, end to end on one
 * device, every tensor device-resident from the first layer to the last; prints the time per image and writes the
 * output.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run a network's convolution trunk (resnet50, mobilenetv2; seeded weights, BatchNorm folded, activations and "
                + "residual adds fused) end to end on one device.")
final class RunCommand implements Callable<Integer> {
    @Option(names = "--network", required = true, paramLabel = "resnet50|mobilenetv2", description = "The network.")
    String network;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "N", description = "Batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--size", defaultValue = "224", paramLabel = "H", description = "Input H = W, a multiple of 32 (default: ${DEFAULT-VALUE}).")
    int size;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "auto|cpu|cuda|cuda-emu", description = "Device (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--algorithm", defaultValue = "auto", paramLabel = "NAME", description = "Every layer's algorithm (default: ${DEFAULT-VALUE}).")
    String algorithm;

    @Option(names = "--input", paramLabel = "X.npy", description = "Input N x 3 x H x W (default: seeded N(0, 1)).")
    Path input;

    @Option(names = "--output", paramLabel = "Y.npy", description = "Write the trunk's output here.")
    Path output;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the weights (and of the input without --input) (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--runs", defaultValue = "1", paramLabel = "N", description = "Timed runs after the first (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--no-tune", description = "auto uses each backend's heuristic instead of autotuning every layer.")
    boolean noTune;

    @Mixin
    Options.Threads threads;

    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (runs < 0) {
            throw new InvalidConvolutionException("--runs must be >= 0, got " + runs);
        }
        Network net = Network.named(network, batch, size, seed);
        Path target = output == null ? null : AtomicFile.target(output);
        Tensor x = input == null ? net.randomInput(seed + 1) : Npy.read(input);
        if (!Arrays.equals(x.shape(), net.inputShape())) {
            throw new InvalidConvolutionException("--input " + input + " has shape " + Arrays.toString(x.shape()) + ", " + network
                    + " with --batch " + batch + " --size " + size + " takes " + Arrays.toString(net.inputShape()));
        }
        PrintWriter out = spec.commandLine().getOut();
        try (Device dev = Device.open(backend);
             Network.Compiled trunk = net.compile(dev, Algorithm.parse(algorithm), threads.count, !noTune);
             DeviceTensor in = dev.upload(x)) {
            out.printf("%s trunk: %d convolutions, %.2f GFLOP per batch, input %s -> output %s, on %s%n", net.name(), net.convolutions(),
                    net.flops() / 1e9, Arrays.toString(net.inputShape()), Arrays.toString(net.outputShape()), dev.name());
            long t0 = System.nanoTime();
            Tensor y;
            try (DeviceTensor first = trunk.run(in)) {
                y = first.download();
            }
            double firstMs = (System.nanoTime() - t0) / 1e6;
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                long s = System.nanoTime();
                try (DeviceTensor o = trunk.run(in)) {
                    dev.synchronize();
                }
                ms[i] = (System.nanoTime() - s) / 1e6;
            }
            out.printf("first run %.1f ms (plans built before it)%n", firstMs);
            if (runs > 0) {
                Arrays.sort(ms);
                double median = ms[runs / 2];
                out.printf("%d timed runs: median %.2f ms (min %.2f, max %.2f), %.1f images/s, %.1f GFLOP/s%n", runs, median, ms[0], ms[runs - 1],
                        batch * 1000.0 / median, net.flops() / median / 1e6);
            }
            if (target != null) {
                Npy.write(target, y);
            }
        }
        return 0;
    }
}
