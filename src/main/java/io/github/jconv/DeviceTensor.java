package io.github.jconv;

import io.github.jconv.cuda.DeviceBuffer;

import java.util.Arrays;

/**
 * A dense float32 tensor (C order, NCHW for convolutions, or channels last: {@link Layout}) in a {@link Device}'s
 * memory: a GPU buffer, or a host array for the CPU device. Close it to free it; using it afterwards fails with a
 * message naming it.
 */
public final class DeviceTensor implements AutoCloseable {
    private final Device device;
    private final int[] shape;
    private final Layout layout;
    private final int size;
    private final DeviceBuffer buffer; // GPU
    private final float[] host;        // CPU
    private volatile boolean closed;

    private DeviceTensor(Device device, int[] shape, Layout layout) {
        this.device = device;
        this.shape = shape.clone();
        layout.requireValidFor(this.shape);
        this.layout = layout;
        long n = Tensor.elementCount(shape);
        if (n > ConvGeometry.MAX_ELEMENTS) {
            throw new InvalidConvolutionException("device tensor of shape " + Arrays.toString(shape) + " has " + n + " elements, more than "
                    + ConvGeometry.MAX_ELEMENTS);
        }
        this.size = (int) n;
        if (device.isCpu()) {
            this.host = device.hostArrays().take(size);
            this.buffer = null;
        } else {
            synchronized (device) {
                this.buffer = device.arena().allocate(Math.max(1, size));
            }
            this.host = null;
        }
    }

    static DeviceTensor allocate(Device device, int[] shape, Layout layout) {
        device.requireOpen(() -> "allocate " + Arrays.toString(shape));
        DeviceTensor t = new DeviceTensor(device, shape, layout);
        device.opened(t, () -> "tensor " + Arrays.toString(t.shape) + layout.suffix() + " ("
                + 4L * t.size + " bytes)");
        return t;
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
    static void requirePlanOperand(String what, DeviceTensor t, Device device, int[] shape, Layout layout) {
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
    }

    DeviceBuffer buffer() {
        requireOpen("use");
        return buffer;
    }

    float[] host() {
        requireOpen("use");
        return host;
    }

    /**
     * Overwrites the tensor with {@code data} ({@link #size()} floats laid out as the tensor's {@link #layout()}); queued on
     * a GPU, data may change afterwards.
     */
    public void upload(float[] data) {
        requireOpen("upload");
        if (data.length != size) {
            throw new InvalidConvolutionException("upload of " + data.length + " floats into a tensor of shape " + Arrays.toString(shape)
                    + " (" + size + ")");
        }
        if (host != null) {
            System.arraycopy(data, 0, host, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.upload(data);
            }
        }
    }

    /** Copies the tensor into {@code dst} after everything queued before (waits; throws the error of failed work). */
    public void download(float[] dst) {
        requireOpen("download");
        if (dst.length != size) {
            throw new InvalidConvolutionException("download of a tensor of " + size + " floats into an array of " + dst.length);
        }
        if (host != null) {
            System.arraycopy(host, 0, dst, 0, size);
        } else if (size > 0) {
            synchronized (device) {
                buffer.download(dst);
            }
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
        return "DeviceTensor" + Arrays.toString(shape) + layout.suffix() + "@" + device.name()
                + (closed ? " (closed)" : "");
    }
}
