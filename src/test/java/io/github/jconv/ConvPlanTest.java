package io.github.jconv;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Plans and device tensors: the same results as the stateless calls, chains that stay on the device, leaks, closed use. */
class ConvPlanTest {
    private static Device open(String name) {
        if (!name.equals("cpu")) {
            Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals(name) && b.unavailableReason() == null), name);
        }
        return Device.open(name);
    }

    private static Tensor random(long seed, int... shape) {
        return Tensor.of(TestSupport.gaussian(new Random(seed), Tensor.elementCount(shape)), shape);
    }

    /** For every algorithm the device's backend has, a plan's result is the stateless call's, bit for bit. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void planResultsEqualTheStatelessCallBitForBit(String name) {
        try (Device dev = open(name)) {
            for (ConvGeometry g : EpilogueTest.LAYERS) {
                Tensor x = random(1, g.inputShape()), w = random(2, g.weightShape());
                Tensor b = g.hasBias ? random(3, g.biasLength()) : null;
                Tensor r = random(4, g.outputShape());
                Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
                ConvSpec spec = g.explicitSpec();
                for (Algorithm a : dev.backend().algorithms()) {
                    if (dev.backend().cannotImplement(a, g) != null) {
                        continue;
                    }
                    ConvPlan.Builder pb = g.transposed() ? ConvPlan.convTranspose2d(dev, g.inputShape(), w, b, spec)
                            : ConvPlan.conv2d(dev, g.inputShape(), w, b, spec);
                    try (ConvPlan plan = pb.algorithm(a).epilogue(ep).threads(2).build()) {
                        Tensor got = plan.run(x, r);
                        ConvOptions opts = ConvOptions.defaults().withBackend(name).withAlgorithm(a).withThreads(2);
                        Tensor want = g.transposed() ? Jconv.convTranspose2d(x, w, b, spec, ep, r, opts) : Jconv.conv2d(x, w, b, spec, ep, r, opts);
                        assertArrayEquals(want.data(), got.data(), 0f, name + "/" + a + " on " + g);
                    }
                }
            }
        }
    }

    /**
     * A CPU plan packs its weights at build and reuses them: every algorithm on layers that reach each packing path (the
     * channel-blocked direct kernel, the stride-1 transposed rewrite with its flipped weights, im2col both ways, grouped),
     * two runs with different inputs, from four threads at once, equal the stateless call bit for bit; the caller's
     * weight array changed after the build does not reach the plan.
     */
    @Test
    void cpuPlansPackTheirWeightsOnceAndReuseThem() throws Exception {
        List<ConvGeometry> layers = List.of(
                ConvGeometry.conv2d(new int[] {2, 8, 9, 10}, new int[] {40, 8, 3, 3}, new int[] {40}, ConvSpec.builder().padding(1).build()),
                ConvGeometry.conv2d(new int[] {1, 6, 10, 9}, new int[] {9, 2, 3, 2}, null,
                        ConvSpec.builder().stride(2, 1).padding(Padding.of(1, 0, 2, 1)).groups(3).build()),
                ConvGeometry.convTranspose2d(new int[] {2, 6, 7, 5}, new int[] {6, 4, 3, 3}, new int[] {4}, ConvSpec.builder().padding(1).build()),
                ConvGeometry.convTranspose2d(new int[] {2, 6, 4, 5}, new int[] {6, 3, 4, 4}, new int[] {3}, ConvSpec.builder().stride(2).padding(1).build()));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (Device dev = Device.open("cpu")) {
            for (ConvGeometry g : layers) {
                Tensor w = random(2, g.weightShape()), b = g.hasBias ? random(3, g.biasLength()) : null;
                ConvSpec spec = g.explicitSpec();
                for (Algorithm a : dev.backend().algorithms()) {
                    if (dev.backend().cannotImplement(a, g) != null) {
                        continue;
                    }
                    float[] callerWeights = w.data().clone();
                    Tensor wCaller = Tensor.of(callerWeights, g.weightShape());
                    ConvPlan.Builder pb = g.transposed() ? ConvPlan.convTranspose2d(dev, g.inputShape(), wCaller, b, spec)
                            : ConvPlan.conv2d(dev, g.inputShape(), wCaller, b, spec);
                    try (ConvPlan plan = pb.algorithm(a).threads(2).build()) {
                        String packed = plan.explain().replaceAll(".*packed weights (\\d+) bytes.*", "$1");
                        if (a == Algorithm.IM2COL || (a == Algorithm.DIRECT && io.github.jconv.cpu.Sgemm.VECTOR && g.strideW == 1)) {
                            assertTrue(Long.parseLong(packed) > 0, a + " on " + g + ": " + plan.explain());
                        }
                        java.util.Arrays.fill(callerWeights, 1e6f); // the plan has its own copy
                        ConvOptions opts = ConvOptions.defaults().withBackend("cpu").withAlgorithm(a).withThreads(2);
                        List<Future<Boolean>> runs = new ArrayList<>();
                        for (int seed = 20; seed < 26; seed++) {
                            Tensor x = random(seed, g.inputShape());
                            runs.add(pool.submit(() -> {
                                Tensor got = plan.run(x, null);
                                Tensor want = g.transposed() ? Jconv.convTranspose2d(x, w, b, spec, opts) : Jconv.conv2d(x, w, b, spec, opts);
                                assertArrayEquals(want.data(), got.data(), 0f, a + " on " + g);
                                return true;
                            }));
                        }
                        for (Future<Boolean> f : runs) {
                            assertTrue(f.get());
                        }
                        assertEquals(packed, plan.explain().replaceAll(".*packed weights (\\d+) bytes.*", "$1"), "packed once: " + a + " on " + g);
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    /** Three layers (conv + relu, depthwise + relu6, 1x1 + residual) on device tensors, never downloaded between layers. */
    private static Tensor chain(Device dev, Tensor input) {
        Tensor w1 = random(11, 16, 3, 3, 3), b1 = random(12, 16), w2 = random(13, 16, 1, 3, 3), w3 = random(14, 16, 16, 1, 1);
        try (ConvPlan c1 = ConvPlan.conv2d(dev, input.shape(), w1, b1, ConvSpec.builder().padding(1).build())
                     .epilogue(Epilogue.of(Epilogue.Activation.RELU)).build();
             ConvPlan c2 = ConvPlan.conv2d(dev, c1.outputShape(), w2, null, ConvSpec.builder().padding(1).stride(2).groups(16).build())
                     .epilogue(Epilogue.of(Epilogue.Activation.RELU6)).build();
             ConvPlan c3 = ConvPlan.conv2d(dev, c2.outputShape(), w3, null, ConvSpec.defaults())
                     .epilogue(Epilogue.none().withResidual(Epilogue.Residual.AFTER_ACTIVATION)).build();
             DeviceTensor x = dev.upload(input);
             DeviceTensor a = dev.allocate(c1.outputShape());
             DeviceTensor b = dev.allocate(c2.outputShape());
             DeviceTensor y = dev.allocate(c3.outputShape())) {
            c1.run(x, a);
            c2.run(a, b);
            c3.run(b, b, y); // the residual is the block's input
            return y.download();
        }
    }

    @Test
    void aChainOnEmulatedDeviceTensorsEqualsTheCpuChain() {
        Tensor input = random(10, 2, 3, 12, 10);
        Tensor cpu;
        try (Device dev = Device.open("cpu")) {
            cpu = chain(dev, input);
        }
        try (Device dev = open("cuda-emu")) {
            Tensor emu = chain(dev, input);
            assertArrayEquals(cpu.shape(), emu.shape());
            double worst = 0, scale = 0;
            for (int i = 0; i < cpu.size(); i++) {
                worst = Math.max(worst, Math.abs(cpu.data()[i] - emu.data()[i]));
                scale = Math.max(scale, Math.abs(cpu.data()[i]));
            }
            assertTrue(worst / scale < 1e-5, "max relative difference " + worst / scale);
        }
    }

    /**
     * A 1 x 1 expansion's plan and the depthwise plan after it run as one pass ({@link ConvPlan#runWith}) with the bits of
     * the two runs; plans it does not take (im2col, channels-last tensors, a device that is not the cpu's) say why, and
     * runWith refuses them with that reason.
     */
    @Test
    void anExpansionAndItsDepthwisePlanRunAsOnePassOrSayWhyNot() {
        Assumptions.assumeTrue(io.github.jconv.cpu.Sgemm.VECTOR, "the Vector API is not loaded");
        Tensor input = random(41, 2, 16, 32, 32), w1 = random(42, 40, 16, 1, 1), b1 = random(43, 40), w2 = random(44, 40, 1, 3, 3);
        ConvSpec dw = ConvSpec.builder().padding(1).stride(2).groups(40).build();
        Epilogue relu6 = Epilogue.of(Epilogue.Activation.RELU6);
        try (Device dev = Device.open("cpu");
             ConvPlan expand = ConvPlan.conv2d(dev, input.shape(), w1, b1, ConvSpec.defaults()).epilogue(relu6).algorithm(Algorithm.DIRECT).build();
             ConvPlan depthwise = ConvPlan.conv2d(dev, expand.outputShape(), w2, null, dw).epilogue(relu6).algorithm(Algorithm.DEPTHWISE).build();
             ConvPlan im2col = ConvPlan.conv2d(dev, input.shape(), w1, b1, ConvSpec.defaults()).epilogue(relu6).algorithm(Algorithm.IM2COL).build();
             ConvPlan nhwc = ConvPlan.conv2d(dev, input.shape(), w1, b1, ConvSpec.defaults()).epilogue(relu6).algorithm(Algorithm.DIRECT)
                     .layout(Layout.NHWC).build();
             DeviceTensor x = dev.upload(input);
             DeviceTensor t = dev.allocate(expand.outputShape());
             DeviceTensor apart = dev.allocate(depthwise.outputShape());
             DeviceTensor onePass = dev.allocate(depthwise.outputShape())) {
            assertNull(expand.cannotRunWith(depthwise));
            expand.run(x, t);
            depthwise.run(t, apart);
            expand.runWith(depthwise, x, onePass);
            assertArrayEquals(apart.download().data(), onePass.download().data(), 0f, "one pass against the two runs");
            assertTrue(im2col.cannotRunWith(depthwise).contains("direct and depthwise"), im2col.cannotRunWith(depthwise));
            assertTrue(nhwc.cannotRunWith(depthwise).contains("float32 nchw"), nhwc.cannotRunWith(depthwise));
            assertTrue(depthwise.cannotRunWith(expand) != null, "the depthwise layer first");
            InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, () -> im2col.runWith(depthwise, x, onePass));
            assertTrue(e.getMessage().contains("do not run as one pass"), e.getMessage());
            assertThrows(InvalidConvolutionException.class, () -> expand.runWith(depthwise, x, t), "the wrong output shape");
            if (Backends.all().stream().anyMatch(b -> b.name().equals("cuda-emu") && b.unavailableReason() == null)) {
                try (Device emu = Device.open("cuda-emu");
                     ConvPlan onEmu = ConvPlan.conv2d(emu, input.shape(), w1, b1, ConvSpec.defaults()).epilogue(relu6).build()) {
                    assertTrue(onEmu.cannotRunWith(depthwise).contains("cpu device"), onEmu.cannotRunWith(depthwise));
                }
            }
        }
    }

    @Test
    void closingADeviceWithOpenTensorsOrPlansReportsThem() {
        Device dev = Device.open("cuda-emu");
        DeviceTensor t = dev.allocate(2, 3, 4, 5);
        ConvPlan p = ConvPlan.conv2d(dev, new int[] {1, 3, 4, 4}, random(1, 2, 3, 3, 3), null, ConvSpec.defaults()).build();
        DeviceLeakException e = assertThrows(DeviceLeakException.class, dev::close);
        assertTrue(e.getMessage().startsWith("device cuda-emu closed with 2 open tensor(s)/plan(s), now freed: "), e.getMessage());
        assertTrue(e.getMessage().contains("tensor [2, 3, 4, 5] (480 bytes), allocated at io.github.jconv.ConvPlanTest."), e.getMessage());
        assertTrue(e.getMessage().contains("plan conv2d [1, 3, 4, 4] -> [1, 2, 2, 2], allocated at io.github.jconv.ConvPlanTest."), e.getMessage());
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> t.download());
        assertTrue(closed.getMessage().contains("tensor [2, 3, 4, 5] on cuda-emu was closed"), closed.getMessage());
        IllegalStateException plan = assertThrows(IllegalStateException.class, () -> p.run(t, t));
        assertTrue(plan.getMessage().contains("run: the plan conv2d [1, 3, 4, 4] was closed"), plan.getMessage());
        IllegalStateException device = assertThrows(IllegalStateException.class, () -> dev.allocate(1));
        assertTrue(device.getMessage().contains("device cuda-emu is closed"), device.getMessage());
        dev.close(); // a second close is harmless
    }

    @Test
    void tensorsAndPlansCheckWhatTheyAreGiven() {
        try (Device dev = Device.open("cpu"); Device other = Device.open("cpu");
             ConvPlan p = ConvPlan.conv2d(dev, new int[] {1, 3, 4, 4}, random(1, 2, 3, 3, 3), null, ConvSpec.defaults()).build();
             DeviceTensor x = dev.allocate(1, 3, 4, 4); DeviceTensor wrong = dev.allocate(1, 3, 4, 5);
             DeviceTensor y = dev.allocate(1, 2, 2, 2); DeviceTensor elsewhere = other.allocate(1, 2, 2, 2)) {
            assertTrue(assertThrows(InvalidConvolutionException.class, () -> p.run(wrong, y)).getMessage()
                    .contains("input tensor has shape [1, 3, 4, 5], the plan needs [1, 3, 4, 4]"));
            assertTrue(assertThrows(InvalidConvolutionException.class, () -> p.run(x, elsewhere)).getMessage()
                    .contains("output tensor is on " + other + ", the plan on " + dev));
            assertTrue(assertThrows(InvalidConvolutionException.class, () -> p.run(x, x, y)).getMessage()
                    .contains("shape"));
            assertTrue(assertThrows(InvalidConvolutionException.class, () -> x.upload(new float[3])).getMessage()
                    .contains("upload of 3 floats into a tensor of shape [1, 3, 4, 4] (48 elements)"));
            assertTrue(p.explain().contains("conv2d") && p.explain().contains("on cpu"), p.explain());
        }
        assertEquals("device index 1: backend 'cpu' has one device, index 0",
                assertThrows(InvalidConvolutionException.class, () -> Device.open("cpu", 1)).getMessage());
        assertEquals("device index 2: backend 'cuda-emu' has one device, index 0",
                assertThrows(InvalidConvolutionException.class, () -> Device.open("cuda-emu", 2)).getMessage());
    }

    /** Two emulated devices at once, each with its own stream and plans, from two threads. */
    @Test
    void twoDevicesAtOnce() throws Exception {
        Tensor input = random(10, 2, 3, 12, 10);
        Tensor want;
        try (Device dev = Device.open("cpu")) {
            want = chain(dev, input);
        }
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<Tensor>> runs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            runs.add(pool.submit(() -> {
                try (Device dev = open("cuda-emu")) {
                    return chain(dev, input);
                }
            }));
        }
        for (Future<Tensor> f : runs) {
            Tensor got = f.get();
            for (int i = 0; i < want.size(); i++) {
                assertEquals(want.data()[i], got.data()[i], 1e-4f * (1 + Math.abs(want.data()[i])));
            }
        }
        pool.shutdown();
    }

    /** The README's device-resident example, as written there. */
    @Test
    void theReadmeExampleRuns() {
        float[] inputData = TestSupport.gaussian(new Random(1), 1 * 3 * 32 * 32);
        Tensor w1 = random(2, 16, 3, 3, 3), b1 = random(3, 16), w2 = random(4, 32, 16, 3, 3), b2 = random(5, 32);
        // --- README: device-resident layers
        try (Device dev = Device.open("cuda-emu");                       // or "cuda" on a GPU host, "cpu" anywhere
             ConvPlan conv1 = ConvPlan.conv2d(dev, new int[] {1, 3, 32, 32}, w1, b1, ConvSpec.builder().padding(1).build())
                     .epilogue(Epilogue.of(Epilogue.Activation.RELU)).build();
             ConvPlan conv2 = ConvPlan.conv2d(dev, conv1.outputShape(), w2, b2, ConvSpec.builder().stride(2).padding(1).build())
                     .epilogue(Epilogue.of(Epilogue.Activation.RELU)).build();
             DeviceTensor x = dev.upload(inputData, 1, 3, 32, 32);
             DeviceTensor h = dev.allocate(conv1.outputShape());
             DeviceTensor y = dev.allocate(conv2.outputShape())) {
            conv1.run(x, h);                                              // queued on the device's stream
            conv2.run(h, y);                                              // h never leaves the device
            Tensor out = y.download();                                    // waits, then copies back
            // --- end of the README example
            assertArrayEquals(new int[] {1, 32, 16, 16}, out.shape());
            Tensor hh = Jconv.conv2d(Tensor.of(inputData, 1, 3, 32, 32), w1, b1, ConvSpec.builder().padding(1).build(),
                    Epilogue.of(Epilogue.Activation.RELU), null, ConvOptions.defaults().withBackend("cpu"));
            Tensor want = Jconv.conv2d(hh, w2, b2, ConvSpec.builder().stride(2).padding(1).build(), Epilogue.of(Epilogue.Activation.RELU),
                    null, ConvOptions.defaults().withBackend("cpu"));
            for (int i = 0; i < want.size(); i++) {
                assertEquals(want.data()[i], out.data()[i], 1e-4f * (1 + Math.abs(want.data()[i])));
            }
        }
    }

    /** Device time (events around queued work on a GPU, the emulator's queue timestamps, wall time on the CPU) is measured. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void deviceTimeCoversTheQueuedWork(String name) {
        try (Device dev = open(name);
             ConvPlan p = ConvPlan.conv2d(dev, new int[] {1, 8, 16, 16}, random(1, 8, 8, 3, 3), null, ConvSpec.builder().padding(1).build())
                     .algorithm(dev.backend().algorithms().contains(Algorithm.DIRECT) ? Algorithm.DIRECT : Algorithm.IM2COL).build();
             DeviceTensor x = dev.upload(random(2, 1, 8, 16, 16)); DeviceTensor y = dev.allocate(p.outputShape())) {
            double ms = dev.time(() -> p.run(x, y));
            assertTrue(ms > 0 && Double.isFinite(ms), name + ": " + ms + " ms");
            float[] after = y.download().data(); // time() waited for the run: the result is complete
            assertTrue(Float.isFinite(after[0]) && Float.isFinite(after[after.length - 1]), name);
        }
    }

    /**
     * cuDNN planned as a user would (descriptors, cudnnFind, workspace and handle once per plan, on the device's stream):
     * every epilogue it takes, against the float64 oracle; its weight gradient against the CPU's. Runs where cuDNN loads.
     */
    @Test
    void cudnnPlansMatchTheOracle() {
        try (Device dev = open("cudnn")) {
            for (ConvGeometry g : EpilogueTest.LAYERS) {
                if (dev.backend().cannotImplement(Algorithm.VENDOR, g) != null) {
                    continue;
                }
                float[][] d = TestSupport.data(g, 9);
                float[] residual = TestSupport.gaussian(new Random(5), Tensor.elementCount(g.outputShape()));
                for (Epilogue ep : cudnnEpilogues()) {
                    Tensor w = Tensor.of(d[1], g.weightShape()), b = g.hasBias ? Tensor.of(d[2], g.biasLength()) : null;
                    try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.VENDOR).epilogue(ep).build()) {
                        Tensor y = plan.run(Tensor.of(d[0], g.inputShape()), ep.hasResidual() ? Tensor.of(residual, g.outputShape()) : null);
                        String problem = TestSupport.oracle(g, d[0], d[1], d[2], ep, ep.hasResidual() ? residual : null).check(y.data());
                        assertTrue(problem == null, "cudnn " + ep + " on " + g + ": " + problem + "; " + plan.explain());
                    }
                }
            }
            ConvGeometry g = EpilogueTest.LAYERS.get(0);
            float[][] d = io.github.jconv.SampleData.withOutputGradient(g, 3);
            try (WeightGradientPlan grad = WeightGradientPlan.conv2d(dev, g.inputShape(), g.outputShape(), new int[] {g.r, g.s},
                    g.explicitSpec()).build()) {
                Tensor dw = grad.run(Tensor.of(d[0], g.inputShape()), Tensor.of(d[3], g.outputShape()));
                Tensor want = Jconv.conv2dBackwardWeight(Tensor.of(d[0], g.inputShape()), Tensor.of(d[3], g.outputShape()),
                        new int[] {g.r, g.s}, g.explicitSpec(), ConvOptions.defaults().withBackend("cpu"));
                for (int i = 0; i < want.size(); i++) {
                    assertEquals(want.data()[i], dw.data()[i], 1e-4f * (1 + Math.abs(want.data()[i])), "dw[" + i + "]; " + grad.explain());
                }
            }
        }
    }

    private static List<Epilogue> cudnnEpilogues() {
        List<Epilogue> out = new ArrayList<>();
        for (Epilogue.Activation a : Epilogue.Activation.values()) {
            for (Epilogue.Residual r : Epilogue.Residual.values()) {
                if (a != Epilogue.Activation.GELU) { // not in cuDNN's legacy API
                    out.add(Epilogue.of(a).withResidual(r));
                }
            }
        }
        return out;
    }

    /** Math modes: strict FP32 by default and everywhere but cudnn; asking a backend for what it lacks fails naming why. */
    @Test
    void mathModesAreOptInAndChecked() {
        try (Device dev = Device.open("cpu")) {
            ConvPlan.Builder b = ConvPlan.conv2d(dev, new int[] {1, 4, 6, 6}, random(1, 4, 4, 3, 3), null, ConvSpec.builder().build());
            try (ConvPlan plan = b.build()) {
                assertTrue(plan.explain().contains("math fp32"), plan.explain());
            }
            assertEquals("math tf32: backend 'cpu' computes in strict float32 only (math fp32)",
                    assertThrows(InvalidConvolutionException.class, () -> b.math(MathMode.TF32).build()).getMessage());
        }
        assertEquals(MathMode.TF32, MathMode.parse(" TF32"));
        assertEquals(MathMode.TF32X3, MathMode.parse("3xTF32"));
        assertEquals("3xtf32", MathMode.TF32X3.label());
        assertEquals(MathMode.BF16, MathMode.parse("bf16"));
        assertEquals("fp16", MathMode.FP16.label());
        assertEquals("unknown math mode 'fp8' (fp32, tf32, 3xtf32, fp16, bf16)", assertThrows(InvalidConvolutionException.class, () -> MathMode.parse("fp8")).getMessage());
        assertTrue(io.github.jconv.cuda.CudnnPlan.cannotTake(Epilogue.of(Epilogue.Activation.GELU)).contains("GELU"));
        assertEquals(null, io.github.jconv.cuda.CudnnPlan.cannotTake(Epilogue.of(Epilogue.Activation.SILU)));
    }

    /**
     * A caller's CUDA stream: jconv's work is queued on it and closing the device leaves it usable (GPU hosts only); without
     * a GPU, or on a backend without streams, the call fails with one line naming why.
     */
    @Test
    void aCallersStreamCarriesTheWorkAndStaysTheCallers() {
        assertEquals("backend 'cuda-emu' has no CUDA streams (cuda or cudnn)",
                assertThrows(InvalidConvolutionException.class, () -> Device.onStream("cuda-emu", 0, new jcuda.driver.CUstream())).getMessage());
        assertThrows(NullPointerException.class, () -> Device.onStream("cuda", 0, null));
        if (!TestSupport.gpuPresent()) {
            BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> Device.onStream("cuda", 0, new jcuda.driver.CUstream()));
            assertTrue(e.getMessage().startsWith("backend 'cuda' not available: "), e.getMessage());
            return;
        }
        io.github.jconv.cuda.JCudaDevice.get().makeCurrent();
        jcuda.driver.CUstream mine = new jcuda.driver.CUstream();
        jcuda.driver.JCudaDriver.cuStreamCreate(mine, jcuda.driver.CUstream_flags.CU_STREAM_NON_BLOCKING);
        try {
            Tensor x = random(2, 2, 8, 10, 10), w = random(3, 16, 8, 3, 3);
            Tensor want = Jconv.conv2d(x, w, null, ConvSpec.builder().padding(1).build(), ConvOptions.defaults().withBackend("cpu"));
            for (int round = 0; round < 2; round++) { // the stream outlives the first device
                try (Device dev = Device.onStream("cuda", 0, mine);
                     ConvPlan plan = ConvPlan.conv2d(dev, x.shape(), w, null, ConvSpec.builder().padding(1).build()).build()) {
                    Tensor got = plan.run(x, null);
                    for (int i = 0; i < want.size(); i++) {
                        assertEquals(want.data()[i], got.data()[i], 1e-4f * (1 + Math.abs(want.data()[i])));
                    }
                }
                jcuda.driver.JCudaDriver.cuStreamSynchronize(mine); // still the caller's, still valid
            }
        } finally {
            jcuda.driver.JCudaDriver.cuStreamDestroy(mine);
        }
    }
}
