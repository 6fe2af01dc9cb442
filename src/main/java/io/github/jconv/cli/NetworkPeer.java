package io.github.jconv.cli;

import io.github.jconv.Tensor;
import io.github.jconv.net.Network;

import java.io.IOException;

/** Something that runs a {@link Network} trunk beside jconv in `bench --network` (PyTorch, ONNX Runtime). */
public interface NetworkPeer {
    /** What it is, with its version once known. */
    String label();

    /** Times {@code runs} runs of the trunk on {@code x} after {@code warmup}, with {@code threads} threads; keeps its output. */
    Peer.Result run(Network net, Tensor x, int threads, int runs, int warmup) throws IOException;

    /**
     * The peer's own per-layer kernel times inside the trunk ({@code bench --network --layers}), from its profiler, in a
     * separate session after {@link #run} so the profiler does not touch the timed figures; null when it has none.
     */
    default PeerLayerProfile.Times layerTimes(Network net, Tensor x, int threads, int runs, int warmup) throws IOException {
        return null;
    }

    /**
     * The trunk ready to run on {@code x} one run at a time ({@code warmup} runs done), for {@code bench --network}'s rounds
     * that alternate jconv's runs with the peer's in one process; null when the peer cannot (a subprocess).
     */
    default PeerSession open(Network net, Tensor x, int threads, int warmup) throws IOException {
        return null;
    }
}
