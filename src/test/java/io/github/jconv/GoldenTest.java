package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;
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
        for (Algorithm a : Algorithm.values()) {
            ConvGeometry g = ConvGeometry.of(c.op(), x.shape(), w.shape(), b == null ? null : b.shape(), c.spec());
            if (a != Algorithm.AUTO && CpuBackend.INSTANCE.cannotImplement(a, g) != null) {
                continue;
            }
            ConvOptions o = ConvOptions.defaults().withAlgorithm(a);
            Tensor y = c.op() == ConvGeometry.Op.CONV2D ? Jconv.conv2d(x, w, b, c.spec(), o) : Jconv.convTranspose2d(x, w, b, c.spec(), o);
            assertArrayEquals(ref.shape(), y.shape(), a.label());
            double err = GoldenCase.error(y.data(), ref.data());
            assertTrue(err <= 1e-4, a + ": error " + err + " on " + c);
            checked++;
        }
        assertTrue(checked >= 4, "at least auto, reference, direct, im2col ran");
    }
}
