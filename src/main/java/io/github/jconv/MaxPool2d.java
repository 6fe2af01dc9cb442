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

    /** out = max_pool2d(in); both on the same device, out of {@link #outputShape}. */
    public static void run(DeviceTensor in, DeviceTensor out, int kernel, int stride, int padding) {
        int[] s = in.shape(), o = outputShape(s, kernel, stride, padding);
        if (!Arrays.equals(o, out.shape()) || in.device() != out.device()) {
            throw new InvalidConvolutionException("max_pool2d output must be " + Arrays.toString(o) + " on " + in.device() + ", got "
                    + Arrays.toString(out.shape()) + " on " + out.device());
        }
        Device dev = in.device();
        if (dev.isCpu()) {
            pool(in.host(), s, out.host(), o, kernel, stride, padding);
            return;
        }
        synchronized (dev) {
            // jconv's pool.cu, also on a cudnn device (the same GPU and stream)
            (dev.backend() instanceof CudaBackend cuda ? cuda : CudaBackend.CUDA).maxPoolOnDevice(dev.arena(), s, o, kernel, stride, padding, in.buffer(), out.buffer());
        }
    }

    private static void pool(float[] x, int[] s, float[] y, int[] o, int k, int stride, int pad) {
        for (int plane = 0; plane < s[0] * s[1]; plane++) {
            for (int p = 0; p < o[2]; p++) {
                for (int q = 0; q < o[3]; q++) {
                    float m = Float.NEGATIVE_INFINITY;
                    for (int r = 0; r < k && !Float.isNaN(m); r++) {
                        int ih = p * stride - pad + r;
                        for (int c = 0; c < k && ih >= 0 && ih < s[2]; c++) {
                            int iw = q * stride - pad + c;
                            if (iw >= 0 && iw < s[3]) {
                                float v = x[(plane * s[2] + ih) * s[3] + iw];
                                if (v > m || Float.isNaN(v)) {
                                    m = v;
                                    if (Float.isNaN(v)) {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    y[(plane * o[2] + p) * o[3] + q] = m;
                }
            }
        }
    }
}
