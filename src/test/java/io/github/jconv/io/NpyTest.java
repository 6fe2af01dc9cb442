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

    @Test
    void refusesWhatItCannotRead() {
        assertMessage("x.npy is not a .npy file", () -> Npy.parse("x.npy", "hello world, not numpy".getBytes(StandardCharsets.US_ASCII)));
        assertMessage("has dtype '<i4'; jconv reads float32 ('<f4') or float64 ('<f8')",
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
