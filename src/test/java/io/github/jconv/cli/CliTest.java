package io.github.jconv.cli;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.GoldenCase;
import io.github.jconv.Jconv;
import io.github.jconv.Tensor;
import io.github.jconv.io.Npy;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI in-process: results, every bad input (exit 2, one line, no output file), bench, info, verify. */
class CliTest {
    record Result(int code, String out, String err) {
    }

    static Result cli(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out), new PrintWriter(err));
        return new Result(code, out.toString(), err.toString());
    }

    static Path write(Path dir, String name, Tensor t) {
        Path p = dir.resolve(name);
        Npy.write(p, t);
        return p;
    }

    static Tensor random(long seed, int... shape) {
        Random rnd = new Random(seed);
        float[] d = new float[(int) Tensor.elementCount(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) rnd.nextGaussian();
        }
        return Tensor.of(d, shape);
    }

    static List<GoldenCase> golden() {
        return GoldenCase.all();
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"conv2d", "conv-transpose2d", "conv2d-backward-weight",
            "conv-transpose2d-backward-weight", "conv2d-backward-bias", "bench", "info", "verify", "explain", "run"})
    void everyCommandsHelpPrintsCleanly(String command) {
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.err;
        Result r;
        System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            r = cli(command, "--help");
        } finally {
            System.setErr(saved);
        }
        String warnings = captured.toString(StandardCharsets.UTF_8);
        assertEquals(0, r.code());
        assertTrue(r.out().contains("Usage: jconv " + command), r.out());
        assertFalse(warnings.contains("WARN") || r.err().contains("WARN"), warnings + r.err());
        assertFalse(r.out().contains("%n") || r.out().contains("%%"), "format specifiers were not rendered: " + r.out());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("golden")
    void goldenCasesThroughTheCli(GoldenCase c, @TempDir Path dir) {
        ConvSpec s = c.spec();
        List<String> args = new ArrayList<>(List.of(c.op() == ConvGeometry.Op.CONV2D ? "conv2d" : "conv-transpose2d",
                "--input", c.dir().resolve("x.npy").toString(), "--weight", c.dir().resolve("w.npy").toString(),
                "--output", dir.resolve("y.npy").toString(),
                "--stride", s.strideH() + "," + s.strideW(), "--padding", s.padding().toString(),
                "--dilation", s.dilationH() + "," + s.dilationW(), "--groups", Integer.toString(s.groups())));
        if (c.bias()) {
            args.addAll(List.of("--bias", c.dir().resolve("b.npy").toString()));
        }
        if (c.op() == ConvGeometry.Op.CONV_TRANSPOSE2D) {
            args.addAll(List.of("--output-padding", s.outputPaddingH() + "," + s.outputPaddingW()));
        }
        Result r = cli(args.toArray(new String[0]));
        assertEquals(0, r.code(), r.err());
        Tensor y = Npy.read(dir.resolve("y.npy"));
        Tensor ref = c.y();
        assertArrayEquals(ref.shape(), y.shape());
        assertTrue(GoldenCase.error(y.data(), ref.data()) <= 1e-4, c.toString());
    }

    /** The 30 PyTorch weight-gradient cases (../shared/golden-wgrad) through conv2d-backward-weight and conv2d-backward-bias. */
    @Test
    void weightGradientGoldenCasesThroughTheCli(@TempDir Path dir) throws Exception {
        Path root = io.github.jconv.TestSupport.goldenDir().resolveSibling("golden-wgrad");
        List<Path> cases;
        try (var s = Files.list(root)) {
            cases = s.filter(d -> Files.isRegularFile(d.resolve("case.json"))).sorted().toList();
        }
        assertEquals(30, cases.size());
        for (Path c : cases) {
            String json = Files.readString(c.resolve("case.json"));
            java.util.function.Function<String, String> pair = key -> {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"" + key + "\"\\s*:\\s*\\[\\s*(\\d+)\\s*,\\s*(\\d+)").matcher(json);
                assertTrue(m.find(), key);
                return m.group(1) + "," + m.group(2);
            };
            java.util.regex.Matcher groups = java.util.regex.Pattern.compile("\"groups\"\\s*:\\s*(\\d+)").matcher(json);
            assertTrue(groups.find());
            Result r = cli("conv2d-backward-weight", "--input", c.resolve("x.npy").toString(), "--grad-output", c.resolve("dy.npy").toString(),
                    "--kernel-size", pair.apply("kernel_size"), "--stride", pair.apply("stride"), "--padding", pair.apply("padding"),
                    "--dilation", pair.apply("dilation"), "--groups", groups.group(1), "--backend", "cpu", "--output", dir.resolve("dw.npy").toString());
            assertEquals(0, r.code(), c + ": " + r.err());
            Tensor dw = Npy.read(dir.resolve("dw.npy")), ref = Npy.read(c.resolve("dw.npy"));
            assertArrayEquals(ref.shape(), dw.shape());
            assertTrue(GoldenCase.error(dw.data(), ref.data()) <= 1e-4, c.toString());
            r = cli("conv2d-backward-bias", "--grad-output", c.resolve("dy.npy").toString(), "--output", dir.resolve("db.npy").toString());
            assertEquals(0, r.code(), c + ": " + r.err());
            Tensor db = Npy.read(dir.resolve("db.npy")), dbRef = Npy.read(c.resolve("db.npy"));
            assertTrue(GoldenCase.error(db.data(), dbRef.data()) <= 1e-4, c.toString());
        }
    }

    @Test
    void weightGradientsOfEveryKindWriteWhatTheApiComputes(@TempDir Path dir) throws Exception {
        Tensor x = random(1, 2, 4, 9, 7), dy = random(2, 2, 6, 5, 7);
        ConvSpec spec = ConvSpec.builder().stride(2, 1).padding(1).groups(2).build();
        Result r = cli("conv2d-backward-weight", "--input", write(dir, "x.npy", x).toString(), "--grad-output", write(dir, "dy.npy", dy).toString(),
                "--kernel-size", "3", "--stride", "2,1", "--padding", "1", "--groups", "2", "--backend", "cuda-emu",
                "--output", dir.resolve("dw.npy").toString());
        assertEquals(0, r.code(), r.err());
        assertEquals("", r.err());
        Tensor want = Jconv.conv2dBackwardWeight(x, dy, new int[] {3, 3}, spec);
        assertArrayEquals(want.data(), Npy.read(dir.resolve("dw.npy")).data(), 1e-4f);
        // conv_transpose2d: its input x (N x C_in x H x W) and the gradient of its output
        Tensor xt = random(3, 2, 6, 5, 7), dyt = random(4, 2, 4, 10, 7);
        ConvSpec st = ConvSpec.builder().stride(2, 1).padding(1).groups(2).outputPadding(1, 0).build();
        r = cli("conv-transpose2d-backward-weight", "--input", write(dir, "xt.npy", xt).toString(), "--grad-output", write(dir, "dyt.npy", dyt).toString(),
                "--kernel-size", "3", "--stride", "2,1", "--padding", "1", "--groups", "2", "--output-padding", "1,0",
                "--output", dir.resolve("dwt.npy").toString());
        assertEquals(0, r.code(), r.err());
        Tensor wantT = Jconv.convTranspose2dBackwardWeight(xt, dyt, new int[] {3, 3}, st, io.github.jconv.ConvOptions.defaults());
        assertArrayEquals(new int[] {6, 2, 3, 3}, wantT.shape());
        assertArrayEquals(wantT.data(), Npy.read(dir.resolve("dwt.npy")).data(), 1e-5f);
        String xs = dir.resolve("x.npy").toString(), dys = dir.resolve("dy.npy").toString();
        bad(dir, "dy has shape [2, 6, 5, 7], but conv2d of x [2, 4, 9, 7] with a 3x3 kernel and this spec gives [2, 6, 7, 5]",
                "conv2d-backward-weight", "--input", xs, "--grad-output", dys, "--kernel-size", "3", "--groups", "2", "--output", "OUT");
        bad(dir, "algorithm 'kernel-matrix' cannot compute this weight gradient on backend 'cpu'", "conv2d-backward-weight", "--input", xs,
                "--grad-output", dys, "--kernel-size", "3", "--stride", "2,1", "--padding", "1", "--groups", "2", "--backend", "cpu",
                "--algorithm", "kernel-matrix", "--output", "OUT");
        bad(dir, "--kernel-size: expected an integer or two", "conv2d-backward-weight", "--input", xs, "--grad-output", dys,
                "--kernel-size", "3x3", "--output", "OUT");
        bad(dir, "--grad-output must have 4 dimensions", "conv2d-backward-bias", "--grad-output",
                write(dir, "b3.npy", random(5, 2, 3, 4)).toString(), "--output", "OUT");
    }

    @Test
    void conv2dWritesWhatTheApiComputes(@TempDir Path dir) {
        Tensor x = random(1, 2, 3, 9, 7), w = random(2, 4, 3, 3, 2), b = random(3, 4);
        Result r = cli("conv2d", "--input", write(dir, "x.npy", x).toString(), "--weight", write(dir, "w.npy", w).toString(),
                "--bias", write(dir, "b.npy", b).toString(), "--output", dir.resolve("y.npy").toString(),
                "--stride", "2,1", "--padding", "0,1,2,0", "--dilation", "1,2", "--algorithm", "direct", "--threads", "1");
        assertEquals(0, r.code(), r.err());
        assertEquals("", r.err());
        Tensor want = Jconv.conv2d(x, w, b, ConvSpec.builder().stride(2, 1).padding(io.github.jconv.Padding.of(0, 1, 2, 0))
                .dilation(1, 2).build());
        Tensor got = Npy.read(dir.resolve("y.npy"));
        assertArrayEquals(want.shape(), got.shape());
        assertArrayEquals(want.data(), got.data(), 1e-5f);
    }

    /**
     * --math: 3xtf32, tf32 and bf16 on cuda-emu run the tensor-core kernels (3xtf32 within FP32-level error of the API's
     * fp32 result, tf32 and bf16 within their rounding's); a math the backend lacks or an unknown one is one line and exit 2; bench adds a row per math.
     */
    @Test
    void mathModesOnTheCommandLine(@TempDir Path dir) throws Exception {
        Tensor x = random(11, 1, 16, 9, 9), w = random(12, 24, 16, 3, 3);
        String xs = write(dir, "x.npy", x).toString(), ws = write(dir, "w.npy", w).toString();
        Tensor want = Jconv.conv2d(x, w, null, ConvSpec.builder().padding(1).build());
        for (String math : new String[] {"3xtf32", "tf32", "bf16"}) {
            Path y = dir.resolve(math + ".npy");
            Result r = cli("conv2d", "--input", xs, "--weight", ws, "--output", y.toString(), "--padding", "1", "--backend", "cuda-emu",
                    "--math", math);
            assertEquals(0, r.code(), r.err());
            float[] got = Npy.read(y).data();
            double err = io.github.jconv.cpu.ReferenceConv.maxRelError(got, toDouble(want.data()));
            double bound = math.equals("bf16") ? 5e-2 : math.equals("tf32") ? 1e-2 : 1e-5;
            assertTrue(err < bound && (math.equals("3xtf32") || err > 1e-5), math + ": max relative error " + err);
        }
        bad(dir, "--math tf32: backend 'cpu' computes in strict float32 only (math fp32)", "conv2d", "--input", xs, "--weight", ws,
                "--output", "OUT", "--backend", "cpu", "--math", "tf32");
        bad(dir, "unknown math mode 'fp8' (fp32, tf32, 3xtf32, fp16, bf16)", "conv2d", "--input", xs, "--weight", ws, "--output", "OUT",
                "--backend", "cuda-emu", "--math", "fp8");
        bad(dir, "--math tf32: the tensor-core kernels run on cuda and cuda-emu, not on cpu", "bench", "--backend", "cpu", "--shape",
                "1,4,8,8,4,3,3,1,1,1,1", "--math", "tf32", "--no-peers");
        Result b = cli("bench", "--backend", "cuda-emu", "--shape", "1,8,8,8,8,3,3,1,1,1,1", "--algorithm", "implicit-gemm", "--runs", "1",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--math", "tf32,3xtf32", "--no-peers");
        assertEquals(0, b.code(), b.err());
        assertTrue(b.out().contains("implicit-gemm/tf32") && b.out().contains("implicit-gemm/3xtf32"), b.out());
        // --dtype: a row per half-precision dtype (on a GPU the implicit GEMM in the dtype's own math), refused where no plan runs
        Result h = cli("bench", "--backend", "cuda-emu", "--shape", "1,8,8,8,8,3,3,1,1,1,1", "--algorithm", "implicit-gemm", "--algorithm", "direct",
                "--runs", "1", "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--dtype", "fp16,bf16", "--no-peers");
        assertEquals(0, h.code(), h.err());
        assertTrue(h.out().contains("implicit-gemm/fp16@fp16") && h.out().contains("implicit-gemm/bf16@bf16") && h.out().contains("direct@fp16"),
                h.out());
        Result hc = cli("bench", "--backend", "cpu", "--shape", "1,8,8,8,8,3,3,1,1,1,1", "--algorithm", "direct", "--runs", "1", "--warmup", "1",
                "--warmup-ms", "0", "--warmup-max-ms", "0", "--dtype", "bf16", "--no-peers");
        assertEquals(0, hc.code(), hc.err());
        assertTrue(hc.out().contains("direct@bf16"), hc.out());
        bad(dir, "--dtype times conv2d and conv_transpose2d plans on half-precision tensors, not the weight gradient", "bench", "--backend", "cpu",
                "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--op", "conv2d-backward-weight", "--dtype", "fp16", "--no-peers");
        bad(dir, "unknown dtype 'fp8' (fp32, fp16, bf16)", "bench", "--backend", "cpu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--dtype", "fp8",
                "--no-peers");
        // --layout: each dtype row in each layout (nhwc on the channels-last kernels on a GPU), the same results
        Result l = cli("bench", "--backend", "cuda-emu", "--shape", "1,8,8,8,8,3,3,1,1,1,1", "--algorithm", "implicit-gemm", "--runs", "1",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--dtype", "fp16", "--layout", "nchw,nhwc", "--no-peers",
                "--json", dir.resolve("layouts.json").toString());
        assertEquals(0, l.code(), l.err());
        assertTrue(l.out().contains("implicit-gemm/fp16@fp16 ") && l.out().contains("implicit-gemm/fp16@fp16/nhwc ")
                && l.out().contains("channels-last kernels where they take the layer"), l.out());
        // and each --math row: tf32 on float32 NHWC tensors on the channels-last kernels
        Result lm = cli("bench", "--backend", "cuda-emu", "--shape", "1,8,8,8,8,3,3,1,1,1,1", "--algorithm", "implicit-gemm", "--runs", "1",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--math", "tf32", "--layout", "nchw,nhwc", "--no-peers");
        assertEquals(0, lm.code(), lm.err());
        assertTrue(lm.out().contains("implicit-gemm/tf32 ") && lm.out().contains("implicit-gemm/tf32/nhwc "), lm.out());
        bad(dir, "--layout sets the layouts of the --dtype and --math rows of --suite and --shape runs: give --dtype or --math too", "bench", "--backend", "cpu",
                "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--layout", "nhwc", "--no-peers");
        bad(dir, "--layout sets the layouts of the --dtype and --math rows of --suite and --shape runs: --network trunks run nchw", "bench", "--network",
                "mobilenetv2", "--dtype", "fp16", "--layout", "nhwc", "--no-peers");
        bad(dir, "unknown layout 'nhcw' (nchw, nhwc)", "bench", "--backend", "cpu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--dtype", "fp16",
                "--layout", "nhcw", "--no-peers");
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    /** One bad input: exit 2, exactly one line on stderr naming it, no stack trace, the output file untouched. */
    private static void bad(Path dir, String fragment, String... args) throws Exception {
        Path out = dir.resolve("out.npy");
        Files.write(out, "previous".getBytes(StandardCharsets.US_ASCII));
        List<String> all = new ArrayList<>(List.of(args));
        for (int i = 0; i < all.size(); i++) {
            all.set(i, all.get(i).replace("OUT", out.toString()).replace("DIR", dir.toString()));
        }
        Result r = cli(all.toArray(new String[0]));
        assertEquals(2, r.code(), () -> "exit code for " + all + ": " + r.err());
        String err = r.err().strip();
        assertFalse(err.contains("\n"), () -> "one line expected: " + err);
        assertTrue(err.startsWith("jconv: error: "), err);
        assertTrue(err.contains(fragment), () -> "'" + err + "' lacks '" + fragment + "'");
        assertFalse(err.contains("Exception") || err.contains("\tat "), err);
        assertEquals("previous", Files.readString(out), "output file must not be touched on failure");
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().endsWith(".part")), "no partial file");
        }
    }

    @Test
    void everyBadInputIsOneLineAndExitCode2(@TempDir Path dir) throws Exception {
        String x = write(dir, "x.npy", random(1, 1, 3, 6, 6)).toString();
        String w = write(dir, "w.npy", random(2, 4, 3, 3, 3)).toString();
        String w4 = write(dir, "w4.npy", random(2, 2, 4, 3, 3)).toString();
        String wBig = write(dir, "wbig.npy", random(2, 2, 3, 9, 9)).toString();
        String wt = write(dir, "wt.npy", random(2, 3, 2, 3, 3)).toString();
        Files.write(dir.resolve("text.npy"), "not numpy".getBytes(StandardCharsets.US_ASCII));
        Files.write(dir.resolve("int.npy"), intNpy());
        bad(dir, "input has C=3 channels but the weight expects 4", "conv2d", "--input", x, "--weight", w4, "--output", "OUT");
        bad(dir, "groups=2 must divide the input channels C=3", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--groups", "2");
        bad(dir, "kernel height 9", "conv2d", "--input", x, "--weight", wBig, "--output", "OUT", "--padding", "1");
        bad(dir, "stride must be >= 1, got 0", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--stride", "0");
        bad(dir, "dilation must be >= 1, got 0", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--dilation", "1,0");
        bad(dir, "padding top must be >= 0, got -1", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--padding", "-1");
        bad(dir, "output_padding (2, 2) must be smaller than max(stride, dilation) = (2, 2)", "conv-transpose2d",
                "--input", x, "--weight", wt, "--output", "OUT", "--stride", "2", "--output-padding", "2");
        bad(dir, "unknown backend 'tpu'", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--backend", "tpu");
        bad(dir, "unknown algorithm 'fft'", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--algorithm", "fft");
        bad(dir, "file not found: " + dir.resolve("missing.npy"), "conv2d", "--input", "DIR/missing.npy", "--weight", w, "--output", "OUT");
        bad(dir, "is not a .npy file", "conv2d", "--input", "DIR/text.npy", "--weight", w, "--output", "OUT");
        bad(dir, "has dtype '<i4'", "conv2d", "--input", "DIR/int.npy", "--weight", w, "--output", "OUT");
        if (!io.github.jconv.TestSupport.gpuPresent()) {
            bad(dir, "backend 'cuda' not available: ", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--backend", "cuda");
            bad(dir, "backend 'cudnn' not available: ", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--backend", "cudnn");
        }
        bad(dir, "--stride: expected an integer or two", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--stride", "a,b");
        bad(dir, "Unknown options: '--strid'", "conv2d", "--input", x, "--weight", w, "--output", "OUT", "--strid", "2");
        bad(dir, "Missing required option: '--weight", "conv2d", "--input", x, "--output", "OUT");
        bad(dir, "depthwise needs groups == input channels", "conv2d", "--input", x, "--weight", w, "--output", "OUT",
                "--algorithm", "depthwise", "--backend", "cpu");
        bad(dir, "--shape: expected 11 integers", "bench", "--shape", "1,2,3");
        bad(dir, "Unmatched argument at index 0: 'frobnicate'", "frobnicate");
    }

    private static byte[] intNpy() {
        String header = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 1, 2), }";
        header = header + " ".repeat((64 - (10 + header.length() + 1) % 64) % 64) + "\n";
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(10 + header.length() + 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1)).putInt(1).putInt(2);
        return b.array();
    }

    @Test
    void debugShowsTheStackTrace(@TempDir Path dir) {
        Result r = cli("conv2d", "--input", dir.resolve("nope.npy").toString(), "--weight", "w", "--output",
                dir.resolve("o.npy").toString(), "--debug");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("\tat io.github.jconv"), r.err());
    }

    /**
     * --paired: refused in one line where it cannot pair (another backend, --no-peers, --network, the weight gradient); without
     * ONNX Runtime (these tests' classpath) the run goes on and says so. The pairing itself runs in CI's peers step.
     */
    @Test
    @SuppressWarnings("unchecked")
    void benchPairedNeedsTheCpuBackendAndOnnxRuntime(@TempDir Path dir) throws Exception {
        bad(dir, "--paired times jconv's cpu rows of --suite or --shape beside ONNX Runtime's Conv, not backend cuda-emu", "bench", "--backend",
                "cuda-emu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--paired");
        bad(dir, "--paired times jconv's cpu rows of --suite or --shape beside ONNX Runtime's Conv: not with --no-peers", "bench", "--backend",
                "cpu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--paired", "--no-peers");
        bad(dir, "--paired times jconv's cpu rows of --suite or --shape beside ONNX Runtime's Conv: --network pairs its trunks already", "bench",
                "--network", "mobilenetv2", "--paired");
        bad(dir, "--paired times jconv's cpu rows of --suite or --shape beside ONNX Runtime's Conv: ONNX Runtime has no weight gradient", "bench",
                "--backend", "cpu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--op", "conv2d-backward-weight", "--paired");
        Path json = dir.resolve("bench.json");
        Result r = cli("bench", "--backend", "cpu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--algorithm", "direct", "--runs", "1", "--warmup", "1",
                "--warmup-ms", "0", "--warmup-max-ms", "0", "--paired", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("peer paired: skipped: ONNX Runtime is not among the peers"), r.out());
        Map<String, Object> doc = com.fasterxml.jackson.jr.ob.JSON.std.mapFrom(Files.readString(json));
        assertEquals(List.of(), doc.get("paired"));
    }

    /**
     * --thread-scaling: each jconv row also timed on 1 thread and on 2 in alternating rounds, listed with the speedup (the
     * rounds' median ratio, within their range), in the text and the JSON.
     */
    @Test
    @SuppressWarnings("unchecked")
    void benchReportsThreadScaling(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("bench.json");
        Result r = cli("bench", "--shape", "1,8,12,12,8,3,3,1,1,1,1", "--algorithm", "direct", "--algorithm", "im2col", "--runs", "2",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--threads", "2", "--thread-scaling", "--no-peers",
                "--backend", "cpu", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("thread scaling (1 thread and 2 in alternating slots of >= 20 ms, 11 rounds, the order swapped each round;"),
                r.out());
        Map<String, Object> doc = com.fasterxml.jackson.jr.ob.JSON.std.mapFrom(Files.readString(json));
        List<Map<String, Object>> scaling = (List<Map<String, Object>>) doc.get("thread_scaling");
        assertEquals(2, scaling.size(), scaling.toString());
        for (Map<String, Object> s : scaling) {
            assertEquals(11, ((Number) s.get("rounds")).intValue(), "max(11, 2 x --runs + 1) rounds: " + s);
            double one = ((Number) s.get("median_ms_1_thread")).doubleValue(), two = ((Number) s.get("median_ms_2_threads")).doubleValue();
            double speedup = ((Number) s.get("speedup")).doubleValue();
            assertTrue(one > 0 && two > 0, s.toString());
            assertTrue(((Number) s.get("speedup_min")).doubleValue() <= speedup && speedup <= ((Number) s.get("speedup_max")).doubleValue(),
                    s.toString());
            assertTrue(r.out().contains(String.format("%6.2fx %11s", speedup, String.format("%.2f-%.2f", s.get("speedup_min"), s.get("speedup_max")))),
                    r.out());
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void benchPrintsATableAndWritesJson(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("bench.json");
        Result r = cli("bench", "--shape", "1,4,10,10,8,3,3,1,1,1,1", "--shape", "2,4,9,9,4,3,3,2,1,1,4", "--runs", "2",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--threads", "1", "--no-peers", "--backend", "cpu", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("median_ms") && r.out().contains("peer peers: off (--no-peers)"), r.out());
        Map<String, Object> doc = com.fasterxml.jackson.jr.ob.JSON.std.mapFrom(Files.readString(json));
        List<Map<String, Object>> rows = (List<Map<String, Object>>) doc.get("results");
        int dense = io.github.jconv.cpu.Sgemm.VECTOR ? 4 : 3; // winograd needs the Vector API
        assertEquals(dense + 4, rows.size(), dense + " algorithms for the dense layer, 4 for the depthwise one");
        for (Map<String, Object> row : rows) {
            for (String field : new String[] {"shape", "op", "backend", "algorithm", "threads", "median_ms", "min_ms", "max_ms",
                    "gflops", "pct_peak", "ratio_to_best_peer", "max_rel_error"}) {
                assertTrue(row.containsKey(field), field + " missing in " + row);
            }
            assertEquals("cpu", row.get("backend"));
            assertEquals(1, ((Number) row.get("threads")).intValue());
            assertTrue(((Number) row.get("max_rel_error")).doubleValue() < 1e-5, row.toString());
            double min = ((Number) row.get("min_ms")).doubleValue(), med = ((Number) row.get("median_ms")).doubleValue();
            assertTrue(min <= med && med <= ((Number) row.get("max_ms")).doubleValue(), row.toString());
        }
        assertTrue(rows.stream().anyMatch(x -> x.get("algorithm").equals("depthwise")));
        assertTrue(((Map<String, Object>) doc.get("peers")).containsKey("peers"));
        Result t = cli("bench", "--op", "conv-transpose2d", "--shape", "1,4,6,6,3,3,3,2,1,1,1", "--runs", "1", "--warmup-ms", "0", "--warmup-max-ms", "0",
                "--algorithm", "auto", "--no-peers", "--backend", "cpu");
        assertEquals(0, t.code(), t.err());
        assertTrue(t.out().contains("conv_transpose2d") && t.out().contains("auto:im2col"), t.out());
    }

    @Test
    void benchWritesAReportWithCharts(@TempDir Path dir) throws Exception {
        Path report = dir.resolve("report");
        Result r = cli("bench", "--suite", "dilated", "--batch", "1", "--algorithm", "direct", "--runs", "1", "--warmup-ms", "0", "--warmup-max-ms", "0",
                "--no-peers", "--backend", "cpu", "--report", report.toString());
        assertEquals(0, r.code(), r.err());
        String html = Files.readString(report.resolve("index.html"));
        assertTrue(html.contains("<img src=\"gflops.png\"") && html.contains("1,256,33,33,256,3,3,1,8,8,1"), html);
        for (String png : new String[] {"gflops.png", "error.png", "peak.png"}) {
            byte[] b = Files.readAllBytes(report.resolve(png));
            assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png);
        }
    }

    @Test
    void explainSaysWhatEachAlgorithmCanDo() {
        Result r = cli("explain", "--shape", "2,8,16,16,8,3,3,1,1,1,8", "--backend", "cpu");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("output [2, 8, 16, 16]"), r.out());
        assertTrue(r.out().contains("depthwise      can "), r.out());
        assertTrue(r.out().contains("auto: depthwise (heuristic: below"), r.out());
        Result bad = cli("explain", "--shape", "2,8,16,16,8,3,3,1,1,1,3");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("groups=3 must divide"), bad.err());
    }

    /** On the CUDA backends explain names the implicit GEMM's kernel, its tile and why, and conv_transpose2d's phases. */
    @Test
    void explainNamesTheCudaKernelVariant() {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.github.jconv.cuda.CudaBackend.EMU.unavailableReason() == null);
        Result r = cli("explain", "--shape", "8,256,56,56,256,3,3,1,1,1,1", "--backend", "cuda-emu");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("kernel jconv_implicit_gemm_fprop_128x128, tile 128x128 (the largest tile giving at least 264 blocks), "
                + "392 blocks of 256 threads"), r.out());
        Result t = cli("explain", "--op", "conv-transpose2d", "--shape", "1,64,7,7,32,3,3,2,1,1,1", "--backend", "cuda-emu");
        assertEquals(0, t.code(), t.err());
        assertTrue(t.out().contains("kernel jconv_implicit_gemm_dgrad_64x64, tile 64x64 (the smallest tile: fewer than 264 blocks with any)"),
                t.out());
        assertTrue(t.out().contains("4 stride phase(s)"), t.out());
    }

    @Test
    void infoNamesEveryBackend() {
        Result r = cli("info");
        assertEquals(0, r.code(), r.err());
        boolean gpu = io.github.jconv.TestSupport.gpuPresent();
        for (String s : new String[] {"jconv ", "java: ", "cpu cores: ", "cpu simd: ", "cpu kernels: Vector API, ", "cpu: available; algorithms: reference, direct, im2col, kernel-matrix, depthwise",
                gpu ? "cuda: available" : "cuda: not available: ", "cuda-emu: available; algorithms: direct, im2col, implicit-gemm, depthwise",
                "cudnn: ", gpu ? "auto: cuda" : "auto: cpu"}) {
            assertTrue(r.out().contains(s), s + " missing in " + r.out());
        }
    }

    @Test
    void verifyChecksEveryAlgorithm() {
        Result r = cli("verify", "--threads", "2");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("verify: all within"), r.out());
        assertTrue(r.out().contains("conv_transpose2d") && r.out().contains("kernel-matrix"), r.out());
        if (!io.github.jconv.TestSupport.gpuPresent()) {
            assertTrue(r.out().contains("cudnn: not available"), r.out());
        }
    }

    // ------------------------------------------------------------ robustness (the correctness issue's CLI cases)

    /** The layers that crashed im2col (and auto), through the CLI with im2col, auto and every other CPU algorithm. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {0, 1, 2, 3, 4})
    void kernelsOverhangingTheInputRunThroughTheCli(int i, @TempDir Path dir) {
        ConvGeometry g = io.github.jconv.OverhangingKernelTest.example(i);
        Tensor x = random(i, g.inputShape()), w = random(i + 10, g.weightShape());
        Tensor b = g.hasBias ? random(i + 20, g.biasLength()) : null;
        for (String algorithm : new String[] {"im2col", "auto", "direct", "kernel-matrix"}) {
            List<String> args = new ArrayList<>(List.of("conv2d", "--input", write(dir, "x.npy", x).toString(),
                    "--weight", write(dir, "w.npy", w).toString(), "--output", dir.resolve("y.npy").toString(),
                    "--stride", g.strideH + "," + g.strideW, "--padding", g.padTop + "," + g.padBottom + "," + g.padLeft + "," + g.padRight,
                    "--dilation", g.dilationH + "," + g.dilationW, "--groups", Integer.toString(g.groups), "--algorithm", algorithm));
            if (b != null) {
                args.addAll(List.of("--bias", write(dir, "b.npy", b).toString()));
            }
            Result r = cli(args.toArray(new String[0]));
            assertEquals(0, r.code(), algorithm + ": " + r.err());
            Tensor y = Npy.read(dir.resolve("y.npy"));
            io.github.jconv.TestSupport.assertMatchesReference("cli " + algorithm, g, x.data(), w.data(), b == null ? null : b.data(), y.data());
        }
    }

    @Test
    void anEmptyBatchGivesAnEmptyOutputOfPyTorchsShape(@TempDir Path dir) {
        String x = write(dir, "x.npy", Tensor.zeros(0, 3, 5, 5)).toString(), w = write(dir, "w.npy", random(1, 4, 3, 3, 3)).toString();
        Result r = cli("conv2d", "--input", x, "--weight", w, "--output", dir.resolve("y.npy").toString());
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(new int[] {0, 4, 3, 3}, Npy.read(dir.resolve("y.npy")).shape());
        String wt = write(dir, "wt.npy", random(2, 3, 4, 3, 3)).toString();
        r = cli("conv-transpose2d", "--input", x, "--weight", wt, "--output", dir.resolve("t.npy").toString(), "--stride", "2",
                "--output-padding", "1");
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(new int[] {0, 4, 12, 12}, Npy.read(dir.resolve("t.npy")).shape());
    }

    @Test
    void convTranspose2dTakesSamePaddingAndAnOutputSize(@TempDir Path dir) {
        Tensor x = random(3, 2, 4, 5, 6), w = random(4, 4, 3, 3, 3);
        String xs = write(dir, "x.npy", x).toString(), ws = write(dir, "w.npy", w).toString();
        Result r = cli("conv-transpose2d", "--input", xs, "--weight", ws, "--output", dir.resolve("s.npy").toString(),
                "--stride", "2", "--padding", "same");
        assertEquals(0, r.code(), r.err());
        Tensor same = Npy.read(dir.resolve("s.npy"));
        assertArrayEquals(new int[] {2, 3, 10, 12}, same.shape(), "ONNX SAME: output = input x stride");
        Tensor want = Jconv.convTranspose2d(x, w, null, ConvSpec.builder().stride(2).padding(io.github.jconv.Padding.same()).build());
        assertArrayEquals(want.data(), same.data(), 1e-5f);
        r = cli("conv-transpose2d", "--input", xs, "--weight", ws, "--output", dir.resolve("o.npy").toString(),
                "--stride", "2", "--output-size", "9,12");
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(new int[] {2, 3, 9, 12}, Npy.read(dir.resolve("o.npy")).shape());
    }

    /**
     * Half-precision files: float16 ('<f2') and bfloat16 ('<V2') operands read exactly, the output stored as the input's
     * (or --dtype's) format: each element the float32 run's on the widened operands, rounded once to nearest even; bad
     * --dtype values are exit 2, one line.
     */
    @Test
    void halfPrecisionFiles(@TempDir Path dir) {
        for (io.github.jconv.Dtype dt : new io.github.jconv.Dtype[] {io.github.jconv.Dtype.FP16, io.github.jconv.Dtype.BF16}) {
            Tensor x = random(1, 2, 5, 9, 7), w = random(2, 6, 5, 3, 3), b = random(3, 6);
            String xs = dir.resolve("x.npy").toString(), ws = dir.resolve("w.npy").toString(), bs = dir.resolve("b.npy").toString();
            Npy.write(Path.of(xs), x, dt);
            Npy.write(Path.of(ws), w, dt);
            Npy.write(Path.of(bs), b, dt);
            // the same operands widened, as float32 files
            String xf = write(dir, "xf.npy", Npy.read(Path.of(xs))).toString(), wf = write(dir, "wf.npy", Npy.read(Path.of(ws))).toString();
            String bf = write(dir, "bf.npy", Npy.read(Path.of(bs))).toString();
            String[] common = {"--stride", "2", "--padding", "1", "--backend", "cpu", "--algorithm", "direct"};
            Result r = cli(concat(new String[] {"conv2d", "--input", xs, "--weight", ws, "--bias", bs, "--output", dir.resolve("y.npy").toString()}, common));
            assertEquals(0, r.code(), r.err());
            r = cli(concat(new String[] {"conv2d", "--input", xf, "--weight", wf, "--bias", bf, "--output", dir.resolve("yf.npy").toString()}, common));
            assertEquals(0, r.code(), r.err());
            assertEquals(dt.npyDescr(), Npy.readHeader(dir.resolve("y.npy")).descr(), "the output keeps the input's storage");
            float[] want = Npy.read(dir.resolve("yf.npy")).data(), got = Npy.read(dir.resolve("y.npy")).data();
            for (int i = 0; i < want.length; i++) {
                assertEquals(dt.round(want[i]), got[i], 0f, dt + " element " + i);
            }
            r = cli(concat(new String[] {"conv2d", "--input", xs, "--weight", ws, "--bias", bs, "--output", dir.resolve("y32.npy").toString(),
                    "--dtype", "fp32"}, common));
            assertEquals(0, r.code(), r.err());
            assertEquals("<f4", Npy.readHeader(dir.resolve("y32.npy")).descr());
            assertArrayEquals(want, Npy.read(dir.resolve("y32.npy")).data(), 0f, "float32 output: no rounding");
        }
        Result bad = cli("conv2d", "--input", dir.resolve("x.npy").toString(), "--weight", dir.resolve("w.npy").toString(),
                "--output", dir.resolve("z.npy").toString(), "--dtype", "fp8");
        assertEquals(2, bad.code());
        assertEquals("jconv: error: unknown dtype 'fp8' (fp32, fp16, bf16)", bad.err().strip());
        assertFalse(Files.exists(dir.resolve("z.npy")));
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /**
     * {@code --layout nhwc}: N x H x W x C input and output files, the same values as the NCHW run (the stateless path, and
     * a plan's with --math on cuda-emu where it is present); a bad layout or a 3-D channels-last input is exit 2, one line.
     */
    @Test
    void channelsLastFiles(@TempDir Path dir) {
        Tensor x = random(1, 2, 5, 9, 7), w = random(2, 6, 5, 3, 3), b = random(3, 6);
        String ws = write(dir, "w.npy", w).toString(), bs = write(dir, "b.npy", b).toString();
        String xs = write(dir, "x.npy", x).toString(), xl = write(dir, "xl.npy", x.to(io.github.jconv.Layout.NHWC)).toString();
        List<String> backends = new java.util.ArrayList<>(List.of("cpu"));
        if (io.github.jconv.Backends.all().stream().anyMatch(be -> be.name().equals("cuda-emu") && be.unavailableReason() == null)) {
            backends.add("cuda-emu");
        }
        for (String backend : backends) {
            String[] math = backend.equals("cpu") ? new String[0] : new String[] {"--math", "3xtf32"};
            List<String> common = new java.util.ArrayList<>(List.of("--weight", ws, "--bias", bs, "--stride", "2", "--padding", "1",
                    "--backend", backend));
            common.addAll(List.of(math));
            List<String> a = new java.util.ArrayList<>(List.of("conv2d", "--input", xs, "--output", dir.resolve("y.npy").toString()));
            a.addAll(common);
            assertEquals(0, cli(a.toArray(new String[0])).code());
            List<String> l = new java.util.ArrayList<>(List.of("conv2d", "--input", xl, "--output", dir.resolve("yl.npy").toString(),
                    "--layout", "nhwc"));
            l.addAll(common);
            Result r = cli(l.toArray(new String[0]));
            assertEquals(0, r.code(), r.err());
            Tensor y = Npy.read(dir.resolve("y.npy")), yl = Npy.read(dir.resolve("yl.npy"));
            assertArrayEquals(new int[] {2, 5, 4, 6}, yl.shape(), "N x P x Q x K");
            assertArrayEquals(y.to(io.github.jconv.Layout.NHWC).data(), yl.data(), 0f, backend);
        }
        Result bad = cli("conv2d", "--input", xl, "--weight", ws, "--output", dir.resolve("z.npy").toString(), "--layout", "nwhc");
        assertEquals(2, bad.code());
        assertEquals("jconv: error: unknown layout 'nwhc' (nchw, nhwc)", bad.err().strip());
        String x3 = write(dir, "x3.npy", random(4, 5, 9, 7)).toString();
        bad = cli("conv2d", "--input", x3, "--weight", ws, "--output", dir.resolve("z.npy").toString(), "--layout", "nhwc");
        assertEquals(2, bad.code());
        assertEquals("jconv: error: layout nhwc needs a 4-D tensor (N x C x H x W), got shape [5, 9, 7]", bad.err().strip());
        assertFalse(Files.exists(dir.resolve("z.npy")));
    }

    @Test
    void theOutputIsCheckedBeforeAnyWork(@TempDir Path dir) throws Exception {
        // the inputs do not even exist: the output's missing directory must be what is reported
        Result r = cli("conv2d", "--input", dir.resolve("nope-x.npy").toString(), "--weight", dir.resolve("nope-w.npy").toString(),
                "--output", dir.resolve("missing/y.npy").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("directory " + dir.resolve("missing") + " does not exist"), r.err());
        Files.createDirectory(dir.resolve("sub"));
        r = cli("conv2d", "--input", dir.resolve("nope-x.npy").toString(), "--weight", "w", "--output", dir.resolve("sub").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is a directory"), r.err());
    }

    @Test
    void theOutputFollowsSymlinksAndRefusesDevices(@TempDir Path dir) throws Exception {
        String x = write(dir, "x.npy", random(5, 1, 2, 6, 6)).toString(), w = write(dir, "w.npy", random(6, 3, 2, 3, 3)).toString();
        Path real = dir.resolve("real.npy");
        Files.writeString(real, "old");
        Path link = Files.createSymbolicLink(dir.resolve("link.npy"), real.getFileName());
        Result r = cli("conv2d", "--input", x, "--weight", w, "--output", link.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        assertArrayEquals(new int[] {1, 3, 4, 4}, Npy.read(real).shape(), "its target got the result");
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling.npy"), dir.resolve("new.npy"));
        assertEquals(0, cli("conv2d", "--input", x, "--weight", w, "--output", dangling.toString()).code());
        assertTrue(Files.isSymbolicLink(dangling) && Files.isRegularFile(dir.resolve("new.npy")));

        Path devNull = Path.of("/dev/null");
        if (Files.exists(devNull)) {
            r = cli("conv2d", "--input", x, "--weight", w, "--output", devNull.toString());
            assertEquals(2, r.code());
            assertTrue(r.err().contains("/dev/null is not a regular file"), r.err());
            assertFalse(Files.isRegularFile(devNull), "/dev/null is still a device");
            Path toDev = Files.createSymbolicLink(dir.resolve("todev.npy"), devNull);
            r = cli("conv2d", "--input", x, "--weight", w, "--output", toDev.toString());
            assertEquals(2, r.code());
            assertTrue(r.err().contains("(the target of the symbolic link " + toDev + ")"), r.err());
        }
    }

    @Test
    void newOutputsGetTheUmasksModeAndReplacedOnesKeepTheirs(@TempDir Path dir) throws Exception {
        String x = write(dir, "x.npy", random(5, 1, 2, 6, 6)).toString(), w = write(dir, "w.npy", random(6, 3, 2, 3, 3)).toString();
        Path probe = Files.createFile(dir.resolve("probe")); // what this process's umask gives a new file
        assertEquals(0, cli("conv2d", "--input", x, "--weight", w, "--output", dir.resolve("new.npy").toString()).code());
        assertEquals(Files.getPosixFilePermissions(probe), Files.getPosixFilePermissions(dir.resolve("new.npy")));
        Path kept = dir.resolve("kept.npy");
        Files.writeString(kept, "old");
        java.util.Set<java.nio.file.attribute.PosixFilePermission> mode = java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----");
        Files.setPosixFilePermissions(kept, mode);
        assertEquals(0, cli("conv2d", "--input", x, "--weight", w, "--output", kept.toString()).code());
        assertEquals(mode, Files.getPosixFilePermissions(kept));
    }

    /** A header that promises more data than the heap can hold: refused from the header alone, naming the sizes. */
    @Test
    void aProblemLargerThanTheHeapIsRefusedBeforeReadingIt(@TempDir Path dir) throws Exception {
        Path big = sparseNpy(dir.resolve("big.npy"), "<f4", "(1, 1, 40000, 40000)", 4L * 40000 * 40000);
        String w = write(dir, "w.npy", Tensor.of(new float[] {1}, 1, 1, 1, 1)).toString();
        Result r = cli("conv2d", "--input", big.toString(), "--weight", w, "--output", dir.resolve("y.npy").toString());
        assertEquals(2, r.code(), r.err());
        String err = r.err().strip();
        assertFalse(err.contains("\n"), err);
        assertTrue(err.contains("of Java heap (input [1, 1, 40000, 40000] 6.0 GiB, weight 4 B, output [1, 1, 40000, 40000] 6.0 GiB")
                && err.contains("raise it with JAVA_OPTS=-Xmx"), err);
    }

    /** A float64 file of more than 2 GiB (a Java byte array's limit) is read in chunks. */
    @Test
    void npyFilesLargerThan2GiBAreRead(@TempDir Path dir) throws Exception {
        long n = 270_000_000L; // 2.16e9 bytes of float64 > 2^31
        Path f = sparseNpy(dir.resolve("huge.npy"), "<f8", "(" + n + ",)", 8 * n);
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
            long data = Files.size(f) - 8 * n;
            ch.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putDouble(0, 1.5), data);
            ch.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putDouble(0, -2.5), data + 8 * (n - 1));
        }
        float[] d = Npy.read(f).data();
        assertEquals(n, d.length);
        assertEquals(1.5f, d[0]);
        assertEquals(-2.5f, d[d.length - 1]);
        assertEquals(0f, d[d.length / 2]);
    }

    /** A .npy header for {@code shape} followed by {@code dataBytes} of (sparse) zeros: no disk space used. */
    private static Path sparseNpy(Path p, String descr, String shape, long dataBytes) throws Exception {
        byte[] header = io.github.jconv.io.NpyTest.npy(descr, shape, false, new byte[0]);
        try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            raf.write(header);
            raf.setLength(header.length + dataBytes);
        }
        return p;
    }

    /** OutOfMemoryError (which picocli never hands to its handler) is one line and exit code 2, in a JVM with a small heap. */
    @Test
    void runningOutOfMemoryIsOneLineAndExitCode2() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Xmx48m", "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "-Dlogback.configurationFile=jconv-cli-logback.xml", "io.github.jconv.cli.Main", "bench",
                "--shape", "1,64,512,512,64,3,3,1,1,1,1", "--algorithm", "direct", "--no-peers", "--runs", "1", "--warmup", "0",
                "--warmup-ms", "0", "--warmup-max-ms", "0").redirectErrorStream(false).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        p.getInputStream().readAllBytes();
        assertEquals(2, p.waitFor(), err);
        assertFalse(err.contains("\n") || err.contains("\tat "), err);
        assertTrue(err.startsWith("jconv: error: out of Java heap memory") && err.contains("JAVA_OPTS=-Xmx"), err);
    }

    @Test
    void tooManyThreadsSayWhatTheLimitIs(@TempDir Path dir) throws Exception {
        String x = write(dir, "x.npy", random(5, 1, 2, 6, 6)).toString(), w = write(dir, "w.npy", random(6, 3, 2, 3, 3)).toString();
        bad(dir, "threads must be between 0 (all cores) and " + io.github.jconv.cpu.Parallel.maxThreads(), "conv2d", "--input", x,
                "--weight", w, "--output", "OUT", "--threads", "40000");
    }

    /** An algorithm that throws is an ERROR row; verify goes on with the others and exits 1. */
    @Test
    void verifyReportsAnAlgorithmThatThrowsAndGoesOn() {
        VerifyCommand v = new VerifyCommand();
        io.github.jconv.Backend broken = new io.github.jconv.Backend() {
            @Override public String name() { return "broken"; }
            @Override public String unavailableReason() { return null; }
            @Override public List<io.github.jconv.Algorithm> algorithms() { return List.of(io.github.jconv.Algorithm.DIRECT); }
            @Override public String cannotImplement(io.github.jconv.Algorithm a, ConvGeometry g) { return null; }
            @Override public io.github.jconv.Algorithm choose(ConvGeometry g) { return io.github.jconv.Algorithm.DIRECT; }

            @Override
            public void run(io.github.jconv.Algorithm a, ConvGeometry g, float[] in, float[] w, float[] b, float[] out, int t) {
                throw new ArrayIndexOutOfBoundsException("Index 7 out of bounds for length 3");
            }
        };
        v.backends = List.of(broken, io.github.jconv.cpu.CpuBackend.INSTANCE);
        StringWriter out = new StringWriter(), err = new StringWriter();
        picocli.CommandLine cl = new picocli.CommandLine(v);
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute("--shape", "1,3,8,8,4,3,3,1,1,1,1", "--threads", "1");
        assertEquals(1, code, err.toString());
        String o = out.toString();
        assertTrue(o.contains("broken   direct         ERROR: ArrayIndexOutOfBoundsException: Index 7 out of bounds for length 3"), o);
        assertTrue(o.contains("cpu      kernel-matrix") && o.contains("conv_transpose2d"), "the other rows still ran: " + o);
        assertTrue(o.contains("verify: 2 result(s) failed or above"), o);
    }

    /** A candidate that failed while tuning is shown by explain, with why. */
    @Test
    void explainShowsACandidateThatFailedInTuning(@TempDir Path dir) throws Exception {
        String shape = "2,32,32,32,32,3,3,1,1,1,1";
        ConvGeometry g = Problem.parse(shape, ConvGeometry.Op.CONV2D, false).geometry;
        String key = io.github.jconv.Autotuner.key(io.github.jconv.cpu.CpuBackend.INSTANCE, g, 2);
        Map<String, Object> entry = Map.of("algorithm", "direct", "median_ms", Map.of("direct", 1.25),
                "failed", Map.of("im2col", "IllegalStateException: boom"), "tuned_at", "2026-12-03T00:00:00Z");
        Path file = dir.resolve("autotune.json");
        Files.writeString(file, com.fasterxml.jackson.jr.ob.JSON.std.asString(Map.of("format", 1, "entries", Map.of(key, entry))));
        ExplainCommand e = new ExplainCommand();
        e.tuner = io.github.jconv.Autotuner.withCacheFile(file);
        StringWriter out = new StringWriter();
        picocli.CommandLine cl = new picocli.CommandLine(e);
        cl.setOut(new PrintWriter(out));
        assertEquals(0, cl.execute("--shape", shape, "--backend", "cpu", "--threads", "2"));
        assertTrue(out.toString().contains("failed in tuning (skipped): IllegalStateException: boom"), out.toString());
        assertTrue(out.toString().contains("tuned 1.250 ms") && out.toString().contains("auto: direct (autotuning cache"), out.toString());
    }

    /** NaN and Inf in the input reach only the outputs that read them, kernel-matrix included (it made the sample all NaN). */
    @Test
    void nonFiniteInputReachesOnlyItsReadersThroughTheCli(@TempDir Path dir) {
        Tensor x = random(8, 1, 2, 9, 9), w = random(9, 3, 2, 3, 3);
        x.data()[0] = Float.NaN;
        x.data()[80 + 81] = Float.POSITIVE_INFINITY; // last pixel of channel 1
        for (String algorithm : new String[] {"kernel-matrix", "im2col", "direct", "auto"}) {
            Result r = cli("conv2d", "--input", write(dir, "x.npy", x).toString(), "--weight", write(dir, "w.npy", w).toString(),
                    "--output", dir.resolve("y.npy").toString(), "--algorithm", algorithm, "--padding", "1");
            assertEquals(0, r.code(), r.err());
            float[] y = Npy.read(dir.resolve("y.npy")).data();
            ConvGeometry g = ConvGeometry.conv2d(x.shape(), w.shape(), null, ConvSpec.builder().padding(1).build());
            io.github.jconv.TestSupport.assertMatchesReference("cli " + algorithm, g, x.data(), w.data(), null, y);
            assertTrue(Float.isFinite(y[40]), algorithm + ": the centre output reads neither value");
        }
    }

    @Test
    void runExecutesANetworkTrunkAndWritesItsOutput(@TempDir Path dir) {
        Path y = dir.resolve("y.npy");
        Result r = cli("run", "--network", "mobilenetv2", "--size", "32", "--backend", "cpu", "--runs", "2", "--no-tune", "--output",
                y.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("mobilenetv2 trunk: 52 convolutions") && r.out().contains("images/s"), r.out());
        assertArrayEquals(new int[] {1, 1280, 1, 1}, Npy.read(y).shape());
        Tensor same = Npy.read(y);
        Result again = cli("run", "--network", "mobilenetv2", "--size", "32", "--backend", "cpu", "--runs", "0", "--no-tune", "--output",
                dir.resolve("z.npy").toString());
        assertEquals(0, again.code(), again.err());
        assertArrayEquals(same.data(), Npy.read(dir.resolve("z.npy")).data(), "the same seed gives the same output");
        Path x = write(dir, "x.npy", random(1, 1, 3, 64, 64));
        Result bad = cli("run", "--network", "mobilenetv2", "--size", "32", "--input", x.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("has shape [1, 3, 64, 64], mobilenetv2 with --batch 1 --size 32 takes [1, 3, 32, 32]"), bad.err());
    }

    /** On a GPU backend a bench row's median is the kernels' device time (a plan between device events), e2e_ms the whole call. */
    @Test
    @SuppressWarnings("unchecked")
    void gpuBenchRowsTimeTheKernelsAndTheWholeCallApart(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("b.json");
        Result r = cli("bench", "--backend", "cuda-emu", "--shape", "1,4,8,8,4,3,3,1,1,1,1", "--algorithm", "direct", "--runs", "2",
                "--warmup", "1", "--warmup-ms", "0", "--warmup-max-ms", "0", "--json", json.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("e2e_ms") && r.out().contains("the kernels alone"), r.out());
        Map<String, Object> doc = com.fasterxml.jackson.jr.ob.JSON.std.mapFrom(Files.readString(json));
        Map<String, Object> row = ((List<Map<String, Object>>) doc.get("results")).get(0);
        assertTrue(((Number) row.get("e2e_ms")).doubleValue() > 0 && ((Number) row.get("median_ms")).doubleValue() > 0, row.toString());
    }
}
