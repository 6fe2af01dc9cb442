package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The checks every CPU kernel's edge-case test makes on a layer it takes. */
final class KernelCheck {
    private KernelCheck() {
    }

    /** The geometries of rows {input N,C,H,W}, {K, C/G, R, S}, spec: the i-th (from 1) with a bias when i is even. */
    static java.util.List<ConvGeometry> geometries(Object[][] layers) {
        java.util.List<ConvGeometry> out = new java.util.ArrayList<>();
        for (int i = 1; i <= layers.length; i++) {
            int[] w = (int[]) layers[i - 1][1];
            out.add(ConvGeometry.conv2d((int[]) layers[i - 1][0], w, i % 2 == 0 ? new int[] {w[0]} : null,
                    (io.github.jconv.ConvSpec) layers[i - 1][2]));
        }
        return out;
    }

    /**
     * {@code algorithm} on g with seeded data and, where {@code ep} adds one, a residual: against the float64 oracle (of what the algorithm computes: Winograd's own bound), the same bits
     * with 1 and 3 threads, and the same bits through a plan's kept (packed once) weights with 2 threads.
     */
    static void againstFloat64AndThreads(Algorithm algorithm, ConvGeometry g, Epilogue ep, int seed) {
        float[][] d = TestSupport.data(g, seed);
        int size = Math.toIntExact(Tensor.elementCount(g.outputShape()));
        float[] r = ep.hasResidual() ? TestSupport.gaussian(new Random(seed), size) : null;
        float[] one = new float[size], three = new float[size], kept = new float[size];
        java.util.Arrays.fill(one, Float.NaN); // every output written
        poisonWorkspace(); // and no value read from a scratch buffer that the call did not write
        CpuBackend.INSTANCE.run(algorithm, g, d[0], d[1], d[2], ep, r, one, 1);
        CpuBackend.INSTANCE.run(algorithm, g, d[0], d[1], d[2], ep, r, three, 3);
        String problem = TestSupport.oracle(CpuBackend.INSTANCE, algorithm, g, d[0], d[1], d[2], ep, r).check(one);
        assertTrue(problem == null, g + ": " + problem);
        assertArrayEquals(one, three, 0f, "1 and 3 threads: " + g);
        CpuBackend.INSTANCE.run(algorithm, g, d[0], Weights.kept(d[1].clone()), d[2], ep, r, kept, 2);
        assertArrayEquals(one, kept, 0f, "packed once: " + g);
    }

    /** The calling thread's scratch buffers (as a one-thread call uses them) filled with NaN. */
    static void poisonWorkspace() {
        for (int slot : new int[] {Workspace.COL, Workspace.PACK, Workspace.MATRIX, Workspace.PACK_B, Workspace.WEIGHTS, Workspace.ROW,
                Workspace.SCRATCH, Workspace.PADDED, Workspace.FUSED}) {
            java.util.Arrays.fill(Workspace.get(slot, 1 << 18), Float.NaN);
        }
    }
}
