package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/** {@code info}: version, Java, CPU, SIMD, and every backend with its algorithms or why it cannot run. */
@Command(name = "info", mixinStandardHelpOptions = true, description = "Version, Java, CPU and the state of every backend.")
final class InfoCommand implements Callable<Integer> {
    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("jconv " + Main.Version.version());
        out.println("java: " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ", "
                + System.getProperty("java.vendor") + ")");
        out.println("os: " + System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        out.println("cpu cores: " + Runtime.getRuntime().availableProcessors());
        out.println("cpu simd: " + simd());
        out.println("cpu kernels: " + io.github.jconv.cpu.CpuInfo.simdPath());
        out.println("backends:");
        for (Backend b : Backends.all()) {
            String why = b.unavailableReason();
            if (why == null) {
                out.println("  " + b.name() + ": available; algorithms: "
                        + b.algorithms().stream().map(Algorithm::label).collect(Collectors.joining(", ")));
                if (b instanceof io.github.jconv.cuda.CudaBackend) {
                    io.github.jconv.cuda.CudaBackend cb = (io.github.jconv.cuda.CudaBackend) b;
                    out.println("    device: " + cb.describeDevice() + "; im2col GEMM: " + cb.gemm());
                }
            } else {
                out.println("  " + b.name() + ": not available: " + why);
            }
        }
        out.println("  auto: " + Backends.get("auto").name());
        return 0;
    }

    /** The widest x86 vector extension /proc/cpuinfo lists, or "unknown". */
    static String simd() {
        try {
            String info = Files.readString(Path.of("/proc/cpuinfo"));
            int i = info.indexOf("\nflags");
            if (i >= 0) {
                String flags = " " + info.substring(i, info.indexOf('\n', i + 1)) + " ";
                if (flags.contains(" avx512f ")) {
                    return "avx512f (512-bit)";
                }
                if (flags.contains(" avx2 ")) {
                    return "avx2 (256-bit)";
                }
                if (flags.contains(" sse2 ")) {
                    return "sse2 (128-bit)";
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: fall through
        }
        return "unknown (" + System.getProperty("os.arch") + ")";
    }
}
