package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvOptions;
import io.github.jconv.ConvSpec;
import io.github.jconv.Jconv;
import io.github.jconv.Tensor;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The host side of streams, on the emulator (whose streams run their queue on a worker thread, as a GPU runs
 * a CUstream): staged uploads, results only after synchronising, chunked copies through a small staging
 * buffer, errors of queued work, and many Java threads at once.
 */
class DeviceStreamTest {
    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextFloat() * 2 - 1;
        }
        return a;
    }

    /** The emulator, and the GPU where there is one (reported as skipped otherwise). */
    static List<String> devices() {
        return List.of("cuda-emu", "cuda");
    }

    private static DeviceApi device(String name) {
        if (name.equals("cuda")) {
            Assumptions.assumeTrue(JCudaDevice.unavailableReason() == null, () -> "cuda: " + JCudaDevice.unavailableReason());
            return JCudaDevice.get();
        }
        return EmuDevice.INSTANCE;
    }

    @ParameterizedTest
    @MethodSource("devices")
    void anUploadedArrayMayChangeRightAfterTheUpload(String name) {
        float[] data = random(5000, 1), want = data.clone(), got = new float[data.length];
        try (DeviceArena arena = new DeviceArena(device(name)); DeviceBuffer b = arena.upload(data)) {
            java.util.Arrays.fill(data, 42f); // the upload was staged: the queued copy must not see this
            b.download(got);
        }
        assertArrayEquals(want, got);
    }

    @ParameterizedTest
    @MethodSource("devices")
    void aQueuedDownloadFillsTheArrayOnlyWhenTheStreamIsSynchronised(String name) {
        float[] data = random(100, 2), got = new float[100];
        try (DeviceArena arena = new DeviceArena(device(name)); DeviceBuffer b = arena.upload(data)) {
            arena.stream().copyToHost(got, 0, b.handle(), 0, 100);
            assertArrayEquals(new float[100], got, "not filled before synchronize()");
            arena.stream().synchronize();
        }
        assertArrayEquals(data, got);
    }

    @Test
    void copiesLargerThanTheStagingBufferGoInChunks() {
        EmuDevice small = EmuDevice.withMaxStaging(1000); // 250 floats per chunk
        float[] a = random(2345, 3), b = random(777, 4), gotA = new float[a.length], gotB = new float[b.length];
        try (DeviceArena arena = new DeviceArena(small);
             DeviceBuffer da = arena.upload(a);
             DeviceBuffer db = arena.upload(b)) {
            arena.stream().copyToHost(gotA, 0, da.handle(), 0, a.length);
            arena.stream().copyToHost(gotB, 0, db.handle(), 0, b.length);
            arena.stream().synchronize();
        }
        assertArrayEquals(a, gotA);
        assertArrayEquals(b, gotB);
    }

    @Test
    void aConvolutionThroughATinyStagingBufferIsStillRight() {
        ConvSpec spec = ConvSpec.builder().padding(1).stride(2).build();
        ConvGeometry g = ConvGeometry.conv2d(new int[] {2, 3, 9, 11}, new int[] {4, 3, 3, 3}, new int[] {4}, spec);
        float[] x = random(2 * 3 * 9 * 11, 5), w = random(4 * 3 * 3 * 3, 6), bias = random(4, 7);
        float[] y = new float[g.n * g.k * g.p * g.q];
        try (DeviceArena arena = new DeviceArena(EmuDevice.withMaxStaging(256));
             DeviceBuffer dx = arena.upload(x);
             DeviceBuffer dw = arena.upload(w);
             DeviceBuffer db = arena.upload(bias);
             DeviceBuffer dy = arena.allocate(y.length)) {
            new ImplicitGemmLauncher().run(arena, g, dx, dw, db, io.github.jconv.Epilogue.none(), null, dy);
            dy.download(y);
        }
        double[] want = ReferenceConv.compute(g, x, w, bias, Parallel.SERIAL);
        assertTrue(ReferenceConv.maxRelError(y, want) < 1e-5, "max rel error " + ReferenceConv.maxRelError(y, want));
    }

    @Test
    void aBurstOfCallersLeavesAtMostMaxIdleStreamsBehind() {
        EmuDevice device = EmuDevice.withMaxStaging(4096);
        List<DeviceStream> open = new ArrayList<>();
        for (int i = 0; i < StreamPool.MAX_IDLE + 3; i++) {
            DeviceStream s = device.openStream();
            long h = s.allocate(40);
            s.copyToDevice(h, 0, new float[10], 0, 10); // gives it a staging buffer
            s.free(h);
            open.add(s);
        }
        for (DeviceStream s : open) {
            s.close();
        }
        assertEquals(StreamPool.MAX_IDLE, device.idleStreams(), "the rest were destroyed");
        float[] got = new float[2];
        try (DeviceArena arena = new DeviceArena(device); DeviceBuffer b = arena.upload(new float[] {1, 2})) {
            b.download(got);
        }
        assertArrayEquals(new float[] {1, 2}, got, "a kept stream is reused");
        assertEquals(StreamPool.MAX_IDLE, device.idleStreams());
    }

    @Test
    void aFaultingKernelIsReportedAtSynchronizeAndItsBuffersAreStillFreed() {
        ConvGeometry big = ConvGeometry.conv2d(new int[] {1, 1, 3, 4}, new int[] {1, 1, 1, 1}, null, ConvSpec.defaults());
        DeviceStream stream = EmuDevice.INSTANCE.openStream();
        DeviceArena arena = new DeviceArena(stream);
        DeviceBuffer small = arena.allocate(10);
        Launcher.launch(arena, "jconv_im2col_fprop_bias", Launcher.grid1d(12), Launcher.BLOCK_1D, Launcher.params(big), small, null, small);
        float[] got = new float[10];
        DeviceException e = assertThrows(DeviceException.class, () -> small.download(got));
        assertTrue(e.getMessage().contains("jconv_im2col_fprop_bias"), e.getMessage());
        small.close();
        arena.close();
        assertEquals(0, arena.liveBytes());
        stream.close(); // the error was thrown once; the stream is clean again
        float[] ok = new float[3];
        try (DeviceArena again = new DeviceArena(EmuDevice.INSTANCE); DeviceBuffer b = again.upload(new float[] {1, 2, 3})) {
            b.download(ok);
        }
        assertArrayEquals(new float[] {1, 2, 3}, ok, "a stream reused after a fault works");
    }

    @ParameterizedTest
    @MethodSource("devices")
    void manyJavaThreadsConvolveAtOnceEachOnItsOwnStream(String name) throws Exception {
        device(name);
        int callers = 6;
        ExecutorService pool = Executors.newFixedThreadPool(callers);
        try {
            List<Future<Double>> errors = new ArrayList<>();
            for (int t = 0; t < callers; t++) {
                int seed = t;
                errors.add(pool.submit(() -> {
                    Tensor x = Tensor.of(random(2 * 4 * 10 * 10, 10 + seed), 2, 4, 10, 10);
                    Tensor w = Tensor.of(random((4 + seed) * 4 * 3 * 3, 20 + seed), 4 + seed, 4, 3, 3);
                    ConvSpec spec = ConvSpec.builder().padding(seed % 2).dilation(1 + seed % 2).build();
                    double worst = 0;
                    for (int i = 0; i < 3; i++) {
                        Tensor got = Jconv.conv2d(x, w, null, spec,
                                ConvOptions.defaults().withBackend(name).withAlgorithm(i == 0 ? Algorithm.DIRECT
                                        : i == 1 ? Algorithm.IM2COL : Algorithm.IMPLICIT_GEMM));
                        ConvGeometry g = ConvGeometry.conv2d(x.shape(), w.shape(), null, spec);
                        worst = Math.max(worst, ReferenceConv.maxRelError(got.data(), ReferenceConv.compute(g, x.data(), w.data(), null, Parallel.SERIAL)));
                    }
                    return worst;
                }));
            }
            for (Future<Double> f : errors) {
                assertTrue(f.get() < 1e-5, "max rel error " + f.get());
            }
        } finally {
            pool.shutdown();
        }
    }
}
