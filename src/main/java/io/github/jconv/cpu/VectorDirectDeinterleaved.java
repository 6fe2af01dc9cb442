package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolution with output pixels in the vector lanes for layers of stride 2 along W on at most
 * {@link #MAX_CHANNELS} input channels (a network's stem: ResNet's 7x7 stride-2 layer on RGB), loaded only when the
 * Vector API module is present ({@link DirectConv} calls it). {@link VectorDirectStrided}, which took these layers
 * before, holds output channels in its lanes, so its results reach NCHW's rows through a scalar transposing copy (a
 * quarter of the stem's time); here every vector is V consecutive outputs of one row, stored as it is.
 *
 * <p>An output at column ow reads, for tap column s, padded input column 2ow + s: among the input's columns of
 * parity s % 2 (deinterleaved), column ow + s / 2. So each task first copies the padded rows its run of output rows reads,
 * of each channel of its sample, into two zero-padded planes of its own, their even and their odd padded columns (a
 * scalar loop: see below; a copy of all the rows shared by the tasks took a phase of its own, and the stem was 5-10%
 * slower at batch 1 and 8 on an AMD EPYC Zen 5 with two threads), and a vector of outputs then reads V consecutive floats
 * of one of them per tap, as a stride-1 layer would. The register tile is {@link #KT} output channels x {@link #VT}
 * vectors of outputs (24 accumulators): per tap (input channel, row, column; one flat loop, two taps per iteration, an
 * odd count made even by a tap of weight 0 on a plane of zeros) three vector loads and eight broadcast weights (packed
 * once per plan, tap after tap) feed 24 FMAs. A row of q outputs is ceil(q / V) vectors, the last one placed to end
 * at the row's end (its first lanes computed twice when V does not divide q, stored once); a task takes one sample's run of
 * output rows, one channel tile after the other over the whole run: each row's whole tiles of three consecutive vectors
 * ({@link #tileRow}, its loads at constant offsets from one base: 18-20% faster than {@link #tile}'s three bases on
 * ResNet-50's stem), then the rows' last vectors, three at a time across rows. A channel tile over the run writes 8
 * output planes in runs of the run's rows, and its weights stay in L1; every channel tile for each three vectors in
 * turn (as before) wrote 64 planes a few vectors each, and the stores cost 13-17% of the stem (ResNet-50's stem at batch
 * 1 alone, AMD EPYC Zen 4, alternating in one process: 1 thread 3.02 -> 2.83 ms, 2 threads 1.74 -> 1.59 ms, 1.37
 * without the stores; old and new class alternating: 2 threads 1.386 -> 1.337 ms, 1 thread 2.915 -> 2.710; inside the
 * trunk within noise, 1.73 -> 1.70 in one process, +-2.5% in two more). The bias and a
 * ReLU/residual epilogue are applied to each vector on its way to y ({@link VectorEpilogue#vector}); others per stored
 * run.
 *
 * <p>ResNet-50's stem (AMD EPYC Zen 5, 2 threads, medians of runs alternating this kernel and the strided one in one
 * process): batch 1 alone 1.03 -> 0.86 ms, inside the trunk 1.30 -> 1.01 ms; batch 8 11.9 -> 9.8 ms. Tried and left
 * out: the even floats taken with the Vector API (a vector read as longs, narrowed to half-width ints: 2-3x faster than
 * this loop alone), because once that narrowing had run in a process JDK 17's C2 compiled the other kernels' vector
 * code into its slow fallback (ResNet-50's 3x3 layers 0.7-1.0 -> 5 ms, the whole trunk 31 -> 105 ms); three taps per loop
 * iteration (the stem 0.86 -> 1.18 ms). {@code VectorShapeGuardTest} keeps shape changes out of the sources.
 */
final class VectorDirectDeinterleaved {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output channels per register tile. */
    static final int KT = 8;
    /** Vectors of outputs per register tile. */
    static final int VT = 3;
    /** Input channels at most (more: {@link VectorDirectStrided}, whose weight vectors serve wide layers better). */
    static final int MAX_CHANNELS = 4;

    private VectorDirectDeinterleaved() {
    }

    /**
     * Whether this kernel takes g: a forward, ungrouped layer of stride 2 and dilation 1 along W, at most
     * {@link #MAX_CHANNELS} input channels, at least {@link #KT} output channels, and rows of at least a vector of outputs.
     */
    static boolean applies(ConvGeometry g) {
        return !g.transposed() && g.groups == 1 && g.strideW == 2 && g.dilationW == 1 && g.c <= MAX_CHANNELS && g.k >= KT
                && g.q >= V && workspaceFloats(g) <= Integer.MAX_VALUE - 16;
    }

    /** Padded input rows that a run of {@code outputRows} output rows reads. */
    private static int rows(ConvGeometry g, int outputRows) {
        return (outputRows - 1) * g.strideH + (g.r - 1) * g.dilationH + 1;
    }

    /** Floats per row of a deinterleaved plane: the columns ow + s / 2 the outputs read. */
    private static int half(ConvGeometry g) {
        return g.q + (g.s - 1) / 2;
    }

    /**
     * Planes of a sample's deinterleaved input: per channel its even and its odd plane, then, where the tap count is odd,
     * a plane of zeros, which the extra tap reads (with weight 0: the tile takes taps in pairs).
     */
    private static int samplePlanes(ConvGeometry g) {
        return g.c * 2 + g.c * g.r * g.s % 2;
    }

    /** Floats of workspace a thread uses at most: the deinterleaved input of one sample's output rows (a task's, at most). */
    static long workspaceFloats(ConvGeometry g) {
        return (long) samplePlanes(g) * rows(g, g.p) * half(g);
    }

    /** y = conv(x, w) + bias; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        // the real taps, then one of weight 0 on the zero plane when their count is odd
        int real = g.c * g.r * g.s, taps = real + real % 2, kTiles = (g.k + KT - 1) / KT, wh = half(g);
        int perRow = (g.q + V - 1) / V, runs = Math.min(g.p, Math.max(1, (8 * par.threads() + g.n - 1) / g.n));
        // each task deinterleaves the padded rows its run of output rows reads into a buffer of its own: planes of `rows`
        // rows, enough for the longest run (ceil(P / runs) output rows)
        int rows = rows(g, (g.p + runs - 1) / runs), plane = rows * wh, planes = samplePlanes(g);
        float[] w = weights.raw;
        float[] wp = weights.packed((long) kTiles * taps * KT, p -> par.forEach(kTiles, kt -> {
            for (int t = 0; t < taps; t++) {
                for (int kk = 0; kk < KT; kk++) {
                    int k = kt * KT + kk;
                    p[(kt * taps + t) * KT + kk] = k < g.k && t < real ? w[k * real + t] : 0f;
                }
            }
        }));
        int[] tapOff = new int[taps];
        tapOff[taps - 1] = g.c * 2 * plane; // the zero plane (when there is one; else a real tap takes this place below)
        for (int c = 0; c < g.c; c++) {
            for (int r = 0; r < g.r; r++) {
                for (int s = 0; s < g.s; s++) {
                    tapOff[(c * g.r + r) * g.s + s] = (c * 2 + s % 2) * plane + r * g.dilationH * wh + s / 2;
                }
            }
        }
        VectorEpilogue fused = done instanceof VectorEpilogue e && e.fuses() ? e : null;
        par.forEach(g.n * runs, task -> {
            int n = task / runs, run = task % runs, p0 = g.p * run / runs, p1 = g.p * (run + 1) / runs;
            float[] part = Workspace.get(Workspace.SCRATCH, (long) KT * VT * V + V);
            float[] xd = Workspace.get(Workspace.COL, (long) planes * plane);
            for (int q = 0; q < planes; q++) { // padded rows from p0 * strideH on
                if (q == g.c * 2) {
                    java.util.Arrays.fill(xd, q * plane, (q + 1) * plane, 0f);
                } else {
                    deinterleave(g, x, (n * g.c + q / 2) * g.h * g.w, q % 2, p0 * g.strideH, xd, q * plane, wh, rows);
                }
            }
            int[] xAt = new int[VT], yAt = new int[VT], fresh = new int[VT];
            // the run's vectors in order: each row's first `full` (whole tiles of one row), then the rows' last ones
            int count = (p1 - p0) * perRow, full = perRow / VT * VT, inRows = (p1 - p0) * full;
            for (int kt = 0; kt < kTiles; kt++) { // a channel tile over the whole run (see the class comment)
                for (int f = 0; f < count; f += VT) {
                    for (int i = 0; i < VT; i++) { // the tile's vectors: (row, first output); past the run's end, its last again
                        int v = Math.min(f + i, count - 1);
                        int op = p0 + (v < inRows ? v / full : (v - inRows) / (perRow - full));
                        int j = v < inRows ? v % full : full + (v - inRows) % (perRow - full), ow = Math.min(j * V, g.q - V);
                        xAt[i] = (op - p0) * g.strideH * wh + ow;
                        yAt[i] = op * g.q + ow;
                        fresh[i] = f + i < count ? j * V - ow : V; // lanes before it were stored with the row's previous vector
                    }
                    if (xAt[1] == xAt[0] + V && xAt[2] == xAt[0] + 2 * V) {
                        tileRow(xd, xAt[0], tapOff, wp, kt * taps * KT, part);
                    } else {
                        tile(xd, xAt[0], xAt[1], xAt[2], tapOff, wp, kt * taps * KT, part);
                    }
                    store(g, bias, y, done, fused, part, n, kt, yAt, fresh);
                }
            }
        });
    }

    /**
     * Parity e's columns of one (sample, channel) of x (at src) into the zero-padded plane at dst: rows of wh floats,
     * row i holding padded input row top + i's columns 2j + e.
     */
    private static void deinterleave(ConvGeometry g, float[] x, int src, int e, int top, float[] xd, int dst, int wh, int rows) {
        // the columns j whose padded column 2j + e is an input column: [j0, j1)
        int j0 = Math.max(0, Math.floorDiv(g.padLeft - e + 1, 2)), j1 = Math.max(j0, Math.min(wh, Math.floorDiv(g.w - 1 + g.padLeft - e, 2) + 1));
        for (int i = 0; i < rows; i++, dst += wh) {
            int ih = top + i - g.padTop;
            if (ih < 0 || ih >= g.h || j0 == j1) {
                java.util.Arrays.fill(xd, dst, dst + wh, 0f);
                continue;
            }
            java.util.Arrays.fill(xd, dst, dst + j0, 0f);
            for (int j = j0, at = src + ih * g.w + 2 * j0 + e - g.padLeft; j < j1; j++, at += 2) {
                xd[dst + j] = x[at];
            }
            java.util.Arrays.fill(xd, dst + j1, dst + wh, 0f);
        }
    }

    /**
     * Channel tile kt's results for the tile's vectors, biased, the epilogue applied, into y: a vector whole, or from lane
     * fresh[i] on where the row's previous vector stored its first lanes (none: fresh[i] == V).
     */
    private static void store(ConvGeometry g, float[] bias, float[] y, CpuConvolution.Finish done, VectorEpilogue fused, float[] part,
                              int n, int kt, int[] yAt, int[] fresh) {
        int pq = g.p * g.q, tmp = KT * VT * V;
        for (int kk = 0; kk < Math.min(KT, g.k - kt * KT); kk++) {
            int k = kt * KT + kk, base = (n * g.k + k) * pq;
            FloatVector b = FloatVector.broadcast(S, bias == null ? 0f : bias[k]);
            for (int i = 0; i < VT; i++) {
                int from = fresh[i];
                if (from == V) {
                    continue;
                }
                int at = base + yAt[i];
                FloatVector v = FloatVector.fromArray(S, part, (kk * VT + i) * V).add(b);
                if (fused != null) {
                    v = fused.vector(v, at);
                }
                if (from == 0) {
                    v.intoArray(y, at);
                } else {
                    v.intoArray(part, tmp);
                    System.arraycopy(part, tmp + from, y, at + from, V - from);
                }
                if (fused == null) {
                    done.region(at + from, at + V);
                }
            }
        }
    }

    /**
     * The KT x VT-vector tile: part[(kk*VT + i)*V + lane] = sum over taps t of wp[wBase + t*KT + kk] * xd[b_i + tapOff[t] + lane],
     * in tap order. Two taps per iteration (one a time ran at 161 GFLOP/s on one Zen 5 core, two at 210: the tile alone),
     * so an even count of them.
     */
    static void tile(float[] xd, int b0, int b1, int b2, int[] tapOff, float[] wp, int wBase, float[] part) {
        FloatVector z = FloatVector.zero(S), w, x0, x1, x2;
        FloatVector a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z,
                a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z,
                a40 = z, a41 = z, a42 = z, a50 = z, a51 = z, a52 = z,
                a60 = z, a61 = z, a62 = z, a70 = z, a71 = z, a72 = z;
        int o;
        for (int t = 0, wi = wBase; t < tapOff.length; t += 2, wi += 2 * KT) {
            o = tapOff[t];
            x0 = FloatVector.fromArray(S, xd, b0 + o);
            x1 = FloatVector.fromArray(S, xd, b1 + o);
            x2 = FloatVector.fromArray(S, xd, b2 + o);
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
            o = tapOff[t + 1];
            x0 = FloatVector.fromArray(S, xd, b0 + o);
            x1 = FloatVector.fromArray(S, xd, b1 + o);
            x2 = FloatVector.fromArray(S, xd, b2 + o);
            w = FloatVector.broadcast(S, wp[wi + KT + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wi + KT + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wi + KT + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wi + KT + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wi + KT + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wi + KT + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wi + KT + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wi + KT + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
        }
        a00.intoArray(part, 0 * V);
        a01.intoArray(part, 1 * V);
        a02.intoArray(part, 2 * V);
        a10.intoArray(part, 3 * V);
        a11.intoArray(part, 4 * V);
        a12.intoArray(part, 5 * V);
        a20.intoArray(part, 6 * V);
        a21.intoArray(part, 7 * V);
        a22.intoArray(part, 8 * V);
        a30.intoArray(part, 9 * V);
        a31.intoArray(part, 10 * V);
        a32.intoArray(part, 11 * V);
        a40.intoArray(part, 12 * V);
        a41.intoArray(part, 13 * V);
        a42.intoArray(part, 14 * V);
        a50.intoArray(part, 15 * V);
        a51.intoArray(part, 16 * V);
        a52.intoArray(part, 17 * V);
        a60.intoArray(part, 18 * V);
        a61.intoArray(part, 19 * V);
        a62.intoArray(part, 20 * V);
        a70.intoArray(part, 21 * V);
        a71.intoArray(part, 22 * V);
        a72.intoArray(part, 23 * V);
    }

    /**
     * {@link #tile} for three consecutive vectors of one row (at b0, b0 + V, b0 + 2V): their loads at constant offsets
     * from one base. With three bases the tile ran at 148-152 GFLOP/s on one Zen 5 core (the same loop with one base and
     * offsets V and 2V: 206-210; two bases, or one and a delta passed in: 126-139), alone with its data in L1. A copy of
     * tile's loop rather than one method for both: the offsets must be constants where C2 compiles the loop, and a method
     * this large is not inlined into its caller, so a call with b0 + V and b0 + 2V would reach it as three bases.
     */
    static void tileRow(float[] xd, int b0, int[] tapOff, float[] wp, int wBase, float[] part) {
        FloatVector z = FloatVector.zero(S), w, x0, x1, x2;
        FloatVector a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z,
                a20 = z, a21 = z, a22 = z, a30 = z, a31 = z, a32 = z,
                a40 = z, a41 = z, a42 = z, a50 = z, a51 = z, a52 = z,
                a60 = z, a61 = z, a62 = z, a70 = z, a71 = z, a72 = z;
        int o;
        for (int t = 0, wi = wBase; t < tapOff.length; t += 2, wi += 2 * KT) {
            o = tapOff[t];
            x0 = FloatVector.fromArray(S, xd, b0 + o);
            x1 = FloatVector.fromArray(S, xd, b0 + o + V);
            x2 = FloatVector.fromArray(S, xd, b0 + o + 2 * V);
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
            o = tapOff[t + 1];
            x0 = FloatVector.fromArray(S, xd, b0 + o);
            x1 = FloatVector.fromArray(S, xd, b0 + o + V);
            x2 = FloatVector.fromArray(S, xd, b0 + o + 2 * V);
            w = FloatVector.broadcast(S, wp[wi + KT + 0]);
            a00 = w.fma(x0, a00);
            a01 = w.fma(x1, a01);
            a02 = w.fma(x2, a02);
            w = FloatVector.broadcast(S, wp[wi + KT + 1]);
            a10 = w.fma(x0, a10);
            a11 = w.fma(x1, a11);
            a12 = w.fma(x2, a12);
            w = FloatVector.broadcast(S, wp[wi + KT + 2]);
            a20 = w.fma(x0, a20);
            a21 = w.fma(x1, a21);
            a22 = w.fma(x2, a22);
            w = FloatVector.broadcast(S, wp[wi + KT + 3]);
            a30 = w.fma(x0, a30);
            a31 = w.fma(x1, a31);
            a32 = w.fma(x2, a32);
            w = FloatVector.broadcast(S, wp[wi + KT + 4]);
            a40 = w.fma(x0, a40);
            a41 = w.fma(x1, a41);
            a42 = w.fma(x2, a42);
            w = FloatVector.broadcast(S, wp[wi + KT + 5]);
            a50 = w.fma(x0, a50);
            a51 = w.fma(x1, a51);
            a52 = w.fma(x2, a52);
            w = FloatVector.broadcast(S, wp[wi + KT + 6]);
            a60 = w.fma(x0, a60);
            a61 = w.fma(x1, a61);
            a62 = w.fma(x2, a62);
            w = FloatVector.broadcast(S, wp[wi + KT + 7]);
            a70 = w.fma(x0, a70);
            a71 = w.fma(x1, a71);
            a72 = w.fma(x2, a72);
        }
        a00.intoArray(part, 0 * V);
        a01.intoArray(part, 1 * V);
        a02.intoArray(part, 2 * V);
        a10.intoArray(part, 3 * V);
        a11.intoArray(part, 4 * V);
        a12.intoArray(part, 5 * V);
        a20.intoArray(part, 6 * V);
        a21.intoArray(part, 7 * V);
        a22.intoArray(part, 8 * V);
        a30.intoArray(part, 9 * V);
        a31.intoArray(part, 10 * V);
        a32.intoArray(part, 11 * V);
        a40.intoArray(part, 12 * V);
        a41.intoArray(part, 13 * V);
        a42.intoArray(part, 14 * V);
        a50.intoArray(part, 15 * V);
        a51.intoArray(part, 16 * V);
        a52.intoArray(part, 17 * V);
        a60.intoArray(part, 18 * V);
        a61.intoArray(part, 19 * V);
        a62.intoArray(part, 20 * V);
        a70.intoArray(part, 21 * V);
        a71.intoArray(part, 22 * V);
        a72.intoArray(part, 23 * V);
    }
}
