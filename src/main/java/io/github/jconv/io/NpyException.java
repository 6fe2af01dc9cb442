package io.github.jconv.io;

/** A file that is missing, unreadable or not a .npy array jconv can use; the message names the file. */
public class NpyException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public NpyException(String message) {
        super(message);
    }

    public NpyException(String message, Throwable cause) {
        super(message, cause);
    }
}
