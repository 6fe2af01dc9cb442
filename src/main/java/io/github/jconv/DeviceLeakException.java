package io.github.jconv;

/** A {@link Device} was closed while tensors or plans on it were still open; the message lists each one. */
public class DeviceLeakException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    public DeviceLeakException(String message) {
        super(message);
    }
}
