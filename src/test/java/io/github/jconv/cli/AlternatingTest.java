package io.github.jconv.cli;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link Alternating} on a clock the calls advance (no real time, so the figures are exact): slots alternate and swap their
 * order each round, a slot runs until its length, ratios are the peer's time over jconv's, per round.
 */
class AlternatingTest {
    private final List<String> log = new ArrayList<>();
    private long now;

    /** A side's call, logged as {@code who}, that takes {@code ms} times the slowdown the log's length gives. */
    private Runnable call(String who, double ms, IntToDoubleFunction slowdown) {
        return () -> {
            log.add(who);
            now += (long) (ms * 1e6 * slowdown.applyAsDouble(log.size()));
        };
    }

    private static PeerSession peer(Runnable call) {
        return new PeerSession() {
            @Override
            public void run() {
                call.run();
            }

            @Override
            public void close() {
            }
        };
    }

    private Alternating.Result run(Runnable jconv, Runnable peer, int rounds, long slotMs) throws Exception {
        return Alternating.<java.io.IOException>run(jconv::run, peer(peer)::run, rounds, slotMs, () -> now, () -> log.add("pause"));
    }

    @Test
    void slotsAlternateAndTheFirstSideSwapsEachRound() throws Exception {
        Alternating.Result r = run(call("j", 1, t -> 1), call("p", 2, t -> 1), 3, 0);
        assertEquals(List.of("pause", "j", "pause", "p", "pause", "p", "pause", "j", "pause", "j", "pause", "p"), log,
                "a pause before each slot, one call a slot with slotMs 0, the order swapped each round");
        assertEquals(3, r.rounds());
    }

    @Test
    void aSlotRunsUntilItsLengthAndItsTimeIsTheMeanPerCall() throws Exception {
        // jconv's call takes 3 ms, the peer's 4: a 10 ms slot is 4 of jconv's calls (12 ms) and 3 of the peer's (12 ms)
        Alternating.Result r = run(call("j", 3, t -> 1), call("p", 4, t -> 1), 2, 10);
        assertEquals(List.of("pause", "j", "j", "j", "j", "pause", "p", "p", "p", "pause", "p", "p", "p", "pause", "j", "j", "j", "j"), log);
        assertEquals(3, r.jconvMs(), 1e-9);
        assertEquals(4, r.peerMs(), 1e-9);
        assertEquals(4.0 / 3, r.ratio(), 1e-9, "the peer's time over jconv's: jconv's speed over the peer's");
    }

    @Test
    void aSlowStretchSlowsBothSidesOfARoundAlike() throws Exception {
        // the machine runs 2x slower in every other pair of rounds: each side's times move 2x between rounds, the rounds' ratios
        // do not (with one call a slot a round logs pause, call, pause, call: the call at log length n is in round (n - 1) / 4)
        IntToDoubleFunction slowdown = n -> (n - 1) / 4 / 2 % 2 == 0 ? 1 : 2;
        Alternating.Result r = run(call("j", 1, slowdown), call("p", 3, slowdown), 8, 0);
        assertEquals(List.of("j", "p", "p", "j", "j", "p", "p", "j"), log.subList(0, 16).stream().filter(e -> !e.equals("pause")).toList());
        assertEquals(1.5, r.jconvMs(), 1e-9, "the median of four rounds at 1 ms and four at 2");
        assertEquals(3, r.ratio(), 1e-9);
        assertEquals(3, r.ratioMin(), 1e-9, "every round's ratio: " + r);
        assertEquals(3, r.ratioMax(), 1e-9, "every round's ratio: " + r);
    }
}
