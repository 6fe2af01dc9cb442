// implicit_gemm_nhwc.cu: conv2d (fprop, one group) on channels-last (NHWC) half-precision tensors in their own math, on
// the tensor cores (mma.sync m16n8k16, FP32 accumulation; sm_80 and newer) with a cp.async multistage main loop and
// ldmatrix fragments (io.github.jconv.cuda.ImplicitGemmNhwcLauncher; the README's tensor-core section).
//
// The GEMM: D[M x K] = A[M x L] * B[L x K], M the output pixels m = (n, p, q) of N x P x Q, L = (r, s, c) with the tap
// (r, s) outermost and the channel c innermost in 32-deep steps, K the output channels:
//   A(m, (r, s, c)) = x[n][p*strideH - padTop + r*dilationH][q*strideW - padLeft + s*dilationW][c], 0 in the padding;
//   B((r, s, c), k) = w[k][r][s][c] (KRSC: the plan reorders PyTorch's KCRS once, at build);
//   y[n][p][q][k] = epilogue(D + bias[k], residual[n][p][q][k]), rounded to the storage format as it is stored.
// In NHWC both operands' rows are contiguous along the reduction: 8 channels are 16 bytes, one cp.async, so the loader
// copies global memory straight into shared memory (no registers, no conversion) and the channel count must be a
// multiple of 8 (the launcher says so otherwise); a 16-byte chunk past C or a tap in the padding is a zero-filling
// cp.async (src-size 0: nothing read).
//
// Block: BM pixels x BN output channels, warps of 64 x 32 (4 x 4 MMA tiles of 16 x 8), BM threads, each loading one A row
// (its pixel's (n, p, q) found once, before the loop) and BN * 4 / BM chunks of one B row. Shared memory: STAGES stages
// of BM + BN rows of 32 halfs (64 bytes = four 16-byte chunks), chunk c of row r at position c ^ ((r / 2) % 4), so the
// eight rows an ldmatrix phase reads at one chunk fall in eight distinct 16-byte bank groups. Main loop (CUTLASS's
// multistage): STAGES - 1 steps in flight; per step wait for the oldest, one barrier, issue the copies of the step
// STAGES - 1 ahead into the stage the previous step read, then two 16-deep halves of ldmatrix.x4 (A: one per MMA row
// tile, B: one per two column tiles) and 16 MMAs each. The reduction position advances by adds and compares only.
//
// Split-K (splits > 1, grids of few blocks): slice s of the steps (blockIdx.z) writes its raw float32 sums, without
// bias or epilogue, to plane s of the workspace (each plane laid out as the output, pixel m's channels at m x K), and
// jconv_implicit_gemm_nhwc_splitk_reduce_<fp16io|bf16io> adds the planes in slice order, then the bias and the
// epilogue, and rounds: no atomics, the same bits every run.
#include "jconv_mma_mainloop.cuh"  // jconv_mma_zero
#include "jconv_splitk.cuh"

#define JCONV_NHWC_STAGES 3
#define JCONV_NHWC_DEPTH 32  // channels per step: four 16-byte chunks of halfs

// The offset (in 32-bit words) of 16-byte chunk c of row r in one stage.
__device__ __forceinline__ int jconv_nhwc_chunk(int r, int c) { return r * 16 + ((c ^ ((r >> 1) & 3)) << 2); }

template <int BM, int BN, typename In>
struct NhwcLoader {
    static constexpr int THREADS = BM, B_CHUNKS = BN * 4 / BM;  // B chunks per thread, all of one row
    static_assert(B_CHUNKS >= 1 && B_CHUNKS <= 4 && 4 % B_CHUNKS == 0, "each thread loads whole chunks of one B row");
    const ConvParams& a;
    const In* x;  // a valid address to pass with src-size 0
    const In* aBase;
    const In* bBase;
    bool aPix, bOk;
    int ih0, iw0, ih, iw, s, c0, tapOff, bRow, bChunk0;

    // the loader of block (blockIdx.x, blockIdx.y), positioned at step `first` (tap first / cSteps, channel step
    // first % cSteps)
    __device__ NhwcLoader(const ConvParams& prm, const In* in, const In* w, int first) : a(prm), x(in) {
        const int t = (int)threadIdx.x, pq = a.p * a.q;
        const i64 m = (i64)blockIdx.x * BM + t;
        aPix = m < (i64)a.n * pq;
        int n = 0, p = 0, q = 0;
        if (aPix) {
            n = (int)(m / pq);
            const int rem = (int)(m - (i64)n * pq);
            p = rem / a.q;
            q = rem - p * a.q;
        }
        ih0 = p * a.strideH - a.padTop;
        iw0 = q * a.strideW - a.padLeft;
        const int cSteps = (a.c + JCONV_NHWC_DEPTH - 1) / JCONV_NHWC_DEPTH, tap = first / cSteps, r = tap / a.s;
        s = tap - r * a.s;
        c0 = (first - tap * cSteps) * JCONV_NHWC_DEPTH;
        tapOff = tap * a.c;
        ih = ih0 + r * a.dilationH;
        iw = iw0 + s * a.dilationW;
        aBase = in + (i64)n * a.h * a.w * a.c;
        bRow = t * B_CHUNKS / 4;
        bChunk0 = t * B_CHUNKS % 4;
        const int k = (int)blockIdx.y * BN + bRow;
        bOk = k < a.k;
        bBase = w + (i64)(bOk ? k : 0) * a.r * a.s * a.c;
    }

    // the copies of the current step into stage (as, bs)
    __device__ __forceinline__ void load(unsigned* as, unsigned* bs) const {
        const int t = (int)threadIdx.x;
        const bool tapOk = aPix && (unsigned)ih < (unsigned)a.h && (unsigned)iw < (unsigned)a.w;
        const In* ap = aBase + ((i64)ih * a.w + iw) * a.c + c0;  // formed, never read when !tapOk
        JCONV_UNROLL
        for (int c = 0; c < 4; c++) {
            const bool full = tapOk && c0 + 8 * c < a.c;
            jconv_cp_async_16_zfill(&as[jconv_nhwc_chunk(t, c)], full ? (const void*)(ap + 8 * c) : (const void*)x, full);
        }
        const In* bp = bBase + tapOff + c0;
        JCONV_UNROLL
        for (int j = 0; j < B_CHUNKS; j++) {
            const int c = bChunk0 + j;
            const bool full = bOk && c0 + 8 * c < a.c;
            jconv_cp_async_16_zfill(&bs[jconv_nhwc_chunk(bRow, c)], full ? (const void*)(bp + 8 * c) : (const void*)x, full);
        }
    }

    // to the next step: the next 32 channels, else the next tap (s inner, r outer)
    __device__ __forceinline__ void advance() {
        c0 += JCONV_NHWC_DEPTH;
        if (c0 >= a.c) {
            c0 = 0;
            tapOff += a.c;
            iw += a.dilationW;
            if (++s == a.s) {
                s = 0;
                iw = iw0;
                ih += a.dilationH;
            }
        }
    }
};

template <int BM, int BN, bool BF16, typename In>
__device__ __forceinline__ void igemm_nhwc(const NhwcParams& prm, const In* __restrict__ in, const In* __restrict__ w,
                                           const float* __restrict__ bias, const In* __restrict__ res, In* __restrict__ out,
                                           float* __restrict__ ws) {
    const ConvParams& a = prm.conv;
    constexpr int STAGES = JCONV_NHWC_STAGES, WARPS_M = BM / 64;
    static_assert(BM % 64 == 0 && BN % 32 == 0 && (BM / 64) * (BN / 32) * 32 == BM, "warps of 64 x 32, one thread per A row");
    __shared__ __align__(16) unsigned As[STAGES][BM * 16];
    __shared__ __align__(16) unsigned Bs[STAGES][BN * 16];
    const int all = (a.c + JCONV_NHWC_DEPTH - 1) / JCONV_NHWC_DEPTH * a.r * a.s, slice = (int)blockIdx.z;
    const int first = slice * prm.splitSteps;
    const int steps = all - first < prm.splitSteps ? all - first : prm.splitSteps;  // this slice's (0 or less: none)
    NhwcLoader<BM, BN, In> ld(a, in, w, steps > 0 ? first : 0);
    const int lane = (int)threadIdx.x % 32, warp = (int)threadIdx.x / 32;
    const int wm = warp % WARPS_M * 64, wn = warp / WARPS_M * 32;
    // ldmatrix rows: A tile i gives lane l row wm + 16 i + l % 16 at chunk l / 16 (of the 16-deep half); B pair h gives
    // row wn + 16 h + l % 8 + 8 (l / 16) at chunk (l / 8) % 2
    const int aRow = wm + lane % 16, aHalf = lane / 16;
    const int bRow = wn + lane % 8 + 8 * (lane / 16), bHalf = lane / 8 % 2;

    float q[4][4][4];
    jconv_mma_zero(q);

    JCONV_UNROLL
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < steps) {
            ld.load(As[st], Bs[st]);
            ld.advance();
        }
        jconv_cp_async_commit();
    }
    int rd = 0, wr = STAGES - 1;
    for (int step = 0; step < steps; step++) {
        jconv_cp_async_wait<STAGES - 2>();
        __syncthreads();  // this step's stage complete for every thread; every thread done with the stage written next
        if (step + STAGES - 1 < steps) {
            ld.load(As[wr], Bs[wr]);
            ld.advance();
        }
        jconv_cp_async_commit();
        const unsigned* as = As[rd];
        const unsigned* bs = Bs[rd];
        JCONV_UNROLL
        for (int kh = 0; kh < 2; kh++) {
            unsigned af[4][4], bf[4][2];
            JCONV_UNROLL
            for (int i = 0; i < 4; i++) jconv_ldmatrix_x4<false>(af[i], &as[jconv_nhwc_chunk(aRow + 16 * i, 2 * kh + aHalf)]);
            JCONV_UNROLL
            for (int h = 0; h < 2; h++) {
                unsigned r[4];
                jconv_ldmatrix_x4<false>(r, &bs[jconv_nhwc_chunk(bRow + 16 * h, 2 * kh + bHalf)]);
                bf[2 * h][0] = r[0];
                bf[2 * h][1] = r[1];
                bf[2 * h + 1][0] = r[2];
                bf[2 * h + 1][1] = r[3];
            }
            JCONV_UNROLL
            for (int i = 0; i < 4; i++)
                JCONV_UNROLL
                for (int j = 0; j < 4; j++) jconv_mma_m16n8k16<BF16>(q[i][j], af[i], bf[j], q[i][j]);
        }
        rd = rd == STAGES - 1 ? 0 : rd + 1;
        wr = wr == STAGES - 1 ? 0 : wr + 1;
    }
    jconv_cp_async_wait<0>();

    // lane (g, t) holds, of MMA tile (i, j), rows g and g + 8 at columns 2t and 2t + 1: two adjacent channels of one
    // output pixel, stored as one 32-bit word (K is even: the launcher checks), or as two raw floats in the slice's plane
    const i64 mTotal = (i64)a.n * a.p * a.q;
    float* part = prm.splits > 1 ? ws + (i64)slice * mTotal * a.k : nullptr;
    const int g = lane / 4, t = lane % 4;
    JCONV_UNROLL
    for (int i = 0; i < 4; i++)
        JCONV_UNROLL
        for (int hr = 0; hr < 2; hr++) {
            const i64 m = (i64)blockIdx.x * BM + wm + 16 * i + g + 8 * hr;
            if (m >= mTotal) continue;
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) {
                const int col = (int)blockIdx.y * BN + wn + 8 * j + 2 * t;
                if (col >= a.k) continue;
                const i64 at = m * a.k + col;
                if (part) {
                    part[at] = q[i][j][2 * hr];
                    part[at + 1] = q[i][j][2 * hr + 1];
                    continue;
                }
                const float v0 = q[i][j][2 * hr] + (a.hasBias ? bias[col] : 0.0f);
                const float v1 = q[i][j][2 * hr + 1] + (a.hasBias ? bias[col + 1] : 0.0f);
                const unsigned lo = jconv_narrow<In>(jconv_epilogue(a.activation, a.residual, v0, res, at)).bits;
                const unsigned hi = jconv_narrow<In>(jconv_epilogue(a.activation, a.residual, v1, res, at + 1)).bits;
                *reinterpret_cast<unsigned*>(out + at) = lo | (hi << 16);
            }
        }
}

// One entry point per format and tile: jconv_implicit_gemm_nhwc_<fp16io|bf16io>_fprop_<BMxBN> (BM threads).
#define JCONV_IGEMM_NHWC_ENTRY(name, bounds, bm, bn, bf16, In)                                                          \
    extern "C" __global__ void __launch_bounds__ bounds name(NhwcParams p, const In* __restrict__ in, const In* __restrict__ w, \
                                                            const float* __restrict__ bias, const In* __restrict__ res,        \
                                                            In* __restrict__ out, float* __restrict__ ws) {                    \
        igemm_nhwc<bm, bn, bf16, In>(p, in, w, bias, res, out, ws);                                                     \
    }                                                                                                                   \
    JCONV_KERNEL_REGISTER(name)
#define JCONV_IGEMM_NHWC_TILES(prefix, bf16, In)                                 \
    JCONV_IGEMM_NHWC_ENTRY(prefix##fprop_128x64, (128), 128, 64, bf16, In)        \
    JCONV_IGEMM_NHWC_ENTRY(prefix##fprop_64x64, (64), 64, 64, bf16, In)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_fp16io_, false, jconv_f16)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_bf16io_, true, jconv_bf16)

// Split-K's second pass: out[i] = epilogue(the sum of the `splits` workspace planes at i in slice order + bias[i % K])
// over the whole NHWC output, rounded to Out.
template <typename Out>
__device__ __forceinline__ void igemm_nhwc_splitk_reduce(const NhwcParams& p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                         const Out* __restrict__ res, Out* __restrict__ out) {
    const ConvParams& a = p.conv;
    const FastDiv dk(a.k);
    auto channel = [&](i64 i) { return (int)(i - dk.div(i) * a.k); };
    jconv_splitk_reduce(a, p.splits, (i64)a.n * a.p * a.q * a.k, channel, ws, bias, res, out);
}
extern "C" __global__ void jconv_implicit_gemm_nhwc_splitk_reduce_fp16io(NhwcParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                                         const jconv_f16* __restrict__ res, jconv_f16* __restrict__ out) {
    igemm_nhwc_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_nhwc_splitk_reduce_fp16io)
extern "C" __global__ void jconv_implicit_gemm_nhwc_splitk_reduce_bf16io(NhwcParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                                         const jconv_bf16* __restrict__ res, jconv_bf16* __restrict__ out) {
    igemm_nhwc_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_nhwc_splitk_reduce_bf16io)
