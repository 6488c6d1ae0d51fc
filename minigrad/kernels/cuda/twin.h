// The CPU twin: what a .cu file of this folder needs from CUDA, defined for g++, so
// the same source compiles to a shared library whose kernels run on the CPU.
//
// A kernel launch becomes a loop, done by the caller (minigrad/kernels/cuda/launch.py):
// for every block and thread of the grid it calls twin_set_thread, then the kernel
// function once. That runs each kernel's index arithmetic exactly as a GPU would, one
// thread after another: enough for kernels written one thread per element, without
// shared memory, atomics or synchronization (all of ours).
//
// The built-ins are thread_local: every OS thread has its own copy. ctypes lets go of
// Python's lock during each call, so two Python threads may run kernels of the same
// library at once; with shared built-ins one would overwrite the other's blockIdx
// between its twin_set_thread and its kernel call.
#include <cmath>

using std::isnan;
using std::pow;

#define __global__
#define __device__

struct dim3 { unsigned int x, y, z; };

static thread_local dim3 blockIdx, threadIdx, blockDim, gridDim;

extern "C" void twin_set_thread(unsigned int blocks, unsigned int threads_per_block,
                                unsigned int block, unsigned int thread) {
    gridDim = {blocks, 1, 1};
    blockDim = {threads_per_block, 1, 1};
    blockIdx = {block, 0, 0};
    threadIdx = {thread, 0, 0};
}

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
