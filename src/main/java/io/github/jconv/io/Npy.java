package io.github.jconv.io;

import io.github.jconv.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files (format versions 1.0 to 3.0). Reads float32 and float64 arrays (either byte
 * order, C order) into float32 tensors; writes little-endian float32 ({@code <f4}), atomically: the data
 * goes to a temporary file beside the target, which is renamed only when complete, so a failure never
 * leaves a partial output.
 *
 * <p>Hand-written (about 150 lines) because the Java npy readers on Maven Central are either unmaintained
 * or pull in a Kotlin runtime for what is a 10-line header format.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {
    }

    /** Reads a float32 or float64 array; float64 is rounded to float32. */
    public static Tensor read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new NpyException("file not found: " + file);
        } catch (AccessDeniedException e) {
            throw new NpyException("cannot read " + file + ": permission denied");
        } catch (IOException e) {
            throw new NpyException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return parse(file.toString(), bytes);
    }

    /** Parses the bytes of a .npy file; {@code name} is used in error messages. */
    public static Tensor parse(String name, byte[] bytes) {
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 10 || !startsWithMagic(bytes)) {
            throw new NpyException(name + " is not a .npy file (no \\x93NUMPY header)");
        }
        int major = bytes[6] & 0xff;
        int headerLen;
        int dataStart;
        if (major == 1) {
            headerLen = buf.getShort(8) & 0xffff;
            dataStart = 10 + headerLen;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) {
                throw new NpyException(name + " is truncated (header)");
            }
            long len = buf.getInt(8) & 0xffffffffL;
            if (len > bytes.length) {
                throw new NpyException(name + " is truncated (header)");
            }
            headerLen = (int) len;
            dataStart = 12 + headerLen;
        } else {
            throw new NpyException(name + " has .npy format version " + major + ", jconv reads versions 1 to 3");
        }
        if (dataStart > bytes.length) {
            throw new NpyException(name + " is truncated (header)");
        }
        String header = new String(bytes, dataStart - headerLen, headerLen,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        String descr = group(DESCR, header, name, "descr");
        String fortran = group(FORTRAN, header, name, "fortran_order");
        int[] shape = parseShape(group(SHAPE, header, name, "shape"), name);
        if (fortran.equals("True")) {
            throw new NpyException(name + " is in Fortran order; save it in C order (np.ascontiguousarray)");
        }
        int itemSize;
        ByteOrder order;
        switch (descr) {
            case "<f4": case "=f4": itemSize = 4; order = ByteOrder.LITTLE_ENDIAN; break;
            case ">f4": itemSize = 4; order = ByteOrder.BIG_ENDIAN; break;
            case "<f8": case "=f8": itemSize = 8; order = ByteOrder.LITTLE_ENDIAN; break;
            case ">f8": itemSize = 8; order = ByteOrder.BIG_ENDIAN; break;
            default:
                throw new NpyException(name + " has dtype '" + descr + "'; jconv reads float32 ('<f4') or float64 ('<f8')");
        }
        long count = Tensor.elementCount(shape);
        if (count > Integer.MAX_VALUE - 8) {
            throw new NpyException(name + " holds " + count + " elements, more than a Java array holds");
        }
        long expected = count * itemSize;
        if (bytes.length - dataStart != expected) {
            throw new NpyException(name + " has " + (bytes.length - dataStart) + " data bytes, its header (shape "
                    + java.util.Arrays.toString(shape) + ", " + descr + ") needs " + expected);
        }
        float[] data = new float[(int) count];
        ByteBuffer body = ByteBuffer.wrap(bytes, dataStart, (int) expected).slice().order(order);
        if (itemSize == 4) {
            body.asFloatBuffer().get(data);
        } else {
            java.nio.DoubleBuffer d = body.asDoubleBuffer();
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) d.get(i);
            }
        }
        return Tensor.of(data, shape);
    }

    private static boolean startsWithMagic(byte[] b) {
        for (int i = 0; i < MAGIC.length; i++) {
            if (b[i] != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    private static String group(Pattern p, String header, String name, String key) {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new NpyException(name + " has a .npy header without '" + key + "'");
        }
        return m.group(1);
    }

    private static int[] parseShape(String text, String name) {
        List<Integer> dims = new ArrayList<>();
        for (String part : text.split(",")) {
            String t = part.trim();
            if (t.isEmpty()) {
                continue;
            }
            try {
                dims.add(Integer.parseInt(t.endsWith("L") ? t.substring(0, t.length() - 1) : t));
            } catch (NumberFormatException e) {
                throw new NpyException(name + " has a bad shape in its header: (" + text + ")");
            }
        }
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The complete bytes of a version 1.0 {@code <f4} .npy file. */
    public static byte[] encode(Tensor t) {
        StringBuilder shape = new StringBuilder("(");
        for (int i = 0; i < t.rank(); i++) {
            shape.append(t.dim(i)).append(t.rank() == 1 ? "," : (i + 1 < t.rank() ? ", " : ""));
        }
        shape.append(')');
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
        int unpadded = 10 + dict.length() + 1;
        int padding = (64 - unpadded % 64) % 64;
        String header = dict + " ".repeat(padding) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(10 + header.length() + 4 * t.size()).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.ISO_8859_1));
        buf.asFloatBuffer().put(t.data());
        return buf.array();
    }

    /**
     * Writes {@code t} as {@code <f4} to {@code file}, replacing it only once the whole file is written. The
     * parent directory must exist.
     */
    public static void write(Path file, Tensor t) {
        AtomicFile.write(file, encode(t));
    }
}
