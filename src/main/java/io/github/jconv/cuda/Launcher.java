package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * The host side of one kernel file: it says whether it can take a problem (and why not), sizes grid and
 * block, and launches. Buffers follow the operation: {@code in} is its input, {@code out} its output
 * (for conv_transpose2d: in = y, out = x in {@link ConvGeometry}'s names).
 */
abstract class Launcher {
    /** Threads per block of the one-dimensional (grid-stride) kernels. */
    static final int BLOCK = 256;
    /** At most this many blocks in a grid-stride launch (enough to fill an H100: 132 SMs x 2048 threads). */
    static final int MAX_BLOCKS = 4096;
    /** A GPU's largest grid.y and grid.z (cuLaunchKernel refuses more; the emulator checks it too). */
    static final int MAX_GRID_YZ = 65535;
    /** What the launchers split grid.y and grid.z at: {@link #MAX_GRID_YZ}, lowered by tests to reach the splits cheaply. */
    static volatile int gridYZLimit = MAX_GRID_YZ;
    /**
     * Test mode: when > 0, a grid-stride launch gets a grid so small that each thread's loop takes at least this
     * many trips (where the problem has that many elements), so the second and later trips run in the tests.
     */
    static volatile int gridStrideTrips;

    /** Null when this launcher can compute {@code g}, otherwise why not. */
    abstract String cannotImplement(ConvGeometry g);

    /**
     * out = epilogue(op(in, w) + bias, residual), the epilogue in the kernels' final stores (bias and residual may be
     * null; a residual is there exactly when the epilogue adds one).
     */
    abstract void run(DeviceArena arena, ConvGeometry g, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep,
                      DeviceBuffer residual, DeviceBuffer out);

    /** The kernel's ConvParams struct (cuda-kernels/jconv_common.cuh), fields in order. */
    static int[] params(ConvGeometry g, int sample, int group, Epilogue ep) {
        int[] codes = ep.kernelCodes();
        return new int[] {g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.p, g.q, g.padTop, g.padLeft, g.strideH, g.strideW,
                g.dilationH, g.dilationW, g.groups, g.hasBias ? 1 : 0, sample, group, codes[0], codes[1]};
    }

    static int[] params(ConvGeometry g, Epilogue ep) {
        return params(g, 0, 0, ep);
    }

    static int[] params(ConvGeometry g) {
        return params(g, 0, 0, Epilogue.none());
    }

    /** Grid for a grid-stride loop over {@code total} elements. */
    static int[] grid1d(long total) {
        int trips = gridStrideTrips;
        long blocks = trips > 0 ? total / ((long) BLOCK * trips) : (total + BLOCK - 1) / BLOCK;
        return new int[] {(int) Math.max(1, Math.min(MAX_BLOCKS, blocks)), 1, 1};
    }

    static final int[] BLOCK_1D = {BLOCK, 1, 1};

    /** Launches {@code kernel} with device pointers to the given buffers (null means: not read, pass {@code out}). */
    static void launch(DeviceArena arena, String kernel, int[] grid, int[] block, int[] params, DeviceBuffer out,
                       DeviceBuffer... buffers) {
        long[] handles = new long[buffers.length];
        long[] offsets = new long[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            handles[i] = (buffers[i] == null ? out : buffers[i]).handle();
        }
        arena.stream().launch(kernel, grid, block, params, handles, offsets);
    }

    /** Launches with explicit byte offsets into the buffers. */
    static void launch(DeviceArena arena, String kernel, int[] grid, int[] block, int[] params, DeviceBuffer[] buffers,
                       long[] byteOffsets) {
        long[] handles = new long[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            handles[i] = buffers[i].handle();
        }
        arena.stream().launch(kernel, grid, block, params, handles, byteOffsets);
    }
}
