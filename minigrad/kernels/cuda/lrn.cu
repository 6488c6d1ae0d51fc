// Local response normalization across channels for the cuda kernel set (formula and
// neighbours: minigrad/ops/lrn.py). One thread per pixel (n, h, w) walks the channels,
// summing each channel's neighbours directly (size is small, 5 in GoogLeNet): no running
// sum, so no rounding drift along the channels. x, s, y, gy, gx are (N, C, H, W),
// contiguous; `real` is float or double.
//
//     s_c = k + alpha/size * sum_{c' in neighbours(c)} x_c'^2,   y_c = x_c * s_c^-beta,
//     neighbours(c) = c - size/2 ... c + (size-1)/2, clipped to the channels.
//
// The caller passes the neighbours' reach as `before` = min(size/2, C-1) and `after` =
// min((size-1)/2, C-1) (reaching past every channel covers no more of them, so any size
// works in int), and alpha_n = alpha / size.

#include "grid.h"

extern "C" __global__ void lrn_forward(const real* x, real* s, real* y, int N, int C, int HW,
                                       int before, int after, real alpha_n, real beta, real k) {
    GRID_STRIDE_LOOP(pixel, (long long)N * HW) {
        const long long base = (pixel / HW) * C * HW + pixel % HW;     // (n, 0, h, w)
        for (int c = 0; c < C; ++c) {
            real total = 0;
            for (int other = max(c - before, 0); other <= min(c + after, C - 1); ++other) {
                const real value = x[base + (long long)other * HW];
                total += value * value;
            }
            const long long at = base + (long long)c * HW;
            s[at] = k + alpha_n * total;
            y[at] = x[at] * pow(s[at], -beta);
        }
    }
}

// gx_j = gy_j s_j^-beta - 2 alpha_n beta * x_j * sum_{c : j in neighbours(c)} gy_c y_c / s_c,
// where j in neighbours(c) means c runs over j - after ... j + before (the mirrored reach).
// The forward keeps x and s only: y_c = x_c s_c^-beta is computed again here.
extern "C" __global__ void lrn_backward(const real* x, const real* s, const real* gy, real* gx,
                                        int N, int C, int HW, int before, int after, real alpha_n,
                                        real beta) {
    GRID_STRIDE_LOOP(pixel, (long long)N * HW) {
        const long long base = (pixel / HW) * C * HW + pixel % HW;
        for (int j = 0; j < C; ++j) {
            real through_s = 0;
            for (int c = max(j - after, 0); c <= min(j + before, C - 1); ++c) {
                const long long at = base + (long long)c * HW;
                through_s += gy[at] * (x[at] * pow(s[at], -beta)) / s[at];
            }
            const long long at = base + (long long)j * HW;
            gx[at] = gy[at] * pow(s[at], -beta) - 2 * alpha_n * beta * x[at] * through_s;
        }
    }
}
