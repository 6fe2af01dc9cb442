package io.github.jconv.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU kernels use one vector shape, the preferred species: a Vector API operation that changes shape (a narrowing
 * to a half-width vector, a species of a fixed size) made JDK 17's C2 compile the other kernels' vector code into its
 * slow fallback for the rest of the process (ResNet-50's 3x3 layers 0.7-1.0 -> 5 ms, the trunk 31 -> 105 ms; see the
 * README's performance notes). No test of results can see that, so this one reads the sources.
 */
class VectorShapeGuardTest {
    private static final Pattern SHAPE_CHANGE = Pattern.compile(
            "SPECIES_(64|128|256|512|MAX)\\b|VectorSpecies\\.of\\(|withShape\\(|convertShape\\(|castShape\\(|reinterpretShape\\(|"
                    + "reinterpretAs[A-Z]\\w*\\(|VectorShape\\.");

    @Test
    void onlyThePreferredSpeciesInTheSources() throws IOException {
        Path sources = Path.of("src/main/java");
        assertTrue(Files.isDirectory(sources), "run from the project's root: " + Path.of("").toAbsolutePath());
        List<String> found;
        try (Stream<Path> files = Files.walk(sources)) {
            found = files.filter(f -> f.toString().endsWith(".java")).flatMap(f -> {
                try {
                    List<String> lines = Files.readAllLines(f);
                    return java.util.stream.IntStream.range(0, lines.size()).filter(i -> SHAPE_CHANGE.matcher(lines.get(i)).find())
                            .mapToObj(i -> sources.relativize(f) + ":" + (i + 1) + ": " + lines.get(i).trim());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).collect(Collectors.toList());
        }
        assertTrue(found.isEmpty(), "vector shapes other than SPECIES_PREFERRED (see this test's comment):\n" + String.join("\n", found));
    }
}
