package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ConvPlan#run(DeviceTensor, DeviceTensor, DeviceTensor)} with y as the residual: in place where the plan says it
 * can ({@link ConvPlan#runsResidualInPlace}), the same bits as into a separate output; a one-line refusal elsewhere.
 */
class ResidualInPlaceTest {
    /** The spec each geometry was made with, for its plan. */
    private static final java.util.Map<ConvGeometry, ConvSpec> SPECS = new java.util.IdentityHashMap<>();

    /** 1 x 1 layers: whole vectors only (8 x 8), the last pixels fewer than a vector (7 x 7, 14 x 14, 5 x 3), two groups, stride 2. */
    private static final List<ConvGeometry> POINTWISE = List.of(
            layer(new int[] {2, 16, 8, 8}, new int[] {24, 16, 1, 1}, true, ConvSpec.defaults()),
            layer(new int[] {1, 40, 7, 7}, new int[] {72, 40, 1, 1}, true, ConvSpec.defaults()),
            layer(new int[] {2, 12, 14, 14}, new int[] {20, 12, 1, 1}, true, ConvSpec.defaults()),
            layer(new int[] {3, 9, 5, 3}, new int[] {11, 9, 1, 1}, false, ConvSpec.defaults()),
            layer(new int[] {1, 8, 6, 6}, new int[] {16, 4, 1, 1}, true, ConvSpec.builder().groups(2).build()),
            layer(new int[] {2, 16, 13, 13}, new int[] {32, 16, 1, 1}, true, ConvSpec.builder().stride(2).build()));

    private static ConvGeometry layer(int[] in, int[] w, boolean bias, ConvSpec spec) {
        ConvGeometry g = ConvGeometry.conv2d(in, w, bias ? new int[] {w[0]} : null, spec);
        SPECS.put(g, spec);
        return g;
    }

    @Test
    void theOneByOneKernelAddsTheResidualInPlaceBitForBit() {
        List<Epilogue> epilogues = List.of(
                Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION),
                Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION),
                Epilogue.none().withResidual(Epilogue.Residual.BEFORE_ACTIVATION));
        try (Device dev = Device.open("cpu")) {
            for (ConvGeometry g : POINTWISE) {
                float[][] d = TestSupport.data(g, g.hashCode());
                float[] res = TestSupport.gaussian(new Random(3), Tensor.elementCount(g.outputShape()));
                for (Epilogue ep : epilogues) {
                    for (int threads : new int[] {1, 2}) {
                        try (ConvPlan plan = plan(dev, g, d, ep, Algorithm.DIRECT, threads);
                             DeviceTensor x = dev.upload(Tensor.of(d[0], g.inputShape()));
                             DeviceTensor r = dev.upload(Tensor.of(res, g.outputShape()));
                             DeviceTensor apart = dev.allocate(g.outputShape());
                             DeviceTensor inPlace = dev.upload(Tensor.of(res, g.outputShape()))) {
                            String what = g + " " + ep + " " + threads + " thread(s)";
                            assertTrue(plan.runsResidualInPlace(), what);
                            plan.run(x, r, apart);
                            plan.run(x, inPlace, inPlace);
                            float[] expected = apart.download().data();
                            assertArrayEquals(expected, inPlace.download().data(), what);
                            assertEquals(null, TestSupport.oracle(g, d[0], d[1], d[2], ep, res).check(expected), what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void elsewhereARunWithTheOutputAsItsResidualIsRefusedInOneLine() {
        Epilogue relu = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        ConvGeometry threeByThree = layer(new int[] {1, 8, 6, 6}, new int[] {8, 8, 3, 3}, false, ConvSpec.builder().padding(1).build());
        ConvGeometry pointwise = POINTWISE.get(1);
        try (Device dev = Device.open("cpu")) {
            // kernels that store their sums and add the residual over the stored run, an activation the 1x1 kernel applies
            // over the stored run (SiLU), and the 1x1 layer on im2col
            Object[][] refused = {
                    {threeByThree, relu, Algorithm.DIRECT},
                    {pointwise, Epilogue.of(Epilogue.Activation.SILU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), Algorithm.DIRECT},
                    {pointwise, relu, Algorithm.IM2COL}};
            for (Object[] c : refused) {
                ConvGeometry g = (ConvGeometry) c[0];
                float[][] d = TestSupport.data(g, 7);
                try (ConvPlan plan = plan(dev, g, d, (Epilogue) c[1], (Algorithm) c[2], 2);
                     DeviceTensor x = dev.upload(Tensor.of(d[0], g.inputShape()));
                     DeviceTensor y = dev.upload(Tensor.of(new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))], g.outputShape()))) {
                    assertFalse(plan.runsResidualInPlace(), Arrays.toString(c));
                    InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, () -> plan.run(x, y, y));
                    assertTrue(e.getMessage().startsWith("the output tensor must not be the residual here: " + plan.algorithm().label()),
                            e.getMessage());
                    assertFalse(e.getMessage().contains("\n"), e.getMessage());
                    assertTrue(Arrays.equals(new float[y.size()], y.download().data()), "y untouched");
                }
            }
            // without a residual in the epilogue there is nothing to add in place; the input is never the output
            ConvGeometry square = layer(new int[] {1, 8, 6, 6}, new int[] {8, 8, 1, 1}, false, ConvSpec.defaults());
            float[][] d = TestSupport.data(square, 9);
            try (ConvPlan plan = plan(dev, square, d, Epilogue.of(Epilogue.Activation.RELU), Algorithm.DIRECT, 2);
                 DeviceTensor x = dev.upload(Tensor.of(d[0], square.inputShape()))) {
                assertFalse(plan.runsResidualInPlace());
                InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, () -> plan.run(x, x));
                assertEquals("the output tensor must not be the input (no in-place convolution)", e.getMessage());
            }
        }
    }

    @Test
    void halfPrecisionAndGpuPlansDoNotAddInPlace() {
        ConvGeometry g = POINTWISE.get(0);
        float[][] d = TestSupport.data(g, 11);
        Epilogue relu = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        try (Device cpu = Device.open("cpu");
             ConvPlan half = ConvPlan.conv2d(cpu, g.inputShape(), Tensor.of(d[1], g.weightShape()), Tensor.of(d[2], g.k), SPECS.get(g))
                     .epilogue(relu).algorithm(Algorithm.DIRECT).dtype(Dtype.FP16).build()) {
            assertFalse(half.runsResidualInPlace());
        }
        try (Device emu = Device.open("cuda-emu"); ConvPlan plan = plan(emu, g, d, relu, Algorithm.DIRECT, 1)) {
            assertFalse(plan.runsResidualInPlace());
        }
    }

    @Test
    void theRawArrayCallTakesTheOutputAsItsResidualOnEveryAlgorithm() {
        ConvGeometry g = layer(new int[] {2, 6, 9, 7}, new int[] {10, 6, 3, 3}, true, ConvSpec.builder().padding(1).build());
        float[][] d = TestSupport.data(g, 13);
        float[] res = TestSupport.gaussian(new Random(4), Tensor.elementCount(g.outputShape()));
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        for (Algorithm a : new Algorithm[] {Algorithm.DIRECT, Algorithm.IM2COL, Algorithm.REFERENCE}) {
            ConvOptions o = ConvOptions.defaults().withAlgorithm(a).withThreads(2);
            float[] apart = new float[res.length], inPlace = res.clone();
            Jconv.run(g, d[0], d[1], d[2], ep, res, apart, o);
            Jconv.run(g, d[0], d[1], d[2], ep, inPlace, inPlace, o);
            assertArrayEquals(apart, inPlace, a.label());
        }
        ConvGeometry same = layer(new int[] {1, 2, 4, 4}, new int[] {2, 2, 1, 1}, false, ConvSpec.defaults());
        float[] both = new float[32];
        InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class,
                () -> Jconv.run(same, both, new float[4], null, Epilogue.none(), null, both, ConvOptions.defaults()));
        assertEquals("the output array must not be the input array (no in-place convolution)", e.getMessage());
    }

    private static ConvPlan plan(Device dev, ConvGeometry g, float[][] d, Epilogue ep, Algorithm a, int threads) {
        return ConvPlan.conv2d(dev, g.inputShape(), Tensor.of(d[1], g.weightShape()), d[2] == null ? null : Tensor.of(d[2], g.k),
                SPECS.get(g)).epilogue(ep).algorithm(a).threads(threads).build();
    }
}
