"""Measuring what a reader reserves, for the tests of files built to make it reserve too much."""
import tracemalloc


def peak_bytes_of(function, *args):
    """(what ``function`` raised, the peak of memory traced while it ran)."""
    tracemalloc.start()
    try:
        function(*args)
    except Exception as error:             # the caller checks which error it was
        raised = error
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak
