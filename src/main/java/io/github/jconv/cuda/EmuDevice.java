package io.github.jconv.cuda;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * jconv's CUDA kernels compiled for the CPU (scripts/build-emu.sh): the blocks of a launch run one after
 * another, the threads of a block as cooperative fibers with real __syncthreads() barriers. Every
 * allocation has guard zones that are checked after each launch, so a kernel writing out of bounds fails
 * with its name. Streams are emulated too: each has a worker thread that runs its queue in order while the
 * caller goes on, and its staging buffer is emulated device memory, so host code that reads a result before
 * synchronising, or frees a buffer too early, fails here as it would on a GPU. Slow by design; it exists so
 * every kernel and the host code around it run in CI without a GPU.
 */
public final class EmuDevice implements DeviceApi {
    public static final EmuDevice INSTANCE = new EmuDevice(DeviceStream.DEFAULT_MAX_STAGING);
    private static final AtomicInteger WORKERS = new AtomicInteger();

    private final long maxStagingBytes;
    private final StreamPool<EmuStream> pool = new StreamPool<>();

    private EmuDevice(long maxStagingBytes) {
        this.maxStagingBytes = maxStagingBytes;
    }

    /** An emulated device whose streams stage at most {@code bytes} at a time (tests of chunked copies). */
    static EmuDevice withMaxStaging(long bytes) {
        return new EmuDevice(bytes);
    }

    /** Null when the emulation library is loaded, otherwise why not. */
    public static String unavailableReason() {
        return EmuNative.loadError();
    }

    @Override
    public int computeCapability() {
        return 90;
    }

    @Override
    public String describe() {
        return "CPU emulation of jconv's CUDA kernels (" + EmuNative.kernels().length + " kernels, guard-checked memory)";
    }

    @Override
    public DeviceStream openStream() {
        return pool.take(EmuStream::new);
    }

    /** Idle streams kept for reuse (for tests). */
    int idleStreams() {
        return pool.idle();
    }

    private final class EmuStream extends DeviceStream {
        private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "jconv-emu-stream-" + WORKERS.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        private long staging;
        private Future<?> last;
        private volatile RuntimeException failure;
        private final java.util.Map<Long, Long> stamps = new java.util.concurrent.ConcurrentHashMap<>();
        private final java.util.concurrent.atomic.AtomicLong nextStamp = new java.util.concurrent.atomic.AtomicLong(1);

        EmuStream() {
            super(maxStagingBytes);
        }

        /** Runs {@code op} on the worker after what is queued; skipped after a failure unless {@code always}. */
        private void queue(boolean always, Runnable op) {
            last = worker.submit(() -> {
                if (failure != null && !always) {
                    return;
                }
                try {
                    op.run();
                } catch (RuntimeException e) {
                    if (failure == null) {
                        failure = e;
                    }
                }
            });
        }

        @Override
        long allocate(long bytes) {
            return EmuNative.alloc(Math.max(bytes, 1));
        }

        @Override
        void free(long handle) {
            queue(true, () -> EmuNative.free(handle));
        }

        @Override
        void launch(String name, int[] grid, int[] block, int[] params, long[] handles, long[] offsets) {
            long[] pointers = new long[handles.length];
            for (int i = 0; i < handles.length; i++) {
                pointers[i] = handles[i] + offsets[i];
            }
            int[] gridCopy = grid.clone(), blockCopy = block.clone(), paramsCopy = params.clone();
            queue(false, () -> EmuNative.launch(name, gridCopy, blockCopy, paramsCopy, pointers));
        }

        @Override
        DeviceApi device() {
            return EmuDevice.this;
        }

        @Override
        protected void allocateStaging(long bytes) {
            staging = EmuNative.alloc(bytes);
        }

        @Override
        protected void freeStaging() {
            EmuNative.free(staging);
        }

        @Override
        protected void stage(long stagingOffset, float[] src, int srcOffset, int count) {
            EmuNative.copyToDevice(staging + stagingOffset, src, srcOffset, count);
        }

        @Override
        protected void unstage(float[] dst, int dstOffset, long stagingOffset, int count) {
            EmuNative.copyToHost(dst, dstOffset, staging + stagingOffset, count);
        }

        @Override
        protected void stage(long stagingOffset, short[] src, int srcOffset, int count) {
            EmuNative.copyShortsToDevice(staging + stagingOffset, src, srcOffset, count);
        }

        @Override
        protected void unstage(short[] dst, int dstOffset, long stagingOffset, int count) {
            EmuNative.copyShortsToHost(dst, dstOffset, staging + stagingOffset, count);
        }

        @Override
        protected void queueToDevice(long handle, long byteOffset, long stagingOffset, long bytes) {
            long from = staging + stagingOffset;
            queue(false, () -> EmuNative.copy(handle + byteOffset, from, bytes));
        }

        @Override
        protected void queueToHost(long stagingOffset, long handle, long byteOffset, long bytes) {
            long to = staging + stagingOffset;
            queue(false, () -> EmuNative.copy(to, handle + byteOffset, bytes));
        }

        @Override
        protected void waitIdle() {
            if (last != null) {
                try {
                    last.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new DeviceException("interrupted while waiting for the emulated stream", e);
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new DeviceException("emulated stream failed: " + e.getCause(), e.getCause());
                }
                last = null;
            }
            RuntimeException f = failure;
            if (f != null) {
                failure = null;
                throw f instanceof DeviceException ? new DeviceException(f.getMessage(), f) : f;
            }
        }

        @Override
        public long recordEvent() {
            long id = nextStamp.getAndIncrement();
            queue(true, () -> stamps.put(id, System.nanoTime()));
            return id;
        }

        @Override
        public double elapsedMs(long start, long end) {
            synchronize();
            Long a = stamps.remove(start), b = stamps.remove(end);
            if (a == null || b == null) {
                throw new DeviceException("unknown or already used event " + (a == null ? start : end));
            }
            return (b - a) / 1e6;
        }

        @Override
        protected void release() {
            pool.give(this);
        }

        @Override
        protected void destroyQueue() {
            worker.shutdown();
        }
    }
}
