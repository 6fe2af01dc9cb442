package io.github.jconv.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A peer's own per-layer times inside the trunk, from ONNX Runtime's profiler (Chrome trace events: {@code cat} "Node",
 * {@code name} "NODE_kernel_time", {@code dur} in microseconds), mapped to the trunk's layers by the node names jconv's
 * ONNX model gives them ({@code OnnxModel.network}): layer i's Conv or MaxPool is {@code convI} / {@code poolI}, its
 * activation {@code reluI}, {@code relu6_I} or {@code idI} writing {@code t(I+1)} ({@code Y} for the last layer), and
 * {@code sumI} / {@code actI} its residual Add's and activation's outputs (an Add node is named after its output). ONNX
 * Runtime's graph optimisations fuse nodes and add suffixes ({@code t1_nchwc}, {@code conv5_token_3}); a fused node
 * keeps one of its members' names, so each kernel still lands on one layer. Nodes of no layer (the layout reorders at
 * the trunk's ends) are summed as "other".
 */
public final class PeerLayerProfile {
    private static final Pattern LAYER_NODE = Pattern.compile("^(t|conv|pool|sum|act|relu6_|relu|id)(\\d+)(?:_.*)?$");
    private static final Pattern OUTPUT_NODE = Pattern.compile("^Y(?:_.*)?$");

    /** Per layer the median over the last {@code runs} runs of its nodes' summed kernel time, in ms (NaN: no node); then "other". */
    public record Times(double[] layerMs, double otherMs) {
    }

    private PeerLayerProfile() {
    }

    /** The layer a node name belongs to, or -1. */
    static int layerOf(String node, int layers) {
        if (OUTPUT_NODE.matcher(node).matches()) {
            return layers - 1;
        }
        Matcher m = LAYER_NODE.matcher(node);
        if (!m.matches()) {
            return -1;
        }
        int i;
        try {
            i = Integer.parseInt(m.group(2)) - (m.group(1).equals("t") ? 1 : 0);
        } catch (NumberFormatException e) {
            return -1;
        }
        return i >= 0 && i < layers ? i : -1;
    }

    /**
     * The times of the last {@code runs} runs among {@code events} (every node runs once per run, so its k-th event is
     * run k's); null when no event names a layer (the peer named its nodes some other way).
     */
    public static Times of(List<?> events, int layers, int runs) {
        Map<String, List<Double>> byNode = new LinkedHashMap<>();
        for (Object o : events) {
            if (!(o instanceof Map<?, ?> e) || !"Node".equals(e.get("cat")) || !(e.get("name") instanceof String name)
                    || !name.endsWith("_kernel_time") || !(e.get("dur") instanceof Number dur)) {
                continue;
            }
            byNode.computeIfAbsent(name.substring(0, name.length() - "_kernel_time".length()), k -> new ArrayList<>())
                    .add(dur.doubleValue() / 1000);
        }
        double[][] perRun = new double[layers + 1][runs]; // the last row: other
        boolean[] seen = new boolean[layers + 1];
        boolean anyLayer = false;
        for (Map.Entry<String, List<Double>> n : byNode.entrySet()) {
            int layer = layerOf(n.getKey(), layers);
            int row = layer < 0 ? layers : layer;
            anyLayer |= layer >= 0;
            List<Double> ms = n.getValue();
            for (int r = 0; r < runs && r < ms.size(); r++) {
                perRun[row][runs - 1 - r] += ms.get(ms.size() - 1 - r);
            }
            seen[row] = true;
        }
        if (!anyLayer) {
            return null;
        }
        double[] layerMs = new double[layers];
        for (int i = 0; i < layers; i++) {
            layerMs[i] = seen[i] ? median(perRun[i]) : Double.NaN;
        }
        return new Times(layerMs, seen[layers] ? median(perRun[layers]) : 0);
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
