package io.github.jconv.cpu;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SgemmTest {
    @Test
    void matchesNaiveProductForEveryLayoutAndOddSizes() {
        Random rnd = new Random(1);
        int[][] sizes = {{1, 1, 1}, {3, 5, 7}, {64, 256, 256}, {65, 300, 257}, {7, 1000, 3}, {130, 17, 520}};
        for (int[] mnk : sizes) {
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
                            Sgemm.multiply(m, n, k, a, 3, ar, ac, b, 5, br, bc, c, 0, ldc, acc, Parallel.of(threads));
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
