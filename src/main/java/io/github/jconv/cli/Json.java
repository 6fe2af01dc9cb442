package io.github.jconv.cli;

import java.util.List;
import java.util.Map;

/**
 * Just enough JSON writing for the CLI's flat result records (strings, numbers, lists, maps); not a
 * library dependency for ~30 lines.
 */
final class Json {
    private Json() {
    }

    static String write(Object v) {
        StringBuilder sb = new StringBuilder();
        write(sb, v, "");
        return sb.append('\n').toString();
    }

    private static void write(StringBuilder sb, Object v, String indent) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String) {
            sb.append('"');
            for (char ch : ((String) v).toCharArray()) {
                if (ch == '"' || ch == '\\') {
                    sb.append('\\').append(ch);
                } else if (ch < 0x20) {
                    sb.append(String.format("\\u%04x", (int) ch));
                } else {
                    sb.append(ch);
                }
            }
            sb.append('"');
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isFinite(d) ? Double.toString(d) : "null");
        } else if (v instanceof Number || v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof Map) {
            String in = indent + "  ";
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                sb.append(first ? "\n" : ",\n").append(in);
                write(sb, String.valueOf(e.getKey()), in);
                sb.append(": ");
                write(sb, e.getValue(), in);
                first = false;
            }
            sb.append(first ? "}" : "\n" + indent + "}");
        } else if (v instanceof List) {
            String in = indent + "  ";
            sb.append('[');
            boolean first = true;
            for (Object o : (List<?>) v) {
                sb.append(first ? "\n" : ",\n").append(in);
                write(sb, o, in);
                first = false;
            }
            sb.append(first ? "]" : "\n" + indent + "]");
        } else {
            throw new IllegalArgumentException("not JSON: " + v.getClass());
        }
    }
}
