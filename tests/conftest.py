"""Shared test fixtures.

``xp`` runs a test once with NumPy and once with CuPy; the CuPy run is skipped,
with the reason ``minigrad.backend`` gives, when no GPU is usable. Build inputs
with NumPy (seeded) and move them with ``xp.asarray``; compare on the host with
``minigrad.backend.to_numpy``.
"""
import numpy
import pytest

from minigrad import backend


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    if request.param == "numpy":
        return numpy
    reason = backend.gpu_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return backend.array_module_for("cuda")


KERNEL_SETS = ["reference", "numpy", "cuda"]


def skip_without_twin(name):
    """The cuda set runs on NumPy arrays through its g++-compiled twin: skip where g++ is missing."""
    from minigrad.kernels.cuda.launch import twin_missing_reason
    if name == "cuda" and twin_missing_reason():
        pytest.skip(twin_missing_reason())


def available_kernel_sets():
    """The kernel sets that can run here (the cuda set's twin needs g++)."""
    from minigrad.kernels.cuda.launch import twin_missing_reason
    return [name for name in KERNEL_SETS if name != "cuda" or not twin_missing_reason()]


@pytest.fixture(params=KERNEL_SETS)
def kernel_set(request):
    """Runs a test once on each kernel set (``minigrad.kernels``), inside ``use(name)``;
    the cuda set through its CPU twin."""
    from minigrad import kernels
    skip_without_twin(request.param)
    with kernels.use(request.param):
        yield request.param
