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


# --- the cuda set's convolution: one product over the batch, the fused ReLU, TF32 ------------------
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("source, kernel", [("im2col.cu", "im2col"), ("im2col.cu", "col2im"),
                                            ("layout.cu", "channels_to_images"),
                                            ("layout.cu", "images_to_channels")])
def test_nvrtc_compiles_the_convolution_kernels(source, kernel, real):
    from minigrad.kernels.cuda import launch
    assert launch.gpu_function(source, kernel, real) is not None


CONVOLUTIONS = {  # name: (x shape, weight shape, stride, padding, groups)
    "3x3 pad 1": ((3, 4, 9, 8), (6, 4, 3, 3), 1, 1, 1),
    "1x1": ((3, 8, 7, 7), (5, 8, 1, 1), 1, 0, 1),
    "7x7/2 pad 3": ((2, 3, 16, 16), (4, 3, 7, 7), 2, 3, 1),
    "3x3/2 groups 2": ((2, 6, 9, 9), (4, 3, 3, 3), 2, 0, 2),
}


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_the_one_product_convolution_on_the_gpu_matches_the_reference_set_in_float64(name, relu):
    from minigrad.ops import conv
    cupy = backend.array_module_for("cuda")
    x_shape, w_shape, stride, padding, groups = CONVOLUTIONS[name]
    rng = numpy.random.default_rng(13)
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    forward = conv.conv2d_relu_forward if relu else conv.conv2d_forward
    params = dict(stride=stride, padding=padding, groups=groups)
    with kernels.use("reference"):
        y_ref, cache = forward(x, W, b, **params)
    gy = rng.standard_normal(y_ref.shape)
    grads_ref = conv.conv2d_backward(gy, cache)
    with kernels.use("cuda"):
        y, cache = forward(cupy.asarray(x), cupy.asarray(W), cupy.asarray(b), **params)
    grads = conv.conv2d_backward(cupy.asarray(gy), cache)
    for ours, theirs in zip([y, *grads], [y_ref, *grads_ref]):
        assert isinstance(ours, cupy.ndarray)
        numpy.testing.assert_allclose(backend.to_numpy(ours), theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel_set", GPU_SETS)
@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_the_fused_relu_on_the_gpu_gives_exactly_the_unfused_results(kernel_set, name):
    from test_cuda_conv import fused_and_unfused
    cupy = backend.array_module_for("cuda")
    x_shape, w_shape, stride, padding, groups = CONVOLUTIONS[name]
    rng = numpy.random.default_rng(14)
    x, W, b = (cupy.asarray(rng.standard_normal(shape)) for shape in (x_shape, w_shape, w_shape[:1]))
    with kernels.use(kernel_set):
        y, grads, y_unfused, grads_unfused = fused_and_unfused(
            x, W, b, dict(stride=stride, padding=padding, groups=groups), xp=cupy)
    for fused, unfused in zip([y, *grads], [y_unfused, *grads_unfused]):
        numpy.testing.assert_array_equal(backend.to_numpy(fused), backend.to_numpy(unfused))


def test_gemm_on_the_gpu_runs_tf32_only_when_allowed():
    """1 + 2^-12 needs 13 bits of mantissa: float32 keeps it, TF32 (10 bits) rounds it to 1. So
    a product of 4096 of them with ones is 4097 in float32 and 4096 in TF32 (every partial sum
    is exact in float32). CuPy's own setting is back as it was after each product."""
    from minigrad.kernels.cuda.blas import gemm
    cupy = backend.array_module_for("cuda")
    a = cupy.full((256, 4096), 1 + 2.0 ** -12, dtype=cupy.float32)
    b = cupy.ones((4096, 256), dtype=cupy.float32)
    cupys_own = cupy._core.get_compute_type(numpy.float32)
    try:
        backend.allow_tf32(False)
        assert (backend.to_numpy(gemm(a, b)) == 4097).all()
        backend.allow_tf32(True)
        assert (backend.to_numpy(gemm(a, b)) == 4096).all()
        assert (backend.to_numpy(gemm(a.astype(cupy.float64), b.astype(cupy.float64))) == 4097).all()
        assert cupy._core.get_compute_type(numpy.float32) == cupys_own
    finally:
        backend.allow_tf32(None)
