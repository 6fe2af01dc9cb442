package io.github.jconv.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.jconv.ConvGeometry;
import io.github.jconv.cli.Peer;
import io.github.jconv.cli.PeerSession;
import io.github.jconv.cli.Problem;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * ONNX Runtime's CPU Conv / ConvTranspose as a peer of `jconv bench`, in the same JVM: a one-node ONNX model
 * made in memory (X, W, B as graph inputs, so nothing is constant-folded), one intra-op thread pool of the
 * bench's size. Compiled only with the Maven profile `peers` (ONNX Runtime's jar is ~90 MB and stays out of
 * the library's dependencies); the bench finds it by name.
 */
public final class OnnxRuntimePeer implements Peer {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();

    @Override
    public String label() {
        return "onnxruntime-" + env.getVersion();
    }

    @Override
    public String operation(boolean transposed) {
        return transposed ? "ConvTranspose" : "Conv";
    }

    @Override
    public List<Result> run(List<Problem> problems, List<float[][]> data, int threads, int runs, int warmup) throws IOException {
        List<Result> out = new ArrayList<>();
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            opts.setIntraOpNumThreads(threads);
            opts.setInterOpNumThreads(1);
            for (int i = 0; i < problems.size(); i++) {
                out.add(time(problems.get(i).geometry(), data.get(i), opts, runs, warmup));
            }
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        }
        return out;
    }

    private Result time(ConvGeometry g, float[][] d, OrtSession.SessionOptions opts, int runs, int warmup) throws OrtException {
        try (OrtSession session = env.createSession(OnnxModel.conv(g), opts);
             OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(d[0]), longs(g.inputShape()));
             OnnxTensor w = OnnxTensor.createTensor(env, FloatBuffer.wrap(d[1]), longs(g.weightShape()));
             OnnxTensor b = OnnxTensor.createTensor(env, FloatBuffer.wrap(d[2]), new long[] {g.biasLength()})) {
            return time(session, Map.of("X", x, "W", w, "B", b), runs, warmup);
        }
    }

    /** The layer's session (the same one-node model and thread pool as {@link #run}) and its three inputs, held open. */
    @Override
    public PeerSession open(Problem problem, float[][] d, int threads, int warmup) throws IOException {
        ConvGeometry g = problem.geometry();
        return OpenSession.of(env, OnnxModel.conv(g), threads, null).input(env, "X", d[0], longs(g.inputShape()))
                .input(env, "W", d[1], longs(g.weightShape())).input(env, "B", d[2], new long[] {g.biasLength()}).warm(warmup);
    }

    /** {@code warmup} untimed runs, then {@code runs} timed ones: median, min, max and the last run's output. */
    static Result time(OrtSession session, Map<String, OnnxTensor> feed, int runs, int warmup) throws OrtException {
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
        double median = runs % 2 == 1 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
        return new Result(median, ms[0], ms[runs - 1], y);
    }

    static long[] longs(int[] shape) {
        return Arrays.stream(shape).asLongStream().toArray();
    }
}
