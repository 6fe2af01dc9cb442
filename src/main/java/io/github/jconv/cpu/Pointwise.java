package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * 1 x 1 convolution at stride 1 without padding (ResNet's reduce and expand layers) as a GEMM read straight from NCHW,
 * with the Vector API (loaded only when the module is present; {@link DirectConv} calls it): each group's
 * {@code y[k][pixel] = bias[k] + sum over c of w[k][c] * x[c][pixel]}, pixels in the vector lanes. The register tile is
 * {@link #KT} output channels x {@link #PT} pixels (three vectors, 24 accumulators): per input channel three vector
 * loads of x's row and eight broadcast weights feed 24 FMAs, in one flat loop over the input channels (no packing of
 * x, no horizontal sums). The weights are packed once per plan tile by tile: a tile's 8 weights of one input channel
 * side by side, its input channels one after the other, so a tile reads one dense stream (with blocks as wide as a
 * vector, a tile read half of each 64-byte line and the next tile the other half: ResNet-50's 7x7 layers, whose 1-4 MB
 * of weights come from memory at batch 1, ran 5-12% slower); where a group's weights are that large ({@link #streamed})
 * the tile reads them as four streams, its input channels in quarters side by side ({@link #tile3Streams}). Pixels past
 * the last whole tile take one vector at a time, and the last ones, fewer than a vector, output channels in the lanes
 * ({@link #leftovers}). A task is a run of channel tiles times a run of pixel tiles of one sample and group ({@link
 * #split}); each output element is one chain over c in order (the streamed tiles: the quarters' channels in turn; the
 * last pixels: {@link #CPL} chains), the same whatever the thread count. The bias and a
 * ReLU/residual epilogue are applied to each vector on its way from the tile to y ({@link VectorEpilogue#vector}): no
 * second pass and no call per row.
 */
final class Pointwise {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile. */
    static final int KT = 8;
    /**
     * Input channels per lane vector of the leftover kernels: a tile's KT weights of CPL consecutive input channels fill a
     * vector (2 on AVX-512, 1 on AVX2; 1 and a scalar path below 8 lanes).
     */
    static final int CPL = Math.max(1, V / KT);
    /** Pixels per register tile: three vectors. */
    static final int PT = 3 * V;
    /**
     * Streams of weights a whole tile reads where they come from memory ({@link #streamed}, {@link #tile3Streams}). At batch 1
     * every layer's weights are evicted by the other layers' before its next call, and read as one stream per thread they
     * left the hardware prefetcher too few lines in flight (as in {@link VectorDirectChannels#STREAMS}). AMD EPYC Zen 5, 2
     * threads, 64 weight copies and 2 inputs cycling, medians of alternating runs in one process (ms, one stream -> four):
     * 1024 -> 256 @ 14 0.315 -> 0.280, 256 -> 1024 @ 14 0.353 -> 0.309, 2048 -> 512 @ 7 0.365 -> 0.309, 512 -> 2048 @ 7
     * 0.363 -> 0.300, 512 -> 128 @ 28 0.348 -> 0.319; with one copy (weights cached) within 1.5% either way. Two streams
     * gained about half as much; the four channels' order computed from the loop index instead (one copy of the loop body)
     * ran 20-35% slower than one stream, its loads' bounds checks left in the loop.
     */
    static final int STREAMS = 4;

    private Pointwise() {
    }

    /** A 1 x 1 forward layer at stride 1 without padding (dilation does not matter for one tap). */
    static boolean applies(ConvGeometry g) {
        return g.isUnpadded1x1() && g.strideH == 1 && g.strideW == 1;
    }

    /**
     * A 1 x 1 forward layer with a stride and no padding (ResNet's downsampling shortcuts): every output reads one input
     * pixel of each channel, so it is {@link #forward} on the input's strided pixels, copied once into a compact map.
     */
    static boolean appliesStrided(ConvGeometry g) {
        return g.isUnpadded1x1() && (g.strideH > 1 || g.strideW > 1);
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

    /**
     * Bytes of input (pixel tiles x the group's channels) a task's loop over channel tiles sweeps at a time. A pixel tile at
     * a time (as before) wrote 48 floats to each of the K output planes in turn; MobileNetV2's 16 -> 96 layer at 112 x 112
     * (12 channel tiles over 16 input channels) ran 1.24-1.31x faster in blocks of 8-64 KiB (2 threads, alternating in one
     * process, AMD EPYC Zen 4; us: 479 / 385 at 16 KiB, 394 / 306 at 32, 424 / 324 at 64), inside the trunk 0.590 ->
     * 0.485 ms (the trunk 1.019x); 24 -> 144 @ 56, 32 -> 16 @ 112, 64 -> 64 and 64 -> 256 @ 56 and 96 -> 576 @ 14 within
     * 2%, ResNet-50's trunk at batch 1 1.002x. Layers of more than 170 input channels keep one tile per block. Expanding
     * layers with short runs take the whole run ({@link #blockTiles}).
     */
    private static final int BLOCK_BYTES = 32 * 1024;

    /** Bytes of input of a task's run of pixel tiles that an expanding layer sweeps whole at most ({@link #blockTiles}). */
    private static final int RUN_BYTES = 64 * 1024;

    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        Sizes sz = new Sizes(g);
        int cg = sz.cg, kg = sz.kg, hw = sz.hw, kTiles = sz.kTiles;
        float[] wp = packed(g, weights, par);
        int pTiles = (hw + PT - 1) / PT, planes = g.n * g.groups;
        int[] split = split((long) kg * cg, (long) cg * hw, kTiles, pTiles, (8 * par.threads() + planes - 1) / planes);
        int runs = split[0], pParts = split[1];
        // the epilogue applied to each vector before its store (no call per row) where it can be; otherwise per row after it
        VectorEpilogue fused = done instanceof VectorEpilogue e && e.fuses() ? e : null;
        par.forEach(planes * pParts * runs, task -> {
            int run = task % runs, part = task / runs % pParts, plane = task / runs / pParts;
            int n = plane / g.groups, grp = plane % g.groups;
            int kt0 = kTiles * run / runs, kt1 = kTiles * (run + 1) / runs;
            int pt0 = pTiles * part / pParts, pt1 = pTiles * (part + 1) / pParts;
            float[] part8 = Workspace.get(Workspace.SCRATCH, (long) KT * PT + LANES_SCRATCH + pixelFloats(cg, hw));
            // blocks of pixel tiles, each swept once per channel tile: a channel tile's 8 planes of y take runs of a block's
            // pixels, not 8 x 48 floats of every plane in turn
            int block = blockTiles(cg, kg, pt1 - pt0);
            for (int b0 = pt0; b0 < pt1; b0 += block) {
                int b1 = Math.min(pt1, b0 + block);
                for (int kt = kt0; kt < kt1; kt++) {
                    for (int pt = b0; pt < b1; pt++) {
                        tile(g, sz, x, wp, bias, y, 0, done, fused, part8, n, grp, pt, kt);
                    }
                }
            }
            if (hw % V != 0) { // this task's share of the plane's last pixels: whole groups of four channel tiles
                int units = (kTiles + 3) / 4, tasks = pParts * runs, t = part * runs + run;
                int u0 = (int) ((long) units * t / tasks), u1 = (int) ((long) units * (t + 1) / tasks);
                if (u1 > u0) {
                    leftovers(g, sz, x, wp, bias, y, 0, done, fused, part8, n, grp, 4 * u0, Math.min(kTiles, 4 * u1));
                }
            }
        });
    }

    /** The weights packed tile by tile (once per plan; see the class comment): tile kt of group grp at {@link Sizes#tileAt}. */
    static float[] packed(ConvGeometry g, Weights weights, Parallel par) {
        Sizes sz = new Sizes(g);
        int cg = sz.cg, kg = sz.kg, kTiles = sz.kTiles, cp = paddedChannels(cg);
        float[] w = weights.raw;
        return weights.packed((long) g.groups * kTiles * cp * KT, p -> par.forEach(g.groups * kTiles, gt -> {
            int grp = gt / kTiles, kt = gt % kTiles;
            for (int c = 0; c < cp; c++) {
                for (int kk = 0; kk < KT; kk++) {
                    int k = kt * KT + kk;
                    p[(gt * cp + c) * KT + kk] = k < kg && c < cg ? w[(grp * kg + k) * cg + c] : 0f;
                }
            }
        }));
    }

    /**
     * Channel tiles [kt0, kt1) of sample n (one group; wp from {@link #packed}) over the whole map into {@code planes}: output
     * channel kt0 * KT + j at planes[j * hw ..], biased and the epilogue applied by {@code fused} (ReLU, ReLU6 or none, no
     * residual; null: none), each value computed as {@link #forward} computes it ({@link ExpandDepthwise}, which reads the
     * planes while they are in cache). Pixel tiles outer, so each tile's input is read once for all the channel tiles;
     * the map's last pixels, fewer than a vector, by {@link #leftovers} in its groups of four channel tiles.
     */
    static void channelTiles(ConvGeometry g, float[] x, float[] wp, float[] bias, VectorEpilogue fused, float[] planes, int n, int kt0,
                             int kt1) {
        Sizes sz = new Sizes(g);
        int hw = sz.hw, pTiles = (hw + PT - 1) / PT, shift = (n * g.k + kt0 * KT) * hw;
        float[] part8 = Workspace.get(Workspace.SCRATCH, (long) KT * PT + LANES_SCRATCH + pixelFloats(sz.cg, hw));
        for (int pt = 0; pt < pTiles; pt++) {
            for (int kt = kt0; kt < kt1; kt++) {
                tile(g, sz, x, wp, bias, planes, shift, CpuConvolution.Finish.NONE, fused, part8, n, 0, pt, kt);
            }
        }
        if (hw % V != 0) {
            leftovers(g, sz, x, wp, bias, planes, shift, CpuConvolution.Finish.NONE, fused, part8, n, 0, kt0, kt1);
        }
    }

    /**
     * Pixel tiles per block ({@link #BLOCK_BYTES}) of a task's run of {@code tiles}: the whole run where a layer writes at
     * least twice the floats it reads per pixel (kg >= 2 cg) and the run's input is at most {@link #RUN_BYTES}, so each
     * channel tile writes its 8 output planes over the run's pixels. That is ResNet-50's 64 -> 256 @ 56 at batch 1 (runs
     * of 4-5 tiles, 12 KiB of input each; 2 threads, AMD EPYC Zen 4, alternating in one process): alone with the residual
     * 1.010 -> 0.932 and 0.773 -> 0.743 ms, inside the trunk 4-8% faster in two processes (0.709 -> 0.679, 0.702 -> 0.656,
     * 0.762 -> 0.700, 0.732 -> 0.701 ms); MobileNetV2's 16 -> 96 @ 112 0.455 -> 0.441 ms alone. Longer runs were faster
     * alone but not in the trunk: 128 -> 512 @ 28 (17 tiles, 408 KiB of input) 0.726 -> 0.684 ms alone and 0-6% slower in
     * the trunk; 256 -> 1024 @ 14 5.7% slower alone; reducing layers 2-5% slower alone (256 -> 64 @ 56 0.852 -> 0.892 ms),
     * the trunk 0.968x with every layer so.
     */
    static int blockTiles(int cg, int kg, int tiles) {
        boolean whole = kg >= 2 * cg && (long) tiles * PT * 4 * cg <= RUN_BYTES;
        return whole ? Math.max(1, tiles) : Math.max(1, BLOCK_BYTES / (PT * 4 * cg));
    }

    /**
     * A call's sizes per group, found once: with them found per tile (three integer divisions before each tile's loop)
     * 64 -> 256 at 56 x 56 with ReLU ran 0.644 -> 0.615 ms, 128 -> 512 at 28 x 28 0.516 -> 0.506 (batch 1, 2 threads,
     * medians of alternating 20-call slots in one process, AMD EPYC Zen 4 VM); ResNet-50's 1x1 layers inside the trunk
     * 1.5% faster in one comparison in one process, not measurably so across processes.
     */
    private static final class Sizes {
        final int cg, kg, hw, kTiles, tileFloats;
        final boolean streamed;

        Sizes(ConvGeometry g) {
            cg = g.cPerGroup();
            kg = g.kPerGroup();
            hw = g.h * g.w;
            kTiles = (kg + KT - 1) / KT;
            tileFloats = paddedChannels(cg) * KT;
            streamed = streamed(cg, kg);
        }

        /** Where channel tile kt of group grp starts in the packed weights (its weights for input channel c at + c * KT). */
        int tileAt(int grp, int kt) {
            return (grp * kTiles + kt) * tileFloats;
        }
    }

    /**
     * Channel tile kt times the whole vectors of pixel tile pt (sample n, group grp): computed, biased, the epilogue
     * applied, stored at y's index minus {@code shift} (0 for y itself). The pixels past the last whole vector are {@link
     * #leftovers}.
     */
    private static void tile(ConvGeometry g, Sizes sz, float[] x, float[] wp, float[] bias, float[] y, int shift, CpuConvolution.Finish done,
                             VectorEpilogue fused, float[] part8, int n, int grp, int pt, int kt) {
        int cg = sz.cg, kg = sz.kg, hw = sz.hw;
        int p0 = pt * PT, width = Math.min(PT, hw - p0) / V * V;
        if (width == 0) {
            return;
        }
        int wBase = sz.tileAt(grp, kt), xBase = (n * g.c + grp * cg) * hw + p0;
        int k0 = grp * kg + kt * KT, kn = Math.min(KT, kg - kt * KT), row0 = (n * g.k + k0) * hw + p0 - shift;
        if (width == PT) {
            if (sz.streamed) {
                tile3Streams(x, xBase, hw, cg, wp, wBase, part8);
            } else {
                tile3(x, xBase, hw, cg, wp, wBase, part8);
            }
            store3(part8, y, row0, hw, bias, k0, kn, fused, done);
            return;
        }
        for (int at = 0; at < width; at += V) { // a tile of one or two vectors, at the end of the map
            tile1(x, xBase + at, hw, cg, wp, wBase, part8, at);
        }
        for (int kk = 0; kk < kn; kk++) {
            int row = row0 + kk * hw;
            FloatVector b = FloatVector.broadcast(S, bias == null ? 0f : bias[k0 + kk]);
            for (int at = 0; at < width; at += V) {
                FloatVector v = FloatVector.fromArray(S, part8, kk * PT + at).add(b);
                (fused == null ? v : fused.vector(v, row + at)).intoArray(y, row + at);
            }
            if (fused == null) {
                done.region(row, row + width);
            }
        }
    }

    /**
     * A whole tile's kn rows of three vectors from part to y (row kk at row0 + kk * hw): biased, the epilogue applied,
     * stored. Written out, with the epilogue's test once per row: as a loop over the three vectors (which still takes
     * the tiles of one or two) it cost 64 -> 256 channels at 56 x 56, batch 1, 2 threads, 8-16% (medians of 100 ms slots
     * alternating in one process, AMD EPYC Zen 5; with the residual added, one process compiled the loop into a 2.4x
     * slower form), and ResNet-50's trunk 3-4% (34.8 -> 33.3 and 33.0 -> 32.0 ms, alternating trunk runs).
     */
    private static void store3(float[] part, float[] y, int row0, int hw, float[] bias, int k0, int kn, VectorEpilogue fused,
                               CpuConvolution.Finish done) {
        for (int kk = 0, row = row0; kk < kn; kk++, row += hw) {
            FloatVector b = FloatVector.broadcast(S, bias == null ? 0f : bias[k0 + kk]);
            FloatVector v0 = FloatVector.fromArray(S, part, kk * PT).add(b);
            FloatVector v1 = FloatVector.fromArray(S, part, kk * PT + V).add(b);
            FloatVector v2 = FloatVector.fromArray(S, part, kk * PT + 2 * V).add(b);
            if (fused != null) {
                v0 = fused.vector(v0, row);
                v1 = fused.vector(v1, row + V);
                v2 = fused.vector(v2, row + 2 * V);
            }
            v0.intoArray(y, row);
            v1.intoArray(y, row + V);
            v2.intoArray(y, row + 2 * V);
            if (fused == null) {
                done.region(row, row + PT);
            }
        }
    }

    /**
     * Whether a group's weights are read as {@link #STREAMS} streams: at least 64 Ki floats (256 KiB) of them and at least
     * 256 input channels, a multiple of 4. ResNet-50's trunk at batch 1, alternating trunk runs in one process (medians, ms,
     * one stream -> four): 1024 -> 256 @ 14 0.37-0.40 -> 0.34-0.35, 256 -> 1024 @ 14 (residual fused) 0.43-0.46 ->
     * 0.39-0.42, 512 -> 2048 @ 7 0.45-0.53 -> 0.39-0.49, the 1x1 layers' sum 18.54 -> 17.58 and the trunk 34.3 -> 33.0.
     * Where the weights are smaller or the input channels fewer, four streams ran up to 25% slower (64 -> 256 @ 56 0.52 ->
     * 0.66, 128 -> 512 @ 28 0.42-0.48 -> 0.44-0.52, 256 -> 128 @ 56 0.77 -> 0.81), and those stay one stream.
     */
    static boolean streamed(int cg, int kg) {
        return cg % STREAMS == 0 && cg >= 256 && (long) cg * kg >= 1 << 16;
    }

    /** A channel tile's input channels in the packed weights: cg rounded up to whole lane vectors (zero weights past cg). */
    static int paddedChannels(int cg) {
        return (cg + CPL - 1) / CPL * CPL;
    }

    /** Floats after a task's {@code part8} tile for the leftover kernels' results: 4 tiles x 4 pixels, a vector each. */
    private static final int LANES_SCRATCH = 16 * V;

    /** Floats after those for {@link #lanes4x4}'s input: 4 pixels' lane vectors of every input channel, if the map has such a group. */
    private static long pixelFloats(int cg, int hw) {
        return V >= KT && hw % V >= 4 ? 4L * paddedChannels(cg) * KT : 0;
    }

    /** Lanes [h * KT, (h + 1) * KT) of a vector: where the leftover kernels put input channel c0 + h. */
    private static final VectorMask<Float>[] CHANNEL_LANES = channelLanes();

    @SuppressWarnings("unchecked")
    private static VectorMask<Float>[] channelLanes() {
        VectorMask<Float>[] m = new VectorMask[CPL];
        for (int h = 0; h < CPL; h++) {
            m[h] = S.indexInRange(-h * KT, KT);
        }
        return m;
    }

    /**
     * The last {@code hw % V} pixels of the map (fewer than a vector; 1 of ResNet-50's 7x7 maps, 4 of its 14x14 ones), for
     * channel tiles [kt0, kt1), with output channels in the vector lanes: a lane vector holds a tile's 8 weights of
     * {@link #CPL} consecutive input channels (one 64-byte line of the packed weights on AVX-512), so each line is read
     * whole. Groups of 4 pixels x 4 tiles ({@link #lanes4x4}; the 4 pixels' lane vectors are built once per task into
     * the scratch, so its loop has no broadcasts and blends: with them in the loop 256 -> 1024 @ 14 ran 3% slower than
     * with blocks as wide as a vector in the trunk, 1% built once, one process each), then single pixels x 4 tiles
     * ({@link #lanes4x1}); the last group of a share repeats its last tile (computed, not stored). Each task takes an even
     * share of its plane's groups of four channel tiles, whatever its runs ({@link #forward}): when the tasks of the last
     * run of pixel tiles took them all, at two threads one thread ran them while the other waited (where a layer splits
     * over pixels: ResNet-50's 1024 -> 256 @ 14 at batch 1, 2 threads, alternating in one process, AMD EPYC Zen 4: 579 ->
     * 557 us, 523 without these pixels at all; 2048 -> 512 @ 7 572 -> 554 / 502; the trunk 43.5 -> 43.0 ms, its 1x1
     * layers 27.0 -> 26.5, in one process, inside this VM's noise; the same bits). Folding a 7x7 map's one last pixel
     * into the whole tile's loop instead (a vector of two channels' weights and a broadcast input per channel: 4% more
     * FMAs, no second read of the weights) gained 3-7% alone and nothing in the trunk. Each output is CPL chains over its
     * input channels c = h mod CPL, in order, summed at the store ({@link #store}): deterministic, whatever the thread
     * count, but not the tiles' single chain. Below 8 lanes: a scalar chain of {@link Math#fma}.
     */
    private static void leftovers(ConvGeometry g, Sizes sz, float[] x, float[] wp, float[] bias, float[] y, int shift,
                                  CpuConvolution.Finish done, VectorEpilogue fused, float[] part8, int n, int grp, int kt0, int kt1) {
        int cg = sz.cg, hw = sz.hw, px = hw - hw % V, xPlane = (n * g.c + grp * cg) * hw, out = KT * PT;
        if (V < KT) {
            for (; px < hw; px++) {
                for (int kt = kt0; kt < kt1; kt++) {
                    int wBase = sz.tileAt(grp, kt);
                    for (int kk = 0; kk < KT; kk++) {
                        float acc = 0f;
                        for (int c = 0; c < cg; c++) {
                            acc = Math.fma(wp[wBase + c * KT + kk], x[xPlane + c * hw + px], acc);
                        }
                        part8[out + kk] = acc;
                    }
                    store(g, bias, y, shift, done, fused, part8, out, 0, n, grp, kt, px, 1);
                }
            }
            return;
        }
        int tile = sz.tileFloats, at0 = sz.tileAt(grp, kt0), last = kt1 - 1 - kt0;
        for (; px + 4 <= hw; px += 4) {
            for (int c = 0, xi = xPlane + px, at = out + LANES_SCRATCH; c < cg; c += CPL, xi += CPL * hw, at += 4 * V) {
                int valid = Math.min(CPL, cg - c);
                for (int p = 0; p < 4; p++) {
                    channels(x, xi + p, hw, valid).intoArray(part8, at + p * V);
                }
            }
            for (int t = 0; t < kt1 - kt0; t += 4) {
                lanes4x4(part8, out + LANES_SCRATCH, cg, wp, at0 + t * tile, at0 + Math.min(t + 1, last) * tile,
                        at0 + Math.min(t + 2, last) * tile, at0 + Math.min(t + 3, last) * tile, part8, out);
                for (int j = 0; j < 4 && kt0 + t + j < kt1; j++) {
                    store(g, bias, y, shift, done, fused, part8, out + j * 4 * V, V, n, grp, kt0 + t + j, px, 4);
                }
            }
        }
        for (; px < hw; px++) {
            for (int t = 0; t < kt1 - kt0; t += 4) {
                lanes4x1(x, xPlane + px, hw, cg, wp, at0 + t * tile, at0 + Math.min(t + 1, last) * tile,
                        at0 + Math.min(t + 2, last) * tile, at0 + Math.min(t + 3, last) * tile, part8, out);
                for (int j = 0; j < 4 && kt0 + t + j < kt1; j++) {
                    store(g, bias, y, shift, done, fused, part8, out + j * V, 0, n, grp, kt0 + t + j, px, 1);
                }
            }
        }
    }

    /**
     * Pixels px .. px + count of channel tile kt, channel kk from the sum over h < CPL of part[at + p * pStride + h * KT +
     * kk]: biased, the epilogue applied (by {@code fused} to each value before its store, as the tiles do, or else over
     * the stored run), stored.
     */
    private static void store(ConvGeometry g, float[] bias, float[] y, int shift, CpuConvolution.Finish done, VectorEpilogue fused,
                              float[] part, int at, int pStride, int n, int grp, int kt, int px, int count) {
        int kg = g.kPerGroup(), hw = g.h * g.w, k0 = grp * kg + kt * KT;
        for (int kk = 0; kk < Math.min(KT, kg - kt * KT); kk++) {
            int row = (n * g.k + k0 + kk) * hw + px - shift;
            float bk = bias == null ? 0f : bias[k0 + kk];
            for (int p = 0; p < count; p++) {
                float sum = part[at + p * pStride + kk];
                for (int h = 1; h < CPL; h++) {
                    sum += part[at + p * pStride + h * KT + kk];
                }
                y[row + p] = fused == null ? sum + bk : fused.value(sum + bk, row + p);
            }
            if (fused == null) {
                done.region(row, row + count);
            }
        }
    }

    /**
     * The lane vector of input channels c .. c + CPL - 1 of one pixel (x[xi + h * hw]), each repeated over its KT lanes;
     * channels from {@code valid} on are zero (the group's last channels).
     */
    private static FloatVector channels(float[] x, int xi, int hw, int valid) {
        FloatVector v = FloatVector.broadcast(S, x[xi]);
        for (int h = 1; h < CPL; h++) {
            v = v.blend(h < valid ? x[xi + h * hw] : 0f, CHANNEL_LANES[h]);
        }
        return v;
    }

    /**
     * Four channel tiles (packed weights at w0..w3) x 4 pixels (their lane vectors of {@link #channels} at xd[x0 + (j*4 +
     * p)*V] for the j-th CPL input channels): part[at + (tile*4 + p)*V + h*KT + kk] = sum over the input channels c = h
     * mod CPL of w[kk][c] * x[c][p].
     */
    static void lanes4x4(float[] xd, int x0, int cg, float[] wp, int w0, int w1, int w2, int w3, float[] part, int at) {
        FloatVector z = FloatVector.zero(S);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        FloatVector c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
        for (int c = 0, xi = x0, wi = 0; c < cg; c += CPL, xi += 4 * V, wi += V) {
            FloatVector p0 = FloatVector.fromArray(S, xd, xi), p1 = FloatVector.fromArray(S, xd, xi + V);
            FloatVector p2 = FloatVector.fromArray(S, xd, xi + 2 * V), p3 = FloatVector.fromArray(S, xd, xi + 3 * V);
            FloatVector u = FloatVector.fromArray(S, wp, w0 + wi);
            a0 = u.fma(p0, a0);
            a1 = u.fma(p1, a1);
            a2 = u.fma(p2, a2);
            a3 = u.fma(p3, a3);
            u = FloatVector.fromArray(S, wp, w1 + wi);
            b0 = u.fma(p0, b0);
            b1 = u.fma(p1, b1);
            b2 = u.fma(p2, b2);
            b3 = u.fma(p3, b3);
            u = FloatVector.fromArray(S, wp, w2 + wi);
            c0 = u.fma(p0, c0);
            c1 = u.fma(p1, c1);
            c2 = u.fma(p2, c2);
            c3 = u.fma(p3, c3);
            u = FloatVector.fromArray(S, wp, w3 + wi);
            d0 = u.fma(p0, d0);
            d1 = u.fma(p1, d1);
            d2 = u.fma(p2, d2);
            d3 = u.fma(p3, d3);
        }
        a0.intoArray(part, at);
        a1.intoArray(part, at + V);
        a2.intoArray(part, at + 2 * V);
        a3.intoArray(part, at + 3 * V);
        b0.intoArray(part, at + 4 * V);
        b1.intoArray(part, at + 5 * V);
        b2.intoArray(part, at + 6 * V);
        b3.intoArray(part, at + 7 * V);
        c0.intoArray(part, at + 8 * V);
        c1.intoArray(part, at + 9 * V);
        c2.intoArray(part, at + 10 * V);
        c3.intoArray(part, at + 11 * V);
        d0.intoArray(part, at + 12 * V);
        d1.intoArray(part, at + 13 * V);
        d2.intoArray(part, at + 14 * V);
        d3.intoArray(part, at + 15 * V);
    }

    /** Four channel tiles (packed weights at w0..w3) x 1 pixel (x[x0 + c*hw]): part[at + tile*V + h*KT + kk], as {@link #lanes4x4}. */
    static void lanes4x1(float[] x, int x0, int hw, int cg, float[] wp, int w0, int w1, int w2, int w3, float[] part, int at) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0, xi = x0, wi = 0; c < cg; c += CPL, xi += CPL * hw, wi += V) {
            FloatVector p = channels(x, xi, hw, Math.min(CPL, cg - c));
            a0 = FloatVector.fromArray(S, wp, w0 + wi).fma(p, a0);
            a1 = FloatVector.fromArray(S, wp, w1 + wi).fma(p, a1);
            a2 = FloatVector.fromArray(S, wp, w2 + wi).fma(p, a2);
            a3 = FloatVector.fromArray(S, wp, w3 + wi).fma(p, a3);
        }
        a0.intoArray(part, at);
        a1.intoArray(part, at + V);
        a2.intoArray(part, at + 2 * V);
        a3.intoArray(part, at + 3 * V);
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

    /** The 8 x 3V tile: part[kk*PT + i] = sum over c of wp[wBase + c*KT + kk] * x[xBase + c*hw + i]. One flat loop over c. */
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

    /**
     * {@link #tile3} for layers whose weights come from memory ({@link #streamed}): the input channels in {@link #STREAMS}
     * quarters read side by side, each iteration one channel of each quarter (channels c, c + q, c + 2q, c + 3q), so the
     * tile's weights (and input rows) are read as four streams. Each output is still one chain of FMAs, in that order.
     */
    static void tile3Streams(float[] x, int xBase, int hw, int cg, float[] wp, int wBase, float[] part) {
        FloatVector z = FloatVector.zero(S), w;
        FloatVector a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z,
                a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z,
                a40 = z, a41 = z, a42 = z, a50 = z, a51 = z, a52 = z,
                a60 = z, a61 = z, a62 = z, a70 = z, a71 = z, a72 = z;
        int q = cg / STREAMS, xq = q * hw, wq = q * KT;
        FloatVector x0, x1, x2;
        for (int c = 0, xa = xBase, wa = wBase; c < q; c++, xa += hw, wa += KT) {
            int xb = xa + xq, wb = wa + wq, xc = xb + xq, wc = wb + wq, xd = xc + xq, wd = wc + wq;
            x0 = FloatVector.fromArray(S, x, xa);
            x1 = FloatVector.fromArray(S, x, xa + V);
            x2 = FloatVector.fromArray(S, x, xa + 2 * V);
            w = FloatVector.broadcast(S, wp[wa + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wa + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wa + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wa + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wa + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wa + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wa + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wa + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
            x0 = FloatVector.fromArray(S, x, xb);
            x1 = FloatVector.fromArray(S, x, xb + V);
            x2 = FloatVector.fromArray(S, x, xb + 2 * V);
            w = FloatVector.broadcast(S, wp[wb + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wb + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wb + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wb + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wb + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wb + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wb + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wb + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
            x0 = FloatVector.fromArray(S, x, xc);
            x1 = FloatVector.fromArray(S, x, xc + V);
            x2 = FloatVector.fromArray(S, x, xc + 2 * V);
            w = FloatVector.broadcast(S, wp[wc + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wc + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wc + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wc + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wc + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wc + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wc + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wc + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
            x0 = FloatVector.fromArray(S, x, xd);
            x1 = FloatVector.fromArray(S, x, xd + V);
            x2 = FloatVector.fromArray(S, x, xd + 2 * V);
            w = FloatVector.broadcast(S, wp[wd + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wd + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wd + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wd + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wd + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wd + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wd + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wd + 7]);
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
