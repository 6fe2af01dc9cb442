package io.github.jconv;

/** The requested backend cannot run on this machine; the message says why, in one line. */
public class BackendUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BackendUnavailableException(String message) {
        super(message);
    }
}
