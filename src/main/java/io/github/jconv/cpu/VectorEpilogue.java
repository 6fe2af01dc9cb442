package io.github.jconv.cpu;

import io.github.jconv.Epilogue;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused epilogue over a finished run of the output on the Vector API (loaded only when that module is present,
 * {@link Sgemm#VECTOR}): ReLU and ReLU6 as a compare and blend, so NaN stays NaN and -0 stays -0 exactly as
 * {@link Epilogue#activate(Epilogue.Activation, float)} computes them, with the residual added before or after. SiLU
 * and GELU (exp and tanh per element) take {@link Epilogue#applyInPlace}. Measured: ResNet-50's 64 -> 256 1x1 layer at
 * 56x56, batch 1, with ReLU took 2.86 ms against 0.85 ms without (the per-element loop of {@code applyInPlace}).
 */
final class VectorEpilogue {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorEpilogue() {
    }

    static void apply(Epilogue e, float[] out, float[] res, int from, int to) {
        Epilogue.Activation a = e.activation();
        if (a != Epilogue.Activation.NONE && a != Epilogue.Activation.RELU && a != Epilogue.Activation.RELU6) {
            e.applyInPlace(out, res, from, to);
            return;
        }
        boolean before = e.residual() == Epilogue.Residual.BEFORE_ACTIVATION, after = e.residual() == Epilogue.Residual.AFTER_ACTIVATION;
        int i = from;
        FloatVector zero = FloatVector.zero(S), six = FloatVector.broadcast(S, 6f);
        for (int end = to - S.length(); i <= end; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, out, i);
            if (before) {
                v = v.add(FloatVector.fromArray(S, res, i));
            }
            if (a != Epilogue.Activation.NONE) {
                v = v.blend(zero, v.compare(VectorOperators.LT, 0f));
                if (a == Epilogue.Activation.RELU6) {
                    v = v.blend(six, v.compare(VectorOperators.GT, 6f));
                }
            }
            if (after) {
                v = v.add(FloatVector.fromArray(S, res, i));
            }
            v.intoArray(out, i);
        }
        e.applyInPlace(out, res, i, to);
    }
}
