package io.github.jconv;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The epilogue table: every activation, without a residual and with one added after or before it, on every algorithm
 * of every available backend (the CUDA kernels fuse it into their stores), both operations, against the unfused
 * composition in float64.
 */
class EpilogueTest {
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Epilogue.Activation a : Epilogue.Activation.values()) {
            for (Epilogue.Residual r : Epilogue.Residual.values()) {
                out.add(Arguments.of(Epilogue.of(a).withResidual(r)));
            }
        }
        return out.stream();
    }

    /** A dense, a grouped strided, a depthwise and a transposed layer from the shape table's kind. */
    static final List<ConvGeometry> LAYERS = List.of(
            ConvGeometry.conv2d(new int[] {2, 5, 9, 11}, new int[] {7, 5, 3, 3}, new int[] {7}, ConvSpec.builder().padding(1).build()),
            ConvGeometry.conv2d(new int[] {1, 6, 10, 9}, new int[] {9, 2, 3, 2}, null,
                    ConvSpec.builder().stride(2, 1).padding(Padding.of(1, 0, 2, 1)).groups(3).build()),
            ConvGeometry.conv2d(new int[] {2, 4, 8, 8}, new int[] {8, 1, 3, 3}, new int[] {8}, ConvSpec.builder().padding(1).groups(4).build()),
            ConvGeometry.convTranspose2d(new int[] {2, 6, 4, 5}, new int[] {6, 3, 4, 4}, new int[] {3},
                    ConvSpec.builder().stride(2).padding(1).build()),
            // the CPU's channel-blocked direct kernel (each task reports its flat range of every channel), and a stride-1
            // transposed layer it runs as a forward one
            ConvGeometry.conv2d(new int[] {2, 8, 9, 10}, new int[] {40, 8, 3, 3}, new int[] {40}, ConvSpec.builder().padding(1).build()),
            ConvGeometry.convTranspose2d(new int[] {1, 6, 7, 5}, new int[] {6, 36, 3, 3}, null, ConvSpec.builder().padding(1).build()));

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void everyBackendAndAlgorithmAppliesTheEpilogue(Epilogue ep) {
        for (ConvGeometry g : LAYERS) {
            float[][] d = TestSupport.data(g, ep.hashCode() + g.hashCode());
            float[] residual = ep.hasResidual() ? TestSupport.gaussian(new Random(5), Tensor.elementCount(g.outputShape())) : null;
            TestSupport.forEachAlgorithm(g, (backend, a) -> {
                TestSupport.Oracle oracle = TestSupport.oracle(backend, a, g, d[0], d[1], d[2], ep, residual);
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                Arrays.fill(y, Float.NaN);
                backend.run(a, g, d[0], d[1], d[2], ep, residual, y, 2);
                String problem = oracle.check(y);
                if (problem != null) {
                    fail(backend.name() + "/" + a + " with epilogue " + ep + " on " + g + ": " + problem
                            + TestSupport.scheduleNote(backend.name()));
                }
            });
        }
    }

    @Test
    void theApiTakesAnEpilogueAndChecksTheResidual() {
        Tensor x = Tensor.of(new float[] {-2, -1, 0, 1, 2, 3, 4, 5, 6}, 1, 1, 3, 3);
        Tensor w = Tensor.of(new float[] {1}, 1, 1, 1, 1);
        Tensor r = Tensor.of(new float[] {1, 1, 1, 1, 1, 1, 1, 1, 1}, 1, 1, 3, 3);
        Tensor y = Jconv.conv2d(x, w, null, ConvSpec.defaults(),
                Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), r, ConvOptions.defaults());
        assertEquals(List.of(0f, 0f, 1f, 2f, 3f, 4f, 5f, 6f, 6f), toList(y.data()));
        Tensor after = Jconv.conv2d(x, w, null, ConvSpec.defaults(),
                Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.AFTER_ACTIVATION), r, ConvOptions.defaults());
        assertEquals(List.of(1f, 1f, 1f, 2f, 3f, 4f, 5f, 6f, 7f), toList(after.data()));
        InvalidConvolutionException missing = assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2d(x, w, null, ConvSpec.defaults(), Epilogue.of(Epilogue.Activation.RELU).withResidual(
                        Epilogue.Residual.AFTER_ACTIVATION), null, ConvOptions.defaults()));
        assertTrue(missing.getMessage().contains("needs a residual tensor of the output's 9 elements, got none"), missing.getMessage());
        InvalidConvolutionException shape = assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2d(x, w, null, ConvSpec.defaults(), Epilogue.of(Epilogue.Activation.RELU).withResidual(
                        Epilogue.Residual.AFTER_ACTIVATION), Tensor.zeros(1, 1, 9, 1), ConvOptions.defaults()));
        assertTrue(shape.getMessage().contains("residual must have the output's shape [1, 1, 3, 3]"), shape.getMessage());
    }

    @Test
    void nanPassesThroughTheActivationsAsInPyTorch() {
        // torch 1.13: relu(nan) = relu6(nan) = silu(nan) = gelu(nan) = nan; silu(-inf) = gelu(-inf) = nan; relu6(inf) = 6
        for (Epilogue.Activation a : Epilogue.Activation.values()) {
            assertTrue(Float.isNaN(Epilogue.activate(a, Float.NaN)), a.label());
        }
        assertEquals(6f, Epilogue.activate(Epilogue.Activation.RELU6, Float.POSITIVE_INFINITY));
        assertTrue(Float.isNaN(Epilogue.activate(Epilogue.Activation.SILU, Float.NEGATIVE_INFINITY)));
        assertTrue(Float.isNaN(Epilogue.activate(Epilogue.Activation.GELU, Float.NEGATIVE_INFINITY)));
        assertEquals(-0.1588f, Epilogue.activate(Epilogue.Activation.GELU, -1f), 1e-4f);
        assertEquals(-0.2689f, Epilogue.activate(Epilogue.Activation.SILU, -1f), 1e-4f);
    }

    private static List<Float> toList(float[] a) {
        List<Float> l = new ArrayList<>();
        for (float v : a) {
            l.add(v);
        }
        return l;
    }
}
