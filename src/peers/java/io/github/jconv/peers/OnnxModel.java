package io.github.jconv.peers;

import io.github.jconv.ConvGeometry;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The bytes of a one-node ONNX model (opset 17): Conv or ConvTranspose with graph inputs X, W, B and output Y,
 * written as protocol buffers by hand (ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto from
 * onnx.proto). Nine small messages do not justify the protobuf runtime and generated ONNX classes.
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

        private Msg bytes(int field, byte[] b) {
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
