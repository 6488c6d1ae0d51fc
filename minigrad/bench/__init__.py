"""Measuring: the library behind the benchmarks, programs that print tables (not tests).

    timing      clocks: a host clock on the CPU, CUDA events on a GPU; medians after a warm-up
    op_times    each op of a network (its ``OpShape`` rows) timed forward and backward,
                convolutions against bare GEMMs of their sizes, and the targets
    roofline    each op's FLOPs and bytes, the machine's GEMM peak and copy bandwidth
    compare     every kernel set side by side (CPU, generic GPU, hand-written CUDA, PyTorch):
                a table, a CSV, bars and a roofline
    step_times  a whole step (forward, training step, a graph replayed) as a callable: the
                host's time and the GPU's (cupyx.profiler.benchmark); several alternately,
                on the CPU each in a process of its own
    profile     where a step's time goes by kind of op (GEMM, im2col/col2im, pooling, LRN,
                element-wise, concat/split, optimizer, autograd, Python)
    memory      a step's peak memory: RSS of a fresh process, the GPU pools' high-water marks
    machine     what it ran on: CPU, cores, AVX-512, NumPy and BLAS, threads, load average
    threads     the memory-bound kernels timed on 1, 2, ... threads (``minigrad.parallel``),
                their results checked to be the same bits at every count

The framework knows no network: a network's package lists its ops as ``OpShape`` rows and
owns the command line that times them (``python -m googlenet bench``, ``googlenet/bench.py``).
The names below are the ones a benchmark or a lesson uses: ``bench.time_ops``,
``bench.op_flops``, ``bench.median_seconds``...
"""
from .op_times import (HEADER, KINDS, TARGETS, OpShape, describe, format_row, misses, pair_functions,
                       print_summary, time_op, time_ops)
from .roofline import (BYTES_PER_NUMBER, arithmetic_intensity, attainable_gflops, copy_bandwidth_gbs,
                       gemm_peak_gflops, im2col_bytes, op_bytes, op_flops, op_output_shape, roofs)
from .step_times import StepTime, time_alternately, time_training_step
from .timing import blas_threads, median_seconds, timed
from .threads import concat_kernel, copy_kernel, counts_up_to, same_bits, thread_scaling, threaded_kernels
