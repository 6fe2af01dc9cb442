package io.github.jconv;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.github.jconv.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** auto's autotuning: the persistent cache is used, a corrupt one is ignored with a warning, wrong answers lose. */
class AutotunerTest {
    /** 37.7 MFLOP: above the tuning threshold, small enough to tune in well under a second. */
    private static final ConvGeometry G = ConvGeometry.conv2d(new int[] {2, 32, 32, 32}, new int[] {32, 32, 3, 3},
            new int[] {32}, ConvSpec.builder().padding(1).build());

    private final ListAppender<ILoggingEvent> log = new ListAppender<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger(Autotuner.class);

    @BeforeEach
    void capture() {
        log.start();
        logger.addAppender(log);
    }

    @AfterEach
    void release() {
        logger.detachAppender(log);
    }

    private static float[][] data() {
        return TestSupport.data(G, 5);
    }

    @Test
    void theSecondProcessUsesTheCacheAndTunesNothing(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sub/autotune.json");
        float[][] d = data();
        Autotuner first = Autotuner.withCacheFile(file);
        Algorithm a = first.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 2, true);
        assertEquals(1, first.tunings());
        assertTrue(Files.readString(file).contains("\"algorithm\""), "cache written");
        assertEquals(a, first.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 2, true));
        assertEquals(1, first.tunings(), "in-memory hit");

        Autotuner second = Autotuner.withCacheFile(file); // a new process reading the same file
        assertEquals(a, second.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 2, true));
        assertEquals(0, second.tunings(), "the second run takes no tuning time");
        Map<String, Object> entry = second.cached(CpuBackend.INSTANCE, G, 2);
        assertNotNull(entry);
        assertTrue(((Map<?, ?>) entry.get("median_ms")).containsKey("im2col"));

        assertEquals(0, second.cached(CpuBackend.INSTANCE, G, 1) == null ? 0 : 1, "thread count is part of the key");
    }

    @Test
    void aCorruptCacheIsIgnoredWithAWarningAndRewritten(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("autotune.json");
        Files.writeString(file, "{ this is not json");
        float[][] d = data();
        Autotuner t = Autotuner.withCacheFile(file);
        t.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 2, true);
        assertEquals(1, t.tunings());
        assertTrue(log.list.stream().anyMatch(e -> e.getLevel().toString().equals("WARN")
                && e.getFormattedMessage().contains("ignoring the corrupt autotuning cache")), "warned");
        assertTrue(Files.readString(file).contains("\"format\" : 1"), "rewritten in the current format");
    }

    @Test
    void aCacheOfAnotherFormatIsIgnored(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("autotune.json");
        Files.writeString(file, "{\"format\": 99, \"entries\": {}}");
        float[][] d = data();
        Autotuner t = Autotuner.withCacheFile(file);
        t.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 2, true);
        assertEquals(1, t.tunings());
        assertTrue(log.list.stream().anyMatch(e -> e.getFormattedMessage().contains("format 99 is not 1")));
    }

    @Test
    void smallProblemsAndNoTuneUseTheHeuristic(@TempDir Path dir) {
        Autotuner t = Autotuner.withCacheFile(dir.resolve("a.json"));
        ConvGeometry small = ConvGeometry.conv2d(new int[] {1, 3, 8, 8}, new int[] {4, 3, 3, 3}, null, ConvSpec.defaults());
        float[][] s = TestSupport.data(small, 1);
        assertEquals(CpuBackend.INSTANCE.choose(small), t.choose(CpuBackend.INSTANCE, small, s[0], s[1], s[2], 1, true));
        float[][] d = data();
        assertEquals(CpuBackend.INSTANCE.choose(G), t.choose(CpuBackend.INSTANCE, G, d[0], d[1], d[2], 1, false));
        assertEquals(0, t.tunings());
        assertTrue(!Files.exists(dir.resolve("a.json")));
    }

    /** A backend whose im2col is instant and wrong: tuning must never pick it. */
    @Test
    void aFastWrongAnswerIsNeverChosen(@TempDir Path dir) {
        Backend liar = new Backend() {
            @Override public String name() { return "liar"; }
            @Override public String unavailableReason() { return null; }
            @Override public List<Algorithm> algorithms() { return List.of(Algorithm.DIRECT, Algorithm.IM2COL); }
            @Override public String cannotImplement(Algorithm a, ConvGeometry g) { return null; }
            @Override public Algorithm choose(ConvGeometry g) { return Algorithm.IM2COL; }

            @Override
            public void run(Algorithm a, ConvGeometry g, float[] in, float[] w, float[] b, float[] out, int threads) {
                if (a == Algorithm.IM2COL) {
                    Arrays.fill(out, 0f);
                } else {
                    CpuBackend.INSTANCE.run(Algorithm.REFERENCE, g, in, w, b, out, threads);
                }
            }
        };
        float[][] d = data();
        Algorithm chosen = Autotuner.withCacheFile(dir.resolve("a.json")).choose(liar, G, d[0], d[1], d[2], 2, true);
        assertEquals(Algorithm.DIRECT, chosen);
        assertNotEquals(liar.choose(G), chosen);
    }
}
