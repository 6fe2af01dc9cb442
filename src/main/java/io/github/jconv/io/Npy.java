package io.github.jconv.io;

import io.github.jconv.Dtype;
import io.github.jconv.Precision;
import io.github.jconv.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files (format versions 1.0 to 3.0). Reads float32, float64 and float16 arrays (either byte
 * order, C order) and bfloat16 ones (2-byte void {@code <V2} or {@code |V2}, the bits little-endian: what {@code np.save}
 * writes for {@code ml_dtypes.bfloat16}) into float32 tensors (float64 rounded, the half formats exact); writes
 * little-endian float32 ({@code <f4}), or a half format rounded to nearest even ({@link #write(Path, Tensor, Dtype)}),
 * atomically (see {@link AtomicFile}): the data goes to a temporary file beside the target, which is renamed only when
 * complete, so a failure never leaves a partial output. Files are read and written in chunks, so a file of more
 * than 2 GiB (a float64 array, or float32 of up to 2^31 - 8 elements) needs no byte array of its size; the
 * header alone ({@link #readHeader}) tells the shape without reading the data.
 *
 * <p>Hand-written (about 200 lines) because the Java npy readers on Maven Central are either unmaintained
 * or pull in a Kotlin runtime for what is a 10-line header format.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");
    /** Largest header read (NumPy's own headers are a few hundred bytes). */
    private static final int MAX_HEADER = 1 << 20;
    /** Bytes per read or write of the data. */
    private static final int CHUNK = 1 << 24;

    private Npy() {
    }

    /** What a .npy header says: the shape and dtype of the array, and where its data starts. */
    public static final class Header {
        private final String name;
        private final int[] shape;
        private final String descr;
        private final int itemSize;
        private final ByteOrder order;
        private final long dataStart;
        private final boolean bfloat16; // 2-byte items: bfloat16 bits rather than IEEE binary16

        private Header(String name, int[] shape, String descr, int itemSize, ByteOrder order, long dataStart, boolean bfloat16) {
            this.name = name;
            this.shape = shape;
            this.descr = descr;
            this.itemSize = itemSize;
            this.order = order;
            this.dataStart = dataStart;
            this.bfloat16 = bfloat16;
        }

        /** The storage whose values the file holds exactly: fp16 for float16, bf16 for bfloat16, else fp32 (float64 is rounded to it). */
        public Dtype dtype() {
            return itemSize != 2 ? Dtype.FP32 : bfloat16 ? Dtype.BF16 : Dtype.FP16;
        }

        public int[] shape() {
            return shape.clone();
        }

        /** The dtype, e.g. {@code <f4}. */
        public String descr() {
            return descr;
        }

        public long elements() {
            return Tensor.elementCount(shape);
        }

        /** Bytes of data the header promises. */
        public long dataBytes() {
            return elements() * itemSize;
        }

        /** Checks that the file holds exactly the data its header promises. */
        private void requireDataBytes(long available) {
            if (available != dataBytes()) {
                throw new NpyException(name + " has " + available + " data bytes, its header (shape "
                        + java.util.Arrays.toString(shape) + ", " + descr + ") needs " + dataBytes());
            }
        }
    }

    /** Reads only the header of {@code file} (and checks the file's size against it). */
    public static Header readHeader(Path file) {
        try (FileChannel ch = open(file)) {
            return readHeader(file.toString(), ch);
        } catch (IOException e) {
            throw new NpyException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads a float32, float64, float16 or bfloat16 array; float64 is rounded to float32, the half formats widen exactly. */
    public static Tensor read(Path file) {
        try (FileChannel ch = open(file)) {
            Header h = readHeader(file.toString(), ch);
            float[] data = new float[Math.toIntExact(h.elements())];
            ch.position(h.dataStart);
            ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(CHUNK, Math.max(h.itemSize, h.dataBytes()))).order(h.order);
            int done = 0;
            while (done < data.length) {
                chunk.clear();
                chunk.limit((int) Math.min(chunk.capacity(), (long) (data.length - done) * h.itemSize));
                while (chunk.hasRemaining()) {
                    if (ch.read(chunk) < 0) {
                        throw new NpyException(file + " is truncated (it changed while being read)");
                    }
                }
                chunk.flip();
                done += decode(chunk, h, data, done);
            }
            return Tensor.of(data, h.shape);
        } catch (IOException e) {
            throw new NpyException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static FileChannel open(Path file) {
        if (Files.isDirectory(file)) {
            throw new NpyException("cannot read " + file + ": it is a directory");
        }
        try {
            return FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NpyException("file not found: " + file);
        } catch (AccessDeniedException e) {
            throw new NpyException("cannot read " + file + ": permission denied");
        } catch (IOException e) {
            throw new NpyException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static Header readHeader(String name, FileChannel ch) throws IOException {
        byte[] first = readAt(ch, 12);
        if (first.length < 10 || !startsWithMagic(first)) {
            throw new NpyException(name + " is not a .npy file (no \\x93NUMPY header)");
        }
        ByteBuffer le = ByteBuffer.wrap(first).order(ByteOrder.LITTLE_ENDIAN);
        boolean v1 = first[6] == 1;
        long headerLen = v1 ? le.getShort(8) & 0xffff : first.length == 12 ? le.getInt(8) & 0xffffffffL : 0;
        if (headerLen > MAX_HEADER) {
            throw new NpyException(name + " has a .npy header of " + headerLen + " bytes; jconv reads headers up to " + MAX_HEADER);
        }
        Header h = parseHeader(name, readAt(ch, (v1 ? 10 : 12) + (int) headerLen));
        h.requireDataBytes(ch.size() - h.dataStart);
        return h;
    }

    /** Up to {@code n} bytes from the start of the file (fewer if it is shorter). */
    private static byte[] readAt(FileChannel ch, int n) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(n, ch.size()));
        ch.position(0);
        while (buf.hasRemaining() && ch.read(buf) >= 0) {
            // until full or the end of the file
        }
        return java.util.Arrays.copyOf(buf.array(), buf.position());
    }

    /** Parses the bytes of a whole .npy file; {@code name} is used in error messages. */
    public static Tensor parse(String name, byte[] bytes) {
        Header h = parseHeader(name, bytes);
        h.requireDataBytes(bytes.length - h.dataStart);
        float[] data = new float[Math.toIntExact(h.elements())];
        decode(ByteBuffer.wrap(bytes, (int) h.dataStart, (int) h.dataBytes()).slice().order(h.order), h, data, 0);
        return Tensor.of(data, h.shape);
    }

    /** Converts the whole items in {@code buf} into data[at...]; returns how many. */
    private static int decode(ByteBuffer buf, Header h, float[] data, int at) {
        int n = buf.remaining() / h.itemSize;
        if (h.itemSize == 4) {
            buf.asFloatBuffer().get(data, at, n);
        } else if (h.itemSize == 2) {
            java.nio.ShortBuffer d = buf.asShortBuffer();
            for (int i = 0; i < n; i++) {
                data[at + i] = h.bfloat16 ? Precision.fromBfloat16(d.get(i)) : Precision.fromHalf(d.get(i));
            }
        } else {
            java.nio.DoubleBuffer d = buf.asDoubleBuffer();
            for (int i = 0; i < n; i++) {
                data[at + i] = (float) d.get(i);
            }
        }
        return n;
    }

    /** The header of a .npy file from its first bytes (at least the whole header). */
    private static Header parseHeader(String name, byte[] bytes) {
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
        boolean bfloat16 = false;
        switch (descr) {
            case "<f4": case "=f4": itemSize = 4; order = ByteOrder.LITTLE_ENDIAN; break;
            case ">f4": itemSize = 4; order = ByteOrder.BIG_ENDIAN; break;
            case "<f8": case "=f8": itemSize = 8; order = ByteOrder.LITTLE_ENDIAN; break;
            case ">f8": itemSize = 8; order = ByteOrder.BIG_ENDIAN; break;
            case "<f2": case "=f2": itemSize = 2; order = ByteOrder.LITTLE_ENDIAN; break;
            case ">f2": itemSize = 2; order = ByteOrder.BIG_ENDIAN; break;
            case "<V2": case "|V2": itemSize = 2; order = ByteOrder.LITTLE_ENDIAN; bfloat16 = true; break;
            default:
                throw new NpyException(name + " has dtype '" + descr + "'; jconv reads float32 ('<f4'), float64 ('<f8'), float16 ('<f2')"
                        + " or bfloat16 as 2-byte void ('<V2')");
        }
        long count;
        try {
            count = Tensor.elementCount(shape);
        } catch (RuntimeException e) {
            throw new NpyException(name + " has a bad shape in its header: " + e.getMessage());
        }
        if (count > Integer.MAX_VALUE - 8) {
            throw new NpyException(name + " holds " + count + " elements, more than a Java array holds (" + (Integer.MAX_VALUE - 8)
                    + "); split it along the batch");
        }
        return new Header(name, shape, descr, itemSize, order, dataStart, bfloat16);
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

    /** The header of a version 1.0 .npy file of this shape and dtype, padded to 64 bytes as NumPy does. */
    private static byte[] headerBytes(int[] shapeDims, String descr) {
        StringBuilder shape = new StringBuilder("(");
        for (int i = 0; i < shapeDims.length; i++) {
            shape.append(shapeDims[i]).append(shapeDims.length == 1 ? "," : (i + 1 < shapeDims.length ? ", " : ""));
        }
        shape.append(')');
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int unpadded = 10 + dict.length() + 1;
        int padding = (64 - unpadded % 64) % 64;
        String header = dict + " ".repeat(padding) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(10 + header.length()).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.ISO_8859_1));
        return buf.array();
    }

    /** The complete bytes of a version 1.0 {@code <f4} .npy file (small tensors; {@link #write} streams), shaped as {@link #write} says. */
    public static byte[] encode(Tensor t) {
        byte[] header = headerBytes(t.layout().memoryShape(t.shape()), Dtype.FP32.npyDescr());
        ByteBuffer buf = ByteBuffer.allocate(header.length + 4 * t.size()).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(header);
        buf.asFloatBuffer().put(t.data());
        return buf.array();
    }

    /**
     * Writes {@code t} as {@code <f4} to {@code file} (following a symbolic link to its target), replacing it only
     * once the whole file is written. The parent directory must exist. The array's shape is the memory's: a channels-last
     * tensor ({@link io.github.jconv.Layout#NHWC}) is written as an N x H x W x C array.
     */
    public static void write(Path file, Tensor t) {
        write(file, t, Dtype.FP32);
    }

    /**
     * As {@link #write(Path, Tensor)}, stored as {@code dtype} ({@link Dtype#npyDescr}): float32 as it is, float16 and
     * bfloat16 rounded to nearest even ({@link Precision#toHalf}, {@link Precision#toBfloat16}; overflow to infinity).
     */
    public static void write(Path file, Tensor t, Dtype dtype) {
        int item = dtype == Dtype.FP32 ? 4 : 2;
        AtomicFile.write(file, out -> {
            writeFully(out, ByteBuffer.wrap(headerBytes(t.layout().memoryShape(t.shape()), dtype.npyDescr())));
            float[] data = t.data();
            ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(CHUNK, Math.max(4, 4L * data.length))).order(ByteOrder.LITTLE_ENDIAN);
            for (int at = 0; at < data.length; ) {
                int n = Math.min(chunk.capacity() / item, data.length - at);
                chunk.clear();
                if (dtype == Dtype.FP32) {
                    chunk.asFloatBuffer().put(data, at, n);
                } else {
                    java.nio.ShortBuffer sb = chunk.asShortBuffer();
                    for (int i = 0; i < n; i++) {
                        sb.put(i, dtype == Dtype.FP16 ? Precision.toHalf(data[at + i]) : Precision.toBfloat16(data[at + i]));
                    }
                }
                chunk.limit(item * n);
                writeFully(out, chunk);
                at += n;
            }
        });
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            out.write(buf);
        }
    }
}
