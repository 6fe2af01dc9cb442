package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.cuda.CudnnBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The backends jconv knows, by name; {@code auto} is the best one that is available. */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);
    private static volatile boolean fallbackLogged;

    private static final Map<String, Backend> BACKENDS;

    static {
        Map<String, Backend> m = new LinkedHashMap<>();
        m.put("cuda", CudaBackend.CUDA);
        m.put("cpu", CpuBackend.INSTANCE);
        m.put("cuda-emu", CudaBackend.EMU);
        m.put("cudnn", CudnnBackend.INSTANCE);
        BACKENDS = Collections.unmodifiableMap(m);
    }

    private Backends() {
    }

    /** All backends, available or not. */
    public static List<Backend> all() {
        return new ArrayList<>(BACKENDS.values());
    }

    /**
     * The backend of that name, ready to run: {@code auto} gives the best available one (the CUDA backend when
     * a device is usable, else the CPU). An unknown name is an {@link InvalidConvolutionException}; a known
     * one that cannot run here a {@link BackendUnavailableException} with the reason.
     */
    public static Backend get(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        if (n.equals("auto")) {
            Backend cuda = BACKENDS.get("cuda");
            String why = cuda.unavailableReason();
            if (why == null) {
                return cuda;
            }
            if (!fallbackLogged) {
                fallbackLogged = true;
                LOG.info("cuda backend not available ({}); using the CPU", why);
            }
            return BACKENDS.get("cpu");
        }
        Backend b = BACKENDS.get(n);
        if (b == null) {
            throw new InvalidConvolutionException("unknown backend '" + name + "'; known: auto, " + String.join(", ", BACKENDS.keySet()));
        }
        b.requireAvailable();
        return b;
    }
}
