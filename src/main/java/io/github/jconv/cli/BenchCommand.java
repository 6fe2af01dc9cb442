package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.ConvGeometry;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;
import io.github.jconv.io.AtomicFile;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code bench}: for each shape and algorithm, warm-up runs then timed runs; prints median ms, GFLOP/s
 * and the max relative error against the float64 reference.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time every algorithm on a set of layers: median ms, GFLOP/s, error against the float64 reference.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--shape", paramLabel = "N,C,H,W,K,R,S,stride,pad,dilation,groups",
            description = "A layer (repeatable). Default: a mixed suite of ResNet-50-like, dilated, grouped and depthwise layers.")
    List<String> shapes = new ArrayList<>();

    @Option(names = "--op", defaultValue = "conv2d", paramLabel = "conv2d|conv-transpose2d",
            description = "Operation (default: ${DEFAULT-VALUE}); for conv-transpose2d a shape is ConvTranspose2d(C, K, ...) on N x C x H x W.")
    String op;

    @Option(names = "--backend", defaultValue = "auto", description = "Backend (default: ${DEFAULT-VALUE}: the best available).")
    String backend;

    @Option(names = "--algorithm", paramLabel = "NAME", description = "Algorithm (repeatable; default: every one but reference).")
    List<String> algorithms = new ArrayList<>();

    @Option(names = "--threads", defaultValue = "0", description = "CPU threads, 0 = all cores (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--warmup", defaultValue = "3", description = "Untimed runs per row, at least (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-ms", defaultValue = "1000",
            description = "Warm-up runs go on until this much time has passed too, so the JIT has compiled the kernels (default: ${DEFAULT-VALUE}).")
    long warmupMs;

    @Option(names = "--runs", defaultValue = "5", description = "Timed runs per row (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    static ConvGeometry.Op parseOp(String op) {
        switch (op) {
            case "conv2d": return ConvGeometry.Op.CONV2D;
            case "conv-transpose2d": case "conv_transpose2d": return ConvGeometry.Op.CONV_TRANSPOSE2D;
            default:
                throw new io.github.jconv.InvalidConvolutionException("--op: expected conv2d or conv-transpose2d, got '" + op + "'");
        }
    }

    @Override
    public Integer call() {
        if (runs < 1 || warmup < 0 || warmupMs < 0 || threads < 0) {
            throw new io.github.jconv.InvalidConvolutionException("--runs must be >= 1, --warmup, --warmup-ms and --threads >= 0");
        }
        ConvGeometry.Op operation = parseOp(op);
        List<Problem> problems = new ArrayList<>();
        for (String s : shapes.isEmpty() ? Problem.DEFAULT_SUITE : shapes) {
            problems.add(Problem.parse(s, operation));
        }
        Backend be = Backends.get(backend);
        List<Algorithm> algs = new ArrayList<>();
        for (String a : algorithms) {
            algs.add(Algorithm.parse(a));
        }
        if (algs.isEmpty()) {
            for (Algorithm a : be.algorithms()) {
                if (a != Algorithm.REFERENCE) {
                    algs.add(a);
                }
            }
        }
        int threadCount = Parallel.of(threads).threads();
        PrintWriter out = spec.commandLine().getOut();
        out.printf("jconv bench: backend %s, %d thread(s), per row >= %d warm-up runs and >= %d ms, then %d timed runs%n",
                be.name(), threadCount, warmup, warmupMs, runs);
        double peak = be.name().equals("cpu") ? io.github.jconv.cpu.CpuInfo.measuredPeakGflops(threadCount) : Double.NaN;
        if (!Double.isNaN(peak)) {
            out.printf("machine float32 FMA peak, measured now on %d thread(s): %.0f GFLOP/s%n", threadCount, peak);
        }
        out.printf("%-34s %-16s %-8s %-14s %7s %11s %9s %13s%n", "shape", "op", "backend", "algorithm", "threads",
                "median_ms", "GFLOP/s", "max_rel_err");
        List<Map<String, Object>> results = new ArrayList<>();
        int skipped = 0;
        for (Problem pr : problems) {
            ConvGeometry g = pr.geometry;
            float[][] data = pr.randomData(42);
            double[] ref = ReferenceConv.compute(g, data[0], data[1], data[2], Parallel.of(threads));
            float[] y = new float[ref.length];
            for (Algorithm a : algs) {
                Algorithm chosen = a;
                String why = a == Algorithm.AUTO ? null : be.cannotImplement(a, g);
                if (why != null) {
                    if (algorithms.isEmpty()) {
                        skipped++;
                    } else {
                        out.printf("%-34s %-16s %-8s %-14s skipped: %s%n", pr.label, g.op, be.name(), a, why);
                    }
                    continue;
                }
                if (a == Algorithm.AUTO) {
                    chosen = be.choose(g);
                }
                long warmStart = System.nanoTime();
                for (int i = 0; i < warmup || System.nanoTime() - warmStart < warmupMs * 1_000_000L; i++) {
                    be.run(chosen, g, data[0], data[1], data[2], y, threadCount);
                }
                double[] ms = new double[runs];
                for (int i = 0; i < runs; i++) {
                    long t0 = System.nanoTime();
                    be.run(chosen, g, data[0], data[1], data[2], y, threadCount);
                    ms[i] = (System.nanoTime() - t0) / 1e6;
                }
                double median = median(ms);
                double gflops = g.flops() / (median * 1e6);
                double err = Problem.maxRelError(y, ref);
                String label = a == Algorithm.AUTO ? "auto:" + chosen : chosen.label();
                out.printf("%-34s %-16s %-8s %-14s %7d %11.3f %9.2f %13.3e%n", pr.label, g.op, be.name(), label,
                        threadCount, median, gflops, err);
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("shape", pr.label);
                row.put("op", g.op.label());
                row.put("backend", be.name());
                row.put("algorithm", label);
                row.put("threads", threadCount);
                row.put("median_ms", median);
                row.put("gflops", gflops);
                row.put("max_rel_error", err);
                results.add(row);
            }
            out.flush();
        }
        if (skipped > 0) {
            out.printf("(%d layer/algorithm pairs not shown: the algorithm cannot take the layer; name it with --algorithm to see why)%n",
                    skipped);
        }
        if (json != null) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("results", results);
            if (!Double.isNaN(peak)) {
                doc.put("peak_gflops", peak);
            }
            AtomicFile.write(json, Json.write(doc).getBytes(StandardCharsets.UTF_8));
        }
        return 0;
    }

    static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
}
