package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The direct weight gradient on the Vector API, vectorised over output channels (as oneDNN's and CUTLASS's wgrad
 * are): for every output pixel, {@link #KB} consecutive channels of dy (two vectors, from a channel-innermost copy of
 * dy) are multiplied by one input value per tap, broadcast, into a register tile of 2 x {@link #T} accumulators, each
 * lane a different output channel. So no lanes are ever added across (no horizontal sums), the input is read as
 * scalars at any stride or dilation (stride-2 layers included), and only real output pixels are visited (no padded
 * columns): per pixel 2 dy vectors and 12 broadcasts feed 24 FMAs.
 *
 * <p>Layouts, per batch of samples (as many as {@link #batchFloats} allows): the group's input zero-padded,
 * {@code xp[c][n][Hp][Wp]} (Hp = H + pt + pb, Wp = W + pl + pr; the padding's zeros are multiplied like PyTorch's, so
 * 0 x inf gives NaN there too), and dy transposed to {@code dyT[kb][n][p][q][KB]} (channels past K/G are zeros, their
 * results dropped). Each block of KB channels x T taps (taps past C/G*R*S repeat tap 0, dropped) sweeps every pixel in
 * order, in chunks of {@link #CHUNK} pixels summed from zero in registers and added into float64
 * totals: each weight's sum has a fixed order whatever the thread count (deterministic), and its rounding error grows
 * with the chunk, not with N*P*Q.
 */
final class VectorWgradBroadcast {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile: two vectors. */
    static final int KB = 2 * V;
    /** Taps per register tile. */
    static final int T = 12;
    /** Pixels per partial sum: 512 KiB of dy per channel block at V = 16, kept in L2 while the taps go by. */
    static final int CHUNK = 4096;
    /** Vector blocks that one task sweeps together (each chunk's broadcast rows then read once for all of them). */
    static final int SHARED_BLOCKS = 4;
    /** Floats of padded input and transposed dy per batch of samples at most (64 MiB; tests lower it). */
    static volatile long batchFloats = 1L << 24;

    private VectorWgradBroadcast() {
    }

    /** Groups of at least one vector of output or of input channels (fewer: {@link VectorWeightGradient}). */
    static boolean applies(ConvGeometry g) {
        return g.kPerGroup() >= V || g.cPerGroup() >= V;
    }

    /**
     * dw (overwritten, K x C/G x R x S) from x and dy, group by group (the groups in parallel when there are at least
     * twice as many as threads, else each group's tiles): vectorised over output channels (dy transposed) or, where that
     * is the smaller copy and there are enough of them, over input channels (the padded input transposed,
     * {@code xT[c][n][Hp][Wp][KB]}, dy broadcast straight from NCHW; the 1 x 1 expanding layers).
     */
    static void run(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par) {
        WeightGradient.forEachGroup(g, par, (grp, inner) -> {
            if (overInputs(g)) {
                overInputChannels(g, x, dy, grp, dw, inner);
            } else {
                overOutputChannels(g, x, dy, grp, dw, inner);
            }
        });
    }

    /** Whether g is vectorised over input channels: enough of them, and the padded input is the smaller copy (or K/G < V). */
    static boolean overInputs(ConvGeometry g) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), plane = g.paddedH() * g.paddedW();
        return cg >= V && (kg < V || (long) cg * plane < (long) kg * g.p * g.q);
    }

    private static void overOutputChannels(ConvGeometry g, float[] x, float[] dy, int grp, float[] dw, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), rs = g.r * g.s, crs = cg * rs, pq = g.p * g.q;
        int wp = g.paddedW(), plane = g.paddedH() * wp;
        int kBlocks = (kg + KB - 1) / KB, tBlocks = (crs + T - 1) / T;
        int batch = (int) Math.max(1, Math.min(g.n, batchFloats / ((long) cg * plane + (long) kBlocks * KB * pq)));
        double[] total = new double[kBlocks * tBlocks * T * KB]; // [kb][tb][t][KB]: each block's own region
        for (int n0 = 0; n0 < g.n; n0 += batch) {
            int nb = Math.min(batch, g.n - n0), first = n0, cs = nb * plane, pixels = nb * pq;
            int[] off = new int[tBlocks * T];
            for (int t = 0; t < off.length; t++) {
                int tap = t < crs ? t : 0, c = tap / rs, r = (tap % rs) / g.s, s = tap % g.s;
                off[t] = c * cs + r * g.dilationH * wp + s * g.dilationW;
            }
            float[] xp = Workspace.get(Workspace.COL, (long) cg * cs);
            float[] d = Workspace.get(Workspace.PACK_B, (long) kBlocks * KB * pixels);
            par.forEach(cg, c -> {
                java.util.Arrays.fill(xp, c * cs, (c + 1) * cs, 0f);
                for (int n = 0; n < nb; n++) {
                    int src = ((first + n) * g.c + grp * cg + c) * g.h * g.w, dst = c * cs + n * plane + g.padTop * wp + g.padLeft;
                    for (int ih = 0; ih < g.h; ih++) {
                        System.arraycopy(x, src + ih * g.w, xp, dst + ih * wp, g.w);
                    }
                }
            });
            par.forEach(kBlocks * nb, kn -> { // dy transposed in blocks of 64 pixels: the writes stay in L1
                int kb = kn / nb, n = kn % nb, base = (kb * pixels + n * pq) * KB;
                for (int i0 = 0; i0 < pq; i0 += 64) {
                    int i1 = Math.min(pq, i0 + 64);
                    for (int lane = 0; lane < KB; lane++) {
                        int k = kb * KB + lane, src = ((first + n) * g.k + grp * kg + k) * pq;
                        for (int i = i0; i < i1; i++) {
                            d[base + i * KB + lane] = k < kg ? dy[src + i] : 0f;
                        }
                    }
                }
            });
            int[] at = inputPositions(g, nb, wp, plane);
            sweep(kBlocks, tBlocks, pixels, par, total, (kb, tb, f0, f1, part) ->
                    kernel(f0, f1, null, d, kb * pixels * KB, at, xp, off, tb * T, part));
        }
        for (int kb = 0; kb < kBlocks; kb++) {
            for (int tb = 0; tb < tBlocks; tb++) {
                int at = (kb * tBlocks + tb) * T * KB;
                for (int t = 0; t < T && tb * T + t < crs; t++) {
                    for (int lane = 0; lane < KB && kb * KB + lane < kg; lane++) {
                        dw[(grp * kg + kb * KB + lane) * crs + tb * T + t] = (float) total[at + t * KB + lane];
                    }
                }
            }
        }
    }

    private static void overInputChannels(ConvGeometry g, float[] x, float[] dy, int grp, float[] dw, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), rs = g.r * g.s, pq = g.p * g.q;
        int wp = g.paddedW(), plane = g.paddedH() * wp;
        int cBlocks = (cg + KB - 1) / KB, kTiles = (kg + T - 1) / T, tBlocks = rs * kTiles; // tile: one tap (r, s), T channels k
        int batch = (int) Math.max(1, Math.min(g.n, batchFloats / ((long) cBlocks * KB * plane)));
        double[] total = new double[cBlocks * tBlocks * T * KB]; // [cb][rs][kTile][t][KB]
        for (int n0 = 0; n0 < g.n; n0 += batch) {
            int nb = Math.min(batch, g.n - n0), first = n0, cs = nb * plane, pixels = nb * pq;
            int[] off = new int[kTiles * T]; // channel k's plane of dy in the batch's first sample
            for (int t = 0; t < off.length; t++) {
                off[t] = ((first * g.k) + grp * kg + (t < kg ? t : 0)) * pq;
            }
            float[] xt = Workspace.get(Workspace.COL, (long) cBlocks * KB * cs);
            par.forEach(cBlocks * nb, cn -> { // the padded input transposed, a row at a time: the writes stay in L1
                int cb = cn / nb, n = cn % nb, base = (cb * cs + n * plane) * KB;
                java.util.Arrays.fill(xt, base, base + plane * KB, 0f);
                for (int ih = 0; ih < g.h; ih++) {
                    int row = base + ((g.padTop + ih) * wp + g.padLeft) * KB;
                    for (int lane = 0; lane < KB && cb * KB + lane < cg; lane++) {
                        int src = (((first + n) * g.c + grp * cg + cb * KB + lane) * g.h + ih) * g.w;
                        for (int iw = 0; iw < g.w; iw++) {
                            xt[row + iw * KB + lane] = x[src + iw];
                        }
                    }
                }
            });
            int[] at = inputPositions(g, nb, wp, plane), xAt = new int[pixels], dAt = new int[pixels];
            for (int n = 0, f = 0; n < nb; n++) {
                for (int i = 0; i < pq; i++, f++) {
                    xAt[f] = at[f] * KB;
                    dAt[f] = n * g.k * pq + i;
                }
            }
            sweep(cBlocks, tBlocks, pixels, par, total, (cb, tb, f0, f1, part) -> {
                int tap = tb / kTiles, r = tap / g.s, s = tap % g.s;
                kernel(f0, f1, xAt, xt, (cb * cs + r * g.dilationH * wp + s * g.dilationW) * KB, dAt, dy, off, (tb % kTiles) * T, part);
            });
        }
        for (int cb = 0; cb < cBlocks; cb++) {
            for (int tb = 0; tb < tBlocks; tb++) {
                int at = (cb * tBlocks + tb) * T * KB, tap = tb / kTiles, k0 = (tb % kTiles) * T;
                for (int t = 0; t < T && k0 + t < kg; t++) {
                    for (int lane = 0; lane < KB && cb * KB + lane < cg; lane++) {
                        dw[((grp * kg + k0 + t) * cg + cb * KB + lane) * rs + tap] = (float) total[at + t * KB + lane];
                    }
                }
            }
        }
    }

    /** Each output pixel's position in the padded input (tap (0, 0) of channel 0): sample, row and column. */
    private static int[] inputPositions(ConvGeometry g, int nb, int wp, int plane) {
        int[] at = new int[nb * g.p * g.q];
        for (int n = 0, f = 0; n < nb; n++) {
            for (int p = 0; p < g.p; p++) {
                for (int q = 0; q < g.q; q++, f++) {
                    at[f] = n * plane + p * g.strideH * wp + q * g.strideW;
                }
            }
        }
        return at;
    }

    /** One register tile of vector block vb, broadcast tile tb over pixels [f0, f1), summed from zero into part. */
    @FunctionalInterface
    private interface Tile {
        void run(int vb, int tb, int f0, int f1, float[] part);
    }

    /**
     * Runs every (vector block, broadcast tile) over all pixels, in chunks added into float64 totals
     * ({@code total[(vb * tBlocks + tb) * T * KB ..]}). A task takes a run of tiles and, when there are at most
     * {@link #SHARED_BLOCKS} vector blocks, all of them (chunks of CHUNK / vBlocks pixels, so the chunk's vector operand
     * stays in L2 while the broadcast rows are read once), else one vector block (chunks of CHUNK). The chunk follows
     * from the geometry alone and which task computes a block changes nothing in its sums: the same bits on any thread
     * count.
     */
    private static void sweep(int vBlocks, int tBlocks, int pixels, Parallel par, double[] total, Tile tile) {
        boolean shared = vBlocks <= SHARED_BLOCKS;
        int chunk = shared ? CHUNK / vBlocks : CHUNK, groups = shared ? 1 : vBlocks;
        int runs = Math.min(tBlocks, Math.max(1, 8 * par.threads() / groups)), perRun = (tBlocks + runs - 1) / runs;
        runs = (tBlocks + perRun - 1) / perRun;
        int runCount = runs;
        par.forEach(groups * runCount, task -> {
            int group = task / runCount, tb0 = (task % runCount) * perRun, tb1 = Math.min(tBlocks, tb0 + perRun);
            int vb0 = shared ? 0 : group, vb1 = shared ? vBlocks : group + 1;
            float[] part = Workspace.get(Workspace.SCRATCH, (long) T * KB);
            for (int f0 = 0; f0 < pixels; f0 += chunk) {
                for (int tb = tb0; tb < tb1; tb++) {
                    for (int vb = vb0; vb < vb1; vb++) {
                        tile.run(vb, tb, f0, Math.min(pixels, f0 + chunk), part);
                        int mine = (vb * tBlocks + tb) * T * KB;
                        for (int i = 0; i < T * KB; i++) {
                            total[mine + i] += part[i];
                        }
                    }
                }
            }
        });
    }

    /**
     * The 2 x 12 register tile over the batch's output pixels [f0, f1): pixel f's KB-channel vector operand at
     * v[vBase + vAt[f] ..] (v[vBase + f*KB ..] when vAt is null: a table lookup per pixel costs ~20%), its broadcast operand t at b[off[t0 + t] + bAt[f]]. Sums from zero; accumulator (v, t) goes to
     * part[(t*2 + v)*V ..], that is part[t*KB + lane]. One flat loop: with the loop nested per output row, JDK 17's C2 kept the accumulators boxed
     * across the outer loop (measured 4 GFLOP/s against 115 flat, one thread, AMD Zen 4).
     */
    static void kernel(int f0, int f1, int[] vAt, float[] v, int vBase, int[] bAt, float[] b, int[] off, int t0, float[] part) {
        FloatVector z = FloatVector.zero(S);
        FloatVector a0_0 = z, a0_1 = z, a0_2 = z, a0_3 = z, a0_4 = z, a0_5 = z,
                a0_6 = z, a0_7 = z, a0_8 = z, a0_9 = z, a0_10 = z, a0_11 = z,
                a1_0 = z, a1_1 = z, a1_2 = z, a1_3 = z, a1_4 = z, a1_5 = z,
                a1_6 = z, a1_7 = z, a1_8 = z, a1_9 = z, a1_10 = z, a1_11 = z;
        int o0 = off[t0 + 0], o1 = off[t0 + 1], o2 = off[t0 + 2], o3 = off[t0 + 3], o4 = off[t0 + 4], o5 = off[t0 + 5],
                o6 = off[t0 + 6], o7 = off[t0 + 7], o8 = off[t0 + 8], o9 = off[t0 + 9], o10 = off[t0 + 10], o11 = off[t0 + 11];
        for (int f = f0; f < f1; f++) {
            int vi = vAt == null ? vBase + f * KB : vBase + vAt[f], xi = bAt[f]; // (the null test is hoisted out of the loop)
            FloatVector y0 = FloatVector.fromArray(S, v, vi), y1 = FloatVector.fromArray(S, v, vi + V);
            FloatVector b0 = FloatVector.broadcast(S, b[o0 + xi]);
            a0_0 = y0.fma(b0, a0_0);
            a1_0 = y1.fma(b0, a1_0);
            FloatVector b1 = FloatVector.broadcast(S, b[o1 + xi]);
            a0_1 = y0.fma(b1, a0_1);
            a1_1 = y1.fma(b1, a1_1);
            FloatVector b2 = FloatVector.broadcast(S, b[o2 + xi]);
            a0_2 = y0.fma(b2, a0_2);
            a1_2 = y1.fma(b2, a1_2);
            FloatVector b3 = FloatVector.broadcast(S, b[o3 + xi]);
            a0_3 = y0.fma(b3, a0_3);
            a1_3 = y1.fma(b3, a1_3);
            FloatVector b4 = FloatVector.broadcast(S, b[o4 + xi]);
            a0_4 = y0.fma(b4, a0_4);
            a1_4 = y1.fma(b4, a1_4);
            FloatVector b5 = FloatVector.broadcast(S, b[o5 + xi]);
            a0_5 = y0.fma(b5, a0_5);
            a1_5 = y1.fma(b5, a1_5);
            FloatVector b6 = FloatVector.broadcast(S, b[o6 + xi]);
            a0_6 = y0.fma(b6, a0_6);
            a1_6 = y1.fma(b6, a1_6);
            FloatVector b7 = FloatVector.broadcast(S, b[o7 + xi]);
            a0_7 = y0.fma(b7, a0_7);
            a1_7 = y1.fma(b7, a1_7);
            FloatVector b8 = FloatVector.broadcast(S, b[o8 + xi]);
            a0_8 = y0.fma(b8, a0_8);
            a1_8 = y1.fma(b8, a1_8);
            FloatVector b9 = FloatVector.broadcast(S, b[o9 + xi]);
            a0_9 = y0.fma(b9, a0_9);
            a1_9 = y1.fma(b9, a1_9);
            FloatVector b10 = FloatVector.broadcast(S, b[o10 + xi]);
            a0_10 = y0.fma(b10, a0_10);
            a1_10 = y1.fma(b10, a1_10);
            FloatVector b11 = FloatVector.broadcast(S, b[o11 + xi]);
            a0_11 = y0.fma(b11, a0_11);
            a1_11 = y1.fma(b11, a1_11);
        }
        a0_0.intoArray(part, (0 * 2 + 0) * V);
        a1_0.intoArray(part, (0 * 2 + 1) * V);
        a0_1.intoArray(part, (1 * 2 + 0) * V);
        a1_1.intoArray(part, (1 * 2 + 1) * V);
        a0_2.intoArray(part, (2 * 2 + 0) * V);
        a1_2.intoArray(part, (2 * 2 + 1) * V);
        a0_3.intoArray(part, (3 * 2 + 0) * V);
        a1_3.intoArray(part, (3 * 2 + 1) * V);
        a0_4.intoArray(part, (4 * 2 + 0) * V);
        a1_4.intoArray(part, (4 * 2 + 1) * V);
        a0_5.intoArray(part, (5 * 2 + 0) * V);
        a1_5.intoArray(part, (5 * 2 + 1) * V);
        a0_6.intoArray(part, (6 * 2 + 0) * V);
        a1_6.intoArray(part, (6 * 2 + 1) * V);
        a0_7.intoArray(part, (7 * 2 + 0) * V);
        a1_7.intoArray(part, (7 * 2 + 1) * V);
        a0_8.intoArray(part, (8 * 2 + 0) * V);
        a1_8.intoArray(part, (8 * 2 + 1) * V);
        a0_9.intoArray(part, (9 * 2 + 0) * V);
        a1_9.intoArray(part, (9 * 2 + 1) * V);
        a0_10.intoArray(part, (10 * 2 + 0) * V);
        a1_10.intoArray(part, (10 * 2 + 1) * V);
        a0_11.intoArray(part, (11 * 2 + 0) * V);
        a1_11.intoArray(part, (11 * 2 + 1) * V);
    }
}
