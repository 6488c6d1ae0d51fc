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

// y = the window's maximum; argmax = its position h*W + w in the map, by PyTorch's
// rule: the first maximum, the last NaN of a window holding NaN, and the first real
// element of a window that is all -inf.
extern "C" __global__ void max_pool_forward(const real* x, real* y, int* argmax, int N, int C, int H,
                                            int W, int KH, int KW, int SH, int SW, int PH, int PW,
                                            int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * OH * OW) {
        const int ow = index % OW, oh = (index / OW) % OH;
        const long long map = index / ((long long)OW * OH);            // n * C + c
        const int top = max(oh * SH - PH, 0), bottom = min(oh * SH - PH + KH, H);
        const int left = max(ow * SW - PW, 0), right = min(ow * SW - PW + KW, W);
        const real* x_map = x + map * H * W;
        int best_at = top * W + left;          // every window holds a real element
        real best = x_map[best_at];
        for (int h = top; h < bottom; ++h)
            for (int w = left; w < right; ++w) {
                const real value = x_map[h * W + w];
                if (value > best || isnan(value)) {
                    best = value;
                    best_at = h * W + w;
                }
            }
        y[index] = best;
        argmax[index] = best_at;
    }
}

// gx[h, w] = the sum of gy over the windows whose argmax is (h, w).
extern "C" __global__ void max_pool_backward(const real* gy, const int* argmax, real* gx, int N, int C,
                                             int H, int W, int KH, int KW, int SH, int SW, int PH,
                                             int PW, int OH, int OW) {
    GRID_STRIDE_LOOP(index, (long long)N * C * H * W) {
        const int w = index % W, h = (index / W) % H;
        const long long map = index / ((long long)W * H);
        const real* gy_map = gy + map * OH * OW;
        const int* argmax_map = argmax + map * OH * OW;
        real total = 0;
        for (int oh = first_covering(h, KH, SH, PH); oh < end_covering(h, SH, PH, OH); ++oh)
            for (int ow = first_covering(w, KW, SW, PW); ow < end_covering(w, SW, PW, OW); ++ow)
                if (argmax_map[oh * OW + ow] == h * W + w) total += gy_map[oh * OW + ow];
        gx[index] = total;
    }
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
