package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmarks of the CPU kernels, for kernel work (scripts/jmh.sh): the SGEMM alone on im2col-shaped
 * problems, and whole convolutions per algorithm on ResNet-50 layers. Single-threaded unless -p threads=N,
 * so a kernel change shows without the thread pool's noise.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class KernelBenchmarks {
    /** M x N x K of C = A * B, as im2col makes them: K/G x P*Q x C/G*R*S. */
    @Param({"64x3136x576", "256x196x2304", "256x3136x64"})
    public String gemm;

    /** N x C x H x W x K x R x S x stride x pad x dilation x groups (x, not commas: JMH splits -p values at commas). */
    @Param({"8x64x56x56x64x3x3x1x1x1x1", "8x256x14x14x256x3x3x1x1x1x1", "8x128x28x28x128x3x3x1x2x2x1", "8x128x56x56x128x3x3x1x1x1x128"})
    public String layer;

    @Param({"im2col", "direct"})
    public String algorithm;

    @Param({"1"})
    public int threads;

    private int m, n, k;
    private float[] a, b, c;
    private ConvGeometry g;
    private float[] x, w, bias, y;
    private Algorithm alg;
    private Parallel par;

    @Setup
    public void setup() {
        String[] mnk = gemm.split("x");
        m = Integer.parseInt(mnk[0]);
        n = Integer.parseInt(mnk[1]);
        k = Integer.parseInt(mnk[2]);
        Random rnd = new Random(1);
        a = random(rnd, m * k);
        b = random(rnd, k * n);
        c = new float[m * n];
        int[] v = java.util.Arrays.stream(layer.split("x")).mapToInt(Integer::parseInt).toArray();
        g = ConvGeometry.conv2d(new int[] {v[0], v[1], v[2], v[3]}, new int[] {v[4], v[1] / v[10], v[5], v[6]},
                new int[] {v[4]}, ConvSpec.builder().stride(v[7]).padding(v[8]).dilation(v[9]).groups(v[10]).build());
        x = random(rnd, (int) io.github.jconv.Tensor.elementCount(g.inputShape()));
        w = random(rnd, (int) io.github.jconv.Tensor.elementCount(g.weightShape()));
        bias = random(rnd, g.biasLength());
        y = new float[(int) io.github.jconv.Tensor.elementCount(g.outputShape())];
        alg = Algorithm.parse(algorithm);
        par = Parallel.of(threads);
    }

    private static float[] random(Random rnd, int size) {
        float[] f = new float[size];
        for (int i = 0; i < size; i++) {
            f[i] = (float) rnd.nextGaussian();
        }
        return f;
    }

    @Benchmark
    public float[] sgemm() {
        Sgemm.multiply(m, n, k, a, 0, k, 1, b, 0, n, 1, c, 0, n, false, par);
        return c;
    }

    @Benchmark
    public float[] conv2d() {
        CpuBackend.INSTANCE.run(alg, g, x, w, bias, y, threads);
        return y;
    }
}
