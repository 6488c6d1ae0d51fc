// The grid-stride loop every kernel of this folder is written in (included by each .cu).
//
// A kernel has work for `total` elements. Thread t of a grid of B blocks of T threads
// takes elements t + blockIdx.x*T, then every B*T further, until `total`: any grid covers
// all the work, a small one by looping more. (The GPU launcher picks enough blocks of 256;
// the CPU twin picks a small odd grid so that the loop itself is tested.) `index` is a long
// long: N*C*H*W elements may not fit in an int.
#ifndef MINIGRAD_GRID_H
#define MINIGRAD_GRID_H

#define GRID_STRIDE_LOOP(index, total) \
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < (total); \
         index += (long long)blockDim.x * gridDim.x)

#endif
