package io.github.jconv;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The plan cache behind the stateless calls: a cached plan gives the stateless result bit for bit, weights changed in
 * place never reach a stale plan, weights that keep changing bypass the cache, and the bounds hold.
 */
class PlanCacheTest {
    private static final ConvGeometry G = ConvGeometry.of(ConvGeometry.Op.CONV2D, new int[] {2, 16, 12, 10}, new int[] {24, 16, 3, 3},
            new int[] {24}, ConvSpec.builder().padding(1).build());
    private static final Epilogue RELU_RESIDUAL = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);

    private static float[] random(long seed, long n) {
        return TestSupport.gaussian(new Random(seed), n);
    }

    private static Backend backend(String name) {
        Backend b = Backends.get(name);
        Assumptions.assumeTrue(b.unavailableReason() == null, name);
        return b;
    }

    /** The stateless path alone (what Jconv.run does when the cache declines). */
    private static float[] stateless(Backend be, Algorithm a, float[] x, float[] w, float[] b, float[] r) {
        float[] y = new float[Math.toIntExact(Tensor.elementCount(G.outputShape()))];
        be.run(a, G, x, w, b, RELU_RESIDUAL, r, y, 2);
        return y;
    }

    /** One call through the cache: its result, and whether a cached plan ran it (else the stateless path did). */
    private static float[] call(PlanCache cache, Backend be, Algorithm a, float[] x, float[] w, float[] b, float[] r, boolean[] cached) {
        float[] y = new float[Math.toIntExact(Tensor.elementCount(G.outputShape()))];
        Algorithm ran = cache.run(be, G, x, w, b, RELU_RESIDUAL, r, y, ConvOptions.defaults().withBackend(be.name()).withAlgorithm(a).withThreads(2));
        cached[0] = ran != null;
        if (ran == null) {
            be.run(a, G, x, w, b, RELU_RESIDUAL, r, y, 2);
        } else {
            assertEquals(a, ran);
        }
        return y;
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu"})
    void theSecondCallBuildsAPlanAndLaterCallsRunItBitForBit(String name) {
        Backend be = backend(name);
        PlanCache cache = new PlanCache(8, 1L << 30);
        float[] w = random(1, Tensor.elementCount(G.weightShape())), b = random(2, 24), r = random(3, Tensor.elementCount(G.outputShape()));
        for (Algorithm a : be.algorithms()) {
            if (be.cannotImplement(a, G) != null) {
                continue;
            }
            boolean[] cached = {false};
            for (int i = 0; i < 4; i++) {
                float[] x = random(10 + i, Tensor.elementCount(G.inputShape()));
                float[] got = call(cache, be, a, x, w, b, r, cached);
                assertEquals(i > 0, cached[0], a + " call " + i + ": the first call only records the key");
                assertArrayEquals(stateless(be, a, x, w, b, r), got, 0f, name + "/" + a + " call " + i);
            }
        }
        PlanCache.Stats s = cache.stats();
        assertTrue(s.builds() >= 2 && s.hits() == 2 * s.builds() && s.plans() == s.builds(), s.toString());
    }

    /** Weights changed in place after the plan was built: that call and later ones compute with the new weights. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu"})
    void weightsChangedInPlaceNeverReachAStalePlan(String name) {
        Backend be = backend(name);
        Algorithm a = be.algorithms().contains(Algorithm.DIRECT) ? Algorithm.DIRECT : be.algorithms().get(0);
        PlanCache cache = new PlanCache(8, 1L << 30);
        float[] w = random(1, Tensor.elementCount(G.weightShape())), b = random(2, 24), r = random(3, Tensor.elementCount(G.outputShape()));
        float[] x = random(4, Tensor.elementCount(G.inputShape()));
        boolean[] cached = {false};
        call(cache, be, a, x, w, b, r, cached);
        call(cache, be, a, x, w, b, r, cached);
        assertTrue(cached[0]);
        w[17] += 0.5f; // one weight, in place
        assertArrayEquals(stateless(be, a, x, w, b, r), call(cache, be, a, x, w, b, r, cached), 0f);
        assertTrue(!cached[0], "the stale plan must not run");
        b[3] = -b[3]; // the bias too
        call(cache, be, a, x, w, b, r, cached);
        float[] again = call(cache, be, a, x, w, b, r, cached);
        assertTrue(cached[0], "stable again: a new plan");
        assertArrayEquals(stateless(be, a, x, w, b, r), again, 0f);
        w[0] = 3f; // the second change: the key is marked changing and bypasses the cache from now on
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(stateless(be, a, x, w, b, r), call(cache, be, a, x, w, b, r, cached), 0f);
            assertTrue(!cached[0], "changing weights bypass the cache");
        }
        assertEquals(0, cache.stats().plans());
        cache.clear();
        call(cache, be, a, x, w, b, r, cached);
        call(cache, be, a, x, w, b, r, cached);
        assertTrue(cached[0], "clear() forgets that the weights were changing");
    }

    @Test
    void theBoundsHoldAndEvictedPlansAreClosed() {
        Backend be = backend("cpu");
        PlanCache two = new PlanCache(2, 1L << 30);
        float[] r = random(3, Tensor.elementCount(G.outputShape())), x = random(4, Tensor.elementCount(G.inputShape()));
        List<float[]> weights = new ArrayList<>();
        boolean[] cached = {false};
        for (int k = 0; k < 3; k++) {
            float[] w = random(20 + k, Tensor.elementCount(G.weightShape()));
            weights.add(w);
            call(two, be, Algorithm.DIRECT, x, w, null, r, cached);
            call(two, be, Algorithm.DIRECT, x, w, null, r, cached);
            assertTrue(cached[0]);
        }
        assertEquals(2, two.stats().entries());
        // the first weights were evicted: recorded again, then a fresh plan with the right result
        call(two, be, Algorithm.DIRECT, x, weights.get(0), null, r, cached);
        assertTrue(!cached[0]);
        assertArrayEquals(stateless(be, Algorithm.DIRECT, x, weights.get(0), null, r), call(two, be, Algorithm.DIRECT, x, weights.get(0), null, r, cached), 0f);
        assertTrue(cached[0]);

        PlanCache tiny = new PlanCache(8, 1000); // smaller than one layer's weights: each plan goes after its run
        float[] w = weights.get(1);
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(stateless(be, Algorithm.DIRECT, x, w, null, r), call(tiny, be, Algorithm.DIRECT, x, w, null, r, cached), 0f);
        }
        assertEquals(0, tiny.stats().plans());
        assertEquals(0, tiny.stats().heldBytes());

        PlanCache off = new PlanCache(0, 1L << 30);
        for (int i = 0; i < 3; i++) {
            call(off, be, Algorithm.DIRECT, x, w, null, r, cached);
            assertTrue(!cached[0]);
        }
    }

    /** Other bias, epilogue, algorithm or thread count: another key, so another plan. */
    @Test
    void everythingAPlanIsBuiltFromIsInTheKey() {
        Backend be = backend("cpu");
        PlanCache cache = new PlanCache(16, 1L << 30);
        float[] w = random(1, Tensor.elementCount(G.weightShape())), b1 = random(2, 24), b2 = b1.clone();
        float[] x = random(4, Tensor.elementCount(G.inputShape())), y = new float[Math.toIntExact(Tensor.elementCount(G.outputShape()))];
        ConvOptions direct = ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.DIRECT).withThreads(1);
        assertNull(cache.run(be, G, x, w, b1, Epilogue.none(), null, y, direct), "the first call only records the key");
        assertEquals(Algorithm.DIRECT, cache.run(be, G, x, w, b1, Epilogue.none(), null, y, direct));
        assertEquals(1, cache.stats().builds());
        assertNull(cache.run(be, G, x, w, b2, Epilogue.none(), null, y, direct));
        assertNull(cache.run(be, G, x, w, b1, Epilogue.of(Epilogue.Activation.SILU), null, y, direct));
        assertNull(cache.run(be, G, x, w, b1, Epilogue.none(), null, y, direct.withThreads(2)));
        assertNull(cache.run(be, G, x, w, b1, Epilogue.none(), null, y, direct.withAlgorithm(Algorithm.IM2COL)));
        assertEquals(5, cache.stats().entries());
        assertEquals(1, cache.stats().plans());
    }

    /** Concurrent calls on one cached plan (cuda-emu: each on a stream of its own) all get the stateless result. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "cuda-emu"})
    void concurrentCallsShareOnePlan(String name) throws Exception {
        Backend be = backend(name);
        Algorithm a = Algorithm.IM2COL;
        PlanCache cache = new PlanCache(8, 1L << 30);
        float[] w = random(1, Tensor.elementCount(G.weightShape())), b = random(2, 24), r = random(3, Tensor.elementCount(G.outputShape()));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<float[]>> runs = new ArrayList<>();
            List<float[]> inputs = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                float[] x = random(30 + i, Tensor.elementCount(G.inputShape()));
                inputs.add(x);
                runs.add(pool.submit(() -> call(cache, be, a, x, w, b, r, new boolean[1])));
            }
            for (int i = 0; i < runs.size(); i++) {
                assertArrayEquals(stateless(be, a, inputs.get(i), w, b, r), runs.get(i).get(), 0f, "call " + i);
            }
        } finally {
            pool.shutdown();
        }
        assertEquals(1, cache.stats().plans());
        assertEquals(1, cache.stats().builds());
    }

    /** The public path: Jconv.conv2d with the same tensors gives the same bits every time, cached or not. */
    @Test
    void statelessCallsGoThroughTheGlobalCache() {
        Tensor x = Tensor.of(random(4, Tensor.elementCount(G.inputShape())), G.inputShape());
        Tensor w = Tensor.of(random(1, Tensor.elementCount(G.weightShape())), G.weightShape());
        Tensor b = Tensor.of(random(2, 24), 24);
        ConvOptions direct = ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.DIRECT).withThreads(2);
        Tensor first = Jconv.conv2d(x, w, b, G.explicitSpec(), direct);
        long builds = PlanCache.global().stats().builds();
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(first.data(), Jconv.conv2d(x, w, b, G.explicitSpec(), direct).data(), 0f);
        }
        assertTrue(PlanCache.global().stats().builds() > builds || PlanCache.global().stats().hits() > 0);
        w.data()[5] = 100f;
        Tensor changed = Jconv.conv2d(x, w, b, G.explicitSpec(), direct);
        float[] want = new float[changed.size()];
        Backends.get("cpu").run(Algorithm.DIRECT, G, x.data(), w.data(), b.data(), want, 2);
        assertArrayEquals(want, changed.data(), 0f);
    }
}
