package io.github.jconv.cuda;

/**
 * The one narrow interface between jconv's CUDA backend and a device: it opens {@link DeviceStream}s, through
 * which memory is allocated, copied, freed and kernels are launched by name with cuLaunchKernel-style
 * arguments. Two implementations: {@link JCudaDevice} (a real GPU through the JCuda driver API) and
 * {@link EmuDevice} (the same kernel sources compiled for the CPU). Device addresses are opaque {@code long}
 * handles; {@code offset} arguments are in bytes. Safe for any number of threads, each with its own stream.
 */
public interface DeviceApi {
    /** Human-readable description (device name, memory, which library). */
    String describe();

    /**
     * The compute capability as major * 10 + minor (90 for sm_90). The emulator answers 90: it runs every primitive
     * jconv's kernels use (TF32 mma.sync, cp.async) with the PTX ISA's per-lane contract.
     */
    int computeCapability();

    /** A stream for the calling thread (a reused one when a closed one is idle); close it when done. */
    DeviceStream openStream();
}
