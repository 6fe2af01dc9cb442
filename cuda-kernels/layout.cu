// layout.cu: channels-last conversion of a 4-D activation on the device (io.github.jconv.Layout), around the kernels,
// which read and write NCHW. Each sample is a matrix transpose: NCHW -> NHWC turns its C x HW matrix into HW x C, and
// NHWC -> NCHW its HW x C matrix into C x HW.
// Params: a.n samples of a.h rows x a.w columns (row-major, a.h * a.w floats apart); y gets each sample's a.w x a.h
// transpose. Block: 256 threads on a 32 x 32 tile (8 rows of 32 per pass, row = threadIdx.x / 32), staged in shared
// memory so that both the reads and the writes run along rows (coalesced); the tile's rows are 33 floats apart, so the
// column reads hit 32 different banks. Grid-stride over the tiles, one division per tile (none per element).
#include "jconv_common.cuh"

#define JCONV_TILE 32

extern "C" __global__ void jconv_transpose_planes(ConvParams a, const float* __restrict__ x, float* __restrict__ y) {
    __shared__ float tile[JCONV_TILE][JCONV_TILE + 1];
    const int rowTiles = (a.h + JCONV_TILE - 1) / JCONV_TILE, colTiles = (a.w + JCONV_TILE - 1) / JCONV_TILE;
    const i64 tiles = (i64)a.n * rowTiles * colTiles, plane = (i64)a.h * a.w;
    const FastDiv dRows(rowTiles), dCols(colTiles);
    const int lane = threadIdx.x % JCONV_TILE, row = threadIdx.x / JCONV_TILE, rowStep = blockDim.x / JCONV_TILE;
    for (i64 t = blockIdx.x; t < tiles; t += gridDim.x) {  // t = (n * rowTiles + rt) * colTiles + ct
        int rt, ct;
        const int n = (int)dRows.divmod(dCols.divmod(t, ct), rt);
        const int r0 = rt * JCONV_TILE, c0 = ct * JCONV_TILE;
        const float* xs = x + n * plane;
        float* ys = y + n * plane;
        for (int i = row; i < JCONV_TILE; i += rowStep) {
            if (r0 + i < a.h && c0 + lane < a.w) tile[i][lane] = xs[(i64)(r0 + i) * a.w + c0 + lane];
        }
        __syncthreads();
        for (int i = row; i < JCONV_TILE; i += rowStep) {
            if (c0 + i < a.w && r0 + lane < a.h) ys[(i64)(c0 + i) * a.h + r0 + lane] = tile[lane][i];
        }
        __syncthreads();  // the tile is read before the next one overwrites it
    }
}
JCONV_KERNEL_REGISTER(jconv_transpose_planes)
