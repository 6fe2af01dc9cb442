package io.github.jconv.cuda;

import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;

/**
 * im2col's GEMM through cuBLAS (JCublas 12.6, which needs libcublas.so.12: present with a CUDA 12 toolkit or
 * runtime, absent on CUDA-13-only hosts). Where it does not load, {@link #run} declines and the caller runs
 * our own sgemm.cu. cuBLAS is column-major: the row-major C = A * B is computed as C^T = B^T * A^T.
 */
final class CublasGemm {
    private static volatile boolean probed;
    private static volatile String unavailable;
    private static cublasHandle handle;

    private CublasGemm() {
    }

    /** Null when cuBLAS is usable on the cuda backend's device, otherwise why not. */
    static synchronized String unavailableReason() {
        if (!probed) {
            unavailable = JCudaDevice.startLibrary("cuBLAS", "libcublas.so.12 needs CUDA 12", () -> {
                JCublas2.setExceptionsEnabled(true);
                cublasHandle h = new cublasHandle();
                JCublas2.cublasCreate(h);
                handle = h;
            });
            probed = true;
        }
        return unavailable;
    }

    /**
     * C[m x n] (+)= A * B as {@link SgemmLauncher#run}; returns false (nothing done) when the device is not the
     * JCuda GPU 0 (the handle's), cuBLAS is unavailable, or a stride pattern cuBLAS cannot express is asked for.
     */
    static boolean run(DeviceArena arena, int m, int n, int k, DeviceBuffer a, long aOff, int aRow, int aCol,
                       DeviceBuffer b, long bOff, int bRow, int bCol, DeviceBuffer c, long cOff, int ldc, boolean accumulate) {
        if (!(arena.stream() instanceof JCudaDevice.JCudaStream) || unavailableReason() != null || (aCol != 1 && aRow != 1)
                || (bCol != 1 && bRow != 1)) {
            return false;
        }
        JCudaDevice.JCudaStream stream = (JCudaDevice.JCudaStream) arena.stream();
        JCudaDevice device = (JCudaDevice) stream.device();
        if (device != JCudaDevice.get()) {
            return false; // the handle belongs to GPU 0's context: other GPUs run our own sgemm.cu
        }
        // B^T (n x k, column-major): B row-major (bCol == 1) is B^T column-major with ld bRow; else op T, ld bCol.
        int opB = bCol == 1 ? cublasOperation.CUBLAS_OP_N : cublasOperation.CUBLAS_OP_T;
        int ldb = Math.max(1, bCol == 1 ? bRow : bCol);
        int opA = aCol == 1 ? cublasOperation.CUBLAS_OP_N : cublasOperation.CUBLAS_OP_T;
        int lda = Math.max(1, aCol == 1 ? aRow : aCol);
        synchronized (CublasGemm.class) { // one handle: its stream is set for each call, which only queues work
            device.makeCurrent();
            try {
                JCublas2.cublasSetStream(handle, stream.cudaStream());
                JCublas2.cublasSgemm(handle, opB, opA, n, m, k, Pointer.to(new float[] {1f}),
                        device.pointer(b.handle()).withByteOffset(4 * bOff), ldb,
                        device.pointer(a.handle()).withByteOffset(4 * aOff), lda, Pointer.to(new float[] {accumulate ? 1f : 0f}),
                        device.pointer(c.handle()).withByteOffset(4 * cOff), ldc);
            } catch (CudaException e) {
                throw new DeviceException("cublasSgemm " + m + "x" + n + "x" + k + " failed: " + JCudaDevice.firstLine(e.getMessage()), e);
            }
        }
        return true;
    }
}
