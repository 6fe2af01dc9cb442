package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 1 x 1 GEMM ({@link Pointwise}) behind {@code direct}: maps that end in a partial tile or in a masked vector, channel
 * counts that leave a partial channel tile, groups, bias or none, every kind of epilogue (fused into the stores or not); strided layers on their
 * compact map; against the float64 oracle, and the same bits with 1 and 3 threads and through a plan (packed weights
 * kept); and how a call splits into tasks.
 */
class PointwiseTest {
    @Test
    void everyTailAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int[][] maps = {{1, 1}, {1, 3}, {1, 5}, {3, 7}, {4, 12}, {7, 7}, {2, 25}, {14, 14}, {5, 13}};
        // {C, K/G, G}: the last two give runs of several channel tiles per task
        int[][] channels = {{3, 1, 1}, {16, 9, 1}, {24, 20, 2}, {8, 8, 1}, {40, 13, 1}, {16, 72, 1}, {64, 40, 2}};
        // fused into the stores (ReLU, ReLU6, residual), none, and applied per row (GELU)
        Epilogue[] eps = {Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), Epilogue.none(),
                Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION), Epilogue.of(Epilogue.Activation.GELU)};
        int seed = 0;
        for (int[] hw : maps) {
            for (int[] ckg : channels) {
                ConvGeometry g = ConvGeometry.conv2d(new int[] {2, ckg[0], hw[0], hw[1]}, new int[] {ckg[1] * ckg[2], ckg[0] / ckg[2], 1, 1},
                        seed % 2 == 0 ? new int[] {ckg[1] * ckg[2]} : null, ConvSpec.builder().groups(ckg[2]).build());
                assertTrue(Pointwise.applies(g), g.toString());
                KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, eps[seed % eps.length], ++seed);
            }
        }
    }

    @Test
    void stridedLayersRunOnTheCompactMap() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        int[][] layers = {{2, 16, 14, 14, 24, 2, 2, 1}, {1, 12, 9, 13, 20, 3, 2, 2}, {3, 8, 7, 7, 8, 2, 1, 1}, {1, 64, 15, 15, 72, 2, 2, 1}};
        int seed = 100;
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {l[0], l[1], l[2], l[3]}, new int[] {l[4], l[1] / l[7], 1, 1},
                    seed % 2 == 0 ? new int[] {l[4]} : null, ConvSpec.builder().stride(l[5], l[6]).groups(l[7]).build());
            assertTrue(Pointwise.appliesStrided(g) && !Pointwise.applies(g), g.toString());
            assertEquals(g.p, Pointwise.compact(g).h);
            assertEquals(g.q, Pointwise.compact(g).w);
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
        }
        ConvGeometry padded = ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 1, 1}, null,
                ConvSpec.builder().stride(2).padding(1).build());
        assertFalse(Pointwise.appliesStrided(padded), "a padded 1x1 reads zeros: not the compact map");
    }

    /** Layers whose weights a tile reads as four streams ({@link Pointwise#streamed}): quarters of 64 to 256 channels, groups, strided. */
    @Test
    void weightsFromMemoryAreReadAsFourStreams() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        assertTrue(Pointwise.streamed(256, 256));
        assertFalse(Pointwise.streamed(256, 255), "under 64 Ki weights");
        assertFalse(Pointwise.streamed(252, 1024), "fewer than 256 input channels");
        assertFalse(Pointwise.streamed(262, 1024), "input channels not a multiple of 4");
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        // {N, C, H, W, K, G, stride}: a whole tile and one leftover pixel, two groups of 256 and two tiles, 66 channels a quarter
        int[][] layers = {{1, 256, 7, 7, 256, 1, 1}, {2, 512, 10, 10, 512, 2, 1}, {1, 264, 8, 9, 264, 1, 1}, {1, 256, 13, 14, 256, 1, 2}};
        int seed = 200;
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {l[0], l[1], l[2], l[3]}, new int[] {l[4], l[1] / l[5], 1, 1},
                    seed % 2 == 0 ? new int[] {l[4]} : null, ConvSpec.builder().stride(l[6]).groups(l[5]).build());
            assertTrue(Pointwise.streamed(g.cPerGroup(), g.kPerGroup()) && g.p * g.q >= Pointwise.PT, g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
        }
    }

    /**
     * Layers that write at least twice what they read sweep each channel tile over the task's whole run of pixel tiles
     * where its input is small ({@link Pointwise#blockTiles}): several tiles per run, partial ones, groups, the residual
     * fused.
     */
    @Test
    void expandingLayersSweepTheWholeRun() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        // at 512 bits (48-pixel tiles): runs of 5 tiles of 64 channels (60 KiB) whole, of 6 (72 KiB) in blocks of 2
        int whole = 64 * 1024 / (Pointwise.PT * 4 * 64), byBytes = Math.max(1, 32 * 1024 / (Pointwise.PT * 4 * 64));
        assertEquals(whole, Pointwise.blockTiles(64, 256, whole), "at most 64 KiB of input: the whole run");
        assertEquals(byBytes, Pointwise.blockTiles(64, 256, whole + 1), "more: blocks by bytes");
        assertEquals(byBytes, Pointwise.blockTiles(64, 127, whole), "under twice the input: blocks by bytes");
        assertEquals(Math.max(1, 32 * 1024 / (Pointwise.PT * 4 * 256)), Pointwise.blockTiles(256, 64, 2));
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        // {N, C, H, W, K, G}: runs of several tiles, partial ones, two groups
        int[][] layers = {{1, 64, 14, 14, 256, 1}, {2, 64, 9, 13, 136, 1}, {1, 160, 10, 10, 320, 2}};
        int seed = 300;
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {l[0], l[1], l[2], l[3]}, new int[] {l[4], l[1] / l[5], 1, 1},
                    seed % 2 == 0 ? new int[] {l[4]} : null, ConvSpec.builder().groups(l[5]).build());
            assertTrue(g.kPerGroup() >= 2 * g.cPerGroup() && g.h * g.w > Pointwise.PT, g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
        }
    }

    /** Splits that read the fewest floats: over channels where the weights outweigh the input, over pixels the other way. */
    @Test
    void splitsFollowWhereTheFloatsAre() {
        // ResNet-50 at batch 1, 2 threads (16 tasks wanted): 512 -> 2048 at 7x7 (2 pixel tiles, 256 channel tiles)
        int[] deep = Pointwise.split(2048L * 512, 512L * 49, 256, 2, 16);
        assertEquals(1, deep[1], "one pixel run: every weight read once");
        assertTrue(deep[0] >= 16);
        // 64 -> 64 at 56x56 (66 pixel tiles, 8 channel tiles): weights 16 KB, input 800 KB
        int[] wide = Pointwise.split(64L * 64, 64L * 3136, 8, 66, 16);
        assertEquals(1, wide[0], "one channel run: the input read once");
        assertEquals(16, wide[1]);
        // never fewer tasks than wanted where there are that many tiles, never more runs than tiles
        for (int kTiles : new int[] {1, 3, 32}) {
            for (int pTiles : new int[] {1, 2, 5, 66}) {
                int[] s = Pointwise.split(1000, 3000, kTiles, pTiles, 16);
                assertTrue(s[0] <= kTiles && s[1] <= pTiles, java.util.Arrays.toString(s));
                assertTrue((long) s[0] * s[1] >= Math.min(16, kTiles * pTiles), java.util.Arrays.toString(s));
            }
        }
    }
}
