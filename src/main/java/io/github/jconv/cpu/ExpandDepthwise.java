package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * A 1 x 1 expansion and the depthwise 3 x 3 layer that reads its output, as one pass (MobileNetV2's inverted residual
 * blocks: {@code y = act2(dw(act1(W x + b1)) + b2)}), so the expanded tensor (16 -> 96 channels at 112 x 112: 4.8 MB per
 * image) is never written to memory and read back. A task takes one sample and a run of the expansion's channel tiles
 * ({@link Pointwise#KT} channels each; {@link #tilesPerTask}): {@link Pointwise#channelTiles} computes their planes into a
 * scratch, then {@link VectorDepthwise#plane} runs the depthwise layer on each of them while it is in cache, into y, and
 * the second epilogue follows per plane. Both kernels compute every value as they do apart, in the same order: the same
 * bits as the two layers run one after the other.
 *
 * <p>MobileNetV2 at batch 1, 2 threads, the former and these classes alternating in one process (trunk runs, both
 * orders; AMD EPYC Zen 4 VM; ms, the two layers apart -> one pass): 16 -> 96 @ 112 with its stride-2 depthwise layer
 * 1.015 -> 0.860 and 0.897 -> 0.763, 24 -> 144 @ 56 (stride 1) 0.550 -> 0.413 and 0.442 -> 0.364, 24 -> 144 @ 56
 * (stride 2) 0.329 -> 0.314 and 0.294 -> 0.278; at 28 x 28 one pair 13-16% faster, one 6-8% slower, one within 4%; the
 * 14 x 14 pairs 0-10% faster; the layer after each pair (the projection, reading the depthwise output) 5-15% slower; the
 * trunk 1.027x and 1.028x (per-round medians, both orders). Of a 112 x 112 pass,
 * the expansion alone (the depthwise part skipped) took 0.39 ms and the depthwise part alone 0.32; of the pass, building
 * the depthwise layer's row copies (reading the expanded planes back) 25%, its stride-2 loop 2%: a task's 8 planes (400
 * KB) and the expansion's input (800 KB) exceed the 1 MB L2, so the planes come back from L3 (the next lever: the pass in
 * bands of rows, each band's expanded rows read back right after they are written; see the README's "Performance
 * work", 2026-12-07/08). Tried and not kept: the depthwise copies alone in bands of rows held in L1 (within
 * noise at 112 x 112); the expansion's input split into even and odd columns once per pass, so the expanded planes come
 * out split (a 1x1 layer commutes with any order of the pixels) and the stride-2 layer runs on its four phases by row
 * copies with half the loads and FMAs and no permutes (112 x 112 5% faster, 56 x 56 7-10% slower, the trunk within noise).
 */
final class ExpandDepthwise {
    private ExpandDepthwise() {
    }

    /**
     * Null where the pair runs as one pass, else why not: the expansion is {@link Pointwise}'s layer (1 x 1, stride 1, no
     * padding) of one group, with a ReLU, ReLU6 or no activation and no residual; the depthwise layer one channel per group
     * (multiplier 1) on the expansion's output, one {@link VectorDepthwise#planeApplies} takes (3 x 3, padding 1, stride 1
     * or 2) and not {@link VectorDepthwiseChannels} (maps of at most 8 x 8), with no residual.
     */
    static String cannotFuse(ConvGeometry expand, Epilogue e1, ConvGeometry dw, Epilogue e2) {
        if (!Sgemm.VECTOR) {
            return "the Vector API is not loaded";
        }
        if (expand.transposed() || !Pointwise.applies(expand) || expand.groups != 1) {
            return "the first layer is not a 1x1 convolution of one group at stride 1 without padding";
        }
        if (e1.hasResidual() || !VectorEpilogue.vectorises(e1.activation())) {
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
     * Channel tiles per task: four where the map ends in pixels short of a vector (the 1x1 kernel computes those four tiles
     * at a time), else one. Two everywhere made MobileNetV2's trunk 4-5% slower (batch 1, 2 threads, the two alternating in
     * one process, both orders; AMD EPYC Zen 4): its 112 x 112 pair 0.68 -> 0.77 ms.
     */
    static int tilesPerTask(int hw) {
        return hw % Pointwise.V != 0 ? 4 : 1;
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
        int per = tilesPerTask(hw), runs = (tiles + per - 1) / per;
        int[] taps = VectorDepthwise.planeTaps(dw);
        par.forEach(expand.n * runs, task -> {
            int n = task / runs, kt0 = task % runs * per, kt1 = Math.min(tiles, kt0 + per);
            int k0 = kt0 * Pointwise.KT, kn = Math.min(k, kt1 * Pointwise.KT) - k0;
            float[] planes = Workspace.get(Workspace.FUSED, (long) per * Pointwise.KT * hw);
            Pointwise.channelTiles(expand, x, wp, b1, act, planes, n, kt0, kt1);
            for (int kk = 0; kk < kn; kk++) {
                int c = k0 + kk, out = (n * dw.k + c) * pq;
                VectorDepthwise.plane(dw, taps, planes, kk * hw, wd, c, b2 == null ? 0f : b2[c], y, out);
                done.region(out, out + pq);
            }
        });
    }
}
