package io.github.jconv.cli;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** ONNX Runtime's profiler events mapped to the trunk's layers: names after fusion, runs, medians, what belongs to no layer. */
class PeerLayerProfileTest {
    @Test
    void nodeNamesMapToTheLayersTheyComeFrom() {
        int layers = 6;
        assertEquals(0, PeerLayerProfile.layerOf("t1_nchwc", layers), "t(i+1) is layer i's activation output");
        assertEquals(2, PeerLayerProfile.layerOf("conv2", layers));
        assertEquals(2, PeerLayerProfile.layerOf("conv2_token_7", layers));
        assertEquals(1, PeerLayerProfile.layerOf("pool1", layers));
        assertEquals(3, PeerLayerProfile.layerOf("sum3_add", layers));
        assertEquals(3, PeerLayerProfile.layerOf("relu6_3", layers), "relu6_I is layer I, not layer 6");
        assertEquals(4, PeerLayerProfile.layerOf("relu4", layers));
        assertEquals(4, PeerLayerProfile.layerOf("act4_nchwc", layers));
        assertEquals(5, PeerLayerProfile.layerOf("Y_nchwc", layers), "the trunk's output Y: the last layer");
        assertEquals(-1, PeerLayerProfile.layerOf("ReorderOutput", layers));
        assertEquals(-1, PeerLayerProfile.layerOf("conv6", layers), "past the last layer");
        assertEquals(-1, PeerLayerProfile.layerOf("t0", layers));
        assertEquals(-1, PeerLayerProfile.layerOf("convolution3", layers));
    }

    @Test
    void theLastRunsMediansPerLayerAndTheRestAsOther() {
        List<Object> events = new ArrayList<>();
        events.add(Map.of("cat", "Session", "name", "model_run", "dur", 99999));
        // three runs: a warm-up (slow) and two timed; layer 0 has two fused nodes, layer 2 none
        int[][] durUs = {{900, 50, 400, 30}, {100, 20, 300, 10}, {200, 40, 500, 10}};
        for (int[] run : durUs) {
            events.add(Map.of("cat", "Node", "name", "t1_nchwc_kernel_time", "dur", run[0]));
            events.add(Map.of("cat", "Node", "name", "conv0_token_1_kernel_time", "dur", run[1]));
            events.add(Map.of("cat", "Node", "name", "t1_nchwc_fence_before", "dur", 5));
            events.add(Map.of("cat", "Node", "name", "pool1_kernel_time", "dur", run[2]));
            events.add(Map.of("cat", "Node", "name", "ReorderOutput_kernel_time", "dur", run[3]));
        }
        PeerLayerProfile.Times t = PeerLayerProfile.of(events, 3, 2);
        // layer 0: runs (100+20, 200+40) -> median 0.18 ms; layer 1: (300, 500) -> 0.4; other: (10, 10)
        assertArrayEquals(new double[] {0.18, 0.4, Double.NaN}, t.layerMs(), 1e-12);
        assertEquals(0.01, t.otherMs(), 1e-12);
    }

    @Test
    void noLayerNamesNoProfile() {
        List<Object> events = List.of(Map.of("cat", "Node", "name", "Conv_0_kernel_time", "dur", 10), "not an event",
                Map.of("cat", "Node", "name", "pool1_kernel_time", "dur", "ten"));
        assertNull(PeerLayerProfile.of(events, 3, 1));
    }
}
