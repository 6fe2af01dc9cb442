package io.github.jconv.cpu;

/**
 * Blocked, multi-threaded single-precision GEMM: C[m x n] (+)= A[m x k] * B[k x n].
 *
 * <p>A and B are addressed through strides, so either may be transposed at no cost: element (i, l) of
 * A is {@code a[aOff + i * aRowStride + l * aColStride]}, element (l, j) of B is
 * {@code b[bOff + l * bRowStride + j * bColStride]}. C is row-major with leading dimension {@code ldc}.
 *
 * <p>The work is split into tiles of C (rows x columns); each tile walks k in blocks, packs the B block
 * (k-block x tile columns) contiguously into a thread-confined buffer, and for every row of the tile adds
 * four rank-1 updates per pass along the row: {@code c[j] += a0*b0[j] + a1*b1[j] + a2*b2[j] + a3*b3[j]},
 * a loop the JIT vectorises. This scalar path runs when the Vector API module is absent; otherwise
 * {@link VectorSgemm} (packed panels, register-tiled micro-kernel) does the work.
 */
public final class Sgemm {
    /**
     * True when jdk.incubator.vector is in the boot layer (java --add-modules jdk.incubator.vector) and
     * not switched off with -Djconv.vector=false.
     */
    public static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"false".equals(System.getProperty("jconv.vector"));
    static final int TILE_M = 64;
    static final int TILE_N = 256;
    static final int BLOCK_K = 256;

    private Sgemm() {
    }

    /** See the class comment. {@code accumulate == false} overwrites C. */
    public static void multiply(int m, int n, int k,
                                float[] a, int aOff, int aRowStride, int aColStride,
                                float[] b, int bOff, int bRowStride, int bColStride,
                                float[] c, int cOff, int ldc, boolean accumulate, Parallel par) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (VECTOR) {
            VectorSgemm.multiply(m, n, k, a, aOff, aRowStride, aColStride, b, bOff, bRowStride, bColStride, c, cOff, ldc,
                    accumulate, par);
        } else {
            scalar(m, n, k, a, aOff, aRowStride, aColStride, b, bOff, bRowStride, bColStride, c, cOff, ldc, accumulate, par);
        }
    }

    /** Floats needed to hold a k x n matrix B in the layout {@link #packBRow} writes and {@link #multiplyPackedB} reads. */
    public static long packedBSize(int k, int n) {
        return VECTOR ? VectorSgemm.packedBSize(k, n) : (long) k * n;
    }

    /**
     * Stores row {@code l} of a k x n matrix B (given contiguously at src[srcOff ..]) into {@code packed}:
     * the GEMM's panel layout with the Vector API, plain row-major without.
     */
    public static void packBRow(int l, int k, int n, float[] src, int srcOff, float[] packed) {
        if (VECTOR) {
            VectorSgemm.packBRow(l, k, n, src, srcOff, packed);
        } else {
            System.arraycopy(src, srcOff, packed, l * n, n);
        }
    }

    /** Floats needed to hold an m x k matrix A in the layout {@link #packA} writes. */
    public static long packedASize(int m, int k) {
        return VECTOR ? VectorSgemm.packedASize(m, k) : (long) m * k;
    }

    /**
     * Stores A(i, l) = a[aOff + i*aRowStride + l*aColStride] (m x k) at packed[packedOff ..] in the layout
     * {@link #multiplyPacked} reads: the GEMM's panel layout with the Vector API, plain row-major without.
     * Pack once, multiply many times (the convolution packs its weights once per call).
     */
    public static void packA(int m, int k, float[] a, int aOff, int aRowStride, int aColStride, float[] packed, int packedOff) {
        if (VECTOR) {
            VectorSgemm.packA(m, k, a, aOff, aRowStride, aColStride, packed, packedOff);
            return;
        }
        for (int i = 0; i < m; i++) {
            for (int l = 0; l < k; l++) {
                packed[packedOff + i * k + l] = a[aOff + i * aRowStride + l * aColStride];
            }
        }
    }

    /**
     * C[m x n] (+)= A * B with A packed by {@link #packA} (at packedA[aOff ..]) and B by {@link #packBRow}.
     * Threads split the columns.
     */
    public static void multiplyPacked(int m, int n, int k, float[] packedA, int aOff, float[] packedB,
                                      float[] c, int cOff, int ldc, boolean accumulate, Parallel par) {
        if (m <= 0 || n <= 0) {
            return;
        }
        if (!VECTOR) {
            scalar(m, n, k, packedA, aOff, k, 1, packedB, 0, n, 1, c, cOff, ldc, accumulate, par);
            return;
        }
        if (!accumulate) {
            for (int i = 0; i < m; i++) {
                java.util.Arrays.fill(c, cOff + i * ldc, cOff + i * ldc + n, 0f);
            }
        }
        int panels = VectorSgemm.ceilDiv(n, VectorSgemm.NR);
        int chunks = Math.min(panels, par.threads() == 1 ? 1 : 4 * par.threads());
        par.forEach(chunks, t -> VectorSgemm.multiplyPacked(m, n, k, packedA, aOff, packedB, c, cOff, ldc,
                (int) ((long) panels * t / chunks), (int) ((long) panels * (t + 1) / chunks)));
    }

    /** The portable path (no Vector API); package-private so tests can compare both paths. */
    static void scalar(int m, int n, int k,
                       float[] a, int aOff, int aRowStride, int aColStride,
                       float[] b, int bOff, int bRowStride, int bColStride,
                       float[] c, int cOff, int ldc, boolean accumulate, Parallel par) {
        int tm = TILE_M, tn = TILE_N;
        int minTiles = par.threads() == 1 ? 1 : 2 * par.threads();
        while (ceilDiv(m, tm) * ceilDiv(n, tn) < minTiles && (tn > 64 || tm > 8)) {
            if (tn > 64) {
                tn /= 2;
            } else {
                tm /= 2;
            }
        }
        int mTiles = ceilDiv(m, tm), nTiles = ceilDiv(n, tn);
        int tileM = tm, tileN = tn;
        par.forEach(mTiles * nTiles, t -> {
            int i0 = (t / nTiles) * tileM, j0 = (t % nTiles) * tileN;
            tile(i0, Math.min(m, i0 + tileM), j0, Math.min(n, j0 + tileN), k, a, aOff, aRowStride, aColStride,
                    b, bOff, bRowStride, bColStride, c, cOff, ldc, accumulate);
        });
    }

    private static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }

    private static void tile(int i0, int i1, int j0, int j1, int k,
                             float[] a, int aOff, int aRow, int aCol,
                             float[] b, int bOff, int bRow, int bCol,
                             float[] c, int cOff, int ldc, boolean accumulate) {
        int nb = j1 - j0;
        if (!accumulate) {
            for (int i = i0; i < i1; i++) {
                int row = cOff + i * ldc + j0;
                java.util.Arrays.fill(c, row, row + nb, 0f);
            }
        }
        float[] pack = Workspace.get(Workspace.PACK, (long) Math.min(k, BLOCK_K) * nb);
        for (int k0 = 0; k0 < k; k0 += BLOCK_K) {
            int kb = Math.min(BLOCK_K, k - k0);
            packB(b, bOff + k0 * bRow + j0 * bCol, bRow, bCol, kb, nb, pack);
            for (int i = i0; i < i1; i++) {
                rowUpdate(c, cOff + i * ldc + j0, nb, a, aOff + i * aRow + k0 * aCol, aCol, kb, pack);
            }
        }
    }

    /** pack[l * nb + j] = B(l, j) for the block. */
    private static void packB(float[] b, int base, int bRow, int bCol, int kb, int nb, float[] pack) {
        for (int l = 0; l < kb; l++) {
            int src = base + l * bRow;
            int dst = l * nb;
            if (bCol == 1) {
                System.arraycopy(b, src, pack, dst, nb);
            } else {
                for (int j = 0; j < nb; j++) {
                    pack[dst + j] = b[src + j * bCol];
                }
            }
        }
    }

    /** c[cRow + j] += sum_l A(l) * pack[l * nb + j] over one k block. */
    private static void rowUpdate(float[] c, int cRow, int nb, float[] a, int aBase, int aCol, int kb, float[] pack) {
        int l = 0;
        for (; l + 3 < kb; l += 4) {
            float a0 = a[aBase + l * aCol], a1 = a[aBase + (l + 1) * aCol];
            float a2 = a[aBase + (l + 2) * aCol], a3 = a[aBase + (l + 3) * aCol];
            if (a0 == 0f && a1 == 0f && a2 == 0f && a3 == 0f) {
                continue;
            }
            int b0 = l * nb, b1 = b0 + nb, b2 = b1 + nb, b3 = b2 + nb;
            for (int j = 0; j < nb; j++) {
                c[cRow + j] += a0 * pack[b0 + j] + a1 * pack[b1 + j] + a2 * pack[b2 + j] + a3 * pack[b3 + j];
            }
        }
        for (; l < kb; l++) {
            float a0 = a[aBase + l * aCol];
            if (a0 == 0f) {
                continue;
            }
            int b0 = l * nb;
            for (int j = 0; j < nb; j++) {
                c[cRow + j] += a0 * pack[b0 + j];
            }
        }
    }
}
