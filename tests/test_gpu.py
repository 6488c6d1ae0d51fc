"""On a GPU: every op on both GPU kernel sets (the generic NumPy code on CuPy arrays, and
the hand-written CUDA kernels) against the CPU in float32, gradient checks on the GPU in
float64, and a few GoogLeNet training steps on the GPU against the same steps on the CPU.
Without a GPU every test here skips with the reason (CI has none).

float32: cuBLAS and OpenBLAS add a GEMM's products in different orders, and the kernels sum
windows in another order than NumPy, so each output is held to the bound of its sums
(``float32_cases``: gamma_n times the sum of the terms' magnitudes), not to a relative
tolerance that a result near 0 after cancellation would fail. The same comparison runs on
the CPU between the kernel sets in test_kernel_sets.py.
"""
import numpy
import pytest

import minigrad.functional as F
from minigrad import Tensor, backend, kernels
from minigrad.gradcheck import gradcheck

import float32_cases

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.is_gpu_available(),
                                 reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")]
GPU_SETS = ["numpy", "cuda"]           # generic and hand-written
float32 = float32_cases.float32


@pytest.mark.parametrize("name", float32_cases.CASES)
@pytest.mark.parametrize("kernel_set", GPU_SETS)
def test_each_op_on_the_gpu_matches_the_cpu_in_float32(kernel_set, name):
    cupy = backend.array_module_for("cuda")
    on_the_cpu = float32_cases.run(name, "numpy")
    float32_cases.assert_runs_agree(name, float32_cases.run(name, kernel_set, xp=cupy), on_the_cpu)


@pytest.mark.parametrize("kernel_set", GPU_SETS)
def test_gradcheck_runs_on_the_gpu_in_float64(kernel_set):
    cupy = backend.array_module_for("cuda")
    rng = numpy.random.default_rng(4)
    x, W = cupy.asarray(rng.standard_normal((2, 3, 7, 7))), cupy.asarray(rng.standard_normal((4, 3, 3, 3)))

    def net(x, W):
        h = F.local_response_norm(F.conv2d(x, W, padding=1), size=3, alpha=1.0)
        return F.avg_pool2d(F.max_pool2d(h, 3, stride=2, ceil_mode=True), 2, padding=1)

    with kernels.use(kernel_set):
        assert gradcheck(net, x, W, tolerance=1e-7).max_rel_error < 1e-7


def test_googlenet_training_steps_on_the_gpu_match_the_cpu():
    from googlenet.model import GoogLeNet, googlenet_loss
    from minigrad.optim import SGD
    images = float32(4, 1, 32, 32, seed=5)
    labels = numpy.array([0, 3, 1, 2])
    losses = {}
    for device in ("cpu", "cuda"):
        model = GoogLeNet(num_classes=4, in_channels=1, width=1 / 8, input_size=32, dropout=0.0,
                          aux_dropout=0.0, seed=0).to(device)        # no dropout: masks differ by device
        optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
        losses[device] = []
        for _ in range(3):
            loss = googlenet_loss(model(Tensor(images, device=device)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[device].append(loss.item())
        losses[device + " weights"] = [p.numpy() for p in model.parameters()]
    numpy.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-4)
    for on_gpu, on_cpu in zip(losses["cuda weights"], losses["cpu weights"]):
        numpy.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-5)


def test_dropout_masks_are_drawn_on_the_gpu():
    from minigrad import nn
    layer = nn.Dropout(0.5, seed=1)
    layer(Tensor(float32(8, 8), device="cuda"))
    assert list(layer.generators) == [backend.parse_device("cuda")]
