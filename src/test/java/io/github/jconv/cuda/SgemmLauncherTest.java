package io.github.jconv.cuda;

import io.github.jconv.Epilogue;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * cuda-kernels/sgemm.cu through SgemmLauncher (our kernels: on a GPU only where cuBLAS does not load): every tile shape
 * (sizes on both sides of 64), A and B in either orientation, k not a multiple of the 8-deep step, accumulate, the
 * epilogue with a residual, and offsets into the buffers; against a float64 product with the bound (2 sqrt(k) + 2) eps.
 */
class SgemmLauncherTest {
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void everyTileAndOrientationMatchesFloat64(String name) {
        DeviceApi device;
        if (name.equals("cuda")) {
            Assumptions.assumeTrue(JCudaDevice.unavailableReason() == null, () -> "cuda: " + JCudaDevice.unavailableReason());
            Assumptions.assumeTrue(CublasGemm.unavailableReason() != null, "cuBLAS takes the product on this GPU");
            device = JCudaDevice.get();
        } else {
            Assumptions.assumeTrue(EmuDevice.unavailableReason() == null, EmuDevice::unavailableReason);
            device = EmuDevice.INSTANCE;
        }
        Random rnd = new Random(5);
        int[][] sizes = {{70, 130, 37}, {64, 64, 8}, {5, 200, 3}, {129, 7, 20}, {1, 1, 1}, {66, 66, 0}};
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
        int runs = 0;
        for (int[] mnk : sizes) {
            int m = mnk[0], n = mnk[1], k = mnk[2];
            for (boolean aT : new boolean[] {false, true}) {
                for (boolean bT : new boolean[] {false, true}) {
                    for (boolean acc : new boolean[] {false, true}) {
                        int off = 3;
                        float[] a = TestSupport.gaussian(rnd, off + (long) m * k), b = TestSupport.gaussian(rnd, off + (long) k * n);
                        float[] c0 = TestSupport.gaussian(rnd, off + (long) m * n), res = TestSupport.gaussian(rnd, off + (long) m * n);
                        int aRow = aT ? 1 : k, aCol = aT ? m : 1, bRow = bT ? 1 : n, bCol = bT ? k : 1;
                        float[] c = c0.clone();
                        try (DeviceArena arena = new DeviceArena(device); DeviceBuffer da = arena.upload(a); DeviceBuffer db = arena.upload(b);
                             DeviceBuffer dc = arena.upload(c); DeviceBuffer dr = arena.upload(res)) {
                            SgemmLauncher.run(arena, m, n, k, da, off, aRow, aCol, db, off, bRow, bCol, dc, off, n, acc, ep, dr);
                            dc.download(c);
                        }
                        for (int i = 0; i < m; i++) {
                            for (int j = 0; j < n; j++) {
                                double sum = acc ? c0[off + i * n + j] : 0, mag = Math.abs(sum);
                                for (int l = 0; l < k; l++) {
                                    double p = (double) a[off + i * aRow + l * aCol] * b[off + l * bRow + j * bCol];
                                    sum += p;
                                    mag += Math.abs(p);
                                }
                                double r = res[off + i * n + j];
                                double want = Math.min(6, Math.max(0, sum)) + r;
                                double bound = (2 * Math.sqrt(k) + 2) * TestSupport.EPS * (mag + Math.abs(r)) + 1e-30;
                                if (!(Math.abs(c[off + i * n + j] - want) <= bound)) {
                                    fail(name + " " + SgemmLauncher.kernel(m, n) + " m=" + m + " n=" + n + " k=" + k + " aT=" + aT + " bT=" + bT
                                            + " acc=" + acc + ": C[" + i + "][" + j + "] = " + c[off + i * n + j] + ", want " + want);
                                }
                            }
                        }
                        assertTrue(c[0] == c0[0] && c[1] == c0[1] && c[2] == c0[2], "nothing written before the offset");
                        runs++;
                    }
                }
            }
        }
        assertTrue(runs == sizes.length * 8);
    }
}
