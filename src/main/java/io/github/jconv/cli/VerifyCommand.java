package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.cuda.CudnnBackend;
import io.github.jconv.ConvGeometry;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code verify}: runs every algorithm of every available backend, both operations, on a shape set and
 * reports the max absolute and relative error against the float64 CPU reference and against cuDNN
 * (when the cudnn backend is available). An algorithm that throws is an ERROR row and the others still run.
 * Exit code 1 when any error is above the tolerance or any algorithm failed.
 */
@Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Check every available algorithm of every backend against the float64 reference (and cuDNN).")
final class VerifyCommand implements Callable<Integer> {
    /** Small layers covering stride, asymmetric-free padding, dilation, groups and depthwise. */
    static final List<String> DEFAULT_SHAPES = List.of(
            "2,3,17,19,8,3,3,1,1,1,1",
            "2,8,16,16,16,1,1,1,0,1,1",
            "1,6,15,13,6,5,5,2,2,1,3",
            "3,4,12,12,8,3,3,1,2,2,2",
            "2,8,14,14,16,3,3,2,1,1,8",
            "1,16,9,9,16,3,3,3,0,1,1");

    /** max |y - ref| / max |ref| at most this. */
    static final double TOLERANCE = 1e-4;

    @Option(names = "--shape", paramLabel = "N,C,H,W,K,R,S,stride,pad,dilation,groups", description = "A layer (repeatable).")
    List<String> shapes = new ArrayList<>();

    @Mixin
    Options.Threads threads;

    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** The backends checked (all of jconv's; a test adds one that fails). */
    List<Backend> backends = Backends.all();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Backend cudnn = CudnnBackend.INSTANCE;
        boolean haveCudnn = cudnn.unavailableReason() == null;
        if (!haveCudnn) {
            out.println("cudnn: not available: " + cudnn.unavailableReason() + " (the vs-cuDNN columns say n/a)");
        }
        out.printf("%-28s %-16s %-8s %-14s %12s %12s %12s %12s  %s%n", "shape", "op", "backend", "algorithm",
                "abs_vs_ref", "rel_vs_ref", "abs_vs_cudnn", "rel_vs_cudnn", "status");
        int failures = 0;
        Parallel par = Parallel.of(threads.count);
        for (ConvGeometry.Op op : ConvGeometry.Op.values()) {
            for (String s : shapes.isEmpty() ? DEFAULT_SHAPES : shapes) {
                Problem pr = Problem.parse(s, op);
                ConvGeometry g = pr.geometry;
                float[][] data = pr.randomData(7);
                double[] ref = ReferenceConv.compute(g, data[0], data[1], data[2], par);
                double[] viaCudnn = null;
                if (haveCudnn) {
                    try {
                        float[] yc = new float[ref.length];
                        cudnn.run(cudnn.choose(g), g, data[0], data[1], data[2], yc, threads.count);
                        viaCudnn = new double[yc.length];
                        for (int i = 0; i < yc.length; i++) {
                            viaCudnn[i] = yc[i];
                        }
                    } catch (RuntimeException | OutOfMemoryError | LinkageError e) {
                        out.printf("%-28s %-16s %-8s %-14s ERROR: %s (the vs-cuDNN columns say n/a)%n", s, op, cudnn.name(),
                                cudnn.choose(g), Main.describe(e));
                        failures++;
                    }
                }
                for (Backend b : backends) {
                    if (b.unavailableReason() != null || b == cudnn) {
                        continue;
                    }
                    for (Algorithm a : b.algorithms()) {
                        String why = b.cannotImplement(a, g);
                        if (why != null) {
                            out.printf("%-28s %-16s %-8s %-14s skipped: %s%n", s, op, b.name(), a, why);
                            continue;
                        }
                        float[] y = new float[ref.length];
                        failures += check(out, s, op.toString(), b, a, () -> b.run(a, g, data[0], data[1], data[2], y, threads.count), y, ref, viaCudnn);
                    }
                }
                out.flush();
            }
        }
        // the weight gradient of each conv2d layer (dy random), every algorithm that computes it
        for (String s : shapes.isEmpty() ? DEFAULT_SHAPES : shapes) {
            ConvGeometry g = Problem.parse(s, ConvGeometry.Op.CONV2D).geometry;
            float[][] data = io.github.jconv.SampleData.withOutputGradient(g, 7);
            double[] ref = io.github.jconv.cpu.WeightGradient.reference(g, data[0], data[3], par);
            double[] viaCudnn = null;
            if (haveCudnn && cudnn.cannotImplementBackwardWeight(Algorithm.VENDOR, g) == null) {
                float[] dwc = new float[ref.length];
                if (check(out, s, BenchCommand.WGRAD, cudnn, Algorithm.VENDOR,
                        () -> cudnn.backwardWeight(Algorithm.VENDOR, g, data[0], data[3], dwc, threads.count), dwc, ref, null) == 0) {
                    viaCudnn = new double[dwc.length];
                    for (int i = 0; i < dwc.length; i++) {
                        viaCudnn[i] = dwc[i];
                    }
                } else {
                    failures++;
                }
            }
            double[] cudnnDw = viaCudnn;
            for (Backend b : backends) {
                if (b.unavailableReason() != null || b == cudnn) {
                    continue;
                }
                for (Algorithm a : List.of(Algorithm.DIRECT, Algorithm.IM2COL, Algorithm.IMPLICIT_GEMM)) {
                    if (b.cannotImplementBackwardWeight(a, g) == null) {
                        float[] dw = new float[ref.length];
                        failures += check(out, s, BenchCommand.WGRAD, b, a, () -> b.backwardWeight(a, g, data[0], data[3], dw, threads.count),
                                dw, ref, cudnnDw);
                    }
                }
            }
            out.flush();
        }
        out.println(failures == 0 ? "verify: all within " + TOLERANCE
                : "verify: " + failures + " result(s) failed or above " + TOLERANCE);
        return failures == 0 ? 0 : Main.EXIT_FAILURE;
    }

    /** Runs {@code work} (which writes y) and prints its row against the reference (and cuDNN's result); 1 if it failed. */
    private static int check(PrintWriter out, String shape, String op, Backend b, Algorithm a, Runnable work, float[] y, double[] ref,
                             double[] viaCudnn) {
        try {
            work.run();
        } catch (RuntimeException | OutOfMemoryError | LinkageError e) {
            // one failing algorithm is one FAIL row; the others are still checked
            out.printf("%-28s %-16s %-8s %-14s ERROR: %s%n", shape, op, b.name(), a, Main.describe(e));
            return 1;
        }
        double rel = ReferenceConv.maxRelError(y, ref);
        boolean ok = rel <= TOLERANCE;
        String vsCudnn = viaCudnn == null ? String.format("%12s %12s", "n/a", "n/a")
                : String.format("%12.3e %12.3e", ReferenceConv.maxAbsError(y, viaCudnn), ReferenceConv.maxRelError(y, viaCudnn));
        out.printf("%-28s %-16s %-8s %-14s %12.3e %12.3e %s  %s%n", shape, op, b.name(), a, ReferenceConv.maxAbsError(y, ref), rel,
                vsCudnn, ok ? "ok" : "FAIL");
        return ok ? 0 : 1;
    }
}
