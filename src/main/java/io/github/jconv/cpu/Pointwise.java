package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * 1 x 1 convolution at stride 1 without padding (ResNet's reduce and expand layers) as a GEMM read straight from NCHW,
 * with the Vector API (loaded only when the module is present; {@link DirectConv} calls it): each group's
 * {@code y[k][pixel] = bias[k] + sum over c of w[k][c] * x[c][pixel]}, pixels in the vector lanes. The register tile is
 * {@link #KT} output channels x {@link #PT} pixels (three vectors, 24 accumulators): per input channel three vector
 * loads of x's row and eight broadcast weights (packed once per plan, eight channels' weights of one input channel
 * side by side) feed 24 FMAs, in one flat loop over the input channels (no packing of x, no horizontal sums). Pixels
 * past the last whole tile are copied into whole vectors first (JDK 17's masked loads are not compiled to vector
 * instructions: 5-10x slower on the 7x7 and 14x14 maps), one vector at a time. A task is one tile of pixels of one sample and group and a run
 * of channel tiles (split so that small maps still give every thread work); each output element is one chain over c in
 * order, the same whatever the thread count.
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
        return !g.transposed() && g.r == 1 && g.s == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padBottom == 0
                && g.padLeft == 0 && g.padRight == 0;
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
        int runs = Math.max(1, Math.min(kTiles, 8 * par.threads() / Math.max(1, planes * pTiles)));
        int perRun = (kTiles + runs - 1) / runs, runCount = (kTiles + perRun - 1) / perRun;
        par.forEach(planes * pTiles * runCount, task -> {
            int run = task % runCount, pt = (task / runCount) % pTiles, plane = task / runCount / pTiles;
            int n = plane / g.groups, grp = plane % g.groups, p0 = pt * PT, width = Math.min(PT, hw - p0);
            int xBase = (n * g.c + grp * cg) * hw + p0;
            float[] part = Workspace.get(Workspace.SCRATCH, (long) KT * PT);
            float[] src = x;
            int from = xBase, stride = hw;
            if (width < PT) { // the map's last pixels, copied zero-padded to whole vectors: every load a full one
                stride = (width + V - 1) / V * V;
                src = Workspace.get(Workspace.ROW, (long) cg * stride);
                for (int c = 0; c < cg; c++) {
                    System.arraycopy(x, xBase + c * hw, src, c * stride, width);
                    java.util.Arrays.fill(src, c * stride + width, (c + 1) * stride, 0f);
                }
                from = 0;
            }
            for (int kt = run * perRun; kt < Math.min(kTiles, (run + 1) * perRun); kt++) {
                int wBase = (grp * kTiles + kt) * cg * KT;
                if (width == PT) {
                    tile3(src, from, stride, cg, wp, wBase, part);
                } else {
                    for (int at = 0; at < width; at += V) {
                        tile1(src, from + at, stride, cg, wp, wBase, part, at);
                    }
                }
                int k0 = grp * kg + kt * KT;
                for (int kk = 0; kk < Math.min(KT, kg - kt * KT); kk++) {
                    int row = (n * g.k + k0 + kk) * hw + p0;
                    float bk = bias == null ? 0f : bias[k0 + kk];
                    FloatVector b = FloatVector.broadcast(S, bk);
                    int at = 0;
                    for (; at + V <= width; at += V) {
                        FloatVector.fromArray(S, part, kk * PT + at).add(b).intoArray(y, row + at);
                    }
                    for (; at < width; at++) {
                        y[row + at] = part[kk * PT + at] + bk;
                    }
                    done.region(row, row + width);
                }
            }
        });
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
