package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolution with output channels in the vector lanes, for stride-1 layers with three taps per row (dilation
 * 1 or 2 along W) and at least 2V output channels per group: the dense 3x3 layers (loaded only when the Vector API
 * module is present; {@link VectorDirect} calls it, and takes every other layer itself).
 *
 * <p>The input is copied into zero-padded planes ({@link VectorDirect#padOnce}: by each thread once per call for all
 * its tasks on a (sample, group) pair; each task padding its own copy cost 6-8% of ResNet-50's 3x3 layers at batch 1,
 * 0.77 -> 0.71 ms at 64 x 56 x 56, 0.66 -> 0.62 at 256 x 14 x 14) whose rows are Ws = W + max(pl, pr)
 * apart (one run of zeros is the right padding of a row and the left padding of the next; at least Q), and the
 * outputs are walked like {@link VectorDirect}'s: output (p, q) reads padded index p*Ws + q plus the tap's offset,
 * so the plane is one flat run of Ws-wide rows (the Ws - Q wrapped columns per row are computed and dropped: 1 of 15
 * at 14x14 with padding 1, where rows of W + pl + pr would drop 2 of 16; measured 283 -> 294 GFLOP/s there).
 *
 * <p>Outputs 7 wide (ResNet-50's last stage) take one tile per output row instead ({@link #tile7}, 14 accumulators):
 * tiles of 10 flat outputs over rows 8 apart computed 60 outputs for every 49 kept. 512 -> 512 channels at 7x7, batch 1,
 * 2 threads (AMD EPYC Zen 5, medians of 250 ms slots): 0.75-0.92 -> 0.65-0.66 ms warm, 1.00-1.05 -> 0.87-0.90 ms with the
 * caches flushed before each call.
 *
 * <p>The register tile is {@link #PX} consecutive flat outputs x {@link #NB} channels (20 accumulators). One call
 * runs one kernel row r (its three taps) over a chunk of input channels; per input channel it loads the three taps'
 * 2 weight vectors each (packed) and broadcasts the PX + 2*dW input values of the row once, each feeding every
 * (output, tap) pair that reads it: 60 FMAs per 12 broadcasts and 6 loads, with 4 bounds checks per step (the JIT's
 * machine code: the input stride is not a constant, so it cannot hoist them; over 60 FMAs they cost little), and a
 * broadcast never straddles a cache line (the shifted vector loads of {@link VectorDirect}'s tile mostly do; its
 * loop spends 24 FMAs per tap-table read, 3 bounds checks and GPR spills through vector registers, which take FMA
 * ports).
 *
 * <p>Measured on the 2-core AVX-512 machine, one core, data in L2/L1 (median GFLOP/s, the core's peak ~236): this
 * tile 175-190; the same with 8 outputs 150-177, 12 outputs 145, 6 outputs 147; one tap per call with 12 outputs
 * 145-150; three taps per call without sharing the broadcasts 137; {@link VectorDirect}'s 4x6 tile 143-160.
 * Accumulators live in a scratch acc[flat output][channel], bias first; at the end 16 x 16 blocks are transposed in
 * registers into y's rows (the scalar copy it replaced took 11-16% of the layer; gathering with vgatherdps was no
 * faster). Input channels go in chunks whose packed weights stay within {@link #WEIGHT_CHUNK} floats (L2), and
 * {@link #GROUP} output tiles share each (block, row) slice of weights while it is in L1 (1, 2, 8, 16 or 32 tiles:
 * no better).
 */
final class VectorDirectChannels {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per block: two vectors. */
    static final int NB = 2 * V;
    /** Flat outputs per register tile. */
    static final int PX = 10;
    /** Floats of packed weights per input-channel chunk at most (1 MiB). */
    static final int WEIGHT_CHUNK = 1 << 18;
    /** Output tiles that run one (block, tap) slice of weights before the next. */
    static final int GROUP = 4;
    /**
     * For maps 7 wide ({@link #tile7}), the regions each (block, kernel row) slice of the packed weights is split into:
     * input channel c in region c % STREAMS, so the loop over c reads STREAMS streams in turn. There the weights outweigh
     * everything else (ResNet-50's last stage: 9.4 MB against 100 KB of input) and come from memory every call at batch
     * 1, and one stream left the hardware prefetcher too few lines in flight. AMD EPYC Zen 5, 2 threads, 512 -> 512 @ 7
     * with 12 weight copies cycling: 0.960 -> 0.860 ms (8 regions: 1.047; medians of 100 ms slots alternating in one
     * process), 1.07-1.08 -> 0.93-0.94 in separate processes; with one copy (from L3) 0.681 -> 0.702 and 0.81-0.97 ->
     * 0.87-0.89. At 14x14 (256 channels, 2.4 MB) it was 2-3% slower, cached or not: other maps keep one stream.
     */
    static final int STREAMS = 4;

    /** Lane l to lane l ^ d, and the lanes with bit d set, for {@link #transpose16} (meaningful when V == 16). */
    private static final VectorShuffle<Float> X1 = xor(1), X2 = xor(2), X4 = xor(4), X8 = xor(8);
    private static final VectorMask<Float> H1 = bit(1), H2 = bit(2), H4 = bit(4), H8 = bit(8);

    private static VectorShuffle<Float> xor(int d) {
        return VectorShuffle.fromOp(S, l -> (l ^ d) & (V - 1));
    }

    private static VectorMask<Float> bit(int d) {
        long bits = 0;
        for (int l = 0; l < V; l++) {
            bits |= (l & d) != 0 ? 1L << l : 0;
        }
        return VectorMask.fromLong(S, bits);
    }

    private VectorDirectChannels() {
    }

    /** Whether this kernel takes the layer: stride 1 both ways, three taps per row, at least one full block of channels per group. */
    static boolean applies(ConvGeometry g) {
        return g.strideH == 1 && g.strideW == 1 && g.s == 3 && (g.dilationW == 1 || g.dilationW == 2) && g.kPerGroup() >= NB;
    }

    /**
     * Floats between the padded rows: W + max(pl, pr), so one run of zeros pads both sides of a row (14x14 with
     * padding 1: 14 of 15 flat outputs kept, not 14 of 16), but at least Q, so output rows do not overlap (a
     * padding wider than the row's taps reach).
     */
    private static int rowStride(ConvGeometry g) {
        return Math.max(g.w + Math.max(g.padLeft, g.padRight), g.q);
    }

    /** Floats of one padded input plane with rows ws apart: the left padding of the first row, then H + pt + pb rows. */
    private static int paddedPlane(ConvGeometry g, int ws) {
        return g.padLeft + g.paddedH() * ws;
    }

    /** Floats of workspace a thread uses at most: one pair's padded input, one task's accumulators, the packed weights. */
    static long workspaceFloats(ConvGeometry g) {
        int ws = rowStride(g), kPad = (g.kPerGroup() + NB - 1) / NB * NB;
        return VectorDirect.paddedSize(g, ws, paddedPlane(g, ws)) + ((long) g.p * ws + PX) * kPad
                + (long) g.groups * kPad / NB * g.r * streams(g) * regionFloats(g.cPerGroup(), streams(g));
    }

    /** y = conv(x, w) + bias; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights w, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int blocks = (kg + NB - 1) / NB, kPad = blocks * NB;
        int wpad = rowStride(g), plane = paddedPlane(g, wpad);
        // tiles of PX consecutive flat outputs, or one per output row of 7 (tile7): ts flat outputs from one to the next
        boolean rows = rowsOfSeven(g);
        int ts = rows ? wpad : PX, tiles = rows ? g.p : (g.p * wpad + PX - 1) / PX;
        float[] wq = packWeights(g, w, blocks, par);
        int chunks = (int) Math.min(cg, ((long) blocks * NB * g.r * 3 * cg + WEIGHT_CHUNK - 1) / WEIGHT_CHUNK);
        // a chunk starts at a multiple of the streams: its channels are runs of the slice's regions at one offset
        int streams = streams(g), rs = regionFloats(cg, streams), slice = streams * rs;
        int cc = ((cg + chunks - 1) / chunks + streams - 1) / streams * streams;
        int pairs = g.n * g.groups;
        int[] split = split(pairs, blocks, tiles, par.threads());
        int kParts = split[0], parts = split[1];
        // each thread pads a pair once for its tasks on it, into a buffer of one pair (all the pairs' padded inputs at
        // once outgrow L2: 8 x 64 x 56 x 56 took 5.7 ms instead of 5.3)
        long call = VectorDirect.newCall();
        par.forEach(pairs * kParts * parts, task -> {
            int pair = task / (kParts * parts), kPart = task / parts % kParts, part = task % parts;
            int n = pair / g.groups, grp = pair % g.groups;
            int b0 = blocks * kPart / kParts, b1 = blocks * (kPart + 1) / kParts;
            int kLo = b0 * NB, kHi = Math.min(kg, b1 * NB), accK = (b1 - b0) * NB;
            int t0 = (int) ((long) tiles * part / parts), t1 = (int) ((long) tiles * (part + 1) / parts);
            float[] xp = VectorDirect.padOnce(call, g, x, pair, wpad, plane);
            // acc[f*accK + k - kLo]: output channel k of flat output t0*ts + f, bias first
            float[] acc = Workspace.get(Workspace.SCRATCH, (long) (t1 - t0) * ts * accK);
            for (int k = 0; k < accK; k++) {
                acc[k] = bias == null || kLo + k >= kg ? 0f : bias[grp * kg + kLo + k];
            }
            for (int f = 1; f < (t1 - t0) * ts; f++) {
                System.arraycopy(acc, 0, acc, f * accK, accK);
            }
            for (int c0 = 0; c0 < cg; c0 += cc) {
                int cn = Math.min(cc, cg - c0);
                for (int tg = t0; tg < t1; tg += GROUP) {
                    int tEnd = Math.min(t1, tg + GROUP);
                    for (int b = b0; b < b1; b++) {
                        for (int r = 0; r < g.r; r++) {
                            int wOff = ((grp * blocks + b) * g.r + r) * slice + c0 / streams * 3 * NB;
                            int xOff = c0 * plane + r * g.dilationH * wpad;
                            for (int t = tg; t < tEnd; t++) {
                                int a = (t - t0) * ts * accK + (b - b0) * NB;
                                if (rows) {
                                    tile7(cn, xp, xOff + t * ts, plane, wq, wOff, rs, acc, a, accK);
                                } else if (g.dilationW == 1) {
                                    tile1(cn, xp, xOff + t * ts, plane, wq, wOff, acc, a, accK);
                                } else {
                                    tile2(cn, xp, xOff + t * ts, plane, wq, wOff, acc, a, accK);
                                }
                            }
                        }
                    }
                }
            }
            int f0 = t0 * ts, f1 = Math.min(t1 * ts, g.p * wpad);
            copyOut(g, acc, accK, kLo, kHi, f0, f1, wpad, y, n, grp);
            // per channel, the outputs of flat indices [f0, f1) (the wrapped columns dropped) are one run of its plane
            int from = f0 / wpad * g.q + Math.min(f0 % wpad, g.q), to = f1 / wpad * g.q + Math.min(f1 % wpad, g.q);
            for (int k = kLo; k < kHi; k++) {
                int yPlane = (n * g.k + grp * kg + k) * g.p * g.q;
                done.region(yPlane + from, yPlane + to);
            }
        });
    }

    /**
     * How a call splits each (sample, group) pair's outputs into tasks: {kParts, parts}, runs of channel blocks times runs
     * of output tiles, about 4 tasks per thread in all. Channel blocks are split first: a task reads only its blocks'
     * weights, so each weight comes from memory once per pair (a split over tiles alone had every task read all of them:
     * the 7x7 layers of ResNet-50's last stage, 9.4 MB of weights, read 7 times at batch 1). About 8 tasks per thread here
     * and in {@link VectorDirectStrided} (less waiting at a loop's end, more weights read twice) ran ResNet-50's trunk at
     * batch 1 no faster (per-pair ratio 1.003, quartiles 0.990-1.056), about 2 slower (0.992; AMD EPYC Zen 5, 2 threads,
     * alternating trunk runs in one process).
     */
    static int[] split(int pairs, int blocks, int tiles, int threads) {
        int want = 4 * threads;
        int kParts = Math.max(1, Math.min(blocks, (want + pairs - 1) / pairs));
        int parts = Math.max(1, Math.min(tiles, (want + pairs * kParts - 1) / (pairs * kParts)));
        return new int[] {kParts, parts};
    }

    /** Whether the outputs take one tile per row of 7 ({@link #tile7}). */
    private static boolean rowsOfSeven(ConvGeometry g) {
        return g.q == 7 && g.dilationW == 1;
    }

    /** The regions each slice of g's packed weights is split into: {@link #STREAMS} for rows of 7, else one. */
    private static int streams(ConvGeometry g) {
        return rowsOfSeven(g) ? STREAMS : 1;
    }

    /** Floats of one region of a (block, kernel row) slice of the packed weights: its input channels' 3 taps x NB each. */
    private static int regionFloats(int cg, int streams) {
        return (cg + streams - 1) / streams * 3 * NB;
    }

    /**
     * wq[((grp*blocks + b)*R + r)*slice + (c % streams)*rs + (c / streams)*3*NB + s*NB + j] = w[grp*K/G + b*NB + j][c][r][s]
     * ({@link #streams}, rs = {@link #regionFloats}, slice = streams * rs), zero past the group's channels.
     */
    private static float[] packWeights(ConvGeometry g, Weights weights, int blocks, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), streams = streams(g), rs = regionFloats(cg, streams), slice = streams * rs;
        float[] w = weights.raw;
        return weights.packed((long) g.groups * blocks * g.r * slice, wq -> par.forEach(g.groups * blocks, gb -> {
            int grp = gb / blocks, b = gb % blocks;
            for (int r = 0; r < g.r; r++) {
                for (int c = 0; c < cg; c++) {
                    for (int s = 0; s < 3; s++) {
                        int dst = (gb * g.r + r) * slice + c % streams * rs + (c / streams * 3 + s) * NB;
                        for (int j = 0; j < NB; j++) {
                            int k = b * NB + j;
                            wq[dst + j] = k < kg ? w[(((grp * kg + k) * cg + c) * g.r + r) * 3 + s] : 0f;
                        }
                    }
                }
            }
        }));
    }

    /**
     * Flat outputs [f0, f1) of the group's channels [kLo, kHi) of sample n and group grp (acc[(f - f0)*kPad + k - kLo])
     * into y, dropping the wrapped columns. Channels go 16 at a time: 16 outputs x 16 channels are transposed in registers and stored along
     * 16 rows of y (scalar copies for the rest).
     */
    private static void copyOut(ConvGeometry g, float[] acc, int kPad, int kLo, int kHi, int f0, int f1, int wpad, float[] y, int n, int grp) {
        int kg = g.kPerGroup(), pq = g.p * g.q;
        for (int k0 = kLo; k0 < kHi; k0 += 16) {
            int kn = Math.min(16, kHi - k0), yBlock = (n * g.k + grp * kg + k0) * pq, col = k0 - kLo;
            for (int p = f0 / wpad; p * wpad < f1; p++) {
                int q0 = Math.max(0, f0 - p * wpad), q1 = Math.min(g.q, f1 - p * wpad);
                int q = q0;
                if (V == 16 && kn == 16) {
                    // the last block of a row may run into the next row's first outputs when this call stores that
                    // row too (after this one, so the right values land last): rows of 14 or 56 need no scalar tail
                    int spill = q1 == g.q && p + 1 < g.p ? Math.min(g.q, f1 - (p + 1) * wpad) : 0;
                    for (; q + 16 <= q1 || (q < q1 && q + 16 - q1 <= spill); q += 16) {
                        transpose16(acc, (p * wpad + q - f0) * kPad + col, kPad, y, yBlock + p * g.q + q, pq);
                    }
                }
                for (; q < q1; q++) {
                    int src = (p * wpad + q - f0) * kPad + col, dst = yBlock + p * g.q + q;
                    for (int kk = 0; kk < kn; kk++) {
                        y[dst + kk * pq] = acc[src + kk];
                    }
                }
            }
        }
    }

    /**
     * Transposes 16 x 16 floats with 4 butterfly stages (stage d swaps bit d of the row with bit d of the lane): the
     * rows acc[src + l*kPad ..] (16 outputs, 16 channels each) become out[o + kk*ldo ..] (16 outputs of channel kk).
     */
    static void transpose16(float[] acc, int src, int kPad, float[] out, int o, int ldo) {
        FloatVector r0 = FloatVector.fromArray(S, acc, src + 0 * kPad);
        FloatVector r1 = FloatVector.fromArray(S, acc, src + 1 * kPad);
        FloatVector r2 = FloatVector.fromArray(S, acc, src + 2 * kPad);
        FloatVector r3 = FloatVector.fromArray(S, acc, src + 3 * kPad);
        FloatVector r4 = FloatVector.fromArray(S, acc, src + 4 * kPad);
        FloatVector r5 = FloatVector.fromArray(S, acc, src + 5 * kPad);
        FloatVector r6 = FloatVector.fromArray(S, acc, src + 6 * kPad);
        FloatVector r7 = FloatVector.fromArray(S, acc, src + 7 * kPad);
        FloatVector r8 = FloatVector.fromArray(S, acc, src + 8 * kPad);
        FloatVector r9 = FloatVector.fromArray(S, acc, src + 9 * kPad);
        FloatVector r10 = FloatVector.fromArray(S, acc, src + 10 * kPad);
        FloatVector r11 = FloatVector.fromArray(S, acc, src + 11 * kPad);
        FloatVector r12 = FloatVector.fromArray(S, acc, src + 12 * kPad);
        FloatVector r13 = FloatVector.fromArray(S, acc, src + 13 * kPad);
        FloatVector r14 = FloatVector.fromArray(S, acc, src + 14 * kPad);
        FloatVector r15 = FloatVector.fromArray(S, acc, src + 15 * kPad);
        FloatVector a0 = r0.blend(r8.rearrange(X8), H8), a8 = r0.rearrange(X8).blend(r8, H8);
        FloatVector a1 = r1.blend(r9.rearrange(X8), H8), a9 = r1.rearrange(X8).blend(r9, H8);
        FloatVector a2 = r2.blend(r10.rearrange(X8), H8), a10 = r2.rearrange(X8).blend(r10, H8);
        FloatVector a3 = r3.blend(r11.rearrange(X8), H8), a11 = r3.rearrange(X8).blend(r11, H8);
        FloatVector a4 = r4.blend(r12.rearrange(X8), H8), a12 = r4.rearrange(X8).blend(r12, H8);
        FloatVector a5 = r5.blend(r13.rearrange(X8), H8), a13 = r5.rearrange(X8).blend(r13, H8);
        FloatVector a6 = r6.blend(r14.rearrange(X8), H8), a14 = r6.rearrange(X8).blend(r14, H8);
        FloatVector a7 = r7.blend(r15.rearrange(X8), H8), a15 = r7.rearrange(X8).blend(r15, H8);
        FloatVector b0 = a0.blend(a4.rearrange(X4), H4), b4 = a0.rearrange(X4).blend(a4, H4);
        FloatVector b1 = a1.blend(a5.rearrange(X4), H4), b5 = a1.rearrange(X4).blend(a5, H4);
        FloatVector b2 = a2.blend(a6.rearrange(X4), H4), b6 = a2.rearrange(X4).blend(a6, H4);
        FloatVector b3 = a3.blend(a7.rearrange(X4), H4), b7 = a3.rearrange(X4).blend(a7, H4);
        FloatVector b8 = a8.blend(a12.rearrange(X4), H4), b12 = a8.rearrange(X4).blend(a12, H4);
        FloatVector b9 = a9.blend(a13.rearrange(X4), H4), b13 = a9.rearrange(X4).blend(a13, H4);
        FloatVector b10 = a10.blend(a14.rearrange(X4), H4), b14 = a10.rearrange(X4).blend(a14, H4);
        FloatVector b11 = a11.blend(a15.rearrange(X4), H4), b15 = a11.rearrange(X4).blend(a15, H4);
        FloatVector c0 = b0.blend(b2.rearrange(X2), H2), c2 = b0.rearrange(X2).blend(b2, H2);
        FloatVector c1 = b1.blend(b3.rearrange(X2), H2), c3 = b1.rearrange(X2).blend(b3, H2);
        FloatVector c4 = b4.blend(b6.rearrange(X2), H2), c6 = b4.rearrange(X2).blend(b6, H2);
        FloatVector c5 = b5.blend(b7.rearrange(X2), H2), c7 = b5.rearrange(X2).blend(b7, H2);
        FloatVector c8 = b8.blend(b10.rearrange(X2), H2), c10 = b8.rearrange(X2).blend(b10, H2);
        FloatVector c9 = b9.blend(b11.rearrange(X2), H2), c11 = b9.rearrange(X2).blend(b11, H2);
        FloatVector c12 = b12.blend(b14.rearrange(X2), H2), c14 = b12.rearrange(X2).blend(b14, H2);
        FloatVector c13 = b13.blend(b15.rearrange(X2), H2), c15 = b13.rearrange(X2).blend(b15, H2);
        FloatVector d0 = c0.blend(c1.rearrange(X1), H1), d1 = c0.rearrange(X1).blend(c1, H1);
        FloatVector d2 = c2.blend(c3.rearrange(X1), H1), d3 = c2.rearrange(X1).blend(c3, H1);
        FloatVector d4 = c4.blend(c5.rearrange(X1), H1), d5 = c4.rearrange(X1).blend(c5, H1);
        FloatVector d6 = c6.blend(c7.rearrange(X1), H1), d7 = c6.rearrange(X1).blend(c7, H1);
        FloatVector d8 = c8.blend(c9.rearrange(X1), H1), d9 = c8.rearrange(X1).blend(c9, H1);
        FloatVector d10 = c10.blend(c11.rearrange(X1), H1), d11 = c10.rearrange(X1).blend(c11, H1);
        FloatVector d12 = c12.blend(c13.rearrange(X1), H1), d13 = c12.rearrange(X1).blend(c13, H1);
        FloatVector d14 = c14.blend(c15.rearrange(X1), H1), d15 = c14.rearrange(X1).blend(c15, H1);
        d0.intoArray(out, o + 0 * ldo);
        d1.intoArray(out, o + 1 * ldo);
        d2.intoArray(out, o + 2 * ldo);
        d3.intoArray(out, o + 3 * ldo);
        d4.intoArray(out, o + 4 * ldo);
        d5.intoArray(out, o + 5 * ldo);
        d6.intoArray(out, o + 6 * ldo);
        d7.intoArray(out, o + 7 * ldo);
        d8.intoArray(out, o + 8 * ldo);
        d9.intoArray(out, o + 9 * ldo);
        d10.intoArray(out, o + 10 * ldo);
        d11.intoArray(out, o + 11 * ldo);
        d12.intoArray(out, o + 12 * ldo);
        d13.intoArray(out, o + 13 * ldo);
        d14.intoArray(out, o + 14 * ldo);
        d15.intoArray(out, o + 15 * ldo);
    }

    /**
     * The register tile for taps one column apart: PX consecutive flat outputs x NB channels (acc[a + i*ldo + j],
     * i: output, j: channel) += the row's three taps of input channels [0, cn): wq[t + (c*3 + u)*NB + j] *
     * xp[x + c*xs + i + u]. Each input value is broadcast once and used by every (output, tap) pair that reads it.
     */
    static void tile1(int cn, float[] xp, int x, int xs, float[] wq, int t, float[] acc, int a, int ldo) {
        FloatVector a00 = FloatVector.fromArray(S, acc, a), a01 = FloatVector.fromArray(S, acc, a + V);
        FloatVector a10 = FloatVector.fromArray(S, acc, a + 1 * ldo), a11 = FloatVector.fromArray(S, acc, a + 1 * ldo + V);
        FloatVector a20 = FloatVector.fromArray(S, acc, a + 2 * ldo), a21 = FloatVector.fromArray(S, acc, a + 2 * ldo + V);
        FloatVector a30 = FloatVector.fromArray(S, acc, a + 3 * ldo), a31 = FloatVector.fromArray(S, acc, a + 3 * ldo + V);
        FloatVector a40 = FloatVector.fromArray(S, acc, a + 4 * ldo), a41 = FloatVector.fromArray(S, acc, a + 4 * ldo + V);
        FloatVector a50 = FloatVector.fromArray(S, acc, a + 5 * ldo), a51 = FloatVector.fromArray(S, acc, a + 5 * ldo + V);
        FloatVector a60 = FloatVector.fromArray(S, acc, a + 6 * ldo), a61 = FloatVector.fromArray(S, acc, a + 6 * ldo + V);
        FloatVector a70 = FloatVector.fromArray(S, acc, a + 7 * ldo), a71 = FloatVector.fromArray(S, acc, a + 7 * ldo + V);
        FloatVector a80 = FloatVector.fromArray(S, acc, a + 8 * ldo), a81 = FloatVector.fromArray(S, acc, a + 8 * ldo + V);
        FloatVector a90 = FloatVector.fromArray(S, acc, a + 9 * ldo), a91 = FloatVector.fromArray(S, acc, a + 9 * ldo + V);
        for (int c = 0; c < cn; c++) {
            int xi = x + c * xs, ti = t + c * 3 * NB;
            FloatVector w00 = FloatVector.fromArray(S, wq, ti + 0 * V), w01 = FloatVector.fromArray(S, wq, ti + 1 * V);
            FloatVector w10 = FloatVector.fromArray(S, wq, ti + 2 * V), w11 = FloatVector.fromArray(S, wq, ti + 3 * V);
            FloatVector w20 = FloatVector.fromArray(S, wq, ti + 4 * V), w21 = FloatVector.fromArray(S, wq, ti + 5 * V);
            FloatVector b0 = FloatVector.broadcast(S, xp[xi + 0]);
            a00 = w00.fma(b0, a00);
            a01 = w01.fma(b0, a01);
            FloatVector b1 = FloatVector.broadcast(S, xp[xi + 1]);
            a10 = w00.fma(b1, a10);
            a11 = w01.fma(b1, a11);
            a00 = w10.fma(b1, a00);
            a01 = w11.fma(b1, a01);
            FloatVector b2 = FloatVector.broadcast(S, xp[xi + 2]);
            a20 = w00.fma(b2, a20);
            a21 = w01.fma(b2, a21);
            a10 = w10.fma(b2, a10);
            a11 = w11.fma(b2, a11);
            a00 = w20.fma(b2, a00);
            a01 = w21.fma(b2, a01);
            FloatVector b3 = FloatVector.broadcast(S, xp[xi + 3]);
            a30 = w00.fma(b3, a30);
            a31 = w01.fma(b3, a31);
            a20 = w10.fma(b3, a20);
            a21 = w11.fma(b3, a21);
            a10 = w20.fma(b3, a10);
            a11 = w21.fma(b3, a11);
            FloatVector b4 = FloatVector.broadcast(S, xp[xi + 4]);
            a40 = w00.fma(b4, a40);
            a41 = w01.fma(b4, a41);
            a30 = w10.fma(b4, a30);
            a31 = w11.fma(b4, a31);
            a20 = w20.fma(b4, a20);
            a21 = w21.fma(b4, a21);
            FloatVector b5 = FloatVector.broadcast(S, xp[xi + 5]);
            a50 = w00.fma(b5, a50);
            a51 = w01.fma(b5, a51);
            a40 = w10.fma(b5, a40);
            a41 = w11.fma(b5, a41);
            a30 = w20.fma(b5, a30);
            a31 = w21.fma(b5, a31);
            FloatVector b6 = FloatVector.broadcast(S, xp[xi + 6]);
            a60 = w00.fma(b6, a60);
            a61 = w01.fma(b6, a61);
            a50 = w10.fma(b6, a50);
            a51 = w11.fma(b6, a51);
            a40 = w20.fma(b6, a40);
            a41 = w21.fma(b6, a41);
            FloatVector b7 = FloatVector.broadcast(S, xp[xi + 7]);
            a70 = w00.fma(b7, a70);
            a71 = w01.fma(b7, a71);
            a60 = w10.fma(b7, a60);
            a61 = w11.fma(b7, a61);
            a50 = w20.fma(b7, a50);
            a51 = w21.fma(b7, a51);
            FloatVector b8 = FloatVector.broadcast(S, xp[xi + 8]);
            a80 = w00.fma(b8, a80);
            a81 = w01.fma(b8, a81);
            a70 = w10.fma(b8, a70);
            a71 = w11.fma(b8, a71);
            a60 = w20.fma(b8, a60);
            a61 = w21.fma(b8, a61);
            FloatVector b9 = FloatVector.broadcast(S, xp[xi + 9]);
            a90 = w00.fma(b9, a90);
            a91 = w01.fma(b9, a91);
            a80 = w10.fma(b9, a80);
            a81 = w11.fma(b9, a81);
            a70 = w20.fma(b9, a70);
            a71 = w21.fma(b9, a71);
            FloatVector b10 = FloatVector.broadcast(S, xp[xi + 10]);
            a90 = w10.fma(b10, a90);
            a91 = w11.fma(b10, a91);
            a80 = w20.fma(b10, a80);
            a81 = w21.fma(b10, a81);
            FloatVector b11 = FloatVector.broadcast(S, xp[xi + 11]);
            a90 = w20.fma(b11, a90);
            a91 = w21.fma(b11, a91);
        }
        a00.intoArray(acc, a);
        a01.intoArray(acc, a + V);
        a10.intoArray(acc, a + 1 * ldo);
        a11.intoArray(acc, a + 1 * ldo + V);
        a20.intoArray(acc, a + 2 * ldo);
        a21.intoArray(acc, a + 2 * ldo + V);
        a30.intoArray(acc, a + 3 * ldo);
        a31.intoArray(acc, a + 3 * ldo + V);
        a40.intoArray(acc, a + 4 * ldo);
        a41.intoArray(acc, a + 4 * ldo + V);
        a50.intoArray(acc, a + 5 * ldo);
        a51.intoArray(acc, a + 5 * ldo + V);
        a60.intoArray(acc, a + 6 * ldo);
        a61.intoArray(acc, a + 6 * ldo + V);
        a70.intoArray(acc, a + 7 * ldo);
        a71.intoArray(acc, a + 7 * ldo + V);
        a80.intoArray(acc, a + 8 * ldo);
        a81.intoArray(acc, a + 8 * ldo + V);
        a90.intoArray(acc, a + 9 * ldo);
        a91.intoArray(acc, a + 9 * ldo + V);
    }

    /**
     * {@link #tile1} for one output row of 7 (ResNet-50's 7x7 maps, whose padded rows are 8 apart: tiles of 10 flat
     * outputs computed 60 for every 49 kept): 7 outputs x NB channels, the same FMAs per output in the same order; input
     * channel c's weights at wq[t + (c % STREAMS)*rs + (c / STREAMS)*3*NB] ({@link #STREAMS}).
     */
    static void tile7(int cn, float[] xp, int x, int xs, float[] wq, int t, int rs, float[] acc, int a, int ldo) {
        FloatVector a00 = FloatVector.fromArray(S, acc, a + 0 * ldo), a01 = FloatVector.fromArray(S, acc, a + 0 * ldo + V);
        FloatVector a10 = FloatVector.fromArray(S, acc, a + 1 * ldo), a11 = FloatVector.fromArray(S, acc, a + 1 * ldo + V);
        FloatVector a20 = FloatVector.fromArray(S, acc, a + 2 * ldo), a21 = FloatVector.fromArray(S, acc, a + 2 * ldo + V);
        FloatVector a30 = FloatVector.fromArray(S, acc, a + 3 * ldo), a31 = FloatVector.fromArray(S, acc, a + 3 * ldo + V);
        FloatVector a40 = FloatVector.fromArray(S, acc, a + 4 * ldo), a41 = FloatVector.fromArray(S, acc, a + 4 * ldo + V);
        FloatVector a50 = FloatVector.fromArray(S, acc, a + 5 * ldo), a51 = FloatVector.fromArray(S, acc, a + 5 * ldo + V);
        FloatVector a60 = FloatVector.fromArray(S, acc, a + 6 * ldo), a61 = FloatVector.fromArray(S, acc, a + 6 * ldo + V);
        for (int c = 0; c < cn; c++) {
            int xi = x + c * xs, ti = t + c % STREAMS * rs + c / STREAMS * 3 * NB;
            FloatVector w00 = FloatVector.fromArray(S, wq, ti + 0 * V), w01 = FloatVector.fromArray(S, wq, ti + 1 * V);
            FloatVector w10 = FloatVector.fromArray(S, wq, ti + 2 * V), w11 = FloatVector.fromArray(S, wq, ti + 3 * V);
            FloatVector w20 = FloatVector.fromArray(S, wq, ti + 4 * V), w21 = FloatVector.fromArray(S, wq, ti + 5 * V);
            FloatVector b0 = FloatVector.broadcast(S, xp[xi + 0]);
            a00 = w00.fma(b0, a00);
            a01 = w01.fma(b0, a01);
            FloatVector b1 = FloatVector.broadcast(S, xp[xi + 1]);
            a10 = w00.fma(b1, a10);
            a11 = w01.fma(b1, a11);
            a00 = w10.fma(b1, a00);
            a01 = w11.fma(b1, a01);
            FloatVector b2 = FloatVector.broadcast(S, xp[xi + 2]);
            a20 = w00.fma(b2, a20);
            a21 = w01.fma(b2, a21);
            a10 = w10.fma(b2, a10);
            a11 = w11.fma(b2, a11);
            a00 = w20.fma(b2, a00);
            a01 = w21.fma(b2, a01);
            FloatVector b3 = FloatVector.broadcast(S, xp[xi + 3]);
            a30 = w00.fma(b3, a30);
            a31 = w01.fma(b3, a31);
            a20 = w10.fma(b3, a20);
            a21 = w11.fma(b3, a21);
            a10 = w20.fma(b3, a10);
            a11 = w21.fma(b3, a11);
            FloatVector b4 = FloatVector.broadcast(S, xp[xi + 4]);
            a40 = w00.fma(b4, a40);
            a41 = w01.fma(b4, a41);
            a30 = w10.fma(b4, a30);
            a31 = w11.fma(b4, a31);
            a20 = w20.fma(b4, a20);
            a21 = w21.fma(b4, a21);
            FloatVector b5 = FloatVector.broadcast(S, xp[xi + 5]);
            a50 = w00.fma(b5, a50);
            a51 = w01.fma(b5, a51);
            a40 = w10.fma(b5, a40);
            a41 = w11.fma(b5, a41);
            a30 = w20.fma(b5, a30);
            a31 = w21.fma(b5, a31);
            FloatVector b6 = FloatVector.broadcast(S, xp[xi + 6]);
            a60 = w00.fma(b6, a60);
            a61 = w01.fma(b6, a61);
            a50 = w10.fma(b6, a50);
            a51 = w11.fma(b6, a51);
            a40 = w20.fma(b6, a40);
            a41 = w21.fma(b6, a41);
            FloatVector b7 = FloatVector.broadcast(S, xp[xi + 7]);
            a60 = w10.fma(b7, a60);
            a61 = w11.fma(b7, a61);
            a50 = w20.fma(b7, a50);
            a51 = w21.fma(b7, a51);
            FloatVector b8 = FloatVector.broadcast(S, xp[xi + 8]);
            a60 = w20.fma(b8, a60);
            a61 = w21.fma(b8, a61);
        }
        a00.intoArray(acc, a + 0 * ldo);
        a01.intoArray(acc, a + 0 * ldo + V);
        a10.intoArray(acc, a + 1 * ldo);
        a11.intoArray(acc, a + 1 * ldo + V);
        a20.intoArray(acc, a + 2 * ldo);
        a21.intoArray(acc, a + 2 * ldo + V);
        a30.intoArray(acc, a + 3 * ldo);
        a31.intoArray(acc, a + 3 * ldo + V);
        a40.intoArray(acc, a + 4 * ldo);
        a41.intoArray(acc, a + 4 * ldo + V);
        a50.intoArray(acc, a + 5 * ldo);
        a51.intoArray(acc, a + 5 * ldo + V);
        a60.intoArray(acc, a + 6 * ldo);
        a61.intoArray(acc, a + 6 * ldo + V);
    }

    /**
     * {@link #tile1} for taps two columns apart (dilation 2): xp[x + c*xs + i + 2u].
     */
    static void tile2(int cn, float[] xp, int x, int xs, float[] wq, int t, float[] acc, int a, int ldo) {
        FloatVector a00 = FloatVector.fromArray(S, acc, a), a01 = FloatVector.fromArray(S, acc, a + V);
        FloatVector a10 = FloatVector.fromArray(S, acc, a + 1 * ldo), a11 = FloatVector.fromArray(S, acc, a + 1 * ldo + V);
        FloatVector a20 = FloatVector.fromArray(S, acc, a + 2 * ldo), a21 = FloatVector.fromArray(S, acc, a + 2 * ldo + V);
        FloatVector a30 = FloatVector.fromArray(S, acc, a + 3 * ldo), a31 = FloatVector.fromArray(S, acc, a + 3 * ldo + V);
        FloatVector a40 = FloatVector.fromArray(S, acc, a + 4 * ldo), a41 = FloatVector.fromArray(S, acc, a + 4 * ldo + V);
        FloatVector a50 = FloatVector.fromArray(S, acc, a + 5 * ldo), a51 = FloatVector.fromArray(S, acc, a + 5 * ldo + V);
        FloatVector a60 = FloatVector.fromArray(S, acc, a + 6 * ldo), a61 = FloatVector.fromArray(S, acc, a + 6 * ldo + V);
        FloatVector a70 = FloatVector.fromArray(S, acc, a + 7 * ldo), a71 = FloatVector.fromArray(S, acc, a + 7 * ldo + V);
        FloatVector a80 = FloatVector.fromArray(S, acc, a + 8 * ldo), a81 = FloatVector.fromArray(S, acc, a + 8 * ldo + V);
        FloatVector a90 = FloatVector.fromArray(S, acc, a + 9 * ldo), a91 = FloatVector.fromArray(S, acc, a + 9 * ldo + V);
        for (int c = 0; c < cn; c++) {
            int xi = x + c * xs, ti = t + c * 3 * NB;
            FloatVector w00 = FloatVector.fromArray(S, wq, ti + 0 * V), w01 = FloatVector.fromArray(S, wq, ti + 1 * V);
            FloatVector w10 = FloatVector.fromArray(S, wq, ti + 2 * V), w11 = FloatVector.fromArray(S, wq, ti + 3 * V);
            FloatVector w20 = FloatVector.fromArray(S, wq, ti + 4 * V), w21 = FloatVector.fromArray(S, wq, ti + 5 * V);
            FloatVector b0 = FloatVector.broadcast(S, xp[xi + 0]);
            a00 = w00.fma(b0, a00);
            a01 = w01.fma(b0, a01);
            FloatVector b1 = FloatVector.broadcast(S, xp[xi + 1]);
            a10 = w00.fma(b1, a10);
            a11 = w01.fma(b1, a11);
            FloatVector b2 = FloatVector.broadcast(S, xp[xi + 2]);
            a20 = w00.fma(b2, a20);
            a21 = w01.fma(b2, a21);
            a00 = w10.fma(b2, a00);
            a01 = w11.fma(b2, a01);
            FloatVector b3 = FloatVector.broadcast(S, xp[xi + 3]);
            a30 = w00.fma(b3, a30);
            a31 = w01.fma(b3, a31);
            a10 = w10.fma(b3, a10);
            a11 = w11.fma(b3, a11);
            FloatVector b4 = FloatVector.broadcast(S, xp[xi + 4]);
            a40 = w00.fma(b4, a40);
            a41 = w01.fma(b4, a41);
            a20 = w10.fma(b4, a20);
            a21 = w11.fma(b4, a21);
            a00 = w20.fma(b4, a00);
            a01 = w21.fma(b4, a01);
            FloatVector b5 = FloatVector.broadcast(S, xp[xi + 5]);
            a50 = w00.fma(b5, a50);
            a51 = w01.fma(b5, a51);
            a30 = w10.fma(b5, a30);
            a31 = w11.fma(b5, a31);
            a10 = w20.fma(b5, a10);
            a11 = w21.fma(b5, a11);
            FloatVector b6 = FloatVector.broadcast(S, xp[xi + 6]);
            a60 = w00.fma(b6, a60);
            a61 = w01.fma(b6, a61);
            a40 = w10.fma(b6, a40);
            a41 = w11.fma(b6, a41);
            a20 = w20.fma(b6, a20);
            a21 = w21.fma(b6, a21);
            FloatVector b7 = FloatVector.broadcast(S, xp[xi + 7]);
            a70 = w00.fma(b7, a70);
            a71 = w01.fma(b7, a71);
            a50 = w10.fma(b7, a50);
            a51 = w11.fma(b7, a51);
            a30 = w20.fma(b7, a30);
            a31 = w21.fma(b7, a31);
            FloatVector b8 = FloatVector.broadcast(S, xp[xi + 8]);
            a80 = w00.fma(b8, a80);
            a81 = w01.fma(b8, a81);
            a60 = w10.fma(b8, a60);
            a61 = w11.fma(b8, a61);
            a40 = w20.fma(b8, a40);
            a41 = w21.fma(b8, a41);
            FloatVector b9 = FloatVector.broadcast(S, xp[xi + 9]);
            a90 = w00.fma(b9, a90);
            a91 = w01.fma(b9, a91);
            a70 = w10.fma(b9, a70);
            a71 = w11.fma(b9, a71);
            a50 = w20.fma(b9, a50);
            a51 = w21.fma(b9, a51);
            FloatVector b10 = FloatVector.broadcast(S, xp[xi + 10]);
            a80 = w10.fma(b10, a80);
            a81 = w11.fma(b10, a81);
            a60 = w20.fma(b10, a60);
            a61 = w21.fma(b10, a61);
            FloatVector b11 = FloatVector.broadcast(S, xp[xi + 11]);
            a90 = w10.fma(b11, a90);
            a91 = w11.fma(b11, a91);
            a70 = w20.fma(b11, a70);
            a71 = w21.fma(b11, a71);
            FloatVector b12 = FloatVector.broadcast(S, xp[xi + 12]);
            a80 = w20.fma(b12, a80);
            a81 = w21.fma(b12, a81);
            FloatVector b13 = FloatVector.broadcast(S, xp[xi + 13]);
            a90 = w20.fma(b13, a90);
            a91 = w21.fma(b13, a91);
        }
        a00.intoArray(acc, a);
        a01.intoArray(acc, a + V);
        a10.intoArray(acc, a + 1 * ldo);
        a11.intoArray(acc, a + 1 * ldo + V);
        a20.intoArray(acc, a + 2 * ldo);
        a21.intoArray(acc, a + 2 * ldo + V);
        a30.intoArray(acc, a + 3 * ldo);
        a31.intoArray(acc, a + 3 * ldo + V);
        a40.intoArray(acc, a + 4 * ldo);
        a41.intoArray(acc, a + 4 * ldo + V);
        a50.intoArray(acc, a + 5 * ldo);
        a51.intoArray(acc, a + 5 * ldo + V);
        a60.intoArray(acc, a + 6 * ldo);
        a61.intoArray(acc, a + 6 * ldo + V);
        a70.intoArray(acc, a + 7 * ldo);
        a71.intoArray(acc, a + 7 * ldo + V);
        a80.intoArray(acc, a + 8 * ldo);
        a81.intoArray(acc, a + 8 * ldo + V);
        a90.intoArray(acc, a + 9 * ldo);
        a91.intoArray(acc, a + 9 * ldo + V);
    }
}
