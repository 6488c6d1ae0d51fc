"""How minigrad sets up OpenBLAS, the BLAS in NumPy's wheels, before NumPy loads it: its idle
threads told to sleep soon after their work, and on AMD's Zen 4 processors the kernels
written for AMD's Zen.

OpenBLAS reads both settings from environment variables once, when NumPy loads it; so
minigrad sets them, unless they are set already, on import, before it imports NumPy itself
(``minigrad/__init__.py`` imports this module first). Every OpenBLAS loaded later in the
process reads them too (SciPy's, say). Imported after NumPy, minigrad cannot change this
process's settings (``IN_EFFECT`` is False then); the processes it starts inherit them either
way. Another BLAS (MKL, Apple's Accelerate) ignores both variables.

Idle threads. OpenBLAS keeps its worker threads spinning after each matrix product, waiting
for the next one, for 2**28 clock ticks (about 0.1 s) before they sleep. minigrad runs
memory-bound kernels between its matrix products on every core (``minigrad.parallel``), and
while BLAS's threads spin, those kernels share the cores with them. OPENBLAS_THREAD_TIMEOUT=n
makes the wait 2**n ticks (n from 4 to 30). Measured on 2 cores with AVX-512: GoogLeNet's
training step, each setting in fresh processes taking turns, in rounds; the medians of the
rounds' medians:

    four rounds, OpenBLAS's 2**28 ticks against 2**16: 831 -> 781 ms at batch 8, 224x224;
        3,085 -> 2,656 ms at batch 32; 103.2 -> 102.8 ms at batch 32, 32x32
    six rounds, the main job's step (batch 32, 32x32, one channel): 102.6 ms with 2**16,
        98.4 ms with 2**20 (faster in all six rounds)
    six rounds, batch 8 at 224x224: 726 ms with 2**16, 734 ms with 2**20 (slower in five)

2**4 ticks (sleep at once) measured as 2**16 did. 2**20 ticks (about 0.4 ms) it is: a
product that follows soon after another finds its threads awake, and none spins long
through a memory-bound kernel of a large step.

Kernels on Zen 4. OpenBLAS picks its matrix-product kernels for the processor it finds. On
Zen 4 (AMD's family 25 with AVX-512: EPYC 9004, Ryzen 7000) it takes those written for
Intel's Skylake-X, in 512-bit AVX-512, which Zen 4 carries out as two 256-bit halves; its
kernels for AMD's Zen, in 256-bit AVX2, multiply faster there (NumPy's wheels run their
Haswell kernels for Zen: ``machine_line()`` then says "Haswell kernels").

Measured on a 2-core Zen 4 (an AMD EPYC virtual machine), fresh processes taking turns:
the 191 products of a GoogLeNet training step (their shapes and layouts, replayed alone)
0.88-0.93x the time at batch 8, 224x224, in 4 of 5 rounds (1.03x in one), and 0.88x in all
three rounds at batch 64, 32x32; whole training steps, four rounds each: batch 64 at 32x32
faster in three (146 -> 140, 151 -> 139, 182 -> 171 ms; 144 -> 162 in the fourth), batch 8 at
224x224 in three (907 -> 889, 904 -> 868, 910 -> 873 ms; 887 -> 897 in the fourth);
``benchmarks/blas_kernels.py`` (whole steps, the choices taking turns): Skylake-X's kernels
1.16x the time of Zen's at 64x32, 1.02x at 8x224 (Haswell's, the same kernels as Zen's in
NumPy's wheels, 1.03x: that much is noise). So on such a processor (as /proc/cpuinfo says:
Linux only) minigrad sets OPENBLAS_CORETYPE=Zen.
A product's last bits differ between two kernels (they add in other orders), as they do
between two machines.
"""
import os
import sys

ENVIRONMENT_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"         # the idle threads' wait
TICKS_AS_POWER_OF_TWO = 20
KERNELS_VARIABLE = "OPENBLAS_CORETYPE"                   # the kernels, on Zen 4 alone
ZEN_4_KERNELS = "Zen"
CPU_INFO = "/proc/cpuinfo"

# In effect in this process: given before the process started (as OpenBLAS reads them), or
# set here before NumPy loaded OpenBLAS.
IN_EFFECT = ENVIRONMENT_VARIABLE in os.environ or "numpy" not in sys.modules


def is_zen_4(cpu_info):
    """Whether the text of /proc/cpuinfo describes an AMD Zen 4 processor: vendor AuthenticAMD,
    CPU family 25 (Zen 3 and Zen 4), and AVX-512 (Zen 4 alone has it)."""
    fields = {}
    for line in cpu_info.splitlines():
        if not line.strip():
            break                                   # the first processor's block is enough
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


def this_cpu_is_zen_4():
    try:
        with open(CPU_INFO) as file:
            return is_zen_4(file.read())
    except OSError:                                 # not Linux
        return False


os.environ.setdefault(ENVIRONMENT_VARIABLE, str(TICKS_AS_POWER_OF_TWO))
if this_cpu_is_zen_4():
    os.environ.setdefault(KERNELS_VARIABLE, ZEN_4_KERNELS)


def describe():
    """How long OpenBLAS's idle threads spin in this process, in a few words (benchmark headers)."""
    if not IN_EFFECT:
        return "OpenBLAS's idle threads spin its default 2**28 ticks (NumPy was imported before minigrad)"
    return f"OpenBLAS's idle threads spin 2**{os.environ[ENVIRONMENT_VARIABLE]} ticks ({ENVIRONMENT_VARIABLE})"
