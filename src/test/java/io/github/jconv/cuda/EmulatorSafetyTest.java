package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the emulator promises beyond correct results: out-of-bounds writes and leaks are caught. */
class EmulatorSafetyTest {
    @Test
    void emulatorIsBuiltAndLoaded() {
        assertNull(EmuDevice.unavailableReason(), "scripts/build-emu.sh runs in every build");
    }

    @Test
    void aKernelWritingPastItsBufferFailsWithItsName() {
        // jconv_im2col_fprop_bias told that y holds 12 floats while its buffer holds 10: it writes 8 bytes past the end
        // (inside the guard zone, as a real overrun by a few elements would).
        ConvGeometry big = ConvGeometry.conv2d(new int[] {1, 1, 3, 4}, new int[] {1, 1, 1, 1}, null, ConvSpec.defaults());
        try (DeviceArena arena = new DeviceArena(EmuDevice.INSTANCE); DeviceBuffer small = arena.allocate(10)) {
            Launcher.launch(arena, "jconv_im2col_fprop_bias", Launcher.grid1d(12), Launcher.BLOCK_1D, Launcher.params(big), small,
                    null, small);
            DeviceException e = assertThrows(DeviceException.class, () -> arena.stream().synchronize(),
                    "a launch only queues the kernel: its fault is reported when the stream is synchronised");
            assertTrue(e.getMessage().contains("kernel jconv_im2col_fprop_bias wrote past the end of an allocation of 40 bytes"),
                    e.getMessage());
        }
    }

    @Test
    void aKernelWithinItsBufferPasses() {
        ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 1, 3, 3}, new int[] {2, 1, 1, 1}, new int[] {2}, ConvSpec.defaults());
        float[] out = new float[18];
        try (DeviceArena arena = new DeviceArena(EmuDevice.INSTANCE);
             DeviceBuffer bias = arena.upload(new float[] {1.5f, -2f});
             DeviceBuffer y = arena.allocate(18)) {
            Launcher.launch(arena, "jconv_im2col_fprop_bias", Launcher.grid1d(18), Launcher.BLOCK_1D, Launcher.params(g), y, bias, y);
            y.download(out);
        }
        float[] want = new float[18];
        Arrays.fill(want, 0, 9, 1.5f);
        Arrays.fill(want, 9, 18, -2f);
        assertArrayEquals(want, out);
    }

    @Test
    void closingAnArenaWithOpenBuffersIsALeak() {
        DeviceArena arena = new DeviceArena(EmuDevice.INSTANCE);
        arena.allocate(100);
        DeviceException e = assertThrows(DeviceException.class, arena::close);
        assertEquals("device memory leak: 1 buffer(s), 400 bytes still open when the arena closed", e.getMessage());
        assertEquals(0, arena.liveBytes(), "what leaked was freed");
    }

    @Test
    void newDeviceMemoryReadsAsNaNSoUnwrittenOutputShows() {
        float[] out = new float[3];
        try (DeviceArena arena = new DeviceArena(EmuDevice.INSTANCE); DeviceBuffer b = arena.allocate(3)) {
            b.download(out);
        }
        assertTrue(Float.isNaN(out[0]) && Float.isNaN(out[2]));
    }

    @Test
    void withoutAGpuTheCudaBackendSaysWhy() {
        String why = JCudaDevice.unavailableReason();
        if (why == null) {
            return; // a GPU machine: the shape table ran on it
        }
        assertTrue(!why.contains("\n") && !why.isBlank(), why);
        assertTrue(CudaBackend.CUDA.cannotImplement(io.github.jconv.Algorithm.DIRECT,
                ConvGeometry.conv2d(new int[] {1, 1, 3, 3}, new int[] {1, 1, 1, 1}, null, ConvSpec.defaults())).equals(why));
    }

    @Test
    void theFmaProbeKernelRuns() {
        float[] out = new float[2 * 32];
        try (DeviceArena arena = new DeviceArena(EmuDevice.INSTANCE);
             DeviceBuffer seed = arena.upload(new float[] {1f});
             DeviceBuffer y = arena.allocate(out.length)) {
            Launcher.launch(arena, "jconv_fma_probe", new int[] {2, 1, 1}, new int[] {32, 1, 1},
                    new int[] {0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0}, y, seed, y);
            y.download(out);
        }
        for (float v : out) {
            assertTrue(v > 7f && v < 8.1f, "8 chains of 10 steps from ~1: " + v);
        }
    }

    /** A faulting kernel poisons a CUDA context for good: such errors mark the device unusable (tested without a GPU). */
    @Test
    void contextFatalErrorsAreRecognised() {
        assertTrue(JCudaDevice.isContextFatal("cuStreamSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS"));
        assertTrue(JCudaDevice.isContextFatal("CUDA_ERROR_LAUNCH_FAILED"));
        assertTrue(!JCudaDevice.isContextFatal("CUDA_ERROR_OUT_OF_MEMORY") && !JCudaDevice.isContextFatal("CUDA_ERROR_INVALID_VALUE"),
                "recoverable errors leave the device usable");
        assertTrue(!JCudaDevice.isContextFatal(null));
    }
}
