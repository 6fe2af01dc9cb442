package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How {@link VectorDirectChannels} splits a call into tasks, and its row tiles for maps 7 wide (its other results are
 * checked on the shape table and in the fuzz test).
 */
class VectorDirectChannelsTest {
    @Test
    void channelBlocksAreSplitBeforeTiles() {
        // ResNet-50's 512-channel 3x3 layer at 7x7, batch 1, 2 threads: 16 blocks of 32 channels, 7 tiles of outputs
        int[] deep = VectorDirectChannels.split(1, 16, 7, 2);
        assertEquals(8, deep[0], "8 tasks, each with its own blocks' weights");
        assertEquals(1, deep[1], "one run of tiles: every weight read once");
        // 64 channels at 56x56: 2 blocks, 326 tiles: the rest of the tasks from the tiles
        int[] wide = VectorDirectChannels.split(1, 2, 326, 2);
        assertEquals(2, wide[0]);
        assertEquals(4, wide[1]);
        // a batch of 8 already gives every thread work: no split
        int[] batch = VectorDirectChannels.split(8, 16, 7, 2);
        assertEquals(1, batch[0] * batch[1]);
        for (int blocks : new int[] {1, 3, 16}) {
            for (int tiles : new int[] {1, 2, 50}) {
                int[] s = VectorDirectChannels.split(1, blocks, tiles, 3);
                assertTrue(s[0] >= 1 && s[0] <= blocks && s[1] >= 1 && s[1] <= tiles);
                assertTrue(s[0] * s[1] >= Math.min(12, blocks * tiles));
            }
        }
    }

    /** Outputs 7 wide take one tile per row (tile7): padded rows 8 or more apart, partial blocks, groups, batches, epilogues. */
    @Test
    void rowsOfSevenAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        // {N, C, H, W, K, G, pad top, bottom, left, right}
        int[][] layers = {{1, 40, 7, 7, 64, 1, 1, 1, 1, 1}, {2, 8, 9, 9, 33, 1, 0, 0, 0, 0}, {1, 16, 5, 7, 64, 2, 1, 0, 2, 0},
                {3, 12, 7, 6, 40, 1, 2, 2, 0, 3}, {1, 64, 7, 7, 96, 1, 1, 1, 1, 1}};
        int seed = 200;
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {l[0], l[1], l[2], l[3]}, new int[] {l[4], l[1] / l[5], 3, 3},
                    seed % 2 == 0 ? new int[] {l[4]} : null, ConvSpec.builder().groups(l[5]).padding(Padding.of(l[6], l[7], l[8], l[9])).build());
            assertEquals(7, g.q, g.toString());
            assertTrue(VectorDirectChannels.applies(g), g.toString());
            Epilogue ep = seed % 2 == 0 ? Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION) : Epilogue.none();
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
        }
    }

    /**
     * Input channels in several chunks (WEIGHT_CHUNK) whose size is not a multiple of {@link VectorDirectChannels#STREAMS}
     * before rounding (470 channels x 2 blocks: 2 chunks of 235, rounded to 236 and 234 for rows of 7), the packed weights' regions read
     * from each chunk's offset: rows of 7 (tile7), flat tiles (tile1), dilation 2 (tile2).
     */
    @Test
    void chunksOfInputChannelsAcrossTheWeightRegions() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int seed = 400;
        int c = 470 * 16 / VectorDirectChannels.V; // the same two chunks at 8 and 4 lanes (blocks of 2 vectors)
        for (int[] l : new int[][] {{7, 7, 1}, {9, 10, 1}, {9, 9, 2}}) { // H, W, dilation
            ConvGeometry g = ConvGeometry.conv2d(new int[] {1, c, l[0], l[1]}, new int[] {2 * VectorDirectChannels.NB - 3, c, 3, 3},
                    new int[] {2 * VectorDirectChannels.NB - 3}, ConvSpec.builder().padding(l[2]).dilation(l[2]).build());
            assertTrue(VectorDirectChannels.applies(g), g.toString());
            assertTrue(2L * VectorDirectChannels.NB * 9 * c > VectorDirectChannels.WEIGHT_CHUNK, "more than one chunk");
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, Epilogue.none(), ++seed);
        }
    }

    /**
     * A pair's input padded once per thread for its tasks ({@link VectorDirect#padOnce}) from a scratch buffer of NaN: rows
     * of 10 flat outputs, dilation 2, asymmetric and wide padding, groups, batches of 1 and 2.
     */
    @Test
    void aPairSplitOverTasksAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        // {N, C, H, W, K, G, pad top, bottom, left, right, dilation}
        int[][] layers = {{1, 24, 13, 11, 64, 1, 1, 1, 1, 1, 1}, {2, 16, 10, 12, 96, 2, 0, 2, 3, 0, 1}, {1, 8, 9, 14, 32, 1, 2, 2, 2, 2, 2},
                {1, 3, 20, 17, 40, 1, 1, 0, 0, 1, 1}};
        int seed = 300;
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {l[0], l[1], l[2], l[3]}, new int[] {l[4], l[1] / l[5], 3, 3},
                    seed % 2 == 0 ? new int[] {l[4]} : null,
                    ConvSpec.builder().groups(l[5]).padding(Padding.of(l[6], l[7], l[8], l[9])).dilation(l[10]).build());
            assertTrue(VectorDirectChannels.applies(g), g.toString());
            Epilogue ep = seed % 2 == 0 ? Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION) : Epilogue.none();
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
        }
    }
}
