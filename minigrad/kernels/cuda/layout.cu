// Between the two layouts of the cuda set's convolution, one thread per element written,
// grid-stride loops (grid.h); `real` is float or double.
//
// A convolution is ONE matrix product over the whole batch (minigrad/kernels/cuda/__init__.py):
//
//     Y (C_out, N*P) = weight2 (C_out, C*KH*KW) @ cols (C*KH*KW, N*P),      P = OH*OW,
//
// so the product's result lies channels first, (C_out, N, P), while every op around it
// takes and gives images, (N, C_out, OH, OW). These two kernels move between the layouts,
// and do on the way the element-wise work that would otherwise cost a pass of its own:
//
//   channels_to_images   (C, N, P) -> (N, C, P), adding the bias and applying the ReLU
//                        when asked: a convolution's output, with its bias and a fused ReLU,
//                        in one pass where transpose, + bias and ReLU would be three;
//   images_to_channels   (N, C, P) -> (C, N, P), the upstream gradient made ready for the
//                        backward's products, masked by the fused ReLU's output (one pass for
//                        ReLU's backward and the transpose); also a 1x1 convolution's columns,
//                        which are its input channels first (no im2col needed).
//
// The ReLU is minigrad/ops/elementwise.py's: max(v, 0) with NaN kept, and its gradient passes
// where the output is not <= 0 (v > 0, or NaN). The output alone tells where: y > 0 exactly
// where v > 0, so the backward needs no saved mask, only the output it already has.
// Reads and writes both run along p, so neighbouring threads touch neighbouring addresses.

#include "grid.h"

// to[n, c, p] = from[c, n, p] (+ bias[c] when bias is not NULL), then max(., 0) when relu.
extern "C" __global__ void channels_to_images(const real* from, const real* bias, real* to,
                                              int N, int C, int P, int relu) {
    GRID_STRIDE_LOOP(index, (long long)N * C * P) {
        const long long p = index % P, c = (index / P) % C, n = index / ((long long)P * C);
        real value = from[(c * N + n) * P + p];
        if (bias) value += bias[c];
        to[index] = (relu && value <= 0) ? (real)0 : value;
    }
}

// to[c, n, p] = from[n, c, p], or 0 where relu_output (N, C, P) is <= 0 (when it is not NULL).
// `from` may be a window of C channels of images with from_C >= C channels each (the gradient
// of one Inception branch, a view of the concatenation's): image n's channel c starts at
// from + (n * from_C + c) * P, read where it lies, with no copy first.
extern "C" __global__ void images_to_channels(const real* from, const real* relu_output, real* to,
                                              int N, int C, int P, int from_C) {
    GRID_STRIDE_LOOP(index, (long long)C * N * P) {
        const long long p = index % P, n = (index / P) % N, c = index / ((long long)P * N);
        const bool stopped = relu_output && relu_output[(n * C + c) * P + p] <= 0;
        to[index] = stopped ? (real)0 : from[(n * from_C + c) * P + p];
    }
}
