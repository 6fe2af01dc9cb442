package io.github.jconv.cli;

import java.io.IOException;

/**
 * A peer's work held open on its data (a trunk, or one layer), for {@link Alternating} rounds that run it beside jconv's in
 * one process: {@link #run} runs it once on what it was opened with and waits for it.
 */
public interface PeerSession extends AutoCloseable {
    void run() throws IOException;

    @Override
    void close() throws IOException;
}
