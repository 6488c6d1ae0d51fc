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


@pytest.fixture(params=["reference", "numpy"])
def kernel_set(request):
    """Runs a test once on each kernel set (``minigrad.kernels``), inside ``use(name)``."""
    from minigrad import kernels
    with kernels.use(request.param):
        yield request.param
