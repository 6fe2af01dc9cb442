// implicit_gemm_nhwc.cu: conv2d (fprop, one group) on channels-last (NHWC) tensors on the tensor cores (sm_80 and
// newer), with a cp.async multistage main loop and ldmatrix fragments (io.github.jconv.cuda.ImplicitGemmNhwcLauncher;
// the README's tensor-core section): half-precision tensors in their own math (mma.sync m16n8k16), and float32 tensors
// in TF32 or 3xTF32 (mma.sync m16n8k8); FP32 accumulation.
//
// The GEMM: D[M x K] = A[M x L] * B[L x K], M the output pixels m = (n, p, q) of N x P x Q, L = (r, s, c) with the tap
// (r, s) outermost and the channel c innermost in steps of 64 bytes of channels (32 halfs or 16 floats), K the output
// channels:
//   A(m, (r, s, c)) = x[n][p*strideH - padTop + r*dilationH][q*strideW - padLeft + s*dilationW][c], 0 in the padding;
//   B((r, s, c), k) = w[k][r][s][c] (KRSC: the plan reorders PyTorch's KCRS once, at build);
//   y[n][p][q][k] = epilogue(D + bias[k], residual[n][p][q][k]), rounded to the storage format as it is stored.
// In NHWC both operands' rows are contiguous along the reduction: 16 bytes (8 halfs or 4 floats) are one cp.async, so
// the loader copies global memory straight into shared memory (no registers, no conversion) and C must fill whole
// 16-byte chunks (a multiple of 8 halfs or 4 floats; the launcher says so otherwise); a 16-byte chunk past C or a tap
// in the padding is a zero-filling cp.async (src-size 0: nothing read).
//
// Block: BM pixels x BN output channels, warps of 64 x 32 (4 x 4 MMA tiles of 16 x 8), BM threads, each loading one A row
// (its pixel's (n, p, q) found once, before the loop) and BN * 4 / BM chunks of one B row. Shared memory: STAGES stages
// of BM + BN rows of 64 bytes (four 16-byte chunks), chunk c of row r at position c ^ ((r / 2) % 4), so the eight rows
// an ldmatrix phase reads at one chunk fall in eight distinct 16-byte bank groups. Main loop (CUTLASS's multistage):
// STAGES - 1 steps in flight; per step wait for the oldest, one barrier, issue the copies of the step STAGES - 1 ahead
// into the stage the previous step read, then two halves (32 bytes of each row: an MMA's depth, 16 halfs or 8 floats)
// of ldmatrix.x4 (A: one per MMA row tile, B: one per two column tiles) and 16 MMAs each (3xTF32: 48). The reduction
// position advances by adds and compares only.
//
// One ldmatrix serves both element sizes: an 8 x 8 matrix of 16-bit values is 8 rows of four 32-bit words, and lane l
// receives word l % 4 of row l / 4: for halfs the pair of depths 2t, 2t + 1 of m16n8k16's fragments, for floats depth t
// of m16n8k8's TF32 fragments (row g = l / 4, t = l % 4, both operands K-contiguous: no transposition). TF32 rounds each
// fragment word (cvt.rna, as the NCHW kernels round as they stage); 3xTF32 splits it into big = tf32(x) and small =
// tf32(x - big) and issues small*big, big*small, big*big per accumulator, the cross terms with non-finite values zeroed
// (jconv_mma_mainloop.cuh's rule: the same sums as the NCHW kernels, step for step).
//
// Split-K (splits > 1, grids of few blocks): slice s of the steps (blockIdx.z) writes its raw float32 sums, without
// bias or epilogue, to plane s of the workspace (each plane laid out as the output, pixel m's channels at m x K), and
// jconv_implicit_gemm_nhwc_splitk_reduce[_fp16io|_bf16io] adds the planes in slice order, then the bias and the
// epilogue, and rounds to the storage format: no atomics, the same bits every run.
#include "jconv_mma_mainloop.cuh"  // jconv_mma_zero, MmaMath, jconv_split_tf32
#include "jconv_splitk.cuh"

#define JCONV_NHWC_STAGES 3

// Channels of In in one 16-byte chunk (8 halfs, 4 floats), and in one step: four chunks, a 64-byte row.
template <typename In>
constexpr int jconv_nhwc_chunk_channels = 16 / (int)sizeof(In);
template <typename In>
constexpr int jconv_nhwc_depth = 4 * jconv_nhwc_chunk_channels<In>;

// The offset (in 32-bit words) of 16-byte chunk c of row r in one stage.
__device__ __forceinline__ int jconv_nhwc_chunk(int r, int c) { return r * 16 + ((c ^ ((r >> 1) & 3)) << 2); }

template <int BM, int BN, typename In>
struct NhwcLoader {
    static constexpr int THREADS = BM, B_CHUNKS = BN * 4 / BM;  // B chunks per thread, all of one row
    static constexpr int CH = jconv_nhwc_chunk_channels<In>, DEPTH = jconv_nhwc_depth<In>;
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
        const int cSteps = (a.c + DEPTH - 1) / DEPTH, tap = first / cSteps, r = tap / a.s;
        s = tap - r * a.s;
        c0 = (first - tap * cSteps) * DEPTH;
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
            const bool full = tapOk && c0 + CH * c < a.c;
            jconv_cp_async_16_zfill(&as[jconv_nhwc_chunk(t, c)], full ? (const void*)(ap + CH * c) : (const void*)x, full);
        }
        const In* bp = bBase + tapOff + c0;
        JCONV_UNROLL
        for (int j = 0; j < B_CHUNKS; j++) {
            const int c = bChunk0 + j;
            const bool full = bOk && c0 + CH * c < a.c;
            jconv_cp_async_16_zfill(&bs[jconv_nhwc_chunk(bRow, c)], full ? (const void*)(bp + CH * c) : (const void*)x, full);
        }
    }

    // to the next step: the next DEPTH channels, else the next tap (s inner, r outer)
    __device__ __forceinline__ void advance() {
        c0 += DEPTH;
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

// q[i][j] += A tile i * B tile j over one MMA depth of fragments a, b (raw words: halfs as stored, or float32 bits), in MATH.
template <MmaMath MATH>
__device__ __forceinline__ void jconv_nhwc_mmas(float (&q)[4][4][4], const unsigned (&a)[4][4], const unsigned (&b)[4][2]) {
    if constexpr (MATH == MmaMath::F16 || MATH == MmaMath::BF16) {
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) jconv_mma_m16n8k16<MATH == MmaMath::BF16>(q[i][j], a[i], b[j], q[i][j]);
    } else if constexpr (MATH == MmaMath::TF32) {
        unsigned ar[4][4], br[4][2];
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int e = 0; e < 4; e++) ar[i][e] = jconv_to_tf32(__int_as_float((int)a[i][e]));
        JCONV_UNROLL
        for (int j = 0; j < 4; j++)
            JCONV_UNROLL
            for (int e = 0; e < 2; e++) br[j][e] = jconv_to_tf32(__int_as_float((int)b[j][e]));
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) jconv_mma_m16n8k8_tf32(q[i][j], ar[i], br[j], q[i][j]);
    } else {
        static_assert(MATH == MmaMath::TF32X3, "a channels-last math");
        // big, small and big with non-finite values zeroed (the cross terms' operand), per fragment word
        unsigned bb[4][2], bs[4][2], bc[4][2];
        JCONV_UNROLL
        for (int j = 0; j < 4; j++)
            JCONV_UNROLL
            for (int e = 0; e < 2; e++) {
                const bool finite = jconv_split_tf32(__int_as_float((int)b[j][e]), bb[j][e], bs[j][e]);
                bc[j][e] = finite ? bb[j][e] : 0u;
            }
        JCONV_UNROLL
        for (int i = 0; i < 4; i++) {
            unsigned ab[4], as[4], ac[4];
            JCONV_UNROLL
            for (int e = 0; e < 4; e++) {
                const bool finite = jconv_split_tf32(__int_as_float((int)a[i][e]), ab[e], as[e]);
                ac[e] = finite ? ab[e] : 0u;
            }
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) {  // per accumulator small*big, big*small, big*big, as the NCHW kernels
                jconv_mma_m16n8k8_tf32(q[i][j], as, bc[j], q[i][j]);
                jconv_mma_m16n8k8_tf32(q[i][j], ac, bs[j], q[i][j]);
                jconv_mma_m16n8k8_tf32(q[i][j], ab, bb[j], q[i][j]);
            }
        }
    }
}

template <int BM, int BN, MmaMath MATH, typename In>
__device__ __forceinline__ void igemm_nhwc(const NhwcParams& prm, const In* __restrict__ in, const In* __restrict__ w,
                                           const float* __restrict__ bias, const In* __restrict__ res, In* __restrict__ out,
                                           float* __restrict__ ws) {
    const ConvParams& a = prm.conv;
    constexpr int STAGES = JCONV_NHWC_STAGES, WARPS_M = BM / 64;
    static_assert(BM % 64 == 0 && BN % 32 == 0 && (BM / 64) * (BN / 32) * 32 == BM, "warps of 64 x 32, one thread per A row");
    __shared__ __align__(16) unsigned As[STAGES][BM * 16];
    __shared__ __align__(16) unsigned Bs[STAGES][BN * 16];
    static_assert((MATH == MmaMath::TF32 || MATH == MmaMath::TF32X3) == std::is_same<In, float>::value, "TF32 maths on float32 tensors");
    const int all = (a.c + jconv_nhwc_depth<In> - 1) / jconv_nhwc_depth<In> * a.r * a.s, slice = (int)blockIdx.z;
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
            jconv_nhwc_mmas<MATH>(q, af, bf);
        }
        rd = rd == STAGES - 1 ? 0 : rd + 1;
        wr = wr == STAGES - 1 ? 0 : wr + 1;
    }
    jconv_cp_async_wait<0>();

    // lane (g, t) holds, of MMA tile (i, j), rows g and g + 8 at columns 2t and 2t + 1: two adjacent channels of one
    // output pixel, stored as one 32-bit word of halfs or two floats (K is even: the launcher checks), or as two raw floats
    // in the slice's plane
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
                const float e0 = jconv_epilogue(a.activation, a.residual, v0, res, at);
                const float e1 = jconv_epilogue(a.activation, a.residual, v1, res, at + 1);
                if constexpr (std::is_same<In, float>::value) {
                    out[at] = e0;
                    out[at + 1] = e1;
                } else {
                    *reinterpret_cast<unsigned*>(out + at) = (unsigned)jconv_narrow<In>(e0).bits | ((unsigned)jconv_narrow<In>(e1).bits << 16);
                }
            }
        }
}

// One entry point per format (math) and tile: jconv_implicit_gemm_nhwc_<fp16io|bf16io|tf32|3xtf32>_fprop_<BMxBN> (BM threads).
#define JCONV_IGEMM_NHWC_ENTRY(name, bounds, bm, bn, math, In)                                                          \
    extern "C" __global__ void __launch_bounds__ bounds name(NhwcParams p, const In* __restrict__ in, const In* __restrict__ w, \
                                                            const float* __restrict__ bias, const In* __restrict__ res,        \
                                                            In* __restrict__ out, float* __restrict__ ws) {                    \
        igemm_nhwc<bm, bn, math, In>(p, in, w, bias, res, out, ws);                                                     \
    }                                                                                                                   \
    JCONV_KERNEL_REGISTER(name)
#define JCONV_IGEMM_NHWC_TILES(prefix, math, In)                                 \
    JCONV_IGEMM_NHWC_ENTRY(prefix##fprop_128x64, (128), 128, 64, math, In)        \
    JCONV_IGEMM_NHWC_ENTRY(prefix##fprop_64x64, (64), 64, 64, math, In)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_fp16io_, MmaMath::F16, jconv_f16)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_bf16io_, MmaMath::BF16, jconv_bf16)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_tf32_, MmaMath::TF32, float)
JCONV_IGEMM_NHWC_TILES(jconv_implicit_gemm_nhwc_3xtf32_, MmaMath::TF32X3, float)

// Split-K's second pass: out[i] = epilogue(the sum of the `splits` workspace planes at i in slice order + bias[i % K])
// over the whole NHWC output, rounded to Out (float32 as it is).
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
extern "C" __global__ void jconv_implicit_gemm_nhwc_splitk_reduce(NhwcParams p, const float* __restrict__ ws, const float* __restrict__ bias,
                                                                  const float* __restrict__ res, float* __restrict__ out) {
    igemm_nhwc_splitk_reduce(p, ws, bias, res, out);
}
JCONV_KERNEL_REGISTER(jconv_implicit_gemm_nhwc_splitk_reduce)
