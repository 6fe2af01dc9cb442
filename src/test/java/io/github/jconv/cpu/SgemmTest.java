package io.github.jconv.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every GEMM path (scalar, the dispatching one, and packed operands) against a float64 product. */
class SgemmTest {
    private static final int[][] SIZES = {{1, 1, 1}, {3, 5, 7}, {14, 32, 128}, {64, 256, 256}, {65, 300, 257}, {7, 1000, 3},
            {130, 17, 520}, {29, 33, 129}};

    interface Gemm {
        void run(int m, int n, int k, float[] a, int aOff, int ar, int ac, float[] b, int bOff, int br, int bc, float[] c,
                 int ldc, boolean acc, Parallel par);
    }

    @Test
    void scalarPathMatches() {
        check((m, n, k, a, aOff, ar, ac, b, bOff, br, bc, c, ldc, acc, par) ->
                Sgemm.scalar(m, n, k, a, aOff, ar, ac, b, bOff, br, bc, c, 0, ldc, acc, par));
    }

    @Test
    void dispatchingPathMatches() {
        check((m, n, k, a, aOff, ar, ac, b, bOff, br, bc, c, ldc, acc, par) ->
                Sgemm.multiply(m, n, k, a, aOff, ar, ac, b, bOff, br, bc, c, 0, ldc, acc, par));
    }

    @Test
    void packedPathMatches() {
        check((m, n, k, a, aOff, ar, ac, b, bOff, br, bc, c, ldc, acc, par) -> {
            float[] ap = new float[(int) Sgemm.packedASize(m, k)];
            Sgemm.packA(m, k, a, aOff, ar, ac, ap, 0);
            float[] bp = new float[(int) Sgemm.packedBSize(k, n)];
            float[] row = new float[n];
            for (int l = 0; l < k; l++) {
                for (int j = 0; j < n; j++) {
                    row[j] = b[bOff + l * br + j * bc];
                }
                Sgemm.packBRow(l, k, n, row, 0, bp);
            }
            Sgemm.multiplyPacked(m, n, k, ap, 0, bp, c, 0, ldc, acc, par);
        });
    }

    @Test
    void vectorPathIsOnInTheTestJvm() {
        assertTrue(Sgemm.VECTOR, "surefire adds jdk.incubator.vector; the scalar-path execution checks the other side");
    }

    private static void check(Gemm gemm) {
        Random rnd = new Random(1);
        for (int[] mnk : SIZES) {
            int m = mnk[0], n = mnk[1], k = mnk[2];
            float[] a = new float[m * k + 3], b = new float[k * n + 5];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rnd.nextGaussian();
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) rnd.nextGaussian();
            }
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    for (int threads : new int[] {1, 3}) {
                        for (boolean acc : new boolean[] {false, true}) {
                            int ar = ta ? 1 : k, ac = ta ? m : 1, br = tb ? 1 : n, bc = tb ? k : 1;
                            int ldc = n + 2;
                            float[] c = new float[m * ldc];
                            java.util.Arrays.fill(c, 0.5f);
                            gemm.run(m, n, k, a, 3, ar, ac, b, 5, br, bc, c, ldc, acc, Parallel.of(threads));
                            for (int i = 0; i < m; i++) {
                                for (int j = 0; j < n; j++) {
                                    double want = acc ? 0.5 : 0, mag = acc ? 0.5 : 0;
                                    for (int l = 0; l < k; l++) {
                                        double p = (double) a[3 + i * ar + l * ac] * b[5 + l * br + j * bc];
                                        want += p;
                                        mag += Math.abs(p);
                                    }
                                    assertEquals(want, c[i * ldc + j], 4 * Math.sqrt(k + 1) * Math.ulp(1f) * mag + 1e-30,
                                            "m=" + m + " n=" + n + " k=" + k + " ta=" + ta + " tb=" + tb + " acc=" + acc);
                                }
                                for (int j = n; j < ldc; j++) {
                                    assertEquals(0.5f, c[i * ldc + j], "padding columns of C untouched");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
