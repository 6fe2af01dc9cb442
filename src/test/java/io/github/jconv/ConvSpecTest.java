package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConvSpecTest {
    private static void fails(String expectedFragment, Executable e) {
        InvalidConvolutionException ex = assertThrows(InvalidConvolutionException.class, e);
        assertTrue(ex.getMessage().contains(expectedFragment), () -> "message '" + ex.getMessage() + "' lacks '" + expectedFragment + "'");
        assertTrue(!ex.getMessage().contains("\n"), "one line");
    }

    @Test
    void invalidValuesNameTheFieldAndValue() {
        fails("stride must be >= 1, got 0 (height)", () -> ConvSpec.builder().stride(0, 1).build());
        fails("stride must be >= 1, got -2 (width)", () -> ConvSpec.builder().stride(1, -2).build());
        fails("dilation must be >= 1, got 0", () -> ConvSpec.builder().dilation(0).build());
        fails("groups must be >= 1, got 0", () -> ConvSpec.builder().groups(0).build());
        fails("padding top must be >= 0, got -1", () -> Padding.of(-1));
        fails("padding right must be >= 0, got -3", () -> Padding.of(0, 0, 0, -3));
        fails("output_padding must be >= 0, got -1", () -> ConvSpec.builder().outputPadding(-1).build());
        fails("output_padding (2, 0) must be smaller than max(stride, dilation) = (2, 1)",
                () -> ConvSpec.builder().stride(2, 1).outputPadding(2, 0).build());
    }

    @Test
    void outputPaddingMayUseDilation() {
        ConvSpec s = ConvSpec.builder().dilation(3).outputPadding(2).build();
        assertEquals(2, s.outputPaddingH());
    }

    @Test
    void paddingParsesEveryCliForm() {
        assertEquals(Padding.of(2), Padding.parse("2"));
        assertEquals(Padding.of(1, 2), Padding.parse("1,2"));
        assertEquals(Padding.of(1, 2, 3, 4), Padding.parse("1, 2,3,4"));
        assertEquals(Padding.same(), Padding.parse("same"));
        assertEquals(Padding.sameLower(), Padding.parse("SAME-LOWER"));
        assertEquals(Padding.valid(), Padding.parse("valid"));
        for (String s : new String[] {"1", "1,2", "1,2,3,4", "same", "same-lower", "valid"}) {
            assertEquals(Padding.parse(s), Padding.parse(Padding.parse(s).toString()));
        }
        fails("padding: expected", () -> Padding.parse("x"));
        fails("expected 1, 2 or 4 integers, got 3", () -> Padding.parse("1,2,3"));
        fails("padding top must be >= 0", () -> Padding.parse("-1"));
    }

    @Test
    void specIsAValue() {
        ConvSpec a = ConvSpec.builder().stride(2).padding(1).build();
        ConvSpec b = ConvSpec.builder().padding(Padding.of(1, 1)).stride(2, 2).build();
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertEquals(a, a.toBuilder().build());
    }
}
