package io.github.jconv.peers;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;
import io.github.jconv.net.Network;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The bytes of ONNX models (opset 17), written as protocol buffers by hand (ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto, TensorProto from onnx.proto): a one-node Conv or ConvTranspose with graph inputs X,
 * W, B and output Y, and a network trunk ({@link #network}). A dozen small messages do not justify the protobuf
 * runtime and generated ONNX classes.
 */
final class OnnxModel {
    private OnnxModel() {
    }

    static byte[] conv(ConvGeometry g) {
        boolean t = g.transposed();
        Msg node = new Msg().str(1, "X").str(1, "W").str(1, "B").str(2, "Y").str(3, "conv").str(4, t ? "ConvTranspose" : "Conv")
                .msg(5, ints("kernel_shape", g.r, g.s))
                .msg(5, ints("strides", g.strideH, g.strideW))
                .msg(5, ints("pads", g.padTop, g.padLeft, g.padBottom, g.padRight))
                .msg(5, ints("dilations", g.dilationH, g.dilationW))
                .msg(5, new Msg().str(1, "group").varint(20, 2).varint(3, g.groups));
        if (t) {
            int opH = g.h - ((g.p - 1) * g.strideH - g.padTop - g.padBottom + g.effectiveR());
            int opW = g.w - ((g.q - 1) * g.strideW - g.padLeft - g.padRight + g.effectiveS());
            node.msg(5, ints("output_padding", opH, opW));
        }
        Msg graph = new Msg().msg(1, node).str(2, "jconv_peer")
                .msg(11, value("X", g.inputShape())).msg(11, value("W", g.weightShape()))
                .msg(11, value("B", new int[] {g.biasLength()})).msg(12, value("Y", g.outputShape()));
        Msg model = new Msg().varint(1, 8).str(2, "jconv").msg(7, graph).msg(8, new Msg().str(1, "").varint(2, 17));
        return model.bytes();
    }

    /**
     * A {@link Network} trunk as one graph: input X, the folded weights and biases as initializers (as a deployed model
     * has them), Conv + Add + Relu / Clip(0, 6) in the trunk's order, MaxPool, output Y.
     */
    static byte[] network(Network net) {
        Msg graph = new Msg();
        String[] names = new String[net.layers().size() + 1];
        names[0] = "X";
        int i = 0;
        for (Network.Layer l : net.layers()) {
            String out = i == net.layers().size() - 1 ? "Y" : "t" + (i + 1);
            if (l instanceof Network.Conv) {
                Network.Conv c = (Network.Conv) l;
                ConvGeometry g = c.geometry();
                graph.msg(5, tensor("W" + i, c.weight().shape(), c.weight().data()));
                graph.msg(5, tensor("B" + i, c.bias().shape(), c.bias().data()));
                String v = "conv" + i;
                graph.msg(1, new Msg().str(1, names[c.input()]).str(1, "W" + i).str(1, "B" + i).str(2, v).str(3, v).str(4, "Conv")
                        .msg(5, ints("kernel_shape", g.r, g.s)).msg(5, ints("strides", g.strideH, g.strideW))
                        .msg(5, ints("pads", g.padTop, g.padLeft, g.padBottom, g.padRight))
                        .msg(5, new Msg().str(1, "group").varint(20, 2).varint(3, g.groups)));
                Epilogue ep = c.epilogue();
                if (ep.residual() == Epilogue.Residual.BEFORE_ACTIVATION) {
                    v = add(graph, v, names[c.residual()], "sum" + i);
                }
                boolean addAfter = ep.residual() == Epilogue.Residual.AFTER_ACTIVATION;
                v = activation(graph, ep.activation(), v, addAfter ? "act" + i : out, i);
                if (addAfter) {
                    add(graph, v, names[c.residual()], out);
                }
            } else {
                Network.Pool p = (Network.Pool) l;
                graph.msg(1, new Msg().str(1, names[p.input()]).str(2, out).str(3, "pool" + i).str(4, "MaxPool")
                        .msg(5, ints("kernel_shape", p.kernel(), p.kernel())).msg(5, ints("strides", p.stride(), p.stride()))
                        .msg(5, ints("pads", p.padding(), p.padding(), p.padding(), p.padding())));
            }
            names[i + 1] = out;
            i++;
        }
        if (net.layers().stream().anyMatch(l -> l instanceof Network.Conv
                && ((Network.Conv) l).epilogue().activation() == Epilogue.Activation.RELU6)) {
            graph.msg(5, tensor("zero", new int[0], new float[] {0f})).msg(5, tensor("six", new int[0], new float[] {6f})); // Clip's bounds
        }
        graph.str(2, "jconv_" + net.name()).msg(11, value("X", net.inputShape())).msg(12, value("Y", net.outputShape()));
        return new Msg().varint(1, 8).str(2, "jconv").msg(7, graph).msg(8, new Msg().str(1, "").varint(2, 17)).bytes();
    }

    private static String add(Msg graph, String a, String b, String out) {
        graph.msg(1, new Msg().str(1, a).str(1, b).str(2, out).str(3, out + "_add").str(4, "Add"));
        return out;
    }

    /** The activation node(s) from {@code in} to {@code out} (none: an Identity); relu and relu6 only (the trunks' own). */
    private static String activation(Msg graph, Epilogue.Activation a, String in, String out, int i) {
        switch (a) {
            case NONE:
                graph.msg(1, new Msg().str(1, in).str(2, out).str(3, "id" + i).str(4, "Identity"));
                break;
            case RELU:
                graph.msg(1, new Msg().str(1, in).str(2, out).str(3, "relu" + i).str(4, "Relu"));
                break;
            case RELU6:
                graph.msg(1, new Msg().str(1, in).str(1, "zero").str(1, "six").str(2, out).str(3, "relu6_" + i).str(4, "Clip"));
                break;
            default:
                throw new IllegalArgumentException("the ONNX network peer builds relu and relu6 only, not " + a.label());
        }
        return out;
    }

    /** A float TensorProto (initializer) with its data as raw little-endian bytes. */
    private static Msg tensor(String name, int[] shape, float[] data) {
        Msg t = new Msg();
        for (int d : shape) {
            t.varint(1, d);
        }
        ByteBuffer raw = ByteBuffer.allocate(4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        raw.asFloatBuffer().put(data);
        return t.varint(2, 1).str(8, name).bytes(9, raw.array());
    }

    private static Msg ints(String name, int... values) {
        Msg a = new Msg().str(1, name).varint(20, 7); // AttributeType INTS
        for (int v : values) {
            a.varint(8, v);
        }
        return a;
    }

    private static Msg value(String name, int[] shape) {
        Msg dims = new Msg();
        for (int d : shape) {
            dims.msg(1, new Msg().varint(1, d));
        }
        Msg tensor = new Msg().varint(1, 1).msg(2, dims); // elem_type FLOAT, shape
        return new Msg().str(1, name).msg(2, new Msg().msg(1, tensor));
    }

    /** A protobuf message being written: varint and length-delimited fields only. */
    private static final class Msg {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Msg varint(int field, long value) {
            raw((long) field << 3);
            raw(value);
            return this;
        }

        Msg str(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Msg msg(int field, Msg m) {
            return bytes(field, m.bytes());
        }

        Msg bytes(int field, byte[] b) {
            raw(((long) field << 3) | 2);
            raw(b.length);
            out.write(b, 0, b.length);
            return this;
        }

        private void raw(long v) {
            while ((v & ~0x7FL) != 0) {
                out.write((int) ((v & 0x7F) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
