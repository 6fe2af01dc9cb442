package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.jcudnn.JCudnn;
import jcuda.jcudnn.cudnnActivationDescriptor;
import jcuda.jcudnn.cudnnConvolutionBwdDataAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionBwdFilterAlgoPerf;
import jcuda.jcudnn.cudnnConvolutionDescriptor;
import jcuda.jcudnn.cudnnConvolutionFwdAlgoPerf;
import jcuda.jcudnn.cudnnFilterDescriptor;
import jcuda.jcudnn.cudnnHandle;
import jcuda.jcudnn.cudnnTensorDescriptor;

import static jcuda.jcudnn.cudnnActivationMode.CUDNN_ACTIVATION_CLIPPED_RELU;
import static jcuda.jcudnn.cudnnActivationMode.CUDNN_ACTIVATION_RELU;
import static jcuda.jcudnn.cudnnActivationMode.CUDNN_ACTIVATION_SWISH;
import static jcuda.jcudnn.cudnnConvolutionMode.CUDNN_CROSS_CORRELATION;
import static jcuda.jcudnn.cudnnDataType.CUDNN_DATA_FLOAT;
import static jcuda.jcudnn.cudnnMathType.CUDNN_DEFAULT_MATH;
import static jcuda.jcudnn.cudnnMathType.CUDNN_FMA_MATH;
import static jcuda.jcudnn.cudnnNanPropagation.CUDNN_PROPAGATE_NAN;
import static jcuda.jcudnn.cudnnTensorFormat.CUDNN_TENSOR_NCHW;

/**
 * One cuDNN convolution set up once and run many times (cuDNN's own plan, as a caller who uses cuDNN well would hold
 * it): the tensor, filter and convolution descriptors, the algorithm, and a workspace of the size that algorithm asks
 * for, all made at construction; {@link #run} then only queues cuDNN's calls on the stream it was built for. Which
 * algorithm: {@code cudnnFind*} (cuDNN times its candidates on the device, once) for a plan, or the {@code Get_v7}
 * heuristic for a one-off call. A plan built with its own cuDNN handle needs no lock: runs on different plans (each
 * on its own device stream) go concurrently.
 *
 * <p>Passes, in {@link ConvGeometry}'s forward names: FORWARD {@code y = conv(a = x, b = w)}, BACKWARD_DATA
 * {@code x = conv_transpose(a = y, b = w)} (conv_transpose2d), BACKWARD_FILTER {@code dw = wgrad(a = x, b = dy)}. The
 * first two then add the bias and apply the epilogue as separate cuDNN calls ({@code cudnnAddTensor},
 * {@code cudnnActivationForward} in place): ReLU, ReLU6 (clipped ReLU at 6), SiLU (swish, beta 1), residual before or
 * after; cuDNN's legacy API has no tanh-form GELU.
 */
public final class CudnnPlan implements AutoCloseable {
    /** cuDNN's three passes. */
    public enum Pass { FORWARD, BACKWARD_DATA, BACKWARD_FILTER }

    private final ConvGeometry g;
    private final Pass pass;
    private final Epilogue epilogue;
    private final DeviceArena arena;
    private final JCudaDevice device;
    private final cudnnHandle handle;
    private final boolean ownsHandle;
    private final cudnnTensorDescriptor xDesc, yDesc, bDesc;
    private final cudnnFilterDescriptor wDesc = new cudnnFilterDescriptor();
    private final cudnnConvolutionDescriptor conv = new cudnnConvolutionDescriptor();
    private final cudnnActivationDescriptor act;
    private final int algo;
    private final long workspaceBytes;
    private final DeviceBuffer workspace;
    private final String how;

    /** Null when a cuDNN plan can take this epilogue, otherwise why not. */
    public static String cannotTake(Epilogue epilogue) {
        return epilogue.activation() == Epilogue.Activation.GELU
                ? "cuDNN's legacy API has no tanh-form GELU activation (cudnn plans take none, relu, relu6, silu)" : null;
    }

    /**
     * Sets up {@code pass} of g on {@code arena}'s stream (a JCuda stream). {@code handle}: a handle the caller owns and
     * serialises (null: the plan creates its own); {@code find}: choose the algorithm by cudnnFind (else Get_v7);
     * {@code fmaMath}: CUDNN_FMA_MATH, strict float32 (else CUDNN_DEFAULT_MATH, which may use TF32 tensor cores).
     */
    public CudnnPlan(ConvGeometry g, Pass pass, Epilogue epilogue, DeviceArena arena, cudnnHandle handle, boolean find, boolean fmaMath) {
        String why = cannotTake(epilogue);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        this.g = g;
        this.pass = pass;
        this.epilogue = epilogue;
        this.arena = arena;
        this.device = (JCudaDevice) arena.stream().device();
        this.ownsHandle = handle == null;
        device.makeCurrent();
        try {
            if (ownsHandle) {
                handle = new cudnnHandle();
                JCudnn.cudnnCreate(handle);
            }
            this.handle = handle;
            JCudnn.cudnnSetStream(handle, ((JCudaDevice.JCudaStream) arena.stream()).cudaStream());
            xDesc = tensor(g.n, g.c, g.h, g.w);
            yDesc = tensor(g.n, g.k, g.p, g.q);
            bDesc = tensor(1, g.transposed() ? g.c : g.k, 1, 1);
            JCudnn.cudnnCreateFilterDescriptor(wDesc);
            JCudnn.cudnnSetFilter4dDescriptor(wDesc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k, g.cPerGroup(), g.r, g.s);
            JCudnn.cudnnCreateConvolutionDescriptor(conv);
            JCudnn.cudnnSetConvolution2dDescriptor(conv, g.padTop, g.padLeft, g.strideH, g.strideW, g.dilationH, g.dilationW,
                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
            JCudnn.cudnnSetConvolutionGroupCount(conv, g.groups);
            JCudnn.cudnnSetConvolutionMathType(conv, fmaMath ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
            act = activation(epilogue.activation());
            int[] count = {0};
            long[] ws = {0};
            if (pass == Pass.FORWARD) {
                cudnnConvolutionFwdAlgoPerf[] perf = {new cudnnConvolutionFwdAlgoPerf()};
                if (find) {
                    JCudnn.cudnnFindConvolutionForwardAlgorithm(handle, xDesc, wDesc, conv, yDesc, 1, count, perf);
                } else {
                    JCudnn.cudnnGetConvolutionForwardAlgorithm_v7(handle, xDesc, wDesc, conv, yDesc, 1, count, perf);
                }
                algo = perf[0].algo;
                JCudnn.cudnnGetConvolutionForwardWorkspaceSize(handle, xDesc, wDesc, conv, yDesc, algo, ws);
            } else if (pass == Pass.BACKWARD_DATA) {
                cudnnConvolutionBwdDataAlgoPerf[] perf = {new cudnnConvolutionBwdDataAlgoPerf()};
                if (find) {
                    JCudnn.cudnnFindConvolutionBackwardDataAlgorithm(handle, wDesc, yDesc, conv, xDesc, 1, count, perf);
                } else {
                    JCudnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, wDesc, yDesc, conv, xDesc, 1, count, perf);
                }
                algo = perf[0].algo;
                JCudnn.cudnnGetConvolutionBackwardDataWorkspaceSize(handle, wDesc, yDesc, conv, xDesc, algo, ws);
            } else {
                cudnnConvolutionBwdFilterAlgoPerf[] perf = {new cudnnConvolutionBwdFilterAlgoPerf()};
                if (find) {
                    JCudnn.cudnnFindConvolutionBackwardFilterAlgorithm(handle, xDesc, yDesc, conv, wDesc, 1, count, perf);
                } else {
                    JCudnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, xDesc, yDesc, conv, wDesc, 1, count, perf);
                }
                algo = perf[0].algo;
                JCudnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, xDesc, yDesc, conv, wDesc, algo, ws);
            }
            workspaceBytes = ws[0];
            workspace = arena.allocate(Math.max(1, (ws[0] + 3) / 4));
            how = "cuDNN " + pass.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-') + " algorithm " + algo + " ("
                    + (find ? "cudnnFind, timed on the device at build" : "Get_v7 heuristic") + "), " + (fmaMath ? "FMA math" : "default math (TF32 allowed)")
                    + ", workspace " + workspaceBytes + " bytes";
        } catch (CudaException e) {
            throw new DeviceException("cuDNN plan for " + g + " failed: " + JCudaDevice.firstLine(e.getMessage()), e);
        }
    }

    /** What cuDNN chose: the pass, algorithm, how it was chosen, math and workspace. */
    public String explain() {
        return how;
    }

    /**
     * Queues the pass on the plan's stream: {@code out = epilogue(op(a, b) + bias, residual)} (bias and residual may be
     * null; BACKWARD_FILTER takes neither). Returns at once; the stream's next synchronisation throws cuDNN's errors.
     */
    public void run(DeviceBuffer a, DeviceBuffer b, DeviceBuffer bias, DeviceBuffer residual, DeviceBuffer out) {
        device.makeCurrent();
        Pointer one = Pointer.to(new float[] {1f}), zero = Pointer.to(new float[] {0f});
        Pointer pa = device.pointer(a.handle()), pb = device.pointer(b.handle()), pout = device.pointer(out.handle());
        Pointer pws = device.pointer(workspace.handle());
        try {
            if (pass == Pass.BACKWARD_FILTER) {
                JCudnn.cudnnConvolutionBackwardFilter(handle, one, xDesc, pa, yDesc, pb, conv, algo, pws, workspaceBytes, zero, wDesc, pout);
                return;
            }
            cudnnTensorDescriptor outDesc = pass == Pass.FORWARD ? yDesc : xDesc;
            if (pass == Pass.FORWARD) {
                JCudnn.cudnnConvolutionForward(handle, one, xDesc, pa, wDesc, pb, conv, algo, pws, workspaceBytes, zero, yDesc, pout);
            } else {
                JCudnn.cudnnConvolutionBackwardData(handle, one, wDesc, pb, yDesc, pa, conv, algo, pws, workspaceBytes, zero, xDesc, pout);
            }
            if (bias != null) {
                JCudnn.cudnnAddTensor(handle, one, bDesc, device.pointer(bias.handle()), one, outDesc, pout);
            }
            if (residual != null && epilogue.residual() == Epilogue.Residual.BEFORE_ACTIVATION) {
                JCudnn.cudnnAddTensor(handle, one, outDesc, device.pointer(residual.handle()), one, outDesc, pout);
            }
            if (act != null) {
                JCudnn.cudnnActivationForward(handle, act, one, outDesc, pout, zero, outDesc, pout);
            }
            if (residual != null && epilogue.residual() == Epilogue.Residual.AFTER_ACTIVATION) {
                JCudnn.cudnnAddTensor(handle, one, outDesc, device.pointer(residual.handle()), one, outDesc, pout);
            }
        } catch (CudaException e) {
            throw new DeviceException("cuDNN failed on " + g + ": " + JCudaDevice.firstLine(e.getMessage()), e);
        }
    }

    @Override
    public void close() {
        device.makeCurrent();
        workspace.close();
        JCudnn.cudnnDestroyTensorDescriptor(xDesc);
        JCudnn.cudnnDestroyTensorDescriptor(yDesc);
        JCudnn.cudnnDestroyTensorDescriptor(bDesc);
        JCudnn.cudnnDestroyFilterDescriptor(wDesc);
        JCudnn.cudnnDestroyConvolutionDescriptor(conv);
        if (act != null) {
            JCudnn.cudnnDestroyActivationDescriptor(act);
        }
        if (ownsHandle) {
            arena.stream().synchronize(); // the handle's queued work is done before it goes
            JCudnn.cudnnDestroy(handle);
        }
    }

    private static cudnnActivationDescriptor activation(Epilogue.Activation a) {
        if (a == Epilogue.Activation.NONE) {
            return null;
        }
        cudnnActivationDescriptor d = new cudnnActivationDescriptor();
        JCudnn.cudnnCreateActivationDescriptor(d);
        switch (a) {
            case RELU -> JCudnn.cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0);
            case RELU6 -> JCudnn.cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_CLIPPED_RELU, CUDNN_PROPAGATE_NAN, 6.0);
            case SILU -> {
                JCudnn.cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_SWISH, CUDNN_PROPAGATE_NAN, 0.0);
                JCudnn.cudnnSetActivationDescriptorSwishBeta(d, 1.0);
            }
            default -> throw new IllegalArgumentException(cannotTake(Epilogue.of(a)));
        }
        return d;
    }

    private static cudnnTensorDescriptor tensor(int n, int c, int h, int w) {
        cudnnTensorDescriptor d = new cudnnTensorDescriptor();
        JCudnn.cudnnCreateTensorDescriptor(d);
        JCudnn.cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w);
        return d;
    }
}
