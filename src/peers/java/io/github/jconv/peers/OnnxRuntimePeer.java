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
        for (int i = 0; i < problems.size(); i++) {
            try (OpenSession layer = layer(problems.get(i).geometry(), data.get(i), threads)) {
                out.add(time(layer.session, layer.feed, runs, warmup));
            } catch (OrtException e) {
                throw new IOException("onnxruntime: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** The layer's session (the same one-node model and thread pool as {@link #run}) and its three inputs, held open. */
    @Override
    public PeerSession open(Problem problem, float[][] d, int threads, int warmup) throws IOException {
        return layer(problem.geometry(), d, threads).warm(warmup);
    }

    /** g's one-node model in a session with {@code threads} intra-op threads, and d = {x, w, bias} as its inputs X, W, B. */
    private OpenSession layer(ConvGeometry g, float[][] d, int threads) throws IOException {
        return OpenSession.of(env, OnnxModel.conv(g), threads, null).input(env, "X", d[0], longs(g.inputShape()))
                .input(env, "W", d[1], longs(g.weightShape())).input(env, "B", d[2], new long[] {g.biasLength()});
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
