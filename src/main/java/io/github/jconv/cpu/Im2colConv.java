package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * im2col + SGEMM. Forward, per sample n and group g: unfold the group's input into
 * col[(c, r, s)][(p, q)] (C/G*R*S x P*Q, zeros where the window is in the padding), then
 * y_g[K/G x P*Q] = w_g[K/G x C/G*R*S] * col + bias. Transposed (conv_transpose2d), per (n, g):
 * col = w_g^T * y_g, then fold col back (col2im), adding each entry into the output pixel it came from.
 * The unfolded input is written straight into the GEMM's packed layout. A 1x1 stride-1 unpadded
 * transposed convolution skips the fold: the GEMM writes the output itself.
 *
 * <p>Threads: with at least two (n, g) pairs per thread, each pair is one task with its own
 * thread-confined col buffer and a serial GEMM; otherwise the pairs run one after another with a
 * parallel unfold/fold and a parallel GEMM.
 */
final class Im2colConv implements CpuConvolution {
    @Override
    public String cannotImplement(ConvGeometry g) {
        long colElements = (long) g.cPerGroup() * g.r * g.s * g.p * g.q;
        if (colElements > ConvGeometry.MAX_ELEMENTS) {
            return "im2col's column buffer would hold " + colElements + " floats, more than a Java array holds; use direct";
        }
        return null;
    }

    @Override
    public void forward(ConvGeometry g, float[] x, Weights weights, float[] bias, float[] y, Finish done, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int hw = g.h * g.w, pq = g.p * g.q, crs = cg * g.r * g.s;
        // A = w_g (K/G x C/G*R*S), packed once per call for all samples
        float[] wPacked = packWeights(g, weights, kg, crs, crs, 1, par);
        int groupStride = (int) Sgemm.packedASize(kg, crs);
        eachSampleGroup(g, par, (n, grp, inner) -> {
            int xOff = (n * g.c + grp * cg) * hw;
            int yOff = (n * g.k + grp * kg) * pq;
            CpuConvolution.fillBias(y, yOff, kg, pq, bias, grp * kg);
            float[] col = Workspace.get(Workspace.COL, Sgemm.packedBSize(crs, pq));
            unfold(g, x, xOff, col, inner);
            Sgemm.multiplyPacked(kg, pq, crs, wPacked, grp * groupStride, col, y, yOff, pq, true, inner);
            finish(done, yOff, kg, pq, inner);
        });
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights weights, float[] bias, float[] x, Finish done, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup();
        int hw = g.h * g.w, pq = g.p * g.q, crs = cg * g.r * g.s;
        // A = w_g^T (C/G*R*S x K/G): element (i, l) = w[(grp*kg + l) * crs + i]
        float[] wPacked = packWeights(g, weights, crs, kg, 1, crs, par);
        int groupStride = (int) Sgemm.packedASize(crs, kg);
        eachSampleGroup(g, par, (n, grp, inner) -> {
            int xOff = (n * g.c + grp * cg) * hw;
            int yOff = (n * g.k + grp * kg) * pq;
            CpuConvolution.fillBias(x, xOff, cg, hw, bias, grp * cg);
            float[] yPacked = Workspace.get(Workspace.PACK_B, Sgemm.packedBSize(kg, pq));
            inner.forEach(kg, l -> Sgemm.packBRow(l, kg, pq, y, yOff + l * pq, yPacked));
            if (g.isPointwise()) {
                Sgemm.multiplyPacked(cg, pq, kg, wPacked, grp * groupStride, yPacked, x, xOff, pq, true, inner);
            } else {
                float[] col = Workspace.get(Workspace.COL, (long) crs * pq);
                Sgemm.multiplyPacked(crs, pq, kg, wPacked, grp * groupStride, yPacked, col, 0, pq, false, inner);
                fold(g, col, x, xOff, inner);
            }
            finish(done, xOff, cg, hw, inner);
        });
    }

    /** Reports a (sample, group)'s finished planes [off, off + planes * plane), split over the inner workers. */
    private static void finish(Finish done, int off, int planes, int plane, Parallel inner) {
        inner.forEach(planes, i -> done.region(off + i * plane, off + (i + 1) * plane));
    }

    /**
     * Every group's m x k weight matrix (element (i, l) at w[grp*m*k... + i*rowStride + l*colStride]) packed, one group
     * after another: per call in the calling thread's weight workspace (the workers only read it, and the caller waits
     * for them, so the buffer is not reused while they run), for a plan once.
     */
    private static float[] packWeights(ConvGeometry g, Weights w, int m, int k, int rowStride, int colStride, Parallel par) {
        int groupSize = (int) Sgemm.packedASize(m, k);
        int perGroup = g.kPerGroup() * g.cPerGroup() * g.r * g.s;
        return w.packed((long) groupSize * g.groups, packed -> par.forEach(g.groups,
                grp -> Sgemm.packA(m, k, w.raw, grp * perGroup, rowStride, colStride, packed, grp * groupSize)));
    }

    /**
     * Unfolds the group's input into B = col[(c, r, s)][(p, q)] (C/G*R*S x P*Q, zeros where the window is in
     * the padding): each row is built in a thread-confined line buffer and stored with {@link Sgemm#packBRow}
     * in the GEMM's packed layout.
     */
    static void unfold(ConvGeometry g, float[] x, int xOff, float[] col, Parallel par) {
        int rs = g.r * g.s, pq = g.p * g.q, hw = g.h * g.w, crs = g.cPerGroup() * rs;
        par.forEach(crs, row -> {
            float[] line = Workspace.get(Workspace.ROW, pq);
            int c = row / rs, r = (row % rs) / g.s, s = row % g.s;
            int rowOff = r * g.dilationH - g.padTop, colOff = s * g.dilationW - g.padLeft;
            int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
            for (int p = 0; p < g.p; p++) {
                int dst = p * g.q;
                int ih = p * g.strideH + rowOff;
                if (ih < 0 || ih >= g.h) {
                    java.util.Arrays.fill(line, dst, dst + g.q, 0f);
                    continue;
                }
                java.util.Arrays.fill(line, dst, dst + q0, 0f);
                if (q1 > q0) { // an empty range (the tap's column lies in the padding) has no valid source offset
                    int src = xOff + c * hw + ih * g.w + colOff;
                    if (g.strideW == 1) {
                        System.arraycopy(x, src + q0, line, dst + q0, q1 - q0);
                    } else {
                        for (int q = q0; q < q1; q++) {
                            line[dst + q] = x[src + q * g.strideW];
                        }
                    }
                }
                java.util.Arrays.fill(line, dst + q1, dst + g.q, 0f);
            }
            Sgemm.packBRow(row, crs, pq, line, 0, col);
        });
    }

    /** The adjoint of the unfold: x[c][ih][iw] += col[(c, r, s)][(p, q)] for every in-bounds tap (col row-major). */
    static void fold(ConvGeometry g, float[] col, float[] x, int xOff, Parallel par) {
        int rs = g.r * g.s, pq = g.p * g.q, hw = g.h * g.w;
        par.forEach(g.cPerGroup(), c -> {
            for (int r = 0; r < g.r; r++) {
                int rowOff = r * g.dilationH - g.padTop;
                int p0 = Ranges.first(rowOff, g.strideH, g.p), p1 = Ranges.end(rowOff, g.strideH, g.h, g.p);
                for (int s = 0; s < g.s; s++) {
                    int colOff = s * g.dilationW - g.padLeft;
                    int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                    int base = (c * rs + r * g.s + s) * pq;
                    for (int p = p0; p < p1; p++) {
                        int xRow = xOff + c * hw + (p * g.strideH + rowOff) * g.w + colOff;
                        DirectConv.scatter(x, xRow, g.strideW, col, base + p * g.q, q0, q1, 1f);
                    }
                }
            }
        });
    }

    /** The body for one (sample, group) pair; {@code inner} is the parallelism it may use itself. */
    interface SampleGroupTask {
        void run(int n, int group, Parallel inner);
    }

    /** Runs {@code task} for every (n, g): as parallel tasks when there are enough, else in turn with inner parallelism. */
    static void eachSampleGroup(ConvGeometry g, Parallel par, SampleGroupTask task) {
        int pairs = g.n * g.groups;
        if (par.threads() > 1 && pairs >= 2 * par.threads()) {
            par.forEach(pairs, i -> task.run(i / g.groups, i % g.groups, Parallel.SERIAL));
        } else {
            for (int i = 0; i < pairs; i++) {
                task.run(i / g.groups, i % g.groups, par);
            }
        }
    }
}
