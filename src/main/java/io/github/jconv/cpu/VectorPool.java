package io.github.jconv.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Max pooling with a 3 x 3 window and padding at most 1 (ResNet's pool after the stem) on the Vector API (loaded only
 * when the module is present, {@link Sgemm#VECTOR}; {@code MaxPool2d} calls it), as {@code MaxPool2d}'s loops compute it
 * (Math.max semantics: NaN wins; padded positions never win). Per output row: the column maxima over the window's input
 * rows, vector by vector straight from the input (C2's auto-vectorisation gave up on the rows' run-time offsets, so
 * the loops it replaces copied each row first), into a buffer with a -infinity column on either side (the padding);
 * the maxima of every three neighbouring columns, vector by vector; then every stride-th of those. ResNet-50's pool
 * (64 x 112 x 112, stride 2) alone takes 0.12-0.16 ms on two threads with its input cached, 0.15-0.21 from memory (AMD EPYC
 * Zen 5, medians of alternating runs in one process). Tried and left out there: all rows' column maxima first, so that
 * no vector load reads a line that a recent store straddles (0.152 -> 0.164 ms); the stride-2 pick as vector permutes
 * of two window vectors (one {@code rearrange} of both: 2-6x slower on JDK 17; a permute of each and a blend: within 4%).
 */
final class VectorPool {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();

    private VectorPool() {
    }

    /** Whether {@link #pool3} takes this window: 3 x 3, padding 0 or 1. */
    static boolean applies(int kernel, int padding) {
        return kernel == 3 && padding <= 1;
    }

    /** y = max_pool2d(x, 3, stride, pad) on planes of h x w -> p x q, planes in parallel. */
    static void pool3(float[] x, int planes, int h, int w, float[] y, int p, int q, int stride, int pad, Parallel par) {
        int width = (w + 2 + V - 1) / V * V + V; // the padded columns and room for whole vectors
        par.forEach(planes, plane -> {
            float[] buf = Workspace.get(Workspace.SCRATCH, 2L * width);
            int in = plane * h * w, out = plane * p * q;
            for (int op = 0; op < p; op++) {
                int r0 = Math.max(0, op * stride - pad), r1 = Math.min(h, op * stride - pad + 3);
                columns(x, in, w, r0, r1, buf);
                windows(buf, width, w);
                // output oq's window starts at column c = oq * stride - pad, whose three-column maximum is at c + 1
                for (int oq = 0, at = width + 1 - pad; oq < q; oq++, at += stride) {
                    y[out + op * q + oq] = buf[at];
                }
            }
        });
    }

    /** buf[1 + i] = the maximum of rows [r0, r1) at column i (i < w); buf[0] and buf[w + 1] = -infinity. */
    private static void columns(float[] x, int plane, int w, int r0, int r1, float[] buf) {
        int a = plane + r0 * w, n = r1 - r0, i = 0;
        buf[0] = Float.NEGATIVE_INFINITY;
        for (; i + V <= w; i += V) {
            FloatVector m = FloatVector.fromArray(S, x, a + i);
            for (int r = 1; r < n; r++) {
                m = m.max(FloatVector.fromArray(S, x, a + r * w + i));
            }
            m.intoArray(buf, 1 + i);
        }
        for (; i < w; i++) {
            float m = x[a + i];
            for (int r = 1; r < n; r++) {
                m = Math.max(m, x[a + r * w + i]);
            }
            buf[1 + i] = m;
        }
        buf[w + 1] = Float.NEGATIVE_INFINITY;
    }

    /** buf[width + j] = max(buf[j], buf[j + 1], buf[j + 2]) for j <= w - 1 (column j - 1's window of three), whole vectors. */
    private static void windows(float[] buf, int width, int w) {
        for (int j = 0; j < w; j += V) {
            FloatVector.fromArray(S, buf, j).max(FloatVector.fromArray(S, buf, j + 1)).max(FloatVector.fromArray(S, buf, j + 2))
                    .intoArray(buf, width + j);
        }
    }
}
