package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Autotuner;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.ConvGeometry;
import io.github.jconv.cpu.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code explain}: what jconv would do with a layer: its output shape and FLOPs, every algorithm of the
 * backend with can / cannot (and why) and its workspace, the autotuning cache's timings if any, and the
 * choice {@code auto} makes.
 */
@Command(name = "explain", mixinStandardHelpOptions = true,
        description = "Output shape, FLOPs, every algorithm (can/cannot and why, workspace), cached timings and auto's choice.")
final class ExplainCommand implements Callable<Integer> {
    @Option(names = "--shape", required = true, paramLabel = "N,C,H,W,K,R,S,stride,pad,dilation,groups",
            description = "The layer: Conv2d(C, K, (R, S), ...) (or ConvTranspose2d with --op) on N x C x H x W.")
    String shape;

    @Option(names = "--op", defaultValue = "conv2d", paramLabel = "conv2d|conv-transpose2d", description = "Operation (default: ${DEFAULT-VALUE}).")
    String op;

    @Option(names = "--backend", defaultValue = "auto", description = "Backend (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = "--bias", description = "The layer has a bias (part of the autotuning key, as in conv2d --bias).")
    boolean bias;

    @Mixin
    Options.Threads threads;

    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Whose cache is shown (the process-wide tuner; a test gives its own). */
    Autotuner tuner = Autotuner.global();

    @Override
    public Integer call() {
        Problem pr = Problem.parse(shape, BenchCommand.parseOp(op), bias);
        ConvGeometry g = pr.geometry;
        Backend be = Backends.get(backend);
        int t = Parallel.of(threads.count).threads();
        PrintWriter out = spec.commandLine().getOut();
        out.println(g.op + " " + shape);
        out.println("  input  " + Arrays.toString(g.inputShape()) + ", weight " + Arrays.toString(g.weightShape()) + ", output "
                + Arrays.toString(g.outputShape()));
        out.println("  padding (top, bottom, left, right) " + g.padTop + ", " + g.padBottom + ", " + g.padLeft + ", " + g.padRight
                + "; GEMM per group M=" + g.gemmM() + " N=" + g.gemmN() + " K=" + g.gemmK());
        out.printf("  %.3f GFLOP (2 per multiply-add)%n", g.flops() / 1e9);
        out.println("backend " + be.name() + ", " + t + " thread(s):");
        Map<String, Object> cached = tuner.cached(be, g, threads.count);
        Map<?, ?> times = field(cached, "median_ms"), failed = field(cached, "failed");
        for (Algorithm a : be.algorithms()) {
            String why = be.cannotImplement(a, g);
            Object ms = times.get(a.label());
            Object failure = failed.get(a.label());
            out.printf("  %-14s %-6s workspace %10s%s%s%s%n", a, why == null ? "can" : "cannot",
                    why == null ? bytes(be.workspaceBytes(a, g)) : "-",
                    ms instanceof Number ? String.format(", tuned %.3f ms", ((Number) ms).doubleValue()) : "",
                    failure == null ? "" : ", failed in tuning (skipped): " + failure,
                    why == null ? "" : ": " + why);
            String variant = be.variant(a, g);
            if (variant != null) {
                out.println("                 kernel " + variant);
            }
        }
        String choice;
        if (cached != null) {
            choice = cached.get("algorithm") + " (autotuning cache " + tuner.cacheFile() + ", tuned " + cached.get("tuned_at") + ")";
        } else if (g.flops() < Autotuner.minFlops()) {
            choice = be.choose(g) + " (heuristic: below " + Autotuner.minFlops() + " FLOPs nothing is tuned)";
        } else {
            choice = be.choose(g) + " (heuristic until the first run tunes it; then cached in " + Autotuner.global().cacheFile() + ")";
        }
        out.println("auto: " + choice);
        return 0;
    }

    private static Map<?, ?> field(Map<String, Object> entry, String name) {
        Object v = entry == null ? null : entry.get(name);
        return v instanceof Map ? (Map<?, ?>) v : Map.of();
    }

    static String bytes(long b) {
        return b < 1024 ? b + " B" : b < 1 << 20 ? String.format("%.1f KiB", b / 1024.0) : String.format("%.1f MiB", b / 1048576.0);
    }
}
