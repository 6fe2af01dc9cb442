package io.github.jconv;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Half-precision device tensors ({@link Dtype#FP16}, {@link Dtype#BF16}) and the plans that run on them: what goes in
 * is rounded to nearest even and comes back exactly, on the CPU and on the GPU backends; a half-precision plan's result is
 * the float32 plan's on the rounded operands, rounded, bit for bit, in both layouts and with a residual; and the places
 * that take float32 only say so.
 */
class DtypeTensorTest {
    private static final Dtype[] HALVES = {Dtype.FP16, Dtype.BF16};

    /** Values at the edges of both formats: ties, overflow, subnormals, underflow, infinities, NaN, signed zero. */
    private static final float[] EDGES = {0f, -0f, 1f, -2.5f, 1 + 0x1p-11f, 1 + 0x1p-11f + 0x1p-12f, 1 + 3 * 0x1p-11f, 1 + 0x1p-8f,
            1 + 3 * 0x1p-8f, 65504f, 65519.99f, 65520f, 70000f, -1e6f, 0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-26f, 3e38f,
            Float.MAX_VALUE, 0x1p-133f, Float.MIN_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 0.1f, 1e-3f};

    static boolean available(String name) {
        return Backends.all().stream().anyMatch(b -> b.name().equals(name) && b.unavailableReason() == null);
    }

    /** upload rounds each value as {@link Dtype#round} does; download gives exactly that; the 16-bit patterns round-trip. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void uploadRoundsToNearestEvenAndDownloadIsExact(String name) {
        Assumptions.assumeTrue(available(name), name);
        try (Device dev = Device.open(name)) {
            for (Dtype d : HALVES) {
                for (int size : new int[] {EDGES.length, EDGES.length - 1, 1}) { // odd sizes: the last float of a GPU buffer half used
                    float[] v = Arrays.copyOf(EDGES, size);
                    try (DeviceTensor t = dev.allocate(Layout.NCHW, d, size)) {
                        assertEquals(d, t.dtype());
                        t.upload(v);
                        float[] back = new float[size];
                        t.download(back);
                        for (int i = 0; i < size; i++) {
                            float want = d.round(v[i]);
                            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(back[i]), d + " of " + v[i] + ": " + back[i]);
                        }
                        short[] bits = new short[size];
                        t.downloadHalves(bits);
                        for (int i = 0; i < size; i++) {
                            assertEquals(d.encode(v[i]), bits[i], d + " bits of " + v[i]);
                        }
                        short[] all = new short[size];
                        for (int i = 0; i < size; i++) {
                            all[i] = (short) (i * 2477 + 13);
                        }
                        t.uploadHalves(all);
                        t.downloadHalves(bits);
                        assertArrayEquals(all, bits, "16-bit patterns are stored as they are");
                    }
                }
            }
        }
    }

    /**
     * The array conversions' fast rounding equals {@link Precision}'s, bit for bit: on float patterns strided through all
     * 2^32 (every exponent, sign, NaN and infinity), one by one and through the array methods the plans use, and around
     * every half value: the value itself, its neighbours one float ulp away and the exact
     * midpoints to the next value up (the ties), for both formats; every 16-bit pattern widens as {@link Dtype#decode}.
     */
    @Test
    void fastRoundingIsPrecisionsBitForBit() {
        for (long b = 0; b < 1L << 32; b += 251) {
            float v = Float.intBitsToFloat((int) b);
            assertEquals(Precision.toHalf(v), Dtype.fastHalf(v), () -> "fp16 of " + Integer.toHexString(Float.floatToRawIntBits(v)));
            assertEquals(Precision.toBfloat16(v), Dtype.fastBfloat16(v), () -> "bf16 of " + Integer.toHexString(Float.floatToRawIntBits(v)));
        }
        // the array conversions the plans use, on the same patterns in chunks of an odd length split over two threads, and
        // every 16-bit pattern widened
        int chunk = 100_003;
        float[] src = new float[chunk], wide = new float[chunk];
        short[] bits = new short[chunk];
        for (long b0 = 0; b0 < 1L << 32; b0 += 251L * chunk) {
            int n = (int) Math.min(chunk, ((1L << 32) - b0 + 250) / 251);
            for (int i = 0; i < n; i++) {
                src[i] = Float.intBitsToFloat((int) (b0 + 251L * i));
            }
            for (Dtype d : HALVES) {
                d.encode(src, bits, n, 2);
                for (int i = 0; i < n; i++) {
                    if (bits[i] != d.encode(src[i])) {
                        fail(d + " array rounding of " + Integer.toHexString(Float.floatToRawIntBits(src[i])) + ": " + hex(bits[i]) + ", not "
                                + hex(d.encode(src[i])));
                    }
                }
            }
        }
        short[] all = new short[1 << 16];
        float[] values = new float[all.length];
        for (int h = 0; h < all.length; h++) {
            all[h] = (short) h;
        }
        for (Dtype d : HALVES) {
            d.decode(all, values, all.length - 3, 2);
            for (int h = 0; h < all.length - 3; h++) {
                assertEquals(Float.floatToRawIntBits(d.decode(all[h])), Float.floatToRawIntBits(values[h]), d + " widening of " + hex(all[h]));
            }
        }
        for (Dtype d : HALVES) {
            for (int h = 0; h < 1 << 16; h++) {
                float v = d.decode((short) h), next = d.decode((short) (h + 1));
                if (!Float.isFinite(v)) {
                    continue;
                }
                float mid = Float.isFinite(next) && (h & 0x7fff) != 0x7fff ? (float) (((double) v + next) / 2) : v;
                for (float x : new float[] {v, Math.nextUp(v), Math.nextDown(v), mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                    short want = d == Dtype.FP16 ? Precision.toHalf(x) : Precision.toBfloat16(x);
                    short got = d == Dtype.FP16 ? Dtype.fastHalf(x) : Dtype.fastBfloat16(x);
                    assertEquals(want, got, () -> d + " of " + x);
                }
            }
        }
    }

    /**
     * Every 16-bit pattern widens on the device as {@link Dtype#decode} does and rounds back to itself (NaN stays NaN): a
     * 1 x 1 convolution with weight 1 takes each value through the plan's widening and rounding unchanged.
     */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void everyPatternWidensAndRoundsBackToItself(String name) {
        Assumptions.assumeTrue(available(name), name);
        int[] shape = {1, 1, 256, 256};
        short[] all = new short[65536];
        for (int i = 0; i < all.length; i++) {
            all[i] = (short) i;
        }
        for (Dtype d : HALVES) {
            try (Device dev = Device.open(name);
                 ConvPlan copy = ConvPlan.conv2d(dev, shape, Tensor.of(new float[] {1f}, 1, 1, 1, 1), null, ConvSpec.builder().build())
                         .algorithm(Algorithm.DIRECT).dtype(d).build();
                 DeviceTensor x = dev.allocate(Layout.NCHW, d, shape);
                 DeviceTensor y = dev.allocate(Layout.NCHW, d, shape)) {
                x.uploadHalves(all);
                copy.run(x, y);
                short[] back = new short[all.length];
                y.downloadHalves(back);
                float[] widened = new float[all.length];
                x.download(widened);
                for (int i = 0; i < all.length; i++) {
                    int at = i;
                    float v = d.decode(all[i]);
                    assertEquals(Float.floatToIntBits(v), Float.floatToIntBits(widened[i]), () -> d + " widens " + hex(all[at]));
                    if (Float.isNaN(v)) {
                        assertTrue(Float.isNaN(d.decode(back[i])), () -> d + " NaN pattern " + hex(all[at]) + " came back as " + hex(back[at]));
                    } else if (v == 0) { // the kernel's sum 0 + (-0) * 1 is +0
                        assertEquals(0f, d.decode(back[i]), () -> d + " zero " + hex(all[at]) + " came back as " + hex(back[at]));
                    } else {
                        assertEquals(all[i], back[i], () -> d + " pattern " + hex(all[at]) + " came back as " + hex(back[at]));
                    }
                }
            }
        }
    }

    private static String hex(short h) {
        return Integer.toHexString(h & 0xffff);
    }

    private static Tensor random(long seed, int... shape) {
        return Tensor.of(TestSupport.gaussian(new Random(seed), Tensor.elementCount(shape)), shape);
    }

    private static Tensor rounded(Dtype d, Tensor t) {
        return Tensor.of(t.layout(), d.round(t.data()), t.shape());
    }

    /**
     * A half-precision plan's output is the float32 plan's on the operands rounded to the dtype (weights and bias too),
     * rounded once, bit for bit: conv2d and conv_transpose2d, strided, padded, grouped, with bias and a residual epilogue,
     * in NCHW and NHWC, for each algorithm of the device's backend; and each element is within one rounding of the float64
     * reference on those operands.
     */
    private static void halfPlansMatchTheRoundedFp32Run(Device dev) {
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
        List<ConvGeometry> cases = List.of(
                ConvGeometry.of(ConvGeometry.Op.CONV2D, new int[] {2, 6, 9, 7}, new int[] {8, 3, 3, 3}, new int[] {8},
                        ConvSpec.builder().stride(2, 1).padding(1, 2).groups(2).build()),
                ConvGeometry.of(ConvGeometry.Op.CONV_TRANSPOSE2D, new int[] {1, 4, 5, 5}, new int[] {4, 3, 3, 3}, new int[] {3},
                        ConvSpec.builder().stride(2).padding(1).build()));
        int runs = 0;
        for (ConvGeometry g : cases) {
            Tensor w = random(2, g.weightShape()), b = random(3, g.biasLength());
            for (Algorithm a : dev.backend().algorithms()) {
                if (dev.backend().cannotImplement(a, g) != null) {
                    continue;
                }
                for (Dtype d : HALVES) {
                    for (Layout lay : Layout.values()) {
                        Tensor x = random(1, g.inputShape()).to(lay), r = random(4, g.outputShape()).to(lay);
                        String what = dev.name() + " " + a + " " + g + " " + d + " " + lay;
                        Tensor y;
                        try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(a).epilogue(ep).layout(lay).dtype(d).build()) {
                            assertEquals(d, plan.dtype());
                            assertTrue(plan.explain().contains("dtype " + d.label() + " (widened to fp32 around the kernel, the result rounded)"),
                                    plan.explain());
                            y = plan.run(x, r);
                        }
                        Tensor want;
                        try (ConvPlan fp32 = ConvPlan.of(dev, g, rounded(d, w), rounded(d, b)).algorithm(a).epilogue(ep).layout(lay).build()) {
                            want = rounded(d, fp32.run(rounded(d, x), rounded(d, r)));
                        }
                        assertEquals(lay, y.layout(), what);
                        assertArrayEquals(want.data(), y.data(), 0f, what);
                        double[] ref = TestSupport.oracle(g, rounded(d, x).to(Layout.NCHW).data(), rounded(d, w).data(), rounded(d, b).data(),
                                ep, rounded(d, r).to(Layout.NCHW).data()).reference();
                        float[] got = y.to(Layout.NCHW).data();
                        double max = Arrays.stream(ref).map(Math::abs).max().orElse(0), unit = d == Dtype.FP16 ? 0x1p-11 : 0x1p-8;
                        for (int i = 0; i < ref.length; i++) { // one rounding of the result, and float32's sums
                            assertTrue(Math.abs(got[i] - ref[i]) <= unit * Math.abs(ref[i]) + 1e-5 * max,
                                    what + ": element " + i + " is " + got[i] + ", reference " + ref[i]);
                        }
                        runs++;
                    }
                }
            }
        }
        assertTrue(runs >= 8, dev.name() + ": " + runs + " runs");
    }

    @Test
    void cpuHalfPlansMatchTheRoundedFp32Run() {
        try (Device dev = Device.open("cpu")) {
            halfPlansMatchTheRoundedFp32Run(dev);
        }
    }

    /** On the GPU backends the widening and rounding run on the device (cuda-kernels/dtype.cu); closing checks the buffers were freed. */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda", "cudnn"})
    void gpuHalfPlansConvertOnTheDevice(String name) {
        Assumptions.assumeTrue(available(name), name);
        try (Device dev = Device.open(name)) {
            halfPlansMatchTheRoundedFp32Run(dev);
        }
    }

    /** Operands of another dtype, 16-bit copies of a float32 tensor, wrong lengths, max pool changing the dtype: one-line errors. */
    @Test
    void whatTakesFloat32OnlySaysSo() {
        try (Device dev = Device.open("cpu");
             ConvPlan plan = ConvPlan.conv2d(dev, new int[] {1, 2, 4, 4}, random(1, 3, 2, 1, 1), null, ConvSpec.builder().build())
                     .dtype(Dtype.BF16).build();
             DeviceTensor x32 = dev.allocate(1, 2, 4, 4);
             DeviceTensor x = dev.allocate(Layout.NCHW, Dtype.BF16, 1, 2, 4, 4);
             DeviceTensor y16 = dev.allocate(Layout.NCHW, Dtype.FP16, 1, 3, 4, 4);
             DeviceTensor y = dev.allocate(Layout.NCHW, Dtype.BF16, 1, 3, 4, 4);
             DeviceTensor pooled16 = dev.allocate(Layout.NCHW, Dtype.FP16, 1, 2, 2, 2)) {
            assertEquals("input tensor is fp32, the plan takes bf16", assertThrows(InvalidConvolutionException.class, () -> plan.run(x32, y)).getMessage());
            assertEquals("output tensor is fp16, the plan takes bf16", assertThrows(InvalidConvolutionException.class, () -> plan.run(x, y16)).getMessage());
            assertEquals("uploadHalves: the tensor [1, 2, 4, 4] is fp32 (16-bit patterns are for fp16 and bf16 tensors)",
                    assertThrows(InvalidConvolutionException.class, () -> x32.uploadHalves(new short[32])).getMessage());
            assertEquals("upload of 3 16-bit elements into a tensor of shape [1, 2, 4, 4] (32 elements)",
                    assertThrows(InvalidConvolutionException.class, () -> x.uploadHalves(new short[3])).getMessage());
            assertEquals("max_pool2d keeps the dtype, got bf16 -> fp16",
                    assertThrows(InvalidConvolutionException.class, () -> MaxPool2d.run(x, pooled16, 2, 2, 0)).getMessage());
            assertEquals("DeviceTensor[1, 3, 4, 4] fp16@cpu", y16.toString());
        }
    }

    /** Max pooling on half-precision tensors gives the float32 pooling of the values, exactly (NaN and infinities too). */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu", "cuda"})
    void maxPoolOnHalvesIsExact(String name) {
        Assumptions.assumeTrue(available(name), name);
        int[] in = {2, 3, 9, 7};
        Tensor x = random(5, in);
        x.data()[3] = Float.NaN;
        x.data()[70] = Float.POSITIVE_INFINITY;
        x.data()[140] = 70000f;
        int[] out = MaxPool2d.outputShape(in, 3, 2, 1);
        try (Device dev = Device.open(name)) {
            for (Dtype d : HALVES) {
                Tensor xr = rounded(d, x);
                try (DeviceTensor a = dev.upload(xr, d); DeviceTensor b = dev.allocate(Layout.NCHW, d, out);
                     DeviceTensor a32 = dev.upload(xr); DeviceTensor b32 = dev.allocate(out)) {
                    MaxPool2d.run(a, b, 3, 2, 1);
                    MaxPool2d.run(a32, b32, 3, 2, 1);
                    assertArrayEquals(b32.download().data(), b.download().data(), 0f, name + " " + d);
                }
            }
        }
    }

    /** A half-precision tensor left open is reported with its dtype and its two bytes an element. */
    @Test
    void leaksNameTheDtype() {
        Device dev = Device.open("cpu");
        dev.allocate(Layout.NHWC, Dtype.FP16, 1, 3, 5, 5);
        DeviceLeakException e = assertThrows(DeviceLeakException.class, dev::close);
        assertTrue(e.getMessage().contains("tensor [1, 3, 5, 5] nhwc fp16 (150 bytes)"), e.getMessage());
    }
}
