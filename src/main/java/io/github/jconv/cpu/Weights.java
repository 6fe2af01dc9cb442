package io.github.jconv.cpu;

import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Consumer;

/**
 * A convolution's weights as the CPU kernels read them: the array in PyTorch's layout ({@link #raw}) and the forms an
 * algorithm rearranges it into (packed blocks, flipped taps). For a stateless call ({@link #of}) every form is rebuilt in
 * the calling thread's workspace on each call; a plan's weights ({@link #kept}) build each form once, on the first run
 * that needs it, and keep it, so later runs only compute. A plan has one algorithm and one geometry, so each kind of form
 * has one shape; asking for another size is a programming error.
 *
 * <p>Threads: a kept form is built under the object's lock and published through a volatile field (an atomic array
 * element), so concurrent first runs build it once and every run reads a complete array.
 */
public final class Weights {
    /** The packed form an algorithm's kernel reads. */
    private static final int PACKED = 0;
    /** Winograd's transformed weights: a second form, so its fallback to the direct kernel finds its own packed one. */
    private static final int TRANSFORMED = 1;

    final float[] raw;
    private final boolean kept;
    private final AtomicReferenceArray<float[]> forms = new AtomicReferenceArray<>(2);
    private volatile Weights derived;

    private Weights(float[] raw, boolean kept) {
        this.raw = raw;
        this.kept = kept;
    }

    /** The caller's array for one call (not copied; forms are rebuilt per call). */
    static Weights of(float[] raw) {
        return new Weights(raw, false);
    }

    /** A plan's weights: {@code raw} is owned by the plan from now on (pass a copy) and every form is built once. */
    public static Weights kept(float[] raw) {
        return new Weights(raw, true);
    }

    /** Bytes held in built forms (0 until a run has built them, and always 0 for a per-call object). */
    public long packedBytes() {
        long bytes = 0;
        for (int i = 0; i < forms.length(); i++) {
            float[] f = forms.get(i);
            bytes += f == null ? 0 : 4L * f.length;
        }
        Weights d = derived;
        return bytes + (d == null ? 0 : 4L * d.raw.length + d.packedBytes());
    }

    /** The packed form of {@code size} floats that {@code pack} writes (per call: in the thread's weight workspace). */
    float[] packed(long size, Consumer<float[]> pack) {
        return form(PACKED, size, pack);
    }

    /**
     * The transformed form (Winograd's) of {@code size} floats that {@code transform} writes; per call in the thread's
     * weight workspace like {@link #packed}, so a call that gives it up for another algorithm's packed form may reuse it.
     */
    float[] transformed(long size, Consumer<float[]> transform) {
        return form(TRANSFORMED, size, transform);
    }

    private float[] form(int kind, long size, Consumer<float[]> build) {
        if (!kept) {
            float[] p = Workspace.get(Workspace.WEIGHTS, size);
            build.accept(p);
            return p;
        }
        float[] p = forms.get(kind);
        if (p == null) {
            synchronized (this) {
                p = forms.get(kind);
                if (p == null) {
                    p = new float[Math.toIntExact(size)];
                    build.accept(p);
                    forms.set(kind, p);
                }
            }
        }
        return requireSize(p, size);
    }

    /**
     * Weights rearranged into another layout of {@code size} floats (e.g. flipped taps), themselves packable (per call: in
     * the thread's matrix workspace).
     */
    Weights derived(long size, Consumer<float[]> fill) {
        if (!kept) {
            float[] d = Workspace.get(Workspace.MATRIX, size);
            fill.accept(d);
            return of(d);
        }
        Weights d = derived;
        if (d == null) {
            synchronized (this) {
                d = derived;
                if (d == null) {
                    float[] a = new float[Math.toIntExact(size)];
                    fill.accept(a);
                    d = new Weights(a, true);
                    derived = d;
                }
            }
        }
        requireSize(d.raw, size);
        return d;
    }

    private static float[] requireSize(float[] form, long size) {
        if (form.length != size) {
            throw new IllegalStateException("kept weights were built as " + form.length + " floats, this run needs " + size
                    + ": a plan's weights serve one algorithm and geometry");
        }
        return form;
    }
}
