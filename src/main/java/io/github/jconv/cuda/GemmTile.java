package io.github.jconv.cuda;

/**
 * A block tile of cuda-kernels/jconv_gemm_mainloop.cuh: bm rows x bn columns of the product, 8 x 8 accumulators per
 * thread, so bm/8 * bn/8 threads; the kernels built on it are named by {@link #toString()} ({@code _128x64}).
 */
record GemmTile(int bm, int bn) {
    static final GemmTile T128X128 = new GemmTile(128, 128);
    static final GemmTile T128X64 = new GemmTile(128, 64);
    static final GemmTile T64X128 = new GemmTile(64, 128);
    static final GemmTile T64X64 = new GemmTile(64, 64);

    int threads() {
        return bm / 8 * (bn / 8);
    }

    int[] block() {
        return new int[] {threads(), 1, 1};
    }

    /** Tiles of this shape over a rows x cols product, times {@code products}. */
    long blocks(long rows, long cols, long products) {
        return (rows + bm - 1) / bm * ((cols + bn - 1) / bn) * products;
    }

    @Override
    public String toString() {
        return bm + "x" + bn;
    }
}
