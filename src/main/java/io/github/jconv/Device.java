package io.github.jconv;

import io.github.jconv.cpu.CpuBackend;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.cuda.DeviceArena;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where tensors live and plans run: the CPU ({@code "cpu"}), a GPU ({@code "cuda"}) or the GPU kernels' emulation
 * ({@code "cuda-emu"}). A GPU device owns one stream: uploads, plan runs and downloads on it are queued in order and run
 * asynchronously; {@link DeviceTensor#download} waits for what was queued before it. Results stay on the device for the
 * next layer ({@link ConvPlan#run(DeviceTensor, DeviceTensor)}).
 *
 * <p>Threads: a Device serialises the work it is given (its methods, its tensors' and plans' methods lock it); for
 * concurrent work open several Devices, each with its own stream (they may share one GPU; two {@code cuda-emu} devices
 * are independent too).
 *
 * <p>Closing a device frees everything on it; if tensors or plans were still open it throws a
 * {@link DeviceLeakException} listing each one (shape, bytes, where it was allocated), like a leak checker.
 */
public final class Device implements AutoCloseable {
    private static final java.util.concurrent.atomic.AtomicInteger COUNT = new java.util.concurrent.atomic.AtomicInteger();
    private final Backend backend;
    private final DeviceArena arena; // null for the CPU
    private final int id = COUNT.incrementAndGet();
    private final Map<AutoCloseable, Opened> live = new ConcurrentHashMap<>();
    private final HostArrays hostArrays; // null on a GPU
    private volatile boolean closed;

    private Device(Backend backend, DeviceArena arena) {
        this.backend = backend;
        this.arena = arena;
        this.hostArrays = arena == null ? new HostArrays(HostArrays.defaultLimit()) : null;
    }

    /** {@code "cpu"}, {@code "cuda"} (GPU 0) or {@code "cuda-emu"}; an unknown or unavailable one fails with the reason. */
    public static Device open(String backend) {
        return open(backend, 0);
    }

    /**
     * The device {@code index} of a backend: GPU {@code index} for {@code "cuda"} (each GPU its own context; a plan and
     * its tensors live on one), 0 for {@code "cpu"} and {@code "cuda-emu"} (one each; open several Devices on them for
     * concurrent work).
     */
    public static Device open(String backend, int index) {
        Backend b = Backends.get(backend);
        if (index != 0 && b != CudaBackend.CUDA) {
            throw new InvalidConvolutionException("device index " + index + ": backend '" + b.name() + "' has one device, index 0");
        }
        if (b instanceof CpuBackend) {
            return new Device(b, null);
        }
        if (b == CudaBackend.CUDA) {
            return new Device(b, new DeviceArena(io.github.jconv.cuda.JCudaDevice.get(index)));
        }
        if (b instanceof CudaBackend) {
            return new Device(b, new DeviceArena(((CudaBackend) b).device()));
        }
        if (b == io.github.jconv.cuda.CudnnBackend.INSTANCE) { // GPU 0, convolutions by cuDNN (the peer, planned as a user would)
            b.requireAvailable();
            return new Device(b, new DeviceArena(io.github.jconv.cuda.JCudaDevice.get(0)));
        }
        throw new InvalidConvolutionException("backend '" + b.name() + "' has no device tensors (plans run on cpu, cuda, cuda-emu or cudnn)");
    }

    /**
     * GPU {@code index} with every upload, plan run and download queued on the caller's CUDA stream (JCuda's
     * {@code CUstream}; a runtime-API {@code cudaStream_t} converts with {@code new CUstream(cudaStream_t)}), so jconv's
     * work is ordered with the caller's own kernels on that stream without any synchronisation. The stream must belong to
     * the device's primary context (the one the CUDA runtime uses; jconv uses it too). Closing the device frees jconv's
     * buffers in the stream's order and waits for the stream; the stream itself stays the caller's (not destroyed).
     * {@code backend}: {@code "cuda"} (jconv's kernels) or {@code "cudnn"} (GPU 0 only).
     */
    public static Device onStream(String backend, int index, jcuda.driver.CUstream stream) {
        java.util.Objects.requireNonNull(stream, "stream");
        Backend b = Backends.get(backend);
        if (b != CudaBackend.CUDA && b != io.github.jconv.cuda.CudnnBackend.INSTANCE) {
            throw new InvalidConvolutionException("backend '" + b.name() + "' has no CUDA streams (cuda or cudnn)");
        }
        if (index != 0 && b != CudaBackend.CUDA) {
            throw new InvalidConvolutionException("device index " + index + ": backend '" + b.name() + "' runs on GPU 0 only");
        }
        b.requireAvailable();
        io.github.jconv.cuda.JCudaDevice gpu = io.github.jconv.cuda.JCudaDevice.get(index);
        return new Device(b, DeviceArena.owning(gpu.callerStream(stream)));
    }

    /** The backend's name: cpu, cuda or cuda-emu. */
    public String name() {
        return backend.name();
    }

    Backend backend() {
        return backend;
    }

    /** The GPU arena (tensors and plans), null on the CPU. */
    DeviceArena arena() {
        return arena;
    }

    public boolean isCpu() {
        return arena == null;
    }

    /**
     * A tensor of this shape on the device; its contents are undefined (NaN on cuda-emu) until written. On the CPU it may
     * take the array of a tensor closed before (see {@link HostArrays}: no fresh heap memory per call in a loop).
     */
    public DeviceTensor allocate(int... shape) {
        return DeviceTensor.allocate(this, shape, Layout.NCHW, Dtype.FP32);
    }

    /** As {@link #allocate(int...)}, laid out as {@code layout} ({@code shape}: the logical N x C x H x W for NHWC). */
    public DeviceTensor allocate(Layout layout, int... shape) {
        return allocate(layout, Dtype.FP32, shape);
    }

    /**
     * As {@link #allocate(Layout, int...)}, each element stored as {@code dtype}: float32, or half precision (two bytes an
     * element; {@link DeviceTensor#upload(float[])} rounds to it, {@link DeviceTensor#download(float[])} widens from it).
     */
    public DeviceTensor allocate(Layout layout, Dtype dtype, int... shape) {
        java.util.Objects.requireNonNull(layout, "layout");
        java.util.Objects.requireNonNull(dtype, "dtype");
        return DeviceTensor.allocate(this, shape, layout, dtype);
    }

    /** A copy of {@code t} on the device, in its layout. */
    public DeviceTensor upload(Tensor t) {
        return upload(t, Dtype.FP32);
    }

    /** A copy of {@code t} on the device, in its layout, each element rounded to {@code dtype} (to nearest even). */
    public DeviceTensor upload(Tensor t, Dtype dtype) {
        DeviceTensor d = allocate(t.layout(), dtype, t.shape());
        try {
            d.upload(t.data());
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
        return d;
    }

    /** A copy of {@code data} (C order) with this shape on the device. */
    public DeviceTensor upload(float[] data, int... shape) {
        return upload(Tensor.of(data, shape));
    }

    /** A copy of the {@code data}'s remaining floats (C order) with this shape on the device; the buffer's position is kept. */
    public DeviceTensor upload(FloatBuffer data, int... shape) {
        float[] a = new float[data.remaining()];
        data.duplicate().get(a);
        return upload(a, shape);
    }

    /**
     * The device time, in ms, of the work {@code work} queues on this device: CUDA events around it on a GPU (kernel
     * time, without the host), timestamps of the emulator's queue on cuda-emu, wall time on the CPU. Waits for it.
     */
    public double time(Runnable work) {
        if (arena == null) {
            long t0 = System.nanoTime();
            work.run();
            return (System.nanoTime() - t0) / 1e6;
        }
        long start;
        synchronized (this) {
            start = arena.stream().recordEvent();
        }
        work.run();
        synchronized (this) {
            long end = arena.stream().recordEvent();
            return arena.stream().elapsedMs(start, end);
        }
    }

    /** Waits until everything queued on the device is done (and throws the error of work that failed). */
    public void synchronize() {
        if (arena != null) {
            synchronized (this) {
                arena.stream().synchronize();
            }
        }
    }

    // ------------------------------------------------------------ bookkeeping of what lives here

    void requireOpen(String what) {
        if (closed) {
            throw new IllegalStateException(what + ": device " + name() + " is closed");
        }
    }

    /** As {@link #requireOpen(String)}, the text made only for the error (tensors are allocated on hot paths). */
    void requireOpen(java.util.function.Supplier<String> what) {
        if (closed) {
            requireOpen(what.get());
        }
    }

    /**
     * What is open here, for the leak report: its description and where it was allocated, both turned into text only
     * for a report (a tensor allocated once per call, as a trunk's output is, ran its stack walk and strings in the
     * interpreter: ~90 us a call; a Throwable records the stack natively).
     */
    private record Opened(java.util.function.Supplier<String> description, Throwable site) {
        String describe() {
            return description.get() + ", allocated at " + callSite(site);
        }
    }

    void opened(AutoCloseable thing, java.util.function.Supplier<String> description) {
        requireOpen(description);
        live.put(thing, new Opened(description, new Throwable()));
    }

    void closed(AutoCloseable thing) {
        live.remove(thing);
    }

    /** The CPU device's cache of freed tensor arrays (null on a GPU). */
    HostArrays hostArrays() {
        return hostArrays;
    }

    /** The first stack frame outside jconv's own Device, DeviceTensor and ConvPlan: where the user allocated it. */
    private static String callSite(Throwable site) {
        for (StackTraceElement e : site.getStackTrace()) {
            String c = e.getClassName();
            if (!c.equals(Device.class.getName()) && !c.equals(DeviceTensor.class.getName()) && !c.equals(ConvPlan.class.getName())
                    && !c.startsWith(ConvPlan.class.getName() + "$")) {
                return e.toString();
            }
        }
        return "(unknown)";
    }

    /** Frees everything; throws {@link DeviceLeakException} naming what was still open. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        List<String> leaked = new ArrayList<>();
        live.values().forEach(o -> leaked.add(o.describe()));
        for (AutoCloseable thing : new ArrayList<>(live.keySet())) {
            try {
                thing.close();
            } catch (Exception e) {
                // freed as far as it goes; the leak is reported below
            }
        }
        closed = true;
        if (arena != null) {
            arena.close();
        } else {
            hostArrays.clear();
        }
        if (!leaked.isEmpty()) {
            leaked.sort(null);
            throw new DeviceLeakException("device " + name() + " closed with " + leaked.size() + " open tensor(s)/plan(s), now freed: "
                    + String.join("; ", leaked));
        }
    }

    @Override
    public String toString() {
        return "Device[" + name() + " #" + id + "]";
    }
}
