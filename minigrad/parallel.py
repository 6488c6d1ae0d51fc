"""Threads for the memory-bound kernels: one small, persistent pool that runs a kernel's
work in chunks (images of a batch, channels, rows) on several cores at once.

Why threads help Python here: NumPy lets go of the interpreter lock (the GIL) while its
loops run over more than a few hundred numbers, while it copies, casts, reduces or
indexes, so the NumPy calls of several threads run on several cores at the same time.
A matrix product is left whole: BLAS spreads it over the cores itself, and splitting it
again would put two threads on every core.

The rule every caller keeps: a chunk computes exactly what the whole computes on its
part, no sum crosses a chunk's edge and no order of additions changes, so every thread
count gives the same bits (``tests/test_threads.py`` holds every threaded kernel to its
one-thread result). The one exception is a NaN's sign, which carries no meaning and which
NumPy itself does not keep: (+NaN) + (-NaN) gives either, depending on where in an array
the pair lies; a NaN stays a NaN. Work is split only for NumPy arrays; on CuPy arrays it
runs whole, as one call.

How many threads: ``set_thread_count(n)`` for the process (the commands' ``--threads``),
``with threads(n):`` for a block of code, else the environment variable
MINIGRAD_THREADS, else the cores this process may run on (``os.sched_getaffinity``).
``thread_count()`` says which is in force.

    from minigrad import parallel
    with parallel.threads(1):
        y1 = model(x)            # every kernel on the calling thread alone
    y2 = model(x)                # the same bits, on every core

A kernel splits its work with ``for_chunks(op, length, work, numbers)``: ``work(start,
stop)`` for consecutive ranges that cover ``range(length)``, the first on the calling
thread, the others on the pool's, returning when all are done. An error in any chunk
reaches the caller, after every chunk has stopped, with a note naming the op and the
chunk (Python 3.11 and later show notes under the traceback); every chunk runs under the
caller's ``numpy.errstate``. A chunk that itself asks for chunks (a kernel inside a
kernel) runs them in turn on its own thread, so the pool never waits for itself and
cannot deadlock.
"""
import concurrent.futures
import contextlib
import contextvars
import os
import threading

import numpy

from .backend import get_array_module

ENVIRONMENT_VARIABLE = "MINIGRAD_THREADS"

# Work smaller than this many numbers per chunk is not split further. Handing a chunk to
# another thread costs some tens of microseconds, and more on a busy machine: each NumPy call
# of a chunk takes the interpreter lock back from the other threads (and, until
# ``minigrad.blas_setup``, BLAS's idle threads held the other cores for 0.1 s after every
# matrix product). Measured on 2 cores (whole GoogLeNet training steps, alternately in one
# process): 2**20 against 2**15 made the
# 32x32 step at batch 64 about 1.1 times as fast and left the 224x224 steps at batch 8 and 32
# as they were (their large kernels still split). Again with BLAS's idle threads sleeping
# soon (``minigrad.blas_setup``; the main job's 32x32 step, three rounds of fresh processes):
# 2**20 the fastest of 2**20, 2**18, 2**16 and 2**14 in two rounds, 2**18 in the third;
# 2**16 and 2**14 slower than both in every round.
MIN_CHUNK_NUMBERS = 1 << 20

_process_count = None                                   # set_thread_count's, else None
_block_count = contextvars.ContextVar("minigrad_threads", default=None)   # threads(n)'s
_pool = None                                            # the ThreadPoolExecutor, made on first use
_pool_size = 0
_pool_lock = threading.Lock()
_in_a_chunk = threading.local()                         # .yes while this thread runs a chunk


# --- how many threads -------------------------------------------------------------------------
def available_cores():
    """The number of cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                              # macOS, Windows: no affinity call
        return max(1, os.cpu_count() or 1)


def thread_count():
    """The number of threads a kernel splits its work over now (see the module docstring)."""
    for count in (_block_count.get(), _process_count):
        if count is not None:
            return count
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if setting:
        return check_count(setting, ENVIRONMENT_VARIABLE)
    return available_cores()


def check_count(count, name="threads"):
    """``count`` as a positive int (an int or its decimal text); a ValueError naming ``name``."""
    text = count.strip() if isinstance(count, str) else None
    if text is not None and text.isdigit():
        count = int(text)
    if isinstance(count, bool) or not isinstance(count, (int, numpy.integer)) or count < 1:
        raise ValueError(f"{name}: expected a positive whole number of threads, got {count!r}")
    return int(count)


def set_thread_count(count):
    """Split kernels over ``count`` threads from now on, in the whole process; None goes back
    to the default (MINIGRAD_THREADS, else the available cores)."""
    global _process_count
    _process_count = None if count is None else check_count(count)


@contextlib.contextmanager
def threads(count):
    """Inside the ``with`` block (in this thread), kernels split their work over ``count`` threads."""
    token = _block_count.set(check_count(count))
    try:
        yield
    finally:
        _block_count.reset(token)


# --- splitting work ---------------------------------------------------------------------------
def chunk_bounds(length, parts):
    """``parts`` consecutive (start, stop) ranges covering range(length), their sizes differing
    by at most one (the first ones longer); fewer when length < parts, none when length is 0."""
    parts = max(1, min(parts, length))
    size, longer = divmod(length, parts)
    bounds, start = [], 0
    for part in range(parts if length else 0):
        stop = start + size + (part < longer)
        bounds.append((start, stop))
        start = stop
    return bounds


def chunk_count(length, numbers, xp=numpy):
    """How many chunks ``for_chunks`` cuts ``length`` items holding ``numbers`` numbers into:
    at most ``thread_count()``, one per item at most, each of at least MIN_CHUNK_NUMBERS
    numbers; 1 inside a chunk (on a pool thread, or the caller's own chunk) and for anything
    but NumPy arrays. Work too small for two chunks does not ask ``thread_count()`` (an
    environment read and an affinity call, some microseconds, for most of a small step's
    hundreds of kernels)."""
    if xp is not numpy or getattr(_in_a_chunk, "yes", False):
        return 1
    most = min(length, numbers // MIN_CHUNK_NUMBERS)
    return 1 if most < 2 else min(thread_count(), most)


def for_chunks(op, length, work, numbers, xp=numpy):
    """Call ``work(start, stop)`` for consecutive chunks that cover range(length) and return
    when every chunk is done. ``numbers`` is how many numbers the whole work reads or writes
    (small work is not split), ``xp`` the array module (only NumPy work is split) and ``op``
    the name an error is reported under."""
    bounds = chunk_bounds(length, chunk_count(length, numbers, xp))
    if len(bounds) <= 1:
        for start, stop in bounds:
            _run(op, work, start, stop, 1, len(bounds))
        return
    settings = numpy.geterr()           # the caller's floating-point error handling, for every chunk
    with _pool_lock:                    # the pool may grow, never while another caller submits
        pool = _pool_with(len(bounds) - 1)
        others = [pool.submit(_run_with, settings, op, work, start, stop, part, len(bounds))
                  for part, (start, stop) in enumerate(bounds[1:], start=2)]
    _in_a_chunk.yes = True              # a split inside the caller's chunk runs on this thread:
    try:                                # the pool's threads are busy with the other chunks
        _run(op, work, *bounds[0], 1, len(bounds))
    finally:                            # no chunk may still write once the caller goes on
        _in_a_chunk.yes = False
        concurrent.futures.wait(others)
    for future in others:
        if future.exception() is not None:
            raise future.exception()


def for_chunks_of(op, function, *arrays, axis=0):
    """``function(*chunks)`` on matching chunks of ``arrays`` along ``axis`` (the same length
    along it in all of them): the work of an op on independent slices, split over the
    threads. ``function`` writes its results into chunks of arrays the caller made (an
    ``out=``), so nothing needs to be put back together."""
    if arrays[0].ndim == 0:
        function(*arrays)
        return
    length = arrays[0].shape[axis]
    if any(a.ndim <= axis or a.shape[axis] != length for a in arrays):
        raise ValueError(f"{op}: the arrays split together must have one length along axis {axis}, "
                         f"got shapes {[a.shape for a in arrays]}")
    numbers, xp = sum(a.size for a in arrays), get_array_module(*arrays)
    if length and chunk_count(length, numbers, xp) == 1:     # most kernels of a small step: unsliced
        _run(op, lambda start, stop: function(*arrays), 0, length, 1, 1)
        return
    index = (slice(None),) * axis

    def work(start, stop):
        function(*[a[index + (slice(start, stop),)] for a in arrays])
    for_chunks(op, length, work, numbers, xp)


# An element-wise op between arrays laid out differently in memory (a transpose, a sum of a
# pixels-first and a channels-first gradient) reads one of them along memory and jumps
# through the others. Done in one go, each jump lands on a cache line that is gone by the
# time the next number for it comes: the op moves a whole line per number. Done in blocks of
# about CACHE_BLOCK_NUMBERS numbers, the lines of a block are still in the cache when their
# other numbers come (a copy up to 5 times faster on GoogLeNet's 112x112 maps at batch 32; the
# sum of a pixels-first and a channels-first gradient of (8, 256, 28, 28): 17 -> 3.5 ms).
CACHE_BLOCK_NUMBERS = 1 << 16


def for_blocks_of(op, function, out, *arrays):
    """``function(out_block, *blocks)`` over matching blocks of ``out`` and ``arrays`` (all of
    one shape, any layouts), split over the threads: ``function`` writes ``out_block`` from
    the others (``numpy.copyto``, an ``add`` with ``out=``); ``out`` may be one of ``arrays``.

    The blocks are slices along one axis: out's outermost in memory, so that each block is
    written as one run, unless that axis is the innermost of an input (a block would then
    read one number per cache line of it): then an input's outermost axis, else out's next."""
    shape_of_all = {a.shape for a in arrays} | {out.shape}
    if len(shape_of_all) != 1:
        raise ValueError(f"{op}: for_blocks_of needs arrays of one shape, got {sorted(shape_of_all)}")
    out_axes = axes_by_stride(out)
    if not out_axes or get_array_module(out, *arrays) is not numpy:
        function(out, *arrays)                          # one number, or a GPU's arrays: one call
        return
    innermost = {axes_by_stride(a)[-1] for a in arrays if a.size > 1}
    candidates = out_axes[:1] + [axes_by_stride(a)[0] for a in arrays if a.size > 1] + out_axes[1:]
    axis = next((axis for axis in candidates if axis not in innermost), out_axes[0])
    step = max(1, CACHE_BLOCK_NUMBERS * out.shape[axis] // max(out.size, 1))
    index = (slice(None),) * axis

    def blocks(start, stop):
        for block in range(start, stop, step):
            part = index + (slice(block, min(block + step, stop)),)
            function(out[part], *[a[part] for a in arrays])
    for_chunks(op, out.shape[axis], blocks, out.size * (1 + len(arrays)), numpy)


def axes_by_stride(a):
    """a's axes longer than 1, from the one whose steps are longest in memory to the shortest:
    the order in which they lie in memory, outermost first (its layout)."""
    return sorted((axis for axis in range(a.ndim) if a.shape[axis] > 1), key=lambda axis: -abs(a.strides[axis]))


def outermost_axis(a):
    """The axis of ``a`` whose elements lie furthest apart in memory (the largest stride among
    the axes longer than 1): chunks along it are whole blocks of memory."""
    long_axes = [axis for axis in range(a.ndim) if a.shape[axis] > 1]
    return max(long_axes, key=lambda axis: abs(a.strides[axis]), default=0)


def _run_with(settings, *chunk):
    """``_run(*chunk)`` on a pool thread, under the caller's ``numpy.errstate`` settings (each
    thread has its own: without this a chunk would warn where the caller ignores or raises)."""
    with numpy.errstate(**settings):
        _run(*chunk)


def _run(op, work, start, stop, part, parts):
    """``work(start, stop)``; an error gets a note naming the op and the chunk."""
    try:
        work(start, stop)
    except BaseException as error:
        if hasattr(error, "add_note"):
            error.add_note(f"in {op}, chunk {part} of {parts} (items {start}:{stop}), "
                           f"{'on the calling thread' if part == 1 else 'on a pool thread'}")
        raise


# --- the pool ----------------------------------------------------------------------------------
def _mark_worker():
    _in_a_chunk.yes = True


def _pool_with(workers):
    """The pool, with at least ``workers`` threads (grown when asked for more; call under the lock)."""
    global _pool, _pool_size
    if _pool is None or _pool_size < workers:
        if _pool is not None:
            _pool.shutdown(wait=False)          # its threads finish their chunks, then end
        _pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="minigrad", initializer=_mark_worker)
        _pool_size = workers
    return _pool


def shutdown():
    """Stop the pool's threads (after the chunks they run); the next split starts a new pool.
    Not needed before exiting: Python waits for the idle threads and they end at once."""
    global _pool, _pool_size
    with _pool_lock:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True)


def _forget_pool_after_fork():
    """A forked child has none of its parent's threads: it starts its own pool when it needs one."""
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
