package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every case PyTorch made in ../shared/golden, through the API with every algorithm that takes it. */
class GoldenTest {
    static List<GoldenCase> cases() {
        return GoldenCase.all();
    }

    @Test
    void allFortyCasesArePresent() {
        assertEquals(40, cases().size());
        assertTrue(cases().stream().anyMatch(c -> c.op() == ConvGeometry.Op.CONV_TRANSPOSE2D));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesPyTorch(GoldenCase c) {
        Tensor x = c.x(), w = c.w(), b = c.b(), ref = c.y();
        int checked = 0;
        ConvGeometry g = ConvGeometry.of(c.op(), x.shape(), w.shape(), b == null ? null : b.shape(), c.spec());
        for (Backend backend : ShapeTableTest.BACKENDS) {
            if (backend.unavailableReason() != null) {
                continue;
            }
            List<Algorithm> algorithms = new java.util.ArrayList<>(backend.algorithms());
            algorithms.add(Algorithm.AUTO);
            for (Algorithm a : algorithms) {
                if (a != Algorithm.AUTO && backend.cannotImplement(a, g) != null) {
                    continue;
                }
                ConvOptions o = ConvOptions.defaults().withBackend(backend.name()).withAlgorithm(a);
                Tensor y = c.op() == ConvGeometry.Op.CONV2D ? Jconv.conv2d(x, w, b, c.spec(), o)
                        : Jconv.convTranspose2d(x, w, b, c.spec(), o);
                assertArrayEquals(ref.shape(), y.shape(), a.label());
                double err = GoldenCase.error(y.data(), ref.data());
                assertTrue(err <= 1e-4, backend.name() + "/" + a + ": error " + err + " on " + c);
                checked++;
            }
        }
        assertTrue(checked >= 7, "the CPU's auto, reference, direct, im2col and cuda-emu's auto, direct, im2col ran");
    }

    /**
     * The tensor-core kernels on PyTorch's cases (cuda-emu, and cuda where it runs them), each math within its {@link
     * TestSupport#pytorchBound}.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void tensorCoreMathsMatchPyTorch(GoldenCase c) {
        Tensor x = c.x(), w = c.w(), b = c.b(), ref = c.y();
        ConvGeometry g = ConvGeometry.of(c.op(), x.shape(), w.shape(), b == null ? null : b.shape(), c.spec());
        int checked = TestSupport.forEachTensorCoreMath(g, new float[][] {x.data(), w.data(), b == null ? null : b.data()}, (what, m, y) -> {
            double err = GoldenCase.error(y, ref.data());
            assertTrue(err <= TestSupport.pytorchBound(m), what + ": error " + err + " on " + c);
        });
        assertEquals(TestSupport.TENSOR_CORE_MATHS.length, checked, "cuda-emu ran every tensor-core math");
    }
}
