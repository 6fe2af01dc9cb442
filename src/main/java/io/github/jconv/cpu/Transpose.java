package io.github.jconv.cpu;

/**
 * Batched matrix transposes, for the channels-last conversion ({@link io.github.jconv.Layout}): each of n row-major rows
 * x cols matrices of src (rows * cols floats apart) into its cols x rows transpose in dst. Tasks take one matrix's run of
 * 16 rows at a time; with the Vector API on 16 lanes every whole 16 x 16 block goes through the registers
 * ({@link VectorDirectChannels#transpose16}: 16 vector loads, 4 butterfly stages, 16 vector stores, each a 64-byte line),
 * the rest element by element. A scalar 32 x 32 blocked loop (the JIT leaves it scalar) moved 8 x 256 x 56 x 56 floats
 * at about a third of the rate (see the README).
 */
public final class Transpose {
    private static final int B = 16;

    private Transpose() {
    }

    /** dst[m][j][i] = src[m][i][j] for m < n, i < rows, j < cols, over {@code threads} (0: all cores). */
    public static void planes(float[] src, float[] dst, int n, int rows, int cols, int threads) {
        long size = (long) n * rows * cols;
        if (src.length < size || dst.length < size) {
            throw new IllegalArgumentException("transpose of " + n + " x " + rows + " x " + cols + ": arrays of " + src.length + " and " + dst.length);
        }
        boolean registers = Sgemm.VECTOR && VectorDirectChannels.V == B;
        int strips = (rows + B - 1) / B;
        Parallel.of(threads).forEach(n * strips, task -> {
            int base = task / strips * rows * cols, r0 = task % strips * B, r1 = Math.min(rows, r0 + B);
            int c = 0;
            if (registers && r1 - r0 == B) {
                for (; c + B <= cols; c += B) {
                    VectorDirectChannels.transpose16(src, base + r0 * cols + c, cols, dst, base + c * rows + r0, rows);
                }
            }
            for (int r = r0; r < r1; r++) { // the strip's last columns, or all of a strip of fewer than 16 rows
                for (int j = c, s = base + r * cols; j < cols; j++) {
                    dst[base + j * rows + r] = src[s + j];
                }
            }
        });
    }
}
