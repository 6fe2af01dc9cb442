package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;

/**
 * The weight and bias gradients of conv2d on the CPU, in {@link ConvGeometry}'s forward names: x is N x C x H x W, dy
 * (the gradient of the output) N x K x P x Q, dw K x C/G x R x S, with
 * {@code dw[k][c][r][s] = sum over n, p, q of dy[n][k][p][q] * x[n][g*C/G + c][p*sH - pt + r*dH][q*sW - pl + s*dW]}
 * (0 in the padding). As in PyTorch, every tap of every output pixel is a product, the padding's zeros included: a NaN
 * or infinity in dy next to the border makes NaN of the taps that read padding there (0 x inf), not 0.
 * conv_transpose2d's weight gradient is this with x and dy swapped: the caller passes its dy as x and its x as dy, with
 * the transposed geometry (whose forward names already say which is which).
 *
 * <p>Deterministic: every element of dw is reduced in an order fixed by the geometry alone (never by the thread count,
 * which only decides who computes which elements), so results are bit-identical with 1 or 64 threads.
 * <ul>
 *   <li>{@code reference}: float64 products and sums, the oracle;</li>
 *   <li>{@code im2col}: per group, dw_g^T += col(x)[:, chunk] * dy_g[:, chunk]^T over chunks of the output pixels
 *       ({@link #transposedSums});</li>
 *   <li>{@code direct}: with the Vector API, {@link VectorWgradBroadcast} (vectorised over output channels, any stride)
 *       where a group has at least one vector of output channels, else for stride 1 {@link VectorWeightGradient}'s
 *       register-tiled dot products over the padded input; otherwise, per (k, c) pair and tap, row dot products of dy
 *       and the shifted x, summed over rows and samples in float64.</li>
 * </ul>
 */
public final class WeightGradient {
    private WeightGradient() {
    }

    /** Null when {@code a} computes the weight gradient of g on the CPU, otherwise why not. */
    public static String cannotImplement(Algorithm a, ConvGeometry g) {
        switch (a) {
            case REFERENCE:
            case DIRECT:
                return null;
            case IM2COL: {
                long col = (long) g.cPerGroup() * g.r * g.s * g.p * g.q;
                return col > ConvGeometry.MAX_ELEMENTS ? "im2col's column buffer would hold " + col + " floats, more than a Java array holds; use direct" : null;
            }
            default:
                return "the weight gradient runs on reference, direct or im2col on the cpu backend, not " + a;
        }
    }

    /** direct where one of its Vector API kernels takes g, else im2col when it can, else direct. */
    public static Algorithm choose(ConvGeometry g) {
        if (Sgemm.VECTOR && (VectorWgradBroadcast.applies(g) || VectorWeightGradient.applies(g))) {
            return Algorithm.DIRECT;
        }
        return cannotImplement(Algorithm.IM2COL, g) == null ? Algorithm.IM2COL : Algorithm.DIRECT;
    }

    /** dw (overwritten) from x and dy with algorithm {@code a}. */
    public static void run(Algorithm a, ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par) {
        switch (a) {
            case REFERENCE: {
                double[] d = reference(g, x, dy, par);
                for (int i = 0; i < d.length; i++) {
                    dw[i] = (float) d[i];
                }
                return;
            }
            case IM2COL:
                if (Sgemm.VECTOR || allFinite(dy)) {
                    transposedSums(g, x, dy, dw, par, Sgemm.VECTOR ? WeightGradient::vectorGroup : WeightGradient::scalarGroup);
                } else { // the portable GEMM skips zeros of the unfolded input, so would drop 0 x inf: the exact direct form
                    direct(g, x, dy, dw, par);
                }
                return;
            case DIRECT:
                if (Sgemm.VECTOR && VectorWgradBroadcast.applies(g)) { // every output pixel, exactly; any stride
                    VectorWgradBroadcast.run(g, x, dy, dw, par);
                } else if (Sgemm.VECTOR && VectorWeightGradient.applies(g)) {
                    // this kernel also multiplies zeros of dy by input past a row's end: exact for finite input only
                    transposedSums(g, x, dy, dw, par, allFinite(x) ? VectorWeightGradient::group : WeightGradient::vectorGroup);
                } else {
                    direct(g, x, dy, dw, par);
                }
                return;
            default:
                throw new IllegalArgumentException(cannotImplement(a, g));
        }
    }

    private static boolean allFinite(float[] a) {
        for (float v : a) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }

    /** The float64 oracle: every dw element summed over (n, p, q) in that order, the padding's zeros multiplied too. */
    public static double[] reference(ConvGeometry g, float[] x, float[] dy, Parallel par) {
        int cg = g.cPerGroup(), rs = g.r * g.s;
        double[] dw = new double[g.k * cg * rs];
        par.forEach(g.k * cg, kc -> {
            int k = kc / cg, ci = kc % cg, c = (k / g.kPerGroup()) * cg + ci;
            for (int r = 0; r < g.r; r++) {
                for (int s = 0; s < g.s; s++) {
                    double sum = 0;
                    for (int n = 0; n < g.n; n++) {
                        for (int p = 0; p < g.p; p++) {
                            int ih = p * g.strideH - g.padTop + r * g.dilationH;
                            for (int q = 0; q < g.q; q++) {
                                int iw = q * g.strideW - g.padLeft + s * g.dilationW;
                                double xv = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w ? x[((n * g.c + c) * g.h + ih) * g.w + iw] : 0.0;
                                sum += dy[((n * g.k + k) * g.p + p) * g.q + q] * xv;
                            }
                        }
                    }
                    dw[kc * rs + r * g.s + s] = sum;
                }
            }
        });
        return dw;
    }

    /** Row dot products in float (four partial sums), summed over rows and samples in float64: the portable direct form. */
    static void direct(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par) {
        boolean finiteDy = allFinite(dy); // else the padding's products matter (0 x inf = NaN)
        int cg = g.cPerGroup(), rs = g.r * g.s, pq = g.p * g.q, hw = g.h * g.w;
        par.forEach(g.k * cg, kc -> {
            int k = kc / cg, ci = kc % cg, c = (k / g.kPerGroup()) * cg + ci;
            for (int r = 0; r < g.r; r++) {
                int rowOff = r * g.dilationH - g.padTop;
                int p0 = Ranges.first(rowOff, g.strideH, g.p), p1 = Ranges.end(rowOff, g.strideH, g.h, g.p);
                for (int s = 0; s < g.s; s++) {
                    int colOff = s * g.dilationW - g.padLeft;
                    int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
                    double sum = 0;
                    for (int n = 0; n < g.n && q1 > q0; n++) {
                        int dyPlane = (n * g.k + k) * pq, xPlane = (n * g.c + c) * hw;
                        for (int p = p0; p < p1; p++) {
                            sum += dot(dy, dyPlane + p * g.q, x, xPlane + (p * g.strideH + rowOff) * g.w + colOff, g.strideW, q0, q1);
                        }
                    }
                    dw[kc * rs + r * g.s + s] = (float) (finiteDy ? sum : sum + paddingProducts(g, dy, k, p0, p1, q0, q1));
                }
            }
        });
    }

    /**
     * The sum of dy times the padding's zeros for one channel k and tap (rows outside [p0, p1) or columns outside
     * [q0, q1) read padding): 0 unless such a dy is NaN or infinite, then NaN, as the product is in IEEE arithmetic.
     */
    private static double paddingProducts(ConvGeometry g, float[] dy, int k, int p0, int p1, int q0, int q1) {
        double sum = 0;
        for (int n = 0; n < g.n; n++) {
            int plane = (n * g.k + k) * g.p * g.q;
            for (int p = 0; p < g.p; p++) {
                boolean rowInside = p >= p0 && p < p1;
                for (int q = 0; q < g.q; q++) {
                    if (!rowInside || q < q0 || q >= q1) {
                        sum += 0.0 * dy[plane + p * g.q + q];
                    }
                }
            }
        }
        return sum;
    }

    /** sum of a[aRow + q] * b[bRow + q * stride] for q in [q0, q1), in four interleaved float sums. */
    private static float dot(float[] a, int aRow, float[] b, int bRow, int stride, int q0, int q1) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int q = q0;
        for (; q + 3 < q1; q += 4) {
            s0 += a[aRow + q] * b[bRow + q * stride];
            s1 += a[aRow + q + 1] * b[bRow + (q + 1) * stride];
            s2 += a[aRow + q + 2] * b[bRow + (q + 2) * stride];
            s3 += a[aRow + q + 3] * b[bRow + (q + 3) * stride];
        }
        for (; q < q1; q++) {
            s0 += a[aRow + q] * b[bRow + q * stride];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** Output pixels per GEMM step (a multiple of the GEMM's 128-deep blocks): bounds the packed operands, not the sums. */
    static final int PIXEL_CHUNK = 1024;
    /** Taps per task of the Vector API path: its packed slab of the unfolded input (96 x 1024 floats) stays in L2. */
    static final int SLAB = 8 * VectorSgemm.MR;

    /**
     * dw through its transpose, per group (dw_g^T, C/G*R*S x K/G, then transposed into dw): {@link VectorWeightGradient}'s
     * direct sums ({@code direct}), or the GEMM form: dw_g^T = sum over chunks of {@link #PIXEL_CHUNK} pixels of the
     * flattened (n, p, q) range (with the Vector API; per sample without) of col(x)[:, chunk] * dy_g[:, chunk]^T. (The
     * GEMM's rows are then the many taps, not the few channels.) With the Vector API each chunk packs dy^T once, and
     * tasks of {@link #SLAB} taps unfold their rows straight into the GEMM's packed layout in their own workspace and multiply (nothing is unfolded
     * twice or stored unpacked); without it, a plain unfold and {@link Sgemm#multiply}. Groups in parallel when there are
     * enough of them, else the slabs (or the GEMM's tiles). Every element is summed in an order fixed by the geometry
     * (samples, chunks, 128-deep blocks, the register tile's loop), never by the thread count.
     */
    /** One group's transposed sums: adds {@code sum[tap * K/G + k]} over all samples. */
    @FunctionalInterface
    interface GroupSums {
        void add(ConvGeometry g, float[] x, float[] dy, int grp, float[] sum, Parallel par);
    }

    static void transposedSums(ConvGeometry g, float[] x, float[] dy, float[] dw, Parallel par, GroupSums sums) {
        int kg = g.kPerGroup(), crs = g.cPerGroup() * g.r * g.s;
        java.util.Arrays.fill(dw, 0, g.k * crs, 0f);
        if (g.p * g.q == 0) {
            return;
        }
        forEachGroup(g, par, (grp, inner) -> {
            float[] sum = Workspace.get(Workspace.MATRIX, (long) crs * kg); // dw_g^T
            java.util.Arrays.fill(sum, 0, crs * kg, 0f);
            sums.add(g, x, dy, grp, sum, inner);
            for (int j = 0; j < kg; j++) {
                int row = (grp * kg + j) * crs;
                for (int i = 0; i < crs; i++) {
                    dw[row + i] = sum[i * kg + j];
                }
            }
        });
    }

    /** One group's work, given the parallelism it may use inside. */
    @FunctionalInterface
    interface PerGroup {
        void run(int grp, Parallel inner);
    }

    /**
     * Runs every group: the groups in parallel (each serial inside) when there are at least twice as many as threads,
     * else one after another, each with all of {@code par}. Which way changes no result: each group's sums have a fixed order.
     */
    static void forEachGroup(ConvGeometry g, Parallel par, PerGroup body) {
        if (par.threads() > 1 && g.groups >= 2 * par.threads()) {
            par.forEach(g.groups, grp -> body.run(grp, Parallel.SERIAL));
        } else {
            for (int grp = 0; grp < g.groups; grp++) {
                body.run(grp, par);
            }
        }
    }

    private static void vectorGroup(ConvGeometry g, float[] x, float[] dy, int grp, float[] sum, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s, pq = g.p * g.q;
        int slabs = VectorSgemm.ceilDiv(crs, SLAB), panels = VectorSgemm.ceilDiv(kg, VectorSgemm.NR);
        long pixels = (long) g.n * pq;
        for (long m0 = 0; m0 < pixels; m0 += PIXEL_CHUNK) { // the chunk may span samples
            int len = (int) Math.min(PIXEL_CHUNK, pixels - m0);
            long start = m0;
            // dy^T of the chunk, gathered row-major (K/G x len), then packed once for every slab
            float[] dyT = Workspace.get(Workspace.SCRATCH, (long) kg * len);
            forEachSegment(pq, start, len, (n, pix, seg, at) -> {
                for (int j = 0; j < kg; j++) {
                    System.arraycopy(dy, (n * g.k + grp * kg + j) * pq + pix, dyT, j * len + at, seg);
                }
            });
            float[] bp = Workspace.get(Workspace.PACK_B, VectorSgemm.packedBSize(len, kg));
            VectorSgemm.packB(len, kg, dyT, 0, 1, len, bp);
            par.forEach(slabs, s -> {
                int i0 = s * SLAB, rows = Math.min(SLAB, crs - i0);
                float[] ap = Workspace.get(Workspace.COL, VectorSgemm.packedASize(rows, len));
                float[] lines = Workspace.get(Workspace.ROW, (long) VectorSgemm.MR * len); // one register panel of rows
                for (int p = 0; p * VectorSgemm.MR < rows; p++) {
                    for (int r = 0; r < VectorSgemm.MR; r++) {
                        int i = p * VectorSgemm.MR + r, row = i0 + i, at0 = r * len;
                        if (i < rows) {
                            forEachSegment(pq, start, len, (n, pix, seg, at) ->
                                    unfoldRow(g, x, (n * g.c + grp * cg) * g.h * g.w, row, pix, seg, lines, at0 + at));
                        } else {
                            java.util.Arrays.fill(lines, at0, at0 + len, 0f);
                        }
                    }
                    VectorSgemm.packAPanel(p, rows, len, lines, ap, 0);
                }
                VectorSgemm.multiplyPacked(rows, kg, len, ap, 0, bp, sum, i0 * kg, kg, 0, panels);
            });
        }
    }

    private interface Segment {
        void run(int n, int pix, int len, int at);
    }

    /** Splits pixels [m0, m0 + len) of the flattened (n, p, q) range into per-sample runs: sample, first pixel, length, offset. */
    private static void forEachSegment(int pq, long m0, int len, Segment body) {
        for (int at = 0; at < len; ) {
            long m = m0 + at;
            int n = (int) (m / pq), pix = (int) (m % pq), seg = Math.min(len - at, pq - pix);
            body.run(n, pix, seg, at);
            at += seg;
        }
    }

    private static void scalarGroup(ConvGeometry g, float[] x, float[] dy, int grp, float[] sum, Parallel par) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s, pq = g.p * g.q, hw = g.h * g.w;
        float[] col = Workspace.get(Workspace.COL, (long) crs * Math.min(PIXEL_CHUNK, pq));
        for (int n = 0; n < g.n; n++) {
            int xOff = (n * g.c + grp * cg) * hw;
            for (int m0 = 0; m0 < pq; m0 += PIXEL_CHUNK) {
                int len = Math.min(PIXEL_CHUNK, pq - m0), start = m0;
                par.forEach(crs, row -> unfoldRow(g, x, xOff, row, start, len, col, row * len));
                Sgemm.multiply(crs, kg, len, col, 0, len, 1, dy, (n * g.k + grp * kg) * pq + m0, 1, pq, sum, 0, kg, true, par);
            }
        }
    }

    /**
     * dst[dstOff + i] = the input value tap {@code row} = (c, r, s) of output pixel m0 + i reads (0 in the padding), for
     * the group's input at x[xOff ..] and i in [0, len).
     */
    static void unfoldRow(ConvGeometry g, float[] x, int xOff, int row, int m0, int len, float[] dst, int dstOff) {
        int rs = g.r * g.s;
        int c = row / rs, r = (row % rs) / g.s, s = row % g.s;
        int rowOff = r * g.dilationH - g.padTop, colOff = s * g.dilationW - g.padLeft;
        int q0 = Ranges.first(colOff, g.strideW, g.q), q1 = Ranges.end(colOff, g.strideW, g.w, g.q);
        for (int m = m0; m < m0 + len; ) {
            int p = m / g.q, qa = m % g.q, qb = Math.min(g.q, qa + (m0 + len - m));
            int out = dstOff + (m - m0);
            int ih = p * g.strideH + rowOff;
            int lo = Math.max(qa, q0), hi = Math.min(qb, q1);
            if (ih < 0 || ih >= g.h || hi <= lo) {
                java.util.Arrays.fill(dst, out, out + qb - qa, 0f);
            } else {
                int src = xOff + c * g.h * g.w + ih * g.w + colOff;
                java.util.Arrays.fill(dst, out, out + lo - qa, 0f);
                if (g.strideW == 1) {
                    System.arraycopy(x, src + lo, dst, out + lo - qa, hi - lo);
                } else {
                    for (int q = lo; q < hi; q++) {
                        dst[out + q - qa] = x[src + q * g.strideW];
                    }
                }
                java.util.Arrays.fill(dst, out + hi - qa, out + qb - qa, 0f);
            }
            m += qb - qa;
        }
    }

    /** db[k] = sum over n, p, q of dy[n][k][p][q], in float64, for dy of shape N x K x (P*Q). */
    public static void bias(float[] dy, int n, int k, int pq, float[] db, Parallel par) {
        par.forEach(k, kk -> {
            double sum = 0;
            for (int i = 0; i < n; i++) {
                int base = (i * k + kk) * pq;
                for (int j = 0; j < pq; j++) {
                    sum += dy[base + j];
                }
            }
            db[kk] = (float) sum;
        });
    }
}
