package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * Depthwise convolution: groups == C, one input channel per group, K = C * multiplier. With the Vector API, stride-1
 * layers on maps of at most 8 x 8 with channels in multiples of 16 run on {@link VectorDepthwiseChannels}, other layers
 * of stride 1 or 2 along W on {@link VectorDepthwise} (at stride 1 on {@link VectorDirect} where that one's workspace
 * would not fit in a Java array). Otherwise one task per output plane; the loops run output row by output row so a row
 * stays in L1 while all R x S taps are added into it (the dense {@link DirectConv} instead sweeps a whole plane per
 * tap). Transposed: one task per output plane (n, c) of conv_transpose2d, gathering the multiplier's planes row by row.
 */
final class DepthwiseConv implements CpuConvolution {
    @Override
    public String cannotImplement(ConvGeometry g) {
        if (!g.isDepthwise()) {
            return g.transposed()
                    ? "depthwise needs groups == output channels (one channel per group), got C_out=" + g.c + " groups=" + g.groups
                    : "depthwise needs groups == input channels (one channel per group), got C=" + g.c + " groups=" + g.groups;
        }
        return null;
    }

    @Override
    public void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, Finish done, Parallel par) {
        float[] w = weights.raw;
        if (Sgemm.VECTOR && VectorDepthwiseChannels.applies(g)) {
            VectorDepthwiseChannels.forward(g, x, weights, bias, y, done, par);
            return;
        }
        if (Sgemm.VECTOR && VectorDepthwise.applies(g)) {
            VectorDepthwise.forward(g, x, weights, bias, y, done, par);
            return;
        }
        if (Sgemm.VECTOR && g.strideW == 1) {
            VectorDirect.forward(g, x, weights, bias, y, done, par); // one channel per block: V outputs per FMA
            return;
        }
        int mult = g.kPerGroup();
        int hw = g.h * g.w, rs = g.r * g.s;
        par.forEach(g.n * g.k, plane -> {
            int n = plane / g.k, k = plane % g.k;
            int xPlane = (n * g.c + k / mult) * hw;
            float b = bias == null ? 0f : bias[k];
            for (int p = 0; p < g.p; p++) {
                int yRow = (plane * g.p + p) * g.q;
                java.util.Arrays.fill(y, yRow, yRow + g.q, b);
                for (int r = 0; r < g.r; r++) {
                    int ih = p * g.strideH - g.padTop + r * g.dilationH;
                    if (ih < 0 || ih >= g.h) {
                        continue;
                    }
                    for (int s = 0; s < g.s; s++) {
                        int colOff = s * g.dilationW - g.padLeft;
                        int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                        DirectConv.axpy(y, yRow, x, xPlane + ih * g.w + colOff, g.strideW, q0, q1, w[k * rs + r * g.s + s]);
                    }
                }
            }
            done.region(plane * g.p * g.q, (plane + 1) * g.p * g.q);
        });
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights weights, float[] bias, float[] x, Finish done, Parallel par) {
        float[] w = weights.raw;
        if (Sgemm.VECTOR && StrideOneTransposed.applies(g)) {
            VectorDirect.forward(StrideOneTransposed.forward(g), y, StrideOneTransposed.flippedWeights(g, weights, par), bias, x, done, par);
            return;
        }
        int mult = g.kPerGroup();
        int pq = g.p * g.q, rs = g.r * g.s;
        par.forEach(g.n * g.c, plane -> {
            int n = plane / g.c, c = plane % g.c;
            float b = bias == null ? 0f : bias[c];
            for (int ih = 0; ih < g.h; ih++) {
                int xRow = (plane * g.h + ih) * g.w;
                java.util.Arrays.fill(x, xRow, xRow + g.w, b);
                for (int r = 0; r < g.r; r++) {
                    int ph = ih + g.padTop - r * g.dilationH;
                    if (ph < 0 || ph % g.strideH != 0 || ph / g.strideH >= g.p) {
                        continue;
                    }
                    int p = ph / g.strideH;
                    for (int m = 0; m < mult; m++) {
                        int k = c * mult + m;
                        int yRow = (n * g.k + k) * pq + p * g.q;
                        for (int s = 0; s < g.s; s++) {
                            int colOff = s * g.dilationW - g.padLeft;
                            int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                            DirectConv.scatter(x, xRow + colOff, g.strideW, y, yRow, q0, q1, w[k * rs + r * g.s + s]);
                        }
                    }
                }
            }
            done.region(plane * g.h * g.w, (plane + 1) * g.h * g.w);
        });
    }
}
