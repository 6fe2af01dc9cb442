package io.github.jconv.cpu;

import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Test;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Worker pools: every index runs once, nested loops work, idle pools die, thread counts are bounded; the crew passes
 * errors to the caller, keeps the caller's buffers from its tasks, and its idle helpers park unless held.
 */
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

    @Test
    void anErrorInATaskReachesTheCallerAndTheCrewRunsOn() {
        Parallel p = Parallel.of(3);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.forEach(100, i -> {
            if (i == 37) {
                throw new IllegalStateException("task 37");
            }
        }));
        assertEquals("task 37", e.getMessage());
        AtomicIntegerArray seen = new AtomicIntegerArray(100);
        p.forEach(100, seen::incrementAndGet);
        for (int i = 0; i < 100; i++) {
            assertEquals(1, seen.get(i));
        }
    }

    @Test
    void aBufferTheCallerHoldsIsNotHandedToTheLoopsTasks() {
        Parallel p = Parallel.of(2);
        for (int round = 0; round < 50; round++) {
            float[] held = Workspace.get(Workspace.COL, 1000);
            java.util.Arrays.fill(held, 0, 1000, 7f);
            p.forEach(64, i -> {
                float[] mine = Workspace.get(Workspace.COL, 1000);
                assertTrue(mine != held, "a task got the caller's buffer");
                java.util.Arrays.fill(mine, 0, 1000, -1f);
                p.forEach(4, j -> Workspace.get(Workspace.ROW, 10)); // nested: runs inline
            });
            for (int i = 0; i < 1000; i++) {
                assertEquals(7f, held[i]);
            }
        }
    }

    @Test
    void idleHelpersPark() throws Exception {
        Parallel.of(4).forEach(100, i -> { });
        awaitParked(4);
    }

    /**
     * {@link Parallel#hold}: while it is open the helpers spin between loops (a thread that parks is WAITING) and its pool is
     * not shut down as idle; closed (twice: it counts once) they park again, and a later hold holds again.
     */
    @Test
    void aHoldKeepsTheHelpersAwakeBetweenLoopsUntilItCloses() throws Exception {
        Parallel par = Parallel.of(5);
        par.forEach(100, i -> { });
        awaitParked(5);
        Parallel.Held held = par.hold();
        try {
            par.forEach(100, i -> { }); // wakes the helpers; they now spin, however long the gap to the next loop
            assertAwake(5);
            Parallel.releaseIdlePools(0);
            assertEquals(4, TestSupport.cpuHelpers(5).size(), "a held pool is not shut down as idle");
            assertAwake(5);
        } finally {
            held.close(); // even when an assertion failed: a hold left open would keep a core spinning for the other tests
        }
        held.close();
        awaitParked(5);
        try (Parallel.Held again = par.hold()) {
            par.forEach(100, i -> { });
            assertAwake(5);
        }
        awaitParked(5);
        Parallel.SERIAL.hold().close(); // one thread: nothing to hold
    }

    /**
     * Each participant takes its own share of a loop's indices first (the caller the first third, helper i the (i+1)-th):
     * loop after loop the same thread runs the same indices (see Parallel.Loop#work), and each index runs once. The first
     * index of each share waits until all three are running, so no participant can finish its share and take another's
     * start, however late a helper wakes.
     */
    @Test
    void eachThreadTakesItsOwnShareFirst() throws Exception {
        Parallel par = Parallel.of(3);
        for (int loop = 0; loop < 4; loop++) {
            Map<String, Integer> first = null;
            // a helper the machine does not run for 10 s (a starved CI VM) lets the caller take its share: then again
            for (int attempt = 0; attempt < 3 && first == null; attempt++) {
                CountDownLatch starts = new CountDownLatch(3);
                Map<String, Integer> firsts = new ConcurrentHashMap<>();
                boolean[] together = {true};
                par.forEach(9, i -> {
                    firsts.putIfAbsent(Thread.currentThread().getName(), i);
                    if (i % 3 == 0) {
                        starts.countDown();
                        try {
                            if (!starts.await(10, TimeUnit.SECONDS)) {
                                together[0] = false;
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                });
                first = together[0] ? firsts : null;
            }
            assertTrue(first != null, "the three shares' first indices never ran at the same time");
            assertEquals(0, first.get(Thread.currentThread().getName()), "the caller starts on the first share");
            assertEquals(3, first.get("jconv-cpu-3-h1"), "helper 1 starts on the second share");
            assertEquals(6, first.get("jconv-cpu-3-h2"), "helper 2 starts on the third share");
        }
        for (int threads = 2; threads <= 5; threads++) {
            for (int count = 1; count <= 40; count++) {
                AtomicIntegerArray seen = new AtomicIntegerArray(count);
                Parallel.of(threads).forEach(count, seen::incrementAndGet);
                for (int i = 0; i < count; i++) {
                    assertEquals(1, seen.get(i), threads + " threads, " + count + " indices: index " + i);
                }
            }
        }
    }

    /** Every helper of the pool of {@code threads} stays RUNNABLE (spinning) over 100 ms, far past the 50 us spin. */
    private static void assertAwake(int threads) throws InterruptedException {
        for (int i = 0; i < 10; i++) {
            Thread.sleep(10);
            assertTrue(TestSupport.cpuHelpers(threads).stream().allMatch(t -> t.getState() == Thread.State.RUNNABLE), "a helper parked while held");
        }
    }

    /** Waits (at most 10 s) until every helper of the pool of {@code threads} is parked, and checks that they are. */
    private static void awaitParked(int threads) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline && TestSupport.cpuHelpers(threads).stream().anyMatch(t -> t.getState() != Thread.State.WAITING)) {
            Thread.sleep(5);
        }
        assertFalse(TestSupport.cpuHelpers(threads).isEmpty());
        assertTrue(TestSupport.cpuHelpers(threads).stream().allMatch(t -> t.getState() == Thread.State.WAITING), "a helper still spins");
    }
}
