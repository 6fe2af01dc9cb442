package io.github.jconv.cpu;

/** What the CPU backend can say about itself: the SIMD path in use and the machine's measured FMA peak. */
public final class CpuInfo {
    private CpuInfo() {
    }

    /** One line: the Vector API species and kernel shapes, or why the scalar path runs. */
    public static String simdPath() {
        if (!Sgemm.VECTOR) {
            return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
                    ? "scalar loops (Vector API switched off with -Djconv.vector=false)"
                    : "scalar loops and JIT auto-vectorisation (start Java with --add-modules jdk.incubator.vector for the SIMD kernels)";
        }
        return VectorKernels.describe();
    }

    /** GFLOP/s of a short FMA probe on {@code threads} threads; NaN without the Vector API. */
    public static double measuredPeakGflops(int threads) {
        return Sgemm.VECTOR ? PeakProbe.measure(threads) : Double.NaN;
    }

    /** Kept apart so that jdk.incubator.vector is touched only when the module is present. */
    private static final class VectorKernels {
        static String describe() {
            return "Vector API, " + VectorSgemm.V + " float lanes (" + VectorSgemm.S.vectorBitSize() + "-bit); GEMM micro-kernel "
                    + VectorSgemm.MR + "x" + VectorSgemm.NR + ", direct kernels " + VectorDirectChannels.PX + " outputs x "
                    + VectorDirectChannels.NB + " channels (dense stride-1 3x3) and " + VectorDirect.TK + " channels x " + VectorDirect.TV
                    + " vectors of " + VectorDirect.V + " columns";
        }
    }
}
