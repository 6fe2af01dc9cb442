package io.github.jconv.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real GPU through the JCuda driver API: the primary context of device 0, jconv's fatbin (built by
 * scripts/build-kernels.sh, in the jar) loaded once, functions looked up once. Every CUresult error becomes
 * a {@link DeviceException} naming the call, the CUresult and the sizes involved. Calls are serialised and
 * synchronous (the context is made current on the calling thread first), which is safe for any number of
 * Java threads.
 */
public final class JCudaDevice implements DeviceApi {
    static final String FATBIN = "/io/github/jconv/cuda/jconv_kernels.fatbin";

    private static final Object INIT_LOCK = new Object();
    private static volatile JCudaDevice instance;
    private static volatile String unavailable;

    private final CUcontext context = new CUcontext();
    private final CUmodule module = new CUmodule();
    private final String description;
    private final Map<String, CUfunction> functions = new ConcurrentHashMap<>();
    private final Map<Long, CUdeviceptr> pointers = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);

    private JCudaDevice(byte[] fatbin) {
        CUdevice device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, 0);
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        JCudaDriver.cuCtxSetCurrent(context);
        JCudaDriver.cuModuleLoadData(module, fatbin);
        byte[] name = new byte[256];
        JCudaDriver.cuDeviceGetName(name, name.length, device);
        long[] mem = {0};
        JCudaDriver.cuDeviceTotalMem(mem, device);
        int len = 0;
        while (len < name.length && name[len] != 0) {
            len++;
        }
        description = new String(name, 0, len, java.nio.charset.StandardCharsets.US_ASCII) + ", " + (mem[0] >> 20)
                + " MiB, JCuda driver API";
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
            instance = new JCudaDevice(fatbin);
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

    private static DeviceException error(String what, CudaException e) {
        return new DeviceException(what + " failed: " + firstLine(e.getMessage()), e);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public synchronized long allocate(long bytes) {
        JCudaDriver.cuCtxSetCurrent(context);
        CUdeviceptr p = new CUdeviceptr();
        try {
            JCudaDriver.cuMemAlloc(p, Math.max(bytes, 1));
        } catch (CudaException e) {
            long[] free = {0}, total = {0};
            JCudaDriver.cuMemGetInfo(free, total);
            throw new DeviceException("device out of memory: cuMemAlloc of " + bytes + " bytes failed ("
                    + firstLine(e.getMessage()) + "; " + free[0] + " of " + total[0] + " bytes free)", e);
        }
        long handle = nextHandle.getAndIncrement();
        pointers.put(handle, p);
        return handle;
    }

    @Override
    public synchronized void free(long handle) {
        CUdeviceptr p = pointers.remove(handle);
        if (p == null) {
            throw new DeviceException("free of an unknown device buffer " + handle);
        }
        JCudaDriver.cuCtxSetCurrent(context);
        try {
            JCudaDriver.cuMemFree(p);
        } catch (CudaException e) {
            throw error("cuMemFree", e);
        }
    }

    /** Makes the device's context current on this thread (for calls into other CUDA libraries). */
    void makeCurrent() {
        JCudaDriver.cuCtxSetCurrent(context);
    }

    CUdeviceptr pointer(long handle) {
        CUdeviceptr p = pointers.get(handle);
        if (p == null) {
            throw new DeviceException("unknown device buffer " + handle);
        }
        return p;
    }

    @Override
    public synchronized void copyToDevice(long handle, long byteOffset, float[] src, int srcOffset, int count) {
        JCudaDriver.cuCtxSetCurrent(context);
        try {
            JCudaDriver.cuMemcpyHtoD(pointer(handle).withByteOffset(byteOffset), Pointer.to(src).withByteOffset(4L * srcOffset),
                    4L * count);
        } catch (CudaException e) {
            throw error("cuMemcpyHtoD of " + 4L * count + " bytes", e);
        }
    }

    @Override
    public synchronized void copyToHost(float[] dst, int dstOffset, long handle, long byteOffset, int count) {
        JCudaDriver.cuCtxSetCurrent(context);
        try {
            JCudaDriver.cuMemcpyDtoH(Pointer.to(dst).withByteOffset(4L * dstOffset), pointer(handle).withByteOffset(byteOffset),
                    4L * count);
        } catch (CudaException e) {
            throw error("cuMemcpyDtoH of " + 4L * count + " bytes", e);
        }
    }

    @Override
    public synchronized void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets) {
        JCudaDriver.cuCtxSetCurrent(context);
        CUfunction f = functions.computeIfAbsent(name, n -> {
            CUfunction fn = new CUfunction();
            try {
                JCudaDriver.cuModuleGetFunction(fn, module, n);
            } catch (CudaException e) {
                throw error("cuModuleGetFunction(" + n + ")", e);
            }
            return fn;
        });
        Pointer[] args = new Pointer[handles.length + 1];
        args[0] = Pointer.to(params);
        for (int i = 0; i < handles.length; i++) {
            args[i + 1] = Pointer.to(pointer(handles[i]).withByteOffset(offsets[i]));
        }
        try {
            JCudaDriver.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, null,
                    Pointer.to(args), null);
            JCudaDriver.cuCtxSynchronize();
        } catch (CudaException e) {
            throw error("kernel " + name + " (grid " + grid[0] + "x" + grid[1] + "x" + grid[2] + ", block " + block[0] + "x"
                    + block[1] + "x" + block[2] + ")", e);
        }
    }
}
