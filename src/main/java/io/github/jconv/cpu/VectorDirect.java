package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import java.util.concurrent.atomic.AtomicLong;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolution on the Vector API for layers with stride 1 along W (loaded only when the module is
 * present; {@link DirectConv} and {@link DepthwiseConv} call it). Layers that {@link VectorDirectChannels} takes
 * (stride 1, three taps per row, at least 2V output channels per group: the dense 3x3 layers) go there; this class
 * runs the rest.
 *
 * <p>A task takes one sample n, one group and a run of blocks of {@link #TK} output channels. It reads the
 * group's input from a zero-padded, thread-confined copy (C/G x (H+pt+pb) x (W+pl+pr), plus slack; {@link #padOnce}:
 * made once per call by each thread that runs a task of that pair), so every tap of every output lies inside it and
 * the loops have no bounds tests. A block's outputs
 * are computed into a scratch plane per channel (bias first), then copied into y row by row:
 * <ul>
 *   <li>With stride 1 along H too, output (p, q) reads padded input (p + r*dH, q + s*dW), i.e. flat index
 *       p*Wp + q plus the tap's offset: the whole output plane is one run of Wp-wide rows, computed as
 *       consecutive vectors across row ends (the Wp - Q columns per row that wrap into the next row are
 *       computed and dropped: 3% of the work at 56x56). No row-end tails, so nearly every vector goes
 *       through the widest tile.</li>
 *   <li>With a larger stride along H, each output row is one run of ceil(Q/V) vectors.</li>
 * </ul>
 * The register tile is {@link #TK} channels x {@link #TV} vectors (24 accumulators): for every tap (c, r, s)
 * it broadcasts the block's TK weights (packed side by side) and loads TV input vectors, each used for TK
 * FMAs. Measured on the 2-core AVX-512 machine with data in L1 (one core, GFLOP/s): 4x6 163-176, 6x4 140-145,
 * 3x8 129-137, 2x12 117, the former 8 channels x 2 vectors 127-136; broadcasting the weights before the
 * loads beat the other order (140); unrolling the tap loop did not help. Sweeping a real 64-channel 56x56
 * plane the same kernel gives ~140 on one core (58% of that core's peak), whatever the channel chunk (4 to
 * 64) and even with aligned loads: the data, not the arithmetic, sets the pace there. Runs shorter than TV
 * vectors use 4x2 and 4x1 tiles. Blocks with fewer than TK channels (depthwise layers, a group's last
 * channels) go one channel at a time: over the flattened plane in runs of 8 vectors when the stride along H
 * is 1 (the depthwise layer 8x128x56x56 went from 1.98 to 1.47-1.62 ms), else four output rows at once.
 */
final class VectorDirect {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile. */
    static final int TK = 4;
    /** Vectors of outputs per register tile. */
    static final int TV = 6;
    /** Input channels per chunk of the reduction (see {@link #blocks}). */
    static final int CC = 16;
    /** Floats of scratch output per pass of {@link #blocks} (256 KiB). */
    static final int ACC = 1 << 16;

    private VectorDirect() {
    }

    /** y = conv(x, w) + bias for a geometry with strideW == 1. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        if (VectorDirectChannels.applies(g)) {
            VectorDirectChannels.forward(g, x, weights, bias, y, done, par);
            return;
        }
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s;
        int blocksPerGroup = (kg + TK - 1) / TK;
        // wp[block][(c*R + r)*S + s][j] = w[k0 + j][c][r][s]: the block's TK weights of one tap side by side
        float[] w = weights.raw;
        float[] wp = weights.packed((long) g.groups * blocksPerGroup * crs * TK, packed -> par.forEach(g.groups * blocksPerGroup, b -> {
            int k0 = (b / blocksPerGroup) * kg + (b % blocksPerGroup) * TK;
            int kb = Math.min(TK, (b / blocksPerGroup) * kg + kg - k0);
            for (int t = 0; t < crs; t++) {
                for (int j = 0; j < TK; j++) {
                    packed[(b * crs + t) * TK + j] = j < kb ? w[(k0 + j) * crs + t] : 0f;
                }
            }
        }));
        int[] taps = taps(g);
        int pairs = g.n * g.groups;
        int chunks = Math.min(blocksPerGroup, Math.max(1, (4 * par.threads() + pairs - 1) / pairs));
        int ws = g.paddedW(), padded = g.paddedH() * ws;
        long call = newCall();
        par.forEach(pairs * chunks, task -> {
            int pair = task / chunks, chunk = task % chunks;
            int n = pair / g.groups, grp = pair % g.groups;
            float[] xp = padOnce(call, g, x, pair, ws, padded);
            int b0 = blocksPerGroup * chunk / chunks, b1 = blocksPerGroup * (chunk + 1) / chunks;
            int full = Math.min(b1, kg / TK); // blocks [b0, full) have TK channels
            // at most ACC floats of scratch output per pass, so it stays in L2 beside the padded input
            int perPass = Math.max(1, ACC / (TK * plane(g)));
            for (int b = b0; b < full; b += perPass) {
                int nb = Math.min(perPass, full - b);
                blocks(g, taps, xp, wp, (grp * blocksPerGroup + b) * crs * TK, grp * kg + b * TK, nb, bias, y, n);
            }
            for (int b = Math.max(b0, full); b < b1; b++) {
                int k0 = grp * kg + b * TK, wOff = (grp * blocksPerGroup + b) * crs * TK;
                for (int j = 0; j < kg - b * TK; j++) {
                    if (g.strideH == 1) {
                        channelFlat(g, taps, xp, wp, wOff + j, k0 + j, bias, y, n);
                    } else {
                        rowsOfOneChannel(g, taps, xp, wp, wOff + j, k0 + j, bias, y, n);
                    }
                }
            }
            // the task's channels [b0*TK, min(b1*TK, K/G)) of (n, grp): whole planes, one run of y
            int pq = g.p * g.q, first = (n * g.k + grp * kg + b0 * TK) * pq;
            done.region(first, first + (Math.min(b1 * TK, kg) - b0 * TK) * pq);
        });
    }

    /**
     * The group's C/G planes at x[xOff ..] copied into xp, {@code plane} floats apart: input (ih, iw) of a plane at
     * (pt + ih) * ws + pl + iw, zeros elsewhere, then ws + TV*V floats of zero slack (the vectors past the last real
     * output, the wrapped columns and a run's last partial vector, read at most that far beyond the last plane). Any
     * ws >= W + max(pl, pr) works: the zeros after a row serve as its right padding and as the next row's left padding.
     */
    private static float[] padInto(float[] xp, ConvGeometry g, float[] x, int xOff, int ws, int plane) {
        int planes = g.cPerGroup();
        for (int c = 0; c < planes; c++) {
            padPlane(g, x, xOff + c * g.h * g.w, xp, c * plane, ws, plane);
        }
        java.util.Arrays.fill(xp, planes * plane, (int) paddedSize(g, ws, plane), 0f);
        return xp;
    }

    private static final AtomicLong CALLS = new AtomicLong();

    /** What a thread's {@link Workspace#PADDED} buffer holds: the pair of which call. */
    private static final class Padded {
        long call = -1;
        int pair = -1;
        float[] buffer;
    }

    private static final ThreadLocal<Padded> PADDED = ThreadLocal.withInitial(Padded::new);

    /** A new number for one call of a kernel whose tasks take their input from {@link #padOnce}. */
    static long newCall() {
        return CALLS.incrementAndGet();
    }

    /**
     * The (sample, group) pair's planes laid out as {@link #padInto} lays them out, in the thread's own
     * {@link Workspace#PADDED} buffer, copied only when that buffer does not hold this pair of this call already: a
     * thread pads a pair once for all its tasks on it (tasks are numbered pair after pair). Each thread reads its own
     * copy, in its own caches; a copy made by all the threads together before the tasks and then shared (the way before)
     * cost a second phase with its own wake-up and join, and its lines came from the other core's cache: 3x3 stride-2
     * layers at batch 1 took 10-25% longer (AMD EPYC Zen 5, two threads).
     */
    static float[] padOnce(long call, ConvGeometry g, float[] x, int pair, int ws, int plane) {
        long size = paddedSize(g, ws, plane);
        float[] xp = Workspace.get(Workspace.PADDED, size);
        Padded held = PADDED.get();
        if (held.call == call && held.pair == pair && held.buffer == xp) {
            return xp;
        }
        int n = pair / g.groups, grp = pair % g.groups;
        padInto(xp, g, x, (n * g.c + grp * g.cPerGroup()) * g.h * g.w, ws, plane);
        boolean kept = size <= Workspace.CACHE_LIMIT; // a larger buffer is a new one on every call: nothing to remember
        held.call = kept ? call : -1;
        held.pair = pair;
        held.buffer = kept ? xp : null;
        return xp;
    }

    /**
     * One input plane, H rows of W floats at x[src ..], into the padded plane xp[at .. at + plane): input (ih, iw) at
     * at + (pt + ih)*ws + pl + iw, zeros everywhere else; each float written once.
     */
    static void padPlane(ConvGeometry g, float[] x, int src, float[] xp, int at, int ws, int plane) {
        int h = g.h, w = g.w, first = at + g.padTop * ws + g.padLeft, end = at + plane;
        java.util.Arrays.fill(xp, at, first, 0f);
        for (int ih = 0; ih < h; ih++) {
            int row = first + ih * ws;
            System.arraycopy(x, src + ih * w, xp, row, w);
            // after the row: its right padding and the next row's left padding, or the rest of the plane
            java.util.Arrays.fill(xp, row + w, ih + 1 < h ? row + ws : end, 0f);
        }
    }

    /** Floats of a padded pair's buffer ({@link #padInto}): the group's planes and the slack. */
    static long paddedSize(ConvGeometry g, int ws, int plane) {
        return (long) g.cPerGroup() * plane + ws + TV * V;
    }

    /** Floats of one channel's scratch output plane in {@link #blocks}: P rows of Wp (stride 1 along H) or of ceil(Q/V) vectors. */
    private static int plane(ConvGeometry g) {
        int wpad = g.paddedW();
        return g.strideH == 1 ? (g.p * wpad + V - 1) / V * V : g.p * ((g.q + V - 1) / V * V);
    }

    /**
     * All outputs of the nb blocks of TK channels from k0 of sample n (weights of the first at wp[wOff ..]), into
     * a scratch plane per channel, then into y. Loop order: input channels in chunks of {@link #CC}, then the
     * output vectors, then the blocks: a chunk's input around one run of TV vectors (CC x ~3 rows) stays in L1
     * while every block's tile uses it, and only the small weights stream.
     */
    private static void blocks(ConvGeometry g, int[] taps, float[] xp, float[] wp, int wOff, int k0, int nb, float[] bias,
                               float[] y, int n) {
        int wpad = g.paddedW(), rowVecs = (g.q + V - 1) / V;
        boolean flat = g.strideH == 1;
        int accRow = flat ? wpad : rowVecs * V;
        int plane = plane(g);
        float[] acc = Workspace.get(Workspace.SCRATCH, (long) nb * TK * plane);
        for (int j = 0; j < nb * TK; j++) {
            java.util.Arrays.fill(acc, j * plane, (j + 1) * plane, bias == null ? 0f : bias[k0 + j]);
        }
        int crs = taps.length, chunk = CC * g.r * g.s;
        for (int t0 = 0; t0 < crs; t0 += chunk) {
            int t1 = Math.min(crs, t0 + chunk);
            if (flat) {
                run(taps, t0, t1, xp, 0, wp, wOff, crs * TK, nb, acc, 0, plane / V, plane);
            } else {
                for (int p = 0; p < g.p; p++) {
                    run(taps, t0, t1, xp, p * g.strideH * wpad, wp, wOff, crs * TK, nb, acc, p * accRow, rowVecs, plane);
                }
            }
        }
        copyOut(g, acc, plane, accRow, k0, nb * TK, y, n);
    }

    /** Channels [k0, k0 + count) of sample n from scratch planes (row p of channel j at acc[j*plane + p*accRow]) into y. */
    private static void copyOut(ConvGeometry g, float[] acc, int plane, int accRow, int k0, int count, float[] y, int n) {
        for (int j = 0; j < count; j++) {
            int yPlane = (n * g.k + k0 + j) * g.p * g.q;
            for (int p = 0; p < g.p; p++) {
                System.arraycopy(acc, j * plane + p * accRow, y, yPlane + p * g.q, g.q);
            }
        }
    }

    /**
     * All outputs of channel k (weights at wp[wOff + tap*TK]) for stride 1 along H: the flattened plane (as in
     * {@link #blocks}) in runs of 8 vectors, 8 independent FMA chains (depthwise layers have only R*S taps, so
     * one chain per vector would wait on the FMA latency).
     */
    private static void channelFlat(ConvGeometry g, int[] taps, float[] xp, float[] wp, int wOff, int k, float[] bias,
                                    float[] y, int n) {
        int plane = plane(g);
        float[] acc = Workspace.get(Workspace.SCRATCH, plane);
        java.util.Arrays.fill(acc, 0, plane, bias == null ? 0f : bias[k]);
        int vecs = plane / V, v = 0;
        for (; v + 8 <= vecs; v += 8) {
            tile1x8(taps, xp, v * V, wp, wOff, acc, v * V);
        }
        if (v + 4 <= vecs) {
            rowsBlock(taps, xp, v * V, V, wp, wOff, acc, v * V, V, 4); // 4 consecutive vectors: 4 chains
            v += 4;
        }
        for (; v < vecs; v++) {
            block1(taps, xp, v * V, wp, wOff, acc, v * V);
        }
        copyOut(g, acc, plane, g.paddedW(), k, 1, y, n);
    }

    /** One channel x 8 vectors: out[outOff + i*V ..] += sum over taps of wp[tap*TK] * xp[at + tap + i*V ..]. */
    private static void tile1x8(int[] taps, float[] xp, int at, float[] wp, int wOff, float[] out, int outOff) {
        FloatVector a0 = FloatVector.fromArray(S, out, outOff), a1 = FloatVector.fromArray(S, out, outOff + V);
        FloatVector a2 = FloatVector.fromArray(S, out, outOff + 2 * V), a3 = FloatVector.fromArray(S, out, outOff + 3 * V);
        FloatVector a4 = FloatVector.fromArray(S, out, outOff + 4 * V), a5 = FloatVector.fromArray(S, out, outOff + 5 * V);
        FloatVector a6 = FloatVector.fromArray(S, out, outOff + 6 * V), a7 = FloatVector.fromArray(S, out, outOff + 7 * V);
        for (int i = 0, t = wOff; i < taps.length; i++, t += TK) {
            int x = at + taps[i];
            FloatVector w = FloatVector.broadcast(S, wp[t]);
            a0 = FloatVector.fromArray(S, xp, x).fma(w, a0);
            a1 = FloatVector.fromArray(S, xp, x + V).fma(w, a1);
            a2 = FloatVector.fromArray(S, xp, x + 2 * V).fma(w, a2);
            a3 = FloatVector.fromArray(S, xp, x + 3 * V).fma(w, a3);
            a4 = FloatVector.fromArray(S, xp, x + 4 * V).fma(w, a4);
            a5 = FloatVector.fromArray(S, xp, x + 5 * V).fma(w, a5);
            a6 = FloatVector.fromArray(S, xp, x + 6 * V).fma(w, a6);
            a7 = FloatVector.fromArray(S, xp, x + 7 * V).fma(w, a7);
        }
        a0.intoArray(out, outOff);
        a1.intoArray(out, outOff + V);
        a2.intoArray(out, outOff + 2 * V);
        a3.intoArray(out, outOff + 3 * V);
        a4.intoArray(out, outOff + 4 * V);
        a5.intoArray(out, outOff + 5 * V);
        a6.intoArray(out, outOff + 6 * V);
        a7.intoArray(out, outOff + 7 * V);
    }

    /**
     * {@code vecs} consecutive output vectors of nb blocks (block b's weights at wp[wOff + b*wBlock ..], its
     * channel j's outputs at acc[(b*TK + j)*plane + accOff ..]) += taps [t0, t1) applied at xp[in ..].
     */
    private static void run(int[] taps, int t0, int t1, float[] xp, int in, float[] wp, int wOff, int wBlock, int nb,
                            float[] acc, int accOff, int vecs, int plane) {
        int w0 = wOff + t0 * TK, blockAcc = TK * plane;
        int v = 0;
        for (; v + TV <= vecs; v += TV) {
            for (int b = 0; b < nb; b++) {
                tile4x6(taps, t0, t1, xp, in + v * V, wp, w0 + b * wBlock, acc, b * blockAcc + accOff + v * V, plane);
            }
        }
        for (; v + 2 <= vecs; v += 2) {
            for (int b = 0; b < nb; b++) {
                tile4x2(taps, t0, t1, xp, in + v * V, wp, w0 + b * wBlock, acc, b * blockAcc + accOff + v * V, plane);
            }
        }
        if (v < vecs) {
            for (int b = 0; b < nb; b++) {
                tile4x1(taps, t0, t1, xp, in + v * V, wp, w0 + b * wBlock, acc, b * blockAcc + accOff + v * V, plane);
            }
        }
    }

    /**
     * All output rows of channel k (weights at wp[wOff + tap*TK]), four rows at a time so four independent FMA
     * chains hide the FMA latency (one chain per vector would wait on it: depthwise layers have only R*S taps).
     */
    private static void rowsOfOneChannel(ConvGeometry g, int[] taps, float[] xp, float[] wp, int wOff, int k,
                                         float[] bias, float[] y, int n) {
        int wpad = g.paddedW(), rowStep = g.strideH * wpad;
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
        for (int i = 0, t = wOff; i < taps.length; i++, t += TK) {
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
        int hp = g.paddedH(), wpad = g.paddedW();
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

    /** TK channels x 6 vector(s): out[j*plane + outOff ..] += sum over taps [t0, t1) of wp[tap][j] * xp[at + tap ..]. */
    private static void tile4x6(int[] taps, int t0, int t1, float[] xp, int at, float[] wp, int wOff, float[] out, int outOff, int plane) {
        int o0 = outOff;
        int o1 = outOff + 1 * plane;
        int o2 = outOff + 2 * plane;
        int o3 = outOff + 3 * plane;
        FloatVector a00 = FloatVector.fromArray(S, out, o0), a01 = FloatVector.fromArray(S, out, o0 + 1 * V), a02 = FloatVector.fromArray(S, out, o0 + 2 * V), a03 = FloatVector.fromArray(S, out, o0 + 3 * V), a04 = FloatVector.fromArray(S, out, o0 + 4 * V), a05 = FloatVector.fromArray(S, out, o0 + 5 * V);
        FloatVector a10 = FloatVector.fromArray(S, out, o1), a11 = FloatVector.fromArray(S, out, o1 + 1 * V), a12 = FloatVector.fromArray(S, out, o1 + 2 * V), a13 = FloatVector.fromArray(S, out, o1 + 3 * V), a14 = FloatVector.fromArray(S, out, o1 + 4 * V), a15 = FloatVector.fromArray(S, out, o1 + 5 * V);
        FloatVector a20 = FloatVector.fromArray(S, out, o2), a21 = FloatVector.fromArray(S, out, o2 + 1 * V), a22 = FloatVector.fromArray(S, out, o2 + 2 * V), a23 = FloatVector.fromArray(S, out, o2 + 3 * V), a24 = FloatVector.fromArray(S, out, o2 + 4 * V), a25 = FloatVector.fromArray(S, out, o2 + 5 * V);
        FloatVector a30 = FloatVector.fromArray(S, out, o3), a31 = FloatVector.fromArray(S, out, o3 + 1 * V), a32 = FloatVector.fromArray(S, out, o3 + 2 * V), a33 = FloatVector.fromArray(S, out, o3 + 3 * V), a34 = FloatVector.fromArray(S, out, o3 + 4 * V), a35 = FloatVector.fromArray(S, out, o3 + 5 * V);
        for (int i = t0, t = wOff; i < t1; i++, t += TK) {
            int x = at + taps[i];
            FloatVector w0 = FloatVector.broadcast(S, wp[t]), w1 = FloatVector.broadcast(S, wp[t + 1]);
            FloatVector w2 = FloatVector.broadcast(S, wp[t + 2]), w3 = FloatVector.broadcast(S, wp[t + 3]);
            FloatVector x0 = FloatVector.fromArray(S, xp, x);
            a00 = x0.fma(w0, a00);
            a10 = x0.fma(w1, a10);
            a20 = x0.fma(w2, a20);
            a30 = x0.fma(w3, a30);
            FloatVector x1 = FloatVector.fromArray(S, xp, x + 1 * V);
            a01 = x1.fma(w0, a01);
            a11 = x1.fma(w1, a11);
            a21 = x1.fma(w2, a21);
            a31 = x1.fma(w3, a31);
            FloatVector x2 = FloatVector.fromArray(S, xp, x + 2 * V);
            a02 = x2.fma(w0, a02);
            a12 = x2.fma(w1, a12);
            a22 = x2.fma(w2, a22);
            a32 = x2.fma(w3, a32);
            FloatVector x3 = FloatVector.fromArray(S, xp, x + 3 * V);
            a03 = x3.fma(w0, a03);
            a13 = x3.fma(w1, a13);
            a23 = x3.fma(w2, a23);
            a33 = x3.fma(w3, a33);
            FloatVector x4 = FloatVector.fromArray(S, xp, x + 4 * V);
            a04 = x4.fma(w0, a04);
            a14 = x4.fma(w1, a14);
            a24 = x4.fma(w2, a24);
            a34 = x4.fma(w3, a34);
            FloatVector x5 = FloatVector.fromArray(S, xp, x + 5 * V);
            a05 = x5.fma(w0, a05);
            a15 = x5.fma(w1, a15);
            a25 = x5.fma(w2, a25);
            a35 = x5.fma(w3, a35);
        }
        a00.intoArray(out, o0);
        a01.intoArray(out, o0 + 1 * V);
        a02.intoArray(out, o0 + 2 * V);
        a03.intoArray(out, o0 + 3 * V);
        a04.intoArray(out, o0 + 4 * V);
        a05.intoArray(out, o0 + 5 * V);
        a10.intoArray(out, o1);
        a11.intoArray(out, o1 + 1 * V);
        a12.intoArray(out, o1 + 2 * V);
        a13.intoArray(out, o1 + 3 * V);
        a14.intoArray(out, o1 + 4 * V);
        a15.intoArray(out, o1 + 5 * V);
        a20.intoArray(out, o2);
        a21.intoArray(out, o2 + 1 * V);
        a22.intoArray(out, o2 + 2 * V);
        a23.intoArray(out, o2 + 3 * V);
        a24.intoArray(out, o2 + 4 * V);
        a25.intoArray(out, o2 + 5 * V);
        a30.intoArray(out, o3);
        a31.intoArray(out, o3 + 1 * V);
        a32.intoArray(out, o3 + 2 * V);
        a33.intoArray(out, o3 + 3 * V);
        a34.intoArray(out, o3 + 4 * V);
        a35.intoArray(out, o3 + 5 * V);
    }

    /** TK channels x 2 vector(s): out[j*plane + outOff ..] += sum over taps [t0, t1) of wp[tap][j] * xp[at + tap ..]. */
    private static void tile4x2(int[] taps, int t0, int t1, float[] xp, int at, float[] wp, int wOff, float[] out, int outOff, int plane) {
        int o0 = outOff;
        int o1 = outOff + 1 * plane;
        int o2 = outOff + 2 * plane;
        int o3 = outOff + 3 * plane;
        FloatVector a00 = FloatVector.fromArray(S, out, o0), a01 = FloatVector.fromArray(S, out, o0 + 1 * V);
        FloatVector a10 = FloatVector.fromArray(S, out, o1), a11 = FloatVector.fromArray(S, out, o1 + 1 * V);
        FloatVector a20 = FloatVector.fromArray(S, out, o2), a21 = FloatVector.fromArray(S, out, o2 + 1 * V);
        FloatVector a30 = FloatVector.fromArray(S, out, o3), a31 = FloatVector.fromArray(S, out, o3 + 1 * V);
        for (int i = t0, t = wOff; i < t1; i++, t += TK) {
            int x = at + taps[i];
            FloatVector w0 = FloatVector.broadcast(S, wp[t]), w1 = FloatVector.broadcast(S, wp[t + 1]);
            FloatVector w2 = FloatVector.broadcast(S, wp[t + 2]), w3 = FloatVector.broadcast(S, wp[t + 3]);
            FloatVector x0 = FloatVector.fromArray(S, xp, x);
            a00 = x0.fma(w0, a00);
            a10 = x0.fma(w1, a10);
            a20 = x0.fma(w2, a20);
            a30 = x0.fma(w3, a30);
            FloatVector x1 = FloatVector.fromArray(S, xp, x + 1 * V);
            a01 = x1.fma(w0, a01);
            a11 = x1.fma(w1, a11);
            a21 = x1.fma(w2, a21);
            a31 = x1.fma(w3, a31);
        }
        a00.intoArray(out, o0);
        a01.intoArray(out, o0 + 1 * V);
        a10.intoArray(out, o1);
        a11.intoArray(out, o1 + 1 * V);
        a20.intoArray(out, o2);
        a21.intoArray(out, o2 + 1 * V);
        a30.intoArray(out, o3);
        a31.intoArray(out, o3 + 1 * V);
    }

    /** TK channels x 1 vector(s): out[j*plane + outOff ..] += sum over taps [t0, t1) of wp[tap][j] * xp[at + tap ..]. */
    private static void tile4x1(int[] taps, int t0, int t1, float[] xp, int at, float[] wp, int wOff, float[] out, int outOff, int plane) {
        int o0 = outOff;
        int o1 = outOff + 1 * plane;
        int o2 = outOff + 2 * plane;
        int o3 = outOff + 3 * plane;
        FloatVector a00 = FloatVector.fromArray(S, out, o0);
        FloatVector a10 = FloatVector.fromArray(S, out, o1);
        FloatVector a20 = FloatVector.fromArray(S, out, o2);
        FloatVector a30 = FloatVector.fromArray(S, out, o3);
        for (int i = t0, t = wOff; i < t1; i++, t += TK) {
            int x = at + taps[i];
            FloatVector w0 = FloatVector.broadcast(S, wp[t]), w1 = FloatVector.broadcast(S, wp[t + 1]);
            FloatVector w2 = FloatVector.broadcast(S, wp[t + 2]), w3 = FloatVector.broadcast(S, wp[t + 3]);
            FloatVector x0 = FloatVector.fromArray(S, xp, x);
            a00 = x0.fma(w0, a00);
            a10 = x0.fma(w1, a10);
            a20 = x0.fma(w2, a20);
            a30 = x0.fma(w3, a30);
        }
        a00.intoArray(out, o0);
        a10.intoArray(out, o1);
        a20.intoArray(out, o2);
        a30.intoArray(out, o3);
    }

    /** One channel (weights at wp[wOff + tap*TK]). */
    private static void block1(int[] taps, float[] xp, int row0, float[] wp, int wOff, float[] out, int outOff) {
        FloatVector a = FloatVector.fromArray(S, out, outOff);
        for (int i = 0, t = wOff; i < taps.length; i++, t += TK) {
            a = FloatVector.fromArray(S, xp, row0 + taps[i]).fma(FloatVector.broadcast(S, wp[t]), a);
        }
        a.intoArray(out, outOff);
    }
}
