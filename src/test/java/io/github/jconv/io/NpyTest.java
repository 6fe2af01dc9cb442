package io.github.jconv.io;

import io.github.jconv.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

public class NpyTest {
    /** A .npy file as NumPy writes it (version 1.0, header padded to 64 bytes). */
    public static byte[] npy(String descr, String shape, boolean fortran, byte[] data) {
        String dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
        int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1)).put(data);
        return b.array();
    }

    static String header(byte[] npy) {
        int len = ByteBuffer.wrap(npy).order(ByteOrder.LITTLE_ENDIAN).getShort(8);
        return new String(npy, 10, len, StandardCharsets.ISO_8859_1);
    }

    static byte[] doubles(ByteOrder order, double... v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(order);
        for (double d : v) {
            b.putDouble(d);
        }
        return b.array();
    }

    @Test
    void roundTripsFloat32(@TempDir Path dir) {
        Tensor t = Tensor.of(new float[] {1, -2.5f, 3e-8f, Float.MAX_VALUE, 0, 6}, 1, 2, 3, 1);
        Path f = dir.resolve("t.npy");
        Npy.write(f, t);
        Tensor back = Npy.read(f);
        assertArrayEquals(t.shape(), back.shape());
        assertArrayEquals(t.data(), back.data());
        byte[] bytes = Npy.encode(t);
        assertEquals(0, (10 + ByteBuffer.wrap(bytes, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort()) % 64, "header aligned to 64");
        assertTrue(header(bytes).contains("'shape': (1, 2, 3, 1), }"), header(bytes));
        assertTrue(header(Npy.encode(Tensor.of(new float[2], 2))).contains("'shape': (2,), }"));
    }

    @Test
    void readsFloat64AndBigEndian() {
        Tensor le = Npy.parse("a", npy("<f8", "(3,)", false, doubles(ByteOrder.LITTLE_ENDIAN, 1.5, -2, 0.1)));
        assertArrayEquals(new float[] {1.5f, -2f, 0.1f}, le.data());
        Tensor be = Npy.parse("b", npy(">f8", "(1, 3)", false, doubles(ByteOrder.BIG_ENDIAN, 1.5, -2, 0.1)));
        assertArrayEquals(new int[] {1, 3}, be.shape());
        assertArrayEquals(new float[] {1.5f, -2f, 0.1f}, be.data());
    }

    static byte[] shorts(ByteOrder order, int... bits) {
        ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(order);
        for (int v : bits) {
            b.putShort((short) v);
        }
        return b.array();
    }

    /**
     * float16 ('<f2', '>f2') and bfloat16 ('<V2', '|V2') files read exactly (1, the largest finite, the smallest
     * subnormal, -0, infinity, NaN), and written rounded to nearest even: ties to the even neighbour, overflow to infinity.
     */
    @Test
    void readsAndWritesHalfPrecision(@TempDir Path dir) {
        float[] halfValues = {1f, 65504f, 0x1p-24f, -0f, Float.POSITIVE_INFINITY, Float.NaN};
        int[] halfBits = {0x3c00, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00};
        assertArrayEquals(halfValues, Npy.parse("h", npy("<f2", "(6,)", false, shorts(ByteOrder.LITTLE_ENDIAN, halfBits))).data());
        assertArrayEquals(halfValues, Npy.parse("h", npy(">f2", "(2, 3)", false, shorts(ByteOrder.BIG_ENDIAN, halfBits))).data());
        float[] bfValues = {1f, -2.5f, 0x1p-133f, Float.NEGATIVE_INFINITY};
        int[] bfBits = {0x3f80, 0xc020, 0x0001, 0xff80};
        assertArrayEquals(bfValues, Npy.parse("b", npy("<V2", "(4,)", false, shorts(ByteOrder.LITTLE_ENDIAN, bfBits))).data());
        assertArrayEquals(bfValues, Npy.parse("b", npy("|V2", "(4,)", false, shorts(ByteOrder.LITTLE_ENDIAN, bfBits))).data());
        assertEquals(io.github.jconv.Dtype.BF16, Npy.readHeader(write(dir, "b.npy", npy("|V2", "(4,)", false, shorts(ByteOrder.LITTLE_ENDIAN, bfBits)))).dtype());

        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: to the even one, 1; 1 + 3 * 2^-11 to 1 + 2^-10 * 2; 65520 overflows
        Tensor t = Tensor.of(new float[] {1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 65520f, -0x1p-25f, Float.NaN}, 5);
        Npy.write(dir.resolve("h.npy"), t, io.github.jconv.Dtype.FP16);
        Npy.Header h = Npy.readHeader(dir.resolve("h.npy"));
        assertEquals("<f2", h.descr());
        assertEquals(io.github.jconv.Dtype.FP16, h.dtype());
        assertArrayEquals(new float[] {1f, 1 + 0x1p-9f, Float.POSITIVE_INFINITY, -0f, Float.NaN}, Npy.read(dir.resolve("h.npy")).data());
        // bfloat16: 8 bits of mantissa; 1 + 2^-8 is a tie (to 1), 1 + 3 * 2^-8 rounds up to 1 + 2^-6
        Npy.write(dir.resolve("b.npy"), Tensor.of(new float[] {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, Float.MAX_VALUE}, 3), io.github.jconv.Dtype.BF16);
        assertEquals("<V2", Npy.readHeader(dir.resolve("b.npy")).descr());
        assertArrayEquals(new float[] {1f, 1 + 0x1p-6f, Float.POSITIVE_INFINITY}, Npy.read(dir.resolve("b.npy")).data());
    }

    private static Path write(Path dir, String name, byte[] bytes) {
        try {
            return java.nio.file.Files.write(dir.resolve(name), bytes);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void refusesWhatItCannotRead() {
        assertMessage("x.npy is not a .npy file", () -> Npy.parse("x.npy", "hello world, not numpy".getBytes(StandardCharsets.US_ASCII)));
        assertMessage("has dtype '<i4'; jconv reads float32 ('<f4'), float64 ('<f8'), float16 ('<f2') or bfloat16 as 2-byte void ('<V2')",
                () -> Npy.parse("i.npy", npy("<i4", "(2,)", false, new byte[8])));
        assertMessage("is in Fortran order", () -> Npy.parse("f.npy", npy("<f4", "(2, 2)", true, new byte[16])));
        assertMessage("has 12 data bytes, its header (shape [2, 2], <f4) needs 16",
                () -> Npy.parse("s.npy", npy("<f4", "(2, 2)", false, new byte[12])));
        assertMessage("file not found: " + Path.of("/nonexistent/y.npy"), () -> Npy.read(Path.of("/nonexistent/y.npy")));
    }

    @Test
    void failedWriteLeavesNoFile(@TempDir Path dir) throws Exception {
        Path missingDir = dir.resolve("no/such/dir/y.npy");
        assertMessage("directory", () -> Npy.write(missingDir, Tensor.zeros(2)));
        assertFalse(Files.exists(missingDir));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "no temporary left behind");
        }
    }

    private static void assertMessage(String fragment, org.junit.jupiter.api.function.Executable e) {
        NpyException ex = assertThrows(NpyException.class, e);
        assertTrue(ex.getMessage().contains(fragment), () -> "'" + ex.getMessage() + "' lacks '" + fragment + "'");
    }
}
