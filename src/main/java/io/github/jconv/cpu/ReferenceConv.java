package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * The oracle: plain loops, every product and sum in float64, one output element at a time. Forward
 * convolution gathers over (c, r, s); transposed convolution gathers over (k, r, s), taking only the
 * taps where (h + padTop - r * dilation) is a multiple of the stride. Parallel over output planes only,
 * so each element's summation order is fixed.
 */
public final class ReferenceConv implements CpuConvolution {
    @Override
    public void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, Finish done, Parallel par) {
        float[] w = weights.raw;
        double[] out = forwardDouble(g, x, w, bias, par);
        store(out, y, g.n * g.k, done, par);
    }

    /** y = out in float32, plane by plane in parallel, each plane reported when stored. */
    private static void store(double[] out, float[] y, int planes, Finish done, Parallel par) {
        int plane = out.length / Math.max(1, planes);
        par.forEach(planes, i -> {
            for (int j = i * plane; j < (i + 1) * plane; j++) {
                y[j] = (float) out[j];
            }
            done.region(i * plane, (i + 1) * plane);
        });
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights weights, float[] bias, float[] x, Finish done, Parallel par) {
        float[] w = weights.raw;
        double[] out = transposedDouble(g, y, w, bias, par);
        store(out, x, g.n * g.c, done, par);
    }

    /** max |y - ref| / max |ref| (the absolute error when ref is all zeros): how bench, verify and tuning judge a result. */
    public static double maxRelError(float[] y, double[] ref) {
        double scale = 0;
        for (double v : ref) {
            scale = Math.max(scale, Math.abs(v));
        }
        return maxAbsError(y, ref) / Math.max(scale, Double.MIN_NORMAL);
    }

    /** max |y - ref|. */
    public static double maxAbsError(float[] y, double[] ref) {
        double err = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(y[i] - ref[i]));
        }
        return err;
    }

    /** The op of {@code g} (forward or transposed) in float64: input is the op's input, result its output. */
    public static double[] compute(ConvGeometry g, float[] input, float[] w, float[] bias, Parallel par) {
        return g.transposed() ? transposedDouble(g, input, w, bias, par) : forwardDouble(g, input, w, bias, par);
    }

    /**
     * The oracle of a math mode: for {@link io.github.jconv.MathMode#TF32}, {@code FP16} and {@code BF16} the input and
     * weights are first rounded as tensor cores round them ({@link io.github.jconv.MathMode#roundOperand}), then every
     * product and sum is float64 (the hardware's products of rounded operands are exact; only its float32 accumulation then
     * differs); FP32 and 3xTF32 as {@link #compute(ConvGeometry, float[], float[], float[], Parallel)}. The bias is added
     * unrounded, as kernels add it.
     */
    public static double[] compute(ConvGeometry g, io.github.jconv.MathMode math, float[] input, float[] w, float[] bias, Parallel par) {
        return compute(g, math.roundOperand(input), math.roundOperand(w), bias, par);
    }

    /** y[n][k][p][q] = bias[k] + sum_{c in group, r, s} x[n][c][p*sH - padTop + r*dH][q*sW - padLeft + s*dW] * w[k][c%Cg][r][s]. */
    public static double[] forwardDouble(ConvGeometry g, float[] x, float[] w, float[] bias, Parallel par) {
        double[] y = new double[g.n * g.k * g.p * g.q];
        par.forEach(g.n * g.k, plane -> {
            int n = plane / g.k, k = plane % g.k;
            for (int p = 0; p < g.p; p++) {
                for (int q = 0; q < g.q; q++) {
                    y[(plane * g.p + p) * g.q + q] = forwardElement(g, x, w, bias, n, k, p, q);
                }
            }
        });
        return y;
    }

    /** One element of {@link #forwardDouble}: y[n][k][p][q]. */
    private static double forwardElement(ConvGeometry g, float[] x, float[] w, float[] bias, int n, int k, int p, int q) {
        int cg = g.cPerGroup();
        int c0 = (k / g.kPerGroup()) * cg;
        double acc = bias == null ? 0.0 : bias[k];
        for (int ci = 0; ci < cg; ci++) {
            for (int r = 0; r < g.r; r++) {
                int ih = p * g.strideH - g.padTop + r * g.dilationH;
                if (ih < 0 || ih >= g.h) {
                    continue;
                }
                for (int s = 0; s < g.s; s++) {
                    int iw = q * g.strideW - g.padLeft + s * g.dilationW;
                    if (iw < 0 || iw >= g.w) {
                        continue;
                    }
                    acc += (double) x[((n * g.c + c0 + ci) * g.h + ih) * g.w + iw] * (double) w[((k * cg + ci) * g.r + r) * g.s + s];
                }
            }
        }
        return acc;
    }

    /** x[n][c][h][w] = bias[c] + sum over (k in group, r, s) with h = p*sH - padTop + r*dH, w = q*sW - padLeft + s*dW of y[n][k][p][q] * w[k][c%Cg][r][s]. */
    public static double[] transposedDouble(ConvGeometry g, float[] y, float[] w, float[] bias, Parallel par) {
        double[] x = new double[g.n * g.c * g.h * g.w];
        par.forEach(g.n * g.c, plane -> {
            int n = plane / g.c, c = plane % g.c;
            for (int ih = 0; ih < g.h; ih++) {
                for (int iw = 0; iw < g.w; iw++) {
                    x[(plane * g.h + ih) * g.w + iw] = transposedElement(g, y, w, bias, n, c, ih, iw);
                }
            }
        });
        return x;
    }

    /** One element of {@link #transposedDouble}: x[n][c][ih][iw]. */
    private static double transposedElement(ConvGeometry g, float[] y, float[] w, float[] bias, int n, int c, int ih, int iw) {
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int k0 = (c / cg) * kg, ci = c % cg;
        double acc = bias == null ? 0.0 : bias[c];
        for (int kk = 0; kk < kg; kk++) {
            int k = k0 + kk;
            for (int r = 0; r < g.r; r++) {
                int ph = ih + g.padTop - r * g.dilationH;
                if (ph < 0 || ph % g.strideH != 0 || ph / g.strideH >= g.p) {
                    continue;
                }
                int p = ph / g.strideH;
                for (int s = 0; s < g.s; s++) {
                    int qw = iw + g.padLeft - s * g.dilationW;
                    if (qw < 0 || qw % g.strideW != 0 || qw / g.strideW >= g.q) {
                        continue;
                    }
                    int q = qw / g.strideW;
                    acc += (double) y[((n * g.k + k) * g.p + p) * g.q + q] * (double) w[((k * cg + ci) * g.r + r) * g.s + s];
                }
            }
        }
        return acc;
    }
}
