package io.github.jconv.cli;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.cuda.CudnnBackend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * cuDNN as the GPU peer of `jconv bench --backend cuda`: the cudnn backend on the same layers and data, once
 * with CUDNN_FMA_MATH (strict float32) and once with cuDNN's default math (which may use TF32). Timed like
 * the cuda backend, transfers included. A layer cuDNN cannot take (asymmetric padding) gets no row.
 */
final class CudnnPeer implements Peer {
    private final boolean fmaMath;

    CudnnPeer(boolean fmaMath) {
        this.fmaMath = fmaMath;
    }

    @Override
    public String label() {
        return fmaMath ? "cudnn-fma" : "cudnn-default";
    }

    @Override
    public String operation(boolean transposed) {
        return transposed ? "BackwardData" : "Forward";
    }

    @Override
    public List<Result> run(List<Problem> problems, List<float[][]> data, int threads, int runs, int warmup) {
        CudnnBackend cudnn = CudnnBackend.INSTANCE;
        List<Result> out = new ArrayList<>();
        for (int i = 0; i < problems.size(); i++) {
            ConvGeometry g = problems.get(i).geometry;
            if (cudnn.cannotImplement(Algorithm.VENDOR, g) != null) {
                out.add(null);
                continue;
            }
            float[][] d = data.get(i);
            float[] y = new float[(int) io.github.jconv.Tensor.elementCount(g.outputShape())];
            for (int w = 0; w < warmup; w++) {
                cudnn.run(Algorithm.VENDOR, g, d[0], d[1], d[2], y, fmaMath);
            }
            double[] ms = new double[runs];
            for (int r = 0; r < runs; r++) {
                long t0 = System.nanoTime();
                cudnn.run(Algorithm.VENDOR, g, d[0], d[1], d[2], y, fmaMath);
                ms[r] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            out.add(new Result(BenchCommand.median(ms), ms[0], ms[runs - 1], y));
        }
        return out;
    }
}
