package io.github.jconv.cuda;

import io.github.jconv.Epilogue;

/**
 * cuda-kernels/sgemm.cu: a batch of products C (+)= A * B with strided A and B on the shared GEMM main loop, tiles of 128
 * or 64 rows x 128 or 64 columns (64 where the matrix has at most 64), grid (column tiles, row tiles, products): more
 * than 65535 row tiles or products go in several launches. On a GPU where cuBLAS loads, {@link CublasGemm} takes each
 * product instead.
 */
final class SgemmLauncher {
    private SgemmLauncher() {
    }

    /**
     * {@code count} products b = sample * groups + group, each operand of product b at its base offset + sample *
     * xSample + group * xGroup floats (x = a, b, c; the residual laid out like c).
     */
    record Batch(int count, int groups, int aSample, int aGroup, int bSample, int bGroup, int cSample, int cGroup) {
        static final Batch ONE = new Batch(1, 1, 0, 0, 0, 0, 0, 0);

        long offset(int product, int sampleStride, int groupStride) {
            return (long) (product / groups) * sampleStride + (long) (product % groups) * groupStride;
        }
    }

    /** The kernel for an m x n product: jconv_sgemm_BMxBN, each side 128 unless the matrix has at most 64 there. */
    static String kernel(int m, int n) {
        return "jconv_sgemm_" + tile(m, n);
    }

    static GemmTile tile(int m, int n) {
        return new GemmTile(m > 64 ? 128 : 64, n > 64 ? 128 : 64);
    }

    /**
     * A(i, l) = a[aOff + i*aRow + l*aCol], B(l, j) = b[bOff + l*bRow + j*bCol], C row-major from cOff with
     * leading dimension ldc; offsets in floats. The epilogue is applied to each stored C element, with the residual
     * (null for none) laid out like C from the same offset; after a cuBLAS product it is a separate pass.
     */
    static void run(DeviceArena arena, int m, int n, int k, DeviceBuffer a, long aOff, int aRow, int aCol, DeviceBuffer b,
                    long bOff, int bRow, int bCol, DeviceBuffer c, long cOff, int ldc, boolean accumulate, Epilogue ep,
                    DeviceBuffer residual) {
        run(arena, Batch.ONE, m, n, k, a, aOff, aRow, aCol, b, bOff, bRow, bCol, c, cOff, ldc, accumulate, ep, residual);
    }

    /** {@link #run} for every product of {@code batch}. */
    static void run(DeviceArena arena, Batch batch, int m, int n, int k, DeviceBuffer a, long aOff, int aRow, int aCol, DeviceBuffer b,
                    long bOff, int bRow, int bCol, DeviceBuffer c, long cOff, int ldc, boolean accumulate, Epilogue ep,
                    DeviceBuffer residual) {
        int[] codes = ep.kernelCodes();
        DeviceBuffer res = residual == null ? c : residual; // laid out like C, read only when the epilogue adds it
        for (int p = 0; p < batch.count(); p++) { // cuBLAS takes every product or (device, strides) none: then our kernel
            long ao = aOff + batch.offset(p, batch.aSample(), batch.aGroup()), bo = bOff + batch.offset(p, batch.bSample(), batch.bGroup());
            long co = cOff + batch.offset(p, batch.cSample(), batch.cGroup());
            if (!CublasGemm.run(arena, m, n, k, a, ao, aRow, aCol, b, bo, bRow, bCol, c, co, ldc, accumulate)) {
                if (p > 0) {
                    throw new IllegalStateException("cuBLAS took product 0 of a batch but refused product " + p);
                }
                break;
            }
            if (!ep.isNone()) {
                int[] params = {m, n, k, aRow, aCol, bRow, bCol, ldc, accumulate ? 1 : 0, codes[0], codes[1]};
                Launcher.launch(arena, "jconv_epilogue_pass", Launcher.grid1d((long) m * n), Launcher.BLOCK_1D, params,
                        new DeviceBuffer[] {res, c}, new long[] {4 * co, 4 * co});
            }
            if (p == batch.count() - 1) {
                return;
            }
        }
        GemmTile t = tile(m, n);
        int bm = t.bm(), bn = t.bn();
        int limit = Launcher.gridYZLimit;
        long rowsPerLaunch = (long) bm * limit;
        for (long first = 0; first < m; first += rowsPerLaunch) {
            int rows = (int) Math.min(rowsPerLaunch, m - first);
            for (int p0 = 0; p0 < batch.count(); p0 += limit) {
                int[] params = {rows, n, k, aRow, aCol, bRow, bCol, ldc, accumulate ? 1 : 0, codes[0], codes[1], p0, batch.groups(),
                        batch.aSample(), batch.aGroup(), batch.bSample(), batch.bGroup(), batch.cSample(), batch.cGroup()};
                int[] grid = {(n + bn - 1) / bn, (rows + bm - 1) / bm, Math.min(limit, batch.count() - p0)};
                long cAt = 4 * (cOff + first * ldc);
                Launcher.launch(arena, kernel(m, n), grid, t.block(), params, new DeviceBuffer[] {a, b, res, c},
                        new long[] {4 * (aOff + first * aRow), 4 * bOff, cAt, cAt});
            }
        }
    }
}
