package io.github.jconv.cpu;

import io.github.jconv.InvalidConvolutionException;
import org.junit.jupiter.api.Test;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Worker pools: every index runs once, nested loops work, idle pools die, thread counts are bounded. */
class ParallelTest {
    private static long workers() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("jconv-cpu-") && !t.getName().endsWith("reaper") && t.isAlive()).count();
    }

    @Test
    void idlePoolsDieAndTheirThreadsExit() throws Exception {
        for (int t = 2; t <= 40; t++) {
            AtomicIntegerArray seen = new AtomicIntegerArray(1000);
            Parallel.of(t).forEach(1000, seen::incrementAndGet);
            for (int i = 0; i < 1000; i++) {
                assertEquals(1, seen.get(i));
            }
        }
        assertTrue(workers() > 40, "pools made: " + workers());
        Parallel.releaseIdlePools(0);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (workers() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, workers(), "every worker of an idle pool exits");
        assertEquals(0, Parallel.livePools());
        AtomicIntegerArray again = new AtomicIntegerArray(10);
        Parallel.of(3).forEach(10, again::incrementAndGet); // a new pool after the old one died
        assertEquals(1, again.get(9));
    }

    @Test
    void poolsClosedWhileCallersRunNeverRejectWork() throws Exception {
        ExecutorService callers = Executors.newFixedThreadPool(4);
        List<Future<?>> done = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
            int threads = 2 + c % 2;
            done.add(callers.submit(() -> {
                for (int round = 0; round < 300; round++) {
                    AtomicIntegerArray seen = new AtomicIntegerArray(64);
                    Parallel.of(threads).forEach(8, i -> Parallel.of(threads).forEach(8, j -> seen.incrementAndGet(i * 8 + j)));
                    for (int i = 0; i < 64; i++) {
                        if (seen.get(i) != 1) {
                            throw new AssertionError("index " + i + " ran " + seen.get(i) + " times");
                        }
                    }
                }
            }));
        }
        for (int i = 0; i < 200; i++) {
            Parallel.releaseIdlePools(0); // as the reaper would, at the worst moments
            Thread.sleep(1);
        }
        for (Future<?> f : done) {
            f.get();
        }
        callers.shutdown();
    }

    @Test
    void threadCountsAreBoundedWithAMessage() {
        InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, () -> Parallel.of(40000));
        assertTrue(e.getMessage().contains("threads must be between 0 (all cores) and " + Parallel.maxThreads()), e.getMessage());
        assertThrows(InvalidConvolutionException.class, () -> Parallel.of(-1));
        assertEquals(Parallel.maxThreads(), Parallel.of(Parallel.maxThreads()).threads());
    }
}
