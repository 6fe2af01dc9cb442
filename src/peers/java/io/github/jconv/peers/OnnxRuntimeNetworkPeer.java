package io.github.jconv.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.jconv.Tensor;
import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.cli.NetworkPeer;
import io.github.jconv.cli.PeerSession;
import io.github.jconv.cli.Peer;
import io.github.jconv.cli.PeerLayerProfile;
import io.github.jconv.net.Network;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * ONNX Runtime runs the same trunk as one multi-node ONNX model (OnnxModel.network: the folded weights as
 * initializers), in the same JVM with an intra-op pool of the bench's size and ONNX Runtime's default graph
 * optimisations (which fuse Conv with its Relu / Clip / Add, as jconv does).
 */
public final class OnnxRuntimeNetworkPeer implements NetworkPeer {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();

    @Override
    public String label() {
        return "onnxruntime-" + env.getVersion();
    }

    @Override
    public Peer.Result run(Network net, Tensor x, int threads, int runs, int warmup) throws IOException {
        return session(net, x, threads, null, (session, in) -> OnnxRuntimePeer.time(session, Map.of("X", in), runs, warmup));
    }

    /**
     * ONNX Runtime's profiler (session option enableProfiling: every node's kernel time per run, written as JSON when the
     * session ends profiling) over the same runs in a session of its own, mapped to the trunk's layers.
     */
    @Override
    public PeerLayerProfile.Times layerTimes(Network net, Tensor x, int threads, int runs, int warmup) throws IOException {
        Path dir = Files.createTempDirectory("jconv-onnxruntime-profile");
        try {
            return session(net, x, threads, dir.resolve("profile").toString(), (session, in) -> {
                OnnxRuntimePeer.time(session, Map.of("X", in), runs, warmup);
                Path file = Path.of(session.endProfiling());
                return PeerLayerProfile.of(JSON.std.listFrom(Files.readString(file)), net.layers().size(), runs);
            });
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    @Override
    public PeerSession open(Network net, Tensor x, int threads, int warmup) throws IOException {
        return openTrunk(net, x, threads, null).warm(warmup);
    }

    /** The trunk's session (intra-op pool of {@code threads}, profiling into {@code profilePrefix} unless null) and x as its input. */
    private OpenSession openTrunk(Network net, Tensor x, int threads, String profilePrefix) throws IOException {
        return OpenSession.of(env, OnnxModel.network(net), threads, profilePrefix).input(env, "X", x.data(), OnnxRuntimePeer.longs(x.shape()));
    }

    private interface Work<T> {
        T on(OrtSession session, OnnxTensor input) throws OrtException, IOException;
    }

    /** work on the trunk's session and input ({@link #openTrunk}), closed after it. */
    private <T> T session(Network net, Tensor x, int threads, String profilePrefix, Work<T> work) throws IOException {
        try (OpenSession t = openTrunk(net, x, threads, profilePrefix)) {
            return work.on(t.session, t.feed.get("X"));
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        }
    }
}
