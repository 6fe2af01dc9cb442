package io.github.jconv;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Dockerfile cannot be built here (no Docker engine, no NVIDIA images), so this checks what can be
 * checked: every path it copies and every script it runs exists (scripts executable), every script it runs
 * is also run by CI (scripts/test.sh), and it names nothing machine-specific.
 */
class DockerfileTest {
    private static final Path ROOT = Path.of("").toAbsolutePath();

    private static List<String> instructions() throws IOException {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (String line : Files.readAllLines(ROOT.resolve("docker/Dockerfile"))) {
            String t = line.strip();
            if (t.startsWith("#") || t.isEmpty()) {
                continue;
            }
            cur.append(t.endsWith("\\") ? t.substring(0, t.length() - 1) + " " : t);
            if (!t.endsWith("\\")) {
                out.add(cur.toString());
                cur.setLength(0);
            }
        }
        return out;
    }

    @Test
    void everyCopiedPathExists() throws IOException {
        int copies = 0;
        for (String ins : instructions()) {
            if (!ins.startsWith("COPY ") || ins.contains("--from=")) {
                continue;
            }
            String[] parts = ins.substring(5).trim().split("\\s+");
            for (int i = 0; i < parts.length - 1; i++) {
                assertTrue(Files.exists(ROOT.resolve(parts[i])), "COPY source missing: " + parts[i]);
                copies++;
            }
        }
        assertTrue(copies >= 6, "the Dockerfile copies pom, scripts, kernels, sources");
    }

    @Test
    void everyScriptItRunsExistsAndCiRunsItToo() throws IOException {
        String ci = Files.readString(ROOT.resolve("scripts/test.sh"));
        Pattern script = Pattern.compile("(?:/opt/jconv/)?((?:scripts|docker)/[\\w./-]+\\.sh)");
        int runs = 0;
        for (String ins : instructions()) {
            if (!ins.startsWith("RUN ")) {
                continue;
            }
            Matcher m = script.matcher(ins);
            boolean any = false;
            while (m.find()) {
                Path p = ROOT.resolve(m.group(1));
                assertTrue(Files.isRegularFile(p) && Files.isExecutable(p), "script missing or not executable: " + p);
                assertTrue(ci.contains(m.group(1)), m.group(1) + " runs in the image but not in CI (scripts/test.sh)");
                any = true;
                runs++;
            }
            assertTrue(any, "a RUN step that is not a repository script: " + ins);
        }
        assertTrue(runs >= 4, "install, fetch, kernels, package");
    }

    @Test
    void entrypointIsTheCliAndNothingIsMachineSpecific() throws IOException {
        String df = Files.readString(ROOT.resolve("docker/Dockerfile"));
        assertTrue(df.contains("ENTRYPOINT [\"/opt/jconv/scripts/jconv\"]"));
        assertTrue(df.contains("COPY scripts/jconv /opt/jconv/scripts/jconv"));
        assertTrue(df.contains("USER jconv"), "runs as a non-root user");
        for (String forbidden : new String[] {"/work/main", "/root/", "/home/", "PASSWORD", "TOKEN", "SECRET"}) {
            assertFalse(df.contains(forbidden), "machine-specific or secret in the Dockerfile: " + forbidden);
        }
    }
}
