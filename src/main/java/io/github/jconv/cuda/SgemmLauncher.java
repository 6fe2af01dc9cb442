package io.github.jconv.cuda;

import io.github.jconv.Epilogue;

/**
 * cuda-kernels/sgemm.cu: C[m x n] (+)= A * B with strided A and B on the shared GEMM main loop, tiles of 128 or 64 rows x
 * 128 or 64 columns (64 where the matrix has at most 64), grid.y over rows: more than 65535 row tiles go in several
 * launches, each on its slice of A and C. On a GPU where cuBLAS loads, {@link CublasGemm} takes the product instead.
 */
final class SgemmLauncher {
    private SgemmLauncher() {
    }

    /** The kernel for an m x n product: jconv_sgemm_BMxBN, each side 128 unless the matrix has at most 64 there. */
    static String kernel(int m, int n) {
        return "jconv_sgemm_" + tileRows(m) + "x" + tileCols(n);
    }

    static int tileRows(int m) {
        return m > 64 ? 128 : 64;
    }

    static int tileCols(int n) {
        return n > 64 ? 128 : 64;
    }

    /**
     * A(i, l) = a[aOff + i*aRow + l*aCol], B(l, j) = b[bOff + l*bRow + j*bCol], C row-major from cOff with
     * leading dimension ldc; offsets in floats. The epilogue is applied to each stored C element, with the residual
     * (null for none) laid out like C from the same offset; after a cuBLAS product it is a separate pass.
     */
    static void run(DeviceArena arena, int m, int n, int k, DeviceBuffer a, long aOff, int aRow, int aCol, DeviceBuffer b,
                    long bOff, int bRow, int bCol, DeviceBuffer c, long cOff, int ldc, boolean accumulate, Epilogue ep,
                    DeviceBuffer residual) {
        int[] codes = ep.kernelCodes();
        DeviceBuffer res = residual == null ? c : residual; // laid out like C, read only when the epilogue adds it
        if (CublasGemm.run(arena, m, n, k, a, aOff, aRow, aCol, b, bOff, bRow, bCol, c, cOff, ldc, accumulate)) {
            if (!ep.isNone()) {
                int[] params = {m, n, k, aRow, aCol, bRow, bCol, ldc, accumulate ? 1 : 0, codes[0], codes[1]};
                Launcher.launch(arena, "jconv_epilogue_pass", Launcher.grid1d((long) m * n), Launcher.BLOCK_1D, params,
                        new DeviceBuffer[] {res, c}, new long[] {4 * cOff, 4 * cOff});
            }
            return;
        }
        int bm = tileRows(m), bn = tileCols(n);
        int rowsPerLaunch = bm * Launcher.gridYZLimit;
        for (int first = 0; first < m; first += rowsPerLaunch) {
            int rows = Math.min(rowsPerLaunch, m - first);
            int[] params = {rows, n, k, aRow, aCol, bRow, bCol, ldc, accumulate ? 1 : 0, codes[0], codes[1]};
            int[] grid = {(n + bn - 1) / bn, (rows + bm - 1) / bm, 1};
            long cAt = 4 * (cOff + (long) first * ldc);
            Launcher.launch(arena, kernel(m, n), grid, new int[] {bm / 8 * (bn / 8), 1, 1}, params, new DeviceBuffer[] {a, b, res, c},
                    new long[] {4 * (aOff + (long) first * aRow), 4 * bOff, cAt, cAt});
        }
    }
}
