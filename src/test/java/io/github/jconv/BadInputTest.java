package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every bad input of the foundation issue, through the API: a one-line message that names the problem. */
class BadInputTest {
    private static Tensor t(int... shape) {
        return Tensor.zeros(shape);
    }

    private static <E extends RuntimeException> void fails(Class<E> type, String fragment, Executable e) {
        E ex = assertThrows(type, e);
        assertTrue(ex.getMessage().contains(fragment), () -> "'" + ex.getMessage() + "' lacks '" + fragment + "'");
        assertTrue(!ex.getMessage().contains("\n"), "one line: " + ex.getMessage());
    }

    private static void invalid(String fragment, Executable e) {
        fails(InvalidConvolutionException.class, fragment, e);
    }

    @Test
    void wrongChannelCount() {
        invalid("input has C=3 channels but the weight expects 4 (weight.shape[1]=4 x groups=1)",
                () -> Jconv.conv2d(t(1, 3, 8, 8), t(2, 4, 3, 3), null, ConvSpec.defaults()));
        invalid("input has C_in=3 channels but the conv_transpose2d weight has 4",
                () -> Jconv.convTranspose2d(t(1, 3, 8, 8), t(4, 2, 3, 3), null, ConvSpec.defaults()));
    }

    @Test
    void groupsNotDividingChannels() {
        invalid("groups=2 must divide the input channels C=3",
                () -> Jconv.conv2d(t(1, 3, 8, 8), t(4, 1, 3, 3), null, ConvSpec.builder().groups(2).build()));
        invalid("groups=2 must divide the output channels K=3",
                () -> Jconv.conv2d(t(1, 4, 8, 8), t(3, 2, 3, 3), null, ConvSpec.builder().groups(2).build()));
        invalid("groups=2 must divide the input channels C_in=3",
                () -> Jconv.convTranspose2d(t(1, 3, 8, 8), t(3, 2, 3, 3), null, ConvSpec.builder().groups(2).build()));
    }

    @Test
    void kernelLargerThanPaddedInput() {
        invalid("kernel height 5 (dilation 2 x (3 - 1) + 1) is larger than the padded input height 4 (2 + padding 1 + 1)",
                () -> Jconv.conv2d(t(1, 1, 2, 9), t(1, 1, 3, 3), null, ConvSpec.builder().padding(1).dilation(2).build()));
        invalid("kernel width 4", () -> Jconv.conv2d(t(1, 1, 9, 3), t(1, 1, 1, 4), null, ConvSpec.defaults()));
    }

    @Test
    void strideDilationPaddingOutputPadding() {
        invalid("stride must be >= 1, got 0", () -> ConvSpec.builder().stride(0).build());
        invalid("dilation must be >= 1, got 0", () -> ConvSpec.builder().dilation(0).build());
        invalid("padding top must be >= 0, got -1", () -> Padding.of(-1, 0));
        invalid("output_padding (1, 1) must be smaller than max(stride, dilation) = (1, 1)",
                () -> ConvSpec.builder().outputPadding(1).build());
    }

    @Test
    void shapesAndBias() {
        invalid("input must have 4 dimensions (N, C, H, W), got shape [3, 8, 8]",
                () -> Jconv.conv2d(t(3, 8, 8), t(1, 3, 3, 3), null, ConvSpec.defaults()));
        invalid("weight must have 4 dimensions", () -> Jconv.conv2d(t(1, 3, 8, 8), t(3, 3, 3), null, ConvSpec.defaults()));
        invalid("bias must have shape [2] (K (output channels)), got [3]",
                () -> Jconv.conv2d(t(1, 3, 8, 8), t(2, 3, 3, 3), t(3), ConvSpec.defaults()));
        invalid("bias must have shape [6] (C_out (output channels)), got [3]",
                () -> Jconv.convTranspose2d(t(1, 3, 8, 8), t(3, 6, 3, 3), t(3), ConvSpec.defaults()));
        invalid("input has an empty dimension: shape [1, 0, 8, 8] (only the batch N may be 0)",
                () -> Jconv.conv2d(t(1, 0, 8, 8), t(2, 0, 3, 3), null, ConvSpec.defaults()));
        invalid("tensor of shape [2, 2] needs 4 elements, got an array of 3", () -> Tensor.of(new float[3], 2, 2));
        invalid("conv_transpose2d padding 'same' (output = input x stride = 4) along the height needs padding -1 at the start",
                () -> Jconv.convTranspose2d(t(1, 1, 2, 2), t(1, 1, 1, 1), null, ConvSpec.builder().stride(2).padding(Padding.same()).build()));
        invalid("conv_transpose2d output would be -1 x 2",
                () -> Jconv.convTranspose2d(t(1, 1, 1, 1), t(1, 1, 2, 2), null, ConvSpec.builder().padding(Padding.of(3, 0, 0, 0)).build()));
    }

    @Test
    void unknownOrUnavailableBackendAndAlgorithm() {
        invalid("unknown backend 'tpu'; known: auto, cuda, cpu, cuda-emu, cudnn",
                () -> Jconv.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), null, ConvSpec.defaults(), ConvOptions.defaults().withBackend("tpu")));
        invalid("unknown algorithm 'fft'; known: auto, reference, direct, im2col, implicit-gemm, kernel-matrix, depthwise, winograd, vendor",
                () -> Algorithm.parse("fft"));
        if (!TestSupport.gpuPresent()) {
            fails(BackendUnavailableException.class, "backend 'cuda' not available: ",
                    () -> Jconv.conv2d(t(1, 1, 4, 4), t(1, 1, 3, 3), null, ConvSpec.defaults(), ConvOptions.defaults().withBackend("cuda")));
        }
        invalid("algorithm 'depthwise' cannot run this conv2d on backend 'cpu': depthwise needs groups == input channels",
                () -> Jconv.conv2d(t(1, 2, 4, 4), t(1, 2, 3, 3), null, ConvSpec.defaults(),
                        ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.DEPTHWISE)));
        invalid("kernel-matrix needs a 16384 x 16384 matrix",
                () -> Jconv.conv2d(t(1, 1, 128, 128), t(1, 1, 1, 1), null, ConvSpec.defaults(),
                        ConvOptions.defaults().withBackend("cpu").withAlgorithm(Algorithm.KERNEL_MATRIX)));
        invalid("threads must be between 0 (all cores) and ", () -> ConvOptions.defaults().withThreads(-1));
        invalid("(8 per core, at least 64), got 40000", () -> ConvOptions.defaults().withThreads(40000));
    }
}
