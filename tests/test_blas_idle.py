"""``minigrad.blas_idle``: OpenBLAS's idle threads sleep soon after a matrix product when
minigrad is imported before NumPy, and spin for about 0.1 s (OpenBLAS's default) when NumPy
came first. Each case runs in a fresh Python process, since OpenBLAS reads the setting once."""
import os
import subprocess
import sys

import pytest

from minigrad import blas_idle
from minigrad.bench import machine
from minigrad.bench.memory import child_environment

IDLE_SECONDS = 0.3


def without_the_setting():
    """This process's environment without OPENBLAS_THREAD_TIMEOUT (minigrad set it here)."""
    return {k: v for k, v in os.environ.items() if k != blas_idle.ENVIRONMENT_VARIABLE}


def run_child(code, environment):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=child_environment(environment)).stdout.split()


def cpu_seconds_while_idle(imports):
    """CPU seconds the whole process uses while its main thread sleeps IDLE_SECONDS right
    after a multi-threaded product: the idle BLAS threads' spinning, nothing else."""
    code = (f"{imports}\nimport time, minigrad\n"
            "a = numpy.ones((1024, 1024), numpy.float32); a @ a; a @ a\n"
            f"start = time.process_time(); time.sleep({IDLE_SECONDS}); "
            "print(time.process_time() - start, minigrad.blas_idle.IN_EFFECT)")
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
    code = "import os, minigrad; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], minigrad.blas_idle.IN_EFFECT)"
    assert run_child(code, environment) == [str(blas_idle.TICKS_AS_POWER_OF_TWO), "True"]
    assert run_child(code, dict(environment, OPENBLAS_THREAD_TIMEOUT="24")) == ["24", "True"]
    late = "import numpy, os, minigrad; print(os.environ['OPENBLAS_THREAD_TIMEOUT'], minigrad.blas_idle.IN_EFFECT)"
    assert run_child(late, environment) == [str(blas_idle.TICKS_AS_POWER_OF_TWO), "False"]


def test_the_benchmarks_say_how_long_blas_threads_spin():
    assert machine.threads()["BLAS idle"] == blas_idle.describe()
    assert "OpenBLAS's idle threads spin" in blas_idle.describe()
