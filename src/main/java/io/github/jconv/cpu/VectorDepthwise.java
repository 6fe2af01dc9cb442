package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Depthwise convolution (one input channel per group; MobileNet's 3x3 layers at stride 1 and 2) on the Vector API,
 * loaded only when the module is present ({@link DepthwiseConv} calls it). A task takes one output plane. It copies its
 * input plane into zero-padded rows Ws = W + max(pl, pr) apart ({@link VectorDirect#padPlane}: one run of zeros pads
 * both sides of a row), and computes, for every flat position f of that plane from 0 to the last output's,
 * {@code z[f] = bias + sum over taps of w[tap] * xp[f + tap's offset]}, four vectors per loop step; output (p, q) is
 * then z[p * strideH * Ws + q * strideW]. At stride 1 the flat positions past a row's Q outputs (the padding, 1 of 15
 * at 14 x 14) are computed and dropped. Layers of stride 2 along both axes split the padded plane into its four phases
 * instead (even and odd rows x even and odd columns, {@link #phased}), where every tap of the outputs is again a fixed
 * offset and the flat positions are the outputs: on the padded plane three of every four flat positions were dropped
 * at stride 2 (a later form in bands of output rows, which loaded each input vector once for the rows that read it,
 * still computed every column). Phases against those bands (2 threads, alternating in one process, AMD EPYC Zen 4;
 * us): 96 @ 112 388 / 495, 144 @ 56 112 / 144; rows narrower than two vectors stay on the padded plane (192 @ 28: the
 * flat loop 67 against the bands' 75; with the rows split pair by pair in scalar code the phases ran 72 against the
 * flat loop's 65). MobileNetV2's trunk at batch 1: 1.025x (its two stride-2 layers on the phases 0.443 -> 0.389 and
 * 0.165 -> 0.137 ms).
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
    /**
     * Lanes 2i (EVEN) and 2i + 1 (ODD) of two vectors: the first one's in the low half (LO), the second one's in the high
     * half (HI, with {@link #HIGH}).
     */
    private static final VectorShuffle<Float> EVEN_LO = VectorShuffle.fromOp(S, i -> i < V / 2 ? 2 * i : 0),
            EVEN_HI = VectorShuffle.fromOp(S, i -> i < V / 2 ? 0 : 2 * i - V),
            ODD_LO = VectorShuffle.fromOp(S, i -> i < V / 2 ? 2 * i + 1 : 0),
            ODD_HI = VectorShuffle.fromOp(S, i -> i < V / 2 ? 0 : 2 * i + 1 - V);
    private static final VectorMask<Float> HIGH = VectorMask.fromLong(S, -1L << (V / 2));

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

    /**
     * Whether g runs on the padded plane's four phases ({@link #phases}): stride 2 and dilation 1 along both axes, rows of
     * at least two vectors (narrower ones take the padded plane: their rows would split in scalar code). Tap (r, s) of
     * output (p, q) reads phase (r % 2, s % 2) at row p + r / 2, column q + s / 2, so the flat loop computes the outputs
     * and one column of padding per row, 9 loads and FMAs per vector of a 3x3 layer's outputs.
     */
    static boolean phased(ConvGeometry g) {
        return g.strideH == 2 && g.strideW == 2 && g.dilationH == 1 && g.dilationW == 1 && g.w >= 2 * V;
    }

    /** Columns of a phase: half the padded row, rounded up. */
    private static int phaseCols(ConvGeometry g) {
        return (g.paddedW() + 1) / 2;
    }

    /** Floats of one phase: half the padded rows, rounded up, of {@link #phaseCols}. */
    private static long phaseFloats(ConvGeometry g) {
        return (long) (g.paddedH() + 1) / 2 * phaseCols(g);
    }

    /** Floats of the padded input a task computes from: the padded plane (pl, then Hp rows of Ws), or the four phases. */
    private static long inputFloats(ConvGeometry g) {
        return phased(g) ? 4 * phaseFloats(g) : g.padLeft + (long) g.paddedH() * rowStride(g);
    }

    /** Floats between two output rows' flat positions: the phases' columns, or strideH padded rows. */
    private static int pitch(ConvGeometry g) {
        return phased(g) ? phaseCols(g) : g.strideH * rowStride(g);
    }

    /** Flat positions computed: up to the last output's, rounded up to whole loop steps. */
    private static long flat(ConvGeometry g) {
        long last = (long) (g.p - 1) * pitch(g) + (long) (g.q - 1) * (phased(g) ? 1 : g.strideW);
        return (last + STEP) / STEP * STEP;
    }

    /** Where each tap's input starts, relative to a flat position, in tap order (r * S + s). */
    private static long[] tapOffsets(ConvGeometry g) {
        long ws = rowStride(g), pp = phaseFloats(g), cols = phaseCols(g);
        long[] off = new long[g.r * g.s];
        for (int r = 0; r < g.r; r++) {
            for (int s = 0; s < g.s; s++) {
                off[r * g.s + s] = phased(g) ? (2 * (r % 2) + s % 2) * pp + r / 2 * cols + s / 2
                        : r * g.dilationH * ws + (long) s * g.dilationW;
            }
        }
        return off;
    }

    /** Floats of padded input a task reads: the input, or as far as the last loop step's loads reach (zeros). */
    private static long paddedFloats(ConvGeometry g) {
        long reach = 0;
        for (long off : tapOffsets(g)) {
            reach = Math.max(reach, off);
        }
        return Math.max(inputFloats(g), flat(g) + reach);
    }

    /** Floats of workspace a thread uses: the padded input and the results of its flat positions. */
    static long workspaceFloats(ConvGeometry g) {
        return paddedFloats(g) + flat(g);
    }

    /** y = conv(x, w) + bias, then the epilogue per plane; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        float[] w = weights.raw;
        int ws = rowStride(g), hw = g.h * g.w, pq = g.p * g.q, taps = g.r * g.s, mult = g.kPerGroup();
        int input = (int) inputFloats(g), padded = (int) paddedFloats(g), flat = (int) flat(g), pitch = pitch(g);
        int pp = (int) phaseFloats(g), cols = phaseCols(g);
        boolean phased = phased(g), every = phased || g.strideW == 1; // every flat position of a row an output
        long[] offsets = tapOffsets(g);
        int[] tapOff = new int[taps];
        for (int t = 0; t < taps; t++) {
            tapOff[t] = (int) offsets[t]; // within the workspace, which applies() keeps within a Java array
        }
        par.forEach(g.n * g.k, task -> {
            int n = task / g.k, k = task % g.k, src = (n * g.c + k / mult) * hw;
            float[] xp = Workspace.get(Workspace.COL, padded);
            float[] z = Workspace.get(Workspace.SCRATCH, flat);
            if (phased) {
                phases(g, x, src, xp, cols, pp);
            } else {
                VectorDirect.padPlane(g, x, src, xp, 0, ws, input);
            }
            java.util.Arrays.fill(xp, input, padded, 0f);
            float b = bias == null ? 0f : bias[k];
            if (taps == 9) {
                flat3x3(xp, flat, tapOff, w, k * taps, b, z);
            } else {
                flatAny(xp, flat, tapOff, w, k * taps, b, z);
            }
            int out = task * pq;
            for (int p = 0; p < g.p; p++, out += g.q) {
                int row = p * pitch;
                if (every) {
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
     * The four phases of input plane x[src ..] padded: padded (2i + a, 2j + b) at xp[(2a + b) * pp + i * cols + j], zeros
     * where the padding is: each input row's even and odd columns split apart ({@link #deinterleave}) into the two phases
     * of its padded row's parity.
     */
    private static void phases(ConvGeometry g, float[] x, int src, float[] xp, int cols, int pp) {
        int w = g.w, pl = g.padLeft, evB = pl % 2, ev0 = pl / 2, od0 = (pl + 1) / 2, evN = (w + 1) / 2, odN = w / 2;
        int rows = pp / cols;
        for (int pr = 0; pr < 2 * rows; pr++) {
            int a = pr % 2, ih = pr - g.padTop;
            int ev = (2 * a + evB) * pp + pr / 2 * cols, od = (2 * a + 1 - evB) * pp + pr / 2 * cols;
            if (ih < 0 || ih >= g.h) {
                java.util.Arrays.fill(xp, ev, ev + cols, 0f);
                java.util.Arrays.fill(xp, od, od + cols, 0f);
                continue;
            }
            zero(xp, ev, ev + ev0);
            zero(xp, ev + ev0 + evN, ev + cols);
            zero(xp, od, od + od0);
            zero(xp, od + od0 + odN, od + cols);
            deinterleave(x, src + ih * w, w, xp, ev + ev0, od + od0);
        }
    }

    /** Zeros xp[from, to): a few floats, without a call to Arrays.fill. */
    private static void zero(float[] xp, int from, int to) {
        for (int i = from; i < to; i++) {
            xp[i] = 0f;
        }
    }

    /**
     * xp[ev + j] = x[at + 2j] for 2j < w, xp[od + j] = x[at + 2j + 1] for 2j + 1 < w: per two vectors of the row, its even
     * lanes gathered by two permutes and a blend, the odd ones likewise; a row's last pairs in two more vectors overlapping
     * the ones before (rows of fewer than a vector's pairs pair by pair). Not a narrowing of the pairs read as longs: an
     * operation that changes the vector shape sends JDK 17's C2 into its slow fallback in every kernel ({@code
     * VectorShapeGuardTest}; seen again here: these layers and the trunk ran 2-2.7x slower in such processes).
     */
    private static void deinterleave(float[] x, int at, int w, float[] xp, int ev, int od) {
        int pairs = w / 2, j = 0;
        if (pairs >= V) {
            for (;; j += V) {
                j = Math.min(j, pairs - V);
                FloatVector v0 = FloatVector.fromArray(S, x, at + 2 * j), v1 = FloatVector.fromArray(S, x, at + 2 * j + V);
                v0.rearrange(EVEN_LO).blend(v1.rearrange(EVEN_HI), HIGH).intoArray(xp, ev + j);
                v0.rearrange(ODD_LO).blend(v1.rearrange(ODD_HI), HIGH).intoArray(xp, od + j);
                if (j + V == pairs) {
                    break;
                }
            }
            j = pairs;
        }
        for (; j < pairs; j++) {
            xp[ev + j] = x[at + 2 * j];
            xp[od + j] = x[at + 2 * j + 1];
        }
        if (w % 2 == 1) {
            xp[ev + pairs] = x[at + w - 1];
        }
    }

    /**
     * z[f] = bias + sum over the 9 taps t of w[wk + t] * xp[f + tapOff[t]] for f < flat (a multiple of {@link #STEP}): the
     * taps written out, their weights broadcast once.
     */
    private static void flat3x3(float[] xp, int flat, int[] tapOff, float[] w, int wk, float bias, float[] z) {
        FloatVector w0 = FloatVector.broadcast(S, w[wk]), w1 = FloatVector.broadcast(S, w[wk + 1]), w2 = FloatVector.broadcast(S, w[wk + 2]);
        FloatVector w3 = FloatVector.broadcast(S, w[wk + 3]), w4 = FloatVector.broadcast(S, w[wk + 4]), w5 = FloatVector.broadcast(S, w[wk + 5]);
        FloatVector w6 = FloatVector.broadcast(S, w[wk + 6]), w7 = FloatVector.broadcast(S, w[wk + 7]), w8 = FloatVector.broadcast(S, w[wk + 8]);
        int o0 = tapOff[0], o1 = tapOff[1], o2 = tapOff[2], o3 = tapOff[3], o4 = tapOff[4], o5 = tapOff[5], o6 = tapOff[6],
                o7 = tapOff[7], o8 = tapOff[8];
        for (int f = 0; f < flat; f += STEP) {
            // a chain per three taps (a 3x3 kernel's rows; a: the bias and taps 0-2, b: 3-5, c: 6-8), summed at the end
            FloatVector a0 = FloatVector.broadcast(S, bias), a1 = a0, a2 = a0, a3 = a0;
            a0 = FloatVector.fromArray(S, xp, f + o0).fma(w0, a0);
            a1 = FloatVector.fromArray(S, xp, f + o0 + V).fma(w0, a1);
            a2 = FloatVector.fromArray(S, xp, f + o0 + 2 * V).fma(w0, a2);
            a3 = FloatVector.fromArray(S, xp, f + o0 + 3 * V).fma(w0, a3);
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
