// The CPU twin: what a .cu file of this folder needs from CUDA, defined for g++, so
// the same source compiles to a shared library whose kernels run on the CPU.
//
// A kernel launch becomes a loop, done by the caller (minigrad/kernels/cuda/launch.py):
// for every block and thread of the grid it sets blockIdx and threadIdx and calls
// the kernel function once. That runs each kernel's index arithmetic exactly as a
// GPU would, one thread after another: enough for kernels written one thread per
// element, without shared memory, atomics or synchronization (all of ours).
#include <cmath>

using std::isnan;
using std::pow;

#define __global__
#define __device__

struct dim3 { unsigned int x, y, z; };

extern "C" {
dim3 blockIdx, threadIdx, blockDim, gridDim;   // set by the caller before each call
}

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
