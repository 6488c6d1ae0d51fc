"""On a GPU: every op on both GPU kernel sets (the generic NumPy code on CuPy arrays, and
the hand-written CUDA kernels) against the CPU in float32, gradient checks on the GPU in
float64, and a few GoogLeNet training steps on the GPU against the same steps on the CPU.
Without a GPU every test here skips with the reason (CI has none).

float32 tolerances: rtol 1e-4, atol 1e-5. cuBLAS and OpenBLAS add a GEMM's products in
different orders, and the kernels sum windows in another order than NumPy: each sum of
K float32 terms may differ by about K * 6e-8 of its terms' magnitude (K <= 4800 here).
"""
import numpy
import pytest

import minigrad.functional as F
from minigrad import Tensor, backend, kernels
from minigrad.gradcheck import gradcheck
from minigrad.ops import conv, lrn, pool

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.is_gpu_available(),
                                 reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")]
GPU_SETS = ["numpy", "cuda"]           # generic and hand-written


def float32(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


PAIRS = {  # name: (forward, backward, inputs, parameters)
    "conv 3x3 pad 1": (conv.conv2d_forward, conv.conv2d_backward,
                       (float32(4, 16, 14, 14), float32(32, 16, 3, 3, seed=1), float32(32, seed=2)),
                       dict(padding=1)),
    "conv 7x7/2 pad 3": (conv.conv2d_forward, conv.conv2d_backward,
                         (float32(2, 3, 32, 32), float32(8, 3, 7, 7, seed=1), float32(8, seed=2)),
                         dict(stride=2, padding=3)),
    "conv 1x1": (conv.conv2d_forward, conv.conv2d_backward,
                 (float32(4, 64, 7, 7), float32(16, 64, 1, 1, seed=1), None), {}),
    "max pool 3x3/2 ceil": (pool.max_pool2d_forward, pool.max_pool2d_backward, (float32(4, 8, 15, 15),),
                            dict(kernel_size=3, stride=2, ceil_mode=True)),
    "max pool 3x3/1 pad 1": (pool.max_pool2d_forward, pool.max_pool2d_backward, (float32(4, 8, 14, 14),),
                             dict(kernel_size=3, stride=1, padding=1)),
    "avg pool 5x5/3 ceil": (pool.avg_pool2d_forward, pool.avg_pool2d_backward, (float32(4, 8, 14, 14),),
                            dict(kernel_size=5, stride=3, ceil_mode=True)),
    "lrn 5": (lrn.lrn_forward, lrn.lrn_backward, (float32(4, 16, 7, 7),), dict(size=5)),
}


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("kernel_set", GPU_SETS)
def test_each_op_on_the_gpu_matches_the_cpu_in_float32(kernel_set, name):
    cupy = backend.array_module_for("cuda")
    forward, backward, inputs, params = PAIRS[name]
    y_cpu, cache_cpu = forward(*inputs, **params)
    gy = float32(*y_cpu.shape, seed=3)
    grads_cpu = backward(gy, cache_cpu)
    with kernels.use(kernel_set):
        y, cache = forward(*[None if a is None else cupy.asarray(a) for a in inputs], **params)
    grads = backward(cupy.asarray(gy), cache)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(backend.to_numpy(y), y_cpu, rtol=1e-4, atol=1e-5)
    for g, g_cpu in zip(grads, grads_cpu):
        if g_cpu is not None:
            assert g.dtype == numpy.float32
            numpy.testing.assert_allclose(backend.to_numpy(g), g_cpu, rtol=1e-4, atol=1e-5)


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
