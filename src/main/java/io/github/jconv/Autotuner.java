package io.github.jconv;

import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.cpu.CpuBackend;
import io.github.jconv.cpu.CpuInfo;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.ReferenceConv;
import io.github.jconv.cpu.Weights;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.io.AtomicFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What {@code auto} means: per (operation, shape, backend, device, library versions, thread count) it times
 * every algorithm that can take the problem once, on finite random operands of the problem's sizes
 * ({@link SampleData}; never the caller's data, which may hold NaN or Inf), keeps the fastest whose result is
 * within {@link #TOLERANCE} of the float64 reference (a wrong fast answer is never chosen), and remembers
 * the choice in memory and in a JSON file shared by all processes of the user. A candidate that throws or
 * runs out of memory is skipped and recorded under {@code failed} (shown by {@code explain}); the call goes on.
 *
 * <p>Concurrency: one tuning per problem per process (threads asking for a problem that is being tuned wait
 * for that result instead of timing it again, under each other's load); saves are serialised inside the
 * process and hold a lock file across processes, so no tuned entry is lost.
 *
 * <p>The file: {@code -Djconv.tune.cache=PATH}, else {@code $JCONV_TUNE_CACHE}, else
 * {@code $XDG_CACHE_HOME/jconv/autotune.json}, else {@code ~/.cache/jconv/autotune.json}. Writers hold a lock
 * file and merge what other processes wrote; the file is replaced atomically. A file that is not valid JSON
 * or has another format version is ignored with a warning and rewritten on the next save.
 *
 * <p>Tuning is skipped (the backend's heuristic decides) when the caller turns it off, and for problems under
 * {@link #minFlops()} FLOPs, where timing would cost more than any choice can save.
 *
 * <p>Steady state: in a fresh JVM a candidate's first runs are interpreted or compiled by C1 while C2 works (on two
 * cores, beside the workers), so a single warm-up run times cold code and can crown the algorithm that warms up
 * fastest, not the fastest. A CPU candidate is therefore run until its last {@link #STEADY_RUNS} times agree within
 * {@link #STEADY_SPREAD} and the JIT has gone quiet ({@link Warmup}; capped by {@link #warmupMillis()} per candidate, at
 * least {@link #STEADY_RUNS} runs); then the warmed candidates are timed in rounds, each candidate once per round, so
 * load from elsewhere on the machine falls on every candidate alike; each is ranked by its fastest run (noise only adds
 * time, and it can still fall on most runs of one candidate) and recorded with the median of its runs. The entry
 * records each candidate's spread and whether it reached steady state; a choice made while a candidate within
 * {@link #UNSTEADY_MARGIN} of the winner had not is kept for this process only and is not written to the file, so the
 * next process tunes it again. The timed runs of a candidate within that margin that spread more than {@link
 * #TIMED_SPREAD} (its fastest run may not be its speed) are timed again with the others, once, and the second rounds
 * decide ({@code retimed} in the entry). The backend's own pick losing by more than {@link #SUSPECT_MARGIN} is warmed
 * again and every candidate timed once more; still losing by as much, the choice is provisional ({@code suspect}).
 *
 * <p>Cold caches: where the backend says its candidates' weights outweigh the work ({@link Backend#timedCold}: Winograd's
 * transformed weights on 7x7 and 14x14 maps at batch 1), each timed run is preceded by a sweep through more memory than
 * the last-level cache holds ({@link #clearCaches}), then by one run of the same candidate on a copy of the weights (its
 * own arrays and packed forms), as in a network, where the other layers' weights pass through the caches between two
 * calls of this one while its input and workspaces stay there; timed on weights it had just used, Winograd won where it
 * lost in the trunk, and timed right after the sweep it lost where it won ({@code "timed"} in the entry says which).
 */
public final class Autotuner {
    /** The cache file's format version. */
    public static final int FORMAT = 1;
    /** An algorithm must match the float64 reference to max|y - ref| / max|ref| <= this to be chosen. */
    public static final double TOLERANCE = 1e-4;
    private static final int TIMED_RUNS = 5;
    /** Warm-up runs that must agree before timing ({@link Warmup}). */
    static final int STEADY_RUNS = Warmup.RUNS;
    /** How far apart (max / min) they may be. */
    static final double STEADY_SPREAD = Warmup.SPREAD;
    /**
     * Winograd is chosen only when this much faster than the best other candidate: its rounding error is ~10x direct's
     * and a plan keeps its weights 4x larger (36 transformed values per 3x3 kernel), which a near tie does not repay. It
     * was 1.15 while the tuner also timed Winograd where its transformed weights outweigh the work (on 7x7 and 14x14 maps
     * at batch 1 the tuner's runs and the network disagreed on the order by up to 1.5x); those shapes are now timed with
     * the caches cleared ({@code CpuBackend.timedCold}), and on ResNet-50's 56x56 and 28x28 layers at batch 1 it
     * ran 10-18% faster than direct inside the trunk while the tuner, seeing it 1.14x faster by median, kept direct on
     * one of them in 5 of 10 fresh processes (AMD EPYC Zen 5, 2026-12-05).
     */
    public static final double WINOGRAD_MARGIN = 1.05;
    /** A candidate not at steady state within this factor of the winner's time makes the choice provisional. */
    static final double UNSTEADY_MARGIN = 1.5;
    /**
     * A candidate within {@link #UNSTEADY_MARGIN} of the fastest whose timed runs spread more than this (slowest / fastest)
     * makes the tuner time every candidate again, once, and take the second rounds. On a Zen 5 VM `direct` on a 1x1 layer
     * (0.36-0.55 ms in other processes) was timed at a median of 1.39 ms, spread 3.8x, and lost to im2col, which then ran
     * 1.0-1.2 ms in each of four ResNet-50 layers (the trunk 2.5 ms slower). Not a reason to leave the choice provisional:
     * 10-17% of the ResNet-50 entries of that hour had a close candidate past 2x, and tiny problems timed side by side
     * scatter whatever the tuner does.
     */
    static final double TIMED_SPREAD = 2.0;
    /**
     * The backend's own pick ({@link Backend#choose}, the algorithm its heuristic expects to be fastest) losing by more
     * than this (its fastest run over the winner's, Winograd's margin counted) is suspect: it is warmed again for at least
     * {@link #SUSPECT_WARMUP_MILLIS} and every candidate is timed again, once; if it still loses by as much, the choice is
     * provisional. On a Zen 5 VM, in 1 of 4 fresh `bench --network` processes, the tuner timed direct on the stem at 54 ms
     * and on 64 -> 256 @ 56 at a steady 14 ms (1.2 and 0.48-0.66 ms in the other processes' trunks) and chose im2col,
     * which ran them at 3.3 and 1.0-1.35 ms: the trunk 11% slower, and the 1x1 choice cached on disk for every later
     * process.
     */
    static final double SUSPECT_MARGIN = 2.5;
    /** The least warm-up of a suspect candidate before its second timing: time for the JIT to replace the code it ran on. */
    static final long SUSPECT_WARMUP_MILLIS = 1000;
    /** A cached choice is tuned again after this many consecutive calls slower than its recorded time by {@link #RECHECK_MARGIN}. */
    static final int RECHECK_CALLS = 8;
    static final double RECHECK_MARGIN = 2.0;
    private static final Logger LOG = LoggerFactory.getLogger(Autotuner.class);
    private static final Autotuner GLOBAL = new Autotuner(defaultCacheFile(), -1);

    /** The seed of the operands tuning runs on. */
    private static final long SAMPLE_SEED = 0x6a636f6e76L;
    /** One in-process lock per cache file (a second FileChannel lock in the same JVM would throw). */
    private static final Map<Path, Object> SAVE_LOCKS = new ConcurrentHashMap<>();

    private final Path file;
    private final long minFlops;
    private final Map<String, Map<String, Object>> memory = new ConcurrentHashMap<>();
    private final Map<String, Integer> slowCalls = new ConcurrentHashMap<>();
    private final java.util.Set<String> retuned = ConcurrentHashMap.newKeySet();
    private final Map<String, CompletableFuture<Map<String, Object>>> inFlight = new ConcurrentHashMap<>();
    private volatile boolean loaded;
    private final AtomicInteger tunings = new AtomicInteger();

    private Autotuner(Path file, long minFlops) {
        this.file = file == null ? null : file.toAbsolutePath().normalize();
        this.minFlops = minFlops;
    }

    /** The process-wide tuner with the default cache file. */
    public static Autotuner global() {
        return GLOBAL;
    }

    /** A tuner with its own cache file (null: memory only). */
    public static Autotuner withCacheFile(Path file) {
        return new Autotuner(file, -1);
    }

    /** This tuner's cache file with another tuning threshold (tests: 0 tunes every problem). */
    public Autotuner withMinFlops(long flops) {
        return new Autotuner(file, flops);
    }

    public Path cacheFile() {
        return file;
    }

    /** Warm-up time per CPU candidate at most, in ms ({@code -Djconv.tune.warmupMillis}, default 2000). */
    public static long warmupMillis() {
        return Long.getLong("jconv.tune.warmupMillis", 2000L);
    }

    /** Problems below this many FLOPs are not tuned ({@code -Djconv.tune.minFlops}, default 2e7). */
    public static long minFlops() {
        return Long.getLong("jconv.tune.minFlops", 20_000_000L);
    }

    private long threshold() {
        return minFlops >= 0 ? minFlops : minFlops();
    }

    static Path defaultCacheFile() {
        String p = System.getProperty("jconv.tune.cache");
        if (p == null || p.isBlank()) {
            p = System.getenv("JCONV_TUNE_CACHE");
        }
        if (p != null && !p.isBlank()) {
            return Path.of(p);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("jconv").resolve("autotune.json");
    }

    /** The cache key: everything that can change which algorithm is fastest. */
    public static String key(Backend backend, ConvGeometry g, int threads) {
        String device = backend instanceof CudaBackend ? ((CudaBackend) backend).describeDevice() : CpuDevice.DESCRIPTION;
        return g.op.label() + " in=" + Arrays.toString(g.inputShape()) + " w=" + Arrays.toString(g.weightShape()) + " out="
                + Arrays.toString(g.outputShape()) + " pad=" + g.padTop + "," + g.padBottom + "," + g.padLeft + "," + g.padRight
                + " stride=" + g.strideH + "," + g.strideW + " dil=" + g.dilationH + "," + g.dilationW + " groups=" + g.groups
                + (g.hasBias ? " bias" : "") + " | " + backend.name() + " | " + device + " | threads="
                + Parallel.of(threads).threads() + " | jconv " + version() + ", java " + System.getProperty("java.version");
    }

    /** The CPU's part of the key, read once (not on every call of {@code auto}). */
    private static final class CpuDevice {
        static final String DESCRIPTION = cpuDevice();
    }

    private static String cpuDevice() {
        String model = "unknown cpu";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    model = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            model = System.getProperty("os.arch");
        }
        return model + ", " + Runtime.getRuntime().availableProcessors() + " cores, " + CpuInfo.simdPath();
    }

    static String version() {
        String v = Autotuner.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    /**
     * The algorithm {@code auto} runs for this problem: the cached choice, or a fresh tuning (then cached; a thread
     * that asks while another tunes the same problem waits for that result), or the backend's heuristic when
     * tuning is off, the problem is small, or tuning itself failed.
     */
    public Algorithm choose(Backend backend, ConvGeometry g, int threads, boolean tune) {
        if (!tune || g.flops() < threshold()) {
            return backend.choose(g);
        }
        String key = key(backend, g, threads);
        Algorithm hit = usable(backend, g, cached(key));
        if (hit != null) {
            return hit;
        }
        CompletableFuture<Map<String, Object>> mine = new CompletableFuture<>();
        CompletableFuture<Map<String, Object>> running = inFlight.putIfAbsent(key, mine);
        if (running != null) {
            try {
                hit = usable(backend, g, running.join());
            } catch (CompletionException | CancellationException e) {
                hit = null; // the tuning thread failed; it said why
            }
            return hit != null ? hit : backend.choose(g);
        }
        try {
            Map<String, Object> entry = memory.get(key); // tuned by a thread that finished after our first look
            if (usable(backend, g, entry) == null) {
                entry = tune(backend, g, threads);
                if (entry != null) {
                    memory.put(key, entry);
                    if (!Boolean.TRUE.equals(entry.get("provisional"))) {
                        save(key, entry);
                    }
                }
            }
            mine.complete(entry);
            hit = usable(backend, g, entry);
            return hit != null ? hit : backend.choose(g);
        } catch (RuntimeException | Error e) {
            mine.completeExceptionally(e);
            throw e;
        } finally {
            inFlight.remove(key, mine);
        }
    }

    /** The entry's algorithm when the backend can still run it on g, else null. */
    private static Algorithm usable(Backend backend, ConvGeometry g, Map<String, Object> entry) {
        if (entry == null) {
            return null;
        }
        try {
            Algorithm a = Algorithm.parse(String.valueOf(entry.get("algorithm")));
            return a != Algorithm.AUTO && backend.cannotImplement(a, g) == null ? a : null;
        } catch (InvalidConvolutionException e) {
            return null; // an algorithm this version does not know (a cache written by another version)
        }
    }

    /** The cached entry for this problem, or null: {algorithm, median_ms {alg: ms}, max_rel_error {alg: e}, tuned_at}. */
    public Map<String, Object> cached(Backend backend, ConvGeometry g, int threads) {
        return cached(key(backend, g, threads));
    }

    /**
     * The re-check of a cached choice: a call of {@code auto} reports how long its chosen algorithm took ({@code ms}, the
     * whole call on a host backend). After {@link #RECHECK_CALLS} consecutive calls slower than the time the tuner
     * recorded for it by {@link #RECHECK_MARGIN}x (the machine got busier, the choice was made under conditions that no
     * longer hold), the entry is dropped and the next call tunes again (once per problem and process, so a machine that is
     * merely noisy cannot keep it tuning). GPU backends are not re-checked here: their recorded times are kernel time,
     * a stateless call's includes the transfers. Returns true when this report dropped the entry.
     */
    public boolean observe(Backend backend, ConvGeometry g, int threads, Algorithm ran, double ms) {
        if (backend instanceof CudaBackend || g.flops() < threshold() || memory.isEmpty()) {
            return false; // (below the threshold nothing was tuned: no key string built per small call)
        }
        String key = key(backend, g, threads);
        Map<String, Object> entry = memory.get(key);
        if (entry == null || !ran.label().equals(entry.get("algorithm")) || retuned.contains(key)
                || !(entry.get("median_ms") instanceof Map<?, ?> times) || !(times.get(ran.label()) instanceof Number recorded)) {
            return false;
        }
        if (ms <= recorded.doubleValue() * RECHECK_MARGIN) {
            slowCalls.remove(key);
            return false;
        }
        int slow = slowCalls.merge(key, 1, Integer::sum);
        if (slow < RECHECK_CALLS || !retuned.add(key)) {
            return false;
        }
        slowCalls.remove(key);
        memory.remove(key, entry);
        LOG.info("{} on {}: {} ran {} calls in a row over {}x its tuned {} ms (last {} ms); tuning again on the next call", g,
                backend.name(), ran, RECHECK_CALLS, RECHECK_MARGIN, recorded, Math.round(ms * 1000) / 1000.0);
        return true;
    }

    private Map<String, Object> cached(String key) {
        load();
        return memory.get(key);
    }

    /** How many problems this tuner has timed (cache hits do not count). */
    public int tunings() {
        return tunings.get();
    }

    /**
     * Times every algorithm that can take g on {@link SampleData} and returns the entry {algorithm, median_ms,
     * max_rel_error, failed, tuned_at}; null when the tuning itself could not run (no memory for the operands or
     * the reference), which is logged and not cached.
     */
    private Map<String, Object> tune(Backend backend, ConvGeometry g, int threads) {
        tunings.incrementAndGet();
        long t0 = System.nanoTime();
        float[][] d;
        double[] ref;
        float[] out;
        try {
            d = SampleData.of(g, SAMPLE_SEED);
            if (!g.hasBias) {
                d[2] = null;
            }
            ref = ReferenceConv.compute(g, d[0], d[1], d[2], Parallel.of(threads));
            out = new float[ref.length];
        } catch (OutOfMemoryError e) {
            LOG.warn("autotuning {} skipped: no Java heap for its operands and the float64 reference; using the heuristic", g);
            return null;
        }
        Map<String, Object> times = new TreeMap<>(), errors = new TreeMap<>(), failed = new TreeMap<>(), spreads = new TreeMap<>(),
                notTuned = new TreeMap<>();
        Map<String, Boolean> steady = new TreeMap<>();
        Map<Algorithm, double[]> timed = new LinkedHashMap<>();
        Map<Algorithm, Runnable> onHost = new LinkedHashMap<>();
        // timed cold: each timed run follows a sweep of the caches and a run of the same candidate on a copy of the weights
        boolean cold = backend.timedCold(g);
        Map<Algorithm, Runnable> primers = cold ? new LinkedHashMap<>() : null;
        // on a GPU backend the candidates are timed as plans on device tensors between device events: the kernels
        // alone, not the transfers, which are the same for every algorithm
        try (Device device = backend instanceof CudaBackend ? Device.open(backend.name()) : null) {
            for (Algorithm a : backend.algorithms()) {
                if (a == Algorithm.REFERENCE || backend.cannotImplement(a, g) != null) {
                    continue;
                }
                String why = backend.notTuned(a, g);
                if (why != null) {
                    notTuned.put(a.label(), why);
                    continue;
                }
                try {
                    if (device == null) {
                        Runnable run = hostRun(backend, a, g, d, out, threads);
                        steady.put(a.label(), warmOnHost(run, backend instanceof CpuBackend));
                        onHost.put(a, run);
                        if (cold) { // other weight arrays (on the CPU hostRun copies them, and its packed forms are its own), its own output
                            float[][] other = backend instanceof CpuBackend ? d : new float[][] {d[0], d[1].clone(), d[2]};
                            primers.put(a, hostRun(backend, a, g, other, new float[out.length], threads));
                        }
                    } else {
                        timed.put(a, deviceTimes(device, a, g, d, out));
                    }
                } catch (RuntimeException | OutOfMemoryError | LinkageError e) {
                    fail(failed, g, backend, a, e);
                    continue;
                }
                errors.put(a.label(), ReferenceConv.maxRelError(out, ref));
            }
        }
        Map<Algorithm, double[]> host = hostTimes(backend, onHost, primers, g, failed);
        boolean retimed = scattered(host, errors);
        if (retimed) {
            LOG.info("autotuning {}: the timed runs of a candidate near the fastest spread more than {}x; timing them again", g, TIMED_SPREAD);
            host = hostTimes(backend, onHost, primers, g, failed);
        }
        Algorithm expected = backend.choose(g);
        boolean suspect = outrun(host, errors, expected);
        if (suspect) {
            LOG.info("autotuning {}: {}, the backend's own pick, lost by more than {}x; warming it again and timing every candidate once more", g,
                    expected, SUSPECT_MARGIN);
            steady.put(expected.label(), warmOnHost(onHost.get(expected), backend instanceof CpuBackend, SUSPECT_WARMUP_MILLIS));
            host = hostTimes(backend, onHost, primers, g, failed);
            retimed = true;
            suspect = outrun(host, errors, expected);
        }
        timed.putAll(host);
        Algorithm best = null;
        double bestMs = Double.MAX_VALUE;
        for (Map.Entry<Algorithm, double[]> e : timed.entrySet()) {
            double[] ms = e.getValue();
            Arrays.sort(ms);
            String label = e.getKey().label();
            times.put(label, ms[TIMED_RUNS / 2]);
            spreads.put(label, Math.round(ms[TIMED_RUNS - 1] / Math.max(ms[0], 1e-9) * 1000) / 1000.0);
            // chosen by its fastest run: on a shared machine noise only adds time, and it can fall on most of one candidate's
            // runs (a 0.14 ms 1x1 layer timed at a median of 1.14 ms, spread 63x, lost to im2col's 0.43 on a Zen 5 VM)
            double score = score(e.getKey(), ms[0]);
            if (accurate(errors, e.getKey()) && score < bestMs) {
                best = e.getKey();
                bestMs = score;
            }
        }
        errors.keySet().retainAll(times.keySet()); // a candidate that failed in the timed rounds has no time
        steady.keySet().retainAll(times.keySet());
        if (best == null) {
            best = backend.choose(g);
            LOG.warn("autotuning found no algorithm within {} of the reference for {}; using {}", TOLERANCE, g, best);
        }
        LOG.info("autotuned {} on {} in {} ms: {}", g, backend.name(), Math.round((System.nanoTime() - t0) / 1e6), best);
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("algorithm", best.label());
        entry.put("median_ms", times);
        entry.put("max_rel_error", errors);
        entry.put("timed", backend instanceof CudaBackend ? "device events around plan runs"
                : "whole calls at steady state" + (cold ? ", the caches cleared before each, then a run on a copy of the weights" : ""));
        entry.put("spread", spreads);
        if (!steady.isEmpty()) {
            entry.put("steady", steady);
            Object bestTime = times.get(best.label());
            double winner = bestTime instanceof Double ? (Double) bestTime : bestMs;
            boolean provisional = steady.entrySet().stream().anyMatch(e -> !e.getValue() && times.get(e.getKey()) instanceof Double
                    && (Double) times.get(e.getKey()) <= winner * UNSTEADY_MARGIN);
            if (provisional) {
                entry.put("provisional", true); // kept for this process, tuned again by the next
                LOG.info("autotuning {}: a candidate near the winner had not reached steady state; not cached on disk", g);
            }
        }
        if (suspect) {
            entry.put("suspect", expected.label());
            entry.put("provisional", true);
            LOG.info("autotuning {}: {} still lost by more than {}x; not cached on disk", g, expected, SUSPECT_MARGIN);
        }
        if (retimed) {
            entry.put("retimed", true);
        }
        if (!failed.isEmpty()) {
            entry.put("failed", failed);
        }
        if (!notTuned.isEmpty()) {
            entry.put("not_tuned", notTuned);
        }
        entry.put("tuned_at", Instant.now().toString());
        return entry;
    }

    /**
     * Whether the timed runs of a candidate that could win (within {@link #TOLERANCE} of the reference, its fastest run
     * within {@link #UNSTEADY_MARGIN} of the fastest candidate's, Winograd's margin counted) spread more than {@link
     * #TIMED_SPREAD} (slowest / fastest): then even its fastest run may not be its speed.
     */
    private static boolean scattered(Map<Algorithm, double[]> timed, Map<String, Object> errors) {
        Map<Algorithm, Double> fastest = fastest(timed, errors);
        double best = fastest.entrySet().stream().mapToDouble(e -> score(e.getKey(), e.getValue())).min().orElse(Double.MAX_VALUE);
        for (Map.Entry<Algorithm, Double> e : fastest.entrySet()) {
            double max = Arrays.stream(timed.get(e.getKey())).max().orElse(0);
            if (score(e.getKey(), e.getValue()) <= best * UNSTEADY_MARGIN && max > e.getValue() * TIMED_SPREAD) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether {@code expected} (within {@link #TOLERANCE} of the reference) lost to another candidate by more than {@link
     * #SUSPECT_MARGIN}, both ranked by {@link #score}.
     */
    private static boolean outrun(Map<Algorithm, double[]> timed, Map<String, Object> errors, Algorithm expected) {
        Map<Algorithm, Double> fastest = fastest(timed, errors);
        Double mine = fastest.remove(expected);
        return mine != null && fastest.entrySet().stream()
                .anyMatch(e -> score(expected, mine) > SUSPECT_MARGIN * score(e.getKey(), e.getValue()));
    }

    /** The fastest run of each candidate that could win (within {@link #TOLERANCE} of the reference), in timed's order. */
    private static Map<Algorithm, Double> fastest(Map<Algorithm, double[]> timed, Map<String, Object> errors) {
        Map<Algorithm, Double> fastest = new LinkedHashMap<>();
        for (Map.Entry<Algorithm, double[]> e : timed.entrySet()) {
            if (accurate(errors, e.getKey())) {
                fastest.put(e.getKey(), Arrays.stream(e.getValue()).min().orElse(Double.MAX_VALUE));
            }
        }
        return fastest;
    }

    /** Whether candidate a's result was within {@link #TOLERANCE} of the float64 reference. */
    private static boolean accurate(Map<String, Object> errors, Algorithm a) {
        return errors.get(a.label()) instanceof Double err && err <= TOLERANCE;
    }

    /** What the tuner ranks a candidate by: its fastest run, Winograd's times its {@link #WINOGRAD_MARGIN}. */
    private static double score(Algorithm a, double fastestMs) {
        return fastestMs * (a == Algorithm.WINOGRAD ? WINOGRAD_MARGIN : 1);
    }

    /**
     * Warm-up runs until the last {@link #STEADY_RUNS} agree within {@link #STEADY_SPREAD}, the JIT is quiet and, for a
     * CPU candidate ({@code allocationFree}: its call allocates nothing once compiled), the runs have stopped allocating
     * ({@link Warmup}; or {@link #warmupMillis()} has passed); returns whether it got there. The last result is in out.
     */
    private static boolean warmOnHost(Runnable run, boolean allocationFree) {
        return warmOnHost(run, allocationFree, 0);
    }

    /** As {@link #warmOnHost(Runnable, boolean)}, for at least minMillis (and then up to {@link #warmupMillis()} more). */
    private static boolean warmOnHost(Runnable run, boolean allocationFree, long minMillis) {
        return Warmup.untilSteady(run, STEADY_RUNS, minMillis, minMillis + warmupMillis(), allocationFree);
    }

    /**
     * One call of candidate a on the host as a plan makes it: on the CPU backend the weights are packed (Winograd:
     * transformed) once, in the first warm-up run, and kept, so the timed runs compute only, as a plan's runs do (a
     * stateless call rebuilds them every time, which for Winograd's transform of a 512-channel layer costs more than the
     * convolution). The result goes to out.
     */
    private static Runnable hostRun(Backend backend, Algorithm a, ConvGeometry g, float[][] d, float[] out, int threads) {
        if (backend instanceof CpuBackend) {
            Weights kept = Weights.kept(d[1].clone());
            return () -> ((CpuBackend) backend).run(a, g, d[0], kept, d[2], Epilogue.none(), null, out, threads);
        }
        return () -> backend.run(a, g, d[0], d[1], d[2], out, threads);
    }

    /**
     * TIMED_RUNS wall times of whole calls per warmed candidate, in rounds that run each candidate once: a burst of load
     * from elsewhere on the machine then slows one round of every candidate, not all the runs of one (timed one after
     * the other, a candidate's 3 runs on a noisy 2-core machine were up to 2x apart and the slower algorithm won).
     * A candidate that throws is dropped (recorded in failed).
     */
    private static Map<Algorithm, double[]> hostTimes(Backend backend, Map<Algorithm, Runnable> candidates, Map<Algorithm, Runnable> primers,
                                                      ConvGeometry g, Map<String, Object> failed) {
        Map<Algorithm, double[]> ms = new LinkedHashMap<>();
        candidates.keySet().forEach(a -> ms.put(a, new double[TIMED_RUNS]));
        for (int round = 0; round < TIMED_RUNS; round++) {
            for (Iterator<Map.Entry<Algorithm, double[]>> it = ms.entrySet().iterator(); it.hasNext(); ) {
                Map.Entry<Algorithm, double[]> e = it.next();
                try {
                    if (primers != null) {
                        clearCaches.run();
                        primers.get(e.getKey()).run();
                    }
                    long s = System.nanoTime();
                    candidates.get(e.getKey()).run();
                    e.getValue()[round] = (System.nanoTime() - s) / 1e6;
                } catch (RuntimeException | OutOfMemoryError | LinkageError x) {
                    fail(failed, g, backend, e.getKey(), x);
                    it.remove();
                }
            }
        }
        return ms;
    }

    /** Bytes swept by {@link #sweep}: twice a 32 MiB last-level cache (AMD EPYC's per CCD; Intel Xeon's are smaller). */
    static final int SWEEP_BYTES = 64 << 20;
    private static volatile java.lang.ref.SoftReference<int[]> sweepBuffer = new java.lang.ref.SoftReference<>(null);
    private static volatile int sweepSink;

    /** What a cold timed run is preceded by: {@link #sweep}; tests replace it to see when it runs. */
    static volatile Runnable clearCaches = Autotuner::sweep;

    /**
     * Reads one int of every 64-byte line of {@link #SWEEP_BYTES} (allocated on first use, held softly so that a heap under
     * pressure takes it back; without the heap for it, no sweep and a warning): whatever the caches held before is evicted
     * by it, as a network's other layers evict a layer's weights (~2-4 ms).
     */
    static void sweep() {
        int[] b = sweepBuffer.get();
        if (b == null) {
            try {
                b = new int[SWEEP_BYTES / 4];
            } catch (OutOfMemoryError e) {
                LOG.warn("autotuning: no Java heap for the {} MiB cache sweep; timing with warm caches", SWEEP_BYTES >> 20);
                return;
            }
            sweepBuffer = new java.lang.ref.SoftReference<>(b);
        }
        int sum = 0;
        for (int i = 0; i < b.length; i += 16) {
            sum += b[i];
        }
        sweepSink = sum;
    }

    private static void fail(Map<String, Object> failed, ConvGeometry g, Backend backend, Algorithm a, Throwable e) {
        String why = e instanceof OutOfMemoryError ? "out of Java heap memory" : oneLine(e);
        failed.put(a.label(), why);
        LOG.warn("autotuning {} on {}: {} failed ({}); skipped", g, backend.name(), a, why);
    }

    /** TIMED_RUNS device times of a plan's runs on device tensors after one warm-up; the result in out. */
    private static double[] deviceTimes(Device device, Algorithm a, ConvGeometry g, float[][] d, float[] out) {
        double[] ms = new double[TIMED_RUNS];
        try (ConvPlan plan = ConvPlan.of(device, g, Tensor.of(d[1], g.weightShape()),
                d[2] == null ? null : Tensor.of(d[2], g.biasLength())).algorithm(a).tune(false).build();
             DeviceTensor x = device.upload(d[0], g.inputShape());
             DeviceTensor y = device.allocate(g.outputShape())) {
            plan.run(x, y); // warm-up (and the module's first load on a GPU)
            for (int i = 0; i < TIMED_RUNS; i++) {
                ms[i] = device.time(() -> plan.run(x, y));
            }
            y.download(out);
        }
        return ms;
    }

    private static String oneLine(Throwable e) {
        String m = e.getMessage();
        String text = m == null || m.isBlank() ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + m;
        int nl = text.indexOf('\n');
        return nl < 0 ? text : text.substring(0, nl);
    }

    // ------------------------------------------------------------ the file

    private void load() {
        if (loaded || file == null) {
            loaded = true;
            return;
        }
        synchronized (this) {
            if (!loaded) {
                memory.putAll(readFile());
                loaded = true;
            }
        }
    }

    @SuppressWarnings("unchecked")
    private Map<String, Map<String, Object>> readFile() {
        Map<String, Map<String, Object>> entries = new LinkedHashMap<>();
        if (file == null || !Files.isRegularFile(file)) {
            return entries;
        }
        try {
            Map<String, Object> doc = JSON.std.mapFrom(Files.readString(file, StandardCharsets.UTF_8));
            Object format = doc == null ? null : doc.get("format");
            if (!(format instanceof Number) || ((Number) format).intValue() != FORMAT) {
                LOG.warn("ignoring the autotuning cache {}: format {} is not {}", file, format, FORMAT);
                return entries;
            }
            Object e = doc.get("entries");
            if (e instanceof Map) {
                for (Map.Entry<String, Object> kv : ((Map<String, Object>) e).entrySet()) {
                    if (kv.getValue() instanceof Map && ((Map<String, Object>) kv.getValue()).get("algorithm") instanceof String) {
                        entries.put(kv.getKey(), (Map<String, Object>) kv.getValue());
                    }
                }
            }
        } catch (IOException | RuntimeException ex) {
            LOG.warn("ignoring the corrupt autotuning cache {}: {}", file, ex.getMessage() == null ? ex : ex.getMessage().split("\n")[0]);
        }
        return entries;
    }

    private void save(String key, Map<String, Object> entry) {
        if (file == null) {
            return;
        }
        synchronized (SAVE_LOCKS.computeIfAbsent(file, f -> new Object())) {
            try {
                Files.createDirectories(file.getParent());
                Path lockFile = file.resolveSibling(file.getFileName() + ".lock");
                try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                     FileLock lock = ch.lock()) {
                    Map<String, Map<String, Object>> entries = readFile(); // what other processes wrote meanwhile
                    entries.put(key, entry);
                    Map<String, Object> doc = new LinkedHashMap<>();
                    doc.put("format", FORMAT);
                    doc.put("entries", entries);
                    AtomicFile.write(file, JSON.std.with(JSON.Feature.PRETTY_PRINT_OUTPUT).asString(doc).getBytes(StandardCharsets.UTF_8));
                }
            } catch (IOException | RuntimeException e) {
                LOG.warn("could not save the autotuning cache {}: {}", file, oneLine(e));
            }
        }
    }
}
