// im2col and col2im for the cuda kernel set, one thread per output element,
// grid-stride loops, no shared memory, no atomics (so the same source also runs
// on the CPU behind twin.h). `real` is float or double (-Dreal=... at compile time).
//
// x is (N, C, H, W), contiguous. cols is (C*KH*KW, N, OH*OW): row (c, i, j) holds, for
// image n and column (oh, ow), x[n, c, oh*SH - PH + i, ow*SW - PW + j], or 0 where that
// falls in the padding (as minigrad/kernels/reference.py's im2col, with the images side
// by side in each row). So cols, seen as a (C*KH*KW, N*OH*OW) matrix, is the right-hand
// side of ONE product over the whole batch: weight2 (C_out, C*KH*KW) @ cols.

#include "grid.h"

extern "C" __global__ void im2col(const real* x, real* cols, int N, int C, int H, int W,
                                  int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW) {
    const long long K = (long long)C * KH * KW, P = (long long)OH * OW;
    GRID_STRIDE_LOOP(index, K * N * P) {
        const long long p = index % P, n = (index / P) % N, k = index / (P * N);
        const int ow = p % OW, oh = p / OW;
        const int j = k % KW, i = (k / KW) % KH, c = k / (KW * KH);
        const int h = oh * SH - PH + i, w = ow * SW - PW + j;
        const bool inside = h >= 0 && h < H && w >= 0 && w < W;
        cols[index] = inside ? x[((n * C + c) * H + h) * W + w] : (real)0;
    }
}

// The adjoint, in gather form: one thread per input pixel (n, c, h, w) adds up the
// column entries that were copied from it: kernel offset i covers h from window
// oh = (h + PH - i) / SH when that divides exactly and 0 <= oh < OH (columns alike).
extern "C" __global__ void col2im(const real* cols, real* gx, int N, int C, int H, int W,
                                  int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW) {
    const long long P = (long long)OH * OW;
    GRID_STRIDE_LOOP(index, (long long)N * C * H * W) {
        const int w = index % W, h = (index / W) % H, c = (index / ((long long)W * H)) % C;
        const long long n = index / ((long long)W * H * C);
        real total = 0;
        for (int i = 0; i < KH; ++i) {
            const int row = h + PH - i;
            if (row < 0 || row % SH != 0 || row / SH >= OH) continue;
            for (int j = 0; j < KW; ++j) {
                const int column = w + PW - j;
                if (column < 0 || column % SW != 0 || column / SW >= OW) continue;
                const long long k = ((long long)c * KH + i) * KW + j;
                total += cols[(k * N + n) * P + (long long)(row / SH) * OW + column / SW];
            }
        }
        gx[index] = total;
    }
}
