package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Warmup}: runs until three runs agree and the JIT is quiet, not a fixed count; gives up after its cap. */
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

    @Test
    void agreeingRunsWhileTheJitStillCompilesAreNotSteady() {
        // times agree from the first run (as C1's code does while C2 compiles), but a compiler thread is busy all the
        // time for the first 300 ms (its CPU time grows with the clock: 100 ms per 100 ms window), then one last large
        // compilation: steady only after that and 100 ms of quiet. (Counted once per run instead, the JIT looked quiet
        // before 300 ms on a loaded machine: runs of sleep(2) that took 3.3 ms or more put at most 30 in a 100 ms window.)
        AtomicInteger runs = new AtomicInteger();
        long t0 = System.nanoTime();
        java.util.function.LongSupplier jit = () -> {
            long elapsed = System.nanoTime() - t0;
            return elapsed < 300_000_000L ? elapsed / 1_000_000 : 1_000_000;
        };
        assertTrue(Warmup.untilSteady(() -> {
            runs.incrementAndGet();
            sleep(2);
        }, 1, 0, 5000, jit));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 300 + Warmup.QUIET_NANOS / 1_000_000, ms + " ms");
    }

    @Test
    void smallCompilationsOfOtherMethodsDoNotKeepItFromSteady() {
        // a 2 ms compilation every 40 ms, as a fresh JVM keeps making for seconds: at most 6 ms in any window, within the slack
        long t0 = System.nanoTime();
        java.util.function.LongSupplier jit = () -> (System.nanoTime() - t0) / 40_000_000L * 2;
        assertTrue(Warmup.untilSteady(() -> sleep(2), 1, 0, 2000, jit));
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 1000);
    }

    @Test
    void aJitThatNeverGoesQuietStopsAtTheCapAndSaysSo() {
        AtomicInteger runs = new AtomicInteger();
        assertFalse(Warmup.untilSteady(() -> {
            runs.incrementAndGet();
            sleep(2);
        }, 1, 0, 150, runs::get));
    }

    /**
     * A kernel on the Vector API's Java fallback (before C2 has compiled it) runs at a steady, 10x too slow pace with the
     * JIT quiet, but allocates on every run: not steady until the runs stop allocating.
     */
    @Test
    void runsThatStillAllocateAreNotSteady() {
        AtomicInteger runs = new AtomicInteger();
        long[] heap = {0};
        assertTrue(Warmup.untilSteady(() -> {
            if (runs.incrementAndGet() <= 20) {
                heap[0] += 4 << 20; // boxed vectors
            }
            sleep(1);
        }, 1, 0, 5000, () -> 0L, () -> heap[0], true));
        assertTrue(runs.get() >= 20 + Warmup.RUNS, "steady after " + runs.get() + " runs, while 20 allocated");
    }

    @Test
    void aCallThatAllocatesTheSameEveryRunIsSteadyUnlessItShouldAllocateNothing() {
        long[] heap = {0};
        Runnable newTensorEachRun = () -> {
            heap[0] += 1 << 20;
            sleep(1);
        };
        assertTrue(Warmup.untilSteady(newTensorEachRun, 1, 0, 2000, () -> 0L, () -> heap[0], false));
        assertFalse(Warmup.untilSteady(newTensorEachRun, 1, 0, 150, () -> 0L, () -> heap[0], true));
    }

    @Test
    void theCallingThreadsAllocationsAreCounted() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Warmup.allocatedBytes() >= 0, "this JVM does not count a thread's allocations");
        long before = Warmup.allocatedBytes();
        float[] big = new float[1 << 20];
        assertTrue(Warmup.allocatedBytes() - before >= 4L * big.length, "a 4 MiB array was not counted");
    }

    @Test
    void theJvmReportsItsCompilationTime() {
        // HotSpot does; without it the JIT test above would be the only guard, so say so if a JVM ever does not
        assertTrue(Warmup.compilationMillis() > 0, "the JVM reports no JIT compilation time");
    }

    /** On Linux the JIT's activity is its compiler threads' CPU time, which a compilation in flight moves. */
    @Test
    void onLinuxTheCompilerThreadsCpuTimeIsRead() {
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isDirectory(java.nio.file.Path.of("/proc/self/task")), "no /proc");
        long before = Warmup.compilerCpuMillis();
        assertTrue(before > 0, "no compiler thread found under /proc/self/task, or none has run: " + before);
        assertEquals(before, Warmup.jitActivityMillis(), 1000, "the activity the warm-up reads");
        // new code for the JIT: javac's own classes, which no test has run, compiled in this JVM until the compiler
        // threads' CPU time moves (a small loop's compilation can finish inside one 10 ms tick and not be counted)
        javax.tools.JavaCompiler javac = javax.tools.ToolProvider.getSystemJavaCompiler();
        org.junit.jupiter.api.Assumptions.assumeTrue(javac != null, "no javac in this runtime");
        long deadline = System.nanoTime() + 30_000_000_000L;
        for (int n = 0; Warmup.compilerCpuMillis() == before && System.nanoTime() < deadline; n++) {
            compileInMemory(javac, "class Probe" + n + " { int f(int x) { return x * " + n + " + 1; } }");
        }
        assertTrue(Warmup.compilerCpuMillis() > before, "compiling new code did not move the compiler threads' CPU time");
    }

    /** Compiles one source file with {@code javac} in this JVM, writing nothing. */
    private static void compileInMemory(javax.tools.JavaCompiler javac, String source) {
        String name = source.split(" ")[1];
        javax.tools.JavaFileObject file = new javax.tools.SimpleJavaFileObject(java.net.URI.create("string:///" + name + ".java"),
                javax.tools.JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return source;
            }
        };
        try (javax.tools.StandardJavaFileManager files = javac.getStandardFileManager(null, null, null)) {
            javax.tools.JavaFileManager nowhere = new javax.tools.ForwardingJavaFileManager<>(files) {
                @Override
                public javax.tools.JavaFileObject getJavaFileForOutput(Location location, String className,
                        javax.tools.JavaFileObject.Kind kind, javax.tools.FileObject sibling) {
                    return new javax.tools.SimpleJavaFileObject(java.net.URI.create("mem:///" + className + kind.extension), kind) {
                        @Override
                        public java.io.OutputStream openOutputStream() {
                            return java.io.OutputStream.nullOutputStream();
                        }
                    };
                }
            };
            assertTrue(javac.getTask(null, nowhere, null, java.util.List.of("-proc:none"), null, java.util.List.of(file)).call(),
                    "javac failed on " + source);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * After a call is steady, {@link Warmup#untilJitSettles} runs it on while the JIT works (here a compiler's CPU time that
     * grows 5 ms per run for the first 60 runs, then stays: 5 ms per ~2 ms run is far above 2% of a core) and returns
     * once a whole window has passed with at most 2% of it spent compiling; a JIT that never settles (1 ms per run)
     * stops at the cap and says so; a quiet JIT still takes one whole window.
     */
    @Test
    void aTrunkIsRunOnUntilTheJitHasSettled() {
        AtomicInteger runs = new AtomicInteger();
        long[] jit = {0};
        long t0 = System.nanoTime();
        assertTrue(Warmup.untilJitSettles(() -> {
            if (runs.incrementAndGet() <= 60) {
                jit[0] += 5;
            }
            sleep(2);
        }, 5000, () -> jit[0], 100_000_000L));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(runs.get() > 60 && ms >= 60 * 2 + 100, runs.get() + " runs in " + ms + " ms: the last compilation, then a quiet window");
        t0 = System.nanoTime(); // a JIT quiet from the start: still one whole window of runs
        assertTrue(Warmup.untilJitSettles(() -> sleep(2), 5000, () -> 7, 100_000_000L));
        ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 100, ms + " ms");
        AtomicInteger busy = new AtomicInteger();
        t0 = System.nanoTime();
        assertFalse(Warmup.untilJitSettles(() -> sleep(2), 300, () -> busy.incrementAndGet(), 100_000_000L));
        ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 300 && ms < 3000, ms + " ms");
    }
}
