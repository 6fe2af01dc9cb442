package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link VectorDirect#padOnce}: a thread keeps the padded input of the pair it last padded and pads again only for
 * another pair or another call. Every kernel that reads its input through it (the dense 3x3 kernel, the strided one, the
 * general one), with several (sample, group) pairs, on 1 and 2 threads.
 */
class PadOnceTest {
    @Test
    void eachCallPadsItsOwnInput() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvGeometry dense = ConvGeometry.conv2d(new int[] {3, 16, 10, 12}, new int[] {4 * VectorDirect.V, 8, 3, 3}, null,
                ConvSpec.builder().groups(2).padding(1).build());
        ConvGeometry strided = ConvGeometry.conv2d(new int[] {3, 8, 11, 13}, new int[] {2 * VectorDirectStrided.NB, 4, 3, 3},
                new int[] {2 * VectorDirectStrided.NB}, ConvSpec.builder().groups(2).stride(2).padding(1).build());
        ConvGeometry general = ConvGeometry.conv2d(new int[] {3, 6, 9, 10}, new int[] {8, 3, 5, 5}, new int[] {8},
                ConvSpec.builder().groups(2).padding(2).build());
        assertTrue(DirectConv.onChannelsKernel(dense), dense.toString());
        assertTrue(DirectConv.onStridedKernel(strided), strided.toString());
        assertTrue(!DirectConv.onChannelsKernel(general) && !DirectConv.onStridedKernel(general)
                && !DirectConv.onPointwiseKernel(general) && !DirectConv.onDeinterleavedKernel(general), general.toString());
        int seed = 40;
        for (ConvGeometry g : new ConvGeometry[] {dense, strided, general}) {
            for (int threads : new int[] {1, 2}) {
                float[][] first = TestSupport.data(g, ++seed), second = TestSupport.data(g, ++seed);
                int size = Math.toIntExact(Tensor.elementCount(g.outputShape()));
                // the same weights and bias: only the input tells the two calls apart
                for (float[] x : new float[][] {first[0], second[0], first[0]}) {
                    float[] y = new float[size];
                    CpuBackend.INSTANCE.run(Algorithm.DIRECT, g, x, first[1], first[2], Epilogue.none(), null, y, threads);
                    String problem = TestSupport.oracle(CpuBackend.INSTANCE, Algorithm.DIRECT, g, x, first[1], first[2]).check(y);
                    assertTrue(problem == null, g + ", " + threads + " thread(s): " + problem);
                }
            }
        }
    }
}
