package io.github.jconv.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The JNI face of the CUDA emulation library (cuda-kernels/emu/emu_jni.cpp over emu_runtime.cpp), built by
 * scripts/build-emu.sh into the jar as native/linux-x86_64/libjconv_emu.so.
 */
final class EmuNative {
    static final String RESOURCE = "/native/linux-x86_64/libjconv_emu.so";
    private static final String LOAD_ERROR = load();

    private EmuNative() {
    }

    /** Null when the library is loaded, otherwise why not (one line). */
    static String loadError() {
        return LOAD_ERROR;
    }

    private static String load() {
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "the emulation library is built for linux-x86_64 only, this is " + os + " " + arch;
        }
        try (InputStream in = EmuNative.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return "the emulation library is not in this build (g++ was not found when jconv was built)";
            }
            Path tmp = Files.createTempFile("libjconv_emu", ".so");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            System.load(tmp.toAbsolutePath().toString());
            return null;
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            String m = String.valueOf(e.getMessage());
            int nl = m.indexOf('\n');
            return "the emulation library did not load: " + (nl < 0 ? m : m.substring(0, nl));
        }
    }

    static native long alloc(long bytes);

    static native void free(long ptr);

    static native void copyToDevice(long dst, float[] src, int offset, int count);

    static native void copyToHost(float[] dst, int offset, long src, int count);

    static native void copyShortsToDevice(long dst, short[] src, int offset, int count);

    static native void copyShortsToHost(short[] dst, int offset, long src, int count);

    /** memcpy between two emulated device addresses (a stream's queued staging copy). */
    static native void copy(long dst, long src, long bytes);

    static native void launch(String name, int[] grid, int[] block, int[] params, long[] pointers);

    static native String[] kernels();

    /** The seed of the emulator's block and thread schedules (JCONV_EMU_SEED sets it; random otherwise). */
    static native long scheduleSeed();
}
