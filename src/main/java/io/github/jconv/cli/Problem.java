package io.github.jconv.cli;

import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.SampleData;

import java.util.List;

/**
 * A benchmark/verification problem from the CLI's shape string {@code N,C,H,W,K,R,S,stride,pad,dilation,groups}:
 * PyTorch's {@code Conv2d(C, K, (R, S), ...)} (or {@code ConvTranspose2d(C, K, ...)}) applied to an N x C x H x W input.
 */
public final class Problem {
    /** The default suite: ResNet-50-like 3x3 and 1x1 layers, the strided 7x7 stem, dilated, grouped, depthwise. */
    static final List<String> DEFAULT_SUITE = List.of(
            "1,3,224,224,64,7,7,2,3,1,1",
            "1,64,56,56,64,3,3,1,1,1,1",
            "1,64,56,56,256,1,1,1,0,1,1",
            "1,128,56,56,128,3,3,2,1,1,1",
            "1,256,14,14,256,3,3,1,1,1,1",
            "1,128,28,28,128,3,3,1,2,2,1",
            "1,256,28,28,256,3,3,1,1,1,32",
            "1,128,56,56,128,3,3,1,1,1,128");

    /** `--suite NAME`: every distinct conv layer of ResNet-50 (batch 8, 224 x 224 input). */
    static final List<String> RESNET50 = List.of(
            "8,3,224,224,64,7,7,2,3,1,1", "8,64,56,56,64,1,1,1,0,1,1", "8,64,56,56,64,3,3,1,1,1,1",
            "8,64,56,56,256,1,1,1,0,1,1", "8,256,56,56,64,1,1,1,0,1,1", "8,256,56,56,128,1,1,1,0,1,1",
            "8,128,56,56,128,3,3,2,1,1,1", "8,128,28,28,512,1,1,1,0,1,1", "8,256,56,56,512,1,1,2,0,1,1",
            "8,512,28,28,128,1,1,1,0,1,1", "8,128,28,28,128,3,3,1,1,1,1", "8,512,28,28,256,1,1,1,0,1,1",
            "8,256,28,28,256,3,3,2,1,1,1", "8,256,14,14,1024,1,1,1,0,1,1", "8,512,28,28,1024,1,1,2,0,1,1",
            "8,1024,14,14,256,1,1,1,0,1,1", "8,256,14,14,256,3,3,1,1,1,1", "8,1024,14,14,512,1,1,1,0,1,1",
            "8,512,14,14,512,3,3,2,1,1,1", "8,512,7,7,2048,1,1,1,0,1,1", "8,1024,14,14,2048,1,1,2,0,1,1",
            "8,2048,7,7,512,1,1,1,0,1,1", "8,512,7,7,512,3,3,1,1,1,1");
    /** MobileNet-v2-like depthwise 3x3 and pointwise 1x1 pairs. */
    static final List<String> MOBILENET = List.of(
            "8,32,112,112,32,3,3,1,1,1,32", "8,32,112,112,16,1,1,1,0,1,1", "8,96,112,112,96,3,3,2,1,1,96",
            "8,96,56,56,24,1,1,1,0,1,1", "8,144,56,56,144,3,3,1,1,1,144", "8,144,56,56,24,1,1,1,0,1,1",
            "8,192,28,28,192,3,3,1,1,1,192", "8,192,28,28,32,1,1,1,0,1,1", "8,384,14,14,384,3,3,1,1,1,384",
            "8,384,14,14,64,1,1,1,0,1,1", "8,960,7,7,960,3,3,1,1,1,960", "8,960,7,7,160,1,1,1,0,1,1");
    /** DeepLab-style atrous 3x3 layers (dilation 2, 4, 8; padding = dilation) and their 1x1 projection. */
    static final List<String> DILATED = List.of(
            "8,256,33,33,256,3,3,1,2,2,1", "8,256,33,33,256,3,3,1,4,4,1", "8,256,33,33,256,3,3,1,8,8,1",
            "8,1280,33,33,256,1,1,1,0,1,1");
    /** Decoder / upsampling layers: ConvTranspose2d(C, K, 4, stride 2, padding 1), each doubling H and W. */
    static final List<String> TRANSPOSE = List.of(
            "8,512,7,7,256,4,4,2,1,1,1", "8,256,14,14,128,4,4,2,1,1,1", "8,128,28,28,64,4,4,2,1,1,1",
            "8,64,56,56,32,4,4,2,1,1,1", "8,32,112,112,3,3,3,1,1,1,1");

    /** The shapes of a named suite; `transpose` is conv_transpose2d, the others conv2d. */
    static List<String> suite(String name) {
        switch (name) {
            case "default": return DEFAULT_SUITE;
            case "resnet50": return RESNET50;
            case "mobilenet": return MOBILENET;
            case "dilated": return DILATED;
            case "transpose": return TRANSPOSE;
            default:
                throw new InvalidConvolutionException("--suite: expected default, resnet50, mobilenet, dilated or transpose, got '"
                        + name + "'");
        }
    }

    /** The shape string with its batch (first field) replaced. */
    static String withBatch(String shape, int batch) {
        return batch + shape.substring(shape.indexOf(','));
    }

    final String label;
    final ConvGeometry geometry;

    /** The checked geometry (for peers outside this package). */
    public ConvGeometry geometry() {
        return geometry;
    }

    private Problem(String label, ConvGeometry geometry) {
        this.label = label;
        this.geometry = geometry;
    }

    static Problem parse(String text, ConvGeometry.Op op) {
        return parse(text, op, true);
    }

    /** The layer with or without a bias (the bench always times one; explain matches what a call passes). */
    static Problem parse(String text, ConvGeometry.Op op, boolean bias) {
        String[] parts = text.split(",");
        if (parts.length != 11) {
            throw new InvalidConvolutionException("--shape: expected 11 integers N,C,H,W,K,R,S,stride,pad,dilation,groups, got '"
                    + text + "'");
        }
        int[] v = new int[11];
        for (int i = 0; i < 11; i++) {
            try {
                v[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new InvalidConvolutionException("--shape: '" + parts[i].trim() + "' in '" + text + "' is not an integer");
            }
        }
        int n = v[0], c = v[1], h = v[2], w = v[3], k = v[4], r = v[5], s = v[6], groups = v[10];
        ConvSpec spec = ConvSpec.builder().stride(v[7]).padding(v[8]).dilation(v[9]).groups(groups).build();
        if (k % groups != 0) {
            throw new InvalidConvolutionException("--shape '" + text + "': groups=" + groups + " must divide K=" + k);
        }
        int[] x = {n, c, h, w};
        ConvGeometry g = op == ConvGeometry.Op.CONV2D
                ? ConvGeometry.conv2d(x, new int[] {k, c / groups, r, s}, bias ? new int[] {k} : null, spec)
                : ConvGeometry.convTranspose2d(x, new int[] {c, k / groups, r, s}, bias ? new int[] {k} : null, spec);
        return new Problem(text, g);
    }

    /** Gaussian input, weight and bias (fixed seed) of the right sizes: {input, weight, bias} ({@link SampleData}). */
    float[][] randomData(long seed) {
        return SampleData.of(geometry, seed);
    }
}
