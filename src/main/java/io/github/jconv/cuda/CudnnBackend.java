package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.Backend;
import io.github.jconv.ConvGeometry;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;

import java.util.List;

import static jcuda.jcudnn.cudnnConvolutionMode.CUDNN_CROSS_CORRELATION;
import static jcuda.jcudnn.cudnnDataType.CUDNN_DATA_FLOAT;
import static jcuda.jcudnn.cudnnMathType.CUDNN_DEFAULT_MATH;
import static jcuda.jcudnn.cudnnMathType.CUDNN_FMA_MATH;
import static jcuda.jcudnn.cudnnTensorFormat.CUDNN_TENSOR_NCHW;

/**
 * The cross-check: cuDNN (through JCudnn; cuDNN 9 via jcudnn-natives 12.6.0) on the same device as the
 * cuda backend. Legacy convolution API with the group count, CUDNN_FMA_MATH so the comparison is strict
 * float32 (cuDNN may use TF32 otherwise), cuDNN's own algorithm choice (Get_v7) and a workspace of the size
 * it asks for. conv_transpose2d is cuDNN's backward-data pass. Symmetric padding only.
 */
public final class CudnnBackend implements Backend {
    public static final CudnnBackend INSTANCE = new CudnnBackend();

    private volatile String unavailable;
    private volatile boolean probed;
    private cudnnHandle handle;

    private CudnnBackend() {
    }

    @Override
    public String name() {
        return "cudnn";
    }

    @Override
    public synchronized String unavailableReason() {
        if (!probed) {
            unavailable = JCudaDevice.startLibrary("cuDNN", "libcudnn.so.9 on the library path?", () -> {
                JCudnn.setExceptionsEnabled(true);
                cudnnHandle h = new cudnnHandle();
                JCudnn.cudnnCreate(h);
                handle = h;
            });
            probed = true;
        }
        return unavailable;
    }

    @Override
    public List<Algorithm> algorithms() {
        return List.of(Algorithm.VENDOR);
    }

    @Override
    public String cannotImplement(Algorithm algorithm, ConvGeometry g) {
        String why = unavailableReason();
        if (why != null) {
            return why;
        }
        if (algorithm != Algorithm.VENDOR) {
            return "the cudnn backend has only the algorithm 'vendor' (cuDNN chooses)";
        }
        if (g.padTop != g.padBottom || g.padLeft != g.padRight) {
            return "cuDNN takes symmetric padding only";
        }
        if (g.transposed() && (ConvGeometry.convOutputSize(g.h, 2 * g.padTop, g.r, g.strideH, g.dilationH) != g.p
                || ConvGeometry.convOutputSize(g.w, 2 * g.padLeft, g.s, g.strideW, g.dilationW) != g.q)) {
            return "output padding of at least the stride is not expressible as cuDNN's backward-data pass";
        }
        return null;
    }

    @Override
    public Algorithm choose(ConvGeometry g) {
        return Algorithm.VENDOR;
    }

    /** Runs with CUDNN_FMA_MATH (strict float32), as every backend call does. */
    @Override
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    int threads) {
        run(algorithm, g, input, weight, bias, output, true);
    }

    /** As {@link #run}, with cuDNN's default math instead when {@code fmaMath} is false (it may use TF32). */
    public void run(Algorithm algorithm, ConvGeometry g, float[] input, float[] weight, float[] bias, float[] output,
                    boolean fmaMath) {
        if (!prepare(algorithm, g)) {
            return;
        }
        execute(g, g.transposed() ? Pass.BACKWARD_DATA : Pass.FORWARD, input, weight, bias, output, fmaMath);
    }

    @Override
    public String cannotImplementBackwardWeight(Algorithm algorithm, ConvGeometry g) {
        return cannotImplement(algorithm, g);
    }

    @Override
    public Algorithm chooseBackwardWeight(ConvGeometry g) {
        return Algorithm.VENDOR;
    }

    /** cudnnConvolutionBackwardFilter with CUDNN_FMA_MATH (the cross-check of jconv's weight gradient). */
    @Override
    public void backwardWeight(Algorithm algorithm, ConvGeometry g, float[] x, float[] dy, float[] dw, int threads) {
        resolveBackwardWeight(algorithm, g);
        if (g.isEmpty()) {
            java.util.Arrays.fill(dw, 0f); // a sum over no samples
            return;
        }
        execute(g, Pass.BACKWARD_FILTER, x, dy, null, dw, true);
    }

    /** cuDNN's three passes, in {@link ConvGeometry}'s forward names. */
    private enum Pass { FORWARD, BACKWARD_DATA, BACKWARD_FILTER }

    /**
     * One cuDNN call: FORWARD y = conv(a = x, b = w), BACKWARD_DATA x = conv_transpose(a = y, b = w), BACKWARD_FILTER
     * dw = wgrad(a = x, b = dy); then the bias (if any) added to the output of the first two.
     */
    private void execute(ConvGeometry g, Pass pass, float[] input, float[] weight, float[] bias, float[] output, boolean fmaMath) {
        JCudaDevice device = JCudaDevice.get();
        synchronized (this) { // one cuDNN handle, set to this call's stream
            device.makeCurrent();
            cudnnTensorDescriptor xDesc = tensor(g.n, g.c, g.h, g.w), yDesc = tensor(g.n, g.k, g.p, g.q);
            cudnnTensorDescriptor bDesc = tensor(1, g.transposed() ? g.c : g.k, 1, 1);
            cudnnFilterDescriptor wDesc = new cudnnFilterDescriptor();
            cudnnConvolutionDescriptor conv = new cudnnConvolutionDescriptor();
            try (DeviceArena arena = new DeviceArena(device);
                 DeviceBuffer in = arena.upload(input);
                 DeviceBuffer w = arena.upload(weight);
                 DeviceBuffer b = bias == null ? null : arena.upload(bias);
                 DeviceBuffer out = arena.allocate(output.length)) {
                JCudnn.cudnnSetStream(handle, ((JCudaDevice.JCudaStream) arena.stream()).cudaStream());
                JCudnn.cudnnCreateFilterDescriptor(wDesc);
                JCudnn.cudnnSetFilter4dDescriptor(wDesc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k, g.cPerGroup(), g.r, g.s);
                JCudnn.cudnnCreateConvolutionDescriptor(conv);
                JCudnn.cudnnSetConvolution2dDescriptor(conv, g.padTop, g.padLeft, g.strideH, g.strideW, g.dilationH, g.dilationW,
                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
                JCudnn.cudnnSetConvolutionGroupCount(conv, g.groups);
                JCudnn.cudnnSetConvolutionMathType(conv, fmaMath ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
                Pointer one = Pointer.to(new float[] {1f}), zero = Pointer.to(new float[] {0f});
                Pointer pin = device.pointer(in.handle()), pw = device.pointer(w.handle()), pout = device.pointer(out.handle());
                long[] wsBytes = {0};
                int[] count = {0};
                if (pass == Pass.BACKWARD_FILTER) { // in = x, "w" = dy, out = dw
                    cudnnConvolutionBwdFilterAlgoPerf[] perf = {new cudnnConvolutionBwdFilterAlgoPerf()};
                    JCudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, xDesc, yDesc, conv, wDesc, 1, count, perf);
                    JCudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, xDesc, yDesc, conv, wDesc, perf[0].algo, wsBytes);
                    try (DeviceBuffer ws = arena.allocate((wsBytes[0] + 3) / 4)) {
                        JCudnn.cudnnConvolutionBackwardFilter(handle, one, xDesc, pin, yDesc, pw, conv, perf[0].algo,
                                device.pointer(ws.handle()), wsBytes[0], zero, wDesc, pout);
                    }
                } else if (pass == Pass.FORWARD) {
                    cudnnConvolutionFwdAlgoPerf[] perf = {new cudnnConvolutionFwdAlgoPerf()};
                    JCudnn.cudnnGetConvolutionForwardAlgorithm_v7(handle, xDesc, wDesc, conv, yDesc, 1, count, perf);
                    JCudnn.cudnnGetConvolutionForwardWorkspaceSize(handle, xDesc, wDesc, conv, yDesc, perf[0].algo, wsBytes);
                    try (DeviceBuffer ws = arena.allocate((wsBytes[0] + 3) / 4)) {
                        JCudnn.cudnnConvolutionForward(handle, one, xDesc, pin, wDesc, pw, conv, perf[0].algo,
                                device.pointer(ws.handle()), wsBytes[0], zero, yDesc, pout);
                    }
                    if (b != null) {
                        JCudnn.cudnnAddTensor(handle, one, bDesc, device.pointer(b.handle()), one, yDesc, pout);
                    }
                } else {
                    cudnnConvolutionBwdDataAlgoPerf[] perf = {new cudnnConvolutionBwdDataAlgoPerf()};
                    JCudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, wDesc, yDesc, conv, xDesc, 1, count, perf);
                    JCudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(handle, wDesc, yDesc, conv, xDesc, perf[0].algo, wsBytes);
                    try (DeviceBuffer ws = arena.allocate((wsBytes[0] + 3) / 4)) {
                        JCudnn.cudnnConvolutionBackwardData(handle, one, wDesc, pw, yDesc, pin, conv, perf[0].algo,
                                device.pointer(ws.handle()), wsBytes[0], zero, xDesc, pout);
                    }
                    if (b != null) {
                        JCudnn.cudnnAddTensor(handle, one, bDesc, device.pointer(b.handle()), one, xDesc, pout);
                    }
                }
                out.download(output);
            } catch (CudaException e) {
                throw new DeviceException("cuDNN failed on " + g + ": " + JCudaDevice.firstLine(e.getMessage()), e);
            } finally {
                JCudnn.cudnnDestroyTensorDescriptor(xDesc);
                JCudnn.cudnnDestroyTensorDescriptor(yDesc);
                JCudnn.cudnnDestroyTensorDescriptor(bDesc);
                JCudnn.cudnnDestroyFilterDescriptor(wDesc);
                JCudnn.cudnnDestroyConvolutionDescriptor(conv);
            }
        }
    }

    private static cudnnTensorDescriptor tensor(int n, int c, int h, int w) {
        cudnnTensorDescriptor d = new cudnnTensorDescriptor();
        JCudnn.cudnnCreateTensorDescriptor(d);
        JCudnn.cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w);
        return d;
    }
}
