package io.github.jconv.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * SGEMM on the Vector API (jdk.incubator.vector), loaded only when that module is present
 * ({@link Sgemm#VECTOR}). Goto/BLIS structure:
 * <ul>
 *   <li>A is packed into MR-row panels, B into NR-column panels, both cut into k-blocks of KC and
 *       zero-padded at the edges. Block kb of packed A starts at kb*KC*mPad and holds its panels one
 *       after another, A(i, l) at panel[l*MR + i]; packed B likewise with B(l, j) at panel[l*NR + j].</li>
 *   <li>For every k-block, every NR panel of B (16 KiB, kept in L1) meets every MR panel of A (streamed
 *       from L2) in the micro-kernel, which holds an MR x NR tile of C in 24 vector registers and does one
 *       broadcast-FMA per row and vector for each l.</li>
 *   <li>The convolution (im2col) writes its unfolded input straight into packed B ({@link #packBRow}),
 *       so B is never packed twice; the general {@link #multiply} packs per tile.</li>
 * </ul>
 * Tile sizes were chosen by measurement on the 2-core AVX-512 development machine (see the README).
 */
final class VectorSgemm {
    /** A {@code static final} species: a non-constant one was measured 23x slower. */
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /**
     * Rows of the register tile. 14 was measured a little faster, but its kernel is too large for C1's tier 3
     * ("out of virtual registers"), and then HotSpot can stay on slow tier-2 code for the whole run; at 12 the
     * kernel takes the normal C1-then-C2 path.
     */
    static final int MR = 12;
    static final int NR = 2 * V;
    static final int KC = 128;
    static final int MC = 9 * MR;
    static final int NC = 32 * NR;
    /**
     * Floats between consecutive B panels beyond the panel itself. Panels of exactly KC*NR floats are 16 KiB
     * apart, so the stores of one B row into all panels would fall into one L1 set; 16 more floats spread them.
     */
    static final int B_PAD = 16;

    private VectorSgemm() {
    }

    static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }

    /** Floats of packed A for an m x k matrix. */
    static long packedASize(int m, int k) {
        return (long) ceilDiv(m, MR) * MR * k;
    }

    /** Floats of packed B for a k x n matrix. */
    static long packedBSize(int k, int n) {
        return (long) ceilDiv(n, NR) * ((long) NR * k + (long) B_PAD * ceilDiv(k, KC));
    }

    /** Start of the k-block holding row k0 (a multiple of KC) in packed B. */
    private static int bBlock(int k0, int n) {
        return (k0 / KC) * ceilDiv(n, NR) * (KC * NR + B_PAD);
    }

    /** Packs A(i, l) = a[aOff + i*aRow + l*aCol] (m x k) into {@code ap}. */
    static void packA(int m, int k, float[] a, int aOff, int aRow, int aCol, float[] ap, int apOff) {
        int mPad = ceilDiv(m, MR) * MR;
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = Math.min(KC, k - k0);
            for (int p = 0; p * MR < m; p++) {
                int dst = apOff + k0 * mPad + p * MR * kc;
                int rows = Math.min(MR, m - p * MR);
                for (int r = 0; r < rows; r++) {
                    int src = aOff + (p * MR + r) * aRow + k0 * aCol;
                    for (int l = 0; l < kc; l++) {
                        ap[dst + l * MR + r] = a[src + l * aCol];
                    }
                }
                for (int r = rows; r < MR; r++) {
                    for (int l = 0; l < kc; l++) {
                        ap[dst + l * MR + r] = 0f;
                    }
                }
            }
        }
    }

    /**
     * Stores rows [p*MR, p*MR + MR) of an m x k matrix A, given as MR rows of k floats at rows[0 ..] (zeros past m), at
     * ap[apOff ..] in {@link #packA}'s layout: written in order, each value's MR rows read side by side.
     */
    static void packAPanel(int p, int m, int k, float[] rows, float[] ap, int apOff) {
        int mPad = ceilDiv(m, MR) * MR;
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = Math.min(KC, k - k0), dst = apOff + k0 * mPad + p * MR * kc;
            for (int l = 0; l < kc; l++) {
                int src = k0 + l, d = dst + l * MR;
                for (int r = 0; r < MR; r++) {
                    ap[d + r] = rows[r * k + src];
                }
            }
        }
    }

    /** Packs row {@code l} of a k x n matrix B, given contiguously at src[srcOff ..], into {@code bp}. */
    static void packBRow(int l, int k, int n, float[] src, int srcOff, float[] bp) {
        int k0 = l - l % KC, kc = Math.min(KC, k - k0);
        int dst = bBlock(k0, n) + (l - k0) * NR;
        int q = 0;
        for (int j = 0; j < n; j += NR, q++) {
            int cols = Math.min(NR, n - j);
            int d = dst + q * (NR * kc + B_PAD);
            System.arraycopy(src, srcOff + j, bp, d, cols);
            if (cols < NR) {
                java.util.Arrays.fill(bp, d + cols, d + NR, 0f);
            }
        }
    }

    /** Packs B(l, j) = b[bOff + l*bRow + j*bCol] (k x n) into {@code bp}. */
    static void packB(int k, int n, float[] b, int bOff, int bRow, int bCol, float[] bp) {
        if (bCol == 1) {
            for (int l = 0; l < k; l++) {
                packBRow(l, k, n, b, bOff + l * bRow, bp);
            }
            return;
        }
        int nPad = ceilDiv(n, NR) * NR;
        if (bRow == 1) { // B stored by columns (the weight gradient's col^T): read each column's run of kc values in order
            for (int k0 = 0; k0 < k; k0 += KC) {
                int kc = Math.min(KC, k - k0), block = bBlock(k0, n);
                for (int j = 0; j < nPad; j++) {
                    int dst = block + (j / NR) * (NR * kc + B_PAD) + j % NR, src = bOff + k0 + j * bCol;
                    for (int l = 0; l < kc; l++) {
                        bp[dst + l * NR] = j < n ? b[src + l] : 0f;
                    }
                }
            }
            return;
        }
        for (int l = 0; l < k; l++) {
            int k0 = l - l % KC, kc = Math.min(KC, k - k0);
            int dst = bBlock(k0, n) + (l - k0) * NR;
            for (int j = 0; j < nPad; j++) {
                bp[dst + (j / NR) * (NR * kc + B_PAD) + j % NR] = j < n ? b[bOff + l * bRow + j * bCol] : 0f;
            }
        }
    }

    /**
     * C[m x n] += packed A (at ap[apOff ..]) * packed B, for the column panels [q0, q1) only (so callers can split the
     * columns over threads). C is row-major with leading dimension ldc.
     */
    static void multiplyPacked(int m, int n, int k, float[] ap, int apOff, float[] bp, float[] c, int cOff, int ldc,
                               int q0, int q1) {
        int mPanels = ceilDiv(m, MR), mPad = mPanels * MR;
        float[] scratch = null;
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = Math.min(KC, k - k0);
            for (int q = q0; q < q1; q++) {
                int j = q * NR, nr = Math.min(NR, n - j);
                int bPanel = bBlock(k0, n) + q * (NR * kc + B_PAD);
                for (int p = 0; p < mPanels; p++) {
                    int i = p * MR, mr = Math.min(MR, m - i);
                    int aPanel = apOff + k0 * mPad + p * MR * kc;
                    if (mr == MR && nr == NR) {
                        kernel(kc, ap, aPanel, bp, bPanel, c, cOff + i * ldc + j, ldc);
                        continue;
                    }
                    if (scratch == null) {
                        scratch = Workspace.get(Workspace.SCRATCH, MR * NR);
                    }
                    java.util.Arrays.fill(scratch, 0, MR * NR, 0f);
                    kernel(kc, ap, aPanel, bp, bPanel, scratch, 0, NR);
                    for (int r = 0; r < mr; r++) {
                        int dst = cOff + (i + r) * ldc + j;
                        for (int x = 0; x < nr; x++) {
                            c[dst + x] += scratch[r * NR + x];
                        }
                    }
                }
            }
        }
    }

    /** C (+)= A * B with both operands strided (see {@link Sgemm}); tiles of C in parallel, each packing its own blocks. */
    static void multiply(int m, int n, int k,
                         float[] a, int aOff, int aRow, int aCol,
                         float[] b, int bOff, int bRow, int bCol,
                         float[] c, int cOff, int ldc, boolean accumulate, Parallel par) {
        int tm = MC, tn = NC;
        int minTiles = par.threads() == 1 ? 1 : 2 * par.threads();
        while (ceilDiv(m, tm) * ceilDiv(n, tn) < minTiles && (tn > NR || tm > MR)) {
            if (tn > NR && (tn >= tm || tm <= MR)) {
                tn = Math.max(NR, ceilDiv(tn / 2, NR) * NR);
            } else {
                tm = Math.max(MR, ceilDiv(tm / 2, MR) * MR);
            }
        }
        int mTiles = ceilDiv(m, tm), nTiles = ceilDiv(n, tn);
        int tileM = tm, tileN = tn;
        par.forEach(mTiles * nTiles, t -> {
            int i0 = (t / nTiles) * tileM, j0 = (t % nTiles) * tileN;
            int mt = Math.min(tileM, m - i0), nt = Math.min(tileN, n - j0);
            if (!accumulate) {
                for (int i = i0; i < i0 + mt; i++) {
                    java.util.Arrays.fill(c, cOff + i * ldc + j0, cOff + i * ldc + j0 + nt, 0f);
                }
            }
            int kcMax = Math.min(KC, k);
            float[] ap = Workspace.get(Workspace.PACK, packedASize(mt, kcMax));
            float[] bp = Workspace.get(Workspace.PACK_B, packedBSize(kcMax, nt));
            for (int k0 = 0; k0 < k; k0 += KC) {
                int kc = Math.min(KC, k - k0);
                packA(mt, kc, a, aOff + i0 * aRow + k0 * aCol, aRow, aCol, ap, 0);
                packB(kc, nt, b, bOff + k0 * bRow + j0 * bCol, bRow, bCol, bp);
                multiplyPacked(mt, nt, kc, ap, 0, bp, c, cOff + i0 * ldc + j0, ldc, 0, ceilDiv(nt, NR));
            }
        });
    }

    /** C[12 x 2V] += Ap panel * Bp panel over kc; full tile stored at c[cOff + i*ldc + j]. */
    static void kernel(int kc, float[] ap, int aOff, float[] bp, int bOff, float[] c, int cOff, int ldc) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S), c10 = FloatVector.zero(S), c11 = FloatVector.zero(S), c20 = FloatVector.zero(S), c21 = FloatVector.zero(S), c30 = FloatVector.zero(S), c31 = FloatVector.zero(S), c40 = FloatVector.zero(S), c41 = FloatVector.zero(S), c50 = FloatVector.zero(S), c51 = FloatVector.zero(S), c60 = FloatVector.zero(S), c61 = FloatVector.zero(S), c70 = FloatVector.zero(S), c71 = FloatVector.zero(S), c80 = FloatVector.zero(S), c81 = FloatVector.zero(S), c90 = FloatVector.zero(S), c91 = FloatVector.zero(S), c100 = FloatVector.zero(S), c101 = FloatVector.zero(S), c110 = FloatVector.zero(S), c111 = FloatVector.zero(S);
        for (int l = 0; l < kc; l++) {
            int b = bOff + l * NR, a = aOff + l * MR;
            FloatVector b0 = FloatVector.fromArray(S, bp, b + 0 * V);
            FloatVector b1 = FloatVector.fromArray(S, bp, b + 1 * V);
            FloatVector a0 = FloatVector.broadcast(S, ap[a + 0]);
            c00 = a0.fma(b0, c00);
            c01 = a0.fma(b1, c01);
            FloatVector a1 = FloatVector.broadcast(S, ap[a + 1]);
            c10 = a1.fma(b0, c10);
            c11 = a1.fma(b1, c11);
            FloatVector a2 = FloatVector.broadcast(S, ap[a + 2]);
            c20 = a2.fma(b0, c20);
            c21 = a2.fma(b1, c21);
            FloatVector a3 = FloatVector.broadcast(S, ap[a + 3]);
            c30 = a3.fma(b0, c30);
            c31 = a3.fma(b1, c31);
            FloatVector a4 = FloatVector.broadcast(S, ap[a + 4]);
            c40 = a4.fma(b0, c40);
            c41 = a4.fma(b1, c41);
            FloatVector a5 = FloatVector.broadcast(S, ap[a + 5]);
            c50 = a5.fma(b0, c50);
            c51 = a5.fma(b1, c51);
            FloatVector a6 = FloatVector.broadcast(S, ap[a + 6]);
            c60 = a6.fma(b0, c60);
            c61 = a6.fma(b1, c61);
            FloatVector a7 = FloatVector.broadcast(S, ap[a + 7]);
            c70 = a7.fma(b0, c70);
            c71 = a7.fma(b1, c71);
            FloatVector a8 = FloatVector.broadcast(S, ap[a + 8]);
            c80 = a8.fma(b0, c80);
            c81 = a8.fma(b1, c81);
            FloatVector a9 = FloatVector.broadcast(S, ap[a + 9]);
            c90 = a9.fma(b0, c90);
            c91 = a9.fma(b1, c91);
            FloatVector a10 = FloatVector.broadcast(S, ap[a + 10]);
            c100 = a10.fma(b0, c100);
            c101 = a10.fma(b1, c101);
            FloatVector a11 = FloatVector.broadcast(S, ap[a + 11]);
            c110 = a11.fma(b0, c110);
            c111 = a11.fma(b1, c111);
        }
        c00.add(FloatVector.fromArray(S, c, cOff + 0 * ldc + 0 * V)).intoArray(c, cOff + 0 * ldc + 0 * V);
        c01.add(FloatVector.fromArray(S, c, cOff + 0 * ldc + 1 * V)).intoArray(c, cOff + 0 * ldc + 1 * V);
        c10.add(FloatVector.fromArray(S, c, cOff + 1 * ldc + 0 * V)).intoArray(c, cOff + 1 * ldc + 0 * V);
        c11.add(FloatVector.fromArray(S, c, cOff + 1 * ldc + 1 * V)).intoArray(c, cOff + 1 * ldc + 1 * V);
        c20.add(FloatVector.fromArray(S, c, cOff + 2 * ldc + 0 * V)).intoArray(c, cOff + 2 * ldc + 0 * V);
        c21.add(FloatVector.fromArray(S, c, cOff + 2 * ldc + 1 * V)).intoArray(c, cOff + 2 * ldc + 1 * V);
        c30.add(FloatVector.fromArray(S, c, cOff + 3 * ldc + 0 * V)).intoArray(c, cOff + 3 * ldc + 0 * V);
        c31.add(FloatVector.fromArray(S, c, cOff + 3 * ldc + 1 * V)).intoArray(c, cOff + 3 * ldc + 1 * V);
        c40.add(FloatVector.fromArray(S, c, cOff + 4 * ldc + 0 * V)).intoArray(c, cOff + 4 * ldc + 0 * V);
        c41.add(FloatVector.fromArray(S, c, cOff + 4 * ldc + 1 * V)).intoArray(c, cOff + 4 * ldc + 1 * V);
        c50.add(FloatVector.fromArray(S, c, cOff + 5 * ldc + 0 * V)).intoArray(c, cOff + 5 * ldc + 0 * V);
        c51.add(FloatVector.fromArray(S, c, cOff + 5 * ldc + 1 * V)).intoArray(c, cOff + 5 * ldc + 1 * V);
        c60.add(FloatVector.fromArray(S, c, cOff + 6 * ldc + 0 * V)).intoArray(c, cOff + 6 * ldc + 0 * V);
        c61.add(FloatVector.fromArray(S, c, cOff + 6 * ldc + 1 * V)).intoArray(c, cOff + 6 * ldc + 1 * V);
        c70.add(FloatVector.fromArray(S, c, cOff + 7 * ldc + 0 * V)).intoArray(c, cOff + 7 * ldc + 0 * V);
        c71.add(FloatVector.fromArray(S, c, cOff + 7 * ldc + 1 * V)).intoArray(c, cOff + 7 * ldc + 1 * V);
        c80.add(FloatVector.fromArray(S, c, cOff + 8 * ldc + 0 * V)).intoArray(c, cOff + 8 * ldc + 0 * V);
        c81.add(FloatVector.fromArray(S, c, cOff + 8 * ldc + 1 * V)).intoArray(c, cOff + 8 * ldc + 1 * V);
        c90.add(FloatVector.fromArray(S, c, cOff + 9 * ldc + 0 * V)).intoArray(c, cOff + 9 * ldc + 0 * V);
        c91.add(FloatVector.fromArray(S, c, cOff + 9 * ldc + 1 * V)).intoArray(c, cOff + 9 * ldc + 1 * V);
        c100.add(FloatVector.fromArray(S, c, cOff + 10 * ldc + 0 * V)).intoArray(c, cOff + 10 * ldc + 0 * V);
        c101.add(FloatVector.fromArray(S, c, cOff + 10 * ldc + 1 * V)).intoArray(c, cOff + 10 * ldc + 1 * V);
        c110.add(FloatVector.fromArray(S, c, cOff + 11 * ldc + 0 * V)).intoArray(c, cOff + 11 * ldc + 0 * V);
        c111.add(FloatVector.fromArray(S, c, cOff + 11 * ldc + 1 * V)).intoArray(c, cOff + 11 * ldc + 1 * V);
    }
}
