package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolution with output channels in the vector lanes for layers strided along W (loaded only when the Vector
 * API module is present; {@link DirectConv} calls it): ResNet's 7x7 stride-2 stem and its stride-2 3x3 layers, which
 * before ran either as im2col (an unfold of C*R*S rows, then a GEMM) or on the scalar per-plane loop at 2-4 GFLOP/s.
 *
 * <p>A task reads its (sample, group)'s input from zero-padded planes, Wp = W + pl + pr floats per row and Hp = H + pt +
 * pb rows, which each thread copies once per call for all its tasks on that pair ({@link VectorDirect#padOnce}). A task
 * takes one sample, one group, one block of {@link #NB} output channels (four vectors) and a run of output rows; the register tile is {@link #PX} consecutive outputs in flat (row-major) order, across row ends, x NB
 * channels (24 accumulators; with tiles per row a 7-wide row took 12 outputs' work, 58% kept, and 14-wide 78%). For every
 * input channel and tap it loads the block's four weight vectors (packed once per plan, tap after tap) and broadcasts
 * the PX inputs the tile's outputs read there (their windows' offsets precomputed per tile), each for four FMAs: 24 FMAs per 4 loads and 6
 * broadcasts, whatever the stride, kernel size or dilation. Input channels go in chunks whose weights fit in
 * {@link #WEIGHT_CHUNK} (L2), each chunk over all the task's tiles, the partial sums in a scratch (bias first), copied
 * into y's channel planes at the end: with a 512-channel 3x3 layer a tile would otherwise stream its block's 1.2 MB of
 * weights from L3 for only 6 outputs. Blocks past the group's channels compute on zero weights and store nothing.
 *
 * <p>The (input channel, tap) loop is one flat loop: with a loop per level JDK 17's C2 kept the 24 accumulators boxed
 * across the inner loop's phis (4 GFLOP/s instead of ~90 on one core, the tile alone).
 */
final class VectorDirectStrided {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per block: four vectors. */
    static final int NB = 4 * V;
    /** Consecutive outputs of a row per register tile. */
    static final int PX = 6;
    /**
     * Floats of packed weights per input-channel chunk at most (64 KiB). 32 and 128 KiB ran within noise of it on ResNet-50's
     * three stride-2 3x3 layers at batch 1 with 12 weight copies cycling (weights from memory, as in the trunk), 16 KiB
     * 1-21% slower (AMD EPYC Zen 5, 2 threads, separate processes). With the weights from memory the layers ran 2-7%
     * slower than with one copy cached (512 -> 512 @ 14: 0.95 / 0.89 ms).
     */
    static final int WEIGHT_CHUNK = 1 << 14;

    private VectorDirectStrided() {
    }

    /**
     * Whether this kernel takes g: a forward layer strided along W with at least a block of output channels per group,
     * whose workspace fits in Java arrays (larger ones take {@link DirectConv}'s plain loop).
     */
    static boolean applies(ConvGeometry g) {
        return !g.transposed() && g.strideW > 1 && g.kPerGroup() >= NB && workspaceFloats(g) <= Integer.MAX_VALUE - 16;
    }

    /** Floats of one padded input plane, rows the padded width apart (every output's window lies within its rows). */
    private static int paddedPlane(ConvGeometry g) {
        return g.paddedH() * g.paddedW();
    }

    /** Floats of workspace a thread uses: one pair's padded input, the packed weights, a task's outputs. */
    static long workspaceFloats(ConvGeometry g) {
        int blocks = (g.kPerGroup() + NB - 1) / NB;
        return VectorDirect.paddedSize(g, g.paddedW(), paddedPlane(g))
                + (long) g.groups * blocks * NB * g.cPerGroup() * g.r * g.s + ((long) g.p * g.q + PX) * NB;
    }

    /** y = conv(x, w) + bias; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights w, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), taps = g.r * g.s;
        int blocks = (kg + NB - 1) / NB;
        int ws = g.paddedW(), plane = paddedPlane(g), pq = g.p * g.q;
        float[] wq = packWeights(g, w, blocks, par);
        long call = VectorDirect.newCall();
        int[] tapOff = new int[taps];
        for (int r = 0; r < g.r; r++) {
            for (int s = 0; s < g.s; s++) {
                tapOff[r * g.s + s] = r * g.dilationH * ws + s * g.dilationW;
            }
        }
        int units = g.n * g.groups * blocks;
        int parts = Math.max(1, Math.min(g.p, (4 * par.threads() + units - 1) / units));
        // input channels in chunks whose weights (cc*R*S*NB floats) stay in L2 while every tile of the task uses them
        int cc = Math.max(1, Math.min(cg, WEIGHT_CHUNK / (taps * NB)));
        par.forEach(units * parts, task -> {
            int unit = task / parts, part = task % parts;
            int n = unit / (g.groups * blocks), grp = unit / blocks % g.groups, b = unit % blocks;
            int p0 = (int) ((long) g.p * part / parts), p1 = (int) ((long) g.p * (part + 1) / parts);
            int k0 = b * NB, kn = Math.min(NB, kg - k0);
            float[] xp = VectorDirect.padOnce(call, g, x, n * g.groups + grp, ws, plane);
            int wBase = (grp * blocks + b) * cg * taps * NB;
            int yBase = (n * g.k + grp * kg + k0) * pq;
            // the task's outputs p0*Q .. p1*Q in flat order, PX per tile across row ends (a 7-wide row is not 12 outputs)
            int f0 = p0 * g.q, outputs = (p1 - p0) * g.q, tiles = (outputs + PX - 1) / PX, tileSize = PX * NB;
            int[] at = new int[tiles * PX]; // the padded input offset of each flat output's window (the last repeated past the end)
            for (int i = 0, op = p0, oq = 0; i < at.length; i++) { // (op, oq): output f0 + min(i, outputs - 1), no division
                at[i] = op * g.strideH * ws + oq * g.strideW;
                if (i < outputs - 1 && ++oq == g.q) {
                    oq = 0;
                    op++;
                }
            }
            // acc[tile*PX*NB + i*NB + j]: flat output f0 + tile*PX + i of channel k0 + j, bias first
            float[] acc = Workspace.get(Workspace.SCRATCH, (long) tiles * tileSize);
            for (int j = 0; j < NB; j++) {
                acc[j] = bias == null || j >= kn ? 0f : bias[grp * kg + k0 + j];
            }
            for (int f = 1; f < tiles * PX; f++) {
                System.arraycopy(acc, 0, acc, f * NB, NB);
            }
            for (int c0 = 0; c0 < cg; c0 += cc) {
                int cn = Math.min(cc, cg - c0), wi = wBase + c0 * taps * NB, xc = c0 * plane;
                for (int tl = 0, o = 0; tl < tiles; tl++, o += PX) {
                    int x0 = at[o];
                    tile(cn, taps, tapOff, xp, xc + x0, plane, at[o + 1] - x0, at[o + 2] - x0, at[o + 3] - x0, at[o + 4] - x0,
                            at[o + 5] - x0, wq, wi, acc, tl * tileSize);
                }
            }
            copyOut(acc, kn, outputs, y, yBase + f0, pq);
            for (int j = 0; j < kn; j++) {
                int dst = yBase + j * pq + f0;
                done.region(dst, dst + outputs);
            }
        });
    }

    /**
     * y[at + j*pq + i] = acc[i*NB + j] for the task's outputs i and channels j < kn, 16 channels at a time: 16 outputs x 16
     * channels transposed in registers where the vectors are 16 lanes wide, scalar copies for the rest (one pass over a
     * block's 16 channels reads one line of acc per output). Channel by channel over all outputs, each channel read every
     * output's line of acc again (from L2 where a task's acc outgrows L1): 128 -> 128 @ 56 stride 2, batch 1, alone, 0.748 ->
     * 0.677 ms on two threads, 1.49 -> 1.44 on one (AMD EPYC Zen 5, medians of alternating runs in one process); inside
     * ResNet-50's trunk no change measured (0.841 / 0.840 ms), where the layer's other costs hide it.
     */
    private static void copyOut(float[] acc, int kn, int outputs, float[] y, int at, int pq) {
        for (int j0 = 0; j0 < kn; j0 += 16) {
            int jn = Math.min(16, kn - j0), i0 = 0;
            if (V == 16 && jn == 16) {
                for (; i0 + 16 <= outputs; i0 += 16) {
                    VectorDirectChannels.transpose16(acc, i0 * NB + j0, NB, y, at + j0 * pq + i0, pq);
                }
            }
            for (int i = i0; i < outputs; i++) {
                for (int j = j0; j < j0 + jn; j++) {
                    y[at + j * pq + i] = acc[i * NB + j];
                }
            }
        }
    }

    /** wq[(((grp*blocks + b)*C/G + c)*R*S + tap)*NB + j] = w[grp*K/G + b*NB + j][c][tap], zero past the group's channels. */
    private static float[] packWeights(ConvGeometry g, Weights weights, int blocks, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), taps = g.r * g.s;
        float[] w = weights.raw;
        return weights.packed((long) g.groups * blocks * cg * taps * NB, wq -> par.forEach(g.groups * blocks, gb -> {
            int grp = gb / blocks, b = gb % blocks;
            for (int c = 0; c < cg; c++) {
                for (int t = 0; t < taps; t++) {
                    int dst = ((gb * cg + c) * taps + t) * NB;
                    for (int j = 0; j < NB; j++) {
                        int k = b * NB + j;
                        wq[dst + j] = k < kg ? w[((grp * kg + k) * cg + c) * taps + t] : 0f;
                    }
                }
            }
        }));
    }

    /** {@link #tile(int, int, int[], float[], int, int, int, int, int, int, int, float[], int, float[], int)} with output i at x + i*stride. */
    static void tile(int cn, int taps, int[] tapOff, float[] xp, int x, int plane, int stride, float[] wq, int wi, float[] acc, int a) {
        tile(cn, taps, tapOff, xp, x, plane, stride, 2 * stride, 3 * stride, 4 * stride, 5 * stride, wq, wi, acc, a);
    }

    /**
     * One register tile: acc[a + i*NB + j] += sum over input channels c < cn and taps t of wq[wi + (c*taps + t)*NB + j]
     * * xp[x + c*plane + tapOff[t] + o_i], for the PX outputs i (o_0 = 0) and NB channels j.
     */
    static void tile(int cn, int taps, int[] tapOff, float[] xp, int x, int plane, int o1, int o2, int o3, int o4, int o5, float[] wq,
                     int wi, float[] acc, int a) {
        FloatVector a00 = FloatVector.fromArray(S, acc, a), a01 = FloatVector.fromArray(S, acc, a + V);
        FloatVector a02 = FloatVector.fromArray(S, acc, a + 2 * V), a03 = FloatVector.fromArray(S, acc, a + 3 * V);
        FloatVector a10 = FloatVector.fromArray(S, acc, a + NB), a11 = FloatVector.fromArray(S, acc, a + NB + V);
        FloatVector a12 = FloatVector.fromArray(S, acc, a + NB + 2 * V), a13 = FloatVector.fromArray(S, acc, a + NB + 3 * V);
        FloatVector a20 = FloatVector.fromArray(S, acc, a + 2 * NB), a21 = FloatVector.fromArray(S, acc, a + 2 * NB + V);
        FloatVector a22 = FloatVector.fromArray(S, acc, a + 2 * NB + 2 * V), a23 = FloatVector.fromArray(S, acc, a + 2 * NB + 3 * V);
        FloatVector a30 = FloatVector.fromArray(S, acc, a + 3 * NB), a31 = FloatVector.fromArray(S, acc, a + 3 * NB + V);
        FloatVector a32 = FloatVector.fromArray(S, acc, a + 3 * NB + 2 * V), a33 = FloatVector.fromArray(S, acc, a + 3 * NB + 3 * V);
        FloatVector a40 = FloatVector.fromArray(S, acc, a + 4 * NB), a41 = FloatVector.fromArray(S, acc, a + 4 * NB + V);
        FloatVector a42 = FloatVector.fromArray(S, acc, a + 4 * NB + 2 * V), a43 = FloatVector.fromArray(S, acc, a + 4 * NB + 3 * V);
        FloatVector a50 = FloatVector.fromArray(S, acc, a + 5 * NB), a51 = FloatVector.fromArray(S, acc, a + 5 * NB + V);
        FloatVector a52 = FloatVector.fromArray(S, acc, a + 5 * NB + 2 * V), a53 = FloatVector.fromArray(S, acc, a + 5 * NB + 3 * V);
        // one flat loop over (input channel, tap): see the class comment
        int xc = x, t = 0;
        for (int step = cn * taps; step > 0; step--, wi += NB) {
            int xi = xc + tapOff[t];
            if (++t == taps) {
                t = 0;
                xc += plane;
            }
            FloatVector w0 = FloatVector.fromArray(S, wq, wi), w1 = FloatVector.fromArray(S, wq, wi + V);
            FloatVector w2 = FloatVector.fromArray(S, wq, wi + 2 * V), w3 = FloatVector.fromArray(S, wq, wi + 3 * V);
            FloatVector b = FloatVector.broadcast(S, xp[xi]);
            a00 = w0.fma(b, a00);
            a01 = w1.fma(b, a01);
            a02 = w2.fma(b, a02);
            a03 = w3.fma(b, a03);
            b = FloatVector.broadcast(S, xp[xi + o1]);
            a10 = w0.fma(b, a10);
            a11 = w1.fma(b, a11);
            a12 = w2.fma(b, a12);
            a13 = w3.fma(b, a13);
            b = FloatVector.broadcast(S, xp[xi + o2]);
            a20 = w0.fma(b, a20);
            a21 = w1.fma(b, a21);
            a22 = w2.fma(b, a22);
            a23 = w3.fma(b, a23);
            b = FloatVector.broadcast(S, xp[xi + o3]);
            a30 = w0.fma(b, a30);
            a31 = w1.fma(b, a31);
            a32 = w2.fma(b, a32);
            a33 = w3.fma(b, a33);
            b = FloatVector.broadcast(S, xp[xi + o4]);
            a40 = w0.fma(b, a40);
            a41 = w1.fma(b, a41);
            a42 = w2.fma(b, a42);
            a43 = w3.fma(b, a43);
            b = FloatVector.broadcast(S, xp[xi + o5]);
            a50 = w0.fma(b, a50);
            a51 = w1.fma(b, a51);
            a52 = w2.fma(b, a52);
            a53 = w3.fma(b, a53);
        }
        a00.intoArray(acc, a);
        a01.intoArray(acc, a + V);
        a02.intoArray(acc, a + 2 * V);
        a03.intoArray(acc, a + 3 * V);
        a10.intoArray(acc, a + NB);
        a11.intoArray(acc, a + NB + V);
        a12.intoArray(acc, a + NB + 2 * V);
        a13.intoArray(acc, a + NB + 3 * V);
        a20.intoArray(acc, a + 2 * NB);
        a21.intoArray(acc, a + 2 * NB + V);
        a22.intoArray(acc, a + 2 * NB + 2 * V);
        a23.intoArray(acc, a + 2 * NB + 3 * V);
        a30.intoArray(acc, a + 3 * NB);
        a31.intoArray(acc, a + 3 * NB + V);
        a32.intoArray(acc, a + 3 * NB + 2 * V);
        a33.intoArray(acc, a + 3 * NB + 3 * V);
        a40.intoArray(acc, a + 4 * NB);
        a41.intoArray(acc, a + 4 * NB + V);
        a42.intoArray(acc, a + 4 * NB + 2 * V);
        a43.intoArray(acc, a + 4 * NB + 3 * V);
        a50.intoArray(acc, a + 5 * NB);
        a51.intoArray(acc, a + 5 * NB + V);
        a52.intoArray(acc, a + 5 * NB + 2 * V);
        a53.intoArray(acc, a + 5 * NB + 3 * V);
    }
}
