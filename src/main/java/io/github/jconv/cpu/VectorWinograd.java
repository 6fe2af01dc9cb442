package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Winograd F(4x4, 3x3) for forward 3x3 layers at stride 1 (loaded only when the Vector API module is present;
 * {@link WinogradConv} calls it). Each 4x4 block of outputs ("tile") of a channel is A^T [sum_c (G w G^T) .* (B^T d B)] A
 * over the 6x6 input patch d under it (Lavin and Gray, 2016, interpolation points 0, +-1, +-2, infinity): 36
 * products per tile and input channel instead of 144, so a layer's multiply-adds fall to a quarter, paid for by the
 * transforms and by a larger rounding error (see {@link WinogradConv}).
 *
 * <p>Phases of a call: (1) the input of every sample is copied, V channels at a time, into zero-padded channel-blocked
 * planes ({@code xb[n][C/V][row][col][V]}, the rows and columns the tiles' patches read), so the transform reads V
 * channels per vector (an earlier layout with V tiles of a row per vector used a quarter of the lanes on 14x14 maps);
 * the copy also notes non-finite inputs, which make the call decline (see {@link #forward}). (2) Tasks over (group of
 * tile rows, chunk of output-channel blocks): the input transform of the group's tiles into {@code v[36][tiles][C]}
 * (done once for all of a group's tasks, in a loop of its own over groups and channel vectors, where the groups' v
 * together take at most 1 MiB: ResNet-50's 14x14 layers at batch 1; otherwise each task transforms its group, whose v
 * it then reads from its own cache); then per block of {@link #NB} output channels and each of the 36 transformed
 * positions, a GEMM [tiles x C] x [C x NB] on {@link VectorDirectStrided#tile}'s register tile (6 tiles x NB channels, the transformed weights as the
 * vector operand; the bias starts the sums of M[1][1], whose coefficient in every output is 1); then the output
 * transform with channels in the lanes, written to y and reported per channel and run of rows. The weights' transform
 * ({@code u[36][K/NB][C][NB]}, computed in float64, rounded once) is built once per plan.
 *
 * <p>Tried and left out: F(2x2, 3x3) for small maps (16 transformed positions, 4x4 patches two apart; its max relative
 * error in {@code WinogradTest} 3-9e-7 against this one's 8e-6-1.4e-5). 2 threads, 12 weight copies cycling,
 * alternating in one process (AMD EPYC Zen 5; ms, direct / F(4x4) / F(2x2)): batch 1, 256 @ 14 0.78 / 0.71 / 0.71,
 * 512 @ 7 0.76 / 1.38 / 1.04, 128 @ 28 0.65 / 0.54 / 0.73, 64 @ 56 0.68 / 0.55 / 0.89; batch 8, 256 @ 14 5.7 / 4.5 /
 * 4.6, 512 @ 7 5.9 / 7.0 / 7.2. At batch 1 on small maps its 1.8x direct's weights come from memory as this one's 4x
 * do, and its GEMM does not run faster. Also left out: each task transforming its block's raw weights chunk by chunk as
 * the GEMM goes (in float32, so a call reads only the raw weights): its ~100 lane operations per (output, input channel)
 * pair and group cost more than the memory saved (2 threads, weights from memory: 256 @ 14 0.85 -> 1.10 ms, 128 @ 28 0.72
 * -> 0.81, 64 @ 56 0.68 -> 0.78; the README's performance section).
 */
final class VectorWinograd {
    static final VectorSpecies<Float> S = VectorDirectStrided.S;
    static final int V = S.length();
    /** Output channels per GEMM block (four vectors), as {@link VectorDirectStrided}'s tile. */
    static final int NB = VectorDirectStrided.NB;
    /** Tiles per register tile. */
    static final int PX = VectorDirectStrided.PX;
    /** Transformed positions per tile (6 x 6). */
    static final int XI = 36;
    /**
     * Floats of transformed input a task's group of tiles aims at (its GEMMs read it once per channel block); a call whose
     * whole transformed input is at most twice this runs one group (threads permitting), since every group reads all the
     * transformed weights. ResNet-50's 256 -> 256 3x3 layer at 14x14, batch 1 (AMD EPYC Zen 5, 2 threads, 12 weight
     * copies cycling, alternating in one process): two groups of 12 tiles, each task transforming its own, 1.02-1.12 ms;
     * one group of 16, 0.67-0.75 ms; inside the trunk, with its input transformed once for the 4 tasks, 0.60-0.64 ms
     * against 0.85-0.89 before. Direct is still faster there from cold weights (in the trunk 0.76 vs 0.80 and 0.87 vs
     * 1.0 ms, alternating in one process; 4x the bytes of weights from memory), so the tuner leaves Winograd out there
     * ({@link CpuBackend#notTuned}); it wins only with its weights in cache (0.55 vs 0.67 ms). At batch 8 (5 groups
     * instead of 11: 5% slower) the rule keeps the former groups; the 28x28 layer at batch 1 (two groups, sharing their
     * transform) runs as fast as before.
     */
    static final int GROUP_FLOATS = 1 << 17;
    /** Vectors of scratch after a task's GEMM results: the input transform's 36, the output transform's 24 + 16. */
    private static final int SCRATCH_VECTORS = 40;
    private static final int[] ONE_TAP = {0};
    /** The transformed position 1*6 + 1, whose coefficient in every output of a tile is 1 (A^T's column 1 is all ones). */
    private static final int BIAS_XI = 7;

    private VectorWinograd() {
    }

    /** The tiling of one geometry: tile counts, the blocked input's sizes, task groups. */
    private static final class Plan {
        final int tilesH, tilesW, cBlocks, cp, hp, wp, block, groups, tilesPerGroup, kBlocks, all;

        Plan(ConvGeometry g, int threads) {
            tilesH = (g.p + 3) / 4;
            tilesW = (g.q + 3) / 4;
            cBlocks = (g.c + V - 1) / V;
            cp = cBlocks * V;
            hp = 4 * tilesH + 2; // the rows and columns the tiles' patches read
            wp = 4 * tilesW + 2;
            block = hp * wp * V;
            kBlocks = (g.k + NB - 1) / NB;
            int all = Math.max(1, g.n * tilesH); // an empty batch (never run) is sized as one row of tiles
            // one group where the whole call's transformed input fits in twice GROUP_FLOATS (small maps at small batches:
            // every group reads all of the transformed weights, 4x the raw ones), else groups of about GROUP_FLOATS
            int rows = (long) XI * all * tilesW * cp <= 2L * GROUP_FLOATS ? all
                    : Math.max(1, Math.min(all, Math.max(PX, GROUP_FLOATS / (XI * cp)) / tilesW));
            // and at least 2 tasks per thread: groups times the output-channel blocks each group's tasks split
            int n = Math.max((all + rows - 1) / rows, Math.min(all, (2 * threads + kBlocks - 1) / kBlocks));
            // n groups of as even a share of the rows as whole rows allow (14 rows in 4: 3, 4, 3, 4), each computing only
            // its own tiles; the buffers are sized for the largest
            groups = n;
            this.all = all;
            tilesPerGroup = tiles(0, (all + n - 1) / n);
        }

        /** Group grp's first row of tiles (the rows in order, sample after sample); group grp + 1's first is its end. */
        int row0(int grp) {
            return (int) ((long) all * grp / groups);
        }

        /** The tiles the group of rows [row0, row1) computes: its own, rounded up to whole register tiles. */
        int tiles(int row0, int row1) {
            return ((row1 - row0) * tilesW + PX - 1) / PX * PX;
        }
    }

    /**
     * Floats of workspace a call uses at most: the blocked input and the groups' shared transformed input, the transformed
     * weights (per call), a task's two buffers (the largest groups: no floor of tasks per thread).
     */
    static long workspaceFloats(ConvGeometry g) {
        Plan t = new Plan(g, 0);
        return (long) g.n * t.cBlocks * t.block + 2L * GROUP_FLOATS + weightFloats(g, t.kBlocks)
                + (long) XI * t.tilesPerGroup * t.cp + taskFloats(t);
    }

    private static long weightFloats(ConvGeometry g, int kBlocks) {
        return (long) XI * weightStride(g, kBlocks) + 1;
    }

    /**
     * Floats from one transformed position's weights to the next: the blocks' C x NB floats and a cache line, so the 36
     * positions do not fall on the same cache sets (1 MiB apart with 512 channels, they made the transform 10x slower).
     */
    private static int weightStride(ConvGeometry g, int kBlocks) {
        return kBlocks * g.c * NB + 16;
    }

    /**
     * y = conv(x, w) + bias for a forward 3x3 stride-1 layer with one group; false (and y untouched) when x or w holds
     * NaN or an infinity: the transforms mix a tile's whole patch, so one would spoil outputs that PyTorch computes
     * finite, and the caller runs the direct kernel instead.
     */
    static boolean forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done,
                           Parallel par) {
        Plan t = new Plan(g, par.threads());
        float[] u = transformedWeights(g, weights, t.kBlocks, par);
        if (!Float.isFinite(u[u.length - 1])) {
            return false;
        }
        int chunks = Math.max(1, Math.min(t.kBlocks, (4 * par.threads() + t.groups - 1) / t.groups));
        long xbFloats = (long) g.n * t.cBlocks * t.block, vFloats = (long) XI * t.tilesPerGroup * t.cp;
        boolean shared = chunks > 1 && t.groups * vFloats <= 2L * GROUP_FLOATS;
        // read-only once filled: the blocked input, then (shared) every group's transformed input
        float[] xb = Workspace.get(Workspace.COL, xbFloats + (shared ? t.groups * vFloats : 0));
        if (!blockInput(g, t, x, xb, par)) {
            return false;
        }
        int out = XI * t.tilesPerGroup * NB; // a task's m past the GEMM's results: the transforms' scratch
        if (shared) {
            par.forEach(t.groups * t.cBlocks, task -> {
                int grp = task % t.groups, cb = task / t.groups; // a thread's share: channel blocks of every group
                int row0 = t.row0(grp), row1 = t.row0(grp + 1);
                float[] m = Workspace.get(Workspace.PACK, taskFloats(t));
                transformInput(g, t, xb, row0, row1, cb, cb + 1, xb, (int) (xbFloats + grp * vFloats), m, out);
            });
        }
        // Before, groups took ceil(rows / n) rows each and all computed that many tiles (14 rows in 4: 4, 4, 4, 2, the last
        // computing 2 rows of zeros), and tasks went group after group, so a thread's share of 128 @ 28 (7 rows, two
        // groups, two chunks) was the first group's 4 rows. 2 threads, batch 1, alternating in one process (AMD EPYC Zen 5):
        // 64 @ 56 0.657 -> 0.591 ms and 128 @ 28 0.584-0.630 -> 0.538-0.585 alone; inside ResNet-50's trunk its five
        // Winograd layers after the first 4-7% faster (0.605 -> 0.579, 0.730 -> 0.677 ms); batch 8 unchanged.
        par.forEach(t.groups * chunks, task -> {
            int grp = task % t.groups, chunk = task / t.groups; // a thread's share: output-channel chunks of every group
            int kb0 = (int) ((long) t.kBlocks * chunk / chunks), kb1 = (int) ((long) t.kBlocks * (chunk + 1) / chunks);
            int row0 = t.row0(grp), row1 = t.row0(grp + 1);
            float[] v = shared ? xb : Workspace.get(Workspace.SCRATCH, vFloats);
            int v0 = shared ? (int) (xbFloats + grp * vFloats) : 0;
            float[] m = Workspace.get(Workspace.PACK, taskFloats(t));
            if (!shared) {
                transformInput(g, t, xb, row0, row1, 0, t.cBlocks, v, 0, m, out);
            }
            for (int kb = kb0; kb < kb1; kb++) {
                java.util.Arrays.fill(m, 0, out, 0f);
                if (bias != null) { // column 1 of A^T is all ones: bias in M[1][1] adds it to every output of the tile
                    int b0 = BIAS_XI * t.tilesPerGroup * NB, kn = Math.min(NB, g.k - kb * NB);
                    System.arraycopy(bias, kb * NB, m, b0, kn);
                    for (int tl = 1; tl < t.tilesPerGroup; tl++) {
                        System.arraycopy(m, b0, m, b0 + tl * NB, kn);
                    }
                }
                int tiles = t.tiles(row0, row1);
                for (int xi = 0; xi < XI; xi++) {
                    int ui = xi * weightStride(g, t.kBlocks) + kb * g.c * NB;
                    for (int s = 0; s < tiles; s += PX) {
                        VectorDirectStrided.tile(g.c, 1, ONE_TAP, v, v0 + (xi * t.tilesPerGroup + s) * t.cp, 1, t.cp, u, ui, m,
                                (xi * t.tilesPerGroup + s) * NB);
                    }
                }
                transformOutput(g, t, m, out, kb, row0, row1, y, done);
            }
        });
        return true;
    }

    /**
     * xb[((n*cBlocks + cb)*hp + yy)*wp*V + xx*V + l] = x[n][cb*V + l][yy - pt][xx - pl], zero outside (and for channels
     * past C); false if x is not all finite.
     */
    private static boolean blockInput(ConvGeometry g, Plan t, float[] x, float[] xb, Parallel par) {
        int hw = g.h * g.w;
        int[] probe = new int[g.n * t.cBlocks];
        int rows = Math.min(g.h, t.hp - g.padTop), cols = Math.min(g.w, t.wp - g.padLeft); // the rest is never read
        par.forEach(g.n * t.cBlocks, nb -> {
            int n = nb / t.cBlocks, c0 = nb % t.cBlocks * V, o = nb * t.block;
            int ln = Math.min(V, g.c - c0), src = (n * g.c + c0) * hw;
            int bits = 0; // finiteBits of every input
            if (V == 16 && ln == V && hw >= V) {
                // zeros only where no input lands: the rows above, each row's columns beside it, the rows below (the whole
                // block zeroed first wrote its 215 KB twice at 64 @ 56)
                int first = o + (g.padTop * t.wp + g.padLeft) * V;
                java.util.Arrays.fill(xb, o, first, 0f);
                for (int ih = 0; ih < rows; ih++) { // after row ih: its right border and the next row's left, or the rest
                    int row = first + ih * t.wp * V;
                    java.util.Arrays.fill(xb, row + cols * V, ih + 1 < rows ? row + t.wp * V : o + t.block, 0f);
                }
                bits = blockTransposed(g, t, x, src, xb, o, rows, cols);
            } else {
                java.util.Arrays.fill(xb, o, o + t.block, 0f);
                for (int l = 0; l < ln; l++) {
                    for (int ih = 0; ih < rows; ih++) {
                        int s = src + l * hw + ih * g.w, d = o + ((ih + g.padTop) * t.wp + g.padLeft) * V + l;
                        for (int iw = 0; iw < cols; iw++) {
                            float a = x[s + iw];
                            xb[d + iw * V] = a;
                            bits |= finiteBits(a);
                        }
                    }
                }
            }
            probe[nb] = bits;
        });
        for (int bits : probe) {
            if (bits < 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * u[xi*weightStride + (b*C + c)*NB + j] = (G w[b*NB + j][c] G^T)[xi] in float64, rounded once; zero for channels past K.
     * The last float is 0 when every weight is finite, else NaN. Tasks take a block of output channels and a run of input
     * channels, so each (block, channel) writes 36 runs of NB consecutive floats.
     */
    private static float[] transformedWeights(ConvGeometry g, Weights weights, int kBlocks, Parallel par) {
        float[] w = weights.raw;
        return weights.transformed(weightFloats(g, kBlocks), u -> {
            int runs = Math.max(1, Math.min(g.c, 4 * par.threads()));
            int[] probe = new int[kBlocks * runs];
            par.forEach(kBlocks * runs, task -> {
                int b = task / runs, run = task % runs;
                int c0 = (int) ((long) g.c * run / runs), c1 = (int) ((long) g.c * (run + 1) / runs);
                double[] gw = new double[18], row = new double[6];
                int bits = 0;
                for (int c = c0; c < c1; c++) {
                    for (int j = 0; j < NB; j++) {
                        int k = b * NB + j, dst = (b * g.c + c) * NB + j, xiStride = weightStride(g, kBlocks);
                        if (k >= g.k) {
                            for (int xi = 0; xi < XI; xi++) {
                                u[dst + xi * xiStride] = 0f;
                            }
                            continue;
                        }
                        int src = (k * g.c + c) * 9;
                        for (int col = 0; col < 3; col++) { // G w: 6 x 3
                            gTimes(w[src + col], w[src + 3 + col], w[src + 6 + col], gw, col, 3);
                            bits |= finiteBits(w[src + col]) | finiteBits(w[src + 3 + col]) | finiteBits(w[src + 6 + col]);
                        }
                        for (int i = 0; i < 6; i++) { // (G w) G^T: row i
                            gTimes(gw[i * 3], gw[i * 3 + 1], gw[i * 3 + 2], row, 0, 1);
                            for (int l = 0; l < 6; l++) {
                                u[dst + (i * 6 + l) * xiStride] = (float) row[l];
                            }
                        }
                    }
                }
                probe[task] = bits;
            });
            int bits = 0;
            for (int p : probe) {
                bits |= p;
            }
            u[u.length - 1] = bits < 0 ? Float.NaN : 0f;
        });
    }

    /** out[o + i*os] = (G (a0, a1, a2)^T)_i for the six rows of G. */
    private static void gTimes(double a0, double a1, double a2, double[] out, int o, int os) {
        out[o] = a0 / 4;
        out[o + os] = -(a0 + a1 + a2) / 6;
        out[o + 2 * os] = -(a0 - a1 + a2) / 6;
        out[o + 3 * os] = a0 / 24 + a1 / 12 + a2 / 6;
        out[o + 4 * os] = a0 / 24 - a1 / 12 + a2 / 6;
        out[o + 5 * os] = a2;
    }

    /**
     * {@link #blockInput}'s copy of 16 whole channels (x's planes from {@code src}, hw >= 16) into the block at xb[o]:
     * 16 consecutive positions of the flat plane at a time (the last run overlapping the one before) go through the
     * registers ({@link VectorDirectChannels#transpose16}, into a 16 x 16 scratch), then each position's 16 channels
     * are one vector store into its row of the block. The element-by-element copy stored every float to its own cache
     * line, 16 lines per 16 floats: on ResNet-50's Winograd layers at batch 1 it took 6-26% of the call (most at 56 x
     * 56). 2 threads, cached weights, alternating in one process (AMD EPYC Zen 5, medians): 64 @ 56 0.480 -> 0.455 ms,
     * 128 @ 28 0.413 -> 0.395, 256 @ 14 0.473 -> 0.460; 1 thread 0.707 -> 0.649, 0.544 -> 0.506, 0.821 -> 0.795;
     * ResNet-50's whole trunk (its Winograd layers ~15% of it), per-pair ratios old / new alternating in one process:
     * batch 1 1.006 and 1.011 (151 and 101 pairs), batch 8 1.006. Returns -1 if x holds a NaN or an infinity (the
     * lanes' running max of |x| is then not finite), else 0.
     */
    private static int blockTransposed(ConvGeometry g, Plan t, float[] x, int src, float[] xb, int o, int rows, int cols) {
        int hw = g.h * g.w;
        float[] sc = Workspace.get(Workspace.PACK, (long) V * V);
        FloatVector big = FloatVector.zero(S);
        for (int f0 = 0; f0 < hw; f0 += V) {
            int f = Math.min(f0, hw - V), ih = f / g.w, iw = f - ih * g.w; // one division per 16 positions, not per position
            VectorDirectChannels.transpose16(x, src + f, hw, sc, 0, V);
            for (int j = 0; j < V; j++) {
                if (ih < rows && iw < cols) {
                    FloatVector v = FloatVector.fromArray(S, sc, j * V);
                    big = big.max(v.abs());
                    v.intoArray(xb, o + ((ih + g.padTop) * t.wp + g.padLeft + iw) * V);
                }
                if (++iw == g.w) {
                    iw = 0;
                    ih++;
                }
            }
        }
        return Float.isFinite(big.reduceLanes(VectorOperators.MAX)) ? 0 : -1;
    }

    /** Sign bit set when a's exponent is all ones (NaN, infinity). */
    private static int finiteBits(float a) {
        return (Float.floatToRawIntBits(a) & 0x7f800000) + 0x00800000;
    }

    /**
     * v[v0 + (xi*tilesPerGroup + t)*cp + c] = (B^T d B)[xi] for the group's tile t (tile rows row0..row1 of the whole
     * batch, tilesW each) and the channels c of channel vectors cb0..cb1 (V channels per vector); the tiles past the
     * group's up to a multiple of PX are zero in those channels. {@code tmp} at {@code tmpOff} holds 36 vectors.
     */
    private static void transformInput(ConvGeometry g, Plan t, float[] xb, int row0, int row1, int cb0, int cb1, float[] v, int v0,
                                       float[] tmp, int tmpOff) {
        int xiStride = t.tilesPerGroup * t.cp, rowStride = t.wp * V;
        for (int row = row0; row < row1; row++) {
            int n = row / t.tilesH, tr = row % t.tilesH, tile0 = (row - row0) * t.tilesW;
            for (int cb = cb0; cb < cb1; cb++) {
                int src = (n * t.cBlocks + cb) * t.block + 4 * tr * rowStride;
                for (int tw = 0; tw < t.tilesW; tw++) {
                    int s = src + 4 * tw * V, d = v0 + (tile0 + tw) * t.cp + cb * V;
                    // along each patch row (i < 6) into tmp, then along each column of tmp into v: one call site, so C2
                    // inlines bt's vector operations once (two call sites' worth went past its inlining budget in the
                    // tuner's JVMs, and the calls left out ran the Vector API's allocating fallback: 5-9x slower)
                    for (int i = 0; i < 12; i++) {
                        boolean alongRow = i < 6;
                        int j = alongRow ? i : i - 6;
                        bt(alongRow ? xb : tmp, alongRow ? s + j * rowStride : tmpOff + j * V, alongRow ? V : 6 * V,
                                alongRow ? tmp : v, alongRow ? tmpOff + j * 6 * V : d + j * xiStride, alongRow ? V : 6 * xiStride);
                    }
                }
            }
        }
        int used = (row1 - row0) * t.tilesW, tiles = t.tiles(row0, row1);
        for (int xi = 0; xi < XI; xi++) {
            for (int tl = used; tl < tiles; tl++) {
                int at = v0 + (xi * t.tilesPerGroup + tl) * t.cp;
                java.util.Arrays.fill(v, at + cb0 * V, at + cb1 * V, 0f);
            }
        }
    }

    /** out[o + i*os] = (B^T d)_i for the six vectors d_j at in[d0 + j*ds]. */
    private static void bt(float[] in, int d0, int ds, float[] out, int o, int os) {
        FloatVector x0 = FloatVector.fromArray(S, in, d0), x1 = FloatVector.fromArray(S, in, d0 + ds);
        FloatVector x2 = FloatVector.fromArray(S, in, d0 + 2 * ds), x3 = FloatVector.fromArray(S, in, d0 + 3 * ds);
        FloatVector x4 = FloatVector.fromArray(S, in, d0 + 4 * ds), x5 = FloatVector.fromArray(S, in, d0 + 5 * ds);
        FloatVector a = x4.sub(x2.mul(4f)), b = x3.sub(x1.mul(4f));
        FloatVector c = x4.sub(x2), e = x3.sub(x1).mul(2f);
        x0.mul(4f).add(x4).sub(x2.mul(5f)).intoArray(out, o);
        a.add(b).intoArray(out, o + os);
        a.sub(b).intoArray(out, o + 2 * os);
        c.add(e).intoArray(out, o + 3 * os);
        c.sub(e).intoArray(out, o + 4 * os);
        x1.mul(4f).add(x5).sub(x3.mul(5f)).intoArray(out, o + 5 * os);
    }

    /** out[o + i*os] = (A^T m)_i (four vectors) for the six vectors m_j at in[m0 + j*ms]. */
    private static void at(float[] in, int m0, int ms, float[] out, int o, int os) {
        FloatVector x0 = FloatVector.fromArray(S, in, m0), x1 = FloatVector.fromArray(S, in, m0 + ms);
        FloatVector x2 = FloatVector.fromArray(S, in, m0 + 2 * ms), x3 = FloatVector.fromArray(S, in, m0 + 3 * ms);
        FloatVector x4 = FloatVector.fromArray(S, in, m0 + 4 * ms), x5 = FloatVector.fromArray(S, in, m0 + 5 * ms);
        FloatVector s12 = x1.add(x2), d12 = x1.sub(x2), s34 = x3.add(x4), d34 = x3.sub(x4);
        x0.add(s12).add(s34).intoArray(out, o);
        d12.add(d34.mul(2f)).intoArray(out, o + os);
        s12.add(s34.mul(4f)).intoArray(out, o + 2 * os);
        d12.add(d34.mul(8f)).add(x5).intoArray(out, o + 3 * os);
    }

    /**
     * y for block kb's channels over the group's tiles: A^T M A per tile and vector of channels (M at
     * m[(xi*tilesPerGroup + t)*NB + j], bias already in M[1][1]), copied into y's planes; each channel's rows reported to done.
     * m[out...] is scratch: A^T M (24 vectors), then the 16 results, then a row of tiles' results ({@link #taskFloats}).
     *
     * <p>Where a vector holds 16 channels (and rows are at least 8 wide), a row of tiles' results go to that row buffer,
     * 4 output rows of columns of 16 channels, and each output row leaves it 16 columns x 16 channels at a time through a
     * register transpose ({@link VectorDirectChannels#transpose16}; the last 16 columns overlapping the ones before where
     * 16 does not divide the row; rows narrower than 16 stored 16 wide over the next row's first outputs, except a tile
     * row's last, which goes float by float), one vector store per channel and 16 columns. Before, each tile's 16 x 16
     * results were copied out one float at a time (the output transform as a whole took a quarter of the call at 64 @ 56,
     * 2 threads, its parts switched off one at a time). Alone, 2 threads, batch 1, the two
     * builds alternating in one process (AMD EPYC Zen 4): 64 @ 56 540 -> 513 us, 128 @ 28 470 -> 447; 256 @ 14 (rows of
     * 14) on one thread 1.4-4.3% faster.
     */
    private static void transformOutput(ConvGeometry g, Plan t, float[] m, int out, int kb, int row0, int row1, float[] y,
                                        CpuConvolution.Finish done) {
        int xs = t.tilesPerGroup * NB, pq = g.p * g.q;
        int mid = out, res = out + 24 * V, rb = out + SCRATCH_VECTORS * V, cols = 4 * t.tilesW;
        for (int lv = 0; lv < NB / V; lv++) {
            int k0 = kb * NB + lv * V, kn = Math.min(V, g.k - k0);
            if (kn <= 0) {
                break;
            }
            // whole vectors of 16 channels on rows of at least 8 outputs leave through the row buffer; rows of 8 to 15: each
            // row but a tile row's last is stored 16 wide, its last 16 - q lanes landing on the next row's first outputs,
            // which that row's store then overwrites (the rows go in order)
            boolean rows16 = V == 16 && kn == V && g.q >= V / 2;
            for (int row = row0; row < row1; row++) {
                int n = row / t.tilesH, tr = row % t.tilesH, tile0 = (row - row0) * t.tilesW;
                int p0 = 4 * tr, pn = Math.min(4, g.p - p0);
                for (int tw = 0; tw < t.tilesW; tw++) {
                    int mt = (tile0 + tw) * NB + lv * V;
                    for (int col = 0; col < 6; col++) { // mid[i][col] = (A^T M)[i][col]
                        at(m, mt + col * xs, 6 * xs, m, mid + col * V, 6 * V);
                    }
                    if (rows16) { // (A^T M A)[i][j] into the row buffer: output row i, column 4 tw + j
                        for (int i = 0; i < 4; i++) {
                            at(m, mid + i * 6 * V, V, m, rb + (i * cols + 4 * tw) * V, V);
                        }
                        continue;
                    }
                    for (int i = 0; i < 4; i++) { // res[i][j] = (A^T M A)[i][j]
                        at(m, mid + i * 6 * V, V, m, res + i * 4 * V, V);
                    }
                    int q0 = 4 * tw, qn = Math.min(4, g.q - q0), dst = (n * g.k + k0) * pq + p0 * g.q + q0;
                    if (pn == 4 && qn == 4) {
                        for (int j = 0; j < kn; j++) {
                            storeTile(m, res + j, y, dst + j * pq, g.q);
                        }
                    } else {
                        for (int j = 0; j < kn; j++) {
                            for (int i = 0; i < pn; i++) {
                                for (int l = 0; l < qn; l++) {
                                    y[dst + j * pq + i * g.q + l] = m[res + (i * 4 + l) * V + j];
                                }
                            }
                        }
                    }
                }
                if (rows16) {
                    for (int i = 0; i < pn; i++) {
                        int dst = (n * g.k + k0) * pq + (p0 + i) * g.q;
                        if (g.q >= V) {
                            for (int c0 = 0; c0 < g.q; c0 += V) {
                                int c = Math.min(c0, g.q - V);
                                VectorDirectChannels.transpose16(m, rb + (i * cols + c) * V, V, y, dst + c, pq);
                            }
                        } else if (i + 1 < pn) {
                            VectorDirectChannels.transpose16(m, rb + i * cols * V, V, y, dst, pq);
                        } else {
                            for (int j = 0; j < V; j++) {
                                for (int l = 0; l < g.q; l++) {
                                    y[dst + j * pq + l] = m[rb + (i * cols + l) * V + j];
                                }
                            }
                        }
                    }
                }
            }
            for (int j = 0; j < kn; j++) { // each sample's rows of the group, per channel
                for (int row = row0; row < row1; ) {
                    int n = row / t.tilesH, end = Math.min(row1, (n + 1) * t.tilesH);
                    int base = (n * g.k + k0 + j) * pq;
                    done.region(base + 4 * (row % t.tilesH) * g.q, base + Math.min(g.p, 4 * (end - n * t.tilesH)) * g.q);
                    row = end;
                }
            }
        }
    }

    /**
     * Floats of a task's {@code m}: its GEMMs' results (36 positions x the group's tiles x NB channels), then the
     * transforms' scratch vectors, then {@link #transformOutput}'s row buffer (4 output rows of a row of tiles, a vector of
     * channels per column).
     */
    private static long taskFloats(Plan t) {
        return (long) XI * t.tilesPerGroup * NB + SCRATCH_VECTORS * (long) V + 16L * t.tilesW * V;
    }

    /** y[d + i*q + l] = m[r + (i*4 + l)*V]: one channel's full 4x4 tile from the transposed results. */
    private static void storeTile(float[] m, int r, float[] y, int d, int q) {
        for (int i = 0; i < 4; i++, d += q, r += 4 * V) {
            y[d] = m[r];
            y[d + 1] = m[r + V];
            y[d + 2] = m[r + 2 * V];
            y[d + 3] = m[r + 3 * V];
        }
    }
}
