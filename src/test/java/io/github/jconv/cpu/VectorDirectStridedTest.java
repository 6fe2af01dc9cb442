package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The strided direct kernel ({@link VectorDirectStrided}) behind {@code direct}: ResNet's stem and stride-2 layers at
 * small sizes, rows that end in a partial tile, channel counts that end in a partial block, input channels in several
 * chunks, groups, strides 2 and 3 (and
 * a different stride along H), dilation, asymmetric padding, bias or none, the epilogue with a residual; against the
 * float64 oracle, and the same bits with 1 and 3 threads and through a plan (packed weights kept).
 */
class VectorDirectStridedTest {
    @Test
    void everyTailAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int nb = VectorDirectStrided.NB;
        Object[][] layers = {
                // {input N,C,H,W}, {K, C/G, R, S}, spec
                {new int[] {1, 3, 23, 21}, new int[] {nb, 3, 7, 7}, ConvSpec.builder().stride(2).padding(3).build()},  // stem
                {new int[] {2, 5, 9, 13}, new int[] {nb + 3, 5, 3, 3}, ConvSpec.builder().stride(2).padding(1).build()},
                // padded 1x1 (an unpadded one runs on Pointwise's compact map)
                {new int[] {1, 6, 8, 7}, new int[] {2 * nb + 1, 6, 1, 1}, ConvSpec.builder().stride(2).padding(1).build()},
                {new int[] {1, 4, 11, 17}, new int[] {2 * nb, 2, 3, 2}, ConvSpec.builder().stride(1, 3).padding(Padding.of(1, 0, 2, 1))
                        .groups(2).build()},
                {new int[] {2, 3, 12, 15}, new int[] {nb, 3, 3, 3}, ConvSpec.builder().stride(3, 2).dilation(2).padding(2).build()},
                {new int[] {1, 2, 5, 4}, new int[] {nb, 2, 5, 5}, ConvSpec.builder().stride(2).padding(2).build()},  // one output tile
                // more input channels than one chunk of weights holds (WEIGHT_CHUNK): the partial sums carried across chunks
                {new int[] {1, 40, 9, 10}, new int[] {nb + 1, 40, 3, 3}, ConvSpec.builder().stride(2).padding(1).build()},
                {new int[] {1, 300, 5, 6}, new int[] {nb, 300, 1, 1}, ConvSpec.builder().stride(2).padding(Padding.of(0, 1, 1, 0)).build()},
        };
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        int seed = 0;
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            seed++;
            assertTrue(VectorDirectStrided.applies(g) && !Pointwise.appliesStrided(g), g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, seed);
        }
    }
}
