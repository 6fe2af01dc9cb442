package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * 1 x 1 convolution at stride 1 without padding (ResNet's reduce and expand layers) as a GEMM read straight from NCHW,
 * with the Vector API (loaded only when the module is present; {@link DirectConv} calls it): each group's
 * {@code y[k][pixel] = bias[k] + sum over c of w[k][c] * x[c][pixel]}, pixels in the vector lanes. The register tile is
 * {@link #KT} output channels x {@link #PT} pixels (three vectors, 24 accumulators): per input channel three vector
 * loads of x's row and eight broadcast weights (packed once per plan, eight channels' weights of one input channel
 * side by side) feed 24 FMAs, in one flat loop over the input channels (no packing of x, no horizontal sums). Pixels
 * past the last whole tile are copied into whole vectors first ({@link #tail}), one vector at a time. A task is a run of
 * channel tiles times a run of pixel tiles of one sample and group ({@link #split}); each output element is one chain
 * over c in order, the same whatever the thread count.
 */
final class Pointwise {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile. */
    static final int KT = 8;
    /** Pixels per register tile: three vectors. */
    static final int PT = 3 * V;

    private Pointwise() {
    }

    /** A 1 x 1 forward layer at stride 1 without padding (dilation does not matter for one tap). */
    static boolean applies(ConvGeometry g) {
        return unpadded1x1(g) && g.strideH == 1 && g.strideW == 1;
    }

    /**
     * A 1 x 1 forward layer with a stride and no padding (ResNet's downsampling shortcuts): every output reads one input
     * pixel of each channel, so it is {@link #forward} on the input's strided pixels, copied once into a compact map.
     */
    static boolean appliesStrided(ConvGeometry g) {
        return unpadded1x1(g) && (g.strideH > 1 || g.strideW > 1);
    }

    private static boolean unpadded1x1(ConvGeometry g) {
        return !g.transposed() && g.r == 1 && g.s == 1 && g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0;
    }

    /** The stride-1 layer {@link #forwardStrided} runs on the compact map: the same sample, channel and group counts, H x W = P x Q. */
    static ConvGeometry compact(ConvGeometry g) {
        return ConvGeometry.conv2d(new int[] {g.n, g.c, g.p, g.q}, new int[] {g.k, g.cPerGroup(), 1, 1}, null,
                ConvSpec.builder().groups(g.groups).build());
    }

    /** Floats of the compact map {@link #forwardStrided} copies the input into. */
    static long stridedWorkspaceFloats(ConvGeometry g) {
        return (long) g.n * g.c * g.p * g.q;
    }

    /** y = conv(x, w) + bias for a layer {@link #appliesStrided} takes. */
    static void forwardStrided(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done,
                               Parallel par) {
        int pq = g.p * g.q, hw = g.h * g.w;
        float[] xs = Workspace.get(Workspace.COL, stridedWorkspaceFloats(g));
        par.forEach(g.n * g.c, plane -> {
            for (int i = 0; i < g.p; i++) {
                int src = plane * hw + i * g.strideH * g.w, dst = plane * pq + i * g.q;
                for (int j = 0; j < g.q; j++) {
                    xs[dst + j] = x[src + j * g.strideW];
                }
            }
        });
        forward(compact(g), xs, weights, bias, y, done, par);
    }

    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), hw = g.h * g.w, kTiles = (kg + KT - 1) / KT;
        float[] w = weights.raw;
        float[] wp = weights.packed((long) g.groups * kTiles * cg * KT, p -> par.forEach(g.groups * kTiles, gt -> {
            int grp = gt / kTiles, kt = gt % kTiles;
            for (int c = 0; c < cg; c++) {
                for (int kk = 0; kk < KT; kk++) {
                    int k = kt * KT + kk;
                    p[(gt * cg + c) * KT + kk] = k < kg ? w[(grp * kg + k) * cg + c] : 0f;
                }
            }
        }));
        int pTiles = (hw + PT - 1) / PT, planes = g.n * g.groups;
        int[] split = split((long) kg * cg, (long) cg * hw, kTiles, pTiles, (8 * par.threads() + planes - 1) / planes);
        int runs = split[0], pParts = split[1];
        par.forEach(planes * pParts * runs, task -> {
            int run = task % runs, part = task / runs % pParts, plane = task / runs / pParts;
            int n = plane / g.groups, grp = plane % g.groups;
            int kt0 = kTiles * run / runs, kt1 = kTiles * (run + 1) / runs;
            int pt0 = pTiles * part / pParts, pt1 = pTiles * (part + 1) / pParts;
            float[] part8 = Workspace.get(Workspace.SCRATCH, (long) KT * PT);
            for (int pt = pt0; pt < pt1; pt++) { // the pixel tile stays in L1/L2 while the task's channel tiles read it
                int p0 = pt * PT, width = Math.min(PT, hw - p0);
                int xBase = (n * g.c + grp * cg) * hw + p0;
                float[] tail = width < PT ? tail(x, xBase, hw, cg, width) : null;
                int stride = tailStride(width);
                for (int kt = kt0; kt < kt1; kt++) {
                    int wBase = (grp * kTiles + kt) * cg * KT;
                    if (tail == null) {
                        tile3(x, xBase, hw, cg, wp, wBase, part8);
                    } else {
                        for (int at = 0; at < width; at += V) {
                            tile1(tail, at, stride, cg, wp, wBase, part8, at);
                        }
                    }
                    int k0 = grp * kg + kt * KT;
                    for (int kk = 0; kk < Math.min(KT, kg - kt * KT); kk++) {
                        int row = (n * g.k + k0 + kk) * hw + p0;
                        float bk = bias == null ? 0f : bias[k0 + kk];
                        FloatVector b = FloatVector.broadcast(S, bk);
                        int at = 0;
                        for (; at + V <= width; at += V) {
                            FloatVector.fromArray(S, part8, kk * PT + at).add(b).intoArray(y, row + at);
                        }
                        for (; at < width; at++) {
                            y[row + at] = part8[kk * PT + at] + bk;
                        }
                        done.region(row, row + width);
                    }
                }
            }
        });
    }

    /**
     * How a call splits each (sample, group) plane into tasks: {runs, parts}, runs of channel tiles times runs of pixel
     * tiles, at least {@code want} tasks where there are that many tiles. Of those splits the one that moves the fewest
     * floats: each run of pixels reads all of its runs' weights, each run of channels all of its pixels' input (the 7x7 and
     * 14x14 layers of ResNet-50 hold 1-4 MB of weights and less input: split over channels; the 56x56 ones the other way).
     */
    static int[] split(long weightFloats, long inputFloats, int kTiles, int pTiles, int want) {
        int target = (int) Math.min(want, (long) kTiles * pTiles);
        int[] best = {1, Math.min(pTiles, target)};
        double bestCost = Double.MAX_VALUE;
        for (int runs = 1; runs <= kTiles; runs++) {
            int parts = Math.min(pTiles, (target + runs - 1) / runs);
            if ((long) runs * parts < target) {
                continue;
            }
            double cost = (double) weightFloats * parts + (double) inputFloats * runs;
            if (cost < bestCost) {
                bestCost = cost;
                best = new int[] {runs, parts};
            }
        }
        return best;
    }

    /**
     * The map's last pixels (fewer than a tile, from x[xBase] on each of cg planes hw apart) copied zero-padded to whole
     * vectors, so every load is a full one (JDK 17's masked loads are not compiled to vector instructions: 5-10x slower on
     * the 7x7 and 14x14 maps).
     */
    private static float[] tail(float[] x, int xBase, int hw, int cg, int width) {
        int stride = tailStride(width);
        float[] src = Workspace.get(Workspace.ROW, (long) cg * stride);
        for (int c = 0; c < cg; c++) {
            System.arraycopy(x, xBase + c * hw, src, c * stride, width);
            java.util.Arrays.fill(src, c * stride + width, (c + 1) * stride, 0f);
        }
        return src;
    }

    /** Floats between the channels' rows in {@link #tail}'s copy: width rounded up to whole vectors. */
    private static int tailStride(int width) {
        return (width + V - 1) / V * V;
    }

    /** The 8 x 3V tile: part[kk*PT + i] = sum over c of wp[wi0 + c*KT + kk] * x[x0 + c*hw + i]. One flat loop over c. */
    static void tile3(float[] x, int xBase, int hw, int cg, float[] wp, int wBase, float[] part) {
        FloatVector z = FloatVector.zero(S), w;
        FloatVector a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z,
                a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z,
                a40 = z, a41 = z, a42 = z, a50 = z, a51 = z, a52 = z,
                a60 = z, a61 = z, a62 = z, a70 = z, a71 = z, a72 = z;
        for (int c = 0, xi = xBase, wi = wBase; c < cg; c++, xi += hw, wi += KT) {
            FloatVector x0 = FloatVector.fromArray(S, x, xi), x1 = FloatVector.fromArray(S, x, xi + V), x2 = FloatVector.fromArray(S, x, xi + 2 * V);
            w = FloatVector.broadcast(S, wp[wi + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wi + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wi + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wi + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wi + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wi + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wi + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wi + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
        }
        a00.intoArray(part, 0 * PT + 0 * V);
        a01.intoArray(part, 0 * PT + 1 * V);
        a02.intoArray(part, 0 * PT + 2 * V);
        a10.intoArray(part, 1 * PT + 0 * V);
        a11.intoArray(part, 1 * PT + 1 * V);
        a12.intoArray(part, 1 * PT + 2 * V);
        a20.intoArray(part, 2 * PT + 0 * V);
        a21.intoArray(part, 2 * PT + 1 * V);
        a22.intoArray(part, 2 * PT + 2 * V);
        a30.intoArray(part, 3 * PT + 0 * V);
        a31.intoArray(part, 3 * PT + 1 * V);
        a32.intoArray(part, 3 * PT + 2 * V);
        a40.intoArray(part, 4 * PT + 0 * V);
        a41.intoArray(part, 4 * PT + 1 * V);
        a42.intoArray(part, 4 * PT + 2 * V);
        a50.intoArray(part, 5 * PT + 0 * V);
        a51.intoArray(part, 5 * PT + 1 * V);
        a52.intoArray(part, 5 * PT + 2 * V);
        a60.intoArray(part, 6 * PT + 0 * V);
        a61.intoArray(part, 6 * PT + 1 * V);
        a62.intoArray(part, 6 * PT + 2 * V);
        a70.intoArray(part, 7 * PT + 0 * V);
        a71.intoArray(part, 7 * PT + 1 * V);
        a72.intoArray(part, 7 * PT + 2 * V);
    }

    /** One vector of pixels: part[kk*PT + at + lane]. */
    static void tile1(float[] x, int xBase, int hw, int cg, float[] wp, int wBase, float[] part, int at) {
        FloatVector z = FloatVector.zero(S);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
        for (int c = 0, xi = xBase, wi = wBase; c < cg; c++, xi += hw, wi += KT) {
            FloatVector x0 = FloatVector.fromArray(S, x, xi);
            a0 = FloatVector.broadcast(S, wp[wi + 0]).fma(x0, a0);
            a1 = FloatVector.broadcast(S, wp[wi + 1]).fma(x0, a1);
            a2 = FloatVector.broadcast(S, wp[wi + 2]).fma(x0, a2);
            a3 = FloatVector.broadcast(S, wp[wi + 3]).fma(x0, a3);
            a4 = FloatVector.broadcast(S, wp[wi + 4]).fma(x0, a4);
            a5 = FloatVector.broadcast(S, wp[wi + 5]).fma(x0, a5);
            a6 = FloatVector.broadcast(S, wp[wi + 6]).fma(x0, a6);
            a7 = FloatVector.broadcast(S, wp[wi + 7]).fma(x0, a7);
        }
        a0.intoArray(part, 0 * PT + at);
        a1.intoArray(part, 1 * PT + at);
        a2.intoArray(part, 2 * PT + at);
        a3.intoArray(part, 3 * PT + at);
        a4.intoArray(part, 4 * PT + at);
        a5.intoArray(part, 5 * PT + at);
        a6.intoArray(part, 6 * PT + at);
        a7.intoArray(part, 7 * PT + at);
    }
}
