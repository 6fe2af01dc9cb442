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

    /** {@code --stride --padding --dilation --groups}: a convolution's spec (output padding and size are the transposed op's own). */
    static final class Spec {
        @Option(names = "--stride", defaultValue = "1", paramLabel = "S|SH,SW", description = "Stride (default: ${DEFAULT-VALUE}).")
        String stride;

        @Option(names = "--padding", defaultValue = "0", paramLabel = "P|PH,PW|T,B,L,R|same|same-lower|valid",
                description = "Padding (default: ${DEFAULT-VALUE}). same / same-lower = ONNX SAME_UPPER / SAME_LOWER "
                        + "(conv2d: output = ceil(input / stride); conv-transpose2d: output = input x stride).")
        String padding;

        @Option(names = "--dilation", defaultValue = "1", paramLabel = "D|DH,DW", description = "Dilation (default: ${DEFAULT-VALUE}).")
        String dilation;

        @Option(names = "--groups", defaultValue = "1", paramLabel = "G", description = "Groups (default: ${DEFAULT-VALUE}).")
        int groups;

        io.github.jconv.ConvSpec.Builder builder() {
            int[] st = pair("--stride", stride);
            int[] di = pair("--dilation", dilation);
            return io.github.jconv.ConvSpec.builder().stride(st[0], st[1]).dilation(di[0], di[1])
                    .padding(io.github.jconv.Padding.parse(padding)).groups(groups);
        }
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
