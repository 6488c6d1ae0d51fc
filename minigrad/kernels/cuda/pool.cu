// Max and average pooling for the cuda kernel set, one thread per output element
// (forward) or per input element (backward, gather form: no atomics), grid-stride
// loops. `real` is float or double. x, y, gy, gx are (N, C, H, W) / (N, C, OH, OW),
// contiguous. Window (oh, ow) covers rows oh*SH - PH ... + KH - 1, clipped to the
// input (padding holds no values).

#include "grid.h"

// First and one-past-last output index whose window covers input position `at`
// along one axis: window o covers o*S - P ... o*S - P + K - 1.
__device__ inline int first_covering(int at, int K, int S, int P) {
    return (at + P < K) ? 0 : (at + P - K) / S + 1;
}
__device__ inline int end_covering(int at, int S, int P, int O) {
    return min((at + P) / S + 1, O);
}

// y = the window's maximum; argmax = its offset i*KW + j inside the window (row i, column
// j of the kernel), by PyTorch's rule: the first maximum, the last NaN of a window holding
// NaN, and the first real element of a window that is all -inf. The offset is a small
// integer: one byte (`unsigned char`) for windows of up to 256 elements (every max pool of
// every network here), an int for larger ones (the `_wide` kernels); the body is shared.
template <typename Offset>
__device__ void max_pool_forward_body(const real* x, real* y, Offset* argmax, int N, int C, int H,
                                      int W, int KH, int KW, int SH, int SW, int PH, int PW,
                                      int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * OH * OW) {
        const int ow = index % OW, oh = (index / OW) % OH;
        const long long map = index / ((long long)OW * OH);            // n * C + c
        const int row0 = oh * SH - PH, col0 = ow * SW - PW;            // the window's corner
        const int top = max(row0, 0), bottom = min(row0 + KH, H);
        const int left = max(col0, 0), right = min(col0 + KW, W);
        const real* x_map = x + map * H * W;
        int best_h = top, best_w = left;       // every window holds a real element
        real best = x_map[top * W + left];
        for (int h = top; h < bottom; ++h)
            for (int w = left; w < right; ++w) {
                const real value = x_map[h * W + w];
                if (value > best || isnan(value)) {
                    best = value;
                    best_h = h;
                    best_w = w;
                }
            }
        y[index] = best;
        argmax[index] = (Offset)((best_h - row0) * KW + (best_w - col0));
    }
}

// gx[h, w] = the sum of gy over the windows whose argmax is (h, w).
template <typename Offset>
__device__ void max_pool_backward_body(const real* gy, const Offset* argmax, real* gx, int N, int C,
                                       int H, int W, int KH, int KW, int SH, int SW, int PH,
                                       int PW, int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * H * W) {
        const int w = index % W, h = (index / W) % H;
        const long long map = index / ((long long)W * H);
        const real* gy_map = gy + map * OH * OW;
        const Offset* argmax_map = argmax + map * OH * OW;
        real total = 0;
        for (int oh = first_covering(h, KH, SH, PH); oh < end_covering(h, SH, PH, OH); ++oh)
            for (int ow = first_covering(w, KW, SW, PW); ow < end_covering(w, SW, PW, OW); ++ow) {
                const int offset = (h - (oh * SH - PH)) * KW + (w - (ow * SW - PW));
                if ((int)argmax_map[oh * OW + ow] == offset) total += gy_map[oh * OW + ow];
            }
        gx[index] = total;
    }
}

#define MAX_POOL_ARGUMENTS int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, \
                           int PW, int OH, int OW
#define MAX_POOL_VALUES N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW

extern "C" __global__ void max_pool_forward(const real* x, real* y, unsigned char* argmax,
                                            MAX_POOL_ARGUMENTS) {
    max_pool_forward_body(x, y, argmax, MAX_POOL_VALUES);
}
extern "C" __global__ void max_pool_forward_wide(const real* x, real* y, int* argmax,
                                                 MAX_POOL_ARGUMENTS) {
    max_pool_forward_body(x, y, argmax, MAX_POOL_VALUES);
}
extern "C" __global__ void max_pool_backward(const real* gy, const unsigned char* argmax, real* gx,
                                             MAX_POOL_ARGUMENTS) {
    max_pool_backward_body(gy, argmax, gx, MAX_POOL_VALUES);
}
extern "C" __global__ void max_pool_backward_wide(const real* gy, const int* argmax, real* gx,
                                                  MAX_POOL_ARGUMENTS) {
    max_pool_backward_body(gy, argmax, gx, MAX_POOL_VALUES);
}

// y = the window's sum / divisor[oh, ow] (the divisor follows PyTorch's rule; see
// minigrad/ops/pool.py, which computes it).
extern "C" __global__ void avg_pool_forward(const real* x, const real* divisor, real* y, int N, int C,
                                            int H, int W, int KH, int KW, int SH, int SW, int PH,
                                            int PW, int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * OH * OW) {
        const int ow = index % OW, oh = (index / OW) % OH;
        const long long map = index / ((long long)OW * OH);
        const int top = max(oh * SH - PH, 0), bottom = min(oh * SH - PH + KH, H);
        const int left = max(ow * SW - PW, 0), right = min(ow * SW - PW + KW, W);
        const real* x_map = x + map * H * W;
        real total = 0;
        for (int h = top; h < bottom; ++h)
            for (int w = left; w < right; ++w) total += x_map[h * W + w];
        y[index] = total / divisor[oh * OW + ow];
    }
}

// gx[h, w] = the sum of gy / divisor over the windows that hold (h, w).
extern "C" __global__ void avg_pool_backward(const real* gy, const real* divisor, real* gx, int N, int C,
                                             int H, int W, int KH, int KW, int SH, int SW, int PH,
                                             int PW, int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * H * W) {
        const int w = index % W, h = (index / W) % H;
        const long long map = index / ((long long)W * H);
        const real* gy_map = gy + map * OH * OW;
        real total = 0;
        for (int oh = first_covering(h, KH, SH, PH); oh < end_covering(h, SH, PH, OH); ++oh)
            for (int ow = first_covering(w, KW, SW, PW); ow < end_covering(w, SW, PW, OW); ++ow)
                total += gy_map[oh * OW + ow] / divisor[oh * OW + ow];
        gx[index] = total;
    }
}
