package io.github.jconv.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.jconv.cli.PeerSession;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An ONNX Runtime session of a model (an intra-op pool of the bench's size, one inter-op thread, profiling when asked) with
 * its inputs, held open and closed as one: a layer's (X, W, B) for {@code bench --paired}, a trunk's X for {@code bench
 * --network}.
 */
final class OpenSession implements PeerSession {
    final OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
    final Map<String, OnnxTensor> feed = new LinkedHashMap<>();
    OrtSession session;

    /** The session of {@code model} with {@code threads} intra-op threads, profiling into {@code profilePrefix} unless null. */
    static OpenSession of(OrtEnvironment env, byte[] model, int threads, String profilePrefix) throws IOException {
        OpenSession s = new OpenSession();
        try {
            s.opts.setIntraOpNumThreads(threads);
            s.opts.setInterOpNumThreads(1);
            if (profilePrefix != null) {
                s.opts.enableProfiling(profilePrefix);
            }
            s.session = env.createSession(model, s.opts);
            return s;
        } catch (OrtException e) {
            throw s.closing(new IOException("onnxruntime: " + e.getMessage(), e));
        } catch (RuntimeException e) {
            throw s.closing(e);
        }
    }

    /** Adds input {@code name} of {@code shape} on {@code data}. */
    OpenSession input(OrtEnvironment env, String name, float[] data, long[] shape) throws IOException {
        try {
            feed.put(name, OnnxTensor.createTensor(env, FloatBuffer.wrap(data), shape));
            return this;
        } catch (OrtException e) {
            throw closing(new IOException("onnxruntime: " + e.getMessage(), e));
        } catch (RuntimeException e) {
            throw closing(e);
        }
    }

    /** {@code warmup} runs, then this session; closed when one fails. */
    OpenSession warm(int warmup) throws IOException {
        try {
            for (int i = 0; i < warmup; i++) {
                run();
            }
            return this;
        } catch (IOException e) {
            throw closing(e);
        } catch (RuntimeException e) {
            throw closing(e);
        }
    }

    @Override
    public void run() throws IOException {
        try {
            session.run(feed).close();
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        try {
            for (OnnxTensor t : feed.values()) {
                t.close();
            }
            if (session != null) {
                session.close();
            }
        } catch (OrtException e) {
            throw new IOException("onnxruntime: " + e.getMessage(), e);
        } finally {
            opts.close();
        }
    }

    /** Closes this session after {@code failure}, which it returns (a failure to close added to it). */
    private <E extends Exception> E closing(E failure) {
        try {
            close();
        } catch (IOException | RuntimeException suppressed) {
            failure.addSuppressed(suppressed);
        }
        return failure;
    }
}
