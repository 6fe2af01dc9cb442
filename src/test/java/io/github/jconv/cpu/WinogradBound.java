package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * The rounding-error bound of {@link VectorWinograd}'s F(4x4, 3x3), element by element: the computed output differs from
 * the exact convolution by at most {@link #factor} x eps x |A^T| [sum_c (|G||w||G^T|) .* (|B^T||d||B|)] |A| (+|b|),
 * the transforms taken with absolute values over each tile's absolute 6x6 input patch d. That magnitude is at least
 * sum |x||w| (the triangle inequality through the exact identity), so this bound is never tighter than direct's.
 */
public final class WinogradBound {
    private static final double[][] BT = {
        {4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
    private static final double[][] G = {
        {1 / 4.0, 0, 0}, {-1 / 6.0, -1 / 6.0, -1 / 6.0}, {-1 / 6.0, 1 / 6.0, -1 / 6.0}, {1 / 24.0, 1 / 12.0, 1 / 6.0},
        {1 / 24.0, -1 / 12.0, 1 / 6.0}, {0, 0, 1}};
    private static final double[][] AT = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

    private WinogradBound() {
    }

    /**
     * Rounding steps, in units of eps: 6 for the input transform (two passes of at most 3 dependent roundings), 1 for the
     * weights' (float64, rounded once), 1 per product, 4 sqrt(C + 1) for the sum over input channels and the bias (the
     * same statistical allowance as direct's bound), 8 for the output transform (two passes of at most 4).
     */
    public static double factor(ConvGeometry g) {
        int channels = g.transposed() ? g.k : g.c;
        return (4 * Math.sqrt(channels + 1.0) + 16) * Math.ulp(1.0f);
    }

    /** The magnitude the bound scales, per output element of g (forward, or stride-1 transposed through its forward form). */
    public static double[] magnitude(ConvGeometry g, float[] x, float[] w, float[] b) {
        ConvGeometry f = g.transposed() ? StrideOneTransposed.forward(g) : g;
        float[] wf = g.transposed() ? StrideOneTransposed.flippedWeights(g, Weights.of(w), Parallel.SERIAL).raw.clone() : w;
        double[][] at = abs(AT), bt = abs(BT), gm = abs(G);
        double[] out = new double[f.n * f.k * f.p * f.q];
        double[] u = new double[f.k * f.c * 36];
        for (int kc = 0; kc < f.k * f.c; kc++) {
            double[][] gw = new double[3][3];
            for (int i = 0; i < 9; i++) {
                gw[i / 3][i % 3] = Math.abs(wf[kc * 9 + i]);
            }
            double[][] t = mul(mul(gm, gw), transpose(gm));
            for (int i = 0; i < 36; i++) {
                u[kc * 36 + i] = t[i / 6][i % 6];
            }
        }
        int th = (f.p + 3) / 4, tw = (f.q + 3) / 4;
        for (int n = 0; n < f.n; n++) {
            for (int tr = 0; tr < th; tr++) {
                for (int tc = 0; tc < tw; tc++) {
                    double[][] v = new double[f.c][];
                    for (int c = 0; c < f.c; c++) {
                        double[][] d = new double[6][6];
                        for (int r = 0; r < 6; r++) {
                            for (int s = 0; s < 6; s++) {
                                int ih = 4 * tr + r - f.padTop, iw = 4 * tc + s - f.padLeft;
                                d[r][s] = ih < 0 || ih >= f.h || iw < 0 || iw >= f.w ? 0 : Math.abs(x[((n * f.c + c) * f.h + ih) * f.w + iw]);
                            }
                        }
                        double[][] t = mul(mul(bt, d), transpose(bt));
                        v[c] = new double[36];
                        for (int i = 0; i < 36; i++) {
                            v[c][i] = t[i / 6][i % 6];
                        }
                    }
                    for (int k = 0; k < f.k; k++) {
                        double[][] m = new double[6][6];
                        for (int c = 0; c < f.c; c++) {
                            for (int i = 0; i < 36; i++) {
                                m[i / 6][i % 6] += u[(k * f.c + c) * 36 + i] * v[c][i];
                            }
                        }
                        double[][] y = mul(mul(at, m), transpose(at));
                        double bias = b == null ? 0 : Math.abs(b[k]);
                        for (int i = 0; i < 4 && 4 * tr + i < f.p; i++) {
                            for (int j = 0; j < 4 && 4 * tc + j < f.q; j++) {
                                out[((n * f.k + k) * f.p + 4 * tr + i) * f.q + 4 * tc + j] = y[i][j] + bias;
                            }
                        }
                    }
                }
            }
        }
        return out;
    }

    private static double[][] abs(double[][] a) {
        double[][] r = new double[a.length][];
        for (int i = 0; i < a.length; i++) {
            r[i] = new double[a[i].length];
            for (int j = 0; j < a[i].length; j++) {
                r[i][j] = Math.abs(a[i][j]);
            }
        }
        return r;
    }

    private static double[][] transpose(double[][] a) {
        double[][] r = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                r[j][i] = a[i][j];
            }
        }
        return r;
    }

    private static double[][] mul(double[][] a, double[][] b) {
        double[][] r = new double[a.length][b[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int l = 0; l < b.length; l++) {
                for (int j = 0; j < b[0].length; j++) {
                    r[i][j] += a[i][l] * b[l][j];
                }
            }
        }
        return r;
    }
}
