package io.github.jconv.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.jconv.Tensor;
import io.github.jconv.cli.NetworkPeer;
import io.github.jconv.cli.Peer;
import io.github.jconv.net.Network;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.Map;

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
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(threads);
            opts.setInterOpNumThreads(1);
            try (OrtSession session = env.createSession(OnnxModel.network(net), opts);
                 OnnxTensor in = OnnxTensor.createTensor(env, FloatBuffer.wrap(x.data()),
                         OnnxRuntimePeer.longs(x.shape()))) {
                return OnnxRuntimePeer.time(session, Map.of("X", in), runs, warmup);
            }
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        }
    }
}
