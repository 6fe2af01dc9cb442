package io.github.jconv.cli;

import java.io.IOException;
import java.util.List;

/** Another library's convolution, timed by `jconv bench` on the same layers, data and thread count. */
public interface Peer {
    /**
     * One layer's timing and output (for the error against jconv's float64 reference); a GPU peer's times are device time
     * and {@code e2eMs} the median whole call with its transfers (null elsewhere).
     */
    record Result(double medianMs, double minMs, double maxMs, float[] y, Double e2eMs) {
        public Result(double medianMs, double minMs, double maxMs, float[] y) {
            this(medianMs, minMs, maxMs, y, null);
        }
    }

    /** The name shown in the backend column, with the version. */
    String label();

    /** The function timed, for the algorithm column. */
    String operation(boolean transposed);

    /** Times every problem ({@code data.get(i)} = {x, w, bias}); results in the same order. */
    List<Result> run(List<Problem> problems, List<float[][]> data, int threads, int runs, int warmup) throws IOException;

    /**
     * One layer ready to run on {@code data} ({x, w, bias}) one call at a time ({@code warmup} calls done), for {@code bench
     * --paired}'s rounds that alternate jconv's calls with the peer's in one process; null when the peer cannot (a
     * subprocess, a GPU).
     */
    default PeerSession open(Problem problem, float[][] data, int threads, int warmup) throws IOException {
        return null;
    }
}
