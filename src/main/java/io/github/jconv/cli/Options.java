package io.github.jconv.cli;

import io.github.jconv.InvalidConvolutionException;
import picocli.CommandLine.Option;

/** Options every subcommand shares, and the parsing of "A" or "A,B" integer pairs. */
final class Options {
    private Options() {
    }

    /** {@code --debug}: stack traces on errors; {@code --verbose}: what jconv decides, on stderr (read by {@link Main}). */
    static final class Debug {
        @Option(names = "--debug", description = "Print stack traces on errors.")
        boolean debug;

        @Option(names = {"-v", "--verbose"}, description = "Log what jconv decides on stderr (backend fallback, autotuning).")
        boolean verbose;
    }

    /** {@code --threads}: CPU threads, 0 = all cores. */
    static final class Threads {
        @Option(names = "--threads", defaultValue = "0", paramLabel = "T",
                description = "CPU threads, 0 = all cores (default: ${DEFAULT-VALUE}).")
        int count;
    }

    /** Parses "V" or "VH,VW" into {VH, VW}. */
    static int[] pair(String option, String text) {
        String[] parts = text.split(",", -1);
        if (parts.length == 1 || parts.length == 2) {
            try {
                int a = Integer.parseInt(parts[0].trim());
                int b = parts.length == 2 ? Integer.parseInt(parts[1].trim()) : a;
                return new int[] {a, b};
            } catch (NumberFormatException e) {
                // fall through to the error
            }
        }
        throw new InvalidConvolutionException(option + ": expected an integer or two separated by a comma (H,W), got '"
                + text + "'");
    }
}
