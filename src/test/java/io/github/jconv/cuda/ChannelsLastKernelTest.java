package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.ConvSpec;
import io.github.jconv.Device;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.Layout;
import io.github.jconv.MathMode;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The channels-last kernels (cuda-kernels/implicit_gemm_nhwc.cu: NHWC fp16 / bf16 tensors in their own math, cp.async
 * pipeline, ldmatrix fragments, mma.sync m16n8k16) through plans, on the emulator (ldmatrix and mma.sync per the PTX
 * ISA's lane layouts, cp.async copies that land only at the wait, shared memory NaN at each block's start) and on a GPU
 * where there is one.
 */
class ChannelsLastKernelTest {
    /**
     * Layers the kernels take, chosen for their edges: pixels past the last tile (N x P x Q not a multiple of 64 or 128),
     * output channels past the last tile and more than one channel tile (K = 10, 70), channel steps with zero-filled
     * chunks (C = 48: 32 + 16; C = 8, 24, 40, 72), padding on every side (asymmetric too), stride, dilation, 1 x 1 and
     * non-square windows, no bias; split into 3, the last layer's slices start inside a tap (3 channel steps per tap, 2
     * steps per slice).
     */
    static final List<ConvGeometry> LAYERS = List.of(
            conv(new int[] {2, 16, 9, 11}, new int[] {10, 16, 3, 3}, true, ConvSpec.builder().padding(1).build()),
            conv(new int[] {1, 32, 8, 8}, new int[] {70, 32, 1, 1}, true, ConvSpec.builder().build()),
            conv(new int[] {2, 64, 7, 9}, new int[] {6, 64, 3, 3}, false, ConvSpec.builder().stride(2).padding(Padding.of(0, 2, 1, 1)).build()),
            conv(new int[] {1, 48, 6, 6}, new int[] {8, 48, 3, 3}, true, ConvSpec.builder().padding(2).dilation(2).build()),
            conv(new int[] {1, 8, 5, 5}, new int[] {4, 8, 3, 3}, true, ConvSpec.builder().padding(1).build()),
            conv(new int[] {3, 40, 6, 5}, new int[] {12, 40, 2, 3}, true, ConvSpec.builder().stride(1, 2).padding(1, 0).build()),
            conv(new int[] {1, 24, 12, 12}, new int[] {66, 24, 5, 5}, true, ConvSpec.builder().stride(2).padding(2).build()),
            conv(new int[] {1, 72, 5, 6}, new int[] {14, 72, 1, 2}, true, ConvSpec.builder().build()));

    private static ConvGeometry conv(int[] x, int[] w, boolean bias, ConvSpec spec) {
        return ConvGeometry.of(ConvGeometry.Op.CONV2D, x, w, bias ? new int[] {w[0]} : null, spec);
    }

    static Stream<Arguments> backendsHalvesTilesAndSplits() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> Stream.of(MathMode.FP16, MathMode.BF16)
                .flatMap(m -> ImplicitGemmNhwcLauncher.TILES.stream().flatMap(t -> Stream.of(1, 3).map(k -> Arguments.of(b, m, t, k)))));
    }

    private static Device open(String name) {
        CudaBackend b = name.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(b.unavailableReason() == null, () -> name + ": " + b.unavailableReason());
        Assumptions.assumeTrue(b.cannotUseMath(MathMode.FP16) == null, () -> name + ": " + b.cannotUseMath(MathMode.FP16));
        return Device.open(name);
    }

    /**
     * Every layer, tile and format with a residual epilogue, in one slice and split-K into 3 (as many as the layer has
     * steps): within one rounding of the result (and float32's sums) of the float64 reference on the rounded operands;
     * and in one slice where C is a multiple of 16, bit for bit the NCHW tensors' run of the same math (the NCHW kernels
     * of 16-bit tensors, in one slice too), whose 16-deep MMA steps then hold the same channels of the same tap.
     */
    @ParameterizedTest(name = "{0} {1} tile {2} splits {3}")
    @MethodSource("backendsHalvesTilesAndSplits")
    void nhwcHalfPlansRunOnTheChannelsLastKernels(String backend, MathMode math, GemmTile tile, int splits) {
        Dtype d = math.operandDtype();
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        ImplicitGemmNhwcLauncher.forcedTile = tile;
        ImplicitGemmNhwcLauncher.forcedSplits = splits;
        ImplicitGemmLauncher.forcedSplits = 1;
        try (Device dev = open(backend)) {
            int exact = 0;
            for (ConvGeometry g : LAYERS) {
                String what = backend + " " + d.label() + " tile " + tile + " " + g;
                float[][] d0 = TestSupport.data(g, 51);
                Tensor x = Tensor.of(d.round(d0[0]), g.inputShape());
                Tensor w = Tensor.of(d.round(d0[1]), g.weightShape()), b = d0[2] == null ? null : Tensor.of(d.round(d0[2]), g.biasLength());
                Tensor r = Tensor.of(d.round(TestSupport.gaussian(new Random(52), Tensor.elementCount(g.outputShape()))), g.outputShape());
                Tensor y;
                try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).epilogue(ep)
                        .layout(Layout.NHWC).build()) {
                    String why = plan.explain();
                    assertTrue(why.contains(ImplicitGemmNhwcLauncher.kernel(tile, d)) && why.contains("layout nhwc (read and written as it is by the kernel)")
                            && why.contains("loaded and stored as " + d.label()) && why.contains("tile " + tile + " (forced by a test)"), why);
                    int slices = Math.min(splits, ImplicitGemmNhwcLauncher.steps(g));
                    assertTrue(why.contains(slices > 1 ? "split-K into " + slices + " slices" : "no split-K"), why);
                    y = plan.run(x.to(Layout.NHWC), r.to(Layout.NHWC));
                }
                assertEquals(Layout.NHWC, y.layout());
                float[] got = y.to(Layout.NCHW).data();
                double[] ref = TestSupport.oracle(g, x.data(), w.data(), b == null ? null : b.data(), ep, r.data()).reference();
                double max = Arrays.stream(ref).map(Math::abs).max().orElse(0), unit = d == Dtype.FP16 ? 0x1p-11 : 0x1p-8;
                for (int i = 0; i < ref.length; i++) {
                    int at = i;
                    assertTrue(Math.abs(got[i] - ref[i]) <= unit * Math.abs(ref[i]) + 1e-5 * max,
                            () -> what + ": element " + at + " is " + got[at] + ", reference " + ref[at] + TestSupport.scheduleNote(what));
                }
                if (g.c % 16 == 0 && splits == 1) {
                    float[] want;
                    try (ConvPlan nchw = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).epilogue(ep).build()) {
                        want = nchw.run(x, r).data();
                    }
                    assertArrayEquals(want, got, 0f, () -> what + ": against the NCHW kernels" + TestSupport.scheduleNote(what));
                    exact++;
                }
            }
            assertEquals(splits == 1 ? 4 : 0, exact);
        } finally {
            ImplicitGemmNhwcLauncher.forcedTile = null;
            ImplicitGemmNhwcLauncher.forcedSplits = 0;
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /** What the kernels do not take converts around the NCHW kernels, and the plan says why; the launcher refuses it outright. */
    @Test
    void whatTheKernelsCannotTakeConvertsAndSaysWhy() {
        ConvGeometry odd = conv(new int[] {1, 6, 5, 5}, new int[] {4, 6, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry grouped = conv(new int[] {1, 16, 5, 5}, new int[] {8, 8, 3, 3}, false, ConvSpec.builder().groups(2).build());
        ConvGeometry oddK = conv(new int[] {1, 8, 5, 5}, new int[] {3, 8, 1, 1}, false, ConvSpec.builder().build());
        ConvGeometry transposed = ConvGeometry.of(ConvGeometry.Op.CONV_TRANSPOSE2D, new int[] {1, 8, 4, 4}, new int[] {8, 8, 3, 3}, null,
                ConvSpec.builder().stride(2).build());
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(odd).contains("6 input channels, not a multiple of 8"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(grouped).contains("2 groups"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(oddK).contains("3 output channels, an odd number"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(transposed).contains("conv_transpose2d"));
        assertNull(ImplicitGemmNhwcLauncher.cannotImplement(LAYERS.get(0)));
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, odd, MathMode.FP16, Dtype.FP16, null, null, null,
                Epilogue.none(), null, null));
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, LAYERS.get(0), MathMode.FP32, Dtype.FP16, null,
                null, null, Epilogue.none(), null, null));
        try (Device dev = open("cuda-emu")) {
            for (Dtype d : new Dtype[] {Dtype.FP16, Dtype.BF16}) {
                MathMode math = d == Dtype.FP16 ? MathMode.FP16 : MathMode.BF16;
                float[][] d0 = TestSupport.data(odd, 53);
                Tensor x = Tensor.of(d.round(d0[0]), odd.inputShape()), w = Tensor.of(d.round(d0[1]), odd.weightShape());
                Tensor b = Tensor.of(d.round(d0[2]), odd.biasLength());
                float[] nhwc, nchw;
                try (ConvPlan plan = ConvPlan.of(dev, odd, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).layout(Layout.NHWC).build()) {
                    String why = plan.explain();
                    assertTrue(why.contains("converted to and from nchw around the kernel: not on the channels-last kernels: 6 input channels"), why);
                    nhwc = plan.run(x.to(Layout.NHWC), null).to(Layout.NCHW).data();
                }
                try (ConvPlan plan = ConvPlan.of(dev, odd, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).build()) {
                    nchw = plan.run(x, null).data();
                }
                assertArrayEquals(nchw, nhwc, 0f, d.label());
            }
        }
    }

    /**
     * Split-K from the geometry alone: none where the grid fills the GPU, else enough slices to reach its block count,
     * each of at least 4 steps, at most 16; the workspace holds one float32 output per slice.
     */
    @Test
    void splitKFillsSmallGridsOnly() {
        ConvGeometry big = conv(new int[] {32, 64, 56, 56}, new int[] {64, 64, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry small = conv(new int[] {32, 512, 7, 7}, new int[] {512, 512, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry shallow = conv(new int[] {1, 8, 4, 4}, new int[] {8, 8, 1, 1}, true, ConvSpec.builder().build());
        assertEquals(1, ImplicitGemmNhwcLauncher.splits(big));
        assertEquals(0, ImplicitGemmNhwcLauncher.workspaceBytes(big));
        // 32 x 7 x 7 = 1568 pixels: 25 x 8 = 200 blocks of 64 x 64, so 2 slices give 400 >= 264; 144 steps allow it
        assertEquals(GemmTile.T64X64, ImplicitGemmNhwcLauncher.tile(small));
        assertEquals(2, ImplicitGemmNhwcLauncher.splits(small));
        assertEquals(4L * 2 * 32 * 512 * 7 * 7, ImplicitGemmNhwcLauncher.workspaceBytes(small));
        assertEquals(1, ImplicitGemmNhwcLauncher.splits(shallow), "one step: nothing to split");
        assertTrue(ImplicitGemmNhwcLauncher.variant(small, Dtype.FP16).contains("split-K into 2 slices of 72 of 144 steps (400 blocks"));
    }

    /** The weights in the order the kernels read them: w[k][r][s][c] from PyTorch's w[k][c][r][s]. */
    @Test
    void weightsAreReorderedToKrsc() {
        ConvGeometry g = conv(new int[] {1, 8, 5, 5}, new int[] {2, 8, 2, 3}, false, ConvSpec.builder().build());
        float[] kcrs = new float[2 * 8 * 2 * 3];
        for (int i = 0; i < kcrs.length; i++) {
            kcrs[i] = i;
        }
        float[] krsc = ImplicitGemmNhwcLauncher.krsc(g, kcrs);
        for (int k = 0; k < 2; k++) {
            for (int c = 0; c < 8; c++) {
                for (int r = 0; r < 2; r++) {
                    for (int s = 0; s < 3; s++) {
                        assertEquals(kcrs[((k * 8 + c) * 2 + r) * 3 + s], krsc[((k * 2 + r) * 3 + s) * 8 + c]);
                    }
                }
            }
        }
    }
}
