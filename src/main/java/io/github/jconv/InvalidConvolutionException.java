package io.github.jconv;

/**
 * A convolution that cannot be computed as described: a bad parameter, shapes that do not fit
 * together, an unknown backend or algorithm. The message is one line that names the problem.
 */
public class InvalidConvolutionException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public InvalidConvolutionException(String message) {
        super(message);
    }
}
