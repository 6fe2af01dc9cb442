package io.github.jconv.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;
import jcuda.runtime.cudaStream_t;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real GPU through the JCuda driver API: the primary context of device 0, jconv's fatbin (built by
 * scripts/build-kernels.sh, in the jar) loaded once, functions looked up once. Every CUresult error becomes
 * a {@link DeviceException} naming the call, the CUresult and the sizes involved. Each caller works on its own
 * {@link JCudaStream} (a CUstream with pinned staging, asynchronous copies and stream-ordered allocation),
 * so calls from many Java threads run concurrently on the GPU; the context is made current on the calling
 * thread before each driver call. Idle streams are kept for reuse ({@link StreamPool}), with their staging
 * buffers.
 */
public final class JCudaDevice implements DeviceApi {
    static final String FATBIN = "/io/github/jconv/cuda/jconv_kernels.fatbin";

    private static final Object INIT_LOCK = new Object();
    private static volatile JCudaDevice instance;
    private static volatile String unavailable;
    /** GPUs 1, 2, ... of a multi-GPU host, each opened on first use with its own context and module. */
    private static final Map<Integer, JCudaDevice> OTHERS = new ConcurrentHashMap<>();
    private static volatile byte[] kernels;

    private final CUcontext context = new CUcontext();
    private final CUmodule module = new CUmodule();
    private final String description;
    private final Map<String, CUfunction> functions = new ConcurrentHashMap<>();
    private final Map<Long, CUdeviceptr> pointers = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final StreamPool<JCudaStream> pool = new StreamPool<>();
    private final boolean memoryPools;
    private final int computeCapability;

    private JCudaDevice(byte[] fatbin, int ordinal) {
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, ordinal);
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        JCudaDriver.cuCtxSetCurrent(context);
        JCudaDriver.cuModuleLoadData(module, fatbin);
        int[] pools = {0};
        JCudaDriver.cuDeviceGetAttribute(pools, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, device);
        memoryPools = pools[0] != 0;
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        long[] mem = {0};
        JCudaDriver.cuDeviceTotalMem(mem, device);
        int len = 0;
        while (len < name.length && name[len] != 0) {
            len++;
        }
        int[] major = {0}, minor = {0};
        JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        computeCapability = major[0] * 10 + minor[0];
        description = (ordinal == 0 ? "" : "GPU " + ordinal + ": ") + new String(name, 0, len, java.nio.charset.StandardCharsets.US_ASCII)
                + ", sm_" + major[0] + minor[0] + ", " + (mem[0] >> 20) + " MiB, JCuda driver API";
    }

    /**
     * GPU {@code ordinal} of this host (0 is {@link #get()}), its context and kernels loaded on first use; an index the
     * host does not have fails with how many it has.
     */
    public static JCudaDevice get(int ordinal) {
        JCudaDevice first = get();
        if (ordinal == 0) {
            return first;
        }
        int[] count = {0};
        JCudaDriver.cuDeviceGetCount(count);
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new io.github.jconv.InvalidConvolutionException("GPU index " + ordinal + ": this host has " + count[0] + " GPU(s), 0 to "
                    + (count[0] - 1));
        }
        synchronized (INIT_LOCK) {
            return OTHERS.computeIfAbsent(ordinal, i -> {
                try {
                    return new JCudaDevice(kernels, i);
                } catch (CudaException e) {
                    throw new DeviceException("GPU " + i + " did not start: " + firstLine(e.getMessage()), e);
                }
            });
        }
    }

    /** The device, or a {@link DeviceException} with {@link #unavailableReason()}. */
    public static JCudaDevice get() {
        String why = unavailableReason();
        if (why != null) {
            throw new DeviceException(why);
        }
        return instance;
    }

    /** Null when a GPU, the driver, JCuda and the kernels are all there; otherwise the first that is missing. */
    public static String unavailableReason() {
        if (instance == null && unavailable == null) {
            synchronized (INIT_LOCK) {
                if (instance == null && unavailable == null) {
                    unavailable = probe();
                }
            }
        }
        return unavailable;
    }

    private static String probe() {
        byte[] fatbin;
        try (InputStream in = JCudaDevice.class.getResourceAsStream(FATBIN)) {
            if (in == null) {
                return "kernels not built (nvcc was not found when jconv was built)";
            }
            fatbin = in.readAllBytes();
        } catch (IOException e) {
            return "cannot read the kernels: " + e.getMessage();
        }
        try {
            JCudaDriver.setExceptionsEnabled(true);
            JCudaDriver.cuInit(0);
            int[] count = {0};
            JCudaDriver.cuDeviceGetCount(count);
            if (count[0] == 0) {
                return "no CUDA device";
            }
            kernels = fatbin;
            instance = new JCudaDevice(fatbin, 0);
            return null;
        } catch (UnsatisfiedLinkError e) {
            return "no NVIDIA driver here (JCuda could not load its native library: " + firstLine(e.getMessage()) + ")";
        } catch (CudaException e) {
            return "CUDA did not start: " + firstLine(e.getMessage());
        } catch (LinkageError e) {
            return "JCuda is not usable: " + firstLine(String.valueOf(e));
        }
    }

    /**
     * Starts a CUDA library (cuDNN, cuBLAS) on this device: null when {@code start} succeeded, otherwise why not,
     * in one line; {@code loadHint} says what a load failure usually means.
     */
    static String startLibrary(String library, String loadHint, Runnable start) {
        String cuda = unavailableReason();
        if (cuda != null) {
            return "needs a usable GPU first: " + cuda;
        }
        try {
            get().makeCurrent();
            start.run();
            return null;
        } catch (UnsatisfiedLinkError e) {
            return library + " did not load (" + loadHint + "): " + firstLine(e.getMessage());
        } catch (CudaException | LinkageError e) {
            return library + " did not start: " + firstLine(String.valueOf(e.getMessage()));
        }
    }

    static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl).strip();
    }

    /**
     * CUresults after which the CUDA context is unusable for good (a faulting kernel: every later call in the process
     * fails the same way). The driver API documents these as leaving the context in an inconsistent state.
     */
    private static final java.util.List<String> CONTEXT_FATAL = java.util.List.of("CUDA_ERROR_ILLEGAL_ADDRESS",
            "CUDA_ERROR_LAUNCH_FAILED", "CUDA_ERROR_ILLEGAL_INSTRUCTION", "CUDA_ERROR_MISALIGNED_ADDRESS",
            "CUDA_ERROR_INVALID_ADDRESS_SPACE", "CUDA_ERROR_INVALID_PC", "CUDA_ERROR_HARDWARE_STACK_ERROR", "CUDA_ERROR_ASSERT",
            "CUDA_ERROR_LAUNCH_TIMEOUT", "CUDA_ERROR_ECC_UNCORRECTABLE", "CUDA_ERROR_CONTEXT_IS_DESTROYED");

    /** Whether a CUDA error message names a result after which the context cannot be used again. */
    static boolean isContextFatal(String message) {
        return message != null && CONTEXT_FATAL.stream().anyMatch(message::contains);
    }

    /**
     * From now on the device is unavailable with this reason: {@link #get()} and every backend that needs it fail
     * with it, and {@code auto} uses the CPU. A poisoned context is never reported available again in this process.
     */
    static void markBroken(String reason) {
        unavailable = "the GPU context is unusable since an earlier fault (" + reason + "); start a new process to use the GPU again";
    }

    private static DeviceException error(String what, CudaException e) {
        String message = what + " failed: " + firstLine(e.getMessage());
        if (isContextFatal(e.getMessage())) {
            markBroken(message);
        }
        return new DeviceException(message, e);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public int computeCapability() {
        return computeCapability;
    }

    /**
     * Makes the device's primary context current on this thread (for calls into other CUDA libraries, or to create a
     * stream for {@link io.github.jconv.Device#onStream}).
     */
    public void makeCurrent() {
        JCudaDriver.cuCtxSetCurrent(context);
    }

    CUdeviceptr pointer(long handle) {
        CUdeviceptr p = pointers.get(handle);
        if (p == null) {
            throw new DeviceException("unknown device buffer " + handle);
        }
        return p;
    }

    private CUfunction function(String name) {
        return functions.computeIfAbsent(name, n -> {
            CUfunction fn = new CUfunction();
            try {
                JCudaDriver.cuModuleGetFunction(fn, module, n);
            } catch (CudaException e) {
                throw error("cuModuleGetFunction(" + n + ")", e);
            }
            return fn;
        });
    }

    @Override
    public DeviceStream openStream() {
        return pool.take(JCudaStream::new);
    }

    /**
     * The caller's CUstream (of this device's primary context) as a jconv stream: jconv's copies, allocations and
     * launches are queued on it; closing it waits for it and frees jconv's pinned staging, but neither pools nor destroys
     * the CUstream, which stays the caller's.
     */
    public DeviceStream callerStream(CUstream callers) {
        return new JCudaStream(callers);
    }

    /**
     * A non-blocking CUstream with its own pinned staging buffer (cuMemHostAlloc). Memory is allocated and
     * freed in stream order (cuMemAllocAsync/cuMemFreeAsync) where the device has memory pools, otherwise with
     * cuMemAlloc and a cuMemFree after the stream is idle.
     */
    final class JCudaStream extends DeviceStream {
        private final CUstream stream;
        private final boolean callers; // the caller's CUstream: never pooled or destroyed here
        private final Map<Long, jcuda.driver.CUevent> events = new ConcurrentHashMap<>();
        private final AtomicLong nextEvent = new AtomicLong(1);

        @Override
        public long recordEvent() {
            makeCurrent();
            jcuda.driver.CUevent e = new jcuda.driver.CUevent();
            try {
                JCudaDriver.cuEventCreate(e, jcuda.driver.CUevent_flags.CU_EVENT_DEFAULT);
                JCudaDriver.cuEventRecord(e, stream);
            } catch (CudaException ex) {
                throw error("cuEventRecord", ex);
            }
            long id = nextEvent.getAndIncrement();
            events.put(id, e);
            return id;
        }

        @Override
        public double elapsedMs(long start, long end) {
            makeCurrent();
            jcuda.driver.CUevent a = events.remove(start), b = events.remove(end);
            if (a == null || b == null) {
                throw new DeviceException("unknown or already used event " + (a == null ? start : end));
            }
            try {
                JCudaDriver.cuEventSynchronize(b);
                float[] ms = {0f};
                JCudaDriver.cuEventElapsedTime(ms, a, b);
                return ms[0];
            } catch (CudaException ex) {
                throw error("cuEventElapsedTime", ex);
            } finally {
                JCudaDriver.cuEventDestroy(a);
                JCudaDriver.cuEventDestroy(b);
            }
        }
        private final Pointer staging = new Pointer();
        private FloatBuffer stagingFloats;
        private java.nio.ShortBuffer stagingShorts; // the same memory, 16-bit elements (half-precision tensors)

        JCudaStream(CUstream callers) {
            super(DEFAULT_MAX_STAGING);
            this.stream = callers;
            this.callers = true;
        }

        JCudaStream() {
            super(DEFAULT_MAX_STAGING);
            this.stream = new CUstream();
            this.callers = false;
            makeCurrent();
            try {
                JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
            } catch (CudaException e) {
                throw error("cuStreamCreate", e);
            }
        }

        /** The CUstream, for cuBLAS and cuDNN calls on this stream. */
        cudaStream_t cudaStream() {
            return new cudaStream_t(stream);
        }

        @Override
        DeviceApi device() {
            return JCudaDevice.this;
        }

        @Override
        long allocate(long bytes) {
            makeCurrent();
            CUdeviceptr p = new CUdeviceptr();
            try {
                if (memoryPools) {
                    JCudaDriver.cuMemAllocAsync(p, Math.max(bytes, 1), stream);
                } else {
                    JCudaDriver.cuMemAlloc(p, Math.max(bytes, 1));
                }
            } catch (CudaException e) {
                long[] free = {0}, total = {0};
                JCudaDriver.cuMemGetInfo(free, total);
                throw new DeviceException("device out of memory: allocating " + bytes + " bytes failed ("
                        + firstLine(e.getMessage()) + "; " + free[0] + " of " + total[0] + " bytes free)", e);
            }
            long handle = nextHandle.getAndIncrement();
            pointers.put(handle, p);
            return handle;
        }

        @Override
        void free(long handle) {
            CUdeviceptr p = pointers.remove(handle);
            if (p == null) {
                throw new DeviceException("free of an unknown device buffer " + handle);
            }
            makeCurrent();
            try {
                if (memoryPools) {
                    JCudaDriver.cuMemFreeAsync(p, stream);
                } else {
                    JCudaDriver.cuStreamSynchronize(stream);
                    JCudaDriver.cuMemFree(p);
                }
            } catch (CudaException e) {
                throw error("freeing a device buffer", e);
            }
        }

        @Override
        void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets) {
            makeCurrent();
            CUfunction f = function(name);
            Pointer[] args = new Pointer[handles.length + 1];
            args[0] = Pointer.to(params);
            for (int i = 0; i < handles.length; i++) {
                args[i + 1] = Pointer.to(pointer(handles[i]).withByteOffset(offsets[i]));
            }
            try {
                JCudaDriver.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, stream,
                        Pointer.to(args), null);
            } catch (CudaException e) {
                throw error("kernel " + name + " (grid " + grid[0] + "x" + grid[1] + "x" + grid[2] + ", block " + block[0]
                        + "x" + block[1] + "x" + block[2] + ")", e);
            }
        }

        @Override
        protected void allocateStaging(long bytes) {
            makeCurrent();
            try {
                JCudaDriver.cuMemHostAlloc(staging, bytes, 0);
            } catch (CudaException e) {
                throw error("cuMemHostAlloc of " + bytes + " bytes of pinned staging", e);
            }
            stagingFloats = staging.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder()).asFloatBuffer();
            stagingShorts = staging.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder()).asShortBuffer();
        }

        @Override
        protected void freeStaging() {
            makeCurrent();
            stagingFloats = null;
            stagingShorts = null;
            try {
                JCudaDriver.cuMemFreeHost(staging);
            } catch (CudaException e) {
                throw error("cuMemFreeHost of the pinned staging", e);
            }
        }

        @Override
        protected void stage(long stagingOffset, float[] src, int srcOffset, int count) {
            stagingFloats.put((int) (stagingOffset / 4), src, srcOffset, count);
        }

        @Override
        protected void unstage(float[] dst, int dstOffset, long stagingOffset, int count) {
            stagingFloats.get((int) (stagingOffset / 4), dst, dstOffset, count);
        }

        @Override
        protected void stage(long stagingOffset, short[] src, int srcOffset, int count) {
            stagingShorts.put((int) (stagingOffset / 2), src, srcOffset, count);
        }

        @Override
        protected void unstage(short[] dst, int dstOffset, long stagingOffset, int count) {
            stagingShorts.get((int) (stagingOffset / 2), dst, dstOffset, count);
        }

        @Override
        protected void queueToDevice(long handle, long byteOffset, long stagingOffset, long bytes) {
            makeCurrent();
            try {
                JCudaDriver.cuMemcpyHtoDAsync(pointer(handle).withByteOffset(byteOffset), staging.withByteOffset(stagingOffset),
                        bytes, stream);
            } catch (CudaException e) {
                throw error("cuMemcpyHtoDAsync of " + bytes + " bytes", e);
            }
        }

        @Override
        protected void queueToHost(long stagingOffset, long handle, long byteOffset, long bytes) {
            makeCurrent();
            try {
                JCudaDriver.cuMemcpyDtoHAsync(staging.withByteOffset(stagingOffset), pointer(handle).withByteOffset(byteOffset),
                        bytes, stream);
            } catch (CudaException e) {
                throw error("cuMemcpyDtoHAsync of " + bytes + " bytes", e);
            }
        }

        @Override
        protected void waitIdle() {
            makeCurrent();
            try {
                JCudaDriver.cuStreamSynchronize(stream);
            } catch (CudaException e) {
                throw error("the stream's queued work (a kernel or a copy)", e);
            }
        }

        @Override
        protected void release() {
            if (callers) {
                destroy(); // jconv's staging goes; the CUstream is the caller's
            } else {
                pool.give(this);
            }
        }

        @Override
        protected void destroyQueue() {
            if (callers) {
                return;
            }
            makeCurrent();
            try {
                JCudaDriver.cuStreamDestroy(stream);
            } catch (CudaException e) {
                throw error("cuStreamDestroy of an idle stream", e);
            }
        }
    }
}
