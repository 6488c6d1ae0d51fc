// Uniform random numbers in [0, 1) that are a function of (key, counter, index) alone: a
// counter-based generator (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2,
// 3"). Nothing is carried from one number to the next, so thread i computes number i
// directly, and a CUDA graph can replay a draw: the counter is read from device memory,
// where the host sets it before each step.
//
// The numbers are SplitMix64's (Steele, Lea and Flood 2014, "Fast splittable pseudorandom
// number generators"), whose i-th output from a state s is mix64(s + (i + 1) * GAMMA), a
// function of i alone. Each (key, counter) pair starts its own stream:
//
//     start  = mix64(mix64(key) ^ counter)          mix64 is a bijection: a new counter, a new start
//     bits_i = mix64(start + (i + 1) * GAMMA)       unsigned 64-bit arithmetic, modulo 2^64
//     out_i  = (bits_i >> 11) / 2^53                the top 53 bits: a double in [0, 1), exactly
//
// key and counter are one-element arrays (the key is set once per generator, the counter
// by the host before each draw). `real` is unused: the numbers are doubles, as NumPy's
// Generator.random gives by default.

#include "grid.h"

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

// Stafford's "variant 13" 64-bit finalizer, SplitMix64's output function.
__device__ inline unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

extern "C" __global__ void uniform(const unsigned long long* key, const unsigned long long* counter,
                                   double* out, int n) {
    const unsigned long long start = mix64(mix64(key[0]) ^ counter[0]);
    GRID_STRIDE_LOOP(index, n) {
        const unsigned long long bits = mix64(start + (unsigned long long)(index + 1) * GOLDEN_GAMMA);
        out[index] = (double)(bits >> 11) / 9007199254740992.0;           // 2^53
    }
}
