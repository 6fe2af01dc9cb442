package io.github.jconv;

import java.util.Locale;

/**
 * Padding of a 2D convolution. Either explicit amounts (symmetric or asymmetric), or a rule that is
 * resolved against the input size:
 * <ul>
 *   <li>{@code same} (ONNX SAME_UPPER): output = ceil(input / stride) for any stride; when the total
 *       padding is odd the extra row/column goes at the end (bottom, right);</li>
 *   <li>{@code same-lower} (ONNX SAME_LOWER): the same total, the extra row/column at the start;</li>
 *   <li>{@code valid}: no padding.</li>
 * </ul>
 * Immutable; invalid values fail at construction.
 */
public final class Padding {
    /** How the amounts are decided. */
    public enum Mode { EXPLICIT, SAME_UPPER, SAME_LOWER, VALID }

    private static final Padding SAME_UPPER = new Padding(Mode.SAME_UPPER, 0, 0, 0, 0);
    private static final Padding SAME_LOWER = new Padding(Mode.SAME_LOWER, 0, 0, 0, 0);
    private static final Padding VALID = new Padding(Mode.VALID, 0, 0, 0, 0);

    private final Mode mode;
    private final int top, bottom, left, right;

    private Padding(Mode mode, int top, int bottom, int left, int right) {
        this.mode = mode;
        this.top = top;
        this.bottom = bottom;
        this.left = left;
        this.right = right;
    }

    /** The same amount on all four sides. */
    public static Padding of(int p) {
        return of(p, p, p, p);
    }

    /** {@code h} rows at top and bottom, {@code w} columns at left and right (PyTorch's (pH, pW)). */
    public static Padding of(int h, int w) {
        return of(h, h, w, w);
    }

    /** Asymmetric padding. */
    public static Padding of(int top, int bottom, int left, int right) {
        requireNonNegative("top", top);
        requireNonNegative("bottom", bottom);
        requireNonNegative("left", left);
        requireNonNegative("right", right);
        return new Padding(Mode.EXPLICIT, top, bottom, left, right);
    }

    public static Padding same() {
        return SAME_UPPER;
    }

    public static Padding sameLower() {
        return SAME_LOWER;
    }

    public static Padding valid() {
        return VALID;
    }

    /**
     * Parses the CLI form: {@code P}, {@code PH,PW}, {@code T,B,L,R}, {@code same}, {@code same-lower}
     * or {@code valid}.
     */
    public static Padding parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        switch (t) {
            case "same": case "same-upper": return same();
            case "same-lower": return sameLower();
            case "valid": return valid();
            default: break;
        }
        String[] parts = t.split(",", -1);
        int[] v = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                v[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new InvalidConvolutionException("padding: expected P, PH,PW, T,B,L,R, same, same-lower or valid, got '"
                        + text + "'");
            }
        }
        switch (v.length) {
            case 1: return of(v[0]);
            case 2: return of(v[0], v[1]);
            case 4: return of(v[0], v[1], v[2], v[3]);
            default:
                throw new InvalidConvolutionException("padding: expected 1, 2 or 4 integers, got " + v.length + " in '" + text + "'");
        }
    }

    private static void requireNonNegative(String side, int v) {
        if (v < 0) {
            throw new InvalidConvolutionException("padding " + side + " must be >= 0, got " + v);
        }
    }

    public Mode mode() {
        return mode;
    }

    public boolean isExplicit() {
        return mode == Mode.EXPLICIT;
    }

    /** Explicit amounts; 0 for the rule-based modes (see {@link ConvGeometry} for resolved amounts). */
    public int top() { return top; }
    public int bottom() { return bottom; }
    public int left() { return left; }
    public int right() { return right; }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Padding)) {
            return false;
        }
        Padding p = (Padding) o;
        return mode == p.mode && top == p.top && bottom == p.bottom && left == p.left && right == p.right;
    }

    @Override
    public int hashCode() {
        return ((mode.hashCode() * 31 + top) * 31 + bottom) * 31 * 31 + left * 31 + right;
    }

    /** The CLI form, which {@link #parse} reads back. */
    @Override
    public String toString() {
        switch (mode) {
            case SAME_UPPER: return "same";
            case SAME_LOWER: return "same-lower";
            case VALID: return "valid";
            default:
                if (top == bottom && left == right) {
                    return top == left ? Integer.toString(top) : top + "," + left;
                }
                return top + "," + bottom + "," + left + "," + right;
        }
    }
}
