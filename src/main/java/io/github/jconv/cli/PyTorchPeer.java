package io.github.jconv.cli;

import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.ConvGeometry;
import io.github.jconv.Tensor;
import io.github.jconv.io.Npy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * PyTorch's CPU convolution as a peer in `jconv bench`: a python3 with torch and numpy (Debian's
 * python3-torch) runs the torch_bench.py shipped in the jar on the very data jconv times, in a subprocess
 * with the same thread count. Optional: when there is no such python the bench says so and goes on.
 */
final class PyTorchPeer implements Peer {
    private final String python;
    private final String unavailable;
    private String version = "?";
    private boolean weightGradient;

    private PyTorchPeer(String python, String unavailable) {
        this.python = python;
        this.unavailable = unavailable;
    }

    static PyTorchPeer find() {
        String why = "no python3 with torch and numpy here (apt-get install python3-torch)";
        for (String candidate : new String[] {"/usr/bin/python3", "python3"}) {
            try {
                Process p = new ProcessBuilder(candidate, "-c", "import torch, numpy").redirectErrorStream(true).start();
                p.getInputStream().readAllBytes();
                if (p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0) {
                    return new PyTorchPeer(candidate, null);
                }
            } catch (IOException e) {
                // not installed: try the next
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        return new PyTorchPeer(null, why);
    }

    /** Times torch.nn.grad.conv2d_weight instead (data {x, w, b, dy}: w for its shape, dy the output gradient). */
    void weightGradient() {
        weightGradient = true;
    }

    String unavailableReason() {
        return unavailable;
    }

    /** The same python running a whole network trunk (bench --network); only when {@link #unavailableReason()} is null. */
    NetworkPeer network() {
        return new PyTorchNetworkPeer(python);
    }

    @Override
    public String label() {
        return "pytorch-" + version;
    }

    @Override
    public String operation(boolean transposed) {
        return weightGradient ? "grad.conv2d_weight" : transposed ? "F.conv_transpose2d" : "F.conv2d";
    }

    /** Times every problem in one subprocess. */
    @Override
    public List<Result> run(List<Problem> problems, List<float[][]> data, int threads, int runs, int warmup) throws IOException {
        Path dir = Files.createTempDirectory("jconv-pytorch");
        try {
            List<String> args = new ArrayList<>(List.of("--threads", Integer.toString(threads),
                    "--runs", Integer.toString(runs), "--warmup", Integer.toString(warmup), "--op",
                    weightGradient ? "conv2d_weight" : problems.get(0).geometry.op.label()));
            for (int i = 0; i < problems.size(); i++) {
                ConvGeometry g = problems.get(i).geometry;
                Path d = Files.createDirectory(dir.resolve("layer" + i));
                Npy.write(d.resolve("x.npy"), Tensor.of(data.get(i)[0], g.inputShape()));
                Npy.write(d.resolve("w.npy"), Tensor.of(data.get(i)[1], g.weightShape()));
                Npy.write(d.resolve("b.npy"), Tensor.of(data.get(i)[2], g.biasLength()));
                if (weightGradient) {
                    Npy.write(d.resolve("dy.npy"), Tensor.of(data.get(i)[3], g.outputShape()));
                }
                String params = "{\"stride\": [" + g.strideH + ", " + g.strideW + "], \"padding\": [" + g.padTop + ", "
                        + g.padLeft + "], \"dilation\": [" + g.dilationH + ", " + g.dilationW + "], \"groups\": " + g.groups + "}";
                Files.writeString(d.resolve("params.json"), params);
                args.add(d.toString());
            }
            Map<String, Object> doc = runScript(python, dir, "torch_bench.py", args);
            version = String.valueOf(doc.get("torch"));
            List<Result> results = new ArrayList<>();
            int i = 0;
            for (Object o : (List<?>) doc.get("results")) {
                Map<?, ?> r = (Map<?, ?>) o;
                float[] y = Npy.read(dir.resolve("layer" + i++).resolve("y.npy")).data();
                results.add(new Result(((Number) r.get("median_ms")).doubleValue(), ((Number) r.get("min_ms")).doubleValue(),
                        ((Number) r.get("max_ms")).doubleValue(), y));
            }
            return results;
        } finally {
            deleteTree(dir);
        }
    }

    /**
     * Copies {@code script} (a resource beside this class) into {@code dir}, runs it with {@code python} and the
     * arguments (stderr discarded) and returns the JSON object it prints.
     */
    static Map<String, Object> runScript(String python, Path dir, String script, List<String> args) throws IOException {
        Path file = dir.resolve(script);
        try (InputStream in = PyTorchPeer.class.getResourceAsStream(script)) {
            Files.copy(in, file);
        }
        List<String> cmd = new ArrayList<>(List.of(python, file.toString()));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int code;
        try {
            code = p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted");
        }
        if (code != 0 || out.indexOf('{') < 0) {
            throw new IOException(script + " exited with " + code);
        }
        return JSON.std.mapFrom(out.substring(out.indexOf('{')));
    }

    /** Deletes {@code dir} and everything below it. */
    static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
