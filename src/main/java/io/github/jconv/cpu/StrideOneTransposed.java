package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Padding;

/**
 * A stride-1 conv_transpose2d is a forward convolution of its input with the kernel flipped in both axes and
 * the channel roles swapped: x[n][c][h][w] = sum y[n][k][h - pt' + r'*dH][w - pl' + s'*dW] * w'[c][k][r'][s']
 * with w'[c][k][r'][s'] = w[k][c][R-1-r'][S-1-s'] (within a group) and padding pt' = effR-1-pt,
 * pb' = effR-1-pb+outputPaddingH (likewise for W). That lets the forward kernels serve it whenever those
 * paddings are not negative.
 */
final class StrideOneTransposed {
    private StrideOneTransposed() {
    }

    static boolean applies(ConvGeometry g) {
        return g.transposed() && g.strideH == 1 && g.strideW == 1 && g.padTop < g.effectiveR() && g.padLeft < g.effectiveS()
                && g.padBottom - outputPaddingH(g) < g.effectiveR() && g.padRight - outputPaddingW(g) < g.effectiveS();
    }

    /** The output padding the geometry implies: H = P - 1 - pt - pb + effR + op. */
    private static int outputPaddingH(ConvGeometry g) {
        return g.h - (g.p - 1 - g.padTop - g.padBottom + g.effectiveR());
    }

    private static int outputPaddingW(ConvGeometry g) {
        return g.w - (g.q - 1 - g.padLeft - g.padRight + g.effectiveS());
    }

    /** The forward convolution (input N x K x P x Q, weight C x K/G x R x S) that computes {@code g}. */
    static ConvGeometry forward(ConvGeometry g) {
        Padding pad = Padding.of(g.effectiveR() - 1 - g.padTop, g.effectiveR() - 1 - g.padBottom + outputPaddingH(g),
                g.effectiveS() - 1 - g.padLeft, g.effectiveS() - 1 - g.padRight + outputPaddingW(g));
        ConvSpec spec = ConvSpec.builder().dilation(g.dilationH, g.dilationW).groups(g.groups).padding(pad).build();
        ConvGeometry f = ConvGeometry.conv2d(g.inputShape(), new int[] {g.c, g.kPerGroup(), g.r, g.s},
                g.hasBias ? new int[] {g.c} : null, spec);
        if (!java.util.Arrays.equals(f.outputShape(), g.outputShape())) {
            throw new IllegalStateException("stride-1 rewrite of " + g + " gave " + f);
        }
        return f;
    }

    /**
     * w'[c][k][r'][s'] = w[k][c][R-1-r'][S-1-s'] per group ({@link Weights#derived}: per call in the calling thread's
     * matrix workspace, for a plan once; channels in parallel: serially it took ~10% of a 256-channel 14x14 layer).
     */
    static Weights flippedWeights(ConvGeometry g, Weights weights, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), rs = g.r * g.s;
        float[] w = weights.raw;
        return weights.derived((long) g.c * kg * rs, f -> par.forEach(g.c, c -> {
            int grp = c / cg, ci = c % cg;
            for (int ki = 0; ki < kg; ki++) {
                int src = ((grp * kg + ki) * cg + ci) * rs, dst = (c * kg + ki) * rs;
                for (int t = 0; t < rs; t++) {
                    f[dst + t] = w[src + rs - 1 - t];
                }
            }
        }));
    }
}
