package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The direct weight gradient on the Vector API, for stride-1 layers (loaded only when the module is present;
 * {@link WeightGradient} calls it): no unfolded input at all. As in {@link VectorDirect}, each sample's group input is
 * copied once into a zero-padded buffer of Wp-wide rows (Wp = W + pl + pr), where output pixel (p, q) reads tap
 * (c, r, s) at flat index p*Wp + q plus the tap's offset c*plane + r*dH*Wp + s*dW. dy is copied once into the same flat
 * layout (P rows of Wp, zeros in the Wp - Q wrapped columns, so they add nothing). Then
 * {@code dw[k][tap] += sum over f of dyFlat[k][f] * xPadded[offset(tap) + f]}: a dot product along the flat pixel index,
 * V pixels per vector.
 *
 * <p>Register tile: {@link #TK} channels x {@link #TT} taps, 24 vector accumulators; per step 4 dy vectors and 6 input
 * vectors are loaded (10 loads for 24 FMAs). Channels and taps that do not fill a tile go through 1 x 6 and 1 x 1 tiles.
 * A task takes {@link #SK} x {@link #ST} tiles and sweeps the flat index in runs of {@link #RUN} floats, each run over all
 * its tiles, their accumulators kept in the task's buffer between runs (so a run's rows stay in L1 and the lanes are
 * added only once per batch of samples). Each accumulator's lanes are added in lane order at the end of a batch (never
 * {@code reduceLanes}, whose order may differ between compiled and interpreted code), and batches in order: results do
 * not depend on the thread count, which only decides who computes which tiles.
 */
final class VectorWeightGradient {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile. */
    static final int TK = 4;
    /** Taps per register tile. */
    static final int TT = 6;
    /** Tiles per task: blocks of channels x blocks of taps (16 channels x 48 taps), so a task's dy and input rows stay in L2. */
    static final int SK = 4, ST = 8;
    /** Floats of the flat index per run (a multiple of V): the 10 rows a tile reads in one run fit in L1 (20 KiB). */
    static final int RUN = 512;

    private VectorWeightGradient() {
    }

    /** Stride 1 both ways: each tap of consecutive output pixels reads consecutive padded input. */
    static boolean applies(ConvGeometry g) {
        return g.strideH == 1 && g.strideW == 1;
    }

    /** Floats of padded input and flat dy per batch of samples at most (64 MiB): how many samples a pass takes (tests lower it). */
    static volatile long batchFloats = 1L << 24;

    /**
     * Adds the group's weight gradient, transposed ({@code sum[tap * K/G + k]}), over all samples, in passes over batches
     * of samples (as many as {@link #batchFloats} allows, from the geometry alone). Within a pass the layouts are channel
     * major, the batch's samples one after another in each channel, rows ws = max(W + max(pl, pr), Q) apart (the zeros
     * after a row are its right padding and the next row's left padding) and samples rows = max(P, H + max(pt, pb)) rows
     * apart (one sample's bottom padding is the next one's top padding): the padded input x[c][n][row][col] (data at row
     * pt + ih, column pl + iw) and the flat dy d[k][n][p][q] (zeros in the other rows and columns, so what the taps read
     * there adds nothing). The flat index F = (n*rows + p)*ws + q then addresses both for every tap, at a fixed offset.
     */
    static void group(ConvGeometry g, float[] x, float[] dy, int grp, float[] sum, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), rs = g.r * g.s, crs = cg * rs;
        int ws = Math.max(g.w + Math.max(g.padLeft, g.padRight), g.q);
        int rows = Math.max(g.p, g.h + Math.max(g.padTop, g.padBottom)), sample = rows * ws;
        int slack = ((g.r - 1) * g.dilationH + g.padTop + g.padBottom + 1) * ws + (g.s - 1) * g.dilationW + V;
        int batch = (int) Math.max(1, Math.min(g.n, batchFloats / ((long) (cg + kg) * sample)));
        int kBlocks = (kg + TK - 1) / TK, tBlocks = (crs + TT - 1) / TT;
        int kSuper = (kBlocks + SK - 1) / SK, tSuper = (tBlocks + ST - 1) / ST;
        for (int n0 = 0; n0 < g.n; n0 += batch) {
            int nb = Math.min(batch, g.n - n0), first = n0;
            int len = (nb * sample + V - 1) / V * V; // one channel's run over the batch, to a whole vector
            int[] offset = new int[crs];
            for (int t = 0; t < crs; t++) {
                int c = t / rs, r = (t % rs) / g.s, s = t % g.s;
                offset[t] = c * len + r * g.dilationH * ws + s * g.dilationW;
            }
            // the caller's workspace, read by every task below; each channel's run is zeroed by the task that fills it
            float[] xp = Workspace.get(Workspace.COL, (long) cg * len + slack);
            float[] d = Workspace.get(Workspace.PACK_B, (long) kg * len);
            java.util.Arrays.fill(xp, cg * len, cg * len + slack, 0f);
            par.forEach(cg, c -> {
                java.util.Arrays.fill(xp, c * len, (c + 1) * len, 0f);
                for (int n = 0; n < nb; n++) {
                    int src = ((first + n) * g.c + grp * cg + c) * g.h * g.w;
                    for (int ih = 0; ih < g.h; ih++) {
                        System.arraycopy(x, src + ih * g.w, xp, c * len + n * sample + (g.padTop + ih) * ws + g.padLeft, g.w);
                    }
                }
            });
            par.forEach(kg, k -> {
                java.util.Arrays.fill(d, k * len, (k + 1) * len, 0f);
                for (int n = 0; n < nb; n++) {
                    int src = ((first + n) * g.k + grp * kg + k) * g.p * g.q;
                    for (int p = 0; p < g.p; p++) {
                        System.arraycopy(dy, src + p * g.q, d, k * len + n * sample + p * ws, g.q);
                    }
                }
            });
            par.forEach(kSuper * tSuper, task -> {
                int kb0 = (task / tSuper) * SK, tb0 = (task % tSuper) * ST;
                int kb1 = Math.min(kBlocks, kb0 + SK), tb1 = Math.min(tBlocks, tb0 + ST);
                int tileFloats = TK * TT * V;
                float[] lanes = Workspace.get(Workspace.SCRATCH, (long) SK * ST * tileFloats); // the task's accumulators
                java.util.Arrays.fill(lanes, 0, SK * ST * tileFloats, 0f);
                for (int f0 = 0; f0 < len; f0 += RUN) { // runs of the flat index: a tile's rows of one run stay in L1
                    int to = Math.min(len, f0 + RUN);
                    for (int tb = tb0; tb < tb1; tb++) {
                        for (int kb = kb0; kb < kb1; kb++) {
                            tile(f0, to, len, d, xp, offset, kb * TK, tb * TT, kg, crs, lanes, ((tb - tb0) * SK + kb - kb0) * tileFloats);
                        }
                    }
                }
                for (int tb = tb0; tb < tb1; tb++) {
                    for (int kb = kb0; kb < kb1; kb++) {
                        int k0 = kb * TK, t0 = tb * TT;
                        add(lanes, ((tb - tb0) * SK + kb - kb0) * tileFloats, Math.min(TK, kg - k0), Math.min(TT, crs - t0), sum, t0, k0, kg);
                    }
                }
            });
        }
    }

    /**
     * Channels [k0, k0 + 4) x taps [t0, t0 + 6) (fewer at the edges) over flat indices [from, to), onto the tile's
     * accumulators at lanes[base ..]: accumulator (k, t) at base + ((k - k0)*6 + t - t0)*V.
     */
    private static void tile(int from, int to, int len, float[] d, float[] xp, int[] offset, int k0, int t0, int kg, int crs,
                             float[] lanes, int base) {
        int kn = Math.min(TK, kg - k0), tn = Math.min(TT, crs - t0);
        if (kn == TK && tn == TT) {
            tile4x6(from, to, len, d, k0 * len, xp, offset, t0, lanes, base);
            return;
        }
        for (int k = k0; k < k0 + kn; k++) {
            int row = base + (k - k0) * TT * V;
            if (tn == TT) {
                tile1x6(from, to, d, k * len, xp, offset, t0, lanes, row);
            } else {
                for (int t = t0; t < t0 + tn; t++) {
                    tile1x1(from, to, d, k * len, xp, offset[t], lanes, row + (t - t0) * V);
                }
            }
        }
    }

    /** sum[(t0 + t) * kg + k0 + k] += the lanes of the tile's accumulator (k, t) at lanes[base ..], added in lane order. */
    private static void add(float[] lanes, int tileBase, int kn, int tn, float[] sum, int t0, int k0, int kg) {
        for (int k = 0; k < kn; k++) {
            for (int t = 0; t < tn; t++) {
                int base = tileBase + (k * TT + t) * V;
                float s = 0;
                for (int i = 0; i < V; i++) {
                    s += lanes[base + i];
                }
                sum[(t0 + t) * kg + k0 + k] += s;
            }
        }
    }

    /**
     * The 4 x 6 tile over flat indices [f0, f1) (channel k's flat dy at d[d0 + k*ld ..], tap t's input at x[offset[t] ..]):
     * accumulators (k, t) into lanes[(k*6 + t)*V ..].
     */
    static void tile4x6(int f0, int f1, int ld, float[] d, int d0, float[] x, int[] offset, int t0, float[] lanes, int base) {
        FloatVector a00 = FloatVector.fromArray(S, lanes, base + 0 * V);
        FloatVector a01 = FloatVector.fromArray(S, lanes, base + 1 * V);
        FloatVector a02 = FloatVector.fromArray(S, lanes, base + 2 * V);
        FloatVector a03 = FloatVector.fromArray(S, lanes, base + 3 * V);
        FloatVector a04 = FloatVector.fromArray(S, lanes, base + 4 * V);
        FloatVector a05 = FloatVector.fromArray(S, lanes, base + 5 * V);
        FloatVector a10 = FloatVector.fromArray(S, lanes, base + 6 * V);
        FloatVector a11 = FloatVector.fromArray(S, lanes, base + 7 * V);
        FloatVector a12 = FloatVector.fromArray(S, lanes, base + 8 * V);
        FloatVector a13 = FloatVector.fromArray(S, lanes, base + 9 * V);
        FloatVector a14 = FloatVector.fromArray(S, lanes, base + 10 * V);
        FloatVector a15 = FloatVector.fromArray(S, lanes, base + 11 * V);
        FloatVector a20 = FloatVector.fromArray(S, lanes, base + 12 * V);
        FloatVector a21 = FloatVector.fromArray(S, lanes, base + 13 * V);
        FloatVector a22 = FloatVector.fromArray(S, lanes, base + 14 * V);
        FloatVector a23 = FloatVector.fromArray(S, lanes, base + 15 * V);
        FloatVector a24 = FloatVector.fromArray(S, lanes, base + 16 * V);
        FloatVector a25 = FloatVector.fromArray(S, lanes, base + 17 * V);
        FloatVector a30 = FloatVector.fromArray(S, lanes, base + 18 * V);
        FloatVector a31 = FloatVector.fromArray(S, lanes, base + 19 * V);
        FloatVector a32 = FloatVector.fromArray(S, lanes, base + 20 * V);
        FloatVector a33 = FloatVector.fromArray(S, lanes, base + 21 * V);
        FloatVector a34 = FloatVector.fromArray(S, lanes, base + 22 * V);
        FloatVector a35 = FloatVector.fromArray(S, lanes, base + 23 * V);
        int o0 = offset[t0], o1 = offset[t0 + 1], o2 = offset[t0 + 2], o3 = offset[t0 + 3], o4 = offset[t0 + 4], o5 = offset[t0 + 5];
        int d1 = d0 + ld, d2 = d1 + ld, d3 = d2 + ld;
        for (int f = f0; f < f1; f += V) {
            FloatVector y0 = FloatVector.fromArray(S, d, d0 + f), y1 = FloatVector.fromArray(S, d, d1 + f);
            FloatVector y2 = FloatVector.fromArray(S, d, d2 + f), y3 = FloatVector.fromArray(S, d, d3 + f);
            FloatVector x0 = FloatVector.fromArray(S, x, o0 + f);
            a00 = y0.fma(x0, a00);
            a10 = y1.fma(x0, a10);
            a20 = y2.fma(x0, a20);
            a30 = y3.fma(x0, a30);
            FloatVector x1 = FloatVector.fromArray(S, x, o1 + f);
            a01 = y0.fma(x1, a01);
            a11 = y1.fma(x1, a11);
            a21 = y2.fma(x1, a21);
            a31 = y3.fma(x1, a31);
            FloatVector x2 = FloatVector.fromArray(S, x, o2 + f);
            a02 = y0.fma(x2, a02);
            a12 = y1.fma(x2, a12);
            a22 = y2.fma(x2, a22);
            a32 = y3.fma(x2, a32);
            FloatVector x3 = FloatVector.fromArray(S, x, o3 + f);
            a03 = y0.fma(x3, a03);
            a13 = y1.fma(x3, a13);
            a23 = y2.fma(x3, a23);
            a33 = y3.fma(x3, a33);
            FloatVector x4 = FloatVector.fromArray(S, x, o4 + f);
            a04 = y0.fma(x4, a04);
            a14 = y1.fma(x4, a14);
            a24 = y2.fma(x4, a24);
            a34 = y3.fma(x4, a34);
            FloatVector x5 = FloatVector.fromArray(S, x, o5 + f);
            a05 = y0.fma(x5, a05);
            a15 = y1.fma(x5, a15);
            a25 = y2.fma(x5, a25);
            a35 = y3.fma(x5, a35);
        }
        a00.intoArray(lanes, base + 0 * V);
        a01.intoArray(lanes, base + 1 * V);
        a02.intoArray(lanes, base + 2 * V);
        a03.intoArray(lanes, base + 3 * V);
        a04.intoArray(lanes, base + 4 * V);
        a05.intoArray(lanes, base + 5 * V);
        a10.intoArray(lanes, base + 6 * V);
        a11.intoArray(lanes, base + 7 * V);
        a12.intoArray(lanes, base + 8 * V);
        a13.intoArray(lanes, base + 9 * V);
        a14.intoArray(lanes, base + 10 * V);
        a15.intoArray(lanes, base + 11 * V);
        a20.intoArray(lanes, base + 12 * V);
        a21.intoArray(lanes, base + 13 * V);
        a22.intoArray(lanes, base + 14 * V);
        a23.intoArray(lanes, base + 15 * V);
        a24.intoArray(lanes, base + 16 * V);
        a25.intoArray(lanes, base + 17 * V);
        a30.intoArray(lanes, base + 18 * V);
        a31.intoArray(lanes, base + 19 * V);
        a32.intoArray(lanes, base + 20 * V);
        a33.intoArray(lanes, base + 21 * V);
        a34.intoArray(lanes, base + 22 * V);
        a35.intoArray(lanes, base + 23 * V);
    }

    /** One channel x 6 taps over [f0, f1): accumulators t into lanes[t*V ..]. */
    static void tile1x6(int f0, int f1, float[] d, int d0, float[] x, int[] offset, int t0, float[] lanes, int base) {
        FloatVector a0 = FloatVector.fromArray(S, lanes, base), a1 = FloatVector.fromArray(S, lanes, base + V),
                a2 = FloatVector.fromArray(S, lanes, base + 2 * V), a3 = FloatVector.fromArray(S, lanes, base + 3 * V),
                a4 = FloatVector.fromArray(S, lanes, base + 4 * V), a5 = FloatVector.fromArray(S, lanes, base + 5 * V);
        int o0 = offset[t0], o1 = offset[t0 + 1], o2 = offset[t0 + 2], o3 = offset[t0 + 3], o4 = offset[t0 + 4], o5 = offset[t0 + 5];
        for (int f = f0; f < f1; f += V) {
            FloatVector y = FloatVector.fromArray(S, d, d0 + f);
            a0 = y.fma(FloatVector.fromArray(S, x, o0 + f), a0);
            a1 = y.fma(FloatVector.fromArray(S, x, o1 + f), a1);
            a2 = y.fma(FloatVector.fromArray(S, x, o2 + f), a2);
            a3 = y.fma(FloatVector.fromArray(S, x, o3 + f), a3);
            a4 = y.fma(FloatVector.fromArray(S, x, o4 + f), a4);
            a5 = y.fma(FloatVector.fromArray(S, x, o5 + f), a5);
        }
        a0.intoArray(lanes, base);
        a1.intoArray(lanes, base + V);
        a2.intoArray(lanes, base + 2 * V);
        a3.intoArray(lanes, base + 3 * V);
        a4.intoArray(lanes, base + 4 * V);
        a5.intoArray(lanes, base + 5 * V);
    }

    /** One channel x one tap (input at x[o + f]) over [f0, f1): the accumulator into lanes[0 .. V). */
    static void tile1x1(int f0, int f1, float[] d, int d0, float[] x, int o, float[] lanes, int base) {
        FloatVector a = FloatVector.fromArray(S, lanes, base);
        for (int f = f0; f < f1; f += V) {
            a = FloatVector.fromArray(S, d, d0 + f).fma(FloatVector.fromArray(S, x, o + f), a);
        }
        a.intoArray(lanes, base);
    }
}
