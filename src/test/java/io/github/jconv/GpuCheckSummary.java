package io.github.jconv;

import com.fasterxml.jackson.jr.ob.JSON;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The one page a GPU check leaves behind ({@code .gpu/run.sh check OUT} writes OUT/summary.txt with it): each step's
 * exit code, the tests passed / failed / skipped per backend (from the JUnit XML reports in OUT/tests) and each failed
 * test by name with the start of its message (the page is often all a CI log keeps of the check, and a randomised test's
 * message carries the seed that replays it), verify's worst relative error per backend and algorithm (OUT/verify.txt)
 * and the bench medians (OUT/bench-*.json).
 *
 * <pre>java -cp ... io.github.jconv.GpuCheckSummary OUT</pre>
 */
public final class GpuCheckSummary {
    private static final List<String> BACKENDS = List.of("cuda-emu", "cuda", "cudnn", "cpu");
    /** Failed tests named on the page at most, and lines of each one's message. */
    private static final int MAX_FAILURES = 20, MESSAGE_LINES = 4;

    private GpuCheckSummary() {
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "/tmp/jconv-gpu");
        String summary = summarize(out);
        Files.writeString(out.resolve("summary.txt"), summary);
        System.out.print(summary);
    }

    static String summarize(Path out) throws Exception {
        StringBuilder b = new StringBuilder("jconv GPU check, " + out + "\n");
        Path steps = out.resolve("steps.txt");
        b.append("\nsteps (exit codes):\n");
        if (Files.exists(steps)) {
            for (String line : Files.readAllLines(steps)) {
                String[] f = line.trim().split("\\s+");
                if (f.length == 2) {
                    b.append(String.format("  %-24s %s%n", f[0], f[1].equals("0") ? "ok" : "FAILED (exit " + f[1] + ")"));
                }
            }
        }
        b.append("\ntests per backend (passed / failed / skipped):\n");
        List<Element> cases = testcases(out.resolve("tests"));
        tests(cases).forEach((backend, c) ->
                b.append(String.format("  %-10s %6d / %d / %d%n", backend, c[0], c[1], c[2])));
        List<String> failed = failures(cases);
        if (!failed.isEmpty()) {
            b.append("\nfailed tests (").append(failed.size()).append("):\n");
            failed.stream().limit(MAX_FAILURES).forEach(f -> b.append(f.indent(2)));
            if (failed.size() > MAX_FAILURES) {
                b.append("  ... and ").append(failed.size() - MAX_FAILURES).append(" more (OUT/tests.txt)\n");
            }
        }
        b.append("\nverify, worst max_rel_error per backend and algorithm (ERROR: the algorithm threw):\n");
        verify(out.resolve("verify.txt")).forEach((key, worst) -> b.append(String.format("  %-26s %s%n", key, worst)));
        b.append("\nbench medians:\n");
        for (String line : bench(out)) {
            b.append("  ").append(line).append('\n');
        }
        return b.toString();
    }

    /** backend -> {passed, failed, skipped}, from the display names of the test cases (the backend is their first word). */
    static Map<String, int[]> tests(List<Element> cases) {
        Map<String, int[]> counts = new TreeMap<>();
        for (Element c : cases) {
            int[] n = counts.computeIfAbsent(backendOf(c), k -> new int[3]);
            n[problem(c) != null ? 1 : c.getElementsByTagName("skipped").getLength() > 0 ? 2 : 0]++;
        }
        return counts;
    }

    /**
     * "Class.method display-name" and below it the first lines of the message (or of the stack trace when there is no
     * message), one entry per failed test, in the order of the reports.
     */
    static List<String> failures(List<Element> cases) {
        List<String> failed = new ArrayList<>();
        for (Element c : cases) {
            Element p = problem(c);
            if (p == null) {
                continue;
            }
            String cls = c.getAttribute("classname");
            String text = p.getAttribute("message").isBlank() ? p.getTextContent() : p.getAttribute("message");
            List<String> lines = text.strip().lines().limit(MESSAGE_LINES)
                    .map(l -> "  " + (l.length() > 300 ? l.substring(0, 300) + " ..." : l)).toList();
            failed.add(cls.substring(cls.lastIndexOf('.') + 1) + "." + c.getAttribute("name") + " (" + displayName(c) + ")\n"
                    + String.join("\n", lines));
        }
        return failed;
    }

    /** Every test case of the JUnit XML reports in dir (none when it is missing), in the reports' order. */
    private static List<Element> testcases(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<Path> reports;
        try (Stream<Path> s = Files.list(dir)) {
            reports = s.filter(p -> p.getFileName().toString().endsWith(".xml")).sorted().toList();
        }
        List<Element> all = new ArrayList<>();
        for (Path report : reports) {
            NodeList cases = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(report.toFile()).getElementsByTagName("testcase");
            for (int i = 0; i < cases.getLength(); i++) {
                all.add((Element) cases.item(i));
            }
        }
        return all;
    }

    /** The test case's failure or error element, null when it passed or was skipped. */
    private static Element problem(Element testcase) {
        for (String tag : List.of("failure", "error")) {
            NodeList found = testcase.getElementsByTagName(tag);
            if (found.getLength() > 0) {
                return (Element) found.item(0);
            }
        }
        return null;
    }

    private static String backendOf(Element testcase) {
        String first = displayName(testcase).split("[\\s/]", 2)[0];
        return BACKENDS.contains(first) ? first : "other";
    }

    /** The last part of the case's display name (the invocation, without its "[n]"), or its name in the report. */
    private static String displayName(Element testcase) {
        NodeList out = testcase.getElementsByTagName("system-out");
        String text = out.getLength() > 0 ? out.item(0).getTextContent() : "";
        int at = text.indexOf("display-name: ");
        String name = at < 0 ? testcase.getAttribute("name") : text.substring(at + 14).lines().findFirst().orElse("");
        return name.substring(name.contains(" > ") ? name.lastIndexOf(" > ") + 3 : 0).replaceFirst("^\\[\\d+\\]\\s*", "");
    }

    /** "backend algorithm" -> the worst relative error (or ERROR), from verify's table. */
    static Map<String, String> verify(Path file) throws IOException {
        Map<String, String> worst = new TreeMap<>();
        if (!Files.exists(file)) {
            return worst;
        }
        for (String line : Files.readAllLines(file)) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 5 || !BACKENDS.contains(f[2])) {
                continue;
            }
            String key = f[2] + " " + f[3];
            if (f[4].equals("ERROR:")) {
                worst.put(key, "ERROR");
            } else if (f[4].equals("skipped:")) {
                worst.putIfAbsent(key, "skipped");
            } else if (f.length > 5 && !"ERROR".equals(worst.get(key))) {
                try {
                    double rel = Double.parseDouble(f[5]);
                    String old = worst.get(key);
                    if (old == null || old.equals("skipped") || Double.parseDouble(old) < rel) {
                        worst.put(key, String.format("%.3e", rel));
                    }
                } catch (NumberFormatException e) {
                    // a line that is not a result row
                }
            }
        }
        return worst;
    }

    /** One line per bench result: backend, algorithm, shape, median ms and GFLOP/s. */
    @SuppressWarnings("unchecked")
    static List<String> bench(Path out) throws IOException {
        List<String> lines = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.list(out)) {
            files = s.filter(p -> p.getFileName().toString().matches("bench-.*\\.json")).sorted().toList();
        }
        for (Path f : files) {
            Map<String, Object> doc = JSON.std.mapFrom(Files.readString(f));
            for (Object o : (List<Object>) doc.getOrDefault("results", List.of())) {
                Map<String, Object> r = (Map<String, Object>) o;
                lines.add(String.format("%-10s %-14s %-32s %10s ms %9s GFLOP/s", r.get("backend"), r.get("algorithm"), r.get("shape"),
                        r.get("median_ms") instanceof Number ? String.format("%.3f", ((Number) r.get("median_ms")).doubleValue()) : "-",
                        r.get("gflops") instanceof Number ? String.format("%.1f", ((Number) r.get("gflops")).doubleValue()) : "-"));
            }
        }
        return lines;
    }
}
