package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * cuda-kernels/im2col.cu with sgemm.cu, a chunk of samples at a time ({@link #samplesPerChunk}), all groups at once.
 * Forward: unfold the chunk into col (one C/G*R*S x P*Q block per (sample, group)), then one batched GEMM
 * y_(n,g) += w_g * col_(n,g) on a bias-filled y, the epilogue in the GEMM's store. conv_transpose2d: one batched GEMM
 * col_(n,g) = w_g^T * y_(n,g), then one fold of col into the chunk's x (gather form, bias and epilogue included).
 */
final class Im2colLauncher extends Launcher {
    /** The column buffer holds at most this many floats (64 MiB), or one sample's when that is larger. */
    static final long COL_BUDGET_FLOATS = 16L << 20;
    /** {@link #COL_BUDGET_FLOATS}, lowered by tests to run several chunks on small problems. */
    static volatile long colBudgetFloats = COL_BUDGET_FLOATS;

    @Override
    String cannotImplement(ConvGeometry g) {
        long col = (long) g.cPerGroup() * g.r * g.s * g.p * g.q;
        if (col > Integer.MAX_VALUE) {
            return "im2col's column buffer would hold " + col + " floats (the GEMM's sizes are 32-bit); use implicit-gemm";
        }
        if ((long) g.k * g.p * g.q > Integer.MAX_VALUE || (long) g.c * g.h * g.w > Integer.MAX_VALUE || col * g.groups > Integer.MAX_VALUE) {
            return "one sample has more than 2^31 - 1 elements (the batched GEMM's strides are 32-bit); use implicit-gemm";
        }
        return null;
    }

    /** Samples per chunk: as many as the column budget holds, at least one. */
    static int samplesPerChunk(ConvGeometry g) {
        long perSample = (long) g.groups * g.cPerGroup() * g.r * g.s * g.p * g.q;
        return (int) Math.max(1, Math.min(g.n, colBudgetFloats / Math.max(1, perSample)));
    }

    /** The column buffer's floats. */
    static long colFloats(ConvGeometry g) {
        return (long) samplesPerChunk(g) * g.groups * g.cPerGroup() * g.r * g.s * g.p * g.q;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer out) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s, pq = g.p * g.q;
        int chunk = samplesPerChunk(g);
        try (DeviceBuffer col = arena.allocate(colFloats(g))) {
            if (!g.transposed()) {
                launch(arena, "jconv_im2col_fprop_bias", grid1d((long) g.n * g.k * pq), BLOCK_1D, params(g), out, bias, out);
            }
            for (int n0 = 0; n0 < g.n; n0 += chunk) {
                int samples = Math.min(chunk, g.n - n0);
                long yOff = (long) n0 * g.k * pq;
                int products = samples * g.groups;
                if (!g.transposed()) {
                    launch(arena, "jconv_im2col_fprop_unfold", grid1d((long) products * crs * pq), BLOCK_1D, chunkParams(g, n0, samples, Epilogue.none()),
                            col, in, col);
                    // y_(n,g) (kg x pq at n*K*pq + g*kg*pq) += w_g (kg x crs at g*kg*crs) * col_(n,g) (crs x pq)
                    SgemmLauncher.Batch batch = new SgemmLauncher.Batch(products, g.groups, 0, kg * crs, g.groups * crs * pq, crs * pq,
                            g.k * pq, kg * pq);
                    SgemmLauncher.run(arena, batch, kg, pq, crs, w, 0, crs, 1, col, 0, pq, 1, out, yOff, pq, true, ep, res);
                } else {
                    // col_(n,g) (crs x pq) = w_g^T (crs x kg) * y_(n,g) (kg x pq)
                    SgemmLauncher.Batch batch = new SgemmLauncher.Batch(products, g.groups, 0, kg * crs, g.k * pq, kg * pq,
                            g.groups * crs * pq, crs * pq);
                    SgemmLauncher.run(arena, batch, crs, pq, kg, w, 0, 1, crs, in, yOff, pq, 1, col, 0, pq, false, Epilogue.none(), null);
                    launch(arena, "jconv_im2col_dgrad_fold", grid1d((long) samples * g.c * g.h * g.w), BLOCK_1D, chunkParams(g, n0, samples, ep),
                            out, col, bias, res, out);
                }
            }
        }
    }

    /** Im2colParams: ConvParams with its first sample, then how many. */
    private static int[] chunkParams(ConvGeometry g, int firstSample, int samples, Epilogue ep) {
        int[] conv = params(g, firstSample, 0, ep);
        int[] p = java.util.Arrays.copyOf(conv, conv.length + 1);
        p[conv.length] = samples;
        return p;
    }
}
