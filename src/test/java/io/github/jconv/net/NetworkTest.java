package io.github.jconv.net;

import io.github.jconv.Algorithm;
import io.github.jconv.Backends;
import io.github.jconv.Device;
import io.github.jconv.Epilogue;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trunks are the real networks' convolutions, and they give the same output on the CPU and on the emulated GPU. */
class NetworkTest {
    @Test
    void resnet50IsTorchvisionsTrunk() {
        Network n = Network.named("resnet50", 2, 224, 1);
        assertEquals(53, n.convolutions());
        assertArrayEquals(new int[] {2, 2048, 7, 7}, n.outputShape());
        assertEquals(2 * 2 * 4.09e9, n.flops(), 2 * 2 * 0.02e9, "4.09 G multiply-adds per image (torchvision's figure)");
        List<Network.Layer> l = n.layers();
        assertEquals("maxpool", l.get(1).name());
        Network.Conv down = (Network.Conv) l.stream().filter(x -> x.name().equals("layer2.0.downsample")).findFirst().orElseThrow();
        assertArrayEquals(new int[] {2, 256, 56, 56}, down.geometry().inputShape());
        assertEquals(2, down.geometry().strideH, "the downsample projection has the stage's stride");
        Network.Conv conv2 = (Network.Conv) l.stream().filter(x -> x.name().equals("layer2.0.conv2")).findFirst().orElseThrow();
        assertEquals(2, conv2.geometry().strideH, "v1.5: the stride is on the 3x3");
        Network.Conv conv3 = (Network.Conv) l.stream().filter(x -> x.name().equals("layer4.2.conv3")).findFirst().orElseThrow();
        assertEquals(Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), conv3.epilogue());
        assertTrue(conv3.residual() > 0);
    }

    @Test
    void mobilenetV2IsTorchvisionsFeatures() {
        Network n = Network.named("mobilenetv2", 1, 224, 1);
        assertEquals(52, n.convolutions());
        assertArrayEquals(new int[] {1, 1280, 7, 7}, n.outputShape());
        assertEquals(2 * 0.30e9, n.flops(), 2 * 0.02e9, "about 300 M multiply-adds (torchvision's figure)");
        long residuals = n.layers().stream().filter(x -> x instanceof Network.Conv && ((Network.Conv) x).residual() >= 0).count();
        assertEquals(10, residuals, "the inverted residual blocks with stride 1 and equal widths");
        Network.Conv dw = (Network.Conv) n.layers().stream().filter(x -> x.name().equals("features.2.depthwise")).findFirst().orElseThrow();
        assertEquals(96, dw.geometry().groups);
        assertEquals(Epilogue.of(Epilogue.Activation.RELU6), dw.epilogue());
    }

    @Test
    void badNetworkRequestsAreRefused() {
        assertTrue(assertThrows(InvalidConvolutionException.class, () -> Network.named("vgg", 1, 224, 1)).getMessage()
                .contains("expected resnet50 or mobilenetv2"));
        assertTrue(assertThrows(InvalidConvolutionException.class, () -> Network.named("resnet50", 1, 100, 1)).getMessage()
                .contains("a multiple of 32"));
    }

    /**
     * A compiled trunk keeps its intermediate tensors for the next run: a second and third run (the second timed layer by
     * layer) give the same output bits as the first, each run's output is the caller's own tensor, and closing the trunk
     * frees what it kept (the device's leak check passes).
     */
    @Test
    void repeatedRunsReuseTheIntermediatesAndCloseFreesThem() {
        Network n = Network.named("resnet50", 1, 32, 3);
        Tensor x = n.randomInput(4);
        try (Device dev = Device.open("cpu")) {
            float[] first, second, third;
            long[] nanos = new long[n.layers().size()];
            try (Network.Compiled c = n.compile(dev, Algorithm.AUTO, 2, false);
                 io.github.jconv.DeviceTensor in = dev.upload(x)) {
                try (io.github.jconv.DeviceTensor a = c.run(in); io.github.jconv.DeviceTensor b = c.run(in, nanos)) {
                    first = a.download().data();
                    second = b.download().data();
                }
                third = c.run(x).data();
                assertThrows(IllegalArgumentException.class, () -> c.run(in, new long[3]));
            }
            assertArrayEquals(first, second, 0f, "the second run, on reused intermediates");
            assertArrayEquals(first, third, 0f, "the third run");
            for (int i = 0; i < nanos.length; i++) {
                boolean fused = n.layers().get(i).name().endsWith("downsample"); // run inside their block's conv3
                assertTrue(fused ? nanos[i] == 0 : nanos[i] > 0, "every layer timed, fused ones not: " + java.util.Arrays.toString(nanos));
            }
        } // Device.close throws DeviceLeakException if the trunk kept a tensor after its close
    }

    /**
     * On the CPU in float32 each ResNet-50 downsample projection runs inside its block's last 1x1 convolution (one GEMM over
     * both inputs' channels, the weights side by side, the biases summed): the four are reported fused, the trunk's output
     * is the unfused trunk's to 1e-5 (a rounding order apart), batch 2 and a map whose stride-2 subsampling rounds up
     * (size 96: 24 -> 12 -> 6 -> 3); MobileNetV2 has no projection shortcut, and half precision runs unfused.
     */
    @Test
    void downsampleProjectionsRunInsideTheBlocksLastConvolutionAndIdentityResidualsAreAddedInPlace() {
        Network n = Network.named("resnet50", 2, 96, 5);
        Tensor x = n.randomInput(6);
        Tensor fused, unfused;
        try (Device dev = Device.open("cpu")) {
            try (Network.Compiled c = n.compile(dev, Algorithm.AUTO, 2, false)) {
                for (int i = 0; i < n.layers().size(); i++) {
                    String name = n.layers().get(i).name();
                    if (name.endsWith("downsample")) {
                        String block = name.substring(0, name.length() - "downsample".length());
                        assertEquals(block + "conv3", n.layers().get(c.fusedInto(i)).name());
                        assertEquals("in " + block + "conv3", c.algorithm(i));
                        assertEquals(null, c.geometry(i));
                        assertTrue(c.algorithm(c.fusedInto(i)).endsWith("+shortcut"), c.algorithm(c.fusedInto(i)));
                        io.github.jconv.ConvGeometry both = c.geometry(c.fusedInto(i)), own = ((Network.Conv) n.layers().get(i)).geometry();
                        assertEquals(own.k, both.k);
                        assertEquals(own.c + ((Network.Conv) n.layers().get(c.fusedInto(i))).geometry().c, both.c, "both inputs' channels");
                    } else {
                        assertEquals(-1, c.fusedInto(i), name);
                    }
                    // the identity blocks' conv3 write into the block's input (the last one too: the output leaves the kept tensors)
                    boolean identity = name.endsWith("conv3") && !name.endsWith(".0.conv3");
                    assertEquals(identity, c.addsResidualInPlace(i), name);
                }
                assertEquals(12, java.util.stream.IntStream.range(0, n.layers().size()).filter(c::addsResidualInPlace).count());
                fused = c.run(x);
                try (io.github.jconv.DeviceTensor in = dev.upload(x); io.github.jconv.DeviceTensor first = c.run(in);
                     io.github.jconv.DeviceTensor second = c.run(in)) {
                    assertTrue(first != second, "each run hands out its own output");
                    assertArrayEquals(fused.data(), first.download().data());
                    assertArrayEquals(fused.data(), second.download().data(), "a later run, on the kept intermediates");
                }
            }
            String saved = System.setProperty("jconv.network.unfused", "true");
            try (Network.Compiled c = n.compile(dev, Algorithm.AUTO, 2, false)) {
                assertTrue(java.util.stream.IntStream.range(0, n.layers().size()).allMatch(i -> c.fusedInto(i) < 0), "unfused on request");
                assertTrue(java.util.stream.IntStream.range(0, n.layers().size()).noneMatch(c::addsResidualInPlace), "apart on request");
                unfused = c.run(x);
            } finally {
                if (saved == null) {
                    System.clearProperty("jconv.network.unfused");
                } else {
                    System.setProperty("jconv.network.unfused", saved);
                }
            }
            Network m = Network.named("mobilenetv2", 1, 64, 5);
            try (Network.Compiled c = m.compile(dev, Algorithm.AUTO, 2, false)) {
                assertTrue(java.util.stream.IntStream.range(0, m.layers().size()).allMatch(i -> c.fusedInto(i) < i),
                        "no projection shortcut (a layer computed inside a later one)");
                assertEquals(10, java.util.stream.IntStream.range(0, m.layers().size()).filter(c::addsResidualInPlace).count(),
                        "MobileNetV2's residual projections");
            }
            try (Network.Compiled c = n.compile(dev, Algorithm.AUTO, io.github.jconv.MathMode.FP32, io.github.jconv.Dtype.FP16, 2, false)) {
                assertTrue(java.util.stream.IntStream.range(0, n.layers().size()).allMatch(i -> c.fusedInto(i) < 0), "fp16: unfused");
                assertTrue(java.util.stream.IntStream.range(0, n.layers().size()).noneMatch(c::addsResidualInPlace), "fp16: apart");
            }
        }
        double[] d = difference(unfused, fused);
        assertTrue(d[1] > 0.1, "a live output");
        assertTrue(d[0] / d[1] <= 1e-5, "fused against unfused: max relative difference " + d[0] / d[1]);
    }

    /**
     * On the CPU in float32 each MobileNetV2 expansion runs with the depthwise layer after it in one pass ({@link
     * io.github.jconv.ConvPlan#runWith}) where the two plans take it: at 64 x 64, batch 2, the 32 x 32 stride-2 pair and
     * the 16 x 16 stride-1 pair at least (the 8 x 8 stride-1 depthwise layers run on their channels-in-lanes kernel and stay
     * apart), each reported inside its expansion, timed there; the trunk's output has the unfused trunk's bits, run after
     * run, and with everything apart on request.
     */
    @Test
    void mobilenetV2RunsEachExpansionWithItsDepthwiseLayerInOnePassWithTheSameBits() {
        Network m = Network.named("mobilenetv2", 2, 64, 5);
        Tensor x = m.randomInput(6);
        float[] fused, again, unfused;
        try (Device dev = Device.open("cpu")) {
            long[] nanos = new long[m.layers().size()];
            try (Network.Compiled c = m.compile(dev, Algorithm.AUTO, 2, false)) {
                List<String> pairs = new java.util.ArrayList<>();
                for (int i = 0; i < m.layers().size(); i++) {
                    if (c.fusedInto(i) < 0) {
                        continue;
                    }
                    String name = m.layers().get(i).name(), expand = m.layers().get(c.fusedInto(i)).name();
                    assertEquals(i - 1, c.fusedInto(i), name + ": inside the layer before it");
                    assertTrue(name.endsWith(".depthwise") && expand.equals(name.replace(".depthwise", ".expand")), name + " in " + expand);
                    assertEquals("in " + expand, c.algorithm(i));
                    assertEquals("direct+depthwise", c.algorithm(i - 1));
                    pairs.add(name);
                }
                assertTrue(pairs.containsAll(List.of("features.2.depthwise", "features.3.depthwise")), pairs.toString());
                fused = c.run(x).data();
                try (io.github.jconv.DeviceTensor in = dev.upload(x); io.github.jconv.DeviceTensor y = c.run(in, nanos)) {
                    again = y.download().data();
                }
                for (int i = 0; i < nanos.length; i++) {
                    assertTrue(c.fusedInto(i) >= 0 ? nanos[i] == 0 : nanos[i] > 0, "every layer timed, fused ones not: " + Arrays.toString(nanos));
                }
            }
            String saved = System.setProperty("jconv.network.unfused", "true");
            try (Network.Compiled c = m.compile(dev, Algorithm.AUTO, 2, false)) {
                assertTrue(java.util.stream.IntStream.range(0, m.layers().size()).allMatch(i -> c.fusedInto(i) < 0), "unfused on request");
                unfused = c.run(x).data();
            } finally {
                if (saved == null) {
                    System.clearProperty("jconv.network.unfused");
                } else {
                    System.setProperty("jconv.network.unfused", saved);
                }
            }
        } // Device.close throws DeviceLeakException if the trunk kept a tensor after its close
        assertArrayEquals(unfused, fused, 0f, "one pass against the two layers apart");
        assertArrayEquals(fused, again, 0f, "a second run, on the kept intermediates");
        double[] d = difference(Tensor.of(unfused, m.outputShape()), Tensor.of(fused, m.outputShape()));
        assertTrue(d[1] > 0.1, "a live output");
    }

    /** The whole trunk on the CPU and on cuda-emu, device-resident on each: the same output to 1e-4. */
    @ParameterizedTest
    @ValueSource(strings = {"resnet50", "mobilenetv2"})
    void theTrunkGivesTheSameOutputOnTheCpuAndTheEmulatedGpu(String name) {
        Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals("cuda-emu") && b.unavailableReason() == null));
        Network n = Network.named(name, 1, name.equals("resnet50") ? 32 : 64, 7);
        Tensor x = n.randomInput(8);
        Tensor cpu = cpuTrunk(n, x), emu;
        try (Device dev = Device.open("cuda-emu"); Network.Compiled c = n.compile(dev, Algorithm.AUTO, 0, false)) {
            emu = c.run(x);
        }
        assertArrayEquals(n.outputShape(), emu.shape());
        double err = 0, scale = 0;
        boolean finite = true;
        for (int i = 0; i < cpu.size(); i++) {
            err = Math.max(err, Math.abs(cpu.data()[i] - emu.data()[i]));
            scale = Math.max(scale, Math.abs(cpu.data()[i]));
            finite &= Float.isFinite(cpu.data()[i]);
        }
        assertTrue(scale > 0.1 && finite, "a live, finite output");
        assertTrue(err / scale <= 1e-4, name + ": max relative difference " + err / scale);
    }

    /**
     * ResNet-50's trunk compiled in a tensor-core math on cuda-emu (every convolution on the implicit GEMM's tensor-core
     * kernels) against the CPU's fp32 trunk: 3xtf32 to 1e-4 like fp32, tf32 and fp16 to 2e-2 (each of the 53 layers rounds
     * its operands to 11 bits; measured 8.3e-4 and 7.2e-4 on a Zen 5, 2026-12-05), bf16 to 1.6e-1 (8 bits, eight times
     * as far; measured 6.2e-3); the rounding maths must differ from fp32.
     */
    @ParameterizedTest
    @ValueSource(strings = {"TF32", "TF32X3", "FP16", "BF16"})
    void theTrunkInATensorCoreMathStaysCloseToFp32(String mathName) {
        Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals("cuda-emu") && b.unavailableReason() == null));
        io.github.jconv.MathMode math = io.github.jconv.MathMode.valueOf(mathName);
        Network n = Network.named("resnet50", 1, 32, 7);
        Tensor x = n.randomInput(8);
        Tensor cpu = cpuTrunk(n, x), emu;
        try (Device dev = Device.open("cuda-emu"); Network.Compiled c = n.compile(dev, Algorithm.AUTO, math, 0, false)) {
            emu = c.run(x);
        }
        double[] d = difference(cpu, emu);
        double err = d[0], scale = d[1];
        double bound = math == io.github.jconv.MathMode.TF32X3 ? 1e-4 : math == io.github.jconv.MathMode.BF16 ? 1.6e-1 : 2e-2;
        assertTrue(scale > 0.1, "a live output");
        assertTrue(err / scale <= bound, math.label() + ": max relative difference " + err / scale);
        if (math != io.github.jconv.MathMode.TF32X3) {
            assertTrue(err / scale > 1e-6, math.label() + " rounds: it cannot equal fp32 (" + err / scale + ")");
        }
    }

    /**
     * ResNet-50's trunk on half-precision tensors (weights rounded to the dtype, every intermediate stored in it, max pool
     * included) on the CPU and on cuda-emu, against the CPU's fp32 trunk: fp16 to 2e-2 and bf16 to 1.6e-1, the tensor-core
     * maths' bounds (each layer rounds its operands and its result to 11 or 8 bits); it must differ from fp32, and closing
     * the device finds nothing left open.
     */
    @ParameterizedTest
    @CsvSource({"FP16, cpu", "BF16, cpu", "FP16, cuda-emu", "BF16, cuda-emu"})
    void theTrunkOnHalfPrecisionTensorsStaysCloseToFp32(String dtypeName, String backend) {
        Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals(backend) && b.unavailableReason() == null));
        io.github.jconv.Dtype dtype = io.github.jconv.Dtype.valueOf(dtypeName);
        Network n = Network.named("resnet50", 1, 32, 7);
        Tensor x = n.randomInput(8);
        Tensor cpu = cpuTrunk(n, x), half;
        try (Device dev = Device.open(backend);
             Network.Compiled c = n.compile(dev, Algorithm.AUTO, io.github.jconv.MathMode.FP32, dtype, 2, false)) {
            assertEquals(dtype, c.dtype());
            half = c.run(x);
        }
        double[] d = difference(cpu, half);
        double err = d[0], scale = d[1];
        double bound = dtype == io.github.jconv.Dtype.BF16 ? 1.6e-1 : 2e-2;
        assertTrue(scale > 0.1, "a live output");
        assertTrue(err / scale <= bound && err / scale > 1e-6, dtype.label() + " on " + backend + ": max relative difference " + err / scale);
        for (float v : half.data()) {
            assertEquals(v, dtype.round(v), "the output holds values of the dtype");
        }
    }

    /** The trunk's fp32 output on the CPU (2 threads, no tuning). */
    private static Tensor cpuTrunk(Network n, Tensor x) {
        try (Device dev = Device.open("cpu"); Network.Compiled c = n.compile(dev, Algorithm.AUTO, 2, false)) {
            return c.run(x);
        }
    }

    /** {max |ref - y|, max |ref|} over the elements. */
    private static double[] difference(Tensor ref, Tensor y) {
        double err = 0, scale = 0;
        for (int i = 0; i < ref.size(); i++) {
            err = Math.max(err, Math.abs(ref.data()[i] - y.data()[i]));
            scale = Math.max(scale, Math.abs(ref.data()[i]));
        }
        return new double[] {err, scale};
    }
}
