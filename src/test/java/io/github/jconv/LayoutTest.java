package io.github.jconv;

import io.github.jconv.io.Npy;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Channels-last (NHWC) tensors: the conversion against the index formula, and every path that takes them (the stateless
 * calls, CPU and GPU plans, the weight and bias gradients, .npy files) against the NCHW run, bit for bit; the places that
 * take NCHW only say so.
 */
class LayoutTest {
    private static Tensor random(long seed, int... shape) {
        return Tensor.of(TestSupport.gaussian(new Random(seed), Tensor.elementCount(shape)), shape);
    }

    /** The value of logical element (n, c, h, w) of t, read through the layout's own index formula. */
    private static float at(Tensor t, int n, int c, int h, int w) {
        int[] s = t.shape();
        int i = t.layout() == Layout.NCHW ? ((n * s[1] + c) * s[2] + h) * s[3] + w : ((n * s[2] + h) * s[3] + w) * s[1] + c;
        return t.data()[i];
    }

    /**
     * Shapes around the conversion's 32-wide blocks (33 channels, 5 x 7 pixels, a single channel or pixel): every element
     * lands where the NHWC formula puts it, and back.
     */
    @Test
    void conversionPutsEveryElementWhereTheLayoutSays() {
        for (int[] s : new int[][] {{2, 33, 5, 7}, {1, 1, 6, 70}, {3, 40, 1, 1}, {1, 64, 8, 8}, {0, 3, 4, 4}}) {
            Tensor x = random(s[1], s);
            Tensor y = x.to(Layout.NHWC);
            assertEquals(Layout.NHWC, y.layout());
            assertArrayEquals(s, y.shape(), "the shape stays the logical one");
            for (int n = 0; n < s[0]; n++) {
                for (int c = 0; c < s[1]; c++) {
                    for (int h = 0; h < s[2]; h++) {
                        for (int w = 0; w < s[3]; w++) {
                            assertEquals(at(x, n, c, h, w), at(y, n, c, h, w), () -> Arrays.toString(s));
                        }
                    }
                }
            }
            assertArrayEquals(x.data(), y.to(Layout.NCHW).data(), 0f);
            assertSame(y, y.to(Layout.NHWC), "already in the layout: no copy");
        }
        assertArrayEquals(new int[] {2, 5, 7, 33}, Layout.NHWC.memoryShape(new int[] {2, 33, 5, 7}));
        assertArrayEquals(new int[] {2, 33, 5, 7}, Layout.NHWC.logicalShape(new int[] {2, 5, 7, 33}));
    }

    @Test
    void layoutsParseAndRejectWhatTheyCannotHold() {
        assertEquals(Layout.NHWC, Layout.parse(" NHWC"));
        assertEquals(Layout.NHWC, Layout.parse("channels_last"));
        assertEquals(Layout.NCHW, Layout.parse("nchw"));
        assertEquals("unknown layout 'nwhc' (nchw, nhwc)", assertThrows(InvalidConvolutionException.class, () -> Layout.parse("nwhc")).getMessage());
        assertEquals("layout nhwc needs a 4-D tensor (N x C x H x W), got shape [2, 3]",
                assertThrows(InvalidConvolutionException.class, () -> Tensor.of(Layout.NHWC, new float[6], 2, 3)).getMessage());
        assertEquals("weight must be in C order (K x C/G x R x S, layout nchw), got nhwc",
                assertThrows(InvalidConvolutionException.class, () -> Jconv.conv2d(random(1, 1, 2, 3, 3),
                        random(2, 4, 2, 1, 1).to(Layout.NHWC), null, ConvSpec.builder().build())).getMessage());
    }

    /**
     * The stateless calls on channels-last input (and residual): the result is channels last and holds the NCHW call's
     * values, for conv2d and conv_transpose2d, strided, padded, grouped, with bias and a fused epilogue.
     */
    @Test
    void statelessCallsTakeChannelsLastAndAnswerInIt() {
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        for (ConvGeometry g : EpilogueTest.LAYERS) {
            Tensor x = random(1, g.inputShape()), w = random(2, g.weightShape()), r = random(4, g.outputShape());
            Tensor b = g.hasBias ? random(3, g.biasLength()) : null;
            ConvSpec spec = g.explicitSpec();
            ConvOptions opts = ConvOptions.defaults().withBackend("cpu").withThreads(2);
            Tensor want = g.transposed() ? Jconv.convTranspose2d(x, w, b, spec, ep, r, opts) : Jconv.conv2d(x, w, b, spec, ep, r, opts);
            Tensor xl = x.to(Layout.NHWC), rl = r.to(Layout.NHWC);
            Tensor got = g.transposed() ? Jconv.convTranspose2d(xl, w, b, spec, ep, rl, opts) : Jconv.conv2d(xl, w, b, spec, ep, rl, opts);
            assertEquals(Layout.NHWC, got.layout(), g.toString());
            assertArrayEquals(want.data(), got.to(Layout.NCHW).data(), 0f, g.toString());
        }
    }

    /** The weight and bias gradients from channels-last x and dy equal the NCHW ones. */
    @Test
    void gradientsTakeChannelsLast() {
        ConvSpec spec = ConvSpec.builder().stride(2).padding(1).build();
        Tensor x = random(1, 2, 6, 9, 8), dy = random(2, 2, 5, 5, 4);
        Tensor want = Jconv.conv2dBackwardWeight(x, dy, new int[] {3, 3}, spec);
        Tensor got = Jconv.conv2dBackwardWeight(x.to(Layout.NHWC), dy.to(Layout.NHWC), new int[] {3, 3}, spec);
        assertArrayEquals(want.data(), got.data(), 0f);
        assertArrayEquals(Jconv.conv2dBackwardBias(dy).data(), Jconv.conv2dBackwardBias(dy.to(Layout.NHWC)).data(), 0f);
        Tensor xt = random(3, 2, 5, 4, 3), dyt = random(4, 2, 3, 8, 5); // conv_transpose2d 5 -> 3 channels, stride 2
        ConvSpec ts = ConvSpec.builder().stride(2).padding(1).outputPadding(1, 0).build();
        assertArrayEquals(Jconv.convTranspose2dBackwardWeight(xt, dyt, new int[] {3, 3}, ts, ConvOptions.defaults()).data(),
                Jconv.convTranspose2dBackwardWeight(xt.to(Layout.NHWC), dyt.to(Layout.NHWC), new int[] {3, 3}, ts, ConvOptions.defaults()).data(), 0f);
    }

    /**
     * Plans' layers: padded 3x3 with bias, strided grouped, a transposed one, a 1x1 whose maps are 2 x 2 tiles of the
     * device transpose, and an empty batch.
     */
    private static final List<ConvGeometry> PLAN_LAYERS = List.of(EpilogueTest.LAYERS.get(0), EpilogueTest.LAYERS.get(1), EpilogueTest.LAYERS.get(3),
            ConvGeometry.conv2d(new int[] {2, 64, 7, 7}, new int[] {40, 64, 1, 1}, new int[] {40}, ConvSpec.builder().build()),
            ConvGeometry.conv2d(new int[] {0, 5, 9, 11}, new int[] {7, 5, 3, 3}, new int[] {7}, ConvSpec.builder().padding(1).build()));

    /**
     * For every algorithm of the device's backend on {@link #PLAN_LAYERS}, with a fused residual: an NHWC plan on NHWC
     * tensors gives the NCHW plan's result, bit for bit, and its explanation names the layout.
     */
    private static void nhwcPlansMatchNchw(Device dev) {
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        for (ConvGeometry g : PLAN_LAYERS) {
            Tensor x = random(1, g.inputShape()), w = random(2, g.weightShape()), r = random(4, g.outputShape());
            Tensor b = g.hasBias ? random(3, g.biasLength()) : null;
            for (Algorithm a : dev.backend().algorithms()) {
                if (dev.backend().cannotImplement(a, g) != null) {
                    continue;
                }
                try (ConvPlan nchw = ConvPlan.of(dev, g, w, b).algorithm(a).epilogue(ep).threads(2).build();
                     ConvPlan nhwc = ConvPlan.of(dev, g, w, b).algorithm(a).epilogue(ep).threads(2).layout(Layout.NHWC).build()) {
                    Tensor got = nhwc.run(x.to(Layout.NHWC), r.to(Layout.NHWC));
                    assertEquals(Layout.NHWC, got.layout());
                    assertArrayEquals(nchw.run(x, r).data(), got.to(Layout.NCHW).data(), 0f, dev.name() + "/" + a + " on " + g);
                    assertTrue(nhwc.explain().contains("layout nhwc"), nhwc.explain());
                }
            }
        }
    }

    /**
     * A CPU plan built for NHWC converts around the NCHW kernels ({@link #nhwcPlansMatchNchw}); tensors of the other
     * layout are refused with the layout named, and the output is left untouched.
     */
    @Test
    void cpuPlansRunChannelsLast() {
        try (Device dev = Device.open("cpu")) {
            nhwcPlansMatchNchw(dev);
            ConvGeometry g = EpilogueTest.LAYERS.get(0);
            try (ConvPlan plan = ConvPlan.of(dev, g, random(2, g.weightShape()), random(3, g.biasLength())).layout(Layout.NHWC).build();
                 DeviceTensor x = dev.upload(random(1, g.inputShape()));
                 DeviceTensor y = dev.allocate(Layout.NHWC, g.outputShape());
                 DeviceTensor yc = dev.allocate(g.outputShape())) {
                y.upload(new float[y.size()]);
                assertEquals("input tensor is nchw, the plan takes nhwc", assertThrows(InvalidConvolutionException.class, () -> plan.run(x, y)).getMessage());
                assertArrayEquals(new float[y.size()], y.download().data(), 0f, "the output is untouched");
                try (DeviceTensor xl = dev.upload(random(1, g.inputShape()).to(Layout.NHWC))) {
                    assertEquals("output tensor is nchw, the plan takes nhwc", assertThrows(InvalidConvolutionException.class, () -> plan.run(xl, yc)).getMessage());
                }
            }
        }
    }

    /**
     * On the GPU backends an NHWC plan converts on the device (cuda-kernels/layout.cu) around the NCHW kernels
     * ({@link #nhwcPlansMatchNchw}); closing the device checks that the conversion buffers were freed.
     */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void gpuPlansConvertOnTheDevice(String name) {
        Assumptions.assumeTrue(Backends.all().stream().anyMatch(b -> b.name().equals(name) && b.unavailableReason() == null), name);
        try (Device dev = Device.open(name)) {
            nhwcPlansMatchNchw(dev);
        }
    }

    @Test
    void maxPoolTakesNchwOnly() {
        try (Device dev = Device.open("cpu");
             DeviceTensor in = dev.allocate(Layout.NHWC, 1, 2, 6, 6);
             DeviceTensor out = dev.allocate(1, 2, 3, 3)) {
            assertEquals("max_pool2d runs on nchw tensors, got nhwc -> nchw",
                    assertThrows(InvalidConvolutionException.class, () -> MaxPool2d.run(in, out, 3, 2, 1)).getMessage());
        }
    }

    /** A channels-last tensor is written to .npy as the N x H x W x C array its memory is, and reads back as that. */
    @Test
    void npyFilesHoldTheMemorysShape(@TempDir Path dir) {
        Tensor x = random(1, 2, 3, 4, 5).to(Layout.NHWC);
        Npy.write(dir.resolve("x.npy"), x);
        Tensor back = Npy.read(dir.resolve("x.npy"));
        assertArrayEquals(new int[] {2, 4, 5, 3}, back.shape());
        assertArrayEquals(x.data(), back.data(), 0f);
        assertArrayEquals(Npy.encode(x), Npy.encode(Tensor.of(x.data(), 2, 4, 5, 3)));
    }
}
