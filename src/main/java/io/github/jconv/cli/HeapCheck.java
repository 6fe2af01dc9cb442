package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.ConvGeometry;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.Tensor;
import io.github.jconv.cpu.CpuBackend;

import java.util.Arrays;

/**
 * Refuses, before any data is read, a convolution whose arrays cannot fit in the Java heap: one line naming the
 * sizes and the remedy instead of an OutOfMemoryError after minutes of work.
 */
final class HeapCheck {
    private HeapCheck() {
    }

    /** The host memory the call needs: input, weight, bias and output (float32), plus the CPU algorithm's workspace. */
    static void require(ConvGeometry g, Backend backend, Algorithm algorithm) {
        long in = 4 * Tensor.elementCount(g.inputShape()), w = 4 * Tensor.elementCount(g.weightShape());
        long out = 4 * Tensor.elementCount(g.outputShape()), bias = g.hasBias ? 4L * g.biasLength() : 0;
        long work = backend == CpuBackend.INSTANCE && !g.isEmpty() ? backend.workspaceBytes(algorithm, g) : 0;
        require(g.op.toString(), in + w + bias + out + work, "input " + Arrays.toString(g.inputShape()) + " " + bytes(in) + ", weight "
                + bytes(w) + ", output " + Arrays.toString(g.outputShape()) + " " + bytes(out)
                + (work > 0 ? ", " + algorithm + " workspace " + bytes(work) : ""));
    }

    /** The host memory a weight gradient needs: x, dy and dW (float32), plus im2col's column buffer on the CPU. */
    static void requireWeightGradient(ConvGeometry g, Backend backend, Algorithm algorithm) {
        long x = 4L * g.n * g.c * g.h * g.w, dy = 4L * g.n * g.k * g.p * g.q, dw = 4 * Tensor.elementCount(g.weightShape());
        long work = backend == CpuBackend.INSTANCE && algorithm == Algorithm.IM2COL ? 4L * g.cPerGroup() * g.r * g.s * g.p * g.q : 0;
        require("the weight gradient", x + dy + dw + work, "x " + bytes(x) + ", dy " + bytes(dy) + ", dW " + bytes(dw)
                + (work > 0 ? ", im2col workspace " + bytes(work) : ""));
    }

    private static void require(String what, long need, String parts) {
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (need > free) {
            throw new InvalidConvolutionException(what + " needs about " + bytes(need) + " of Java heap (" + parts
                    + "), more than the " + bytes(free) + " this JVM can still use (-Xmx " + bytes(rt.maxMemory())
                    + "); raise it with JAVA_OPTS=-Xmx" + ((need + rt.maxMemory() - free) * 5 / 4 + (1L << 30) - 1 >> 30) + "g");
        }
    }

    static String bytes(long b) {
        if (b < 1L << 20) {
            return ExplainCommand.bytes(b);
        }
        return b < 1L << 30 ? String.format("%.1f MiB", b / 1048576.0) : String.format("%.1f GiB", b / 1073741824.0);
    }
}
