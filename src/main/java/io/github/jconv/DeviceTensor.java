package io.github.jconv;

import io.github.jconv.cuda.DeviceBuffer;

import java.util.Arrays;

/**
 * A dense tensor (C order, NCHW for convolutions, or channels last: {@link Layout}) in a {@link Device}'s memory: a GPU
 * buffer, or a host array for the CPU device. Its elements are float32, or half precision ({@link Dtype}: two bytes an
 * element, rounded to nearest even as they are written, widened exactly as they are read). Close it to free it; using
 * it afterwards fails with a message naming it.
 */
public final class DeviceTensor implements AutoCloseable {
    private final Device device;
    private final int[] shape;
    private final Layout layout;
    private final Dtype dtype;
    private final int size;
    private final DeviceBuffer buffer; // GPU (a half-precision tensor's elements two to a float)
    private final float[] host;        // CPU, float32
    private final short[] halves;      // CPU, half precision
    private volatile boolean closed;

    private DeviceTensor(Device device, int[] shape, Layout layout, Dtype dtype) {
        this.device = device;
        this.shape = shape.clone();
        layout.requireValidFor(this.shape);
        this.layout = layout;
        this.dtype = dtype;
        long n = Tensor.elementCount(shape);
        if (n > ConvGeometry.MAX_ELEMENTS) {
            throw new InvalidConvolutionException("device tensor of shape " + Arrays.toString(shape) + " has " + n + " elements, more than "
                    + ConvGeometry.MAX_ELEMENTS);
        }
        this.size = (int) n;
        boolean half = dtype != Dtype.FP32;
        if (device.isCpu()) {
            this.host = half ? null : device.hostArrays().take(size);
            this.halves = half ? new short[size] : null;
            this.buffer = null;
        } else {
            synchronized (device) {
                this.buffer = device.arena().allocate(Math.max(1, half ? (size + 1L) / 2 : size));
            }
            this.host = null;
            this.halves = null;
        }
    }

    static DeviceTensor allocate(Device device, int[] shape, Layout layout, Dtype dtype) {
        device.requireOpen(() -> "allocate " + Arrays.toString(shape));
        DeviceTensor t = new DeviceTensor(device, shape, layout, dtype);
        device.opened(t, () -> "tensor " + t.describe() + " (" + (long) dtype.bytes() * t.size + " bytes)");
        return t;
    }

    /** The shape, then the layout and dtype where they are not the defaults: "[1, 3, 8, 8] nhwc fp16". */
    private String describe() {
        return Arrays.toString(shape) + layout.suffix() + (dtype == Dtype.FP32 ? "" : " " + dtype.label());
    }

    public Device device() {
        return device;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int size() {
        return size;
    }

    /** How the elements lie in memory; the {@link #shape()} is the logical one whatever the layout. */
    public Layout layout() {
        return layout;
    }

    /** How each element is stored: float32 or a half-precision format. */
    public Dtype dtype() {
        return dtype;
    }

    void requireOpen(String what) {
        if (closed) {
            throw new IllegalStateException(what + ": tensor " + Arrays.toString(shape) + " on " + device.name() + " was closed");
        }
        device.requireOpen(what);
    }

    /**
     * A plan's operand check: {@code t} (named {@code what}) is on the plan's device and has the shape and layout the plan
     * needs.
     */
    static void requirePlanOperand(String what, DeviceTensor t, Device device, int[] shape, Layout layout, Dtype dtype) {
        java.util.Objects.requireNonNull(t, what);
        if (t.device() != device) {
            throw new InvalidConvolutionException(what + " tensor is on " + t.device() + ", the plan on " + device);
        }
        if (!Arrays.equals(t.shape(), shape)) {
            throw new InvalidConvolutionException(what + " tensor has shape " + Arrays.toString(t.shape()) + ", the plan needs "
                    + Arrays.toString(shape));
        }
        if (t.layout != layout) {
            throw new InvalidConvolutionException(what + " tensor is " + t.layout.label() + ", the plan takes " + layout.label());
        }
        if (t.dtype != dtype) {
            throw new InvalidConvolutionException(what + " tensor is " + t.dtype.label() + ", the plan takes " + dtype.label());
        }
    }

    DeviceBuffer buffer() {
        requireOpen("use");
        return buffer;
    }

    /** The CPU device's float32 array (null for a half-precision tensor). */
    float[] host() {
        requireOpen("use");
        return host;
    }

    /** The CPU device's array of 16-bit elements (null for a float32 tensor). */
    short[] halves() {
        requireOpen("use");
        return halves;
    }

    /**
     * Overwrites the tensor with {@code data} ({@link #size()} floats laid out as the tensor's {@link #layout()}), rounded
     * to nearest even if the tensor is half precision; queued on a GPU, data may change afterwards.
     */
    public void upload(float[] data) {
        requireOpen("upload");
        requireLength("upload of " + data.length + " floats into", data.length);
        if (dtype != Dtype.FP32) {
            short[] bits = halves != null ? halves : new short[size];
            dtype.encode(data, bits, size, 0);
            if (halves == null) {
                uploadHalves(bits);
            }
        } else if (host != null) {
            System.arraycopy(data, 0, host, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.upload(data);
            }
        }
    }

    /**
     * Copies the tensor into {@code dst} (widened exactly from half precision) after everything queued before (waits;
     * throws the error of failed work).
     */
    public void download(float[] dst) {
        requireOpen("download");
        requireLength("download into an array of " + dst.length + " floats of", dst.length);
        if (dtype != Dtype.FP32) {
            short[] bits = halves != null ? halves : new short[size];
            if (halves == null) {
                downloadHalves(bits);
            }
            dtype.decode(bits, dst, size, 0);
        } else if (host != null) {
            System.arraycopy(host, 0, dst, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.download(dst);
            }
        }
    }

    /**
     * Overwrites a half-precision tensor with {@code bits}: {@link #size()} 16-bit patterns of its {@link #dtype()} (IEEE
     * binary16 or bfloat16, as Java's {@code Float.floatToFloat16} or a {@code ShortBuffer} of a half-precision file gives
     * them), as they are.
     */
    public void uploadHalves(short[] bits) {
        requireOpen("upload");
        requireHalf("uploadHalves");
        requireLength("upload of " + bits.length + " 16-bit elements into", bits.length);
        if (halves != null) {
            System.arraycopy(bits, 0, halves, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.uploadHalves(bits);
            }
        }
    }

    /** Copies a half-precision tensor's 16-bit patterns into {@code bits}, as {@link #download(float[])} waits. */
    public void downloadHalves(short[] bits) {
        requireOpen("download");
        requireHalf("downloadHalves");
        requireLength("download into an array of " + bits.length + " 16-bit elements of", bits.length);
        if (halves != null) {
            System.arraycopy(halves, 0, bits, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.downloadHalves(bits);
            }
        }
    }

    /**
     * Queues this half-precision tensor's values, widened exactly, into {@code f32} (a float32 tensor of its size on its
     * device): on a GPU with cuda-kernels/dtype.cu, on the CPU now.
     */
    void widenInto(DeviceTensor f32) {
        if (halves != null) {
            widenInto(f32.host(), 0);
        } else {
            widenInto(f32.buffer());
        }
    }

    /** Queues the values of {@code f32} (float32, of this tensor's size and device), rounded to nearest even, into this half-precision tensor. */
    void roundFrom(DeviceTensor f32) {
        if (halves != null) {
            roundFrom(f32.host(), 0);
        } else {
            roundFrom(f32.buffer());
        }
    }

    /** CPU: this half-precision tensor's values, widened exactly, into dst[0 .. size) over {@code threads} (0: all cores). */
    void widenInto(float[] dst, int threads) {
        dtype.decode(halves(), dst, size, threads);
    }

    /** CPU: src[0 .. size) rounded to nearest even into this half-precision tensor, over {@code threads}. */
    void roundFrom(float[] src, int threads) {
        dtype.encode(src, halves(), size, threads);
    }

    /** GPU: queues this half-precision tensor's values, widened exactly, into the float32 buffer dst (cuda-kernels/dtype.cu). */
    void widenInto(DeviceBuffer dst) {
        if (size > 0) {
            io.github.jconv.cuda.CudaBackend.kernelsFor(device.backend())
                    .convertDtypeOnDevice(device.arena(), size, dtype == Dtype.BF16, false, buffer(), dst);
        }
    }

    /** GPU: queues the float32 buffer src, rounded to nearest even, into this half-precision tensor. */
    void roundFrom(DeviceBuffer src) {
        if (size > 0) {
            io.github.jconv.cuda.CudaBackend.kernelsFor(device.backend())
                    .convertDtypeOnDevice(device.arena(), size, dtype == Dtype.BF16, true, src, buffer());
        }
    }

    private void requireLength(String what, int length) {
        if (length != size) {
            throw new InvalidConvolutionException(what + " a tensor of shape " + Arrays.toString(shape) + " (" + size + " elements)");
        }
    }

    private void requireHalf(String what) {
        if (dtype == Dtype.FP32) {
            throw new InvalidConvolutionException(what + ": the tensor " + describe() + " is fp32 (16-bit patterns are for fp16 and bf16 tensors)");
        }
    }

    /** A host copy, in the tensor's layout. */
    public Tensor download() {
        float[] a = new float[size];
        download(a);
        return Tensor.of(layout, a, shape);
    }

    /**
     * Frees the tensor (a second close does nothing). Close it only after the calls that use it have returned: on the CPU
     * its array may go straight to the next tensor the device allocates ({@link HostArrays}); on a GPU the buffer is freed
     * in stream order, after the work queued before.
     */
    @Override
    public void close() {
        synchronized (this) { // once: a second close (from another thread too) must not give the array back twice
            if (closed) {
                return;
            }
            closed = true;
        }
        if (buffer != null) {
            synchronized (device) {
                buffer.close();
            }
        }
        device.closed(this);
        if (host != null) {
            device.hostArrays().give(host);
        }
    }

    @Override
    public String toString() {
        return "DeviceTensor" + describe() + "@" + device.name()
                + (closed ? " (closed)" : "");
    }
}
