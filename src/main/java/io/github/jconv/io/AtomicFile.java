package io.github.jconv.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a file all or nothing: a hidden temporary file beside the target, renamed over it when complete.
 *
 * <ul>
 *   <li>A symbolic link is followed: the file it points to is replaced and the link stays (as {@code cp} and
 *       shell redirection do).</li>
 *   <li>Only regular files are written: a directory, device, pipe or socket at the path is refused, so
 *       {@code --output /dev/null} run as root can never replace {@code /dev/null} by a regular file.</li>
 *   <li>A new file gets the mode the umask gives (typically 0644); a replaced file keeps its mode.</li>
 * </ul>
 * Failures are {@link NpyException}s naming the file.
 */
public final class AtomicFile {
    /** Links followed before giving up (the kernel's own limit, ELOOP). */
    private static final int MAX_LINKS = 40;

    private AtomicFile() {
    }

    /** Writes the file's content to the channel. */
    @FunctionalInterface
    public interface Content {
        void writeTo(WritableByteChannel out) throws IOException;
    }

    /**
     * The regular file a write to {@code file} would replace or create, after following symbolic links; checks,
     * before any work is done, that its directory exists and is writable and that nothing but a regular file is
     * there.
     */
    public static Path target(Path file) {
        Path p = file.toAbsolutePath();
        for (int links = 0; Files.isSymbolicLink(p); links++) {
            if (links == MAX_LINKS) {
                throw new NpyException("cannot write " + file + ": too many levels of symbolic links");
            }
            try {
                p = p.resolveSibling(Files.readSymbolicLink(p)).normalize();
            } catch (IOException e) {
                throw new NpyException("cannot write " + file + ": cannot read the symbolic link " + p + ": " + e.getMessage(), e);
            }
        }
        Path dir = p.getParent();
        String via = p.equals(file.toAbsolutePath()) ? "" : " (the target of the symbolic link " + file + ")";
        if (dir == null || !Files.isDirectory(dir)) {
            throw new NpyException("cannot write " + file + ": directory " + dir + " does not exist" + via);
        }
        if (Files.isDirectory(p)) {
            throw new NpyException("cannot write " + file + ": " + p + " is a directory" + via);
        }
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            throw new NpyException("cannot write " + file + ": " + p + " is not a regular file (a device, pipe or socket)" + via
                    + "; jconv writes only regular files");
        }
        if (!Files.isWritable(dir)) {
            throw new NpyException("cannot write " + file + ": directory " + dir + " is not writable" + via);
        }
        if (Files.exists(p) && !Files.isWritable(p)) {
            throw new NpyException("cannot write " + file + ": " + p + " is not writable" + via);
        }
        return p;
    }

    /** Replaces (or creates) {@code file} with {@code bytes}. */
    public static void write(Path file, byte[] bytes) {
        write(file, out -> {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) {
                out.write(buf);
            }
        });
    }

    /** Replaces (or creates) {@code file} with what {@code content} writes; nothing changes if it fails. */
    public static void write(Path file, Content content) {
        Path target = target(file);
        Path tmp = null;
        try {
            tmp = createTemporary(target);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                content.writeTo(ch);
                ch.force(false);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new NpyException("cannot write " + file + ": " + e, e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // a hidden .*.part file may remain; nothing more can be done
                }
            }
        }
    }

    /**
     * A new hidden file beside the target, created with the default mode (so the umask applies, unlike
     * {@link Files#createTempFile}, which makes it 0600), then given the mode of the file it will replace.
     */
    private static Path createTemporary(Path target) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path tmp = target.resolveSibling("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong())
                    + ".part");
            try {
                Files.createFile(tmp);
            } catch (FileAlreadyExistsException e) {
                if (attempt < 100) {
                    continue;
                }
                throw e;
            }
            PosixFileAttributeView old = Files.getFileAttributeView(target, PosixFileAttributeView.class);
            if (old != null && Files.exists(target)) {
                try {
                    Files.setPosixFilePermissions(tmp, old.readAttributes().permissions());
                } catch (IOException | UnsupportedOperationException e) {
                    // keep the default mode
                }
            }
            return tmp;
        }
    }
}
