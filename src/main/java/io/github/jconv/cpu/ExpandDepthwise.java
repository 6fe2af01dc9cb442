package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * A 1 x 1 expansion and the depthwise 3 x 3 layer that reads its output, as one pass (MobileNetV2's inverted residual
 * blocks: {@code y = act2(dw(act1(W x + b1)) + b2)}), so the expanded tensor (16 -> 96 channels at 112 x 112: 4.8 MB per
 * image) is never written to memory and read back. A task takes one sample and one of the expansion's channel tiles
 * ({@link Pointwise#KT} channels): {@link Pointwise#channelTile} computes the tile's planes into a scratch of KT planes,
 * then {@link VectorDepthwise#plane} runs the depthwise layer on each of them while it is in cache, into y, and the
 * second epilogue follows per plane. Both kernels compute every value as they do apart, in the same order: the same bits
 * as the two layers run one after the other.
 */
final class ExpandDepthwise {
    private ExpandDepthwise() {
    }

    /**
     * Null where the pair runs as one pass, else why not: the expansion is {@link Pointwise}'s layer (1 x 1, stride 1, no
     * padding) of one group on maps of whole vectors, with a ReLU, ReLU6 or no activation and no residual; the depthwise
     * layer one channel per group (multiplier 1) on the expansion's output, one {@link VectorDepthwise#planeApplies} takes
     * (3 x 3, padding 1, stride 1 or 2), with no residual.
     */
    static String cannotFuse(ConvGeometry expand, Epilogue e1, ConvGeometry dw, Epilogue e2) {
        if (!Sgemm.VECTOR) {
            return "the Vector API is not loaded";
        }
        if (expand.transposed() || !Pointwise.applies(expand) || expand.groups != 1) {
            return "the first layer is not a 1x1 convolution of one group at stride 1 without padding";
        }
        if (expand.h * expand.w % Pointwise.V != 0) {
            return "the map's " + expand.h * expand.w + " pixels are not whole vectors of " + Pointwise.V;
        }
        if (e1.hasResidual() || !new VectorEpilogue(e1, null, null).fuses()) {
            return "the first layer's epilogue is not a ReLU, ReLU6 or none without a residual";
        }
        if (dw.transposed() || !dw.isDepthwise() || dw.kPerGroup() != 1 || !VectorDepthwise.planeApplies(dw)
                || VectorDepthwiseChannels.applies(dw)) {
            return "the second layer is not a 3x3 depthwise layer of padding 1 at stride 1 or 2 that VectorDepthwise runs";
        }
        if (!java.util.Arrays.equals(expand.outputShape(), dw.inputShape())) {
            return "the second layer does not read the first one's output";
        }
        if (e2.hasResidual()) {
            return "the second layer's epilogue adds a residual";
        }
        return null;
    }

    /**
     * y = act2(dw(act1(expand(x) + b1)) + b2) for a pair {@link #cannotFuse} takes; {@code done} is the depthwise layer's
     * epilogue on y.
     */
    static void forward(ConvGeometry expand, float[] x, Weights w1, float[] b1, Epilogue e1, ConvGeometry dw, Weights w2, float[] b2,
                        float[] y, CpuConvolution.Finish done, Parallel par) {
        float[] wp = Pointwise.packed(expand, w1, par);
        float[] wd = w2.raw;
        VectorEpilogue act = e1.isNone() ? null : new VectorEpilogue(e1, null, null);
        int hw = expand.h * expand.w, pq = dw.p * dw.q, k = expand.k, tiles = (k + Pointwise.KT - 1) / Pointwise.KT;
        int[] taps = VectorDepthwise.planeTaps(dw);
        par.forEach(expand.n * tiles, task -> {
            int n = task / tiles, kt = task % tiles, k0 = kt * Pointwise.KT, kn = Math.min(Pointwise.KT, k - k0);
            float[] planes = Workspace.get(Workspace.FUSED, (long) Pointwise.KT * hw);
            Pointwise.channelTile(expand, x, wp, b1, act, planes, n, kt);
            for (int kk = 0; kk < kn; kk++) {
                int c = k0 + kk, out = (n * dw.k + c) * pq;
                VectorDepthwise.plane(dw, taps, planes, kk * hw, wd, c, b2 == null ? 0f : b2[c], y, out);
                done.region(out, out + pq);
            }
        });
    }
}
