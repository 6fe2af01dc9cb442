package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Warmup}: runs until three runs agree, not a fixed count; gives up after its cap. */
class WarmupTest {
    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void aCallThatSpeedsUpIsRunUntilItsTimesAgree() {
        long[] cold = {30, 24, 18, 12, 6};
        AtomicInteger runs = new AtomicInteger();
        assertTrue(Warmup.untilSteady(() -> {
            int i = runs.getAndIncrement();
            sleep(i < cold.length ? cold[i] : 2);
        }, 1, 0, 5000));
        assertTrue(runs.get() >= cold.length + Warmup.RUNS, runs.get() + " runs");
    }

    @Test
    void aCallThatNeverSettlesStopsAtTheCapAndSaysSo() {
        AtomicInteger runs = new AtomicInteger();
        long t0 = System.nanoTime();
        assertFalse(Warmup.untilSteady(() -> sleep(runs.getAndIncrement() % 2 == 0 ? 2 : 6), 1, 0, 100));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 100 && ms < 2000, ms + " ms");
    }

    @Test
    void theMinimaAreHonoured() {
        AtomicInteger runs = new AtomicInteger();
        long t0 = System.nanoTime();
        assertTrue(Warmup.untilSteady(() -> {
            runs.incrementAndGet();
            sleep(2);
        }, 7, 60, 5000));
        assertTrue(runs.get() >= 7 && (System.nanoTime() - t0) / 1_000_000 >= 60, runs.get() + " runs");
    }
}
