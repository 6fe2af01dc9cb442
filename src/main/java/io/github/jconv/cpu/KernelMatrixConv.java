package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * The convolution as one dense matrix per group. Wm maps a group's input image (C/G*H*W values) to its
 * output image (K/G*P*Q values): conv = Wm x and conv_transpose2d = Wm^T y, each one GEMM over the whole
 * batch. Jconv stores Wm transposed, WmT[(c, h, w)][(k, p, q)] = w[k][c][r][s] where (h, w) is the input
 * pixel that tap (r, s) of output (p, q) reads. Wm is mostly zeros, so this form is for small problems
 * and as an independent check; it is refused above {@link #MAX_MATRIX_ELEMENTS}.
 *
 * <p>Non-finite input: the GEMM multiplies every input value by a whole column of Wm, structural zeros included,
 * and 0 x NaN = 0 x Inf = NaN, so one NaN pixel would make every output of its sample NaN. An input holding NaN
 * or Inf is therefore run with those values replaced by 0, and the outputs that read one of them (the only ones
 * PyTorch makes non-finite) then take their NaN or Inf from the float64 reference.
 */
final class KernelMatrixConv implements CpuConvolution {
    /** 32 Mi floats (128 MiB). */
    static final long MAX_MATRIX_ELEMENTS = 1L << 25;

    @Override
    public String cannotImplement(ConvGeometry g) {
        long rows = (long) g.cPerGroup() * g.h * g.w, cols = (long) g.kPerGroup() * g.p * g.q;
        if (rows * cols > MAX_MATRIX_ELEMENTS) {
            return "kernel-matrix needs a " + rows + " x " + cols + " matrix (" + (rows * cols * 4 >> 20)
                    + " MiB), above its limit of " + MAX_MATRIX_ELEMENTS + " elements (" + (MAX_MATRIX_ELEMENTS * 4 >> 20)
                    + " MiB); use im2col or direct";
        }
        return null;
    }

    @Override
    public void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, Finish done, Parallel par) {
        float[] w = weights.raw;
        float[] finite = withoutNonFinite(x);
        gemmForward(g, finite == null ? x : finite, w, bias, y, par);
        if (finite != null) {
            recomputeReaders(g, x, w, bias, y, par);
        }
        finishPlanes(g.n * g.k, g.p * g.q, done, par);
    }

    /** The output is final only at the end (one GEMM over every sample): its planes reported then, in parallel. */
    private static void finishPlanes(int planes, int plane, Finish done, Parallel par) {
        par.forEach(planes, i -> done.region(i * plane, (i + 1) * plane));
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights weights, float[] bias, float[] x, Finish done, Parallel par) {
        float[] w = weights.raw;
        float[] finite = withoutNonFinite(y);
        gemmTransposed(g, finite == null ? y : finite, w, bias, x, par);
        if (finite != null) {
            recomputeReaders(g, y, w, bias, x, par);
        }
        finishPlanes(g.n * g.c, g.h * g.w, done, par);
    }

    /** Null when every value is finite, else a copy with 0 in place of each NaN and infinity. */
    private static float[] withoutNonFinite(float[] a) {
        int i = 0;
        while (i < a.length && Float.isFinite(a[i])) {
            i++;
        }
        if (i == a.length) {
            return null;
        }
        float[] copy = a.clone();
        for (; i < copy.length; i++) {
            if (!Float.isFinite(copy[i])) {
                copy[i] = 0f;
            }
        }
        return copy;
    }

    /**
     * Gives every output element that reads a non-finite input value its value from the float64 reference on the
     * original {@code input}: exactly those elements are non-finite there (a float32 product cannot overflow a double,
     * nor can any sum of them), and no other element of {@code output} changes.
     */
    private static void recomputeReaders(ConvGeometry g, float[] input, float[] w, float[] bias, float[] output, Parallel par) {
        double[] ref = ReferenceConv.compute(g, input, w, bias, par);
        for (int o = 0; o < output.length; o++) {
            if (!Double.isFinite(ref[o])) {
                output[o] = (float) ref[o];
            }
        }
    }

    private static void gemmForward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par) {
        int chw = g.c * g.h * g.w, kpq = g.k * g.p * g.q;
        int inSize = g.cPerGroup() * g.h * g.w, outSize = g.kPerGroup() * g.p * g.q;
        for (int n = 0; n < g.n; n++) {
            CpuConvolution.fillBias(y, n * kpq, g.k, g.p * g.q, bias, 0);
        }
        for (int grp = 0; grp < g.groups; grp++) {
            float[] wmT = build(g, w, grp, par);
            // y_g[n][o] += sum_i x_g[n][i] * WmT[i][o]
            Sgemm.multiply(g.n, outSize, inSize, x, grp * inSize, chw, 1, wmT, 0, outSize, 1, y, grp * outSize, kpq,
                    true, par);
        }
    }

    private static void gemmTransposed(ConvGeometry g, float[] y, float[] w, float[] bias, float[] x, Parallel par) {
        int chw = g.c * g.h * g.w, kpq = g.k * g.p * g.q;
        int inSize = g.cPerGroup() * g.h * g.w, outSize = g.kPerGroup() * g.p * g.q;
        for (int n = 0; n < g.n; n++) {
            CpuConvolution.fillBias(x, n * chw, g.c, g.h * g.w, bias, 0);
        }
        for (int grp = 0; grp < g.groups; grp++) {
            float[] wmT = build(g, w, grp, par);
            // x_g[n][i] += sum_o y_g[n][o] * Wm[o][i], with Wm[o][i] = WmT[i][o]
            Sgemm.multiply(g.n, inSize, outSize, y, grp * outSize, kpq, 1, wmT, 0, 1, outSize, x, grp * inSize, chw,
                    true, par);
        }
    }

    /** WmT of group {@code grp}: (C/G*H*W) x (K/G*P*Q), row-major, in the thread's matrix workspace. */
    static float[] build(ConvGeometry g, float[] w, int grp, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int outSize = kg * g.p * g.q;
        float[] wmT = Workspace.get(Workspace.MATRIX, (long) cg * g.h * g.w * outSize);
        par.forEach(cg, c -> {
            int rowsBase = c * g.h * g.w;
            java.util.Arrays.fill(wmT, rowsBase * outSize, (rowsBase + g.h * g.w) * outSize, 0f);
            for (int kk = 0; kk < kg; kk++) {
                int k = grp * kg + kk;
                for (int r = 0; r < g.r; r++) {
                    int rowOff = r * g.dilationH - g.padTop;
                    int p0 = Ranges.first(rowOff, g.strideH, g.p), p1 = Ranges.end(rowOff, g.strideH, g.h, g.p);
                    for (int s = 0; s < g.s; s++) {
                        float wv = w[((k * cg + c) * g.r + r) * g.s + s];
                        int colOff = s * g.dilationW - g.padLeft;
                        int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                        for (int p = p0; p < p1; p++) {
                            int ih = p * g.strideH + rowOff;
                            for (int q = q0; q < q1; q++) {
                                int iw = q * g.strideW + colOff;
                                wmT[(rowsBase + ih * g.w + iw) * outSize + (kk * g.p + p) * g.q + q] = wv;
                            }
                        }
                    }
                }
            }
        });
        return wmT;
    }
}
