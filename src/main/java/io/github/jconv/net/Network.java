package io.github.jconv.net;

import io.github.jconv.Algorithm;
import io.github.jconv.ChannelConcat;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.ConvSpec;
import io.github.jconv.Device;
import io.github.jconv.DeviceTensor;
import io.github.jconv.Epilogue;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.MathMode;
import io.github.jconv.Dtype;
import io.github.jconv.MaxPool2d;
import io.github.jconv.Tensor;
import io.github.jconv.cpu.Parallel;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.Random;

/**
 * The convolution trunk of a real network with seeded weights, to run end to end on a {@link Device}: every
 * convolution in order with BatchNorm folded into its weights and bias, ReLU / ReLU6 and the residual adds fused into
 * the convolutions' epilogues, strides and downsample branches as in the real network.
 *
 * <ul>
 *   <li>{@code resnet50}: torchvision's ResNet-50 (v1.5: the stride on the 3x3 convolution): the 7x7 stem, its 3x3
 *       stride-2 max pool, 16 bottlenecks (3, 4, 6, 3) with their downsample projections: 53 convolutions. Left out:
 *       the global average pool and the classifier. Output N x 2048 x H/32 x W/32.</li>
 *   <li>{@code mobilenetv2}: torchvision's MobileNetV2 features: the 3x3 stride-2 stem, 17 inverted residual blocks
 *       (expansion 1x1 + ReLU6, depthwise 3x3 + ReLU6, linear projection, the residual add when shapes allow) and the
 *       final 1x1 to 1280 + ReLU6: 52 convolutions. Left out: pooling and the classifier. Output N x 1280 x H/32 x W/32.</li>
 * </ul>
 * Weights: He-normal, BatchNorm statistics and affine parameters drawn from the seed (the last BatchNorm of each
 * residual branch scaled down, as "zero-init residual" training leaves it, so activations stay bounded through the
 * depth), folded: w' = w * gamma / sqrt(var + 1e-5), b' = beta - mean * gamma / sqrt(var + 1e-5).
 */
public final class Network {
    /** One step of the trunk; its output is tensor (its index + 1); tensor 0 is the input. */
    public abstract static class Layer {
        final String name;
        final int input;

        Layer(String name, int input) {
            this.name = name;
            this.input = input;
        }

        public String name() {
            return name;
        }
    }

    /** A convolution with its folded weights and fused epilogue; {@code residual} is a tensor index or -1. */
    public static final class Conv extends Layer {
        final ConvGeometry geometry;
        final ConvSpec spec;
        final Tensor weight, bias;
        final Epilogue epilogue;
        final int residual;

        Conv(String name, int input, ConvGeometry geometry, ConvSpec spec, Tensor weight, Tensor bias, Epilogue epilogue, int residual) {
            super(name, input);
            this.geometry = geometry;
            this.spec = spec;
            this.weight = weight;
            this.bias = bias;
            this.epilogue = epilogue;
            this.residual = residual;
        }

        public ConvGeometry geometry() {
            return geometry;
        }

        public Tensor weight() {
            return weight;
        }

        public Tensor bias() {
            return bias;
        }

        public Epilogue epilogue() {
            return epilogue;
        }

        /** The tensor index added as the residual, or -1. */
        public int residual() {
            return residual;
        }

        public int input() {
            return input;
        }
    }

    /** Max pooling (square window). */
    public static final class Pool extends Layer {
        final int kernel, stride, padding;

        Pool(String name, int input, int kernel, int stride, int padding) {
            super(name, input);
            this.kernel = kernel;
            this.stride = stride;
            this.padding = padding;
        }

        public int kernel() {
            return kernel;
        }

        public int stride() {
            return stride;
        }

        public int padding() {
            return padding;
        }

        public int input() {
            return input;
        }
    }

    private final String name;
    private final List<Layer> layers = new ArrayList<>();
    private final List<int[]> shapes = new ArrayList<>(); // of every tensor: 0 the input, i + 1 layer i's output
    private final Random rnd;

    private Network(String name, int[] input, long seed) {
        this.name = name;
        this.rnd = new Random(seed);
        shapes.add(input);
    }

    /** {@code resnet50} or {@code mobilenetv2} on N x 3 x size x size inputs (size a multiple of 32, at least 32). */
    public static Network named(String name, int batch, int size, long seed) {
        if (batch < 1 || size < 32 || size % 32 != 0) {
            throw new InvalidConvolutionException("network input: batch >= 1 and a size that is a multiple of 32 (at least 32), got batch "
                    + batch + ", size " + size);
        }
        switch (name.toLowerCase(Locale.ROOT)) {
            case "resnet50": return resnet50(batch, size, seed);
            case "mobilenetv2": return mobilenetV2(batch, size, seed);
            default: throw new InvalidConvolutionException("--network: expected resnet50 or mobilenetv2, got '" + name + "'");
        }
    }

    static Network resnet50(int batch, int size, long seed) {
        Network n = new Network("resnet50", new int[] {batch, 3, size, size}, seed);
        int t = n.conv("conv1", 0, 64, 7, 2, 3, 1, Epilogue.Activation.RELU, -1, 1.0);
        t = n.pool("maxpool", t, 3, 2, 1);
        int[][] stages = {{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}};
        for (int s = 0; s < stages.length; s++) {
            int width = stages[s][0];
            for (int b = 0; b < stages[s][1]; b++) {
                String p = "layer" + (s + 1) + "." + b + ".";
                int stride = b == 0 ? stages[s][2] : 1;
                int in = t;
                int shortcut = in;
                if (b == 0) {
                    shortcut = n.conv(p + "downsample", in, 4 * width, 1, stride, 0, 1, Epilogue.Activation.NONE, -1, 1.0);
                }
                int a = n.conv(p + "conv1", in, width, 1, 1, 0, 1, Epilogue.Activation.RELU, -1, 1.0);
                int c = n.conv(p + "conv2", a, width, 3, stride, 1, 1, Epilogue.Activation.RELU, -1, 1.0);
                t = n.conv(p + "conv3", c, 4 * width, 1, 1, 0, 1, Epilogue.Activation.RELU, shortcut, 0.25); // relu(bn3 + shortcut)
            }
        }
        return n;
    }

    static Network mobilenetV2(int batch, int size, long seed) {
        Network n = new Network("mobilenetv2", new int[] {batch, 3, size, size}, seed);
        int t = n.conv("features.0", 0, 32, 3, 2, 1, 1, Epilogue.Activation.RELU6, -1, 1.0);
        int[][] settings = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
        int block = 1;
        for (int[] st : settings) {
            for (int i = 0; i < st[2]; i++, block++) {
                String p = "features." + block + ".";
                int in = t, cin = n.shapes.get(in)[1], hidden = cin * st[0], stride = i == 0 ? st[3] : 1;
                int h = in;
                if (st[0] != 1) {
                    h = n.conv(p + "expand", in, hidden, 1, 1, 0, 1, Epilogue.Activation.RELU6, -1, 1.0);
                }
                h = n.conv(p + "depthwise", h, hidden, 3, stride, 1, hidden, Epilogue.Activation.RELU6, -1, 1.0);
                boolean residual = stride == 1 && cin == st[1];
                t = n.conv(p + "project", h, st[1], 1, 1, 0, 1, Epilogue.Activation.NONE, residual ? in : -1, residual ? 0.25 : 1.0);
            }
        }
        n.conv("features.18", t, 1280, 1, 1, 0, 1, Epilogue.Activation.RELU6, -1, 1.0);
        return n;
    }

    /**
     * Appends conv + folded BatchNorm with the activation (and the residual tensor added before it for ReLU, after it
     * for a linear projection: torchvision's orders); returns the output tensor's index.
     */
    private int conv(String layer, int input, int cout, int k, int stride, int pad, int groups, Epilogue.Activation act, int residual,
                     double gammaScale) {
        int[] in = shapes.get(input);
        int cin = in[1], cg = cin / groups;
        ConvSpec spec = ConvSpec.builder().stride(stride).padding(pad).groups(groups).build();
        float[] w = new float[cout * cg * k * k];
        double std = Math.sqrt(2.0 / (cg * k * k));
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (rnd.nextGaussian() * std);
        }
        float[] b = new float[cout];
        int per = cg * k * k;
        for (int o = 0; o < cout; o++) {
            double gamma = gammaScale * (0.5 + rnd.nextDouble()), beta = 0.1 * rnd.nextGaussian();
            double mean = 0.1 * rnd.nextGaussian(), var = 0.5 + rnd.nextDouble();
            double scale = gamma / Math.sqrt(var + 1e-5);
            for (int i = 0; i < per; i++) {
                w[o * per + i] = (float) (w[o * per + i] * scale);
            }
            b[o] = (float) (beta - mean * scale);
        }
        ConvGeometry g = ConvGeometry.conv2d(in, new int[] {cout, cg, k, k}, new int[] {cout}, spec);
        Epilogue ep = Epilogue.of(act);
        if (residual >= 0) {
            ep = ep.withResidual(act == Epilogue.Activation.NONE ? Epilogue.Residual.AFTER_ACTIVATION : Epilogue.Residual.BEFORE_ACTIVATION);
        }
        layers.add(new Conv(layer, input, g, spec, Tensor.of(w, cout, cg, k, k), Tensor.of(b, cout), ep, residual));
        shapes.add(g.outputShape());
        return shapes.size() - 1;
    }

    private int pool(String layer, int input, int k, int stride, int pad) {
        layers.add(new Pool(layer, input, k, stride, pad));
        shapes.add(MaxPool2d.outputShape(shapes.get(input), k, stride, pad));
        return shapes.size() - 1;
    }

    public String name() {
        return name;
    }

    public List<Layer> layers() {
        return List.copyOf(layers);
    }

    public int[] inputShape() {
        return shapes.get(0).clone();
    }

    public int[] outputShape() {
        return shapes.get(shapes.size() - 1).clone();
    }

    /** The shape of tensor {@code i} (0: the input; i + 1: layer i's output). */
    public int[] shape(int i) {
        return shapes.get(i).clone();
    }

    /** Multiply-adds of all convolutions, counted as 2 FLOPs. */
    public long flops() {
        return layers.stream().filter(l -> l instanceof Conv).mapToLong(l -> ((Conv) l).geometry.flops()).sum();
    }

    public long convolutions() {
        return layers.stream().filter(l -> l instanceof Conv).count();
    }

    /** A seeded N(0, 1) input of the network's shape. */
    public Tensor randomInput(long seed) {
        Random r = new Random(seed);
        float[] x = new float[Math.toIntExact(Tensor.elementCount(inputShape()))];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return Tensor.of(x, inputShape());
    }

    /** The trunk built on a device: one plan per convolution, ready to run many times. */
    public Compiled compile(Device device, Algorithm algorithm, int threads, boolean tune) {
        return compile(device, algorithm, MathMode.FP32, threads, tune);
    }

    /** As {@link #compile(Device, Algorithm, int, boolean)}, every plan in {@code math} ({@link ConvPlan.Builder#math}). */
    public Compiled compile(Device device, Algorithm algorithm, MathMode math, int threads, boolean tune) {
        return compile(device, algorithm, math, Dtype.FP32, threads, tune);
    }

    /**
     * As {@link #compile(Device, Algorithm, MathMode, int, boolean)} on tensors of {@code dtype}: the input, every
     * intermediate and the output are stored in it, and every plan rounds its weights to it ({@link ConvPlan.Builder#dtype}),
     * as PyTorch's {@code model.half()} / {@code .bfloat16()}.
     */
    public Compiled compile(Device device, Algorithm algorithm, MathMode math, Dtype dtype, int threads, boolean tune) {
        return new Compiled(device, algorithm, math, dtype, threads, tune);
    }

    /** Plans for every convolution on one device; {@link #run} keeps every tensor on the device from input to output. */
    public final class Compiled implements AutoCloseable {
        private final Device device;
        private final Dtype dtype;
        private final ConvPlan[] plans = new ConvPlan[layers.size()];
        private final int[] lastUse = new int[shapes.size()];
        /**
         * Intermediate tensors kept for the next run, by shape: a run takes its intermediates from here and gives each back
         * after its last use, so only the returned output is allocated per run (on the CPU every intermediate was a new
         * Java array, ~45 MB per ResNet-50 image at 224, zeroed by the JVM and collected by the GC). Holds at most the
         * tensors that were live at once in the runs so far; freed by {@link #close}.
         */
        private final Map<List<Integer>, ArrayDeque<DeviceTensor>> spare = new HashMap<>();
        /** The CPU pool the plans run on, held through each run ({@link Parallel#hold}); serial (no hold) on a GPU. */
        private final Parallel parallel;
        /**
         * Downsample projections computed inside their block's last convolution ({@link #fuses}): {@code shortcut[j] = i}
         * where layer j runs as one 1 x 1 convolution over {@code cat([j's input, i's input subsampled])} with j's and i's
         * weights side by side and their biases summed, and layer i does not run; -1 elsewhere. {@code into[i] = j}.
         */
        private final int[] shortcut = new int[layers.size()], into = new int[layers.size()];
        /**
         * Layers that write their output into their residual's tensor ({@link ConvPlan#runsResidualInPlace}): the residual is
         * an intermediate (not the caller's input) read by nothing after this layer. It was taken from the kept ones and is
         * not given back, so as the trunk's output it goes to the caller like one allocated for it.
         */
        private final boolean[] inPlace = new boolean[layers.size()];
        /**
         * Layers that run with the layer after them in one pass ({@link ConvPlan#runWith}): a 1 x 1 expansion and the depthwise
         * layer that alone reads its output (MobileNetV2's inverted residual blocks), whose intermediate tensor is then never
         * written; {@code into[i + 1] = i}.
         */
        private final boolean[] withNext = new boolean[layers.size()];

        private Compiled(Device device, Algorithm algorithm, MathMode math, Dtype dtype, int threads, boolean tune) {
            this.device = device;
            this.dtype = dtype;
            this.parallel = device.isCpu() ? Parallel.of(threads) : Parallel.SERIAL;
            Arrays.fill(shortcut, -1);
            Arrays.fill(into, -1);
            boolean fuse = device.isCpu() && dtype == Dtype.FP32 && math == MathMode.FP32 && !Boolean.getBoolean("jconv.network.unfused");
            for (int j = 0; fuse && j < layers.size(); j++) {
                if (layers.get(j) instanceof Conv && fuses(j)) {
                    shortcut[j] = ((Conv) layers.get(j)).residual - 1;
                    into[shortcut[j]] = j;
                }
            }
            try {
                for (int i = 0; i < layers.size(); i++) {
                    if (layers.get(i) instanceof Conv && into[i] < 0) {
                        Conv c = (Conv) layers.get(i);
                        ConvPlan.Builder b = shortcut[i] < 0
                                ? ConvPlan.conv2d(device, shapes.get(c.input), c.weight, c.bias, c.spec).epilogue(c.epilogue)
                                : fused(c, (Conv) layers.get(shortcut[i]));
                        plans[i] = b.algorithm(algorithm).math(math).dtype(dtype).threads(threads).tune(tune).build();
                    }
                }
            } catch (RuntimeException e) {
                close();
                throw e;
            }
            for (int i = 0; fuse && i + 1 < layers.size(); i++) {
                withNext[i] = runsWithNext(i);
                if (withNext[i]) {
                    into[i + 1] = i;
                }
            }
            Arrays.fill(lastUse, -1);
            for (int i = 0; i < layers.size(); i++) {
                Layer l = layers.get(i);
                if (into[i] >= 0) {
                    continue; // its input is read by the layer it is fused into
                }
                lastUse[l.input] = i;
                if (shortcut[i] >= 0) {
                    lastUse[layers.get(shortcut[i]).input] = i;
                } else if (l instanceof Conv && ((Conv) l).residual >= 0) {
                    lastUse[((Conv) l).residual] = i;
                }
            }
            for (int i = 0; fuse && i < layers.size(); i++) {
                if (plans[i] != null && shortcut[i] < 0 && plans[i].runsResidualInPlace()) {
                    Conv c = (Conv) layers.get(i);
                    inPlace[i] = c.residual > 0 && c.residual != c.input && lastUse[c.residual] == i;
                }
            }
        }

        /**
         * Whether layer j, a 1 x 1 stride-1 convolution with relu(conv + residual), takes its residual from a downsample
         * projection it can compute itself: the layer before the residual is an unpadded 1 x 1 convolution of one group,
         * one stride along H and W, no activation or residual of its own, whose output nothing else reads. Then
         * {@code act(W x + b + (D s + d))} is {@code act([W | D] cat(x, s) + (b + d))}: one GEMM whose reduction runs
         * over both inputs' channels, and the projection's output (N x 4C x P x Q) is neither written nor read back.
         */
        private boolean fuses(int j) {
            Conv c = (Conv) layers.get(j);
            if (c.residual < 1 || c.epilogue.residual() != Epilogue.Residual.BEFORE_ACTIVATION || c.geometry.transposed()
                    || !c.geometry.isPointwise() || c.geometry.groups != 1 || !(layers.get(c.residual - 1) instanceof Conv)) {
                return false;
            }
            Conv d = (Conv) layers.get(c.residual - 1);
            if (!d.geometry.isUnpadded1x1() || d.geometry.groups != 1 || d.geometry.strideH != d.geometry.strideW || !d.epilogue.isNone()) {
                return false;
            }
            return reads(c.residual) == 1; // j's, as its residual
        }

        /** How many times the layers read tensor t, as an input or as a residual. */
        private int reads(int t) {
            int n = 0;
            for (Layer l : layers) {
                n += (l.input == t ? 1 : 0) + (l instanceof Conv && ((Conv) l).residual == t ? 1 : 0);
            }
            return n;
        }

        /**
         * Whether layer i and the layer after it run as one pass: two convolutions (neither fused otherwise), the second reading
         * the first's output, which nothing else reads and which is not the trunk's output, on plans that {@link
         * ConvPlan#cannotRunWith} takes.
         */
        private boolean runsWithNext(int i) {
            int t = i + 1; // the first layer's output tensor
            if (!(layers.get(i) instanceof Conv) || !(layers.get(t) instanceof Conv) || plans[i] == null || plans[t] == null
                    || shortcut[i] >= 0 || shortcut[t] >= 0 || into[i] >= 0 || into[t] >= 0 || layers.get(t).input != t
                    || t == shapes.size() - 1 || reads(t) != 1) { // read by layer t alone, as its input
                return false;
            }
            return plans[i].cannotRunWith(plans[t]) == null;
        }

        /** The plan of layer c with its downsample d inside ({@link #fuses}): weights [W | D] per output channel, bias b + d. */
        private ConvPlan.Builder fused(Conv c, Conv d) {
            int k = c.geometry.k, cc = c.geometry.c, cd = d.geometry.c;
            float[] w = new float[k * (cc + cd)], b = new float[k], wc = c.weight.data(), wd = d.weight.data();
            for (int o = 0; o < k; o++) {
                System.arraycopy(wc, o * cc, w, o * (cc + cd), cc);
                System.arraycopy(wd, o * cd, w, o * (cc + cd) + cc, cd);
                b[o] = (c.bias == null ? 0f : c.bias.data()[o]) + (d.bias == null ? 0f : d.bias.data()[o]);
            }
            int[] in = ChannelConcat.outputShape(shapes.get(c.input), shapes.get(d.input), d.geometry.strideH);
            return ConvPlan.conv2d(device, in, Tensor.of(w, k, cc + cd, 1, 1), Tensor.of(b, k), ConvSpec.builder().build())
                    .epilogue(Epilogue.of(c.epilogue.activation()));
        }

        /** The algorithms the plans chose, in layer order ("name: algorithm"). */
        public List<String> algorithms() {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < plans.length; i++) {
                out.add(layers.get(i).name + ": " + algorithm(i));
            }
            return out;
        }

        /** What layer i runs: its plan's algorithm, max_pool2d, or "in" the layer it is fused into ({@link #fusedInto}). */
        public String algorithm(int i) {
            if (into[i] >= 0) {
                return "in " + layers.get(into[i]).name;
            }
            return plans[i] == null ? "max_pool2d" : plans[i].algorithm().label() + (shortcut[i] >= 0 ? "+shortcut" : "")
                    + (withNext[i] ? "+" + plans[i + 1].algorithm().label() : "");
        }

        /**
         * The layer that computes layer i inside it, or -1: on the CPU in float32 each ResNet downsample projection runs
         * inside its block's last convolution, as one 1 x 1 convolution over both inputs (a layer after i), and each
         * MobileNetV2 depthwise layer with the 1 x 1 expansion before it, in one pass ({@link ConvPlan#runWith}; the layer
         * before i) where their plans take it (set {@code -Djconv.network.unfused=true} to run them apart, and every layer
         * into its own output: {@link #addsResidualInPlace}).
         */
        public int fusedInto(int i) {
            return into[i];
        }

        /**
         * Whether layer i writes its output into its residual's tensor, adding the residual in place ({@link
         * ConvPlan#runsResidualInPlace}): on the CPU in float32, ResNet's identity blocks' last convolutions and MobileNetV2's
         * residual projections, whose residual (the block's input) nothing reads after them. {@code
         * -Djconv.network.unfused=true} turns this off with the fused projections.
         */
        public boolean addsResidualInPlace(int i) {
            return inPlace[i];
        }

        /** The shape and FLOPs layer i's step runs: its convolution's, or with a fused downsample the combined one; null for a pool or a fused-away layer. */
        public ConvGeometry geometry(int i) {
            return plans[i] == null ? null : plans[i].geometry();
        }

        /**
         * Runs the trunk on {@code input} (on this device; it is not freed) and returns the output, a new device tensor
         * the caller closes. Each intermediate tensor goes back to the trunk after its last use, for the next run.
         */
        public DeviceTensor run(DeviceTensor input) {
            return run(input, null);
        }

        /**
         * As {@link #run(DeviceTensor)}; when {@code layerNanos} (one per layer) is not null, the device is waited for
         * after every layer and each layer's wall time is added to its entry (a profile: waiting costs the overlap of
         * queued work on a GPU, so time the trunk without it).
         */
        public DeviceTensor run(DeviceTensor input, long[] layerNanos) {
            if (layerNanos != null && layerNanos.length != layers.size()) {
                throw new IllegalArgumentException("layerNanos has " + layerNanos.length + " entries for " + layers.size() + " layers");
            }
            DeviceTensor[] t = new DeviceTensor[shapes.size()];
            t[0] = input;
            try (Parallel.Held held = parallel.hold()) { // the helpers stay awake between the layers' loops
                for (int i = 0; i < layers.size(); i++) {
                    Layer l = layers.get(i);
                    long t0 = System.nanoTime();
                    if (into[i] >= 0) {
                        continue; // computed by the layer it is fused into
                    }
                    if (inPlace[i]) { // the residual's tensor becomes the output, the residual added in place
                        int r = ((Conv) l).residual;
                        t[i + 1] = t[r];
                        t[r] = null;
                    } else {
                        int o = withNext[i] ? i + 2 : i + 1; // with the next layer: its output, the first one's never exists
                        t[o] = o == shapes.size() - 1 ? allocate(shapes.get(o)) : take(shapes.get(o));
                    }
                    if (withNext[i]) {
                        plans[i].runWith(plans[i + 1], t[l.input], t[i + 2]);
                    } else if (shortcut[i] >= 0) {
                        Conv c = (Conv) l, d = (Conv) layers.get(shortcut[i]);
                        DeviceTensor both = take(plans[i].geometry().inputShape());
                        try {
                            ChannelConcat.run(t[c.input], t[d.input], d.geometry.strideH, both, parallel);
                            plans[i].run(both, t[i + 1]);
                        } finally {
                            give(both);
                        }
                    } else if (l instanceof Conv) {
                        Conv c = (Conv) l;
                        plans[i].run(t[c.input], inPlace[i] ? t[i + 1] : c.residual >= 0 ? t[c.residual] : null, t[i + 1]);
                    } else {
                        Pool p = (Pool) l;
                        MaxPool2d.run(t[p.input], t[i + 1], p.kernel, p.stride, p.padding, parallel.threads());
                    }
                    if (layerNanos != null) {
                        device.synchronize();
                        layerNanos[i] += System.nanoTime() - t0;
                    }
                    for (int j = 1; j <= i; j++) {
                        if (t[j] != null && lastUse[j] == i) {
                            give(t[j]);
                            t[j] = null;
                        }
                    }
                }
                DeviceTensor out = t[shapes.size() - 1];
                t[shapes.size() - 1] = null;
                return out;
            } finally {
                for (int j = 1; j < t.length; j++) {
                    if (t[j] != null) {
                        t[j].close();
                    }
                }
            }
        }

        private DeviceTensor take(int[] shape) {
            synchronized (spare) {
                ArrayDeque<DeviceTensor> free = spare.get(key(shape));
                if (free != null && !free.isEmpty()) {
                    return free.pop();
                }
            }
            return allocate(shape);
        }

        private DeviceTensor allocate(int[] shape) {
            return device.allocate(io.github.jconv.Layout.NCHW, dtype, shape);
        }

        private void give(DeviceTensor t) {
            synchronized (spare) {
                spare.computeIfAbsent(key(t.shape()), k -> new ArrayDeque<>()).push(t);
            }
        }

        /**
         * A loop, not a stream: {@link #run} inlines this, and with the stream pipeline inlined C2's compilation of run took
         * 222 + 297 ms of a compiler thread seconds after the trunk looked steady (JFR, ResNet-50 at batch 1, 2-vCPU AMD
         * EPYC Zen 4), one of two cores taken from the trunk's threads; with the loop 69 + 74 ms.
         */
        private static List<Integer> key(int[] shape) {
            Integer[] k = new Integer[shape.length];
            for (int i = 0; i < k.length; i++) {
                k[i] = shape[i];
            }
            return List.of(k);
        }

        /** The storage of the trunk's tensors: its input's, its intermediates' and its output's. */
        public Dtype dtype() {
            return dtype;
        }

        /** A host convenience: upload (rounded to the trunk's dtype), run, download. */
        public Tensor run(Tensor input) {
            try (DeviceTensor in = device.upload(input, dtype); DeviceTensor out = run(in)) {
                return out.download();
            }
        }

        @Override
        public void close() {
            synchronized (spare) {
                spare.values().forEach(free -> free.forEach(DeviceTensor::close));
                spare.clear();
            }
            for (ConvPlan p : plans) {
                if (p != null) {
                    p.close();
                }
            }
        }
    }
}
