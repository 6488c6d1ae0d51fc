"""``minigrad.blas_setup``: OpenBLAS's idle threads sleep soon after a matrix product when
minigrad is imported before NumPy, and spin for about 0.1 s (OpenBLAS's default) when NumPy
came first; on AMD Zen 4 OpenBLAS runs its Zen kernels. Each case runs in a fresh Python
process, since OpenBLAS reads its settings once."""
import os
import subprocess
import sys

import pytest

from minigrad import blas_setup
from minigrad.bench import machine
from minigrad.bench.memory import child_environment

IDLE_SECONDS = 0.3


def without_the_setting():
    """This process's environment without OPENBLAS_THREAD_TIMEOUT and OPENBLAS_CORETYPE
    (minigrad set them here)."""
    ours = {blas_setup.ENVIRONMENT_VARIABLE, blas_setup.KERNELS_VARIABLE}
    return {k: v for k, v in os.environ.items() if k not in ours}


def run_child(code, environment):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=child_environment(environment)).stdout.split()


def cpu_seconds_while_idle(imports):
    """CPU seconds the whole process uses while its main thread sleeps IDLE_SECONDS right
    after a multi-threaded product: the idle BLAS threads' spinning, nothing else."""
    code = (f"{imports}\nimport time, minigrad\n"
            "a = numpy.ones((1024, 1024), numpy.float32); a @ a; a @ a\n"
            f"start = time.process_time(); time.sleep({IDLE_SECONDS}); "
            "print(time.process_time() - start, minigrad.blas_setup.IN_EFFECT)")
    seconds, in_effect = run_child(code, without_the_setting())
    return float(seconds), in_effect == "True"


def blas_thread_count():
    return machine.threads()["BLAS threads"] or 1


@pytest.mark.skipif(blas_thread_count() < 2, reason="one BLAS thread: no worker thread to spin")
def test_idle_blas_threads_sleep_when_minigrad_comes_before_numpy_and_spin_otherwise():
    spun, in_effect = cpu_seconds_while_idle("import minigrad, numpy")
    assert in_effect and spun < 0.03
    spun_by_default, in_effect = cpu_seconds_while_idle("import numpy")
    assert not in_effect and spun_by_default > 0.05          # OpenBLAS's 2**28 ticks, about 0.1 s


def test_the_setting_is_made_for_child_processes_and_a_given_one_is_kept():
    environment = without_the_setting()
    code = "import os, minigrad; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], minigrad.blas_setup.IN_EFFECT)"
    assert run_child(code, environment) == [str(blas_setup.TICKS_AS_POWER_OF_TWO), "True"]
    assert run_child(code, dict(environment, OPENBLAS_THREAD_TIMEOUT="24")) == ["24", "True"]
    late = "import numpy, os, minigrad; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], minigrad.blas_setup.IN_EFFECT)"
    assert run_child(late, environment) == [str(blas_setup.TICKS_AS_POWER_OF_TWO), "False"]


def test_the_benchmarks_say_how_long_blas_threads_spin():
    assert machine.threads()["BLAS idle"] == blas_setup.describe()
    assert "OpenBLAS's idle threads spin" in blas_setup.describe()


ZEN_4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
flags\t\t: fpu sse2 avx2 fma avx512f avx512dq avx512bw

processor\t: 1
vendor_id\t: AuthenticAMD
"""


def test_zen_4_is_told_from_its_vendor_family_and_avx512():
    assert blas_setup.is_zen_4(ZEN_4)
    zen_3 = ZEN_4.replace(" avx512f avx512dq avx512bw", "")                 # family 25 without AVX-512
    intel = ZEN_4.replace("AuthenticAMD", "GenuineIntel").replace("25", "6")
    zen_5 = ZEN_4.replace("cpu family\t: 25", "cpu family\t: 26")
    assert not any(blas_setup.is_zen_4(text) for text in (zen_3, intel, zen_5, ""))


def test_on_zen_4_openblas_runs_its_zen_kernels_and_a_given_choice_is_kept():
    code = "import os, minigrad; print(os.environ.get('OPENBLAS_CORETYPE', 'none'))"
    expected = blas_setup.ZEN_4_KERNELS if blas_setup.this_cpu_is_zen_4() else "none"
    assert run_child(code, without_the_setting()) == [expected]
    assert run_child(code, dict(without_the_setting(), OPENBLAS_CORETYPE="Haswell")) == ["Haswell"]


@pytest.mark.skipif(not blas_setup.this_cpu_is_zen_4(), reason="the kernels are chosen on AMD Zen 4 alone")
def test_numpys_openblas_reports_the_zen_kernels_in_the_machine_line():
    pytest.importorskip("threadpoolctl")
    code = "import minigrad; from minigrad.bench import machine; print(machine.machine_line())"
    line = " ".join(run_child(code, without_the_setting()))
    if "openblas" in line:                    # NumPy's wheels run the Haswell kernels for Zen
        assert "(Zen kernels)" in line or "(Haswell kernels)" in line, line
