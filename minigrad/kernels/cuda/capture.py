"""The CUDA side of minigrad/cuda_graph.py: a stream of its own to capture a function's kernels
into a CUDA graph and replay them, ordered with the caller's stream.

Memory. A replay reads and writes the very addresses the capture used: the blocks the
captured step freed along the way (its activations) must stay free for it alone, forever.
CuPy's default pool cannot promise that: when an allocation fails it releases every free
block (``free_all_blocks``), and so would a benchmark measuring the pool. So the warm-up
and the capture allocate from a private pool (a ``cupy.cuda.MemoryPool`` of this object's
own, on this stream): after the capture nothing else allocates from it and no one releases
it; it lives as long as the graph (issue 20's H200 run: an array from MemoryAsyncPool,
allocated inside a capture and alive after it, made the second launch fail; a pool kept
alive with the graph replayed correctly). The arrays that outlive the capture (the outputs,
the optimizer's buffers) are kept alive by whoever holds them. ``pool_bytes`` is what the
private pool holds, for a memory report.

Order. The caller works on its current stream; this stream waits for what the caller has
queued before (an event), and the caller's stream waits for what this stream did (another
event) before going on: the caller may fill a device scalar, replay, then read the loss,
without ever synchronizing the host.
"""
import contextlib

import numpy


class StreamCapture:
    """Capture and replay on a dedicated stream of GPU ``device_index``."""

    def __init__(self, device_index):
        import cupy
        self.cupy = cupy
        self.device = cupy.cuda.Device(device_index)
        with self.device:
            self.pool = cupy.cuda.MemoryPool()
            self.stream = cupy.cuda.Stream(non_blocking=True)
            self.caller_done = cupy.cuda.Event(disable_timing=True)
            self.stream_done = cupy.cuda.Event(disable_timing=True)

    @contextlib.contextmanager
    def on_stream(self):
        """Run the block's GPU work on this stream, after the caller's queued work, with
        memory from the private pool; the caller's stream waits for it."""
        with self.device:
            caller = self.cupy.cuda.get_current_stream()
            caller.record(self.caller_done)
            self.stream.wait_event(self.caller_done)
            try:
                with self.stream, self.cupy.cuda.using_allocator(self.pool.malloc):
                    yield
            finally:
                self.stream.record(self.stream_done)
                caller.wait_event(self.stream_done)

    def run(self, function):
        """``function()`` run now on this stream (a warm-up); what it returns."""
        with self.on_stream():
            return function()

    def capture(self, function):
        """``function()`` captured into a graph, not run: the recording (the graph and what
        ``function`` returned, the arrays each replay writes). A failure inside ends the
        capture (the stream is usable again) and is raised."""
        with self.on_stream():
            self.stream.begin_capture()
            try:
                outputs = function()
            except BaseException:
                self.end_failed_capture()
                raise
            graph = self.stream.end_capture()
        return graph, outputs

    def end_failed_capture(self):
        try:
            self.stream.end_capture()
        except Exception:           # the capture was invalidated: there is no graph to get
            pass

    def replay(self, recording, refresh):
        """``refresh()`` (copies into the graph's static inputs), then the graph, on this
        stream: the recording's outputs, rewritten."""
        graph, outputs = recording
        with self.on_stream():
            refresh()
            graph.launch(self.stream)
        return outputs

    def empty_like(self, value):
        """A device array of ``value``'s shape and dtype, from the private pool."""
        with self.device, self.stream, self.cupy.cuda.using_allocator(self.pool.malloc):
            return self.cupy.empty(value.shape, dtype=value.dtype)

    def pool_bytes(self):
        """The bytes the private pool holds (in use and free)."""
        return self.pool.total_bytes()

    def copy_into(self, static, value):
        """static[...] = value on this stream (inside ``replay``'s refresh): from the host by
        an asynchronous copy, from the GPU by a copy kernel."""
        if isinstance(value, numpy.ndarray):
            static.set(numpy.ascontiguousarray(value), stream=self.stream)
        else:
            static[...] = value
