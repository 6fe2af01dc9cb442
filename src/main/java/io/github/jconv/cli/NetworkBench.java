package io.github.jconv.cli;

import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.Algorithm;
import io.github.jconv.Device;
import io.github.jconv.DeviceTensor;
import io.github.jconv.Backends;
import io.github.jconv.Dtype;
import io.github.jconv.MathMode;
import io.github.jconv.Tensor;
import io.github.jconv.io.AtomicFile;
import io.github.jconv.net.Network;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code bench --network NAME}: the trunk end to end on jconv's device (plans built once, tensors device-resident,
 * warm-up runs, then timed runs) beside PyTorch (the same trunk from torch.nn layers on the same weights, in a
 * subprocess) and ONNX Runtime (the same trunk as one multi-node ONNX model); images/s, ratio to the best peer, and each
 * output's max relative difference from jconv's.
 */
final class NetworkBench {
    private NetworkBench() {
    }

    /**
     * jconv's warm-up: at least {@code runs} runs and {@code ms}, then until steady ({@link io.github.jconv.Warmup}), at most
     * {@code maxMs}.
     */
    record Warm(int runs, long ms, long maxMs) {
        /**
         * Warms a trunk up: until steady, then on the CPU until the JIT has settled ({@link io.github.jconv.Warmup#untilJitSettles},
         * at most {@code maxMs} again): the trunk's many methods go on being compiled for seconds after its runs agree,
         * each compilation taking one of two cores from its threads. Whether both happened.
         */
        boolean untilSteady(Runnable once, Device dev) {
            boolean steady = io.github.jconv.Warmup.untilSteady(once, runs, ms, maxMs);
            return (!dev.isCpu() || io.github.jconv.Warmup.untilJitSettles(once, maxMs)) && steady;
        }
    }

    record Row(String who, double medianMs, double minMs, double maxMs, double imagesPerSecond, Double ratio, double maxRelDiff) {
    }

    /** jconv's fp32 trunk and a peer's, timed in alternating rounds ({@link #paired}). */
    record Paired(String peer, Alternating.Result result) {
    }

    /** Rounds of {@link #paired}: this many, or 2 x runs + 1 where that is more. */
    static final int PAIRED_ROUNDS = 11;

    static int run(String name, int batch, int size, long seed, String backend, boolean tune, boolean noPeers, int threads, int runs,
                   int warmup, long warmupMs, long warmupMaxMs, List<MathMode> maths, List<Dtype> dtypes, boolean layers, Path json,
                   PrintWriter out)
            throws IOException {
        Network net = Network.named(name, batch, size, seed);
        Tensor x = net.randomInput(seed + 1);
        Path jsonTarget = json == null ? null : AtomicFile.target(json);
        out.printf("bench --network %s: %d convolutions, %.2f GFLOP per batch of %d, input %s, %d thread(s); jconv: >= %d warm-up runs and"
                        + " >= %d ms, then until steady (at most %d ms; on the cpu then until the JIT has settled, at most as long again), %d timed runs%n", net.name(), net.convolutions(), net.flops() / 1e9, batch,
                Arrays.toString(net.inputShape()), threads, warmup, warmupMs, warmupMaxMs, runs);
        Warm warm = new Warm(warmup, warmupMs, warmupMaxMs);
        List<Row> rows = new ArrayList<>();
        Map<String, Object> peers = new LinkedHashMap<>();
        float[][] result = new float[1][];
        List<Map<String, Object>> profile = layers ? new ArrayList<>() : null;
        rows.add(timeTrunk(net, x, backend, Algorithm.AUTO, MathMode.FP32, Dtype.FP32, threads, tune, runs, warm, result, profile));
        float[] mine = result[0];
        for (MathMode m : maths) { // the same trunk on the tensor-core kernels (auto takes the implicit GEMM)
            Row r = timeTrunk(net, x, backend, Algorithm.AUTO, m, Dtype.FP32, threads, tune, runs, warm, result, null);
            rows.add(new Row(r.who() + " math " + m.label(), r.medianMs(), r.minMs(), r.maxMs(), r.imagesPerSecond(), null, relDiff(result[0], mine)));
        }
        for (Dtype d : dtypes) { // the same trunk on half-precision tensors (the weights rounded to them); on a GPU in the
            // dtype's own math, whose implicit-GEMM kernels load and store the 16-bit tensors as they are
            MathMode own = Backends.get(backend) instanceof io.github.jconv.cuda.CudaBackend ? MathMode.of(d) : MathMode.FP32;
            Row r = timeTrunk(net, x, backend, Algorithm.AUTO, own, d, threads, tune, runs, warm, result, null);
            rows.add(new Row(r.who() + " dtype " + d.label() + (own == MathMode.FP32 ? "" : " math " + own.label()), r.medianMs(), r.minMs(),
                    r.maxMs(), r.imagesPerSecond(), null, relDiff(result[0], mine)));
        }
        if (!noPeers && backend.equals("cuda")) { // cuDNN on the same trunk, device-resident the same way, a plan per layer
            String why = io.github.jconv.cuda.CudnnBackend.INSTANCE.unavailableReason();
            peers.put("cudnn", why == null ? "ran (FMA math, cudnnFind per layer; max pooling by jconv's pool.cu)" : "absent: " + why);
            if (why == null) {
                try {
                    Row r = timeTrunk(net, x, "cudnn", Algorithm.VENDOR, MathMode.FP32, Dtype.FP32, threads, false, runs, warm, result, null);
                    rows.add(new Row("cudnn-fma", r.medianMs(), r.minMs(), r.maxMs(), r.imagesPerSecond(), null, relDiff(result[0], mine)));
                    if (maths.contains(MathMode.TF32)) { // cuDNN's default math, beside jconv's tf32
                        r = timeTrunk(net, x, "cudnn", Algorithm.VENDOR, MathMode.TF32, Dtype.FP32, threads, false, runs, warm, result, null);
                        rows.add(new Row("cudnn-default", r.medianMs(), r.minMs(), r.maxMs(), r.imagesPerSecond(), null, relDiff(result[0], mine)));
                    }
                } catch (RuntimeException e) {
                    peers.put("cudnn", "failed: " + e.getMessage());
                }
            }
        }
        List<NetworkPeer> active = new ArrayList<>();
        if (noPeers) {
            peers.put("peers", "off (--no-peers)");
        } else {
            PyTorchPeer torch = PyTorchPeer.find();
            peers.put("pytorch", torch.unavailableReason() == null ? "ran" : "absent: " + torch.unavailableReason());
            if (torch.unavailableReason() == null) {
                active.add(torch.network());
            }
            try {
                active.add((NetworkPeer) Class.forName("io.github.jconv.peers.OnnxRuntimeNetworkPeer").getConstructor().newInstance());
                peers.put("onnxruntime", "ran");
            } catch (ReflectiveOperationException | LinkageError e) {
                peers.put("onnxruntime", "absent: jconv was built without the Maven profile 'peers'");
            }
        }
        Map<String, PeerLayerProfile.Times> peerProfiles = new LinkedHashMap<>();
        for (NetworkPeer peer : active) {
            String key = peer instanceof PyTorchNetworkPeer ? "pytorch" : "onnxruntime";
            try {
                Peer.Result r = peer.run(net, x, threads, runs, Math.max(1, warmup));
                rows.add(row(peer.label(), new double[] {r.minMs(), r.medianMs(), r.maxMs()}, batch, relDiff(r.y(), mine)));
            } catch (IOException | RuntimeException e) {
                peers.put(key, "failed: " + e.getMessage());
                continue;
            }
            if (profile != null) { // the peer's own per-layer times beside jconv's, where its profiler gives them
                try {
                    PeerLayerProfile.Times t = peer.layerTimes(net, x, threads, runs, Math.max(1, warmup));
                    if (t != null) {
                        for (int i = 0; i < profile.size(); i++) {
                            profile.get(i).put(key + "_ms", Double.isNaN(t.layerMs()[i]) ? null : t.layerMs()[i]);
                        }
                        fusedPeerTimes(profile, key + "_ms");
                        peerProfiles.put(key, t);
                    }
                } catch (IOException | RuntimeException e) {
                    peers.put(key + " layers", "failed: " + e.getMessage());
                }
            }
        }
        List<Paired> paired = new ArrayList<>();
        for (NetworkPeer peer : active) { // the first row's trunk and each peer's, alternating in the same process
            try (PeerSession session = peer.open(net, x, threads, Math.max(1, warmup))) {
                if (session != null) {
                    paired.add(paired(net, x, backend, tune, threads, Math.max(PAIRED_ROUNDS, 2 * runs + 1), warm, peer.label(), session));
                }
            } catch (IOException | RuntimeException e) {
                peers.put(peer.label() + " paired", "failed: " + e.getMessage());
            }
        }
        peers.forEach((k, v) -> out.println("peer " + k + ": " + v));
        double bestPeer = rows.stream().filter(r -> !r.who().startsWith("jconv")).mapToDouble(Row::imagesPerSecond).max().orElse(Double.NaN);
        out.printf("%-28s %10s %20s %10s %8s %14s%n", "who", "median_ms", "min-max ms", "images/s", "ratio", "max_rel_diff");
        List<Map<String, Object>> results = new ArrayList<>();
        for (Row r : rows) {
            Double ratio = r.who.startsWith("jconv") && !Double.isNaN(bestPeer) ? r.imagesPerSecond / bestPeer : null;
            out.printf("%-28s %10.2f %20s %10.2f %8s %14.3e%n", r.who, r.medianMs, String.format("%.2f-%.2f", r.minMs, r.maxMs),
                    r.imagesPerSecond, ratio == null ? "" : String.format("%.2f", ratio), r.maxRelDiff);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("who", r.who);
            m.put("median_ms", r.medianMs);
            m.put("images_per_second", r.imagesPerSecond);
            m.put("ratio_to_best_peer", ratio);
            m.put("max_rel_diff_from_jconv", r.maxRelDiff);
            results.add(m);
        }
        out.println("(ratio: jconv's images/s over the best peer's; max_rel_diff: max|y - y_jconv| / max|y_jconv|)");
        for (Paired p : paired) {
            Alternating.Result a = p.result();
            out.printf("paired, %s vs %s (alternating runs, %d rounds, the order swapped each round): medians %.2f / %.2f ms, ratio %.2f"
                    + " (rounds %.2f-%.2f; jconv's images/s over the peer's, the median of the rounds)%n", rows.get(0).who(), p.peer(), a.rounds(),
                    a.jconvMs(), a.peerMs(), a.ratio(), a.ratioMin(), a.ratioMax());
        }
        if (profile != null) {
            printProfile(profile, peerProfiles, out);
        }
        if (jsonTarget != null) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("network", net.name());
            doc.put("batch", batch);
            doc.put("size", size);
            doc.put("threads", threads);
            doc.put("results", results);
            doc.put("peers", peers);
            List<Map<String, Object>> pairs = new ArrayList<>();
            for (Paired p : paired) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("peer", p.peer());
                m.putAll(Alternating.toMap(p.result()));
                pairs.add(m);
            }
            doc.put("paired", pairs);
            if (profile != null) {
                doc.put("layers", profile);
            }
            AtomicFile.write(jsonTarget, JSON.std.with(JSON.Feature.PRETTY_PRINT_OUTPUT).asString(doc).getBytes(StandardCharsets.UTF_8));
        }
        return 0;
    }

    /**
     * The trunk compiled on a device of {@code backend} (plans built once, input uploaded once), warmed up as {@code warm} says,
     * then run {@code runs} times, each waited for; {@code result[0]} gets the output of the first run. With {@code profile}, then
     * {@code runs} more runs timed layer by layer, a map per layer added to it.
     */
    private static Row timeTrunk(Network net, Tensor x, String backend, Algorithm a, MathMode math, Dtype dtype, int threads, boolean tune,
                                 int runs, Warm warm, float[][] result, List<Map<String, Object>> profile) {
        try (Device dev = Device.open(backend);
             Network.Compiled trunk = net.compile(dev, a, math, dtype, threads, tune);
             DeviceTensor in = dev.upload(x, dtype)) {
            double[] ms = new double[runs];
            try (DeviceTensor y = trunk.run(in)) {
                result[0] = y.download().data();
            }
            Runnable once = () -> {
                try (DeviceTensor y = trunk.run(in)) {
                    dev.synchronize();
                }
            };
            boolean steady = warm.untilSteady(once, dev);
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                once.run();
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            if (profile != null) {
                profile(net, trunk, in, runs, profile);
            }
            return row("jconv " + dev.name() + (steady ? "" : " (not steady)"), ms, net.inputShape()[0], 0);
        }
    }

    /**
     * The first row's trunk (fp32, auto) and a peer's open session run alternately ({@link Alternating}), one run a slot. Meant
     * for trunks of tens of milliseconds: on a trunk of about 1 ms (mobilenetv2 at 32 x 32) waking the threads after each
     * pause outweighs the work, and the rounds' ratios spread 0.13-0.82.
     */
    private static Paired paired(Network net, Tensor x, String backend, boolean tune, int threads, int rounds, Warm warm, String label,
                                 PeerSession peer) throws IOException {
        try (Device dev = Device.open(backend);
             Network.Compiled trunk = net.compile(dev, Algorithm.AUTO, threads, tune);
             DeviceTensor in = dev.upload(x)) {
            Runnable once = () -> {
                try (DeviceTensor y = trunk.run(in)) {
                    dev.synchronize();
                }
            };
            warm.untilSteady(once, dev);
            return new Paired(label, Alternating.run(once, peer, rounds, 0));
        }
    }

    /** Each layer's median over {@code runs} trunk runs timed layer by layer, with its shape, FLOPs and algorithm. */
    private static void profile(Network net, Network.Compiled trunk, DeviceTensor in, int runs, List<Map<String, Object>> profile) {
        List<Network.Layer> layers = net.layers();
        long[][] ns = new long[layers.size()][runs];
        long[] one = new long[layers.size()];
        for (int r = 0; r < runs; r++) {
            Arrays.fill(one, 0);
            try (DeviceTensor y = trunk.run(in, one)) {
                for (int i = 0; i < one.length; i++) {
                    ns[i][r] = one[i];
                }
            }
        }
        for (int i = 0; i < layers.size(); i++) {
            Arrays.sort(ns[i]);
            Network.Layer l = layers.get(i);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("layer", l.name());
            double ms = ns[i][runs / 2] / 1e6;
            m.put("median_ms", ms);
            io.github.jconv.ConvGeometry g = trunk.geometry(i); // a fused layer's: both convolutions'
            if (g != null) {
                m.put("shape", g.n + "," + g.c + "," + g.h + "," + g.w + "," + g.k + "," + g.r + "," + g.s + "," + g.strideH + ","
                        + g.padTop + "," + g.dilationH + "," + g.groups);
                m.put("gflops", g.flops() / ms / 1e6);
            } else {
                m.put("shape", "");
            }
            if (trunk.fusedInto(i) >= 0) {
                m.put("fused_into", layers.get(trunk.fusedInto(i)).name());
                if (trunk.fusedInto(i) < i) {
                    m.put("fused_with_previous", true);
                }
            }
            m.put("algorithm", trunk.algorithm(i));
            if (trunk.addsResidualInPlace(i)) {
                m.put("residual_in_place", true);
            }
            profile.add(m);
        }
    }

    /**
     * Where jconv ran a layer inside another ({@code fused_into}), the peer's time for the pair goes on the row that ran
     * both ({@code <key>_with_fused}, the ratio's numerator) and the fused-away row keeps the peer's own time, without a ratio.
     */
    private static void fusedPeerTimes(List<Map<String, Object>> profile, String key) {
        for (int i = 0; i < profile.size(); i++) {
            Object into = profile.get(i).get("fused_into");
            Object own = profile.get(i).get(key);
            if (into == null || own == null) {
                continue;
            }
            for (Map<String, Object> m : profile) {
                if (into.equals(m.get("layer")) && m.get(key) != null) {
                    m.put(key.replace("_ms", "_with_fused_ms"), (Double) m.get(key) + (Double) own);
                }
            }
        }
    }

    private static void printProfile(List<Map<String, Object>> profile, Map<String, PeerLayerProfile.Times> peerProfiles, PrintWriter out) {
        double total = profile.stream().mapToDouble(m -> (Double) m.get("median_ms")).sum();
        out.printf("%njconv's layers, slowest first (each layer's median over the timed runs; sum %.2f ms):%n", total);
        StringBuilder head = new StringBuilder(String.format("%-22s %-26s %-14s %9s %9s %7s", "layer", "shape N,C,H,W,K,R,S,st,pad,dil,g",
                "algorithm", "ms", "GFLOP/s", "share"));
        peerProfiles.keySet().forEach(k -> head.append(String.format(" %14s %7s", k + " ms", "ratio")));
        out.println(head);
        profile.stream().sorted((a, b) -> Double.compare((Double) b.get("median_ms"), (Double) a.get("median_ms"))).forEach(m -> {
            Object gf = m.get("gflops");
            double ms = (Double) m.get("median_ms");
            StringBuilder line = new StringBuilder(String.format("%-22s %-26s %-14s %9.3f %9s %6.1f%%", m.get("layer"), m.get("shape"),
                    m.get("algorithm") + (m.containsKey("residual_in_place") ? "*" : ""), ms,
                    gf == null ? "" : String.format("%.1f", (Double) gf), 100 * ms / total));
            peerProfiles.keySet().forEach(k -> {
                Object p = m.getOrDefault(k + "_with_fused_ms", m.get(k + "_ms"));
                line.append(p == null ? String.format(" %14s %7s", "-", "")
                        : m.containsKey("fused_into") ? String.format(" %14.3f %7s", (Double) p, "")
                        : String.format(" %14.3f %7.2f", (Double) p, (Double) p / ms));
            });
            out.println(line);
        });
        profile.stream().filter(m -> m.containsKey("fused_into")).forEach(m -> out.printf("%s ran inside %s (%s); the peers' times on"
                + " %s's row are both layers'%n", m.get("layer"), m.get("fused_into"), m.containsKey("fused_with_previous")
                ? "in one pass with it, the expanded tensor never written; the shape and GFLOP/s shown there are its own"
                : "one 1x1 convolution over both inputs, the shape shown there", m.get("fused_into")));
        if (profile.stream().anyMatch(m -> m.containsKey("residual_in_place"))) {
            out.printf("*: the residual added in place (the output written into the block's input, which nothing reads after it)%n");
        }
        peerProfiles.forEach((k, t) -> out.printf("%s: its layers' kernels sum to %.2f ms, plus %.2f ms in nodes of no layer (layout"
                + " reorders); ratio: its time over jconv's (above 1: jconv faster)%n", k,
                Arrays.stream(t.layerMs()).filter(v -> !Double.isNaN(v)).sum(), t.otherMs()));
    }

    /** min, median, max from sorted times (a sorted array of any length, or {min, median, max}). */
    private static Row row(String who, double[] sortedMs, int batch, double diff) {
        double median = sortedMs[sortedMs.length / 2];
        return new Row(who, median, sortedMs[0], sortedMs[sortedMs.length - 1], batch * 1000.0 / median, null, diff);
    }

    private static double relDiff(float[] y, float[] ref) {
        if (y == null || y.length != ref.length) {
            return Double.NaN;
        }
        double err = 0, scale = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(y[i] - ref[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        return err / Math.max(scale, Double.MIN_NORMAL);
    }
}
