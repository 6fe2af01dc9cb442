package io.github.jconv.cli;

import io.github.jconv.BackendUnavailableException;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.io.NpyException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.Arrays;

/**
 * The {@code jconv} command line. Bad input of any kind is one line on stderr and exit code 2 (a stack
 * trace only with {@code --debug}); an internal failure is exit code 1; nothing is written on failure.
 */
@Command(name = "jconv", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "2D convolution with PyTorch's semantics on the CPU or a GPU, reading and writing .npy files.",
        subcommands = {ConvCommand.Conv2d.class, ConvCommand.ConvTranspose2d.class, GradientCommand.Conv2dWeight.class,
                GradientCommand.ConvTranspose2dWeight.class, GradientCommand.Bias.class, BenchCommand.class,
                InfoCommand.class, VerifyCommand.class, ExplainCommand.class, RunCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    /** Exit code for bad input (arguments, files, shapes) and unavailable backends. */
    public static final int EXIT_USAGE = 2;
    /** Exit code for a failure inside jconv, and for a verify run that found an error. */
    public static final int EXIT_FAILURE = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (conv2d, conv-transpose2d, conv2d-backward-weight, "
                + "conv-transpose2d-backward-weight, conv2d-backward-bias, bench, run, info, verify, explain)");
    }

    public static void main(String[] args) {
        int code = run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true));
        System.exit(code);
    }

    /** Runs the CLI and returns its exit code (for tests and embedding). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        boolean debug = Arrays.asList(args).contains("--debug");
        if (Arrays.asList(args).contains("--verbose") || Arrays.asList(args).contains("-v")) {
            logLevel("INFO");
        }
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler((ex, a) -> {
            CommandLine c = ex.getCommandLine();
            String help = c == cl ? "jconv --help" : "jconv " + c.getCommandName() + " --help";
            err.println("jconv: error: " + oneLine(ex.getMessage()) + " (see '" + help + "')");
            if (debug) {
                ex.printStackTrace(err);
            }
            err.flush();
            return EXIT_USAGE;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            boolean usage = isBadInput(ex);
            err.println("jconv: " + (usage ? "error: " : "internal error: ") + describe(ex));
            if (debug) {
                ex.printStackTrace(err);
            }
            err.flush();
            return usage ? EXIT_USAGE : EXIT_FAILURE;
        });
        int code;
        try {
            code = cl.execute(args);
        } catch (OutOfMemoryError e) { // picocli hands only Exceptions to the handler above
            err.println("jconv: error: " + describe(e));
            if (debug) {
                e.printStackTrace(err);
            }
            code = EXIT_USAGE;
        }
        out.flush();
        err.flush();
        return code;
    }

    /** Sets the CLI's log level (its logback configuration logs warnings only, so errors stay one line). */
    private static void logLevel(String level) {
        org.slf4j.Logger root = org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        if (root instanceof ch.qos.logback.classic.Logger) {
            ((ch.qos.logback.classic.Logger) root).setLevel(ch.qos.logback.classic.Level.toLevel(level));
        }
    }

    /**
     * A throwable as the one-line text the CLI prints: the message of a bad-input exception, the type and message
     * of anything else (an internal error), the remedy for running out of memory.
     */
    static String describe(Throwable t) {
        if (t instanceof OutOfMemoryError) {
            return "out of Java heap memory (" + t.getMessage() + "; this JVM's heap is at most "
                    + HeapCheck.bytes(Runtime.getRuntime().maxMemory()) + "): raise it with JAVA_OPTS=-Xmx<size>, e.g. -Xmx"
                    + Math.max(2, 2 * (Runtime.getRuntime().maxMemory() >> 30)) + "g";
        }
        String m = t.getMessage();
        if (m == null || m.isBlank()) {
            return t.getClass().getSimpleName();
        }
        return oneLine(isBadInput(t) ? m : t.getClass().getSimpleName() + ": " + m);
    }

    /**
     * Bad input (exit code 2): jconv's own exceptions for arguments, files, shapes and backends. Anything else, a
     * plain IllegalArgumentException from the JDK included, is an internal error (exit code 1).
     */
    static boolean isBadInput(Throwable t) {
        return t instanceof InvalidConvolutionException || t instanceof NpyException || t instanceof BackendUnavailableException;
    }

    private static String oneLine(String s) {
        int nl = s.indexOf('\n');
        return (nl < 0 ? s : s.substring(0, nl)).trim();
    }

    /** The version from the jar manifest (or "dev" when run from classes). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"jconv " + version()};
        }

        static String version() {
            String v = Main.class.getPackage().getImplementationVersion();
            return v == null ? "dev" : v;
        }
    }
}
