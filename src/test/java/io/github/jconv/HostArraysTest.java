package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU device's cache of freed tensor arrays: reuse by size, the byte limit, one give-back per tensor, cleared on close. */
class HostArraysTest {
    @Test
    void aClosedTensorsArrayGoesToTheNextTensorOfItsSize() {
        try (Device dev = Device.open("cpu")) {
            DeviceTensor a = dev.allocate(2, 3, 4, 5);
            float[] array = a.host();
            a.close();
            try (DeviceTensor other = dev.allocate(2, 3, 4, 6); DeviceTensor b = dev.allocate(1, 6, 4, 5)) {
                assertNotSame(array, other.host(), "another size takes a new array");
                assertSame(array, b.host(), "the same element count takes the freed array, whatever the shape");
                assertEquals(0, dev.hostArrays().bytes());
            }
            assertEquals(4L * (120 + 144), dev.hostArrays().bytes());
        }
    }

    @Test
    void theArrayStillWorksAsATensorAfterReuse() {
        try (Device dev = Device.open("cpu")) {
            dev.allocate(4).close();
            try (DeviceTensor t = dev.allocate(2, 2)) {
                t.upload(new float[] {1, 2, 3, 4});
                assertArrayEquals(new float[] {1, 2, 3, 4}, t.download().data());
            }
        }
    }

    @Test
    void aTensorClosedTwiceGivesItsArrayBackOnce() throws Exception {
        try (Device dev = Device.open("cpu")) {
            DeviceTensor t = dev.allocate(1000);
            t.close();
            t.close();
            try (DeviceTensor a = dev.allocate(1000); DeviceTensor b = dev.allocate(1000)) {
                assertNotSame(a.host(), b.host());
            }
            // the same from two threads at once, many times
            for (int i = 0; i < 200; i++) {
                DeviceTensor u = dev.allocate(1000);
                CountDownLatch go = new CountDownLatch(1);
                Thread[] th = new Thread[2];
                for (int j = 0; j < 2; j++) {
                    th[j] = new Thread(() -> {
                        try {
                            go.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                        u.close();
                    });
                    th[j].start();
                }
                go.countDown();
                for (Thread x : th) {
                    x.join();
                }
                try (DeviceTensor a = dev.allocate(1000); DeviceTensor b = dev.allocate(1000)) {
                    assertNotSame(a.host(), b.host(), "round " + i);
                }
            }
        }
    }

    @Test
    void keepsNoMoreThanItsLimit() {
        HostArrays cache = new HostArrays(400);
        float[] small = new float[60], big = new float[120];
        cache.give(big); // 480 bytes: over the limit, left to the GC
        assertEquals(0, cache.bytes());
        cache.give(small);
        assertEquals(240, cache.bytes());
        cache.give(new float[60]); // 480 in all: no room
        assertEquals(240, cache.bytes());
        assertSame(small, cache.take(60));
        assertNotSame(big, cache.take(120));
        assertEquals(0, cache.bytes());
        HostArrays off = new HostArrays(0);
        off.give(small);
        assertNotSame(small, off.take(60));
    }

    @Test
    void closingTheDeviceEmptiesTheCacheAndALeakIsStillReported() {
        Device dev = Device.open("cpu");
        dev.allocate(10).close();
        dev.allocate(3, 3);
        assertTrue(dev.hostArrays().bytes() > 0);
        DeviceLeakException e = assertThrows(DeviceLeakException.class, dev::close);
        assertTrue(e.getMessage().contains("tensor [3, 3] (36 bytes), allocated at io.github.jconv.HostArraysTest"), e.getMessage());
        assertEquals(0, dev.hostArrays().bytes());
    }

    @Test
    void theLimitComesFromTheSystemPropertyAndABadOneIsNamed() {
        String key = "jconv.cpu.tensorCacheBytes", old = System.getProperty(key);
        try {
            System.setProperty(key, "4096");
            assertEquals(4096, HostArrays.defaultLimit());
            System.setProperty(key, "lots");
            InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class, HostArrays::defaultLimit);
            assertTrue(e.getMessage().contains("jconv.cpu.tensorCacheBytes") && e.getMessage().contains("'lots'"), e.getMessage());
            System.clearProperty(key);
            assertEquals(Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 8), HostArrays.defaultLimit());
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
    }
}
