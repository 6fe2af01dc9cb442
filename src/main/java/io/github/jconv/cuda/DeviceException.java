package io.github.jconv.cuda;

/**
 * A failure on a CUDA device or in the emulator: a driver error (with the CUresult name and what was being
 * done), device out of memory (with the sizes), a kernel that wrote out of bounds (emulator), a leak.
 */
public class DeviceException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DeviceException(String message) {
        super(message);
    }

    public DeviceException(String message, Throwable cause) {
        super(message, cause);
    }
}
