package io.github.jconv;

import io.github.jconv.cpu.Parallel;

import java.util.Arrays;

/**
 * {@code out = torch.cat([a, b[:, :, ::stride, ::stride]], dim=1)}: a's channels, then b's every stride-th row and column,
 * on the CPU device, float32 NCHW. For the network trunks: a ResNet block's last 1 x 1 convolution and its downsample
 * projection (a strided 1 x 1 convolution of the block's input, added as the residual) are one 1 x 1 convolution over
 * this concatenation, with the two weight matrices side by side ({@code Network.Compiled}).
 */
public final class ChannelConcat {
    private ChannelConcat() {
    }

    /** The output shape: a's with a's and b's channels, where b subsampled by {@code stride} has a's batch, height and width. */
    public static int[] outputShape(int[] a, int[] b, int stride) {
        if (a.length != 4 || b.length != 4 || stride < 1 || a[0] != b[0] || (b[2] + stride - 1) / stride != a[2]
                || (b[3] + stride - 1) / stride != a[3]) {
            throw new InvalidConvolutionException("channel concatenation of " + Arrays.toString(a) + " and " + Arrays.toString(b) + " at stride "
                    + stride + ": needs two N x C x H x W tensors of one batch, the second's H and W over the stride (rounded up) equal to"
                    + " the first's");
        }
        return new int[] {a[0], a[1] + b[1], a[2], a[3]};
    }

    /** Writes the concatenation into {@code out} ({@link #outputShape}); all three on one CPU device, float32 NCHW. */
    public static void run(DeviceTensor a, DeviceTensor b, int stride, DeviceTensor out, Parallel par) {
        int[] sa = a.shape(), sb = b.shape(), so = outputShape(sa, sb, stride);
        if (!Arrays.equals(so, out.shape())) {
            throw new InvalidConvolutionException("channel concatenation output must be " + Arrays.toString(so) + ", got "
                    + Arrays.toString(out.shape()));
        }
        for (DeviceTensor t : new DeviceTensor[] {a, b, out}) {
            if (!t.device().isCpu() || t.device() != out.device() || t.dtype() != Dtype.FP32 || t.layout() != Layout.NCHW) {
                throw new InvalidConvolutionException("channel concatenation runs on float32 nchw tensors of one cpu device, got a "
                        + t.dtype().label() + " " + t.layout().label() + " tensor on " + t.device());
            }
        }
        float[] x = a.host(), z = b.host(), y = out.host();
        int n = sa[0], ca = sa[1], cb = sb[1], c = ca + cb, h = sa[2], w = sa[3], hw = h * w, hb = sb[2], wb = sb[3];
        par.forEach(n * c, plane -> { // one output channel plane per task
            int s = plane / c, ch = plane % c, dst = plane * hw;
            if (ch < ca) {
                System.arraycopy(x, (s * ca + ch) * hw, y, dst, hw);
                return;
            }
            int src = (s * cb + ch - ca) * hb * wb;
            for (int i = 0; i < h; i++, dst += w) {
                int row = src + i * stride * wb;
                if (stride == 1) {
                    System.arraycopy(z, row, y, dst, w);
                } else {
                    for (int j = 0; j < w; j++) {
                        y[dst + j] = z[row + j * stride];
                    }
                }
            }
        });
    }
}
