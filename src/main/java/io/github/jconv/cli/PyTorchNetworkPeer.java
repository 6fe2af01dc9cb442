package io.github.jconv.cli;

import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.Epilogue;
import io.github.jconv.Tensor;
import io.github.jconv.io.Npy;
import io.github.jconv.net.Network;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * PyTorch runs the same trunk, built from torch.nn layers with the same folded weights (torch_network.py, shipped in
 * the jar), on the same input, in a subprocess with the same thread count.
 */
final class PyTorchNetworkPeer implements NetworkPeer {
    private final String python;
    private String version = "?";

    PyTorchNetworkPeer(String python) {
        this.python = python;
    }

    @Override
    public String label() {
        return "pytorch-" + version;
    }

    @Override
    public Peer.Result run(Network net, Tensor x, int threads, int runs, int warmup) throws IOException {
        Path dir = Files.createTempDirectory("jconv-pytorch-net");
        try {
            List<Object> layers = new ArrayList<>();
            int i = 0;
            for (Network.Layer l : net.layers()) {
                Map<String, Object> m = new LinkedHashMap<>();
                if (l instanceof Network.Conv) {
                    Network.Conv c = (Network.Conv) l;
                    Npy.write(dir.resolve("w" + i + ".npy"), c.weight());
                    Npy.write(dir.resolve("b" + i + ".npy"), c.bias());
                    m.put("type", "conv");
                    m.put("input", c.input());
                    m.put("residual", c.residual());
                    m.put("stride", c.geometry().strideH);
                    m.put("padding", c.geometry().padTop);
                    m.put("groups", c.geometry().groups);
                    m.put("activation", c.epilogue().activation().label());
                    m.put("residual_mode", c.epilogue().residual() == Epilogue.Residual.NONE ? "none"
                            : c.epilogue().residual() == Epilogue.Residual.AFTER_ACTIVATION ? "after" : "before");
                    m.put("weight", "w" + i + ".npy");
                    m.put("bias", "b" + i + ".npy");
                } else {
                    Network.Pool p = (Network.Pool) l;
                    m.put("type", "maxpool");
                    m.put("input", p.input());
                    m.put("kernel", p.kernel());
                    m.put("stride", p.stride());
                    m.put("padding", p.padding());
                }
                layers.add(m);
                i++;
            }
            Files.writeString(dir.resolve("net.json"), JSON.std.asString(Map.of("layers", layers)));
            Npy.write(dir.resolve("x.npy"), x);
            Map<String, Object> doc = PyTorchPeer.runScript(python, dir, "torch_network.py", List.of("--threads",
                    Integer.toString(threads), "--runs", Integer.toString(runs), "--warmup", Integer.toString(warmup), dir.toString()));
            version = String.valueOf(doc.get("torch")).toLowerCase(Locale.ROOT);
            return new Peer.Result(((Number) doc.get("median_ms")).doubleValue(), ((Number) doc.get("min_ms")).doubleValue(),
                    ((Number) doc.get("max_ms")).doubleValue(), Npy.read(dir.resolve("y.npy")).data());
        } finally {
            PyTorchPeer.deleteTree(dir);
        }
    }
}
