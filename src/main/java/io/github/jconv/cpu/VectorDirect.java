package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolution on the Vector API for layers with stride 1 along W (loaded only when the module is
 * present; {@link DirectConv} and {@link DepthwiseConv} call it).
 *
 * <p>A task takes one sample n, one group and a run of blocks of up to {@link #KB} output channels. It
 * first copies the group's input into a zero-padded, thread-confined buffer (C/G x (H+pt+pb) x
 * (W+pl+pr)), so every tap of every output lies inside it and the loops have no bounds tests. Then, for
 * each output row p and each V consecutive outputs q, it holds KB vectors of outputs in registers and for
 * every tap (c, r, s) loads V padded inputs once and does KB broadcast-FMAs with the tap's weights (packed
 * so a block's KB weights of one tap are adjacent). The row's last, partial vector is computed in full
 * into a scratch tile and only its real lanes are added (masked stores are not vectorised on Java 17).
 */
final class VectorDirect {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register block. */
    static final int KB = 8;

    private VectorDirect() {
    }

    /** y = conv(x, w) + bias for a geometry with strideW == 1. */
    static void forward(ConvGeometry g, float[] x, float[] w, float[] bias, float[] y, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s;
        int blocksPerGroup = (kg + KB - 1) / KB;
        // wp[block][(c*R + r)*S + s][j] = w[k0 + j][c][r][s]: the block's KB weights of one tap side by side
        float[] wp = Workspace.get(Workspace.WEIGHTS, (long) g.groups * blocksPerGroup * crs * KB);
        par.forEach(g.groups * blocksPerGroup, b -> {
            int k0 = (b / blocksPerGroup) * kg + (b % blocksPerGroup) * KB;
            int kb = Math.min(KB, (b / blocksPerGroup) * kg + kg - k0);
            for (int t = 0; t < crs; t++) {
                for (int j = 0; j < KB; j++) {
                    wp[(b * crs + t) * KB + j] = j < kb ? w[(k0 + j) * crs + t] : 0f;
                }
            }
        });
        int[] taps = taps(g);
        int pairs = g.n * g.groups;
        int chunks = Math.min(blocksPerGroup, Math.max(1, (4 * par.threads() + pairs - 1) / pairs));
        par.forEach(pairs * chunks, task -> {
            int pair = task / chunks, chunk = task % chunks;
            int n = pair / g.groups, grp = pair % g.groups;
            float[] xp = pad(g, x, (n * g.c + grp * cg) * g.h * g.w);
            int b0 = blocksPerGroup * chunk / chunks, b1 = blocksPerGroup * (chunk + 1) / chunks;
            for (int b = b0; b < b1; b++) {
                int k0 = grp * kg + b * KB, kb = Math.min(KB, kg - b * KB);
                rows(g, taps, xp, wp, (grp * blocksPerGroup + b) * crs * KB, k0, kb, bias, y, n);
            }
        });
    }

    /** The group's C/G planes at x[xOff ..] copied into a zero-padded thread-local buffer (plus V floats of slack). */
    private static float[] pad(ConvGeometry g, float[] x, int xOff) {
        int hp = g.h + g.padTop + g.padBottom, wp = g.w + g.padLeft + g.padRight;
        int planes = g.cPerGroup();
        float[] xp = Workspace.get(Workspace.COL, (long) planes * hp * wp + V);
        for (int c = 0; c < planes; c++) {
            int plane = c * hp * wp;
            java.util.Arrays.fill(xp, plane, plane + g.padTop * wp, 0f);
            for (int ih = 0; ih < g.h; ih++) {
                int row = plane + (ih + g.padTop) * wp;
                java.util.Arrays.fill(xp, row, row + g.padLeft, 0f);
                System.arraycopy(x, xOff + (c * g.h + ih) * g.w, xp, row + g.padLeft, g.w);
                java.util.Arrays.fill(xp, row + g.padLeft + g.w, row + wp, 0f);
            }
            java.util.Arrays.fill(xp, plane + (g.padTop + g.h) * wp, plane + hp * wp, 0f);
        }
        java.util.Arrays.fill(xp, planes * hp * wp, planes * hp * wp + V, 0f);
        return xp;
    }

    /** All output rows of channels [k0, k0 + kb) of sample n. */
    private static void rows(ConvGeometry g, int[] taps, float[] xp, float[] wp, int wOff, int k0, int kb, float[] bias,
                             float[] y, int n) {
        if (kb < KB) {
            for (int j = 0; j < kb; j++) {
                rowsOfOneChannel(g, taps, xp, wp, wOff + j, k0 + j, bias, y, n);
            }
            return;
        }
        int yChannel = g.p * g.q, wpad = g.w + g.padLeft + g.padRight;
        int qFull = g.q - g.q % V;
        float[] tile = Workspace.get(Workspace.SCRATCH, KB * V);
        for (int p = 0; p < g.p; p++) {
            int yRow = ((n * g.k + k0) * g.p + p) * g.q;
            for (int j = 0; j < KB; j++) {
                java.util.Arrays.fill(y, yRow + j * yChannel, yRow + j * yChannel + g.q, bias == null ? 0f : bias[k0 + j]);
            }
            int row0 = p * g.strideH * wpad;
            int q = 0;
            for (; q + 2 * V <= qFull; q += 2 * V) {
                block8x2(taps, xp, row0 + q, wp, wOff, y, yRow + q, yChannel);
            }
            for (; q < qFull; q += V) {
                block8(taps, xp, row0 + q, wp, wOff, y, yRow + q, yChannel);
            }
            if (qFull < g.q) {
                java.util.Arrays.fill(tile, 0, KB * V, 0f);
                block8(taps, xp, row0 + qFull, wp, wOff, tile, 0, V);
                for (int j = 0; j < KB; j++) {
                    for (int i = 0; i < g.q - qFull; i++) {
                        y[yRow + j * yChannel + qFull + i] += tile[j * V + i];
                    }
                }
            }
        }
    }

    /**
     * All output rows of channel k (weights at wp[wOff + tap*KB]), four rows at a time so four independent FMA
     * chains hide the FMA latency (one chain per vector would wait on it: depthwise layers have only R*S taps).
     */
    private static void rowsOfOneChannel(ConvGeometry g, int[] taps, float[] xp, float[] wp, int wOff, int k,
                                         float[] bias, float[] y, int n) {
        int wpad = g.w + g.padLeft + g.padRight, rowStep = g.strideH * wpad;
        int qFull = g.q - g.q % V;
        int yPlane = (n * g.k + k) * g.p * g.q;
        float[] tile = Workspace.get(Workspace.SCRATCH, 4 * V);
        for (int p = 0; p < g.p; p += 4) {
            int pr = Math.min(4, g.p - p);
            java.util.Arrays.fill(y, yPlane + p * g.q, yPlane + (p + pr) * g.q, bias == null ? 0f : bias[k]);
            for (int q = 0; q < qFull; q += V) {
                rowsBlock(taps, xp, p * rowStep + q, rowStep, wp, wOff, y, yPlane + p * g.q + q, g.q, pr);
            }
            if (qFull < g.q) {
                java.util.Arrays.fill(tile, 0, 4 * V, 0f);
                rowsBlock(taps, xp, p * rowStep + qFull, rowStep, wp, wOff, tile, 0, V, pr);
                for (int i = 0; i < pr; i++) {
                    for (int l = 0; l < g.q - qFull; l++) {
                        y[yPlane + (p + i) * g.q + qFull + l] += tile[i * V + l];
                    }
                }
            }
        }
    }

    /** {@code rows} (at most 4) output rows of one channel, V outputs each, into out (row i at outOff + i*outRow). */
    private static void rowsBlock(int[] taps, float[] xp, int row0, int rowStep, float[] wp, int wOff, float[] out,
                                  int outOff, int outRow, int rows) {
        if (rows == 4) {
            block1x4(taps, xp, row0, rowStep, wp, wOff, out, outOff, outRow);
        } else {
            for (int i = 0; i < rows; i++) {
                block1(taps, xp, row0 + i * rowStep, wp, wOff, out, outOff + i * outRow);
            }
        }
    }

    /** Four rows of one channel: out[i][0..V) += sum over taps of wp[tap] * xp[row0 + i*rowStep + tap ..]. */
    private static void block1x4(int[] taps, float[] xp, int row0, int rowStep, float[] wp, int wOff, float[] out,
                                 int outOff, int outRow) {
        FloatVector a0 = FloatVector.fromArray(S, out, outOff);
        FloatVector a1 = FloatVector.fromArray(S, out, outOff + outRow);
        FloatVector a2 = FloatVector.fromArray(S, out, outOff + 2 * outRow);
        FloatVector a3 = FloatVector.fromArray(S, out, outOff + 3 * outRow);
        for (int i = 0, t = wOff; i < taps.length; i++, t += KB) {
            FloatVector wv = FloatVector.broadcast(S, wp[t]);
            int x0 = row0 + taps[i];
            a0 = FloatVector.fromArray(S, xp, x0).fma(wv, a0);
            a1 = FloatVector.fromArray(S, xp, x0 + rowStep).fma(wv, a1);
            a2 = FloatVector.fromArray(S, xp, x0 + 2 * rowStep).fma(wv, a2);
            a3 = FloatVector.fromArray(S, xp, x0 + 3 * rowStep).fma(wv, a3);
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + outRow);
        a2.intoArray(out, outOff + 2 * outRow);
        a3.intoArray(out, outOff + 3 * outRow);
    }

    /** Offset in the padded input of every tap (c, r, s), in weight order, relative to the output's first input. */
    private static int[] taps(ConvGeometry g) {
        int hp = g.h + g.padTop + g.padBottom, wpad = g.w + g.padLeft + g.padRight;
        int[] taps = new int[g.cPerGroup() * g.r * g.s];
        for (int c = 0, i = 0; c < g.cPerGroup(); c++) {
            for (int r = 0; r < g.r; r++) {
                for (int s = 0; s < g.s; s++, i++) {
                    taps[i] = (c * hp + r * g.dilationH) * wpad + s * g.dilationW;
                }
            }
        }
        return taps;
    }

    /** KB channels x 2V columns: as {@link #block8} with two vectors per channel (16 independent FMA chains). */
    private static void block8x2(int[] taps, float[] xp, int row0, float[] wp, int wOff, float[] out, int outOff,
                                 int outChannel) {
        FloatVector a0 = FloatVector.fromArray(S, out, outOff), b0 = FloatVector.fromArray(S, out, outOff + V);
        FloatVector a1 = FloatVector.fromArray(S, out, outOff + outChannel), b1 = FloatVector.fromArray(S, out, outOff + outChannel + V);
        FloatVector a2 = FloatVector.fromArray(S, out, outOff + 2 * outChannel), b2 = FloatVector.fromArray(S, out, outOff + 2 * outChannel + V);
        FloatVector a3 = FloatVector.fromArray(S, out, outOff + 3 * outChannel), b3 = FloatVector.fromArray(S, out, outOff + 3 * outChannel + V);
        FloatVector a4 = FloatVector.fromArray(S, out, outOff + 4 * outChannel), b4 = FloatVector.fromArray(S, out, outOff + 4 * outChannel + V);
        FloatVector a5 = FloatVector.fromArray(S, out, outOff + 5 * outChannel), b5 = FloatVector.fromArray(S, out, outOff + 5 * outChannel + V);
        FloatVector a6 = FloatVector.fromArray(S, out, outOff + 6 * outChannel), b6 = FloatVector.fromArray(S, out, outOff + 6 * outChannel + V);
        FloatVector a7 = FloatVector.fromArray(S, out, outOff + 7 * outChannel), b7 = FloatVector.fromArray(S, out, outOff + 7 * outChannel + V);
        for (int i = 0, t = wOff; i < taps.length; i++, t += KB) {
            int x0 = row0 + taps[i];
            FloatVector xv = FloatVector.fromArray(S, xp, x0), xw = FloatVector.fromArray(S, xp, x0 + V);
            FloatVector w0 = FloatVector.broadcast(S, wp[t]);
            a0 = xv.fma(w0, a0);
            b0 = xw.fma(w0, b0);
            FloatVector w1 = FloatVector.broadcast(S, wp[t + 1]);
            a1 = xv.fma(w1, a1);
            b1 = xw.fma(w1, b1);
            FloatVector w2 = FloatVector.broadcast(S, wp[t + 2]);
            a2 = xv.fma(w2, a2);
            b2 = xw.fma(w2, b2);
            FloatVector w3 = FloatVector.broadcast(S, wp[t + 3]);
            a3 = xv.fma(w3, a3);
            b3 = xw.fma(w3, b3);
            FloatVector w4 = FloatVector.broadcast(S, wp[t + 4]);
            a4 = xv.fma(w4, a4);
            b4 = xw.fma(w4, b4);
            FloatVector w5 = FloatVector.broadcast(S, wp[t + 5]);
            a5 = xv.fma(w5, a5);
            b5 = xw.fma(w5, b5);
            FloatVector w6 = FloatVector.broadcast(S, wp[t + 6]);
            a6 = xv.fma(w6, a6);
            b6 = xw.fma(w6, b6);
            FloatVector w7 = FloatVector.broadcast(S, wp[t + 7]);
            a7 = xv.fma(w7, a7);
            b7 = xw.fma(w7, b7);
        }
        a0.intoArray(out, outOff);
        b0.intoArray(out, outOff + V);
        a1.intoArray(out, outOff + outChannel);
        b1.intoArray(out, outOff + outChannel + V);
        a2.intoArray(out, outOff + 2 * outChannel);
        b2.intoArray(out, outOff + 2 * outChannel + V);
        a3.intoArray(out, outOff + 3 * outChannel);
        b3.intoArray(out, outOff + 3 * outChannel + V);
        a4.intoArray(out, outOff + 4 * outChannel);
        b4.intoArray(out, outOff + 4 * outChannel + V);
        a5.intoArray(out, outOff + 5 * outChannel);
        b5.intoArray(out, outOff + 5 * outChannel + V);
        a6.intoArray(out, outOff + 6 * outChannel);
        b6.intoArray(out, outOff + 6 * outChannel + V);
        a7.intoArray(out, outOff + 7 * outChannel);
        b7.intoArray(out, outOff + 7 * outChannel + V);
    }

    /** KB channels: out[j][0..V) += sum over taps (c, r, s) of wp[tap][j] * xp[c][p*sH + r*dH][q + s*dW ..]. */
    private static void block8(int[] taps, float[] xp, int row0, float[] wp, int wOff, float[] out, int outOff,
                               int outChannel) {
        FloatVector a0 = FloatVector.fromArray(S, out, outOff);
        FloatVector a1 = FloatVector.fromArray(S, out, outOff + outChannel);
        FloatVector a2 = FloatVector.fromArray(S, out, outOff + 2 * outChannel);
        FloatVector a3 = FloatVector.fromArray(S, out, outOff + 3 * outChannel);
        FloatVector a4 = FloatVector.fromArray(S, out, outOff + 4 * outChannel);
        FloatVector a5 = FloatVector.fromArray(S, out, outOff + 5 * outChannel);
        FloatVector a6 = FloatVector.fromArray(S, out, outOff + 6 * outChannel);
        FloatVector a7 = FloatVector.fromArray(S, out, outOff + 7 * outChannel);
        for (int i = 0, t = wOff; i < taps.length; i++, t += KB) {
            FloatVector xv = FloatVector.fromArray(S, xp, row0 + taps[i]);
            a0 = xv.fma(FloatVector.broadcast(S, wp[t]), a0);
            a1 = xv.fma(FloatVector.broadcast(S, wp[t + 1]), a1);
            a2 = xv.fma(FloatVector.broadcast(S, wp[t + 2]), a2);
            a3 = xv.fma(FloatVector.broadcast(S, wp[t + 3]), a3);
            a4 = xv.fma(FloatVector.broadcast(S, wp[t + 4]), a4);
            a5 = xv.fma(FloatVector.broadcast(S, wp[t + 5]), a5);
            a6 = xv.fma(FloatVector.broadcast(S, wp[t + 6]), a6);
            a7 = xv.fma(FloatVector.broadcast(S, wp[t + 7]), a7);
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + outChannel);
        a2.intoArray(out, outOff + 2 * outChannel);
        a3.intoArray(out, outOff + 3 * outChannel);
        a4.intoArray(out, outOff + 4 * outChannel);
        a5.intoArray(out, outOff + 5 * outChannel);
        a6.intoArray(out, outOff + 6 * outChannel);
        a7.intoArray(out, outOff + 7 * outChannel);
    }

    /** One channel (weights at wp[wOff + tap*KB]). */
    private static void block1(int[] taps, float[] xp, int row0, float[] wp, int wOff, float[] out, int outOff) {
        FloatVector a = FloatVector.fromArray(S, out, outOff);
        for (int i = 0, t = wOff; i < taps.length; i++, t += KB) {
            a = FloatVector.fromArray(S, xp, row0 + taps[i]).fma(FloatVector.broadcast(S, wp[t]), a);
        }
        a.intoArray(out, outOff);
    }
}
