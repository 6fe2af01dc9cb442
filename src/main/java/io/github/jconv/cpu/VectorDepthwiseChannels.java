package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Depthwise convolution on small maps with 16 channels in the vector lanes (loaded only with the Vector API; {@link
 * DepthwiseConv} calls it where {@link #applies} holds). A task takes 16 channels of one sample: their input planes are
 * transposed in registers ({@link VectorDirectChannels#transpose16}, 16 pixels of 16 channels at a time) into a
 * zero-bordered grid of pixels of 16 channels, Wp = W + pl + pr ({@code paddedW}) pixels per row; each output pixel is
 * then one vector, bias + the sum over taps of the tap's 16 weights times the input pixel under it (one load and one FMA
 * per tap, no padded plane per channel, no rows to copy), computed for the grid's flat positions f = p * Wp + q (the
 * grid columns past a row's Q outputs are computed and dropped), four pixels per loop step with the taps' offsets fixed;
 * the output pixels are gathered in order and transposed back into the 16 output planes.
 *
 * <p>Why: on a 7 x 7 map a plane of {@link VectorDepthwise} is 4 vectors of work around a padded copy in and a copy out
 * per channel; here the copies are 16 x 16 transposes shared by 16 channels.
 */
final class VectorDepthwiseChannels {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int V = S.length();
    /** Output pixels per loop step. */
    private static final int PIX = 4;

    private VectorDepthwiseChannels() {
    }

    /**
     * Whether g runs here: 512-bit vectors (the transposes are 16 x 16), a forward depthwise layer of one channel per
     * group, channels a multiple of 16, stride 1, maps of at least 16 pixels and outputs and at most {@link #MAX_MAP}.
     */
    static boolean applies(ConvGeometry g) {
        return V == 16 && !g.transposed() && g.isDepthwise() && g.kPerGroup() == 1 && g.k % V == 0 && g.strideH == 1 && g.strideW == 1
                && g.h * g.w >= V && g.p * g.q >= V && g.h * g.w <= MAX_MAP;
    }

    /**
     * Input pixels of the largest map this kernel takes (8 x 8). Against {@link VectorDepthwise}'s planes (3x3, stride 1,
     * 2 threads, alternating in one process, AMD EPYC Zen 4; us): alone 960 @ 7 33 / 67, 384 @ 14 43 / 51, 576 @ 14 66 /
     * 78, 192 @ 28 92 / 61, 144 @ 56 256 / 157; inside MobileNetV2's trunk (two processes) the 7x7 layers 0.043-0.064 /
     * 0.077-0.085 ms, but the 14 x 14 ones from 0.87x to 1.13x, the first layer of each 14 x 14 stage 0.77-0.87x.
     */
    static final int MAX_MAP = 64;

    /** Flat positions computed: up to the last output's, rounded up to whole loop steps. */
    private static int flat(ConvGeometry g) {
        return ((g.p - 1) * g.paddedW() + g.q + PIX - 1) / PIX * PIX;
    }

    /** Pixels of the grid a task reads: its rows, or as far as the last loop step's taps reach (zeros). */
    private static int gridPixels(ConvGeometry g) {
        int reach = flat(g) + (g.r - 1) * g.dilationH * g.paddedW() + (g.s - 1) * g.dilationW;
        return Math.max(g.paddedH() * g.paddedW(), reach);
    }

    /** Floats of workspace a thread uses: the grid, the flat outputs, a 16 x 16 block. */
    static long workspaceFloats(ConvGeometry g) {
        return (long) V * (gridPixels(g) + flat(g) + V);
    }

    /** y = conv(x, w) + bias, then the epilogue per plane; {@link #applies} must hold. */
    static void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, CpuConvolution.Finish done, Parallel par) {
        int taps = g.r * g.s, blocks = g.k / V, hw = g.h * g.w, pq = g.p * g.q, cols = g.paddedW();
        int grid = gridPixels(g) * V, flat = flat(g), outs = flat * V, tmp = grid + outs;
        float[] w = weights.raw;
        // per block, per tap: the 16 channels' weights (each block's 16 x taps weights transposed)
        float[] wp = weights.packed((long) blocks * taps * V, p -> Transpose.planes(w, p, blocks, V, taps, 1));
        int[] tapOff = new int[taps];
        for (int r = 0; r < g.r; r++) {
            for (int s = 0; s < g.s; s++) {
                tapOff[r * g.s + s] = (r * g.dilationH * cols + s * g.dilationW) * V;
            }
        }
        par.forEach(g.n * blocks, task -> {
            int n = task / blocks, b = task % blocks, planes = (n * g.k + b * V);
            float[] buf = Workspace.get(Workspace.COL, (long) tmp + V * V);
            // the grid's zeros: the rows above and below the input, the columns beside it (one run per pair of rows), the reach
            int first = g.padTop * cols, last = (g.padTop + g.h) * cols;
            java.util.Arrays.fill(buf, 0, (first + g.padLeft) * V, 0f);
            for (int ih = 0; ih < g.h; ih++) {
                int row = first + ih * cols + g.padLeft;
                java.util.Arrays.fill(buf, (row + g.w) * V, (ih + 1 < g.h ? row + cols : last) * V, 0f);
            }
            java.util.Arrays.fill(buf, last * V, grid, 0f);
            // in: 16 pixels of the 16 channels at a time (the last 16 overlapping the ones before), into the grid
            for (int pix0 = 0; pix0 < hw; pix0 += V) {
                int at = Math.min(pix0, hw - V), ih = at / g.w, iw = at % g.w;
                VectorDirectChannels.transpose16(x, planes * hw + at, hw, buf, tmp, V);
                for (int i = 0; i < V; i++) {
                    FloatVector.fromArray(S, buf, tmp + i * V).intoArray(buf, ((ih + g.padTop) * cols + iw + g.padLeft) * V);
                    if (++iw == g.w) {
                        iw = 0;
                        ih++;
                    }
                }
            }
            FloatVector bv = bias == null ? FloatVector.zero(S) : FloatVector.fromArray(S, bias, b * V);
            bv.intoArray(buf, tmp);
            if (taps == 9) {
                flat3x3(buf, flat, tapOff, wp, b * taps * V, tmp, grid);
            } else {
                flatAny(buf, flat, tapOff, wp, b * taps * V, tmp, grid);
            }
            // out: the outputs in order (row p's Q pixels from flat p * cols), 16 at a time (the last overlapping), transposed
            for (int o0 = 0; o0 < pq; o0 += V) {
                int at = Math.min(o0, pq - V), p = at / g.q, q = at % g.q;
                for (int i = 0; i < V; i++) {
                    FloatVector.fromArray(S, buf, grid + (p * cols + q) * V).intoArray(buf, tmp + i * V);
                    if (++q == g.q) {
                        q = 0;
                        p++;
                    }
                }
                VectorDirectChannels.transpose16(buf, tmp, V, y, planes * pq + at, pq);
            }
            for (int c = 0; c < V; c++) {
                done.region((planes + c) * pq, (planes + c + 1) * pq);
            }
        });
    }

    /**
     * z[f] = bias + sum over the 3 x 3 taps of wp[wk + t*V ..] * g[f*V + tapOff[t] ..] for the flat positions f < flat, z at
     * buf[out ..], the bias at buf[bias ..]; four pixels per step, a chain per kernel row and pixel. The loop of {@link
     * VectorDepthwise}'s planes with a vector of 16 channels' weights per tap instead of one broadcast weight: one loop for
     * both (weights and bias as vectors in memory, a plane's broadcast into scratch per task) made the planes 3-14% slower
     * (2 threads, alternating in one process: 384 @ 14 51 -> 57 us, 960 @ 7 66-71 -> 77-78, 144 @ 56 139-170 -> 150-175).
     */
    private static void flat3x3(float[] buf, int flat, int[] tapOff, float[] wp, int wk, int bias, int out) {
        FloatVector w0 = FloatVector.fromArray(S, wp, wk), w1 = FloatVector.fromArray(S, wp, wk + V), w2 = FloatVector.fromArray(S, wp, wk + 2 * V);
        FloatVector w3 = FloatVector.fromArray(S, wp, wk + 3 * V), w4 = FloatVector.fromArray(S, wp, wk + 4 * V), w5 = FloatVector.fromArray(S, wp, wk + 5 * V);
        FloatVector w6 = FloatVector.fromArray(S, wp, wk + 6 * V), w7 = FloatVector.fromArray(S, wp, wk + 7 * V), w8 = FloatVector.fromArray(S, wp, wk + 8 * V);
        int o0 = tapOff[0], o1 = tapOff[1], o2 = tapOff[2], o3 = tapOff[3], o4 = tapOff[4], o5 = tapOff[5], o6 = tapOff[6],
                o7 = tapOff[7], o8 = tapOff[8];
        for (int f = 0; f < flat * V; f += PIX * V) {
            FloatVector bv = FloatVector.fromArray(S, buf, bias);
            FloatVector a0 = bv, a1 = bv, a2 = bv, a3 = bv;
            a0 = FloatVector.fromArray(S, buf, f + o0).fma(w0, a0);
            a1 = FloatVector.fromArray(S, buf, f + o0 + V).fma(w0, a1);
            a2 = FloatVector.fromArray(S, buf, f + o0 + 2 * V).fma(w0, a2);
            a3 = FloatVector.fromArray(S, buf, f + o0 + 3 * V).fma(w0, a3);
            a0 = FloatVector.fromArray(S, buf, f + o1).fma(w1, a0);
            a1 = FloatVector.fromArray(S, buf, f + o1 + V).fma(w1, a1);
            a2 = FloatVector.fromArray(S, buf, f + o1 + 2 * V).fma(w1, a2);
            a3 = FloatVector.fromArray(S, buf, f + o1 + 3 * V).fma(w1, a3);
            a0 = FloatVector.fromArray(S, buf, f + o2).fma(w2, a0);
            a1 = FloatVector.fromArray(S, buf, f + o2 + V).fma(w2, a1);
            a2 = FloatVector.fromArray(S, buf, f + o2 + 2 * V).fma(w2, a2);
            a3 = FloatVector.fromArray(S, buf, f + o2 + 3 * V).fma(w2, a3);
            FloatVector b0 = FloatVector.fromArray(S, buf, f + o3).mul(w3);
            FloatVector b1 = FloatVector.fromArray(S, buf, f + o3 + V).mul(w3);
            FloatVector b2 = FloatVector.fromArray(S, buf, f + o3 + 2 * V).mul(w3);
            FloatVector b3 = FloatVector.fromArray(S, buf, f + o3 + 3 * V).mul(w3);
            b0 = FloatVector.fromArray(S, buf, f + o4).fma(w4, b0);
            b1 = FloatVector.fromArray(S, buf, f + o4 + V).fma(w4, b1);
            b2 = FloatVector.fromArray(S, buf, f + o4 + 2 * V).fma(w4, b2);
            b3 = FloatVector.fromArray(S, buf, f + o4 + 3 * V).fma(w4, b3);
            b0 = FloatVector.fromArray(S, buf, f + o5).fma(w5, b0);
            b1 = FloatVector.fromArray(S, buf, f + o5 + V).fma(w5, b1);
            b2 = FloatVector.fromArray(S, buf, f + o5 + 2 * V).fma(w5, b2);
            b3 = FloatVector.fromArray(S, buf, f + o5 + 3 * V).fma(w5, b3);
            FloatVector c0 = FloatVector.fromArray(S, buf, f + o6).mul(w6);
            FloatVector c1 = FloatVector.fromArray(S, buf, f + o6 + V).mul(w6);
            FloatVector c2 = FloatVector.fromArray(S, buf, f + o6 + 2 * V).mul(w6);
            FloatVector c3 = FloatVector.fromArray(S, buf, f + o6 + 3 * V).mul(w6);
            c0 = FloatVector.fromArray(S, buf, f + o7).fma(w7, c0);
            c1 = FloatVector.fromArray(S, buf, f + o7 + V).fma(w7, c1);
            c2 = FloatVector.fromArray(S, buf, f + o7 + 2 * V).fma(w7, c2);
            c3 = FloatVector.fromArray(S, buf, f + o7 + 3 * V).fma(w7, c3);
            c0 = FloatVector.fromArray(S, buf, f + o8).fma(w8, c0);
            c1 = FloatVector.fromArray(S, buf, f + o8 + V).fma(w8, c1);
            c2 = FloatVector.fromArray(S, buf, f + o8 + 2 * V).fma(w8, c2);
            c3 = FloatVector.fromArray(S, buf, f + o8 + 3 * V).fma(w8, c3);
            a0.add(b0).add(c0).intoArray(buf, out + f);
            a1.add(b1).add(c1).intoArray(buf, out + f + V);
            a2.add(b2).add(c2).intoArray(buf, out + f + 2 * V);
            a3.add(b3).add(c3).intoArray(buf, out + f + 3 * V);
        }
    }

    /** {@link #flat3x3} for any kernel. */
    private static void flatAny(float[] buf, int flat, int[] tapOff, float[] wp, int wk, int bias, int out) {
        for (int f = 0; f < flat * V; f += PIX * V) {
            FloatVector a0 = FloatVector.fromArray(S, buf, bias), a1 = a0, a2 = a0, a3 = a0;
            for (int t = 0; t < tapOff.length; t++) {
                FloatVector wt = FloatVector.fromArray(S, wp, wk + t * V);
                int o = f + tapOff[t];
                a0 = FloatVector.fromArray(S, buf, o).fma(wt, a0);
                a1 = FloatVector.fromArray(S, buf, o + V).fma(wt, a1);
                a2 = FloatVector.fromArray(S, buf, o + 2 * V).fma(wt, a2);
                a3 = FloatVector.fromArray(S, buf, o + 3 * V).fma(wt, a3);
            }
            a0.intoArray(buf, out + f);
            a1.intoArray(buf, out + f + V);
            a2.intoArray(buf, out + f + 2 * V);
            a3.intoArray(buf, out + f + 3 * V);
        }
    }
}
