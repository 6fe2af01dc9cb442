package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Depthwise convolution (one input channel per group; MobileNet's 3x3 layers at stride 1 and 2) on the Vector API,
 * loaded only when the module is present ({@link DepthwiseConv} calls it). A task takes one output plane. It copies its
 * input plane into zero-padded rows Ws = W + max(pl, pr) apart ({@link VectorDirect#padPlane}: one run of zeros pads
 * both sides of a row), and computes, for every flat position f of that plane from 0 to the last output's,
 * {@code z[f] = bias + sum over taps of w[tap] * xp[f + tap's offset]}, four vectors per loop step; output (p, q) is
 * then z[p * strideH * Ws + q * strideW]. At stride 1 the flat positions past a row's Q outputs (the padding, 1 of 15
 * at 14 x 14) are computed and dropped; at stride 2 three of every four, and FMAs are what this kernel has to spare:
 * the scalar per-tap loop it replaced ran stride-2 layers at 2-5 GFLOP/s, and a gather of each row's even and odd
 * inputs would cost a scalar pass over every input (4x the outputs). Stride-2 3x3 layers with wide enough rows run in
 * bands of output rows instead ({@link #banded}), which skip the rows no output starts at and load each input vector
 * once for all the output rows of a band that read it.
 *
 * <p>The loops, as JDK 17's C2 compiles them: counted, with the taps' offsets fixed for the loop, so the loads' bounds
 * are checked once before it (a base per (row, vector) pair left a check on every load: 2x slower); each vector's
 * accumulation split into one chain per kernel row (a chain of 9 FMAs per vector waited on their latency), each chain in
 * tap order, the rows summed at the end; every vector started inside the loop (a loop whose vectors start from one
 * passed in, the bias, kept them boxed: 5x slower). The loop is then bound by its loads (one per FMA: with a third of
 * them the same loop ran 2.8x faster). The plane's outputs get the epilogue in one pass after their copy ({@code
 * done}); applied to each row's vectors on their way to y instead, MobileNetV2's trunk ran 0.94x as fast (each row's
 * last Q % V outputs through the scalar epilogue).
 */
final class VectorDepthwise {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Flat positions per loop step: four vectors. */
    private static final int STEP = 4 * V;
    /** Output rows per step of {@link #band2}. */
    private static final int BAND = 4;

    private VectorDepthwise() {
    }

    /** Whether this kernel takes g: a forward depthwise layer, stride at most 2 along W, its workspace within a Java array. */
    static boolean applies(ConvGeometry g) {
        return !g.transposed() && g.isDepthwise() && g.strideW <= 2 && workspaceFloats(g) <= Integer.MAX_VALUE - 16;
    }

    /** Floats between padded rows: W + max(pl, pr). */
    private static int rowStride(ConvGeometry g) {
        return g.w + Math.max(g.padLeft, g.padRight);
    }

    /** Flat positions computed: up to the last output's, rounded up to whole loop steps. */
    private static long flat(ConvGeometry g) {
        long last = (long) (g.p - 1) * g.strideH * rowStride(g) + (long) (g.q - 1) * g.strideW;
        return (last + STEP) / STEP * STEP;
    }

    /** The padded columns a row's outputs start at, (Q - 1) * strideW + 1, rounded up to the bands' steps of two vectors. */
    private static int bandColumns(ConvGeometry g) {
        return ((g.q - 1) * g.strideW + 1 + 2 * V - 1) / (2 * V) * (2 * V);
    }

    /**
     * Whether g runs in bands ({@link #band2}): 3 x 3, dilation 1, stride 2 along H, rows whose band columns are at most
     * twice the row stride. The flat loop computes every input row's positions there, twice the rows the outputs read,
     * and loads each input vector once per tap that reads it; MobileNetV2's stride-2 depthwise layers ran 0.42 -> 0.35
     * ms (96 @ 112), 0.164 -> 0.145 (144 @ 56) in bands, 28 x 28 and 14 x 14 within 4% (2 threads, AMD EPYC Zen 5,
     * medians of alternating slots in one process). A stride-1 form of the bands (4 output rows from 6 input rows) ran
     * 5-9% slower than the flat loop at 56 x 56 and 112 x 112.
     */
    static boolean banded(ConvGeometry g) {
        return g.r == 3 && g.s == 3 && g.dilationH == 1 && g.dilationW == 1 && g.strideH == 2 && bandColumns(g) <= 2 * rowStride(g);
    }

    /** Output rows the bands compute: P rounded up to whole bands. */
    private static long bandRows(ConvGeometry g) {
        return (g.p + BAND - 1) / BAND * BAND;
    }

    /** Floats of the results a task keeps: per output row its band columns, or the flat positions. */
    private static long results(ConvGeometry g) {
        return banded(g) ? bandRows(g) * bandColumns(g) : flat(g);
    }

    /** Floats of the padded plane: pl, then Hp rows of Ws ({@link VectorDirect#padPlane}). */
    private static long plane(ConvGeometry g) {
        return g.padLeft + (long) g.paddedH() * rowStride(g);
    }

    /** Floats of padded input a task reads: the plane, or as far as the last loop step's loads reach (zeros). */
    private static long paddedFloats(ConvGeometry g) {
        long ws = rowStride(g), reach = banded(g)
                ? (bandRows(g) - BAND) * g.strideH * ws + (3L * g.strideH + 2) * ws + bandColumns(g) + 2
                : flat(g) + (long) (g.r - 1) * g.dilationH * ws + (long) (g.s - 1) * g.dilationW;
        return Math.max(plane(g), reach);
    }

    /** Floats of workspace a thread uses: the padded plane and its results. */
    static long workspaceFloats(ConvGeometry g) {
        return paddedFloats(g) + results(g);
    }

    /** y = conv(x, w) + bias, then the epilogue per plane; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        float[] w = weights.raw;
        int ws = rowStride(g), hw = g.h * g.w, pq = g.p * g.q, taps = g.r * g.s, mult = g.kPerGroup();
        int plane = (int) plane(g), padded = (int) paddedFloats(g), flat = (int) flat(g), rowStep = g.strideH * ws;
        boolean banded = banded(g);
        int cols = bandColumns(g), pitch = banded ? cols : rowStep, results = (int) results(g);
        int[] tapOff = new int[taps];
        for (int r = 0; r < g.r; r++) {
            for (int s = 0; s < g.s; s++) {
                tapOff[r * g.s + s] = r * g.dilationH * ws + s * g.dilationW;
            }
        }
        par.forEach(g.n * g.k, task -> {
            int n = task / g.k, k = task % g.k;
            float[] xp = Workspace.get(Workspace.COL, padded);
            float[] z = Workspace.get(Workspace.SCRATCH, results);
            VectorDirect.padPlane(g, x, (n * g.c + k / mult) * hw, xp, 0, ws, plane);
            java.util.Arrays.fill(xp, plane, padded, 0f);
            float b = bias == null ? 0f : bias[k];
            if (banded) {
                for (int p = 0; p < g.p; p += BAND) {
                    band2(xp, p * rowStep, ws, cols, w, k * taps, b, z, p * pitch, pitch);
                }
            } else if (taps == 9 && g.r == 3) {
                flat3x3(xp, flat, g.dilationH * ws, g.dilationW, w, k * taps, b, z);
            } else {
                flatAny(xp, flat, tapOff, w, k * taps, b, z);
            }
            int out = task * pq;
            for (int p = 0; p < g.p; p++, out += g.q) {
                int row = p * pitch;
                if (g.strideW == 1) {
                    System.arraycopy(z, row, y, out, g.q);
                } else {
                    for (int q = 0; q < g.q; q++) {
                        y[out + q] = z[row + q * g.strideW];
                    }
                }
            }
            done.region(task * pq, (task + 1) * pq);
        });
    }

    /**
     * z[f] = bias + sum over the 3 x 3 taps (r, s) of w[wk + 3r + s] * xp[f + r*dr + s*dc] for f < flat (a multiple of
     * {@link #STEP}): the taps written out, their weights broadcast once.
     */
    private static void flat3x3(float[] xp, int flat, int dr, int dc, float[] w, int wk, float bias, float[] z) {
        FloatVector w0 = FloatVector.broadcast(S, w[wk]), w1 = FloatVector.broadcast(S, w[wk + 1]), w2 = FloatVector.broadcast(S, w[wk + 2]);
        FloatVector w3 = FloatVector.broadcast(S, w[wk + 3]), w4 = FloatVector.broadcast(S, w[wk + 4]), w5 = FloatVector.broadcast(S, w[wk + 5]);
        FloatVector w6 = FloatVector.broadcast(S, w[wk + 6]), w7 = FloatVector.broadcast(S, w[wk + 7]), w8 = FloatVector.broadcast(S, w[wk + 8]);
        int o1 = dc, o2 = 2 * dc, o3 = dr, o4 = dr + dc, o5 = dr + 2 * dc, o6 = 2 * dr, o7 = 2 * dr + dc, o8 = 2 * dr + 2 * dc;
        for (int f = 0; f < flat; f += STEP) {
            // a chain per kernel row (a: the bias and row 0, b: row 1, c: row 2), summed at the end (the class comment)
            FloatVector a0 = FloatVector.broadcast(S, bias), a1 = a0, a2 = a0, a3 = a0;
            a0 = FloatVector.fromArray(S, xp, f).fma(w0, a0);
            a1 = FloatVector.fromArray(S, xp, f + V).fma(w0, a1);
            a2 = FloatVector.fromArray(S, xp, f + 2 * V).fma(w0, a2);
            a3 = FloatVector.fromArray(S, xp, f + 3 * V).fma(w0, a3);
            a0 = FloatVector.fromArray(S, xp, f + o1).fma(w1, a0);
            a1 = FloatVector.fromArray(S, xp, f + o1 + V).fma(w1, a1);
            a2 = FloatVector.fromArray(S, xp, f + o1 + 2 * V).fma(w1, a2);
            a3 = FloatVector.fromArray(S, xp, f + o1 + 3 * V).fma(w1, a3);
            a0 = FloatVector.fromArray(S, xp, f + o2).fma(w2, a0);
            a1 = FloatVector.fromArray(S, xp, f + o2 + V).fma(w2, a1);
            a2 = FloatVector.fromArray(S, xp, f + o2 + 2 * V).fma(w2, a2);
            a3 = FloatVector.fromArray(S, xp, f + o2 + 3 * V).fma(w2, a3);
            FloatVector b0 = FloatVector.fromArray(S, xp, f + o3).mul(w3);
            FloatVector b1 = FloatVector.fromArray(S, xp, f + o3 + V).mul(w3);
            FloatVector b2 = FloatVector.fromArray(S, xp, f + o3 + 2 * V).mul(w3);
            FloatVector b3 = FloatVector.fromArray(S, xp, f + o3 + 3 * V).mul(w3);
            b0 = FloatVector.fromArray(S, xp, f + o4).fma(w4, b0);
            b1 = FloatVector.fromArray(S, xp, f + o4 + V).fma(w4, b1);
            b2 = FloatVector.fromArray(S, xp, f + o4 + 2 * V).fma(w4, b2);
            b3 = FloatVector.fromArray(S, xp, f + o4 + 3 * V).fma(w4, b3);
            b0 = FloatVector.fromArray(S, xp, f + o5).fma(w5, b0);
            b1 = FloatVector.fromArray(S, xp, f + o5 + V).fma(w5, b1);
            b2 = FloatVector.fromArray(S, xp, f + o5 + 2 * V).fma(w5, b2);
            b3 = FloatVector.fromArray(S, xp, f + o5 + 3 * V).fma(w5, b3);
            FloatVector c0 = FloatVector.fromArray(S, xp, f + o6).mul(w6);
            FloatVector c1 = FloatVector.fromArray(S, xp, f + o6 + V).mul(w6);
            FloatVector c2 = FloatVector.fromArray(S, xp, f + o6 + 2 * V).mul(w6);
            FloatVector c3 = FloatVector.fromArray(S, xp, f + o6 + 3 * V).mul(w6);
            c0 = FloatVector.fromArray(S, xp, f + o7).fma(w7, c0);
            c1 = FloatVector.fromArray(S, xp, f + o7 + V).fma(w7, c1);
            c2 = FloatVector.fromArray(S, xp, f + o7 + 2 * V).fma(w7, c2);
            c3 = FloatVector.fromArray(S, xp, f + o7 + 3 * V).fma(w7, c3);
            c0 = FloatVector.fromArray(S, xp, f + o8).fma(w8, c0);
            c1 = FloatVector.fromArray(S, xp, f + o8 + V).fma(w8, c1);
            c2 = FloatVector.fromArray(S, xp, f + o8 + 2 * V).fma(w8, c2);
            c3 = FloatVector.fromArray(S, xp, f + o8 + 3 * V).fma(w8, c3);
            a0.add(b0).add(c0).intoArray(z, f);
            a1.add(b1).add(c1).intoArray(z, f + V);
            a2.add(b2).add(c2).intoArray(z, f + 2 * V);
            a3.add(b3).add(c3).intoArray(z, f + 3 * V);
        }
    }

    /**
     * {@link #BAND} output rows at stride 2 along H x two vectors: z[z0 + i*pitch + c + j*V + lane] = bias + sum over the 3 x 3
     * taps (r, s) of w[wk + 3r + s] * xp[base + (2i + r)*ws + c + s + j*V + lane], for c from 0 to cols step 2V, in tap order per
     * output; each of the 9 input rows' 3 shifted vectors of a step loaded once for every output row that reads it.
     */
    private static void band2(float[] xp, int base, int ws, int cols, float[] w, int wk, float bias, float[] z, int z0, int pitch) {
        FloatVector w0 = FloatVector.broadcast(S, w[wk]);
        FloatVector w1 = FloatVector.broadcast(S, w[wk + 1]);
        FloatVector w2 = FloatVector.broadcast(S, w[wk + 2]);
        FloatVector w3 = FloatVector.broadcast(S, w[wk + 3]);
        FloatVector w4 = FloatVector.broadcast(S, w[wk + 4]);
        FloatVector w5 = FloatVector.broadcast(S, w[wk + 5]);
        FloatVector w6 = FloatVector.broadcast(S, w[wk + 6]);
        FloatVector w7 = FloatVector.broadcast(S, w[wk + 7]);
        FloatVector w8 = FloatVector.broadcast(S, w[wk + 8]);
        for (int c = 0; c < cols; c += 2 * V) {
            int f = base + c;
            FloatVector a00 = FloatVector.broadcast(S, bias), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            FloatVector x0 = FloatVector.fromArray(S, xp, f);
            a00 = x0.fma(w0, a00);
            FloatVector x1 = FloatVector.fromArray(S, xp, f + V);
            a01 = x1.fma(w0, a01);
            x0 = FloatVector.fromArray(S, xp, f + 1);
            a00 = x0.fma(w1, a00);
            x1 = FloatVector.fromArray(S, xp, f + 1 + V);
            a01 = x1.fma(w1, a01);
            x0 = FloatVector.fromArray(S, xp, f + 2);
            a00 = x0.fma(w2, a00);
            x1 = FloatVector.fromArray(S, xp, f + 2 + V);
            a01 = x1.fma(w2, a01);
            x0 = FloatVector.fromArray(S, xp, f + ws);
            a00 = x0.fma(w3, a00);
            x1 = FloatVector.fromArray(S, xp, f + ws + V);
            a01 = x1.fma(w3, a01);
            x0 = FloatVector.fromArray(S, xp, f + ws + 1);
            a00 = x0.fma(w4, a00);
            x1 = FloatVector.fromArray(S, xp, f + ws + 1 + V);
            a01 = x1.fma(w4, a01);
            x0 = FloatVector.fromArray(S, xp, f + ws + 2);
            a00 = x0.fma(w5, a00);
            x1 = FloatVector.fromArray(S, xp, f + ws + 2 + V);
            a01 = x1.fma(w5, a01);
            x0 = FloatVector.fromArray(S, xp, f + 2 * ws);
            a00 = x0.fma(w6, a00);
            a10 = x0.fma(w0, a10);
            x1 = FloatVector.fromArray(S, xp, f + 2 * ws + V);
            a01 = x1.fma(w6, a01);
            a11 = x1.fma(w0, a11);
            x0 = FloatVector.fromArray(S, xp, f + 2 * ws + 1);
            a00 = x0.fma(w7, a00);
            a10 = x0.fma(w1, a10);
            x1 = FloatVector.fromArray(S, xp, f + 2 * ws + 1 + V);
            a01 = x1.fma(w7, a01);
            a11 = x1.fma(w1, a11);
            x0 = FloatVector.fromArray(S, xp, f + 2 * ws + 2);
            a00 = x0.fma(w8, a00);
            a10 = x0.fma(w2, a10);
            x1 = FloatVector.fromArray(S, xp, f + 2 * ws + 2 + V);
            a01 = x1.fma(w8, a01);
            a11 = x1.fma(w2, a11);
            x0 = FloatVector.fromArray(S, xp, f + 3 * ws);
            a10 = x0.fma(w3, a10);
            x1 = FloatVector.fromArray(S, xp, f + 3 * ws + V);
            a11 = x1.fma(w3, a11);
            x0 = FloatVector.fromArray(S, xp, f + 3 * ws + 1);
            a10 = x0.fma(w4, a10);
            x1 = FloatVector.fromArray(S, xp, f + 3 * ws + 1 + V);
            a11 = x1.fma(w4, a11);
            x0 = FloatVector.fromArray(S, xp, f + 3 * ws + 2);
            a10 = x0.fma(w5, a10);
            x1 = FloatVector.fromArray(S, xp, f + 3 * ws + 2 + V);
            a11 = x1.fma(w5, a11);
            x0 = FloatVector.fromArray(S, xp, f + 4 * ws);
            a10 = x0.fma(w6, a10);
            a20 = x0.fma(w0, a20);
            x1 = FloatVector.fromArray(S, xp, f + 4 * ws + V);
            a11 = x1.fma(w6, a11);
            a21 = x1.fma(w0, a21);
            x0 = FloatVector.fromArray(S, xp, f + 4 * ws + 1);
            a10 = x0.fma(w7, a10);
            a20 = x0.fma(w1, a20);
            x1 = FloatVector.fromArray(S, xp, f + 4 * ws + 1 + V);
            a11 = x1.fma(w7, a11);
            a21 = x1.fma(w1, a21);
            x0 = FloatVector.fromArray(S, xp, f + 4 * ws + 2);
            a10 = x0.fma(w8, a10);
            a20 = x0.fma(w2, a20);
            x1 = FloatVector.fromArray(S, xp, f + 4 * ws + 2 + V);
            a11 = x1.fma(w8, a11);
            a21 = x1.fma(w2, a21);
            x0 = FloatVector.fromArray(S, xp, f + 5 * ws);
            a20 = x0.fma(w3, a20);
            x1 = FloatVector.fromArray(S, xp, f + 5 * ws + V);
            a21 = x1.fma(w3, a21);
            x0 = FloatVector.fromArray(S, xp, f + 5 * ws + 1);
            a20 = x0.fma(w4, a20);
            x1 = FloatVector.fromArray(S, xp, f + 5 * ws + 1 + V);
            a21 = x1.fma(w4, a21);
            x0 = FloatVector.fromArray(S, xp, f + 5 * ws + 2);
            a20 = x0.fma(w5, a20);
            x1 = FloatVector.fromArray(S, xp, f + 5 * ws + 2 + V);
            a21 = x1.fma(w5, a21);
            x0 = FloatVector.fromArray(S, xp, f + 6 * ws);
            a20 = x0.fma(w6, a20);
            a30 = x0.fma(w0, a30);
            x1 = FloatVector.fromArray(S, xp, f + 6 * ws + V);
            a21 = x1.fma(w6, a21);
            a31 = x1.fma(w0, a31);
            x0 = FloatVector.fromArray(S, xp, f + 6 * ws + 1);
            a20 = x0.fma(w7, a20);
            a30 = x0.fma(w1, a30);
            x1 = FloatVector.fromArray(S, xp, f + 6 * ws + 1 + V);
            a21 = x1.fma(w7, a21);
            a31 = x1.fma(w1, a31);
            x0 = FloatVector.fromArray(S, xp, f + 6 * ws + 2);
            a20 = x0.fma(w8, a20);
            a30 = x0.fma(w2, a30);
            x1 = FloatVector.fromArray(S, xp, f + 6 * ws + 2 + V);
            a21 = x1.fma(w8, a21);
            a31 = x1.fma(w2, a31);
            x0 = FloatVector.fromArray(S, xp, f + 7 * ws);
            a30 = x0.fma(w3, a30);
            x1 = FloatVector.fromArray(S, xp, f + 7 * ws + V);
            a31 = x1.fma(w3, a31);
            x0 = FloatVector.fromArray(S, xp, f + 7 * ws + 1);
            a30 = x0.fma(w4, a30);
            x1 = FloatVector.fromArray(S, xp, f + 7 * ws + 1 + V);
            a31 = x1.fma(w4, a31);
            x0 = FloatVector.fromArray(S, xp, f + 7 * ws + 2);
            a30 = x0.fma(w5, a30);
            x1 = FloatVector.fromArray(S, xp, f + 7 * ws + 2 + V);
            a31 = x1.fma(w5, a31);
            x0 = FloatVector.fromArray(S, xp, f + 8 * ws);
            a30 = x0.fma(w6, a30);
            x1 = FloatVector.fromArray(S, xp, f + 8 * ws + V);
            a31 = x1.fma(w6, a31);
            x0 = FloatVector.fromArray(S, xp, f + 8 * ws + 1);
            a30 = x0.fma(w7, a30);
            x1 = FloatVector.fromArray(S, xp, f + 8 * ws + 1 + V);
            a31 = x1.fma(w7, a31);
            x0 = FloatVector.fromArray(S, xp, f + 8 * ws + 2);
            a30 = x0.fma(w8, a30);
            x1 = FloatVector.fromArray(S, xp, f + 8 * ws + 2 + V);
            a31 = x1.fma(w8, a31);
            a00.intoArray(z, z0 + c);
            a01.intoArray(z, z0 + c + V);
            a10.intoArray(z, z0 + c + pitch);
            a11.intoArray(z, z0 + c + pitch + V);
            a20.intoArray(z, z0 + c + 2 * pitch);
            a21.intoArray(z, z0 + c + 2 * pitch + V);
            a30.intoArray(z, z0 + c + 3 * pitch);
            a31.intoArray(z, z0 + c + 3 * pitch + V);
        }
    }

    /** {@link #flat3x3} for any kernel: taps at xp offsets tapOff[t], weights w[wk + t]. */
    private static void flatAny(float[] xp, int flat, int[] tapOff, float[] w, int wk, float bias, float[] z) {
        for (int f = 0; f < flat; f += STEP) {
            FloatVector a0 = FloatVector.broadcast(S, bias), a1 = a0, a2 = a0, a3 = a0;
            for (int t = 0; t < tapOff.length; t++) {
                FloatVector wt = FloatVector.broadcast(S, w[wk + t]);
                int o = f + tapOff[t];
                a0 = FloatVector.fromArray(S, xp, o).fma(wt, a0);
                a1 = FloatVector.fromArray(S, xp, o + V).fma(wt, a1);
                a2 = FloatVector.fromArray(S, xp, o + 2 * V).fma(wt, a2);
                a3 = FloatVector.fromArray(S, xp, o + 3 * V).fma(wt, a3);
            }
            a0.intoArray(z, f);
            a1.intoArray(z, f + V);
            a2.intoArray(z, f + 2 * V);
            a3.intoArray(z, f + 3 * V);
        }
    }
}
