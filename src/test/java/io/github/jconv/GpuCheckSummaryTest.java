package io.github.jconv;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPU check's summary page from the kinds of files .gpu/run.sh check leaves (here made by hand). */
class GpuCheckSummaryTest {
    @Test
    void summarisesStepsTestsVerifyAndBench(@TempDir Path out) throws Exception {
        Files.writeString(out.resolve("steps.txt"), "tests 0\nverify 1\nbench-cuda 0\n");
        Files.createDirectories(out.resolve("tests"));
        Files.writeString(out.resolve("tests/TEST-junit-jupiter.xml"), """
                <?xml version="1.0" encoding="UTF-8"?>
                <testsuite name="JUnit Jupiter" tests="4">
                <testcase name="m(String)[1]" classname="io.github.jconv.ShapeTableTest"><system-out><![CDATA[
                display-name: JUnit Jupiter > ShapeTableTest > m(String) > cuda 1x1 conv2d direct threads=0
                ]]></system-out></testcase>
                <testcase name="m(String)[2]" classname="io.github.jconv.ShapeTableTest"><failure message="x"/><system-out><![CDATA[
                display-name: JUnit Jupiter > ShapeTableTest > m(String) > cuda 1x1 conv2d im2col threads=0
                ]]></system-out></testcase>
                <testcase name="m(String)[3]" classname="io.github.jconv.ShapeTableTest"><skipped/><system-out><![CDATA[
                display-name: JUnit Jupiter > ShapeTableTest > m(String) > cudnn 1x1 conv2d vendor threads=0
                ]]></system-out></testcase>
                <testcase name="t(String)[1]" classname="io.github.jconv.cuda.SelfTestKernelsTest"><system-out><![CDATA[
                display-name: JUnit Jupiter > SelfTestKernelsTest > t(String) > [1] cuda-emu
                ]]></system-out></testcase>
                <testcase name="fuzz()" classname="io.github.jconv.FuzzTest"><failure message="2 fuzz failure(s) (run seed 42):&#10;a: bad [case seed 7]&#10;b: bad&#10;c&#10;d"/></testcase>
                <testcase name="p" classname="io.github.jconv.AlgorithmPropertiesTest"><error>java.lang.IllegalStateException: no message
                	at io.github.jconv.X.y(X.java:1)</error></testcase>
                </testsuite>
                """);
        Files.writeString(out.resolve("verify.txt"), String.join("\n",
                "shape                        op               backend  algorithm        abs_vs_ref   rel_vs_ref",
                "2,3,17,19,8,3,3,1,1,1,1      conv2d           cuda     direct          1.0e-06    2.000e-07          n/a          n/a  ok",
                "2,8,16,16,16,1,1,1,0,1,1     conv2d           cuda     direct          1.0e-06    5.000e-07          n/a          n/a  ok",
                "2,8,16,16,16,1,1,1,0,1,1     conv2d           cuda     im2col         ERROR: DeviceException: boom",
                "verify: 1 result(s) failed or above 1.0E-4"));
        Files.writeString(out.resolve("bench-cuda.json"), "{\"results\": [{\"backend\": \"cuda\", \"algorithm\": \"direct\","
                + " \"shape\": \"1,8,16,16,8,3,3,1,1,1,1\", \"median_ms\": 0.25, \"gflops\": 150.5}]}");
        String s = GpuCheckSummary.summarize(out);
        assertTrue(s.contains("  tests                    ok") && s.contains("  verify                   FAILED (exit 1)"), s);
        assertTrue(s.contains("  cuda            1 / 1 / 0") && s.contains("  cudnn           0 / 0 / 1")
                && s.contains("  cuda-emu        1 / 0 / 0"), s);
        // each failed test by name, display name and the start of its message (or of its stack trace)
        assertTrue(s.contains("failed tests (3):\n  ShapeTableTest.m(String)[2] (cuda 1x1 conv2d im2col threads=0)\n    x\n"), s);
        assertTrue(s.contains("  FuzzTest.fuzz() (fuzz())\n    2 fuzz failure(s) (run seed 42):\n    a: bad [case seed 7]\n    b: bad\n    c\n")
                && !s.contains("    d\n"), s);
        assertTrue(s.contains("  AlgorithmPropertiesTest.p (p)\n    java.lang.IllegalStateException: no message\n"), s);
        assertTrue(s.contains("  cuda direct                5.000e-07") && s.contains("  cuda im2col                ERROR"), s);
        assertTrue(s.contains("cuda       direct         1,8,16,16,8,3,3,1,1,1,1") && s.contains("0.250 ms") && s.contains("150.5 GFLOP/s"), s);
    }
}
