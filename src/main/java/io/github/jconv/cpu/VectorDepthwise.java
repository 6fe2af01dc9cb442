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
 * <p>MobileNet's own layers, 3x3 with padding 1, take two paths without zero columns that store straight into y: at
 * stride 1 the plane as one flat run ({@link #unpaddedPlane}), at stride 2 along both axes the even columns of stride-1 sums
 * over copies of the input's odd and even rows ({@link #evenColumnsPlane}); the same bits as the paths above. That takes
 * the stride-2 layers with rows narrower than two vectors too (576 @ 14), which the padded plane ran computing four
 * flat positions per output.
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

    /**
     * Floats of workspace a thread uses: the copies of the input that {@link #unpaddedPlane} or {@link #evenColumnsPlane} read, or the
     * padded input and the results of its flat positions.
     */
    static long workspaceFloats(ConvGeometry g) {
        if (unpaddedApplies(g)) {
            return 3 * unpaddedFloats(g);
        }
        return evenColumnsApplies(g) ? 4 * evenColumnsFloats(g) : paddedFloats(g) + flat(g);
    }

    /** A 3 x 3 kernel at dilation 1 with padding 1 on every side and stride {@code stride} along both axes (MobileNet's). */
    private static boolean mobileNet3x3(ConvGeometry g, int stride) {
        return g.r == 3 && g.s == 3 && g.strideH == stride && g.strideW == stride && g.dilationH == 1 && g.dilationW == 1
                && g.padTop == 1 && g.padBottom == 1 && g.padLeft == 1 && g.padRight == 1;
    }

    /**
     * Whether g takes {@link #unpaddedPlane}: {@link #mobileNet3x3} at stride 1 (MobileNet's stride-1 depthwise layers), planes
     * of at least a vector of outputs.
     */
    static boolean unpaddedApplies(ConvGeometry g) {
        return mobileNet3x3(g, 1) && g.h * g.w >= V;
    }

    /** Floats of one of {@link #unpaddedPlane}'s three copies of the input: W + 1 zeros, the plane, W + 1 zeros. */
    private static long unpaddedFloats(ConvGeometry g) {
        return (long) g.h * g.w + 2L * (g.w + 1);
    }

    /**
     * Whether g takes {@link #evenColumnsPlane}: {@link #mobileNet3x3} at stride 2 (MobileNet's stride-2 depthwise layers),
     * planes of at least a vector of outputs.
     */
    static boolean evenColumnsApplies(ConvGeometry g) {
        return mobileNet3x3(g, 2) && g.p * g.q >= V;
    }

    /** Floats of one of {@link #evenColumnsPlane}' four copies of rows: a float, P + 1 rows of 2Q floats, a vector of slack. */
    private static long evenColumnsFloats(ConvGeometry g) {
        return 1 + (long) (g.p + 1) * 2 * g.q + V;
    }

    /** y = conv(x, w) + bias, then the epilogue per plane; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        float[] w = weights.raw;
        if (planeApplies(g)) { // MobileNet's layers: a plane per task, the epilogue after it
            int hw = g.h * g.w, pq = g.p * g.q, mult = g.kPerGroup();
            int[] taps = planeTaps(g);
            par.forEach(g.n * g.k, task -> {
                int n = task / g.k, k = task % g.k, out = task * pq;
                plane(g, taps, x, (n * g.c + k / mult) * hw, w, k, bias == null ? 0f : bias[k], y, out);
                done.region(out, out + pq);
            });
            return;
        }
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
                flat3x3(xp, flat, tapOff, w, k * taps, b, z, 0);
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

    /** Where {@link #unpaddedPlane}'s taps read, relative to a flat position: the left taps in the second copy, the right ones in the third. */
    private static int[] unpaddedTaps(ConvGeometry g) {
        int size = (int) unpaddedFloats(g);
        int[] tapOff = new int[9];
        for (int t = 0; t < 9; t++) {
            tapOff[t] = t / 3 * g.w + t % 3 + (t % 3 == 0 ? size : t % 3 == 2 ? 2 * size : 0);
        }
        return tapOff;
    }

    /**
     * {@link #forward}'s work on one plane (input plane x[src ..], output channel k's weights and bias, outputs y[out ..])
     * for a layer {@link #unpaddedApplies} takes, its outputs computed as one flat run straight into y's
     * plane: output f = p * W + q reads tap (r, s) at f + r * W + s of a copy of its input plane (rows W apart, no zero
     * columns; copied whole, not row by row) between a zero row and a float before it and a zero row and a float after
     * it; no scratch plane and no copy of its rows into y; the epilogue then in one pass over the plane. Without zero
     * columns a row's first output would read the row before's last input for its left taps (s = 0), and its last output
     * the next row's first input for its right taps (s = 2): the left taps read a second copy whose last column is zero,
     * the right taps a third whose first column is zero, columns that those taps read for no other output. So every tap
     * reads what the padded plane holds, in the same order of operations ({@link #flat3x3}): the same bits as before.
     * MobileNetV2 at batch 1, 2 threads, alternating in one process (AMD EPYC Zen 4): its stride-1 depthwise layers 384 @ 14
     * 0.090 -> 0.057 ms, 576 @ 14 0.130 -> 0.084, 192 @ 28 0.13 -> 0.10, 144 @ 56 0.378 -> 0.320, 32 @ 112 0.318 -> 0.300,
     * the trunk 1.045x. Tried and left out: each row's first and last outputs computed again in scalar code instead of
     * the two copies (a third of the layer at 56 x 56, two thirds at 14 x 14); the epilogue applied to each vector on its
     * way to y (the 56 and 112 layers 15-40% slower inside the trunk, faster alone: without the epilogue); the rows
     * computed one by one straight from the padded plane (a row's few vectors a loop: 1.3x slower, C2 keeping the loads'
     * bounds checks).
     */
    private static void unpaddedPlane(ConvGeometry g, int[] tapOff, float[] x, int src, float[] w, int k, float b, float[] y, int out) {
        int hw = g.h * g.w, lead = g.w + 1, size = (int) unpaddedFloats(g), main = hw / STEP * STEP;
        float[] xp = Workspace.get(Workspace.COL, 3L * size);
        java.util.Arrays.fill(xp, 0, lead, 0f);
        System.arraycopy(x, src, xp, lead, hw);
        java.util.Arrays.fill(xp, lead + hw, size, 0f);
        System.arraycopy(xp, 0, xp, size, size);
        System.arraycopy(xp, 0, xp, 2 * size, size);
        for (int at = size + lead + g.w - 1, end = 2 * size; at < end; at += g.w) { // the second copy's last column
            xp[at] = 0f;
        }
        for (int at = 2 * size + lead, end = 3 * size - lead; at < end; at += g.w) { // the third copy's first column
            xp[at] = 0f;
        }
        flat3x3(xp, main, tapOff, w, k * 9, b, y, out);
        for (int f = main; f < hw; f += V) { // the vectors past the last whole step; the last one ends at the plane's end
            int at = Math.min(f, hw - V);
            one3x3(xp, at, tapOff, w, k * 9, b, y, out + at);
        }
    }

    /**
     * Where {@link #evenColumnsPlane}'s taps read, relative to twice a flat output position. Copies: 0 the odd rows, 1 the
     * even rows, 2 and 3 the same with their last column zero (the left taps').
     */
    private static int[] evenColumnsTaps(ConvGeometry g) {
        int size = (int) evenColumnsFloats(g), pitch = 2 * g.q;
        int[] tapOff = new int[9];
        for (int r = 0; r < 3; r++) {
            for (int s = 0; s < 3; s++) {
                tapOff[r * 3 + s] = ((r == 1 ? 1 : 0) + (s == 0 ? 2 : 0)) * size + 1 + (r == 2 ? pitch : 0) + s - 1;
            }
        }
        return tapOff;
    }

    /**
     * {@link #forward}'s work on one plane (input plane x[src ..], output channel k's weights and bias, outputs y[out ..])
     * for a layer {@link #evenColumnsApplies} takes, its outputs computed in flat order straight into y's
     * plane: output row p is the even columns of row p's stride-1 sums along W over input rows 2p - 1, 2p and 2p + 1. A
     * task copies its input plane's odd rows (from row -1, a zero row) and its even rows into two copies of rows 2Q floats
     * apart (W and a zero column when W is odd) after one zero float, so output f = p * Q + q, whose stride-1 sum sits at
     * z = 2f, reads tap (r, s) at z + s - 1 of the odd rows (r = 0), the even rows (r = 1), or the odd rows one row on (r =
     * 2): loads at twice the loop's index plus a constant, one counted loop over the plane. Each output vector is two
     * vectors of stride-1 sums (z = 2f and 2f + V, twice the FMAs) whose even lanes are kept (two permutes and a blend).
     * A row's first output would read the row before's last input for its left taps (s = 0): they read a third and fourth
     * copy whose last column is zero, a column those taps read for no kept output. The right taps wrap only at odd z, whose
     * sums are dropped. Every tap reads what the padded plane holds, in the same order of operations ({@link #flat3x3}):
     * the same bits as the four phases ({@link #phases}), whose split of every input row into its even and odd columns
     * took four permutes and two blends per two input vectors (on JDK 17 each permute costs about as much as the loads
     * and FMAs of a tap). MobileNetV2 at batch 1, 2 threads, the former and these classes alternating in one process
     * (AMD EPYC Zen 4; ms): 96 @ 112 0.404 -> 0.338, 144 @ 56 0.144 -> 0.117, 192 @ 28 0.070 -> 0.051, 576 @ 14 0.084 ->
     * 0.075; alone on one thread (us) 144 @ 56 239 -> 187, 192 @ 28 191 -> 123, 576 @ 14 175 -> 145, 96 @ 112 within 5%
     * (its copies and the left taps' copies took half its time).
     */
    private static void evenColumnsPlane(ConvGeometry g, int[] tapOff, float[] x, int src, float[] w, int k, float b, float[] y, int out) {
        int pq = g.p * g.q, pitch = 2 * g.q, size = (int) evenColumnsFloats(g), main = pq / V * V;
        float[] xp = Workspace.get(Workspace.COL, 4L * size);
        for (int copy = 0; copy < 2; copy++) {
            int at = copy * size;
            xp[at] = 0f;
            for (int j = 0; j <= g.p; j++) { // row j of the odd rows is input row 2j - 1, of the even rows 2j
                int ih = 2 * j - 1 + copy, row = at + 1 + j * pitch;
                if (ih < 0 || ih >= g.h) {
                    java.util.Arrays.fill(xp, row, row + pitch, 0f);
                } else {
                    System.arraycopy(x, src + ih * g.w, xp, row, g.w);
                    for (int c = row + g.w; c < row + pitch; c++) {
                        xp[c] = 0f;
                    }
                }
            }
            java.util.Arrays.fill(xp, at + 1 + (g.p + 1) * pitch, at + size, 0f);
            System.arraycopy(xp, at, xp, at + 2 * size, size);
            for (int c = at + 2 * size + pitch, end = at + 3 * size; c < end; c += pitch) { // the copy's last column
                xp[c] = 0f;
            }
        }
        stride2(xp, 0, main, tapOff, w, k * 9, b, y, out);
        if (main < pq) { // one vector ending at the plane's end, over outputs already stored
            stride2(xp, pq - V, pq - V + 1, tapOff, w, k * 9, b, y, out);
        }
    }

    /** Whether {@link #plane} takes g: a layer {@link #unpaddedApplies} or {@link #evenColumnsApplies} takes. */
    static boolean planeApplies(ConvGeometry g) {
        return unpaddedApplies(g) || evenColumnsApplies(g);
    }

    /** Where {@link #plane}'s taps read for g (found once per call). */
    static int[] planeTaps(ConvGeometry g) {
        return unpaddedApplies(g) ? unpaddedTaps(g) : evenColumnsTaps(g);
    }

    /**
     * Output plane y[out ..] of channel k (raw weights w, bias b) from input plane x[src ..], without the epilogue, as
     * {@link #forward} computes it for a layer {@link #planeApplies} takes (so {@link ExpandDepthwise} can give it a plane
     * in cache).
     */
    static void plane(ConvGeometry g, int[] taps, float[] x, int src, float[] w, int k, float b, float[] y, int out) {
        if (unpaddedApplies(g)) {
            unpaddedPlane(g, taps, x, src, w, k, b, y, out);
        } else {
            evenColumnsPlane(g, taps, x, src, w, k, b, y, out);
        }
    }

    /**
     * y[out + f ..] for output vectors f = from, from + V, ... below to: the even lanes of the stride-1 sums at xp[2f +
     * tapOff[t]] and xp[2f + V + tapOff[t]] (bias and taps summed as {@link #flat3x3} sums them).
     */
    private static void stride2(float[] xp, int from, int to, int[] tapOff, float[] w, int wk, float bias, float[] y, int out) {
        FloatVector b = FloatVector.broadcast(S, bias);
        FloatVector w0 = FloatVector.broadcast(S, w[wk]), w1 = FloatVector.broadcast(S, w[wk + 1]), w2 = FloatVector.broadcast(S, w[wk + 2]);
        FloatVector w3 = FloatVector.broadcast(S, w[wk + 3]), w4 = FloatVector.broadcast(S, w[wk + 4]), w5 = FloatVector.broadcast(S, w[wk + 5]);
        FloatVector w6 = FloatVector.broadcast(S, w[wk + 6]), w7 = FloatVector.broadcast(S, w[wk + 7]), w8 = FloatVector.broadcast(S, w[wk + 8]);
        int o0 = tapOff[0], o1 = tapOff[1], o2 = tapOff[2], o3 = tapOff[3], o4 = tapOff[4], o5 = tapOff[5], o6 = tapOff[6],
                o7 = tapOff[7], o8 = tapOff[8];
        for (int f = from; f < to; f += V) {
            int z = 2 * f, u = z + V;
            FloatVector a = FloatVector.fromArray(S, xp, z + o0).fma(w0, b), e = FloatVector.fromArray(S, xp, u + o0).fma(w0, b);
            a = FloatVector.fromArray(S, xp, z + o1).fma(w1, a);
            e = FloatVector.fromArray(S, xp, u + o1).fma(w1, e);
            a = FloatVector.fromArray(S, xp, z + o2).fma(w2, a);
            e = FloatVector.fromArray(S, xp, u + o2).fma(w2, e);
            FloatVector m = FloatVector.fromArray(S, xp, z + o3).mul(w3), n = FloatVector.fromArray(S, xp, u + o3).mul(w3);
            m = FloatVector.fromArray(S, xp, z + o4).fma(w4, m);
            n = FloatVector.fromArray(S, xp, u + o4).fma(w4, n);
            m = FloatVector.fromArray(S, xp, z + o5).fma(w5, m);
            n = FloatVector.fromArray(S, xp, u + o5).fma(w5, n);
            FloatVector c = FloatVector.fromArray(S, xp, z + o6).mul(w6), d = FloatVector.fromArray(S, xp, u + o6).mul(w6);
            c = FloatVector.fromArray(S, xp, z + o7).fma(w7, c);
            d = FloatVector.fromArray(S, xp, u + o7).fma(w7, d);
            c = FloatVector.fromArray(S, xp, z + o8).fma(w8, c);
            d = FloatVector.fromArray(S, xp, u + o8).fma(w8, d);
            a.add(m).add(c).rearrange(EVEN_LO).blend(e.add(n).add(d).rearrange(EVEN_HI), HIGH).intoArray(y, out + f);
        }
    }

    /** {@link #flat3x3}'s sum for one vector of flat positions at f, stored at y[at ..]. */
    private static void one3x3(float[] xp, int f, int[] tapOff, float[] w, int wk, float bias, float[] y, int at) {
        FloatVector a = FloatVector.fromArray(S, xp, f + tapOff[0]).fma(FloatVector.broadcast(S, w[wk]),
                FloatVector.broadcast(S, bias));
        a = FloatVector.fromArray(S, xp, f + tapOff[1]).fma(FloatVector.broadcast(S, w[wk + 1]), a);
        a = FloatVector.fromArray(S, xp, f + tapOff[2]).fma(FloatVector.broadcast(S, w[wk + 2]), a);
        FloatVector m = FloatVector.fromArray(S, xp, f + tapOff[3]).mul(FloatVector.broadcast(S, w[wk + 3]));
        m = FloatVector.fromArray(S, xp, f + tapOff[4]).fma(FloatVector.broadcast(S, w[wk + 4]), m);
        m = FloatVector.fromArray(S, xp, f + tapOff[5]).fma(FloatVector.broadcast(S, w[wk + 5]), m);
        FloatVector c = FloatVector.fromArray(S, xp, f + tapOff[6]).mul(FloatVector.broadcast(S, w[wk + 6]));
        c = FloatVector.fromArray(S, xp, f + tapOff[7]).fma(FloatVector.broadcast(S, w[wk + 7]), c);
        c = FloatVector.fromArray(S, xp, f + tapOff[8]).fma(FloatVector.broadcast(S, w[wk + 8]), c);
        a.add(m).add(c).intoArray(y, at);
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
     * z[zo + f] = bias + sum over the 9 taps t of w[wk + t] * xp[f + tapOff[t]] for f < flat (a multiple of {@link #STEP}):
     * the taps written out, their weights broadcast once.
     */
    private static void flat3x3(float[] xp, int flat, int[] tapOff, float[] w, int wk, float bias, float[] z, int zo) {
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
            a0.add(b0).add(c0).intoArray(z, zo + f);
            a1.add(b1).add(c1).intoArray(z, zo + f + V);
            a2.add(b2).add(c2).intoArray(z, zo + f + 2 * V);
            a3.add(b3).add(c3).intoArray(z, zo + f + 3 * V);
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
