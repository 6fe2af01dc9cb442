package io.github.jconv;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * What a plan costs beyond the arithmetic on a tiny layer (1 x 8 x 8 x 8, 3 x 3, padding 1: 74 kFLOP, about a
 * microsecond of FMAs): {@code plan} runs a built CPU plan on device tensors, {@code stateless} the same layer
 * through {@code Jconv.run} with the algorithm named (no tuning), {@code kernel} the backend's run alone.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class PlanBenchmarks {
    @Param({"direct", "im2col"})
    public String algorithm;

    private Device device;
    private ConvPlan plan;
    private DeviceTensor x, y;
    private ConvGeometry g;
    private float[] xa, wa, ba, ya;
    private ConvOptions options;

    @Setup(Level.Trial)
    public void setup() {
        Random rnd = new Random(1);
        xa = random(rnd, 8 * 8 * 8);
        wa = random(rnd, 8 * 8 * 9);
        ba = random(rnd, 8);
        ya = new float[8 * 8 * 8];
        ConvSpec spec = ConvSpec.builder().padding(1).build();
        g = ConvGeometry.conv2d(new int[] {1, 8, 8, 8}, new int[] {8, 8, 3, 3}, new int[] {8}, spec);
        Algorithm a = Algorithm.parse(algorithm);
        device = Device.open("cpu");
        plan = ConvPlan.conv2d(device, new int[] {1, 8, 8, 8}, Tensor.of(wa, 8, 8, 3, 3), Tensor.of(ba, 8), spec).algorithm(a).threads(1)
                .build();
        x = device.upload(xa, 1, 8, 8, 8);
        y = device.allocate(1, 8, 8, 8);
        options = ConvOptions.defaults().withBackend("cpu").withAlgorithm(a).withThreads(1);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        device.close();
    }

    private static float[] random(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    @Benchmark
    public DeviceTensor plan() {
        plan.run(x, y);
        return y;
    }

    @Benchmark
    public float[] stateless() {
        Jconv.run(g, xa, wa, ba, ya, options);
        return ya;
    }

    @Benchmark
    public float[] kernel() {
        io.github.jconv.cpu.CpuBackend.INSTANCE.run(Algorithm.parse(algorithm), g, xa, wa, ba, ya, 1);
        return ya;
    }
}
