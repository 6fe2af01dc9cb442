package io.github.jconv.cli;

import com.fasterxml.jackson.jr.ob.JSON;
import io.github.jconv.Algorithm;
import io.github.jconv.Autotuner;
import io.github.jconv.Backend;
import io.github.jconv.Backends;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.Device;
import io.github.jconv.DeviceTensor;
import io.github.jconv.Dtype;
import io.github.jconv.Layout;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.MathMode;
import io.github.jconv.Tensor;
import io.github.jconv.WeightGradientPlan;
import io.github.jconv.cpu.CpuInfo;
import io.github.jconv.cpu.Parallel;
import io.github.jconv.cpu.WeightGradient;
import io.github.jconv.cpu.ReferenceConv;
import io.github.jconv.cuda.CudaBackend;
import io.github.jconv.io.AtomicFile;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code bench}: for each layer and algorithm, warm-up then timed runs; median and min-max ms, GFLOP/s, share
 * of the FMA peak measured in the same run, ratio to the best peer (PyTorch, timed on the same data and
 * thread count when a python3 with torch is present) and the max relative error against the float64
 * reference, for jconv and the peers alike.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time every algorithm and the peers on a set of layers: ms, GFLOP/s, %% of peak, ratio, error.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--shape", paramLabel = "N,C,H,W,K,R,S,stride,pad,dilation,groups",
            description = "A layer (repeatable): Conv2d(C, K, (R, S), ...) on N x C x H x W.")
    List<String> shapes = new ArrayList<>();

    @Option(names = "--suite", paramLabel = "NAME",
            description = "default (mixed), resnet50 (every ResNet-50 conv layer, batch 8), mobilenet, dilated, transpose.")
    String suite;

    @Option(names = "--network", paramLabel = "resnet50|mobilenetv2",
            description = "Time a whole network trunk end to end (run --network) beside PyTorch and ONNX Runtime, in images/s;"
                    + " then jconv's and ONNX Runtime's trunks in alternating rounds, and their ratio.")
    String network;

    @Option(names = "--size", defaultValue = "224", paramLabel = "H", description = "With --network: input H = W (default: ${DEFAULT-VALUE}).")
    int size;

    @Option(names = "--seed", defaultValue = "1", description = "With --network: the weights' and input's seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", paramLabel = "N", description = "Replace every layer's batch size (with --network: the batch, default 1).")
    Integer batch;

    @Option(names = "--op", defaultValue = "conv2d", paramLabel = "conv2d|conv-transpose2d|conv2d-backward-weight",
            description = "Operation (default: ${DEFAULT-VALUE}; the transpose suite is conv-transpose2d); conv2d-backward-weight times "
                    + "the weight gradient of each conv2d layer (dy random), beside torch.nn.grad.conv2d_weight.")
    String op;

    @Option(names = "--backend", defaultValue = "auto", description = "Backend (default: ${DEFAULT-VALUE}: the best available).")
    String backend;

    @Option(names = "--algorithm", paramLabel = "NAME", description = "Algorithm (repeatable; default: every one but reference).")
    List<String> algorithms = new ArrayList<>();

    @Mixin
    Options.Threads threads;

    @Option(names = "--warmup", defaultValue = "3", description = "Untimed runs per row, at least (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-ms", defaultValue = "1000",
            description = "Warm-up goes on until this much time has passed too, so the JIT has compiled the kernels (default: ${DEFAULT-VALUE}).")
    long warmupMs;

    @Option(names = "--warmup-max-ms", defaultValue = "10000",
            description = "After --warmup and --warmup-ms, warm up until three runs agree within 5%%, at most this long "
                    + "(default: ${DEFAULT-VALUE}); rows that never settled are listed under the table.")
    long warmupMaxMs;

    @Option(names = "--runs", defaultValue = "5", description = "Timed runs per row (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--report", paramLabel = "DIR", description = "Write an HTML report with PNG charts into DIR.")
    Path report;

    @Option(names = "--no-peers", description = "Do not run PyTorch.")
    boolean noPeers;

    @Option(names = "--stateless", description = "On the cpu backend, time the stateless call Jconv.run (from its second call on"
            + " it runs on the plan cache's plan; -Djconv.planCache.entries=0 in JAVA_OPTS: weights packed on every call)"
            + " instead of a plan's run (weights packed once at build, as a service holding a model runs).")
    boolean stateless;

    @Option(names = "--layers", description = "With --network: also time each layer of jconv's trunk (the device waited for "
            + "after every layer) and list them, slowest first: ms, GFLOP/s, share of the trunk, the algorithm auto chose; with ONNX "
            + "Runtime, its own kernel time per layer beside them (its profiler, in a run of its own).")
    boolean layers;

    @Option(names = "--thread-scaling", description = "On the cpu backend, also time each row on 1 thread and on --threads in "
            + "alternating slots (as --paired) and list the speedup, the median of the rounds' ratios (a row slower on more threads is flagged).")
    boolean threadScaling;

    @Option(names = "--paired", description = "On the cpu backend with ONNX Runtime: also time each layer's fastest jconv row and ONNX "
            + "Runtime's Conv in alternating slots of >= " + PAIRED_SLOT_MS + " ms (the order swapped each round) and list the rounds' median "
            + "ratio per layer, its geometric mean and the lowest: ratios that a shared machine's slow stretches do not skew.")
    boolean paired;

    /** The shortest slot of --paired's rounds: a layer's calls run back to back for at least this long. */
    static final long PAIRED_SLOT_MS = 20;

    @Option(names = "--math", split = ",", paramLabel = "tf32|3xtf32|fp16|bf16",
            description = "On cuda and cuda-emu: also time the implicit GEMM's tensor-core kernels in these math modes, a row each "
                    + "(with --network: the whole trunk in each mode, and on cuda cuDNN's default math beside tf32; repeatable or "
                    + "comma-separated; fp32 rows are always there).")
    List<String> maths = new ArrayList<>();

    @Option(names = "--dtype", split = ",", paramLabel = "fp16|bf16",
            description = "On cpu, cuda and cuda-emu: also time a plan on half-precision tensors of these dtypes, a row each (the "
                    + "weights rounded to the dtype, the result rounded into it; the error column against the float32 data's "
                    + "reference; with --network: the whole trunk in each dtype; repeatable or comma-separated; fp32 rows are always there).")
    List<String> dtypes = new ArrayList<>();

    @Option(names = "--layout", split = ",", defaultValue = "nchw", paramLabel = "nchw|nhwc",
            description = "The layouts of the --dtype and --math rows' tensors, a row each (default nchw; repeatable or comma-separated). "
                    + "On cuda and cuda-emu an nhwc row of the implicit GEMM in fp16 / bf16 on such tensors or in tf32 / 3xtf32 on "
                    + "float32 runs on the channels-last kernels where they take the layer (one group, C whole 16-byte chunks, K even), "
                    + "else converts to and from nchw around the kernel (`explain` says which).")
    List<String> layouts = new ArrayList<>();

    @Option(names = "--no-tune", description = "The auto algorithm uses the backend's heuristic instead of autotuning.")
    boolean noTune;

    @Mixin
    Options.Debug debug;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** One line of the table / JSON. Null pctPeak or ratio: not known. */
    /** One timed row; on a GPU backend the times are device time of a plan's run and {@code e2eMs} the whole call. */
    record Row(String shape, String op, String backend, String algorithm, int threads, double medianMs, double minMs,
               double maxMs, double gflops, Double pctPeak, Double ratio, double maxRelError, boolean isPeer, Double e2eMs) {
        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("shape", shape);
            m.put("op", op);
            m.put("backend", backend);
            m.put("algorithm", algorithm);
            m.put("threads", threads);
            m.put("median_ms", medianMs);
            m.put("min_ms", minMs);
            m.put("max_ms", maxMs);
            m.put("gflops", gflops);
            m.put("pct_peak", pctPeak);
            m.put("ratio_to_best_peer", ratio);
            m.put("max_rel_error", maxRelError);
            m.put("e2e_ms", e2eMs);
            return m;
        }
    }

    /** The label of the weight-gradient operation ({@code --op}). */
    static final String WGRAD = "conv2d-backward-weight";

    static ConvGeometry.Op parseOp(String op) {
        switch (op) {
            case "conv2d": case WGRAD: return ConvGeometry.Op.CONV2D;
            case "conv-transpose2d": case "conv_transpose2d": return ConvGeometry.Op.CONV_TRANSPOSE2D;
            default:
                throw new InvalidConvolutionException("--op: expected conv2d, conv-transpose2d or " + WGRAD + ", got '" + op + "'");
        }
    }

    @Override
    public Integer call() throws IOException {
        if (runs < 1 || warmup < 0 || warmupMs < 0 || warmupMaxMs < 0 || threads.count < 0 || (batch != null && batch < 1)) {
            throw new InvalidConvolutionException("--runs and --batch must be >= 1, --warmup, --warmup-ms, --warmup-max-ms and --threads >= 0");
        }
        if (report != null) {
            java.nio.file.Files.createDirectories(report); // up front: a bad report path fails before the long run
        }
        if (json != null && !java.nio.file.Files.isDirectory(json.toAbsolutePath().getParent())) {
            throw new InvalidConvolutionException("--json: directory " + json.toAbsolutePath().getParent() + " does not exist");
        }
        if (suite != null && !shapes.isEmpty()) {
            throw new InvalidConvolutionException("give --suite or --shape, not both");
        }
        if (paired && (network != null || noPeers || WGRAD.equals(op) || !Backends.get(backend).name().equals("cpu"))) {
            throw new InvalidConvolutionException("--paired times jconv's cpu rows of --suite or --shape beside ONNX Runtime's Conv"
                    + (network != null ? ": --network pairs its trunks already" : noPeers ? ": not with --no-peers"
                    : WGRAD.equals(op) ? ": ONNX Runtime has no weight gradient" : ", not backend " + Backends.get(backend).name()));
        }
        if (layers && network == null) {
            throw new InvalidConvolutionException("--layers profiles a --network trunk: give --network too");
        }
        boolean channelsLast = rowLayouts().contains(Layout.NHWC); // parsed here, so a bad name fails before any timing
        if (channelsLast && (dtypes.isEmpty() && maths.isEmpty() || network != null)) {
            throw new InvalidConvolutionException("--layout sets the layouts of the --dtype and --math rows of --suite and --shape runs: "
                    + (network != null ? "--network trunks run nchw" : "give --dtype or --math too"));
        }
        if (network != null) {
            if (suite != null || !shapes.isEmpty() || !algorithms.isEmpty()) {
                throw new InvalidConvolutionException("--network times a whole trunk with auto: not with --suite, --shape or --algorithm");
            }
            List<MathMode> tc = requireTensorCoreBackend(Backends.get(backend));
            List<Dtype> halves = requireHalfBackend(Backends.get(backend));
            return NetworkBench.run(network, batch == null ? 1 : batch, size, seed, backend, !noTune, noPeers,
                    Parallel.of(threads.count).threads(), runs, warmup, warmupMs, warmupMaxMs, tc, halves, layers, json, spec.commandLine().getOut());
        }
        ConvGeometry.Op operation = "transpose".equals(suite) ? ConvGeometry.Op.CONV_TRANSPOSE2D : parseOp(op);
        List<Problem> problems = new ArrayList<>();
        for (String s : shapes.isEmpty() ? Problem.suite(suite == null ? "default" : suite) : shapes) {
            problems.add(Problem.parse(batch == null ? s : Problem.withBatch(s, batch), operation));
        }
        Backend be = Backends.get(backend);
        requireTensorCoreBackend(be);
        List<Dtype> halves = requireHalfBackend(be);
        List<Algorithm> algs = new ArrayList<>();
        for (String a : algorithms) {
            algs.add(Algorithm.parse(a));
        }
        boolean wgrad = WGRAD.equals(op);
        if (wgrad && !halves.isEmpty()) {
            throw new InvalidConvolutionException("--dtype times conv2d and conv_transpose2d plans on half-precision tensors, not the weight gradient");
        }
        if (wgrad && "transpose".equals(suite)) {
            throw new InvalidConvolutionException("--op " + WGRAD + " times conv2d layers: not with --suite transpose");
        }
        if (algs.isEmpty()) {
            for (Algorithm a : wgrad ? List.of(Algorithm.DIRECT, Algorithm.IM2COL, Algorithm.IMPLICIT_GEMM) : be.algorithms()) {
                if (a != Algorithm.REFERENCE && (!wgrad || be.cannotImplementBackwardWeight(a, problems.get(0).geometry) == null)) {
                    algs.add(a);
                }
            }
        }
        int threadCount = Parallel.of(threads.count).threads();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        double peak = be.name().equals("cpu") ? CpuInfo.measuredPeakGflops(threadCount)
                : be instanceof CudaBackend ? ((CudaBackend) be).measuredPeakGflops()
                : Double.NaN;
        Map<String, Object> peers = new LinkedHashMap<>();
        List<Peer> active = new ArrayList<>();
        if (noPeers) {
            peers.put("peers", "off (--no-peers)");
        } else if (be == CudaBackend.CUDA) {
            String why = io.github.jconv.cuda.CudnnBackend.INSTANCE.unavailableReason();
            peers.put("cudnn", why == null ? (wgrad ? "ran (BackwardFilter, FMA math" : "ran (FMA math and default math")
                    + "; a plan per layer, kernel time by CUDA events)" : "absent: " + why);
            if (why == null) {
                active.add(new CudnnPeer(io.github.jconv.MathMode.FP32, wgrad));
                if (!wgrad) {
                    active.add(new CudnnPeer(io.github.jconv.MathMode.TF32, false));
                }
            }
        } else if (wgrad && !be.name().equals("cpu")) {
            peers.put("peers", "none for the weight gradient on backend " + be.name());
        } else if (!be.name().equals("cpu")) {
            peers.put("peers", "none for backend " + be.name());
        } else {
            PyTorchPeer torch = PyTorchPeer.find();
            peers.put("pytorch", torch.unavailableReason() == null ? "ran" : "absent: " + torch.unavailableReason());
            if (torch.unavailableReason() == null) {
                active.add(torch);
            }
            if (wgrad) {
                torch.weightGradient();
                peers.put("onnxruntime", "no weight gradient (an inference runtime)");
            } else try {
                active.add((Peer) Class.forName("io.github.jconv.peers.OnnxRuntimePeer").getConstructor().newInstance());
                peers.put("onnxruntime", "ran");
            } catch (ReflectiveOperationException | LinkageError e) {
                peers.put("onnxruntime", "absent: jconv was built without the Maven profile 'peers' (scripts/jconv builds with it unless JCONV_PEERS=0)");
            }
        }

        out.printf("jconv bench: backend %s, %d thread(s), per row >= %d warm-up runs and >= %d ms, then %d timed runs%n",
                be.name(), threadCount, warmup, warmupMs, runs);
        out.println(Double.isNaN(peak) ? "FMA peak: not measured (emulator, or no Vector API)"
                : be.name().equals("cpu") ? String.format("machine float32 FMA peak, measured now on %d thread(s): %.0f GFLOP/s", threadCount, peak)
                : String.format("GPU float32 FMA rate, measured now (fma_probe.cu): %.0f GFLOP/s", peak));
        peers.forEach((name, state) -> out.println("peer " + name + ": " + state));
        out.flush();

        Progress progress = new Progress(err, problems.size() * algs.size() + active.size());
        try (Device gpu = be instanceof CudaBackend ? Device.open(be.name()) : null) {
            return measure(problems, algs, be, threadCount, peak, active, peers, progress, gpu, wgrad, halves, out);
        }
    }

    /** The timed rows, then the table, the JSON and the report; {@code gpu} is the GPU backend's device (null on the CPU). */
    private int measure(List<Problem> problems, List<Algorithm> algs, Backend be, int threadCount, double peak, List<Peer> active,
                        Map<String, Object> peers, Progress progress, Device gpu, boolean wgrad, List<Dtype> halves, PrintWriter out)
            throws IOException {
        List<Row> rows = new ArrayList<>();
        List<String> unsteady = new ArrayList<>();
        List<Map<String, Object>> scaling = new ArrayList<>();
        List<float[][]> allData = new ArrayList<>();
        List<double[]> refs = new ArrayList<>();
        Algorithm[] fastest = new Algorithm[problems.size()]; // each layer's fastest float32 jconv row, for --paired
        String[] fastestLabel = new String[problems.size()];
        double[] fastestMs = new double[problems.size()];
        Arrays.fill(fastestMs, Double.POSITIVE_INFINITY);
        int skipped = 0;
        for (int pi = 0; pi < problems.size(); pi++) {
            Problem pr = problems.get(pi);
            ConvGeometry g = pr.geometry;
            // the weight gradient reads x and dy ({x, w, b, dy}; w gives the peer its shape)
            float[][] data = wgrad ? io.github.jconv.SampleData.withOutputGradient(g, 42) : pr.randomData(42);
            double[] ref = wgrad ? WeightGradient.reference(g, data[0], data[3], Parallel.of(threads.count))
                    : ReferenceConv.compute(g, data[0], data[1], data[2], Parallel.of(threads.count));
            allData.add(data);
            refs.add(ref);
            float[] y = new float[ref.length];
            for (Algorithm a : algs) {
                progress.step(pr.label + " " + a);
                String why = a == Algorithm.AUTO ? null : wgrad ? be.cannotImplementBackwardWeight(a, g) : be.cannotImplement(a, g);
                if (why != null) {
                    if (algorithms.isEmpty()) {
                        skipped++;
                    } else {
                        out.printf("%-34s %-16s %-10s %-14s skipped: %s%n", pr.label, g.op, be.name(), a, why);
                    }
                    continue;
                }
                Algorithm chosen = a != Algorithm.AUTO ? a
                        : wgrad ? be.chooseBackwardWeight(g) : Autotuner.global().choose(be, g, threadCount, !noTune);
                boolean cpuPlan = !stateless && be.name().equals("cpu");
                String label = a == Algorithm.AUTO ? "auto:" + chosen : chosen.label();
                double[] ms;
                try (HostCall call = new HostCall(be, g, chosen, data, threadCount, !cpuPlan, wgrad)) {
                    ms = time(call, y, pr.label + " " + a, unsteady);
                    if (threadScaling && threadCount > 1 && be.name().equals("cpu")) { // the row's warm call against 1 thread
                        scaling.add(threadScaling(call, be, g, chosen, data, threadCount, !cpuPlan, wgrad, pr.label, label, unsteady));
                    }
                }
                Row row = row(pr, wgrad ? WGRAD : pr.geometry.op.label(), be.name(), label, threadCount, ms, ReferenceConv.maxRelError(y, ref), peak);
                if (gpu != null) { // the kernels alone: a plan on device tensors, timed by device events
                    double[] kernel = wgrad ? wgradDeviceTimes(gpu, g, chosen, data, Math.max(1, warmup), runs)
                            : planTimes(gpu, g, chosen, MathMode.FP32, Dtype.FP32, Layout.NCHW, 0, data, null, null, null);
                    Row k = row(pr, row.op(), be.name(), label, threadCount, kernel, row.maxRelError(), peak);
                    row = new Row(k.shape(), k.op(), k.backend(), k.algorithm(), k.threads(), k.medianMs(), k.minMs(), k.maxMs(), k.gflops(),
                            k.pctPeak(), null, k.maxRelError(), false, row.medianMs());
                }
                rows.add(row);
                if (row.medianMs() < fastestMs[pi]) {
                    fastestMs[pi] = row.medianMs();
                    fastest[pi] = chosen;
                    fastestLabel[pi] = label;
                }
                if (gpu != null && !wgrad && chosen == Algorithm.IMPLICIT_GEMM) {
                    for (MathMode m : tensorCoreMaths()) {
                        String mathWhy = be.cannotUseMath(m);
                        if (mathWhy != null) {
                            out.printf("%-34s %-16s %-10s %-14s skipped: math %s: %s%n", pr.label, g.op, be.name(), a, m.label(), mathWhy);
                            continue;
                        }
                        for (Layout lay : rowLayouts()) {
                            String tag = m.label() + (lay == Layout.NCHW ? "" : "/" + lay.label());
                            progress.step(pr.label + " " + a + " math " + tag);
                            float[] ym = new float[y.length];
                            double[] kernel = planTimes(gpu, g, chosen, m, Dtype.FP32, lay, 0, data, ym, null, null);
                            rows.add(row(pr, row.op(), be.name(), label + "/" + tag, threadCount, kernel, ReferenceConv.maxRelError(ym, ref), peak));
                        }
                    }
                }
                for (Dtype d : halves) { // a plan on half-precision tensors: device time on a GPU, wall time on the CPU
                    for (Layout lay : rowLayouts()) {
                        String tag = d.label() + (lay == Layout.NCHW ? "" : "/" + lay.label());
                        progress.step(pr.label + " " + a + " dtype " + tag);
                        float[] yh = new float[y.length];
                        double[] ms2;
                        // the implicit GEMM on a GPU runs in the dtype's own math: its kernels that load the 16-bit tensors as they are
                        MathMode own = gpu != null && chosen == Algorithm.IMPLICIT_GEMM ? MathMode.of(d) : MathMode.FP32;
                        try (Device cpu = gpu != null ? null : Device.open("cpu")) {
                            ms2 = planTimes(gpu != null ? gpu : cpu, g, chosen, own, d, lay, threadCount, data, yh,
                                    pr.label + " " + a + " dtype " + tag, unsteady);
                        }
                        rows.add(row(pr, row.op(), be.name(), label + (own.tensorCores() ? "/" + own.label() : "") + "@" + tag, threadCount, ms2,
                                ReferenceConv.maxRelError(yh, ref), peak));
                    }
                }
            }
        }
        for (Peer peer : active) {
            progress.step(peer.label());
            String name = peer instanceof PyTorchPeer ? "pytorch" : peer instanceof CudnnPeer ? "cudnn" : "onnxruntime";
            try {
                List<Peer.Result> results = peer.run(problems, allData, threadCount, runs, Math.max(warmup, 3));
                for (int i = 0; i < problems.size(); i++) {
                    Peer.Result r = results.get(i);
                    Problem pr = problems.get(i);
                    if (r == null) {
                        continue; // this peer cannot take the layer
                    }
                    double gf = pr.geometry.flops() / (r.medianMs() * 1e6);
                    rows.add(new Row(pr.label, wgrad ? WGRAD : pr.geometry.op.label(), peer.label(), peer.operation(pr.geometry.transposed()),
                            threadCount, r.medianMs(), r.minMs(), r.maxMs(), gf, pct(gf, peak), null,
                            ReferenceConv.maxRelError(r.y(), refs.get(i)), true, r.e2eMs()));
                }
            } catch (IOException | RuntimeException e) {
                peers.put(name, "failed: " + e.getMessage());
                out.println("peer " + name + ": failed: " + e.getMessage());
            }
        }
        List<Map<String, Object>> pairs = new ArrayList<>();
        if (paired) {
            pairs = paired(problems, allData, fastest, fastestLabel, threadCount, active, peers, unsteady, progress, out);
        }
        progress.done();
        rows = withRatios(rows);
        out.printf("%-34s %-16s %-18s %-20s %3s %10s %19s %9s %7s %6s %11s%s%n", "shape", "op", "backend", "algorithm", "thr",
                "median_ms", "min-max ms", "GFLOP/s", "%peak", "ratio", "max_rel_err", gpu == null ? "" : "     e2e_ms");
        for (Row r : rows) {
            out.printf("%-34s %-16s %-18s %-20s %3d %10.3f %19s %9.2f %7s %6s %11.3e%s%n", r.shape(), r.op(), r.backend(),
                    r.algorithm(), r.threads(), r.medianMs(), String.format("%.3f-%.3f", r.minMs(), r.maxMs()), r.gflops(),
                    r.pctPeak() == null ? "n/a" : String.format("%.1f%%", r.pctPeak()),
                    r.ratio() == null ? "n/a" : String.format("%.2f", r.ratio()), r.maxRelError(),
                    gpu == null ? "" : r.e2eMs() == null ? String.format("%11s", "-") : String.format("%11.3f", r.e2eMs()));
        }
        if (gpu != null) {
            out.println("(" + be.name() + ": median_ms and GFLOP/s are the kernels alone, a plan run on device tensors between device events;"
                    + " e2e_ms the whole call with its transfers)");
        }
        if (!halves.isEmpty() && !wgrad) {
            out.println("(ALGORITHM@fp16, @bf16: a plan on half-precision tensors, widened to float32 and rounded back around the kernel,"
                    + " or on a GPU implicit-gemm/fp16@fp16 (bf16@bf16): the kernels that load and store them as they are; its max_rel_err"
                    + " against the float32 data's reference; ALGORITHM/MATH: a tensor-core math on float32 tensors)");
        }
        if (rowLayouts().contains(Layout.NHWC) && !wgrad) {
            out.println("(/nhwc: the same on channels-last tensors; on a GPU implicit-gemm/fp16@fp16/nhwc and implicit-gemm/tf32/nhwc (3xtf32)"
                    + " run on the channels-last kernels where they take the layer (one group, C whole 16-byte chunks, K even), else convert"
                    + " to nchw and back)");
        }
        if (skipped > 0) {
            out.printf("(%d layer/algorithm pairs not shown: the algorithm cannot take the layer; name it with --algorithm to see why)%n",
                    skipped);
        }
        if (!scaling.isEmpty()) {
            out.printf("thread scaling (1 thread and %d in alternating slots of >= %d ms, %d rounds, the order swapped each round; median ms"
                    + " of each, speedup: the median of the rounds' ratios, and their range):%n", threadCount, PAIRED_SLOT_MS,
                    (Integer) scaling.get(0).get("rounds"));
            for (Map<String, Object> sc : scaling) {
                double speedup = (Double) sc.get("speedup");
                out.printf("  %-34s %-20s %10.3f %10.3f %6.2fx %11s%s%n", sc.get("shape"), sc.get("algorithm"), sc.get("median_ms_1_thread"),
                        sc.get("median_ms_" + threadCount + "_threads"), speedup,
                        String.format("%.2f-%.2f", sc.get("speedup_min"), sc.get("speedup_max")), speedup < 1 ? "  SLOWER with more threads" : "");
            }
        }
        if (!pairs.isEmpty()) {
            printPaired(pairs, out);
        }
        if (!unsteady.isEmpty()) {
            out.printf("(not at steady state after --warmup-max-ms %d: %s; their times may include JIT compilation)%n", warmupMaxMs,
                    String.join(", ", unsteady));
        }
        out.flush();
        Map<String, Object> doc = new LinkedHashMap<>();
        List<Map<String, Object>> list = new ArrayList<>();
        rows.forEach(r -> list.add(r.toMap()));
        doc.put("results", list);
        doc.put("peak_gflops", Double.isNaN(peak) ? null : peak);
        doc.put("peers", peers);
        doc.put("unsteady", unsteady);
        if (threadScaling) {
            doc.put("thread_scaling", scaling);
        }
        if (paired) {
            doc.put("paired", pairs);
        }
        if (json != null) {
            AtomicFile.write(json, JSON.std.with(JSON.Feature.PRETTY_PRINT_OUTPUT, JSON.Feature.WRITE_NULL_PROPERTIES).asString(doc).getBytes(StandardCharsets.UTF_8));
        }
        if (report != null) {
            Report.write(report, rows, Double.isNaN(peak) ? null : peak, peers, be.name(), threadCount);
            out.println("report: " + report.resolve("index.html"));
        }
        return 0;
    }

    /**
     * --paired: each layer's fastest float32 jconv row (a plan's run, or the stateless call with --stateless) and the ONNX Runtime
     * peer's Conv, both warmed up, in {@link Alternating} rounds; a map per layer (shape, algorithm, peer, the rounds' figures).
     * Without ONNX Runtime among the active peers, or when a pairing fails, a "peer paired: ..." line (and {@code peers}) says so
     * and the list holds the layers paired before.
     */
    private List<Map<String, Object>> paired(List<Problem> problems, List<float[][]> allData, Algorithm[] fastest, String[] labels,
                                             int threadCount, List<Peer> active, Map<String, Object> peers, List<String> unsteady,
                                             Progress progress, PrintWriter text) {
        List<Map<String, Object>> out = new ArrayList<>();
        Peer ort = active.stream().filter(p -> p.label().startsWith("onnxruntime")).findFirst().orElse(null);
        if (ort == null) {
            peers.put("paired", "skipped: ONNX Runtime is not among the peers");
            text.println("peer paired: " + peers.get("paired"));
            return out;
        }
        int rounds = alternatingRounds();
        for (int i = 0; i < problems.size(); i++) {
            Problem pr = problems.get(i);
            if (fastest[i] == null) {
                continue; // no jconv row for this layer
            }
            progress.step(pr.label + " paired");
            try (HostCall call = new HostCall(Backends.get("cpu"), pr.geometry, fastest[i], allData.get(i), threadCount, stateless, false);
                 PeerSession peer = ort.open(pr, allData.get(i), threadCount, Math.max(warmup, 3))) {
                if (!io.github.jconv.Warmup.untilSteady(call::run, warmup, warmupMs, warmupMaxMs)) {
                    unsteady.add(pr.label + " " + labels[i] + " (paired)");
                }
                Alternating.Result r = Alternating.run(call::run, peer, rounds, PAIRED_SLOT_MS);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("shape", pr.label);
                m.put("algorithm", labels[i]);
                m.put("peer", ort.label());
                m.putAll(Alternating.toMap(r));
                out.add(m);
            } catch (IOException | RuntimeException e) {
                peers.put("paired", "failed on " + pr.label + ": " + e.getMessage());
                text.println("peer paired: " + peers.get("paired"));
                return out;
            }
        }
        return out;
    }

    /** --paired's table: per layer each side's median ms and the rounds' median ratio with its range; the geometric mean and lowest. */
    private static void printPaired(List<Map<String, Object>> pairs, PrintWriter out) {
        out.printf("paired with %s (alternating slots of >= %d ms, %d rounds, the order swapped each round; ratio: jconv's speed over the"
                + " peer's, the median of the rounds):%n", pairs.get(0).get("peer"), PAIRED_SLOT_MS, (Integer) pairs.get(0).get("rounds"));
        out.printf("  %-34s %-20s %10s %10s %6s %13s%n", "shape", "algorithm", "jconv_ms", "peer_ms", "ratio", "rounds");
        double logSum = 0;
        Map<String, Object> lowest = pairs.get(0);
        for (Map<String, Object> p : pairs) {
            double ratio = (Double) p.get("ratio");
            logSum += Math.log(ratio);
            if (ratio < (Double) lowest.get("ratio")) {
                lowest = p;
            }
            out.printf("  %-34s %-20s %10.3f %10.3f %6.2f %13s%n", p.get("shape"), p.get("algorithm"), p.get("jconv_median_ms"),
                    p.get("peer_median_ms"), ratio, String.format("%.2f-%.2f", p.get("ratio_min"), p.get("ratio_max")));
        }
        out.printf("  paired ratio over %d layer(s): geometric mean %.2f, lowest %.2f (%s)%n", pairs.size(), Math.exp(logSum / pairs.size()),
                lowest.get("ratio"), lowest.get("shape"));
    }

    /** Rounds of --paired's and --thread-scaling's alternating slots: at least the network bench's, and 2 x --runs + 1. */
    private int alternatingRounds() {
        return Math.max(NetworkBench.PAIRED_ROUNDS, 2 * runs + 1);
    }

    /**
     * --thread-scaling for one row: its call on threadCount threads ({@code many}, the row's, already warm) and the same on
     * 1 thread, warmed up, in {@link Alternating} slots (as --paired's), so that a slow stretch of a shared machine slows
     * both alike: timed one after the other, a memory-bound layer (64 -> 64 @ 56, batch 8) showed 2 threads 6% slower than
     * 1 in one run and 1.67x faster in the next. The speedup is the median of the rounds' 1-thread time over their
     * threadCount-thread time.
     */
    private Map<String, Object> threadScaling(HostCall many, Backend be, ConvGeometry g, Algorithm a, float[][] data, int threadCount,
                                              boolean statelessCall, boolean wgrad, String shape, String label, List<String> unsteady) {
        try (HostCall one = new HostCall(be, g, a, data, 1, statelessCall, wgrad)) {
            if (!io.github.jconv.Warmup.untilSteady(one::run, warmup, warmupMs, warmupMaxMs)) {
                unsteady.add(shape + " " + label + " (1 thread)");
            }
            Alternating.Result r = Alternating.run(many::run, one::run, alternatingRounds(), PAIRED_SLOT_MS);
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("shape", shape);
            s.put("algorithm", label);
            s.put("rounds", r.rounds());
            s.put("median_ms_1_thread", r.peerMs());
            s.put("median_ms_" + threadCount + "_threads", r.jconvMs());
            s.put("speedup", r.ratio());
            s.put("speedup_min", r.ratioMin());
            s.put("speedup_max", r.ratioMax());
            return s;
        }
    }

    /**
     * {@code runs} wall times (ms) of one row's call ({@link HostCall}) after its warm-up to steady state (a row that never
     * settles is added to {@code unsteady}); the result in y.
     */
    private double[] time(HostCall call, float[] y, String what, List<String> unsteady) {
        double[] ms = new double[runs];
        if (!io.github.jconv.Warmup.untilSteady(call::run, warmup, warmupMs, warmupMaxMs)) {
            unsteady.add(what);
        }
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            call.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        call.result(y);
        return ms;
    }

    /**
     * One row's timed call on host data: the public stateless call {@code Jconv.run} (every GPU backend: the whole call with
     * its transfers; the cpu backend with --stateless; from its second call on it runs on the plan cache's plan, weights
     * packed or uploaded once), or a CPU plan's run on host-resident device tensors (the cpu default).
     */
    private static final class HostCall implements AutoCloseable {
        private final Backend be;
        private final ConvGeometry g;
        private final Algorithm a;
        private final float[][] data;
        private final float[] y;
        private final int threads;
        private final Device cpu;
        private final ConvPlan plan;
        private final DeviceTensor x, out;
        private final boolean wgrad;

        /** {@code wgrad}: the weight gradient from data[0] (x) and data[3] (dy), always the stateless call. */
        HostCall(Backend be, ConvGeometry g, Algorithm a, float[][] data, int threads, boolean stateless, boolean wgrad) {
            this.be = be;
            this.g = g;
            this.a = a;
            this.data = data;
            this.threads = threads;
            this.wgrad = wgrad;
            stateless |= wgrad;
            this.y = new float[Math.toIntExact(Tensor.elementCount(wgrad ? g.weightShape() : g.outputShape()))];
            this.cpu = stateless ? null : Device.open("cpu");
            try {
                this.plan = stateless ? null : ConvPlan.of(cpu, g, Tensor.of(data[1], g.weightShape()),
                        g.hasBias ? Tensor.of(data[2], g.biasLength()) : null).algorithm(a).threads(threads).build();
                this.x = stateless ? null : cpu.upload(data[0], g.inputShape());
                this.out = stateless ? null : cpu.allocate(g.outputShape());
            } catch (RuntimeException | Error e) {
                try {
                    if (cpu != null) {
                        cpu.close(); // what was built before the failure, freed
                    }
                } catch (RuntimeException leak) {
                    e.addSuppressed(leak);
                }
                throw e;
            }
        }

        void run() {
            if (wgrad) {
                be.backwardWeight(a, g, data[0], data[3], y, threads);
            } else if (plan == null) { // the public stateless call, as a user makes it (its plan cache included)
                io.github.jconv.Jconv.run(g, data[0], data[1], data[2], y,
                        io.github.jconv.ConvOptions.defaults().withBackend(be.name()).withAlgorithm(a).withThreads(threads));
            } else {
                plan.run(x, out);
            }
        }

        void result(float[] dst) {
            if (plan == null) {
                System.arraycopy(y, 0, dst, 0, y.length);
            } else {
                out.download(dst);
            }
        }

        @Override
        public void close() {
            if (cpu != null) {
                out.close();
                x.close();
                plan.close();
                cpu.close();
            }
        }
    }

    /**
     * Times (ms) of a plan's runs of g with algorithm a on device tensors (device time on a GPU, after {@code warmup} runs;
     * wall time on the CPU) in a math mode, on tensors of {@code dtype} in {@code layout}, with {@code threads} CPU threads (0: all); the
     * last run's output goes to {@code result} (NCHW) when it is not null. On the CPU device the warm-up runs to steady state, as the float32 rows'
     * (a row that never settles is added to {@code unsteady} as {@code what}).
     */
    private double[] planTimes(Device dev, ConvGeometry g, Algorithm a, MathMode math, Dtype dtype, Layout layout, int threads, float[][] data,
                               float[] result, String what, List<String> unsteady) {
        Tensor w = Tensor.of(data[1], g.weightShape());
        Tensor b = g.hasBias ? Tensor.of(data[2], g.biasLength()) : null;
        ConvPlan.Builder pb = ConvPlan.of(dev, g, w, b);
        try (ConvPlan plan = pb.algorithm(a).math(math).dtype(dtype).layout(layout).threads(threads).build();
             DeviceTensor x = dev.upload(Tensor.of(data[0], g.inputShape()).to(layout), dtype);
             DeviceTensor y = dev.allocate(layout, dtype, g.outputShape())) {
            Runnable run = () -> plan.run(x, y);
            if (dev.isCpu() && !io.github.jconv.Warmup.untilSteady(run, warmup, warmupMs, warmupMaxMs)) {
                unsteady.add(what);
            }
            double[] ms = deviceTimes(dev, run, dev.isCpu() ? 0 : Math.max(1, warmup), runs);
            if (result != null) {
                float[] got = y.download().to(Layout.NCHW).data();
                System.arraycopy(got, 0, result, 0, got.length);
            }
            return ms;
        }
    }

    /** The --math modes other than fp32; fails in one line when there are some and be is not cuda or cuda-emu. */
    private List<MathMode> requireTensorCoreBackend(Backend be) {
        List<MathMode> tc = tensorCoreMaths();
        if (!tc.isEmpty() && !(be instanceof CudaBackend)) {
            throw new InvalidConvolutionException("--math " + String.join(",", maths) + ": the tensor-core kernels run on cuda and cuda-emu, not on "
                    + be.name());
        }
        return tc;
    }

    /** The --layout list parsed, each once, in order (NCHW when empty). */
    private List<Layout> rowLayouts() {
        List<Layout> out = new ArrayList<>();
        for (String l : layouts) {
            Layout t = Layout.parse(l);
            if (!out.contains(t)) {
                out.add(t);
            }
        }
        return out.isEmpty() ? List.of(Layout.NCHW) : out;
    }

    /** The --dtype formats other than fp32, parsed; fails in one line when there are some and be has no device tensors to hold them. */
    private List<Dtype> requireHalfBackend(Backend be) {
        List<Dtype> out = new ArrayList<>();
        for (String d : dtypes) {
            Dtype t = Dtype.parse(d);
            if (t != Dtype.FP32 && !out.contains(t)) {
                out.add(t);
            }
        }
        if (!out.isEmpty() && !(be instanceof CudaBackend) && !be.name().equals("cpu")) {
            throw new InvalidConvolutionException("--dtype " + String.join(",", dtypes) + ": half-precision tensors are timed on cpu, cuda and "
                    + "cuda-emu, not on " + be.name());
        }
        return out;
    }

    /** The --math modes other than fp32, parsed (an unknown one fails naming the choices). */
    private List<MathMode> tensorCoreMaths() {
        List<MathMode> out = new ArrayList<>();
        for (String m : maths) {
            MathMode mode = MathMode.parse(m);
            if (mode.tensorCores() && !out.contains(mode)) {
                out.add(mode);
            }
        }
        return out;
    }

    /** {@code warmup} untimed runs of {@code work}, then the device time (ms) of each of {@code runs} more. */
    static double[] deviceTimes(Device dev, Runnable work, int warmup, int runs) {
        for (int i = 0; i < warmup; i++) {
            work.run();
        }
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            ms[i] = dev.time(work);
        }
        return ms;
    }

    /** Device times (ms) of a weight-gradient plan's runs of g (x and dy from {@code data}) on device tensors. */
    private static double[] wgradDeviceTimes(Device dev, ConvGeometry g, Algorithm a, float[][] data, int warmup, int runs) {
        try (WeightGradientPlan plan = WeightGradientPlan.conv2d(dev, g.inputShape(), g.outputShape(), new int[] {g.r, g.s},
                g.explicitSpec()).algorithm(a).build();
             DeviceTensor x = dev.upload(data[0], g.inputShape()); DeviceTensor dy = dev.upload(data[3], g.outputShape());
             DeviceTensor dw = dev.allocate(g.weightShape())) {
            return deviceTimes(dev, () -> plan.run(x, dy, dw), warmup, runs);
        }
    }

    private static Double pct(double gflops, double peak) {
        return Double.isNaN(peak) ? null : 100 * gflops / peak;
    }

    private static Row row(Problem pr, String opLabel, String backend, String algorithm, int threads, double[] ms, double err, double peak) {
        double[] sorted = ms.clone();
        Arrays.sort(sorted);
        double median = median(sorted);
        double gflops = pr.geometry.flops() / (median * 1e6);
        return new Row(pr.label, opLabel, backend, algorithm, threads, median, sorted[0],
                sorted[sorted.length - 1], gflops, pct(gflops, peak), null, err, false, null);
    }

    /** Each jconv row's GFLOP/s over the best peer's on the same layer (null without a peer row). */
    private static List<Row> withRatios(List<Row> rows) {
        Map<String, Double> bestPeer = new LinkedHashMap<>();
        for (Row r : rows) {
            if (r.isPeer()) {
                bestPeer.merge(r.shape(), r.gflops(), Math::max);
            }
        }
        List<Row> out = new ArrayList<>();
        for (Row r : rows) {
            Double peer = bestPeer.get(r.shape());
            out.add(r.isPeer() || peer == null ? r : new Row(r.shape(), r.op(), r.backend(), r.algorithm(), r.threads(),
                    r.medianMs(), r.minMs(), r.maxMs(), r.gflops(), r.pctPeak(), r.gflops() / peer, r.maxRelError(), false, r.e2eMs()));
        }
        return out;
    }

    static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** A progress bar on stderr when it is a terminal; nothing otherwise (the table is the log). */
    static final class Progress {
        private final PrintWriter err;
        private final int total;
        private final boolean tty = System.console() != null;
        private int done;

        Progress(PrintWriter err, int total) {
            this.err = err;
            this.total = Math.max(1, total);
        }

        void step(String what) {
            if (!tty) {
                return;
            }
            int width = 30, filled = width * done / total;
            err.printf("\r[%s%s] %d/%d %-50.50s", "#".repeat(filled), " ".repeat(width - filled), done, total, what);
            err.flush();
            done++;
        }

        void done() {
            if (tty) {
                err.printf("\r%-100s\r", "");
                err.flush();
            }
        }
    }
}
