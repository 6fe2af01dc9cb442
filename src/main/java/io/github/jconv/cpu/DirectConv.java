package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * Direct (sliding-window) convolution in float32. Forward: one task per output plane (n, k); for every
 * tap (c, r, s) the weight is a scalar and the innermost loop runs along an output row,
 * y[p][q] += w * x[ih][q*sW + off], which the JIT vectorises when sW == 1. Transposed: one task per
 * output plane (n, c) of conv_transpose2d, scattering y[n][k][p][q] * w into it the same way. No
 * workspace. With the Vector API the forward pass is {@link Pointwise}'s GEMM for 1 x 1 layers without padding (a
 * strided one on its input's strided pixels, copied), else with stride 1 along W {@link VectorDirect}'s register-blocked kernel, and with a larger stride along W
 * and at most {@link VectorDirectDeinterleaved#MAX_CHANNELS} input channels (a stem) {@link VectorDirectDeinterleaved}'s,
 * other layers strided along W with at least {@link VectorDirectStrided#NB} output channels per group {@link VectorDirectStrided}'s.
 */
final class DirectConv implements CpuConvolution {
    @Override
    public void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, Finish done, Parallel par) {
        float[] w = weights.raw;
        if (Sgemm.VECTOR && Pointwise.applies(g)) {
            Pointwise.forward(g, x, weights, bias, y, done, par);
            return;
        }
        if (Sgemm.VECTOR && Pointwise.appliesStrided(g)) {
            Pointwise.forwardStrided(g, x, weights, bias, y, done, par);
            return;
        }
        if (Sgemm.VECTOR && g.strideW == 1) {
            VectorDirect.forward(g, x, weights, bias, y, done, par);
            return;
        }
        if (onDeinterleavedKernel(g)) {
            VectorDirectDeinterleaved.forward(g, x, weights, bias, y, done, par);
            return;
        }
        if (onStridedKernel(g)) {
            VectorDirectStrided.forward(g, x, weights, bias, y, done, par);
            return;
        }
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int pq = g.p * g.q, hw = g.h * g.w;
        par.forEach(g.n * g.k, plane -> {
            int n = plane / g.k, k = plane % g.k;
            int yBase = plane * pq;
            CpuConvolution.fillBias(y, yBase, 1, pq, bias, k);
            int xGroup = (n * g.c + (k / kg) * cg) * hw;
            for (int ci = 0; ci < cg; ci++) {
                int xPlane = xGroup + ci * hw;
                for (int r = 0; r < g.r; r++) {
                    int rowOff = r * g.dilationH - g.padTop;
                    int p0 = Ranges.first(rowOff, g.strideH, g.p), p1 = Ranges.end(rowOff, g.strideH, g.h, g.p);
                    for (int s = 0; s < g.s; s++) {
                        float wv = w[((k * cg + ci) * g.r + r) * g.s + s];
                        int colOff = s * g.dilationW - g.padLeft;
                        int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                        for (int p = p0; p < p1; p++) {
                            int yRow = yBase + p * g.q;
                            int xRow = xPlane + (p * g.strideH + rowOff) * g.w + colOff;
                            axpy(y, yRow, x, xRow, g.strideW, q0, q1, wv);
                        }
                    }
                }
            }
            done.region(yBase, yBase + pq);
        });
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights weights, float[] bias, float[] x, Finish done, Parallel par) {
        float[] w = weights.raw;
        if (Sgemm.VECTOR && StrideOneTransposed.applies(g)) {
            VectorDirect.forward(vectorForm(g), y, StrideOneTransposed.flippedWeights(g, weights, par), bias, x, done, par);
            return;
        }
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int pq = g.p * g.q, hw = g.h * g.w;
        par.forEach(g.n * g.c, plane -> {
            int n = plane / g.c, c = plane % g.c;
            int xBase = plane * hw;
            CpuConvolution.fillBias(x, xBase, 1, hw, bias, c);
            int k0 = (c / cg) * kg, ci = c % cg;
            for (int kk = 0; kk < kg; kk++) {
                int k = k0 + kk;
                int yPlane = (n * g.k + k) * pq;
                for (int r = 0; r < g.r; r++) {
                    int rowOff = r * g.dilationH - g.padTop;
                    int p0 = Ranges.first(rowOff, g.strideH, g.p), p1 = Ranges.end(rowOff, g.strideH, g.h, g.p);
                    for (int s = 0; s < g.s; s++) {
                        float wv = w[((k * cg + ci) * g.r + r) * g.s + s];
                        int colOff = s * g.dilationW - g.padLeft;
                        int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                        for (int p = p0; p < p1; p++) {
                            int xRow = xBase + (p * g.strideH + rowOff) * g.w + colOff;
                            scatter(x, xRow, g.strideW, y, yPlane + p * g.q, q0, q1, wv);
                        }
                    }
                }
            }
            done.region(xBase, xBase + hw);
        });
    }

    /** The forward convolution the Vector API kernels run for g: g itself, or a stride-1 transposed g rewritten. */
    static ConvGeometry vectorForm(ConvGeometry g) {
        return g.transposed() ? StrideOneTransposed.forward(g) : g;
    }

    /**
     * Whether {@link #forward} / {@link #transposed} end in {@link VectorDirectChannels} for g (through
     * {@link VectorDirect#forward}, which hands it the layers it {@link VectorDirectChannels#applies applies} to).
     */
    static boolean onChannelsKernel(ConvGeometry g) {
        return Sgemm.VECTOR && (g.transposed() ? StrideOneTransposed.applies(g) : g.strideW == 1)
                && VectorDirectChannels.applies(vectorForm(g));
    }

    /** Whether {@link #forward} ends in {@link Pointwise}'s 1 x 1 GEMM for g (at stride 1, or on the strided pixels copied). */
    static boolean onPointwiseKernel(ConvGeometry g) {
        return Sgemm.VECTOR && (Pointwise.applies(g) || Pointwise.appliesStrided(g));
    }

    /** Whether {@link #forward} ends in {@link VectorDirectDeinterleaved} for g (a stem: stride 2, few input channels). */
    static boolean onDeinterleavedKernel(ConvGeometry g) {
        return Sgemm.VECTOR && !Pointwise.appliesStrided(g) && VectorDirectDeinterleaved.applies(g);
    }

    /** Whether {@link #forward} ends in {@link VectorDirectStrided} for g. */
    static boolean onStridedKernel(ConvGeometry g) {
        return Sgemm.VECTOR && !onDeinterleavedKernel(g) && VectorDirectStrided.applies(g);
    }

    /** out[outRow + q] += a * in[inRow + q * stride] for q in [q0, q1). */
    static void axpy(float[] out, int outRow, float[] in, int inRow, int stride, int q0, int q1, float a) {
        if (stride == 1) {
            for (int q = q0; q < q1; q++) {
                out[outRow + q] += a * in[inRow + q];
            }
        } else {
            for (int q = q0; q < q1; q++) {
                out[outRow + q] += a * in[inRow + q * stride];
            }
        }
    }

    /** out[outRow + q * stride] += a * in[inRow + q] for q in [q0, q1). */
    static void scatter(float[] out, int outRow, int stride, float[] in, int inRow, int q0, int q1, float a) {
        if (stride == 1) {
            for (int q = q0; q < q1; q++) {
                out[outRow + q] += a * in[inRow + q];
            }
        } else {
            for (int q = q0; q < q1; q++) {
                out[outRow + q * stride] += a * in[inRow + q];
            }
        }
    }
}
