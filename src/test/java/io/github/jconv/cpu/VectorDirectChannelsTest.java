package io.github.jconv.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How {@link VectorDirectChannels} splits a call into tasks (its results are checked on the shape table and in the fuzz test). */
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
}
