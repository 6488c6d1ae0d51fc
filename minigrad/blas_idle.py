"""BLAS's idle threads told to sleep soon after their work, so that minigrad's kernels get the cores.

OpenBLAS, the BLAS in NumPy's wheels, keeps its worker threads spinning after each matrix
product, waiting for the next one, for 2**28 clock ticks (about 0.1 s) before they sleep.
minigrad runs memory-bound kernels between its matrix products on every core
(``minigrad.parallel``), and while BLAS's threads spin, those kernels share the cores with
them. The environment variable OPENBLAS_THREAD_TIMEOUT=n makes the wait 2**n ticks (n from
4 to 30). OpenBLAS reads it once, when NumPy loads it; so minigrad sets it, unless it is set
already, on import, before it imports NumPy itself (``minigrad/__init__.py`` imports this
module first). Imported after NumPy, minigrad cannot change the wait of this process
(``IN_EFFECT`` is False then); the processes it starts inherit the setting either way.

Measured on 2 cores with AVX-512 (GoogLeNet's training step, each setting in fresh processes,
alternately, four rounds): at 224x224, batch 8 from 818-937 ms to 721-802 ms and batch 32
from 3,040-3,297 ms to 2,596-2,901 ms with 2**16 ticks; at 32x32, batch 32, no change
(97-124 ms either way). 2**4 ticks (sleep at once) measured the same as 2**16; 2**16 ticks
(about 25 microseconds) still catches a product that follows right after another.
"""
import os
import sys

ENVIRONMENT_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
TICKS_AS_POWER_OF_TWO = 16

# In effect in this process: given before the process started (as OpenBLAS reads it), or set
# here before NumPy loaded OpenBLAS.
IN_EFFECT = ENVIRONMENT_VARIABLE in os.environ or "numpy" not in sys.modules
os.environ.setdefault(ENVIRONMENT_VARIABLE, str(TICKS_AS_POWER_OF_TWO))


def describe():
    """How long OpenBLAS's idle threads spin in this process, in a few words (benchmark headers)."""
    if not IN_EFFECT:
        return "OpenBLAS's idle threads spin its default 2**28 ticks (NumPy was imported before minigrad)"
    return f"OpenBLAS's idle threads spin 2**{os.environ[ENVIRONMENT_VARIABLE]} ticks ({ENVIRONMENT_VARIABLE})"
