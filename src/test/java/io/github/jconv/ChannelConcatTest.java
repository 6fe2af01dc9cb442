package io.github.jconv;

import io.github.jconv.cpu.Parallel;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** torch.cat([a, b[:, :, ::s, ::s]], dim=1), element by element, and the one-line refusals. */
class ChannelConcatTest {
    @Test
    void copiesTheFirstTensorsChannelsThenTheSecondsStridedPixels() {
        // {batch, a's channels, a's H, W, b's channels, b's H, W, stride}: odd maps (7 -> 4 at stride 2), stride 3, stride 1
        int[][] cases = {{2, 3, 4, 4, 5, 7, 7, 2}, {1, 2, 3, 2, 4, 9, 5, 3}, {3, 1, 5, 6, 2, 5, 6, 1}};
        for (int[] c : cases) {
            int n = c[0], ca = c[1], h = c[2], w = c[3], cb = c[4], hb = c[5], wb = c[6], s = c[7];
            float[] a = TestSupport.gaussian(new Random(ca), (long) n * ca * h * w), b = TestSupport.gaussian(new Random(cb), (long) n * cb * hb * wb);
            float[] want = new float[n * (ca + cb) * h * w];
            for (int i = 0; i < n; i++) {
                for (int ch = 0; ch < ca + cb; ch++) {
                    for (int y = 0; y < h; y++) {
                        for (int x = 0; x < w; x++) {
                            want[((i * (ca + cb) + ch) * h + y) * w + x] = ch < ca ? a[((i * ca + ch) * h + y) * w + x]
                                    : b[((i * cb + ch - ca) * hb + y * s) * wb + x * s];
                        }
                    }
                }
            }
            for (int threads : new int[] {1, 2}) {
                try (Device dev = Device.open("cpu"); DeviceTensor da = dev.upload(a, n, ca, h, w); DeviceTensor db = dev.upload(b, n, cb, hb, wb);
                     DeviceTensor out = dev.allocate(ChannelConcat.outputShape(da.shape(), db.shape(), s))) {
                    out.upload(new float[want.length]); // zeros: every element must be written
                    ChannelConcat.run(da, db, s, out, Parallel.of(threads));
                    assertArrayEquals(want, out.download().data(), 0f, java.util.Arrays.toString(c) + " on " + threads + " threads");
                }
            }
        }
    }

    @Test
    void mismatchedTensorsAreRefusedInOneLine() {
        assertTrue(assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.outputShape(new int[] {1, 2, 4, 4},
                new int[] {1, 3, 9, 9}, 2)).getMessage().contains("the second's H and W over the stride"), "9 / 2 rounds up to 5, not 4");
        assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.outputShape(new int[] {1, 2, 4, 4}, new int[] {2, 3, 8, 8}, 2));
        assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.outputShape(new int[] {1, 2, 4, 4}, new int[] {1, 3, 4, 4}, 0));
        try (Device dev = Device.open("cpu"); DeviceTensor a = dev.allocate(1, 2, 4, 4); DeviceTensor b = dev.allocate(1, 3, 8, 8);
             DeviceTensor wrong = dev.allocate(1, 4, 4, 4); DeviceTensor half = dev.allocate(Layout.NCHW, Dtype.FP16, 1, 5, 4, 4);
             DeviceTensor nhwc = dev.allocate(Layout.NHWC, 1, 5, 4, 4)) {
            String m = assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.run(a, b, 2, wrong, Parallel.SERIAL)).getMessage();
            assertTrue(m.contains("must be [1, 5, 4, 4]") && !m.contains("\n"), m);
            m = assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.run(a, b, 2, half, Parallel.SERIAL)).getMessage();
            assertTrue(m.contains("float32 nchw") && m.contains("fp16"), m);
            m = assertThrows(InvalidConvolutionException.class, () -> ChannelConcat.run(a, b, 2, nhwc, Parallel.SERIAL)).getMessage();
            assertTrue(m.contains("float32 nchw") && m.contains("nhwc"), m);
        }
    }
}
