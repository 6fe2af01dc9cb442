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
import java.util.Arrays;
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
                         Arrays.stream(x.shape()).asLongStream().toArray())) {
                Map<String, OnnxTensor> feed = Map.of("X", in);
                for (int i = 0; i < warmup; i++) {
                    session.run(feed).close();
                }
                double[] ms = new double[runs];
                float[] y = null;
                for (int i = 0; i < runs; i++) {
                    long t0 = System.nanoTime();
                    try (OrtSession.Result r = session.run(feed)) {
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                        if (i == runs - 1) {
                            FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
                            y = new float[fb.remaining()];
                            fb.get(y);
                        }
                    }
                }
                Arrays.sort(ms);
                return new Peer.Result(ms[runs / 2], ms[0], ms[runs - 1], y);
            }
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        }
    }
}
