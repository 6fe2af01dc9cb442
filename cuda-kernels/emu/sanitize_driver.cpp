// sanitize_driver.cpp: every CUDA kernel of jconv on the CPU emulator, without a JVM, built with
// AddressSanitizer and UndefinedBehaviorSanitizer by scripts/emu-sanitize.sh. Device buffers are plain heap
// blocks of exactly their size (JCONV_EMU_PLAIN_MEMORY), so ASan reports every out-of-bounds read or write and
// every use after free; a death callback then names the kernel, the algorithm and the problem.
//
// Problems: the shape table of the Java tests (shape_table.inc, generated from ShapeTableTest and checked by it)
// and random valid specs. Algorithms: the same launch sequences as the Java launchers (io.github.jconv.cuda.*Launcher:
// keep them in step), grid-stride kernels once with their usual grid and once with a grid small enough that every
// grid-stride loop takes at least three trips. Results are checked against a float64 host reference with the Java
// tests' bound, |y - ref| <= (4 sqrt(terms) + 1) eps sum |x||w|.
//
//   sanitize_driver [RANDOM_SPECS [SEED [SHARD/SHARDS]]]   exit 0 when everything ran clean and within the bound
//
// Problem j (the table's, then the random ones) draws its data from its own generator seeded from SEED and j, so a run
// split into shards (problem j in shard j % SHARDS; scripts/emu-sanitize.sh runs one per core) checks exactly what the
// whole run checks. JCONV_SANITIZE_FAIL_FAST=1 stops at the first wrong result (the barrier check: one is enough).
#include <sanitizer/common_interface_defs.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../jconv_common.cuh"
#include "emu_runtime.h"

namespace {
// A convolution in forward terms (io.github.jconv.ConvGeometry): input N x C x H x W, weight K x C/G x R x S,
// output N x K x P x Q; a transposed one reads y (N x K x P x Q) and writes x (N x C x H x W).
struct Problem {
    const char* name;
    int transposed, n, c, h, w, k, r, s, p, q, padTop, padBottom, padLeft, padRight, strideH, strideW, dilationH, dilationW,
        groups, bias;
};

const Problem TABLE[] = {
#include "shape_table.inc"
};

std::string where = "(no launch yet)";  // what the death callback names

void on_death() {
    std::fprintf(stderr, "emu-sanitize: the finding above is in %s\n", where.c_str());
}

std::string describe(const Problem& g) {
    char b[400];
    std::snprintf(b, sizeof b, "%s %s n=%d c=%d h=%d w=%d k=%d r=%d s=%d p=%d q=%d pad=%d,%d,%d,%d stride=%d,%d dil=%d,%d groups=%d%s",
                  g.name, g.transposed ? "conv_transpose2d" : "conv2d", g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.p, g.q, g.padTop,
                  g.padBottom, g.padLeft, g.padRight, g.strideH, g.strideW, g.dilationH, g.dilationW, g.groups, g.bias ? " bias" : "");
    return b;
}

// The epilogue of a run (io.github.jconv.Epilogue's ordinals): activation 0-4, residual 0 none, 1 after, 2 before.
struct Epi {
    int activation = 0, residual = 0;
};

ConvParams params(const Problem& g, Epi e, int sample = 0, int group = 0) {
    return ConvParams{g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.p, g.q, g.padTop, g.padLeft, g.strideH, g.strideW,
                      g.dilationH, g.dilationW, g.groups, g.bias, sample, group, e.activation, e.residual};
}

// A device buffer holding exactly n floats.
struct Buffer {
    float* p = nullptr;
    std::size_t n = 0;
    explicit Buffer(std::size_t count) : n(count) { p = static_cast<float*>(jconv_emu::device_alloc(count * sizeof(float))); }
    Buffer(const std::vector<float>& v) : Buffer(v.size()) { std::memcpy(p, v.data(), v.size() * sizeof(float)); }
    ~Buffer() { jconv_emu::device_free(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
};

// Reference conversions in double arithmetic (independent of jconv_warp.cuh's bit manipulation): a half format of
// `mant` stored mantissa bits and exponent bias `bias`, rounded with nearbyint (ties to even), overflow to infinity.
unsigned short refEncode(float f, int mant, int bias) {
    const unsigned short sign = std::signbit(f) ? (unsigned short)0x8000 : (unsigned short)0;
    const double v = std::fabs((double)f);
    const unsigned expMax = (1u << (15 - mant)) - 1, inf = (unsigned short)(expMax << mant);
    if (v == 0) return sign;
    if (std::isinf(v)) return (unsigned short)(sign | inf);
    int e;
    std::frexp(v, &e);
    int lead = std::max(e - 1, 1 - bias);  // the leading bit's exponent, at least the least normal one's
    double q = std::nearbyint(std::ldexp(v, mant - lead));
    if (q >= std::ldexp(1.0, mant + 1)) q /= 2, lead++;  // rounded up into the next binade
    if (lead + bias >= (int)expMax) return (unsigned short)(sign | inf);
    if (q < std::ldexp(1.0, mant)) return (unsigned short)(sign | (unsigned)q);  // subnormal (or the least normal, alike)
    return (unsigned short)(sign | ((unsigned)(lead + bias) << mant) | ((unsigned)q - (1u << mant)));
}

double refDecode(unsigned short h, int mant, int bias) {
    const unsigned e = (h & 0x7fffu) >> mant, m = h & ((1u << mant) - 1), expMax = (1u << (15 - mant)) - 1;
    const double sign = (h & 0x8000u) ? -1.0 : 1.0;
    if (e == expMax) return m ? std::nan("") : sign * INFINITY;
    return sign * (e == 0 ? std::ldexp((double)m, 1 - bias - mant) : std::ldexp((double)((1u << mant) + m), (int)e - bias - mant));
}


// A device copy of n floats as 16-bit elements of fp16 (mant 10, bias 15) or bf16 (7, 127), rounded by refEncode, in
// a heap block of exactly n of them (ASan sees a read past the end); widen() reads one back by refDecode.
struct Half16 {
    unsigned short* p = nullptr;
    std::size_t n = 0;
    int mant, bias;
    Half16(const float* src, std::size_t count, bool bf16) : n(count), mant(bf16 ? 7 : 10), bias(bf16 ? 127 : 15) {
        p = static_cast<unsigned short*>(jconv_emu::device_alloc(std::max<std::size_t>(1, n) * sizeof(unsigned short)));
        for (std::size_t i = 0; src && i < n; i++) p[i] = refEncode(src[i], mant, bias);
    }
    double widen(std::size_t i) const { return refDecode(p[i], mant, bias); }
    ~Half16() { jconv_emu::device_free(p); }
    Half16(const Half16&) = delete;
    Half16& operator=(const Half16&) = delete;
};

int tripsMode = 0;  // 1: grid-stride launches get a grid small enough for three trips per thread

dim3 grid1d(long long total) {
    const long long block = 256, maxBlocks = 4096;  // Launcher.BLOCK, Launcher.MAX_BLOCKS
    long long blocks = tripsMode ? std::max(1LL, total / (3 * block)) : std::max(1LL, std::min(maxBlocks, (total + block - 1) / block));
    return dim3{(unsigned)blocks, 1, 1};
}

template <typename Prm, typename... P>
void run(const std::string& kernel, dim3 grid, dim3 block, const Prm* prm, P... pointers) {
    void* ptrs[] = {const_cast<void*>(static_cast<const void*>(pointers))...};
    void* args[1 + sizeof...(P)];
    args[0] = const_cast<Prm*>(prm);
    for (std::size_t i = 0; i < sizeof...(P); i++) args[1 + i] = &ptrs[i];
    std::string saved = where;
    where = kernel + " (" + where + ")";
    jconv_emu::launch(kernel, grid, block, args, sizeof(Prm));
    where = saved;
}

const dim3 BLOCK_1D{256, 1, 1};

// SgemmLauncher: `count` products b = sample * groups + group of C[m x n] (+)= A * B, A(i, l) = a[i*aRow + l*aCol],
// B(l, j) = b[l*bRow + j*bCol], each operand of product b at its base + sample * xS + group * xG.
void sgemm(int m, int n, int k, const float* a, int aRow, int aCol, const float* b, int bRow, int bCol, float* c, int ldc, bool acc,
           Epi e, const float* res, int count, int groups, int aS, int aG, int bS, int bG, int cS, int cG) {
    BatchedGemmParams gp{GemmParams{m, n, k, aRow, aCol, bRow, bCol, ldc, acc ? 1 : 0, e.activation, e.residual}, 0, groups, aS, aG, bS, bG, cS, cG};
    const int bm = m > 64 ? 128 : 64, bn = n > 64 ? 128 : 64;  // SgemmLauncher.kernel
    run("jconv_sgemm_" + std::to_string(bm) + "x" + std::to_string(bn),
        dim3{(unsigned)((n + bn - 1) / bn), (unsigned)((m + bm - 1) / bm), (unsigned)count}, dim3{(unsigned)(bm / 8 * (bn / 8)), 1, 1}, &gp, a,
        b, res ? res : c, c);
}

// ImplicitGemmLauncher.gemms: conv2d is one GEMM; conv_transpose2d one per stride phase with pixels (ConvParams left empty).
struct PhaseAxis {
    int start, pixels, outOffset, taps, firstTap, tapStep, firstShift, shiftStep;
};
PhaseAxis phaseAxis(int phase, int stride, int dilation, int pad, int size, int kernel) {
    auto floorDiv = [](int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
    const int start = std::max(0, floorDiv(pad - phase + stride - 1, stride)), end = floorDiv(size - 1 + pad - phase, stride);
    int first = -1;
    for (int r = 0; r < kernel && first < 0; r++)
        if (((r * dilation - phase) % stride + stride) % stride == 0) first = r;
    int gcd = stride, b = dilation;
    while (b) {
        const int t = gcd % b;
        gcd = b;
        b = t;
    }
    const int step = stride / gcd;
    return PhaseAxis{start, end - start + 1, stride * start + phase - pad, first < 0 ? 0 : (kernel - 1 - first) / step + 1,
                     std::max(first, 0), step, first < 0 ? 0 : (first * dilation - phase) / stride, step * dilation / stride};
}
std::vector<IgemmParams> igemmGemms(const Problem& g) {
    const int cg = g.c / g.groups, kg = g.k / g.groups, rs = g.r * g.s;
    std::vector<IgemmParams> out;
    if (!g.transposed) {
        out.push_back(IgemmParams{ConvParams{}, g.c, g.h, g.w, g.k, g.p, g.q, cg, kg, g.p, g.q, g.strideH, -g.padTop, g.strideW, -g.padLeft,
                                  1, 0, 1, 0, g.r, g.s, 0, g.dilationH, 0, g.dilationW, 0, g.s, 1, cg * rs, rs, 1, 0});
        return out;
    }
    for (int ph = 0; ph < g.strideH; ph++) {
        const PhaseAxis h = phaseAxis(ph, g.strideH, g.dilationH, g.padTop, g.h, g.r);
        if (h.pixels <= 0) continue;
        for (int pw = 0; pw < g.strideW; pw++) {
            const PhaseAxis v = phaseAxis(pw, g.strideW, g.dilationW, g.padLeft, g.w, g.s);
            if (v.pixels <= 0) continue;
            out.push_back(IgemmParams{ConvParams{}, g.k, g.p, g.q, g.c, g.h, g.w, kg, cg, h.pixels, v.pixels, 1, h.start, 1, v.start,
                                      g.strideH, h.outOffset, g.strideW, v.outOffset, h.taps, v.taps, -h.firstShift, -h.shiftStep,
                                      -v.firstShift, -v.shiftStep, h.firstTap * g.s + v.firstTap, h.tapStep * g.s, v.tapStep, rs, cg * rs, 1, 0});
        }
    }
    return out;
}

// One algorithm on one problem: out = epilogue(op(in, w) + bias, res), as the Java launchers do it.
void algorithm(const std::string& alg, const Problem& g, const Buffer& in, const Buffer& w, const Buffer* bias, Epi e,
               const Buffer* residual, Buffer& out) {
    ConvParams a = params(g, e);
    const float* b = bias ? bias->p : out.p;  // Launcher.launch passes out for an absent bias (never read)
    const float* res = residual ? residual->p : out.p;
    const long long cg = g.c / g.groups, kg = g.k / g.groups, pq = (long long)g.p * g.q, crs = cg * g.r * g.s;
    if (alg == "direct") {
        if (!g.transposed) run("jconv_direct_fprop", grid1d((long long)g.n * g.k * pq), BLOCK_1D, &a, in.p, w.p, b, res, out.p);
        else run("jconv_direct_dgrad", grid1d((long long)g.n * g.c * g.h * g.w), BLOCK_1D, &a, in.p, w.p, b, res, out.p);
    } else if (alg == "depthwise" || alg == "depthwise per-element") {
        const long long rows = 15LL * g.strideH + (g.r - 1LL) * g.dilationH + 1, cols = 31LL * g.strideW + (g.s - 1LL) * g.dilationW + 1;
        const bool tiled = alg == "depthwise" && rows * cols <= 4096 && g.r * g.s <= 256;  // DepthwiseLauncher.tiled
        if (!g.transposed && tiled) {
            const unsigned tiles = (unsigned)(((g.p + 15) / 16) * ((g.q + 31) / 32));
            run("jconv_depthwise_fprop_tiled", dim3{tiles, (unsigned)g.k, (unsigned)g.n}, dim3{128, 1, 1}, &a, in.p, w.p, b, res, out.p);
        } else if (!g.transposed) run("jconv_depthwise_fprop", grid1d((long long)g.n * g.k * pq), BLOCK_1D, &a, in.p, w.p, b, res, out.p);
        else run("jconv_depthwise_dgrad", grid1d((long long)g.n * g.c * g.h * g.w), BLOCK_1D, &a, in.p, w.p, b, res, out.p);
    } else if (alg.rfind("implicit-gemm", 0) == 0) {  // "implicit-gemm [tf32 |3xtf32 |fp16 |bf16 |fp16io |bf16io ]BMxBN[ split]": every tile, and split-K in 3 slices
        std::string tile = alg.substr(alg.find(' ') + 1), math;
        for (const char* m : {"tf32 ", "3xtf32 ", "fp16 ", "bf16 ", "fp16io ", "bf16io "})
            if (tile.rfind(m, 0) == 0) {
                math = std::string(m).substr(0, std::strlen(m) - 1) + "_";
                tile = tile.substr(std::strlen(m));
            }
        // <fp16|bf16>io: the operands, residual and output as 16-bit tensors (ImplicitGemmLauncher with a half-precision
        // storage), the output widened into `out` for the comparison
        const bool io = math.find("io_") != std::string::npos, bf16 = math.rfind("bf16", 0) == 0;
        Half16 in16(io ? in.p : nullptr, io ? in.n : 0, bf16), w16(io ? w.p : nullptr, io ? w.n : 0, bf16),
            res16(io && residual ? residual->p : nullptr, io && residual ? residual->n : 0, bf16), out16(nullptr, io ? out.n : 0, bf16);
        const void* inP = io ? (const void*)in16.p : in.p;
        const void* wP = io ? (const void*)w16.p : w.p;
        const void* resP = io ? (residual ? (const void*)res16.p : (const void*)out16.p) : (const void*)res;
        const int bm = std::atoi(tile.c_str()), bn = std::atoi(tile.c_str() + tile.find('x') + 1);
        const bool split = alg.find("split") != std::string::npos;
        std::vector<IgemmParams> gemms = igemmGemms(g);
        int steps = 0;
        for (const IgemmParams& gm : gemms) steps = std::max(steps, (gm.redC + 7) / 8 * gm.tapsH * gm.tapsW);
        const int splits = split ? std::max(1, std::min(3, steps)) : 1, splitSteps = (steps + splits - 1) / splits;
        const long long outSize = (long long)out.n;
        Buffer ws(splits > 1 ? (std::size_t)(splits * outSize) : 0);
        IgemmParams last{};
        for (IgemmParams gemm : gemms) {
            gemm.splits = splits;
            gemm.splitSteps = splitSteps;
            const int perLaunch = std::max(1, 65535 / splits);
            for (int first = 0; first < g.groups; first += perLaunch) {
                IgemmParams ip = gemm;
                ip.conv = params(g, e, 0, first);
                const long long pixels = (long long)g.n * ip.mH * ip.mW;
                const int groups = std::min(perLaunch, g.groups - first);
                const std::string name = std::string("jconv_implicit_gemm_") + math + (g.transposed ? "dgrad_" : "fprop_") + tile.substr(0, tile.find(' '));
                const dim3 grid{(unsigned)((pixels + bm - 1) / bm), (unsigned)((ip.cols + bn - 1) / bn), (unsigned)(groups * splits)};
                const dim3 block{(unsigned)(bm / 8 * (bn / 8)), 1, 1};
                if (io) run(name, grid, block, &ip, inP, wP, b, resP, out16.p, splits > 1 ? ws.p : out.p);
                else run(name, grid, block, &ip, in.p, w.p, b, res, splits > 1 ? ws.p : out.p);
                last = ip;
            }
        }
        if (splits > 1 && !gemms.empty()) {
            if (io) run(std::string("jconv_implicit_gemm_splitk_reduce_") + (bf16 ? "bf16io" : "fp16io"), grid1d(outSize), BLOCK_1D, &last, ws.p, b,
                        resP, out16.p);
            else run("jconv_implicit_gemm_splitk_reduce", grid1d(outSize), BLOCK_1D, &last, ws.p, b, res, out.p);
        }
        for (std::size_t i = 0; io && i < out.n; i++) out.p[i] = (float)out16.widen(i);
    } else if (alg == "im2col") {  // Im2colLauncher: chunks of 2 samples (the launcher's budget holds more; 2 runs the chunking)
        const int chunk = 2;
        Buffer col((std::size_t)(chunk * g.groups * crs * pq));
        ConvParams fill = params(g, Epi{});
        if (!g.transposed) run("jconv_im2col_fprop_bias", grid1d((long long)g.n * g.k * pq), BLOCK_1D, &fill, b, out.p);
        for (int n0 = 0; n0 < g.n; n0 += chunk) {
            const int samples = std::min(chunk, g.n - n0), products = samples * g.groups;
            Im2colParams plain{params(g, Epi{}, n0, 0), samples}, ag{params(g, e, n0, 0), samples};
            const long long yOff = (long long)n0 * g.k * pq;
            if (!g.transposed) {
                run("jconv_im2col_fprop_unfold", grid1d(products * crs * pq), BLOCK_1D, &plain, in.p, col.p);
                sgemm((int)kg, (int)pq, (int)crs, w.p, (int)crs, 1, col.p, (int)pq, 1, out.p + yOff, (int)pq, true, e, res + yOff, products,
                      g.groups, 0, (int)(kg * crs), (int)(g.groups * crs * pq), (int)(crs * pq), (int)(g.k * pq), (int)(kg * pq));
            } else {
                sgemm((int)crs, (int)pq, (int)kg, w.p, 1, (int)crs, in.p + yOff, (int)pq, 1, col.p, (int)pq, false, Epi{}, nullptr, products,
                      g.groups, 0, (int)(kg * crs), (int)(g.k * pq), (int)(kg * pq), (int)(g.groups * crs * pq), (int)(crs * pq));
                run("jconv_im2col_dgrad_fold", grid1d((long long)samples * g.c * g.h * g.w), BLOCK_1D, &ag, col.p, b, res, out.p);
            }
        }
    } else {
        throw std::runtime_error("unknown algorithm " + alg);
    }
}

// WgradLauncher: dw = the weight gradient of g (forward names: x N x C x H x W, dy N x K x P x Q) with the launcher's
// tile and split of the steps (forcedSplits 0) or a forced split (the reduction path on small problems too), on tile
// `tile` ("" for the launcher's choice).
void wgrad(const Problem& g, const Buffer& x, const Buffer& dy, Buffer& dw, int forcedSplits, const std::string& tile) {
    const long long cg = g.c / g.groups, kg = g.k / g.groups, crs = cg * g.r * g.s;
    const long long total = g.k * crs, steps = (long long)g.n * g.p * ((g.q + 7) / 8);
    const std::string t = !tile.empty() ? tile : kg > 64 ? "128x128" : crs > 64 ? "64x128" : "64x64";  // WgradLauncher.tile
    const int bm = std::atoi(t.c_str()), bn = std::atoi(t.c_str() + t.find('x') + 1);
    const long long tiles = (crs + bn - 1) / bn * ((kg + bm - 1) / bm) * g.groups;
    long long splits = std::max(1LL, std::min(std::min(32LL, (264 + tiles - 1) / tiles), steps / 16));  // TARGET_BLOCKS, MAX_SPLITS, MIN_CHUNK
    if (forcedSplits > 0) splits = std::max(1LL, std::min((long long)forcedSplits, steps));
    const long long chunk = (steps + splits - 1) / splits;
    WgradParams wp{params(g, Epi{}), (int)splits, (int)chunk};
    Buffer ws(splits > 1 ? (std::size_t)(splits * total) : 0);
    const int perLaunch = std::max(1, 65535 / (int)splits);
    for (int first = 0; first < g.groups; first += perLaunch) {
        WgradParams wf{params(g, Epi{}, 0, first), (int)splits, (int)chunk};
        const int groups = std::min(perLaunch, g.groups - first);
        run("jconv_implicit_gemm_wgrad_" + t, dim3{(unsigned)((crs + bn - 1) / bn), (unsigned)((kg + bm - 1) / bm), (unsigned)(groups * splits)},
            dim3{(unsigned)(bm / 8 * (bn / 8)), 1, 1}, &wf, x.p, dy.p, splits > 1 ? ws.p : dw.p);
    }
    if (splits > 1) run("jconv_implicit_gemm_wgrad_reduce", grid1d(total), BLOCK_1D, &wp, ws.p, dw.p);
}

// The float64 reference and each element's error bound (as the Java tests' TestSupport.Oracle).
void reference(const Problem& g, const std::vector<float>& in, const std::vector<float>& w, const std::vector<float>& bias,
               std::vector<double>& ref, std::vector<double>& mag) {
    const int cg = g.c / g.groups, kg = g.k / g.groups;
    auto X = [&](int n, int c, int ih, int iw) { return ((long long)(n * g.c + c) * g.h + ih) * g.w + iw; };
    auto Y = [&](int n, int k, int p, int q) { return ((long long)(n * g.k + k) * g.p + p) * g.q + q; };
    auto W = [&](int k, int ci, int r, int s) { return ((long long)(k * cg + ci) * g.r + r) * g.s + s; };
    const long long outSize = g.transposed ? (long long)g.n * g.c * g.h * g.w : (long long)g.n * g.k * g.p * g.q;
    ref.assign(outSize, 0.0);
    mag.assign(outSize, 0.0);
    for (int n = 0; n < g.n; n++)
        for (int k = 0; k < g.k; k++)
            for (int p = 0; p < g.p; p++)
                for (int q = 0; q < g.q; q++)
                    for (int ci = 0; ci < cg; ci++)
                        for (int r = 0; r < g.r; r++)
                            for (int s = 0; s < g.s; s++) {
                                const int ih = p * g.strideH - g.padTop + r * g.dilationH, iw = q * g.strideW - g.padLeft + s * g.dilationW;
                                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                const int c = (k / kg) * cg + ci;
                                const long long xi = X(n, c, ih, iw), yi = Y(n, k, p, q), wi = W(k, ci, r, s);
                                const long long o = g.transposed ? xi : yi, i = g.transposed ? yi : xi;
                                ref[o] += (double)in[i] * w[wi];
                                mag[o] += std::fabs((double)in[i] * w[wi]);
                            }
    if (g.bias) {
        const int channels = g.transposed ? g.c : g.k;
        const long long plane = g.transposed ? (long long)g.h * g.w : (long long)g.p * g.q;
        for (long long o = 0; o < outSize; o++) {
            ref[o] += bias[(o / plane) % channels];
            mag[o] += std::fabs(bias[(o / plane) % channels]);
        }
    }
}

// io.github.jconv.Epilogue in float64: every activation is 1.1-Lipschitz at most, so the bound grows by that factor
// plus the rounding of the activation and the residual add.
double activate(int a, double v) {
    switch (a) {
        case 1: return v < 0 ? 0 : v;
        case 2: return v < 0 ? 0 : (v > 6 ? 6 : v);
        case 3: return v / (1 + std::exp(-v));
        case 4: return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        default: return v;
    }
}

void epilogue(Epi e, const std::vector<float>& res, std::vector<double>& ref, std::vector<double>& mag) {
    for (std::size_t o = 0; o < ref.size(); o++) {
        double v = ref[o] + (e.residual == 2 ? res[o] : 0.0);
        v = activate(e.activation, v) + (e.residual == 1 ? res[o] : 0.0);
        mag[o] = 1.1 * (mag[o] + (e.residual ? std::fabs(res[o]) : 0.0)) + 4 * std::fabs(v);
        ref[o] = v;
    }
}

int failures = 0, runs = 0;
const bool failFast = std::getenv("JCONV_SANITIZE_FAIL_FAST") != nullptr && std::strcmp(std::getenv("JCONV_SANITIZE_FAIL_FAST"), "1") == 0;

void failed() {
    failures++;
    if (failFast) {
        std::fprintf(stderr, "emu-sanitize: stopped at the first failure (JCONV_SANITIZE_FAIL_FAST)\n");
        std::exit(1);
    }
}

// Compares a kernel's result with the float64 reference within factor * mag + floor per element; counts the run.
void compare(const float* got, const std::vector<double>& ref, const std::vector<double>& mag, double factor, double floor = 0.0) {
    runs++;
    for (std::size_t i = 0; i < ref.size(); i++) {
        const double err = std::fabs(got[i] - ref[i]);
        if (!(err <= factor * mag[i] + floor)) {
            std::fprintf(stderr, "emu-sanitize: FAIL %s: element %zu is %g, reference %g (schedule seed %llu)\n", where.c_str(), i,
                         (double)got[i], ref[i], (unsigned long long)jconv_emu::schedule_seed());
            failed();
            return;
        }
    }
}

// The weight and bias gradients of g (in forward names, whatever its direction) against float64: the weight gradient with
// the launcher's split and with three slices, the bias gradient (jconv_bias_wgrad); bound (terms + 2) eps sum |dy x|.
void checkGradients(const Problem& g, std::mt19937_64& rnd) {
    std::normal_distribution<float> gauss;
    const int cg = g.c / g.groups, kg = g.k / g.groups;
    const long long pq = (long long)g.p * g.q;
    std::vector<float> x((std::size_t)g.n * g.c * g.h * g.w), dy((std::size_t)(g.n * g.k * pq));
    for (auto& v : x) v = gauss(rnd);
    for (auto& v : dy) v = gauss(rnd);
    std::vector<double> ref((std::size_t)g.k * cg * g.r * g.s, 0.0), mag(ref.size(), 0.0), bref(g.k, 0.0), bmag(g.k, 0.0);
    for (int n = 0; n < g.n; n++)
        for (int k = 0; k < g.k; k++)
            for (int p = 0; p < g.p; p++)
                for (int q = 0; q < g.q; q++) {
                    const double d = dy[((std::size_t)(n * g.k + k) * g.p + p) * g.q + q];
                    bref[k] += d;
                    bmag[k] += std::fabs(d);
                    for (int ci = 0; ci < cg; ci++)
                        for (int r = 0; r < g.r; r++)
                            for (int s = 0; s < g.s; s++) {
                                const int ih = p * g.strideH - g.padTop + r * g.dilationH, iw = q * g.strideW - g.padLeft + s * g.dilationW;
                                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                                const double xv = x[((std::size_t)(n * g.c + (k / kg) * cg + ci) * g.h + ih) * g.w + iw];
                                const std::size_t o = ((std::size_t)(k * cg + ci) * g.r + r) * g.s + s;
                                ref[o] += d * xv;
                                mag[o] += std::fabs(d * xv);
                            }
                }
    const double factor = ((double)g.n * pq + 2) * 1.1920928955078125e-7;
    for (const char* tile : {"", "128x128", "64x128", "64x64"}) {
        for (int forced : {0, 3}) {
            if (*tile && forced == 0) continue;  // every tile with three slices; the launcher's choice both ways
            for (int mode = 0; mode < 2; mode++) {
                tripsMode = mode;
                where = std::string("implicit-gemm weight gradient ") + (*tile ? tile : "(the launcher's tile)") + ", " +
                        (forced ? "three slices" : "the launcher's split") + (mode ? " (grid-stride loops of three trips)" : "") + " on " +
                        describe(g);
                Buffer dx(x), ddy(dy), dw(ref.size());
                wgrad(g, dx, ddy, dw, forced, tile);
                compare(dw.p, ref, mag, factor);
            }
        }
    }
    where = "bias gradient on " + describe(g);
    Buffer ddy(dy), db((std::size_t)g.k);
    ConvParams bp{g.n, 0, 0, 0, g.k, 1, 1, 1, (int)pq, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};  // WgradLauncher.bias
    run("jconv_bias_wgrad", dim3{(unsigned)g.k, 1, 1}, BLOCK_1D, &bp, ddy.p, db.p);
    compare(db.p, bref, bmag, factor);
}

// The channels-last conversion (layout.cu, CudaBackend.convertLayoutOnDevice) of g's input, NCHW -> NHWC and back, each
// against the host's transpose exactly; with the launcher's grid and with one small enough that each block takes three
// tiles or more (the tile's second barrier guards its reuse).
void checkLayouts(const Problem& g, std::mt19937_64& rnd) {
    std::normal_distribution<float> gauss;
    const int hw = g.h * g.w;
    std::vector<float> x((std::size_t)g.n * g.c * hw);
    for (auto& v : x) v = gauss(rnd);
    std::vector<double> nhwc(x.size()), nchw(x.size()), zero(x.size(), 0.0);
    for (int n = 0; n < g.n; n++)
        for (int c = 0; c < g.c; c++)
            for (int i = 0; i < hw; i++) {
                const std::size_t at = ((std::size_t)n * g.c + c) * hw + i;
                nhwc[((std::size_t)n * hw + i) * g.c + c] = x[at];
                nchw[at] = x[at];
            }
    for (int mode = 0; mode < 2; mode++) {
        for (int toNhwc = 1; toNhwc >= 0; toNhwc--) {
            const int rows = toNhwc ? g.c : hw, cols = toNhwc ? hw : g.c;
            const long long tiles = (long long)g.n * ((rows + 31) / 32) * ((cols + 31) / 32);
            const dim3 grid{(unsigned)(mode ? std::max(1LL, tiles / 3) : std::min(4096LL, tiles)), 1, 1};
            ConvParams a{};
            a.n = g.n;
            a.h = rows;
            a.w = cols;
            std::vector<float> src(x.size());
            for (std::size_t i = 0; i < x.size(); i++) src[i] = (float)(toNhwc ? nchw[i] : nhwc[i]);
            where = std::string(toNhwc ? "nchw -> nhwc" : "nhwc -> nchw") + (mode ? " (three tiles per block)" : "") + " of " + describe(g);
            Buffer in(src), out(x.size());
            run("jconv_transpose_planes", grid, BLOCK_1D, &a, in.p, out.p);
            compare(out.p, toNhwc ? nhwc : nchw, zero, 0.0);
        }
    }
}

// Half-precision storage (dtype.cu, CudaBackend.convertDtypeOnDevice) on as many elements as g's input, in buffers of
// exactly that many 16-bit elements (an odd count ends mid-float): float32 -> fp16 / bf16 against the double-arithmetic
// rounding (values from the subnormals to past the largest finite one), and back against the exact decode, bit for bit;
// with the launcher's grid and with one block.
void checkDtypes(const Problem& g, std::mt19937_64& rnd) {
    std::normal_distribution<float> gauss;
    const std::size_t n = (std::size_t)g.n * g.c * g.h * g.w;
    std::vector<float> x(n);
    for (auto& v : x) v = std::ldexp(gauss(rnd), std::uniform_int_distribution<int>(-30, 20)(rnd));
    for (int bf16 = 0; bf16 < 2; bf16++) {
        const int mant = bf16 ? 7 : 10, bias = bf16 ? 127 : 15;
        for (int oneBlock = 0; oneBlock < 2; oneBlock++) {
            ConvParams a{};
            a.n = (int)n;
            a.c = bf16;
            const dim3 grid = oneBlock ? dim3{1, 1, 1} : grid1d((long long)n);
            where = std::string(bf16 ? "bf16" : "fp16") + " storage of " + std::to_string(n) + " elements" + (oneBlock ? " (one block)" : "") +
                    " for " + describe(g);
            Buffer in(x), wide(n);
            auto* half = static_cast<unsigned short*>(jconv_emu::device_alloc(n * sizeof(unsigned short)));
            run("jconv_float_to_half", grid, BLOCK_1D, &a, in.p, half);
            run("jconv_half_to_float", grid, BLOCK_1D, &a, half, wide.p);
            runs++;
            for (std::size_t i = 0; i < n; i++) {
                const unsigned short want = refEncode(x[i], mant, bias);
                if (half[i] != want || (double)wide.p[i] != refDecode(want, mant, bias)) {
                    std::fprintf(stderr, "emu-sanitize: FAIL %s: element %zu, %a, became %04x and widened to %a (want %04x, %a)\n", where.c_str(),
                                 i, (double)x[i], half[i], (double)wide.p[i], want, refDecode(want, mant, bias));
                    failed();
                    break;
                }
            }
            jconv_emu::device_free(half);
        }
    }
}

// The channels-last kernels (ImplicitGemmNhwcLauncher; one group, C a multiple of 8, K even) on g widened to what they
// take (C rounded up to 8, K to 2): NHWC 16-bit input, residual and output, K x R x S x C weights, each tile and format,
// against the float64 reference of the unrounded operands with the 16-bit kernels' bounds (as check's <fp16|bf16>io).
// The bounds (factors of the reference's magnitude) of a problem whose outputs sum `terms` products: FP32's; tf32 and
// fp16 (operands rounded to 11 bits: 2^-10 + 2^-22 of |x w| more) and bf16 (8 bits: 2^-7 + 2^-16); 3xtf32 FP32's over
// three terms a product plus 7 eps (TestSupport.oracle's derivation); and what a 16-bit output's rounding adds.
// fp16 also has an absolute floor: below 2^-14 its values are subnormal, 2^-24 apart, so rounding a value to fp16 errs
// by up to 2^-25 however small the value (bf16's subnormals start at 2^-126: no floor needed). Each product's two
// rounded operands add 2^-25 (|x| + |w|) <= 2^-24 maxOperand, the residual and the output 2^-25 each (the activation
// 1.1-Lipschitz): f16Floor, an absolute term added to the fp16 kernels' bounds.
struct Bounds {
    double fp32, tf32, bf16, tf32x3, f16Floor;
    static constexpr double F16_OUT = 2 * 4.8828125e-4, BF16_OUT = 2 * 3.90625e-3;
    Bounds(int terms, double maxOperand)
        : fp32((4 * std::sqrt((double)terms) + 1) * 1.1920928955078125e-7), tf32(fp32 + 9.7658e-4), bf16(fp32 + 7.8278e-3),
          tf32x3((4 * std::sqrt(3.0 * terms) + 8) * 1.1920928955078125e-7), f16Floor(0x1p-25 * (2 * terms * maxOperand + 3)) {}
};

// The largest |v| over the given arrays (the operands a 16-bit kernel rounds).
double maxAbs(std::initializer_list<const std::vector<float>*> arrays) {
    double m = 0;
    for (const auto* a : arrays)
        for (const float v : *a) m = std::max(m, (double)std::fabs(v));
    return m;
}

// The channels-last kernels on g0 widened to what they take (one group, C whole 16-byte chunks: a multiple of 8 halfs
// or 4 floats, K even), NHWC tensors and KRSC weights, split and not: fp16 / bf16 in their own math, float32 in tf32 and
// 3xtf32.
void checkChannelsLast(const Problem& g0, std::mt19937_64& rnd) {
    if (g0.transposed || g0.groups != 1) return;
    for (const int chunk : {8, 4}) {  // channels per 16-byte chunk: halfs, then floats
        Problem g = g0;
        g.c = (g0.c + chunk - 1) / chunk * chunk;
        g.k = (g0.k + 1) / 2 * 2;
        std::normal_distribution<float> gauss;
        const int hw = g.h * g.w, pq = g.p * g.q, rs = g.r * g.s;
        std::vector<float> in((std::size_t)g.n * g.c * hw), w((std::size_t)g.k * g.c * rs), bias(g.k), res((std::size_t)g.n * g.k * pq);
        for (auto* v : {&in, &w, &bias, &res})
            for (auto& x : *v) x = gauss(rnd);
        std::vector<double> ref, mag;
        reference(g, in, w, bias, ref, mag);
        const Epi e{std::uniform_int_distribution<int>(0, 4)(rnd), std::uniform_int_distribution<int>(0, 2)(rnd)};
        epilogue(e, res, ref, mag);
        // NCHW -> NHWC of n planes of `ch` channels x `plane` pixels; KCRS -> KRSC is the same with n = K, ch = C, plane = R x S
        auto last = [](const std::vector<float>& a, int n, int ch, int plane) {
            std::vector<float> out(a.size());
            for (int i = 0; i < n; i++)
                for (int c = 0; c < ch; c++)
                    for (int j = 0; j < plane; j++) out[((std::size_t)i * plane + j) * ch + c] = a[((std::size_t)i * ch + c) * plane + j];
            return out;
        };
        const std::vector<float> inL = last(in, g.n, g.c, hw), wL = last(w, g.k, g.c, rs), resL = last(res, g.n, g.k, pq);
        const Bounds bound(g.c * rs + 1, maxAbs({&in, &w}));
        const int steps = (g.c + 4 * chunk - 1) / (4 * chunk) * rs;  // four chunks a step
        struct Run {
            const char* kernel;
            int splits;  // split-K slices asked for (capped by the steps), as ImplicitGemmNhwcLauncher.forcedSplits
        };
        const std::initializer_list<Run> halves{Run{"fp16io_fprop_128x64", 1}, Run{"fp16io_fprop_64x64", 3}, Run{"bf16io_fprop_128x64", 3},
                                                Run{"bf16io_fprop_64x64", 1}};
        const std::initializer_list<Run> floats{Run{"tf32_fprop_128x64", 1}, Run{"tf32_fprop_64x64", 3}, Run{"3xtf32_fprop_128x64", 3},
                                                Run{"3xtf32_fprop_64x64", 1}};
        for (const Run run1 : chunk == 8 ? halves : floats) {
            const char* kernel = run1.kernel;
            const bool bf16 = kernel[0] == 'b', x3 = kernel[0] == '3';
            const int bm = std::atoi(std::strchr(kernel, '_') + 7), bn = 64;
            const int splits = std::max(1, std::min(run1.splits, steps)), splitSteps = (steps + splits - 1) / splits;
            Buffer db(bias), ws(splits > 1 ? (std::size_t)splits * resL.size() : 0);
            const NhwcParams a{params(g, e), splits, splitSteps};
            where = std::string("implicit-gemm-nhwc ") + kernel + (splits > 1 ? " split " + std::to_string(splits) : "") + " epilogue " +
                    std::to_string(e.activation) + "/" + std::to_string(e.residual) + " on " + describe(g) + " (widened from c=" +
                    std::to_string(g0.c) + " k=" + std::to_string(g0.k) + ")";
            const dim3 grid{(unsigned)(((long long)g.n * pq + bm - 1) / bm), (unsigned)((g.k + bn - 1) / bn), (unsigned)splits};
            std::vector<float> got(resL.size());
            // got (NCHW) from the kernel's NHWC output element at(i)
            auto gather = [&](auto at) {
                for (int n = 0; n < g.n; n++)
                    for (int k = 0; k < g.k; k++)
                        for (int j = 0; j < pq; j++) got[((std::size_t)n * g.k + k) * pq + j] = (float)at(((std::size_t)n * pq + j) * g.k + k);
            };
            if (chunk == 8) {
                Half16 in16(inL.data(), inL.size(), bf16), w16(wL.data(), wL.size(), bf16), res16(resL.data(), resL.size(), bf16),
                    out16(nullptr, resL.size(), bf16);
                const float* b = g.bias ? (const float*)db.p : (const float*)out16.p;
                const unsigned short* r = e.residual ? res16.p : out16.p;
                run(std::string("jconv_implicit_gemm_nhwc_") + kernel, grid, dim3{(unsigned)bm, 1, 1}, &a, in16.p, w16.p, b, r, out16.p,
                    splits > 1 ? ws.p : (float*)out16.p);
                if (splits > 1)
                    run(std::string("jconv_implicit_gemm_nhwc_splitk_reduce_") + (bf16 ? "bf16io" : "fp16io"), grid1d((long long)resL.size()),
                        BLOCK_1D, &a, ws.p, b, r, out16.p);
                gather([&](std::size_t i) { return out16.widen(i); });
                if (bf16)
                    compare(got.data(), ref, mag, bound.bf16 + Bounds::BF16_OUT);
                else
                    compare(got.data(), ref, mag, bound.tf32 + Bounds::F16_OUT, bound.f16Floor);
            } else {
                Buffer din(inL), dw(wL), dres(resL), dout(resL.size());
                const float* b = g.bias ? (const float*)db.p : (const float*)dout.p;
                const float* r = e.residual ? dres.p : dout.p;
                run(std::string("jconv_implicit_gemm_nhwc_") + kernel, grid, dim3{(unsigned)bm, 1, 1}, &a, din.p, dw.p, b, r, dout.p,
                    splits > 1 ? ws.p : dout.p);
                if (splits > 1)
                    run("jconv_implicit_gemm_nhwc_splitk_reduce", grid1d((long long)resL.size()), BLOCK_1D, &a, ws.p, b, r, dout.p);
                gather([&](std::size_t i) { return dout.p[i]; });
                compare(got.data(), ref, mag, x3 ? bound.tf32x3 : bound.tf32);
            }
        }
    }
}

// tensorCores: also the tensor-core kernels (every shape-table problem and a third of the random ones: under the
// sanitizers each emulated mma.sync is a warp collective, which makes them the slowest kernels here)
void check(const Problem& g, std::mt19937_64& rnd, bool tensorCores) {
    std::normal_distribution<float> gauss;
    const long long inSize = g.transposed ? (long long)g.n * g.k * g.p * g.q : (long long)g.n * g.c * g.h * g.w;
    const long long wSize = (long long)g.k * (g.c / g.groups) * g.r * g.s;
    const int biasSize = g.transposed ? g.c : g.k;
    std::vector<float> in(inSize), w(wSize), bias(biasSize);
    for (auto& v : in) v = gauss(rnd);
    for (auto& v : w) v = gauss(rnd);
    for (auto& v : bias) v = gauss(rnd);
    std::vector<double> ref, mag;
    reference(g, in, w, bias, ref, mag);
    const Epi e{std::uniform_int_distribution<int>(0, 4)(rnd), std::uniform_int_distribution<int>(0, 2)(rnd)};
    std::vector<float> res(ref.size());
    for (auto& v : res) v = gauss(rnd);
    epilogue(e, res, ref, mag);
    // the tensor-core kernels (and those of 16-bit tensors) against the same float64 reference of the unrounded operands
    const Bounds bound((g.transposed ? g.k / g.groups : g.c / g.groups) * g.r * g.s + 1, maxAbs({&in, &w}));
    const bool depthwise = g.c == g.groups;
    for (const char* alg : {"direct", "im2col", "implicit-gemm 128x128", "implicit-gemm 128x64", "implicit-gemm 64x64",
                            "implicit-gemm 64x64 split", "implicit-gemm tf32 128x128", "implicit-gemm tf32 128x64",
                            "implicit-gemm tf32 64x64 split", "implicit-gemm 3xtf32 128x64", "implicit-gemm 3xtf32 64x64",
                            "implicit-gemm 3xtf32 128x128 split", "implicit-gemm fp16 128x128", "implicit-gemm fp16 64x64 split",
                            "implicit-gemm bf16 128x64", "implicit-gemm bf16 64x64 split", "implicit-gemm fp16io 128x64",
                            "implicit-gemm fp16io 128x128 split", "implicit-gemm bf16io 64x64", "implicit-gemm bf16io 128x64 split",
                            "depthwise", "depthwise per-element"}) {
        const std::string a = alg;
        if (a.rfind("depthwise", 0) == 0 && !depthwise) continue;
        const bool mma = a.find("tf32") != std::string::npos || a.find("fp16") != std::string::npos || a.find("bf16") != std::string::npos;
        if (mma && !tensorCores) continue;
        for (int mode = 0; mode < (a.rfind("implicit-gemm", 0) == 0 ? 1 : 2); mode++) {  // implicit GEMM has no grid-stride loop
            tripsMode = mode;
            where = a + (mode ? " (grid-stride loops of three trips)" : "") + " epilogue " + std::to_string(e.activation) + "/" +
                    std::to_string(e.residual) + " on " + describe(g);
            Buffer din(in), dw(w), db(bias), dres(res), out((std::size_t)ref.size());
            try {
                algorithm(a, g, din, dw, g.bias ? &db : nullptr, e, e.residual ? &dres : nullptr, out);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "emu-sanitize: FAIL %s: %s\n", where.c_str(), e.what());
                failed();
                continue;
            }
            // 16-bit tensors also round the residual and the output (each at most one unit of |v| <= mag / 4 or |res| <= mag)
            const bool io = a.find("io ") != std::string::npos;
            compare(out.p, ref, mag, a.find("3xtf32") != std::string::npos ? bound.tf32x3
                                     : a.find("bf16") != std::string::npos ? bound.bf16 + (io ? Bounds::BF16_OUT : 0.0)
                                     : mma ? bound.tf32 + (io ? Bounds::F16_OUT : 0.0) : bound.fp32,
                    a.find("fp16") != std::string::npos ? bound.f16Floor : 0.0);
        }
    }
    if (tensorCores) checkChannelsLast(g, rnd);
    checkGradients(g, rnd);
    checkLayouts(g, rnd);
    checkDtypes(g, rnd);
}

// A random valid problem (explicit padding; the shape table covers same / output size).
bool draw(std::mt19937_64& rnd, Problem& g) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rnd); };
    g = Problem{"random", pick(0, 1), pick(1, 3), 0, 0, 0, 0, pick(1, 5), pick(1, 5), 0, 0, pick(0, 3), pick(0, 3), pick(0, 3), pick(0, 3),
                pick(1, 3), pick(1, 3), pick(1, 3), pick(1, 3), pick(1, 3), pick(0, 1)};
    int cg = pick(1, 5), kg = pick(1, 8);
    switch (pick(0, 3)) {
        case 0: g.groups = pick(1, 6), cg = 1, kg = pick(1, 3); break;  // depthwise
        case 1: kg = pick(30, 70); break;                                // several GEMM tiles of channels
        default: break;
    }
    g.c = g.groups * cg;
    g.k = g.groups * kg;
    const int effR = g.dilationH * (g.r - 1) + 1, effS = g.dilationW * (g.s - 1) + 1;
    if (!g.transposed) {
        g.h = pick(1, 12);
        g.w = pick(1, 16);
        if (effR > g.h + g.padTop + g.padBottom || effS > g.w + g.padLeft + g.padRight) return false;
        g.p = (g.h + g.padTop + g.padBottom - effR) / g.strideH + 1;
        g.q = (g.w + g.padLeft + g.padRight - effS) / g.strideW + 1;
        return true;
    }
    g.p = pick(1, 10);
    g.q = pick(1, 12);
    const int opH = pick(0, std::max(g.strideH, g.dilationH) - 1), opW = pick(0, std::max(g.strideW, g.dilationW) - 1);
    g.h = (g.p - 1) * g.strideH - g.padTop - g.padBottom + effR + opH;
    g.w = (g.q - 1) * g.strideW - g.padLeft - g.padRight + effS + opW;
    return g.h >= 1 && g.w >= 1;
}
}  // namespace

int main(int argc, char** argv) {
    __sanitizer_set_death_callback(on_death);
    const int randomSpecs = argc > 1 ? std::atoi(argv[1]) : 300;
    const unsigned long long seed = argc > 2 ? std::strtoull(argv[2], nullptr, 0) : std::random_device{}();
    int shard = 0, shards = 1;
    if (argc > 3 && (std::sscanf(argv[3], "%d/%d", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards)) {
        std::fprintf(stderr, "emu-sanitize: the shard is SHARD/SHARDS with 0 <= SHARD < SHARDS, not '%s'\n", argv[3]);
        return 2;
    }
    const int tableSize = (int)(sizeof TABLE / sizeof TABLE[0]);
    std::printf("emu-sanitize: %d shape-table problems and %d random ones (seed %llu), shard %d/%d, emulator schedule seed %llu\n",
                tableSize, randomSpecs, seed, shard, shards, (unsigned long long)jconv_emu::schedule_seed());
    for (int j = 0; j < tableSize + randomSpecs; j++) {
        if (j % shards != shard) continue;
        std::mt19937_64 rnd(seed ^ (0x9E3779B97F4A7C15ULL * (unsigned long long)(j + 1)));
        if (j < tableSize) {
            check(TABLE[j], rnd, true);
            continue;
        }
        Problem g;
        while (!draw(rnd, g)) {
        }
        check(g, rnd, (j - tableSize) % 3 == 0);
    }
    std::printf("emu-sanitize: %d kernel runs, %d failures\n", runs, failures);
    return failures == 0 ? 0 : 1;
}
