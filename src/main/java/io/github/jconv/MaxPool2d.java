package io.github.jconv;

import io.github.jconv.cuda.CudaBackend;

import java.util.Arrays;

/**
 * Max pooling with a square window, as {@code torch.nn.functional.max_pool2d(x, k, stride, padding)} (no dilation, no
 * ceil mode): padded positions never win, a NaN in a window gives NaN. On device tensors: on a GPU a kernel queued
 * on the device's stream (cuda-kernels/pool.cu), on the CPU plain loops. For the network trunks (ResNet's pool
 * after the stem).
 */
public final class MaxPool2d {
    private MaxPool2d() {
    }

    /** The output shape for an N x C x H x W input: floor((H + 2p - k) / s) + 1 (likewise W). */
    public static int[] outputShape(int[] in, int kernel, int stride, int padding) {
        if (in.length != 4 || kernel < 1 || stride < 1 || padding < 0 || 2 * padding > kernel) {
            throw new InvalidConvolutionException("max_pool2d of " + Arrays.toString(in) + " with kernel " + kernel + ", stride " + stride
                    + ", padding " + padding + ": needs 4 dimensions, kernel and stride >= 1, 0 <= padding <= kernel / 2");
        }
        long p = ConvGeometry.convOutputSize(in[2], 2 * padding, kernel, stride, 1);
        long q = ConvGeometry.convOutputSize(in[3], 2 * padding, kernel, stride, 1);
        if (p < 1 || q < 1) {
            throw new InvalidConvolutionException("max_pool2d window " + kernel + " is larger than the padded input " + Arrays.toString(in));
        }
        return new int[] {in[0], in[1], (int) p, (int) q};
    }

    /**
     * out = max_pool2d(in); both on the same device, NCHW and of one dtype, out of {@link #outputShape}. Half-precision
     * tensors are widened to float32, pooled and rounded back, which is exact (the maximum is one of the values). On the
     * CPU on all cores ({@link #run(DeviceTensor, DeviceTensor, int, int, int, int)} takes a thread count).
     */
    public static void run(DeviceTensor in, DeviceTensor out, int kernel, int stride, int padding) {
        run(in, out, kernel, stride, padding, 0);
    }

    /**
     * As {@link #run(DeviceTensor, DeviceTensor, int, int, int)}, on the CPU on {@code threads} threads (0: all cores; as
     * a plan's {@code threads}, so a network's pool runs on its layers' threads); a GPU ignores it.
     */
    public static void run(DeviceTensor in, DeviceTensor out, int kernel, int stride, int padding, int threads) {
        io.github.jconv.cpu.Parallel.requireValidThreads(threads);
        int[] s = in.shape(), o = outputShape(s, kernel, stride, padding);
        if (!Arrays.equals(o, out.shape()) || in.device() != out.device()) {
            throw new InvalidConvolutionException("max_pool2d output must be " + Arrays.toString(o) + " on " + in.device() + ", got "
                    + Arrays.toString(out.shape()) + " on " + out.device());
        }
        if (in.layout() != Layout.NCHW || out.layout() != Layout.NCHW) {
            throw new InvalidConvolutionException("max_pool2d runs on nchw tensors, got " + in.layout().label() + " -> " + out.layout().label());
        }
        if (in.dtype() != out.dtype()) {
            throw new InvalidConvolutionException("max_pool2d keeps the dtype, got " + in.dtype().label() + " -> " + out.dtype().label());
        }
        Device dev = in.device();
        if (in.dtype() != Dtype.FP32) { // widened, pooled, rounded back: exact, the maximum is one of the values
            try (DeviceTensor wide = dev.allocate(s); DeviceTensor pooled = dev.allocate(o)) {
                synchronized (dev) {
                    in.widenInto(wide);
                }
                run(wide, pooled, kernel, stride, padding, threads);
                synchronized (dev) {
                    out.roundFrom(pooled);
                }
            }
            return;
        }
        if (dev.isCpu()) {
            pool(in.host(), s, out.host(), o, kernel, stride, padding, threads);
            return;
        }
        synchronized (dev) {
            // jconv's pool.cu, also on a cudnn device (the same GPU and stream)
            CudaBackend.kernelsFor(dev.backend()).maxPoolOnDevice(dev.arena(), s, o, kernel, stride, padding, in.buffer(), out.buffer());
        }
    }

    /**
     * Floats between the rows copied for 3-wide windows: a constant, so the JIT vectorises the loops over them (with a
     * row offset it only knows at run time, JDK 17's and 25's C2 leave Math.max loops scalar), and not a multiple of 4 KiB.
     */
    private static final int PITCH = 1040;

    /**
     * The window's maximum taken in two passes per output row: over the window's input rows, column by column, then over
     * each output's columns of that row, both with {@link Math#max(float, float)} (branch-free, which the JIT compiles
     * to max instructions): NaN wins as in PyTorch; the one difference is the sign of a zero maximum when a window holds
     * both -0 and +0 (here +0; PyTorch keeps whichever comes first). Planes in parallel.
     *
     * <p>3-wide windows (ResNet's pool) copy the window's rows {@link #PITCH} apart and take whole rows of maxima in loops
     * the JIT vectorises: the columns' maxima, then every window start's maximum (win[i] over columns i..i+2), of which
     * the outputs pick every stride-th. Other windows take a scalar loop per output. ResNet-50's pool at batch 1 (64 x 112 x
     * 112, AMD EPYC Zen 5, 2 threads, medians of 100 ms slots alternating in one process): 0.46 -> 0.33 ms on JDK 17,
     * 1.20 -> 0.27 ms on JDK 25; the window maxima over shifted copies ({@link #windows3}) then 0.33 -> 0.22 ms on JDK 17,
     * 0.26 -> 0.23 ms on JDK 25; in a fresh process the pool's first 40 calls inside the trunk took 50-62 ms in all, against
     * 77-89 ms before (three processes each). Earlier (AMD EPYC Zen 4): the scalar loop with bounds tests per tap 10.4 ms,
     * two passes with a compare-and-branch 3.7-4.1 ms (random data mispredicts half the branches), two passes with
     * Math.max 1.2-1.9 ms.
     *
     * <p>With the Vector API, 3x3 windows with padding up to 1 go to the CPU backend's VectorPool instead (the same two
     * passes in vectors read straight from the rows, no copies): ResNet-50's pool 0.199-0.206 -> 0.127-0.128 ms (AMD EPYC
     * Zen 4 VM, JDK 17, 2 threads, medians of 41 slots of 50 calls, two processes each, 2026-12-05).
     */
    private static void pool(float[] x, int[] s, float[] y, int[] o, int k, int stride, int pad, int threads) {
        int h = s[2], w = s[3], p = o[2], q = o[3];
        if (io.github.jconv.cpu.CpuBackend.maxPool(x, s[0] * s[1], h, w, y, p, q, k, stride, pad, threads)) {
            return;
        }
        boolean three = k == 3 && w <= PITCH;
        // the outputs whose window lies inside the row: [qa, qb)
        int qa = Math.min(q, (pad + stride - 1) / stride), qb = Math.max(qa, Math.min(q, Math.floorDiv(w - k + pad, stride) + 1));
        io.github.jconv.cpu.Parallel.of(threads).forEach(s[0] * s[1], plane -> {
            float[][] b = buffers(w);
            float[] rows = b[0], col = b[1], win = b[2];
            int in = plane * h * w, out = plane * p * q;
            for (int op = 0; op < p; op++) {
                int r0 = Math.max(0, op * stride - pad), r1 = Math.min(h, op * stride - pad + k);
                int dst = out + op * q;
                if (three) {
                    for (int r = r0; r < r1; r++) {
                        System.arraycopy(x, in + r * w, rows, (r - r0) * PITCH, w);
                    }
                    columns3(rows, r1 - r0, col, w);
                    windows3(col, rows, win, w);
                    for (int oq = qa, c = qa * stride - pad; oq < qb; oq++, c += stride) {
                        y[dst + oq] = win[c];
                    }
                } else {
                    System.arraycopy(x, in + r0 * w, col, 0, w);
                    for (int r = r0 + 1; r < r1; r++) {
                        int row = in + r * w;
                        for (int i = 0; i < w; i++) {
                            col[i] = Math.max(col[i], x[row + i]);
                        }
                    }
                    for (int oq = qa; oq < qb; oq++) {
                        y[dst + oq] = rowMax(col, oq * stride - pad, k, w);
                    }
                }
                for (int oq = 0; oq < qa; oq++) {
                    y[dst + oq] = rowMax(col, oq * stride - pad, k, w);
                }
                for (int oq = qb; oq < q; oq++) {
                    y[dst + oq] = rowMax(col, oq * stride - pad, k, w);
                }
            }
        });
    }

    /** Per thread: the rows (3 PITCH), the columns' maxima and the windows' maxima (PITCH or w floats each), reused. */
    private static final ThreadLocal<float[][]> BUFFERS = new ThreadLocal<>();

    private static float[][] buffers(int w) {
        float[][] b = BUFFERS.get();
        if (b == null || b[1].length < w) {
            int n = Math.max(PITCH, w);
            b = new float[][] {new float[3 * PITCH], new float[n], new float[n]};
            BUFFERS.set(b);
        }
        return b;
    }

    /** col[i] = the maximum of the n (1 to 3) rows in rows, PITCH apart, at column i. */
    private static void columns3(float[] rows, int n, float[] col, int w) {
        if (n == 3) {
            for (int i = 0; i < w; i++) {
                col[i] = Math.max(Math.max(rows[i], rows[i + PITCH]), rows[i + 2 * PITCH]);
            }
        } else if (n == 2) {
            for (int i = 0; i < w; i++) {
                col[i] = Math.max(rows[i], rows[i + PITCH]);
            }
        } else {
            System.arraycopy(rows, 0, col, 0, w);
        }
    }

    /**
     * win[i] = max(col[i], col[i + 1], col[i + 2]) for i < w - 2, with col shifted by one and by two columns copied into
     * {@code shifted} (the rows' buffer, free again), PITCH apart, so every load of the loop is at the same index: read
     * at i + 1 and i + 2 of one array, JDK 17's C2 left this loop scalar (a third of the pool's time).
     */
    private static void windows3(float[] col, float[] shifted, float[] win, int w) {
        System.arraycopy(col, 1, shifted, 0, w - 1);
        System.arraycopy(col, 2, shifted, PITCH, Math.max(0, w - 2));
        for (int i = 0; i < w - 2; i++) {
            win[i] = Math.max(Math.max(col[i], shifted[i]), shifted[i + PITCH]);
        }
    }

    /** The maximum of col over the columns [c, c + k) that lie in [0, w). */
    private static float rowMax(float[] col, int c, int k, int w) {
        int c0 = Math.max(0, c), c1 = Math.min(w, c + k);
        float m = col[c0];
        for (int i = c0 + 1; i < c1; i++) {
            m = Math.max(m, col[i]);
        }
        return m;
    }
}
