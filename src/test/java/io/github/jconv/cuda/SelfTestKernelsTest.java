package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Padding;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * cuda-kernels/selftest.cu: the parameter packing, the warp collectives, TF32 tensor-core MMA and cp.async, on the
 * emulator (always) and on a GPU (where there is one; the variants with deliberate bugs run on the emulator only).
 */
class SelfTestKernelsTest {
    private static DeviceApi device(String name) {
        if (name.equals("cuda-emu")) {
            Assumptions.assumeTrue(EmuDevice.unavailableReason() == null, EmuDevice::unavailableReason);
            return EmuDevice.INSTANCE;
        }
        Assumptions.assumeTrue(JCudaDevice.unavailableReason() == null, () -> "cuda: " + JCudaDevice.unavailableReason());
        return JCudaDevice.get();
    }

    /** Runs a selftest kernel with GemmParams {m, 0, k, ...} on the given inputs and returns its output buffer. */
    private static float[] run(DeviceApi device, String kernel, int blocks, int threads, int m, int k, int outLength, float[]... in) {
        float[] out = new float[outLength];
        try (DeviceArena arena = new DeviceArena(device)) {
            DeviceBuffer[] bufs = new DeviceBuffer[in.length + 1];
            try {
                for (int i = 0; i < in.length; i++) {
                    bufs[i] = arena.upload(in[i]);
                }
                bufs[in.length] = arena.allocate(outLength);
                Launcher.launch(arena, kernel, new int[] {blocks, 1, 1}, new int[] {threads, 1, 1},
                        new int[] {m, 0, k, 0, 0, 0, 0, 0, 0, 0, 0}, bufs, new long[bufs.length]);
                bufs[in.length].download(out);
            } finally {
                for (DeviceBuffer b : bufs) {
                    if (b != null) {
                        b.close();
                    }
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void theParamsStructIsWhatJavaPacks(String name) {
        ConvGeometry g = ConvGeometry.convTranspose2d(new int[] {2, 6, 5, 7}, new int[] {6, 3, 3, 2}, new int[] {6},
                ConvSpec.builder().stride(2, 3).padding(Padding.of(1, 0, 2, 1)).dilation(2, 1).groups(2).outputPadding(1, 0).build());
        int[] packed = Launcher.params(g, 1, 1, io.github.jconv.Epilogue.of(io.github.jconv.Epilogue.Activation.SILU)
                .withResidual(io.github.jconv.Epilogue.Residual.BEFORE_ACTIVATION));
        float[] out = new float[21];
        try (DeviceArena arena = new DeviceArena(device(name)); DeviceBuffer o = arena.allocate(21)) {
            Launcher.launch(arena, "jconv_selftest_params", new int[] {1, 1, 1}, new int[] {32, 1, 1}, packed, o, o);
            o.download(out);
        }
        int[] echoed = new int[21];
        for (int i = 0; i < 21; i++) {
            echoed[i] = Float.floatToRawIntBits(out[i]);
        }
        assertArrayEquals(packed, echoed, "the kernel reads ConvParams' fields in the order Launcher.params packs them");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void warpCollectivesFollowTheirContracts(String name) {
        int warps = 3, n = 32 * warps;
        float[] in = new float[n];
        Random rnd = new Random(7);
        for (int i = 0; i < n; i++) {
            in[i] = rnd.nextInt(21) - 10; // small integers: sums are exact
        }
        float[] out = run(device(name), "jconv_selftest_warp", 1, n, 5, 0, 8 * n, in);
        for (int t = 0; t < n; t++) {
            int w = t / 32 * 32, lane = t % 32;
            int ballot = 0;
            float sum = 0;
            for (int l = 0; l < 32; l++) {
                ballot |= in[w + l] > 0 ? 1 << l : 0;
                sum += in[w + l];
            }
            float[] want = {in[w + (lane + 3) % 32], in[w + (lane ^ 5)], lane >= 2 ? in[t - 2] : in[t], lane + 3 < 32 ? in[t + 3] : in[t],
                    Float.intBitsToFloat(ballot), sum, in[w + (lane & ~7) + 1], in[t] + 5};
            for (int i = 0; i < 8; i++) {
                if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(out[8 * t + i])) {
                    fail(name + ": thread " + t + " result " + i + " is " + out[8 * t + i] + ", want " + want[i]);
                }
            }
        }
    }

    /**
     * jconv_common.cuh's FastDiv (division by magic numbers, which the kernels' loops use instead of a divide): exact
     * quotient and remainder against Java's division, at the edges (1, powers of two, 2^31 +- 1, 2^63 - 1) and at random.
     */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void fastDivisionIsExact(String name) {
        java.util.List<long[]> pairs = new java.util.ArrayList<>();
        long[] divisors = {1, 2, 3, 5, 7, 9, 10, 49, 64, 1000, 3136, 12544, (1L << 31) - 1, 1L << 31, (1L << 31) + 1, (1L << 32) + 1,
                (1L << 40) + 7, (1L << 62) + 3, Long.MAX_VALUE};
        Random rnd = new Random(11);
        for (long d : divisors) {
            for (long n : new long[] {0, 1, d - 1, d, d + 1, 2 * d - 1, (1L << 31) - 1, 1L << 31, 1L << 32, (1L << 62) - 1, Long.MAX_VALUE,
                    Long.MAX_VALUE - 1}) {
                if (n >= 0) {
                    pairs.add(new long[] {n, d});
                }
            }
        }
        for (int i = 0; i < 2000; i++) {
            long d = 1 + (rnd.nextLong() >>> (1 + rnd.nextInt(63)));
            pairs.add(new long[] {rnd.nextLong() >>> (1 + rnd.nextInt(63)), d});
        }
        float[] in = new float[4 * pairs.size()];
        for (int i = 0; i < pairs.size(); i++) {
            for (int j = 0; j < 2; j++) {
                in[4 * i + 2 * j] = Float.intBitsToFloat((int) pairs.get(i)[j]);
                in[4 * i + 2 * j + 1] = Float.intBitsToFloat((int) (pairs.get(i)[j] >>> 32));
            }
        }
        int n = pairs.size();
        float[] out = run(device(name), "jconv_selftest_fastdiv", (n + 255) / 256, 256, n, 0, 4 * n, in);
        for (int i = 0; i < n; i++) {
            long q = Integer.toUnsignedLong(Float.floatToRawIntBits(out[4 * i])) | (long) Float.floatToRawIntBits(out[4 * i + 1]) << 32;
            long r = Integer.toUnsignedLong(Float.floatToRawIntBits(out[4 * i + 2])) | (long) Float.floatToRawIntBits(out[4 * i + 3]) << 32;
            long[] p = pairs.get(i);
            assertEquals(p[0] / p[1], q, name + ": " + p[0] + " / " + p[1]);
            assertEquals(p[0] % p[1], r, name + ": " + p[0] + " % " + p[1]);
        }
    }

    /** cvt.rna.tf32.f32: 10 mantissa bits, ties away from zero. */
    static float tf32(float x) {
        int u = Float.floatToRawIntBits(x);
        if ((u & 0x7f800000) == 0x7f800000) {
            return x;
        }
        return Float.intBitsToFloat((u + 0x1000) & 0xffffe000);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void tf32MmaMatchesTheFragmentLayoutOfThePtxIsa(String name) {
        DeviceApi device = device(name);
        if (name.equals("cuda")) {
            Assumptions.assumeTrue(device.describe().matches(".*sm_(8|9|1[0-9]).*"), "TF32 MMA needs sm_80: " + device.describe());
        }
        Random rnd = new Random(11);
        float[] a = new float[16 * 8], b = new float[8 * 8];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) rnd.nextGaussian();
        }
        float[] d = run(device, "jconv_selftest_mma", 1, 32, 0, 0, 16 * 8, a, b);
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 8; j++) {
                double want = 0, mag = 0;
                for (int kk = 0; kk < 8; kk++) {
                    want += (double) tf32(a[i * 8 + kk]) * tf32(b[kk * 8 + j]);
                    mag += Math.abs((double) tf32(a[i * 8 + kk]) * tf32(b[kk * 8 + j]));
                }
                // exact products of TF32 values; the sum's rounding order is the hardware's: a few ulps of the magnitude
                assertEquals(want, d[i * 8 + j], 8 * Math.ulp((float) mag) + 1e-30, name + ": D[" + i + "][" + j + "]");
            }
        }
        // the layout matters: a transposed fragment would give another product
        double transposedGuess = 0;
        for (int kk = 0; kk < 8; kk++) {
            transposedGuess += (double) tf32(a[kk]) * tf32(b[kk]);
        }
        assertTrue(Math.abs(transposedGuess - d[0]) > 1e-6 || Math.abs(d[0]) < 1e-6, "D[0][0] is row 0 of A times column 0 of B");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void cpAsyncCopiesAreVisibleAfterTheirWait(String name) {
        float[] src = new float[1024];
        for (int i = 0; i < src.length; i++) {
            src[i] = i;
        }
        float[] out = run(device(name), "jconv_selftest_cp_async", 1, 128, 0, 0, 1024, src);
        for (int i = 0; i < 512; i++) {
            assertEquals(src[(i + 4) % 512], out[i], name + ": stage 0, element " + i);
            assertEquals(src[512 + (i + 4) % 512], out[512 + i], name + ": stage 1, element " + i);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void cpAsyncWithZeroFillCopiesOrWritesZeros(String name) {
        float[] src = new float[512];
        for (int i = 0; i < src.length; i++) {
            src[i] = i + 1;
        }
        float[] out = run(device(name), "jconv_selftest_cp_async_zfill", 1, 128, 0, 0, 512, src);
        for (int i = 0; i < 512; i++) {
            assertEquals(i / 4 % 3 != 0 ? src[i] : 0f, out[i], name + ": element " + i + " (thread " + i / 4 + ")");
        }
    }

    @Test
    void aReadBeforeItsCpAsyncWaitGivesNaNOnTheEmulator() {
        float[] src = new float[1024];
        java.util.Arrays.fill(src, 1f);
        float[] out = run(device("cuda-emu"), "jconv_selftest_cp_async", 1, 128, 0, 1, 1024, src);
        assertEquals(1f, out[0], "stage 0 was waited for");
        for (int i = 512; i < 1024; i++) {
            assertTrue(Float.isNaN(out[i]), "stage 1 was read before its wait: element " + i + " is " + out[i]);
        }
    }

    /**
     * ldmatrix x4 gives each lane the PTX ISA's fragment: four 8 x 8 matrices of 16-bit elements, element (m, row, col)
     * = 0x4000 + 64m + 8row + col (halves of normal floats, so the words survive the float buffers), lane (group, t)
     * receiving matrix m's (group, 2t) and (group, 2t + 1), or with .trans (2t, group) and (2t + 1, group), low half first.
     */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void ldmatrixGivesEachLaneItsFragment(String name) {
        DeviceApi device = device(name);
        Assumptions.assumeTrue(name.equals("cuda-emu") || JCudaDevice.get().computeCapability() >= 75, "ldmatrix needs sm_75");
        float[] in = new float[128];
        for (int w = 0; w < 128; w++) { // word w of matrix w / 32 holds row (w % 32) / 4, columns 2 (w % 4) and 2 (w % 4) + 1
            in[w] = Float.intBitsToFloat(element(w / 32, w % 32 / 4, 2 * (w % 4)) | element(w / 32, w % 32 / 4, 2 * (w % 4) + 1) << 16);
        }
        for (boolean trans : new boolean[] {false, true}) {
            float[] out = run(device, "jconv_selftest_ldmatrix", 1, 32, 0, trans ? 1 : 0, 128, in);
            for (int lane = 0; lane < 32; lane++) {
                int g = lane / 4, t = lane % 4;
                for (int m = 0; m < 4; m++) {
                    int want = trans ? element(m, 2 * t, g) | element(m, 2 * t + 1, g) << 16 : element(m, g, 2 * t) | element(m, g, 2 * t + 1) << 16;
                    assertEquals(Integer.toHexString(want), Integer.toHexString(Float.floatToRawIntBits(out[4 * lane + m])),
                            name + (trans ? " .trans" : "") + ": lane " + lane + ", register " + m);
                }
            }
        }
    }

    private static int element(int matrix, int row, int col) {
        return 0x4000 + 64 * matrix + 8 * row + col;
    }

    @Test
    void aMisalignedCpAsyncFailsTheLaunchOnTheEmulator() {
        DeviceException e = assertThrows(DeviceException.class,
                () -> run(device("cuda-emu"), "jconv_selftest_cp_async_zfill", 1, 128, 0, 1, 512, new float[512]));
        assertTrue(e.getMessage().contains("cp.async: a 16-byte copy between addresses not aligned to 16 bytes"), e.getMessage());
    }

    @Test
    void aMisalignedLdmatrixRowFailsTheLaunchOnTheEmulator() {
        DeviceException e = assertThrows(DeviceException.class,
                () -> run(device("cuda-emu"), "jconv_selftest_ldmatrix", 1, 32, 0, 2, 128, new float[128]));
        assertTrue(e.getMessage().contains("ldmatrix: lane 5's row address is not 16-byte aligned"), e.getMessage());
    }

    @Test
    void aLaneThatSkipsAWarpCollectiveFailsTheLaunch() {
        DeviceException e = assertThrows(DeviceException.class,
                () -> run(device("cuda-emu"), "jconv_selftest_divergent", 1, 32, 0, 1, 32, new float[32]));
        assertTrue(e.getMessage().contains("jconv_selftest_divergent: divergent __shfl_sync in warp 0 (31 of 32 lanes reached it, 1 returned"),
                e.getMessage());
        assertTrue(e.getMessage().contains("JCONV_EMU_SEED="), "the schedule seed is printed: " + e.getMessage());
        float[] fine = run(device("cuda-emu"), "jconv_selftest_divergent", 1, 32, 0, 0, 32, new float[32]);
        assertEquals(0f, fine[5]);
    }

    @Test
    void launchesBeyondAGpusLimitsFailAsTheDriverWould() {
        try (DeviceArena arena = new DeviceArena(device("cuda-emu")); DeviceBuffer o = arena.allocate(21)) {
            for (int[][] gb : new int[][][] {{{1, 70000, 1}, {32, 1, 1}}, {{1, 1, 65536}, {32, 1, 1}}, {{1, 1, 1}, {1025, 1, 1}},
                    {{1, 1, 1}, {32, 32, 2}}, {{1, 1, 1}, {1, 1, 65}}, {{0, 1, 1}, {32, 1, 1}}}) {
                Launcher.launch(arena, "jconv_selftest_params", gb[0], gb[1], new int[21], o, o);
                DeviceException e = assertThrows(DeviceException.class, () -> arena.stream().synchronize());
                assertTrue(e.getMessage().startsWith("CUDA_ERROR_INVALID_VALUE: kernel jconv_selftest_params launched with grid"),
                        e.getMessage());
            }
        }
    }

    @Test
    void aParameterStructOfTheWrongSizeFailsTheLaunch() {
        try (DeviceArena arena = new DeviceArena(device("cuda-emu")); DeviceBuffer o = arena.allocate(21)) {
            Launcher.launch(arena, "jconv_selftest_params", new int[] {1, 1, 1}, new int[] {32, 1, 1}, new int[19], o, o);
            DeviceException e = assertThrows(DeviceException.class, () -> arena.stream().synchronize());
            assertTrue(e.getMessage().contains("kernel jconv_selftest_params reads a 84-byte parameter struct, the launch packed 76 bytes"),
                    e.getMessage());
        }
    }
}
