"""BLAS's idle threads told to sleep soon after their work, so that minigrad's kernels get the cores.

OpenBLAS, the BLAS in NumPy's wheels, keeps its worker threads spinning after each matrix
product, waiting for the next one, for 2**28 clock ticks (about 0.1 s) before they sleep.
minigrad runs memory-bound kernels between its matrix products on every core
(``minigrad.parallel``), and while BLAS's threads spin, those kernels share the cores with
them. The environment variable OPENBLAS_THREAD_TIMEOUT=n makes the wait 2**n ticks (n from
4 to 30). OpenBLAS reads it once, when NumPy loads it; so minigrad sets it, unless it is set
already, on import, before it imports NumPy itself (``minigrad/__init__.py`` imports this
module first). Every OpenBLAS loaded later in the process reads it too (SciPy's, say).
Imported after NumPy, minigrad cannot change the wait of this process (``IN_EFFECT`` is
False then); the processes it starts inherit the setting either way.

Measured on 2 cores with AVX-512: GoogLeNet's training step, each setting in fresh processes
taking turns, in rounds; the medians of the rounds' medians:

    four rounds, OpenBLAS's 2**28 ticks against 2**16: 831 -> 781 ms at batch 8, 224x224;
        3,085 -> 2,656 ms at batch 32; 103.2 -> 102.8 ms at batch 32, 32x32
    six rounds, the main job's step (batch 32, 32x32, one channel): 102.6 ms with 2**16,
        98.4 ms with 2**20 (faster in all six rounds)
    six rounds, batch 8 at 224x224: 726 ms with 2**16, 734 ms with 2**20 (slower in five)

2**4 ticks (sleep at once) measured as 2**16 did. 2**20 ticks (about 0.4 ms) it is: a
product that follows soon after another finds its threads awake, and none spins long
through a memory-bound kernel of a large step.
"""
import os
import sys

ENVIRONMENT_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
TICKS_AS_POWER_OF_TWO = 20

# In effect in this process: given before the process started (as OpenBLAS reads it), or set
# here before NumPy loaded OpenBLAS.
IN_EFFECT = ENVIRONMENT_VARIABLE in os.environ or "numpy" not in sys.modules
os.environ.setdefault(ENVIRONMENT_VARIABLE, str(TICKS_AS_POWER_OF_TWO))


def describe():
    """How long OpenBLAS's idle threads spin in this process, in a few words (benchmark headers)."""
    if not IN_EFFECT:
        return "OpenBLAS's idle threads spin its default 2**28 ticks (NumPy was imported before minigrad)"
    return f"OpenBLAS's idle threads spin 2**{os.environ[ENVIRONMENT_VARIABLE]} ticks ({ENVIRONMENT_VARIABLE})"
