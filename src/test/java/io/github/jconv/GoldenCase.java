package io.github.jconv;

import io.github.jconv.io.Npy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** One PyTorch-made case from ../shared/golden (see its README). */
public record GoldenCase(Path dir, ConvGeometry.Op op, ConvSpec spec, boolean bias) {
    public static List<GoldenCase> all() {
        try (Stream<Path> dirs = Files.list(TestSupport.goldenDir())) {
            List<GoldenCase> cases = new ArrayList<>();
            dirs.filter(d -> Files.isRegularFile(d.resolve("case.json"))).sorted().forEach(d -> cases.add(load(d)));
            return cases;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static GoldenCase load(Path dir) {
        try {
            String json = Files.readString(dir.resolve("case.json"));
            String op = string(json, "op");
            int[] stride = pair(json, "stride"), pad = pair(json, "padding"), dil = pair(json, "dilation");
            int[] outPad = pair(json, "output_padding");
            ConvSpec spec = ConvSpec.builder().stride(stride[0], stride[1]).padding(pad[0], pad[1]).dilation(dil[0], dil[1])
                    .groups(Integer.parseInt(field(json, "groups", "(\\d+)"))).outputPadding(outPad[0], outPad[1]).build();
            return new GoldenCase(dir, op.equals("conv2d") ? ConvGeometry.Op.CONV2D : ConvGeometry.Op.CONV_TRANSPOSE2D, spec,
                    field(json, "bias", "(true|false)").equals("true"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String field(String json, String key, String valuePattern) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*" + valuePattern).matcher(json);
        if (!m.find()) {
            throw new IllegalStateException("case.json lacks " + key + ": " + json);
        }
        return m.group(1);
    }

    private static String string(String json, String key) {
        return field(json, key, "\"([^\"]*)\"");
    }

    private static int[] pair(String json, String key) {
        String[] v = field(json, key, "\\[\\s*(-?\\d+\\s*,\\s*-?\\d+)\\s*\\]").split(",");
        return new int[] {Integer.parseInt(v[0].trim()), Integer.parseInt(v[1].trim())};
    }

    public Tensor x() { return Npy.read(dir.resolve("x.npy")); }
    public Tensor w() { return Npy.read(dir.resolve("w.npy")); }
    public Tensor b() { return bias ? Npy.read(dir.resolve("b.npy")) : null; }
    public Tensor y() { return Npy.read(dir.resolve("y.npy")); }

    /** The README's criterion: max|y - ref| / (1 + max|ref|). */
    public static double error(float[] y, float[] ref) {
        double e = 0, m = 0;
        for (int i = 0; i < ref.length; i++) {
            e = Math.max(e, Math.abs(y[i] - ref[i]));
            m = Math.max(m, Math.abs(ref[i]));
        }
        return e / (1 + m);
    }

    @Override
    public String toString() {
        return dir.getFileName() + " " + op + " " + spec;
    }
}
