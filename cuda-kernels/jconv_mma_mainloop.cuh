// jconv_mma_mainloop.cuh: the tensor-core counterpart of jconv_gemm_mainloop.cuh: the same tiles, thread counts and
// loaders (a loader does not know which main loop it feeds), the reduction on mma.sync.m16n8k8 TF32 or, for
// MmaMath::F16 / BF16, mma.sync.m16n8k16 on FP16 / BF16 operands (sm_80+; mma_half_mainloop at the end).
//
// Math: MmaMath::TF32 rounds each operand to TF32 (jconv_to_tf32, cvt.rna) as it is staged into shared memory and
// issues one MMA per 16 x 8 x 8 product, accumulating in FP32 (PyTorch's allow_tf32). MmaMath::TF32X3 (CUTLASS's
// 3xTF32) stages each operand x as big = tf32(x) and small = tf32(x - big) (two shared-memory parts) and issues
// small*big + big*small + big*big (the small*small term is below FP32's rounding): FP32-level accuracy on the tensor
// cores. Infinities and NaN stay out of the cross terms (nonFiniteStep below), so results are non-finite exactly where
// FP32's are.
//
// Warps: BM/64 x BN/32, each a 64 x 32 warp tile = 4 x 4 MMA tiles of 16 x 8, 64 FP32 accumulators per thread. Rows
// and columns are permuted (the order of a GEMM's rows and columns is free): MMA tile i's row r is warp row
// 8*(r % 8) + 2i + r / 8 and tile j's column c is warp column 4c + j. Lane (g = lane / 4, t = lane % 4) then needs, for
// tile i, A at warp rows 8g + 2i and 8g + 2i + 1, depths t and t + 4 (its 4 fragment registers), and for tile j, B at
// warp column 4g + j, depths t and t + 4; its accumulators are the 8 x 8 block acc[a][b] at warp row 8g + a, warp
// column 8t + b (MmaTile::row / col).
//
// Shared memory holds each stage in fragment order, so every 128-bit load lands in MMA operand registers as they are
// (no moves): A as [t][row pair][4] = A(2p, t), A(2p+1, t), A(2p, t+4), A(2p+1, t+4) (one load per MMA tile i), B as
// [t][column][2] = B(n, t), B(n, t+4) (one load per two MMA tiles j). The 16-byte chunks are XOR-swizzled by t
// (jconv_a_at, jconv_b_at) so that the eight lanes of each quarter-warp load phase hit eight distinct bank groups.
// Double buffered with register staging, one barrier per 8-deep step: the SIMT loop's jconv_staged_steps.
#pragma once
#include "jconv_gemm_mainloop.cuh"
#include "jconv_warp.cuh"

enum class MmaMath : int { TF32 = 1, TF32X3 = 3, F16 = 16, BF16 = 17 };

// The float offset of A(m, k) in one BM x 8 stage (chunk (m / 2) ^ t of row t = k % 4), and of B(n, k) in a BN x 8
// one (chunk (n / 2) ^ swizzle(t), the swizzle flipping chunk bits 0 and 2); the chunk a lane reads is the same
// function of its (g, t).
template <int BM>
__device__ __forceinline__ int jconv_a_at(int m, int k) {
    const int t = k & 3;
    return t * 2 * BM + (((m >> 1) ^ t) << 2) + (m & 1) + ((k >> 2) << 1);
}
__device__ __forceinline__ int jconv_b_swizzle(int t) { return (t & 1) | ((t & 2) << 1); }
template <int BN>
__device__ __forceinline__ int jconv_b_at(int n, int k) {
    const int t = k & 3;
    return t * 2 * BN + (((n >> 1) ^ jconv_b_swizzle(t)) << 2) + ((n & 1) << 1) + (k >> 2);
}

template <int BM, int BN>
struct MmaTile {
    static constexpr int WARPS_M = BM / 64, WARPS_N = BN / 32;
    static_assert(WARPS_M * WARPS_N * 32 == GemmTile<BM, BN>::THREADS, "the MMA warps must be the SIMT tile's threads");
    static __device__ __forceinline__ int warpRow() { return (int)threadIdx.x / 32 % WARPS_M * 64; }
    static __device__ __forceinline__ int warpCol() { return (int)threadIdx.x / 32 / WARPS_M * 32; }
    // the tile row of this thread's accumulator row a (< 8), and the tile column of its column b (< 8)
    static __device__ __forceinline__ int row(int a) { return warpRow() + (int)threadIdx.x % 32 / 4 * 8 + a; }
    static __device__ __forceinline__ int col(int b) { return warpCol() + (int)threadIdx.x % 4 * 8 + b; }
};

// four TF32 words from 16 aligned bytes of shared memory (one 128-bit load)
__device__ __forceinline__ void lds128u(unsigned* dst, const float* src) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[0] = (unsigned)__float_as_int(v.x);
    dst[1] = (unsigned)__float_as_int(v.y);
    dst[2] = (unsigned)__float_as_int(v.z);
    dst[3] = (unsigned)__float_as_int(v.w);
}

// big = tf32(x) and small = tf32(x - big); false (and small = 0) where x is infinite or NaN.
__device__ __forceinline__ bool jconv_split_tf32(float x, unsigned& big, unsigned& small) {
    big = jconv_to_tf32(x);
    const bool finite = fabsf(x) <= 3.402823466e38f;
    small = finite ? jconv_to_tf32(x - __int_as_float((int)big)) : 0u;
    return finite;
}

// a fragment's TF32 words, 0 where one is infinite or NaN (3xTF32's cross terms on a step that holds such a value)
template <int R, int C>
__device__ __forceinline__ void jconv_finite_only(const unsigned (&x)[R][C], unsigned (&out)[R][C]) {
    JCONV_UNROLL
    for (int r = 0; r < R; r++)
        JCONV_UNROLL
        for (int c = 0; c < C; c++) out[r][c] = (x[r][c] & 0x7f800000u) == 0x7f800000u ? 0u : x[r][c];
}

// One lane's view of a stage in fragment order (words of 32 bits: TF32 values, or pairs of 16-bit values): A tile i at
// chunk aChunk + (i ^ t) of row t (the swizzle flips only bits 0-1 of aChunk + i, which is a multiple of 4 plus i),
// B tiles 2h and 2h + 1 at chunk (bChunk + h) ^ swizzle(t).
template <int BM, int BN>
struct MmaLane {
    int t, aRowAt, bRowAt, bChunk, bSw;
    __device__ __forceinline__ MmaLane() {
        const int lane = (int)threadIdx.x % 32, g = lane / 4;
        t = lane % 4;
        aRowAt = t * 2 * BM + ((MmaTile<BM, BN>::warpRow() / 2 + 4 * g) << 2);
        bRowAt = t * 2 * BN;
        bChunk = MmaTile<BM, BN>::warpCol() / 2 + 2 * g;
        bSw = jconv_b_swizzle(t);
    }
    // this lane's A fragments (4 MMA tiles i) and B fragments (4 MMA tiles j) of one stage, six 128-bit loads
    __device__ __forceinline__ void fragments(const float* as, const float* bs, unsigned (&a)[4][4], unsigned (&b)[4][2]) const {
        JCONV_UNROLL
        for (int i = 0; i < 4; i++) lds128u(a[i], &as[aRowAt + ((i ^ t) << 2)]);
        JCONV_UNROLL
        for (int h = 0; h < 2; h++) lds128u(&b[2 * h][0], &bs[bRowAt + (((bChunk + h) ^ bSw) << 2)]);
    }
};

// The accumulators as the MMAs hold them (tile i, tile j, fragment element), so each MMA's C and D stay in place.
__device__ __forceinline__ void jconv_mma_zero(float (&q)[4][4][4]) {
    JCONV_UNROLL
    for (int i = 0; i < 4; i++)
        JCONV_UNROLL
        for (int j = 0; j < 4; j++)
            JCONV_UNROLL
            for (int e = 0; e < 4; e++) q[i][j][e] = 0.0f;
}

// q as MmaTile lays the accumulators out: acc[2i][j], acc[2i][4+j], acc[2i+1][j], acc[2i+1][4+j].
__device__ __forceinline__ void jconv_mma_unpack(const float (&q)[4][4][4], float (&acc)[8][8]) {
    JCONV_UNROLL
    for (int i = 0; i < 4; i++)
        JCONV_UNROLL
        for (int j = 0; j < 4; j++) {
            acc[2 * i][j] = q[i][j][0];
            acc[2 * i][4 + j] = q[i][j][1];
            acc[2 * i + 1][j] = q[i][j][2];
            acc[2 * i + 1][4 + j] = q[i][j][3];
        }
}

// acc (as MmaTile lays it out) = the block's A * B over `steps` steps of the loader (zeros first; no step: zeros), TF32.
template <int BM, int BN, MmaMath MATH, typename Loader>
__device__ __forceinline__ void mma_tf32_mainloop(Loader& ld, int steps, float (&acc)[8][8]) {
    using T = GemmTile<BM, BN>;
    constexpr bool X3 = MATH == MmaMath::TF32X3;
    constexpr int PARTS = X3 ? 2 : 1;  // TF32 stages the rounded operands; 3xTF32 their big and small parts
    __shared__ __align__(16) float As[PARTS][2][JCONV_DEPTH * BM];
    __shared__ __align__(16) float Bs[PARTS][2][JCONV_DEPTH * BN];
    // 3xTF32: a step whose staged operands hold an infinity or NaN is written here (buffer step & 1) by the threads that
    // staged one, before the barrier, so every thread takes the same path; any other value (the NaN fill, an old step)
    // means all finite. Cross terms then leave those values out (an infinite big times the other operand's small part,
    // which may be 0 or of the opposite sign, would make NaN), so big*big alone carries them, as FP32 does.
    __shared__ int nonFiniteStep[2];
    JCONV_UNROLL
    for (int i = 0; i < 8; i++)
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
    if (steps <= 0) return;
    const int aRow = T::aRow(), aKk = T::aKk(), bCol = T::bCol(), bKk = T::bKk();
    float ra[T::A_LOADS], rb[T::B_LOADS];
    // each element rounded (TF32) or split (3xTF32) once, as it is staged
    auto put = [](float* dst0, float* dst1, float x, bool& bad) {
        if constexpr (X3) {
            unsigned big, small;
            bad |= !jconv_split_tf32(x, big, small);
            *dst0 = __int_as_float((int)big);
            *dst1 = __int_as_float((int)small);
        } else {
            (void)dst1, (void)bad;
            *dst0 = __int_as_float((int)jconv_to_tf32(x));
        }
    };
    auto store = [&](int buf, int forStep) {
        bool bad = false;
        JCONV_UNROLL
        for (int i = 0; i < T::A_LOADS; i++) {
            const int at = jconv_a_at<BM>(aRow, aKk + T::A_KK * i);
            put(&As[0][buf][at], &As[PARTS - 1][buf][at], ra[i], bad);
        }
        JCONV_UNROLL
        for (int i = 0; i < T::B_LOADS; i++) {
            const int at = jconv_b_at<BN>(bCol, bKk + T::B_KK * i);
            put(&Bs[0][buf][at], &Bs[PARTS - 1][buf][at], rb[i], bad);
        }
        if (X3 && bad) nonFiniteStep[buf] = forStep;
    };
    const MmaLane<BM, BN> lane;
    auto fragments = [&](int part, int buf, unsigned (&a)[4][4], unsigned (&b)[4][2]) { lane.fragments(As[part][buf], Bs[part][buf], a, b); };
    float q[4][4][4];
    jconv_mma_zero(q);
    // q += A * B over the warp tile: 4 x 4 MMAs
    auto mmas = [&](const unsigned (&a)[4][4], const unsigned (&b)[4][2]) {
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) jconv_mma_m16n8k8_tf32(q[i][j], a[i], b[j], q[i][j]);
    };
    jconv_staged_steps(ld, steps, ra, rb, store, [&](int cur, int step) {
        unsigned ab[4][4], bb[4][2];  // big parts (TF32: the rounded operands)
        fragments(0, cur, ab, bb);
        if constexpr (X3) {  // small*big + big*small first, then big*big, per accumulator
            unsigned as[4][4], bs[4][2];
            fragments(1, cur, as, bs);
            if (nonFiniteStep[cur] != step) {
                mmas(as, bb);
                mmas(ab, bs);
            } else {
                unsigned ac[4][4], bc[4][2];
                jconv_finite_only(ab, ac);
                jconv_finite_only(bb, bc);
                mmas(as, bc);
                mmas(ac, bs);
            }
        } else {
            (void)step;
        }
        mmas(ab, bb);
    });
    jconv_mma_unpack(q, acc);
}

// Two of a loader's 8-deep steps as one 16-deep step (the half-precision MMA's depth): the first step's values in
// ra[0, NA) and rb[0, NB), the second's in ra[NA, 2 NA) and rb[NB, 2 NB), zeros past the loader's last step.
template <typename Loader>
struct JconvStepPairs {
    Loader& ld;
    int steps, at;  // the loader's steps and the one it stands at
    template <typename V, int NA2, int NB2>
    __device__ __forceinline__ void load(V (&ra)[NA2], V (&rb)[NB2]) {
        constexpr int NA = NA2 / 2, NB = NB2 / 2;
        V a[NA], b[NB];
        ld.load(a, b);
        JCONV_UNROLL
        for (int i = 0; i < NA; i++) ra[i] = a[i];
        JCONV_UNROLL
        for (int i = 0; i < NB; i++) rb[i] = b[i];
        const bool second = at + 1 < steps;
        if (second) {
            ld.advance();
            at++;
            ld.load(a, b);
        }
        JCONV_UNROLL
        for (int i = 0; i < NA; i++) ra[NA + i] = second ? a[i] : V{};
        JCONV_UNROLL
        for (int i = 0; i < NB; i++) rb[NB + i] = second ? b[i] : V{};
    }
    __device__ __forceinline__ void advance() {
        ld.advance();
        at++;
    }
};

// acc (as MmaTile lays it out) = the block's A * B over `steps` 8-deep steps of the loader, taken two at a time as
// 16-deep m16n8k16 MMAs on FP16 or BF16 operands (float ones rounded to nearest even as they are staged, those of a
// loader of 16-bit tensors staged as they are; products exact, accumulated in FP32). A 16-deep stage of 16-bit values is the size of an 8-deep stage of TF32 words, in the same
// fragment order: the word of TF32 depth w (jconv_a_at / jconv_b_at) holds depths 2w and 2w + 1, the lower in its low
// half, so a 128-bit load gives an m16n8k16 fragment as the TF32 one gives an m16n8k8 fragment.
template <int BM, int BN, bool BF16, typename Loader>
__device__ __forceinline__ void mma_half_mainloop(Loader& ld, int steps, float (&acc)[8][8]) {
    using T = GemmTile<BM, BN>;
    __shared__ __align__(16) float As[2][JCONV_DEPTH * BM];
    __shared__ __align__(16) float Bs[2][JCONV_DEPTH * BN];
    JCONV_UNROLL
    for (int i = 0; i < 8; i++)
        JCONV_UNROLL
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
    if (steps <= 0) return;
    const int aRow = T::aRow(), aKk = T::aKk(), bCol = T::bCol(), bKk = T::bKk();
    using V = typename Loader::Value;  // float (rounded here) or the format's stored bits (staged as they are)
    V ra[2 * T::A_LOADS], rb[2 * T::B_LOADS];
    JconvStepPairs<Loader> pairs{ld, steps, 0};
    auto half = [](V x) { return jconv_half_bits<BF16>(x); };
    auto store = [&](int buf, int) {
        unsigned short* as = reinterpret_cast<unsigned short*>(As[buf]);
        unsigned short* bs = reinterpret_cast<unsigned short*>(Bs[buf]);
        JCONV_UNROLL
        for (int h = 0; h < 2; h++) {
            JCONV_UNROLL
            for (int i = 0; i < T::A_LOADS; i++) {
                const int k = JCONV_DEPTH * h + aKk + T::A_KK * i;
                as[2 * jconv_a_at<BM>(aRow, k >> 1) + (k & 1)] = half(ra[T::A_LOADS * h + i]);
            }
            JCONV_UNROLL
            for (int i = 0; i < T::B_LOADS; i++) {
                const int k = JCONV_DEPTH * h + bKk + T::B_KK * i;
                bs[2 * jconv_b_at<BN>(bCol, k >> 1) + (k & 1)] = half(rb[T::B_LOADS * h + i]);
            }
        }
    };
    const MmaLane<BM, BN> lane;
    float q[4][4][4];
    jconv_mma_zero(q);
    jconv_staged_steps(pairs, (steps + 1) / 2, ra, rb, store, [&](int cur, int) {
        unsigned a[4][4], b[4][2];
        lane.fragments(As[cur], Bs[cur], a, b);
        JCONV_UNROLL
        for (int i = 0; i < 4; i++)
            JCONV_UNROLL
            for (int j = 0; j < 4; j++) jconv_mma_m16n8k16<BF16>(q[i][j], a[i], b[j], q[i][j]);
    });
    jconv_mma_unpack(q, acc);
}

// acc = the block's A * B on the tensor cores in MATH: mma_tf32_mainloop or mma_half_mainloop.
template <int BM, int BN, MmaMath MATH, typename Loader>
__device__ __forceinline__ void mma_mainloop(Loader& ld, int steps, float (&acc)[8][8]) {
    if constexpr (MATH == MmaMath::F16 || MATH == MmaMath::BF16) mma_half_mainloop<BM, BN, MATH == MmaMath::BF16>(ld, steps, acc);
    else mma_tf32_mainloop<BM, BN, MATH>(ld, steps, acc);
}
