package io.github.jconv;

import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The plans behind the stateless calls ({@link Jconv#conv2d}, {@link Jconv#run} ...): a bounded, least-recently-used
 * cache, so a service that calls {@code Jconv.conv2d} with the same weights again gets a plan's speed (weights packed
 * once on the CPU, uploaded once on a GPU) without managing plans itself.
 *
 * <p>How a call finds its plan. The key is everything a plan is built from (operation, shapes, padding, stride,
 * dilation, groups, bias or not, backend, requested algorithm, thread count, tuning, epilogue) plus the <em>identity</em>
 * of the caller's weight and bias arrays. The first call with a key only records it (and runs as before, packing per
 * call): a one-off call costs nothing extra. The second builds a plan from a copy of the weights. Every later call first
 * compares the caller's arrays with the plan's copy, bit for bit (a memory-speed comparison, far cheaper than packing):
 * equal, the plan runs; different (the caller changed the weights in place, as a training step does), the plan is
 * dropped and the call runs as before. A key whose weights changed twice is marked <em>changing</em> and bypasses the
 * cache from then on (no more copies or comparisons; {@link #clear()} forgets it). So the cache never returns a result
 * for weights other than the ones passed, and results are bit for bit those of the stateless path for the same algorithm.
 *
 * <p>Bounds: at most {@code jconv.planCache.entries} keys (system property; default 128, 0 turns the cache off) and
 * {@code jconv.planCache.mib} MiB held by plans (default 256: the copies, packed forms and device uploads of their
 * weights). The least recently used plans go first. The cache holds the caller's arrays only weakly.
 *
 * <p>GPU backends ({@code cuda}, {@code cuda-emu}): the cached plans live on one {@link Device} per backend that the cache
 * opens and keeps for the life of the process; each call uploads its input and downloads its output on a stream of its
 * own, so concurrent calls overlap as before. Threads: all methods are thread-safe; a plan is closed only when no call
 * is running it.
 */
public final class PlanCache {
    private static final PlanCache GLOBAL = new PlanCache(
            Integer.getInteger("jconv.planCache.entries", 128), Long.getLong("jconv.planCache.mib", 256) << 20);

    private final int maxEntries;
    private final long maxBytes;
    private final LinkedHashMap<Key, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    private final Map<String, Device> devices = new LinkedHashMap<>();
    private long heldBytes;
    private long hits, misses, builds;

    PlanCache(int maxEntries, long maxBytes) {
        if (maxEntries < 0 || maxBytes < 0) {
            throw new IllegalArgumentException("plan cache bounds must be >= 0, got " + maxEntries + " entries, " + maxBytes + " bytes");
        }
        this.maxEntries = maxEntries;
        this.maxBytes = maxBytes;
    }

    /** The process-wide cache behind the stateless calls. */
    public static PlanCache global() {
        return GLOBAL;
    }

    /** What the cache holds and has done: entries, plans, bytes, hits (runs on a cached plan), misses, builds. */
    public synchronized Stats stats() {
        int plans = 0;
        for (Entry e : entries.values()) {
            plans += e.plan != null ? 1 : 0;
        }
        return new Stats(entries.size(), plans, heldBytes, hits, misses, builds);
    }

    /** The cache's counters; {@code heldBytes} as counted when each plan was built and first run. */
    public record Stats(int entries, int plans, long heldBytes, long hits, long misses, long builds) {
    }

    /** Drops every entry (plans are closed once no call runs them) and forgets which weights were changing. */
    public synchronized void clear() {
        List<Entry> dropped = new ArrayList<>(entries.values());
        entries.clear();
        heldBytes = 0;
        dropped.forEach(Entry::drop);
    }

    /**
     * Runs the call on a cached plan and returns the algorithm that ran, or returns null having done nothing: the call
     * is to run statelessly (first sighting, changed or changing weights, a backend without devices, cache off).
     */
    Algorithm run(Backend backend, ConvGeometry g, float[] input, float[] weight, float[] bias, Epilogue epilogue,
                  float[] residual, float[] output, ConvOptions options) {
        if (maxEntries == 0 || g.isEmpty() || !hasDevices(backend) || backend.unavailableReason() != null) {
            return null;
        }
        Key key = new Key(g.toString(), backend.name(), options.algorithm(), options.threads(), options.tune(), epilogue,
                System.identityHashCode(weight), bias == null ? 0 : System.identityHashCode(bias));
        Entry e = acquire(key, weight, bias);
        if (e == null) {
            return null;
        }
        try {
            ConvPlan plan = e.plan;
            if (plan != null && !plan.holds(weight, bias)) { // changed in place since the plan was built
                changed(key, e, weight, bias);
                return null;
            }
            if (plan == null) {
                synchronized (e) { // one build per entry, whichever thread gets here first
                    if (e.plan == null && !e.dropped) {
                        e.plan = build(backend, g, weight, bias, epilogue, options);
                        counted(true);
                    }
                    plan = e.plan;
                }
                if (plan == null) {
                    return null; // dropped while we waited
                }
            } else {
                counted(false);
            }
            plan.runHost(input, residual, output);
            account(e, plan);
            return plan.algorithm();
        } finally {
            release(e);
        }
    }

    private static boolean hasDevices(Backend backend) {
        return backend instanceof io.github.jconv.cpu.CpuBackend || backend instanceof io.github.jconv.cuda.CudaBackend;
    }

    /** The entry to run on (its user count raised), or null for a stateless run; records sightings and changes. */
    private synchronized Entry acquire(Key key, float[] weight, float[] bias) {
        Entry e = entries.get(key);
        if (e == null || e.weight.get() != weight || (bias != null && e.bias.get() != bias)) {
            if (e != null) {
                remove(key, e); // another array under the same identity hash, or a dead one: start over
            }
            entries.put(key, new Entry(weight, bias));
            misses++;
            trim();
            return null;
        }
        if (e.changing) {
            misses++;
            return null;
        }
        e.users++;
        return e;
    }

    private synchronized void counted(boolean built) {
        if (built) {
            builds++;
        } else {
            hits++;
        }
    }

    /** The caller changed the weights in place: the plan goes; the second time, the key is marked changing. */
    private synchronized void changed(Key key, Entry e, float[] weight, float[] bias) {
        misses++;
        if (entries.get(key) != e) {
            return; // already replaced by another call
        }
        remove(key, e);
        Entry again = new Entry(weight, bias);
        again.changes = e.changes + 1;
        again.changing = again.changes >= 2;
        entries.put(key, again);
    }

    private synchronized void release(Entry e) {
        e.users--;
        if (e.dropped && e.users == 0) {
            e.close();
        }
    }

    /** Counts the plan's bytes once it has run (a CPU plan packs on its first run), then trims to the bounds. */
    private synchronized void account(Entry e, ConvPlan plan) {
        if (e.dropped || e.counted) {
            return;
        }
        e.counted = true;
        e.bytes = plan.heldBytes();
        heldBytes += e.bytes;
        trim();
    }

    private void trim() {
        Iterator<Map.Entry<Key, Entry>> it = entries.entrySet().iterator();
        while (it.hasNext() && (entries.size() > maxEntries || heldBytes > maxBytes)) {
            Entry e = it.next().getValue();
            it.remove();
            heldBytes -= e.bytes;
            e.drop();
        }
    }

    private void remove(Key key, Entry e) {
        entries.remove(key);
        heldBytes -= e.bytes;
        e.drop();
    }

    private ConvPlan build(Backend backend, ConvGeometry g, float[] weight, float[] bias, Epilogue epilogue, ConvOptions options) {
        Device device = device(backend);
        Tensor w = Tensor.of(weight.clone(), g.weightShape());
        Tensor b = bias == null ? null : Tensor.of(bias.clone(), g.biasLength());
        return ConvPlan.of(device, g, w, b).cached().epilogue(epilogue).algorithm(options.algorithm()).threads(options.threads())
                .tune(options.tune()).build();
    }

    private synchronized Device device(Backend backend) {
        return devices.computeIfAbsent(backend.name(), Device::open);
    }

    private record Key(String geometry, String backend, Algorithm algorithm, int threads, boolean tune, Epilogue epilogue,
                       int weightId, int biasId) {
    }

    /** One key's state; guarded by the cache's lock, except {@code plan}'s build (the entry's own lock). */
    private static final class Entry {
        final WeakReference<float[]> weight, bias;
        volatile ConvPlan plan;
        volatile boolean dropped;
        int users, changes;
        boolean changing, counted;
        long bytes;

        Entry(float[] weight, float[] bias) {
            this.weight = new WeakReference<>(Objects.requireNonNull(weight));
            this.bias = new WeakReference<>(bias);
        }

        /** Out of the cache: closed now if no call runs it, else by the last one. */
        void drop() {
            dropped = true;
            if (users == 0) {
                close();
            }
        }

        void close() {
            ConvPlan p = plan;
            if (p != null) {
                p.close();
            }
        }
    }
}
