"""The counter-based generator (minigrad/counter_random.py, its kernel counter_random.cu)
against a NumPy version of the same formula, written here from the kernel's comment: bit
for bit on the CPU (the kernel through its g++ twin) and on a GPU. Then what dropout needs:
reproducible masks, independent of the order of the draws, of the right density."""
import numpy as np
import pytest

from minigrad import Tensor, backend, nn
from minigrad.counter_random import CounterGenerator, key_of, make_counter, set_counter

from conftest import skip_without_twin

GAMMA = np.uint64(0x9E3779B97F4A7C15)


def mix64(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def reference_uniform(key, counter, count):
    """The numbers of counter_random.cu, in NumPy: SplitMix64's stream started at
    mix64(mix64(key) ^ counter), each output's top 53 bits over 2^53."""
    start = mix64(mix64(np.uint64(key)) ^ np.uint64(counter))
    with np.errstate(over="ignore"):
        bits = mix64(start + (np.arange(count, dtype=np.uint64) + np.uint64(1)) * GAMMA)
    return (bits >> np.uint64(11)).astype(np.float64) / 2.0 ** 53


@pytest.fixture(autouse=True)
def twin():
    skip_without_twin("cuda")


def test_splitmix64_reference_gives_the_published_first_outputs():
    # SplitMix64 seeded with 0 (Vigna's splitmix64.c: state += GAMMA, then the finalizer)
    first = mix64(np.arange(1, 4, dtype=np.uint64) * GAMMA)
    assert [hex(int(v)) for v in first] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4", "0x6c45d188009454f"]


@pytest.mark.parametrize("count", [1, 14, 15, 16, 1000])
@pytest.mark.parametrize("counter", [0, 1, 7, 2 ** 63 + 5])
def test_the_kernel_on_the_cpu_equals_the_numpy_formula_bit_for_bit(count, counter):
    generator = CounterGenerator([3, 1])
    set_counter(generator.counter, counter)
    np.testing.assert_array_equal(generator.random(count), reference_uniform(key_of([3, 1]), counter, count))


def test_numbers_lie_in_0_1_and_look_uniform():
    u = CounterGenerator(0).random((200, 100))
    assert u.dtype == np.float64 and u.shape == (200, 100)
    assert u.min() >= 0 and u.max() < 1
    # 20,000 uniforms: the mean within 5 standard deviations (sqrt(1/12/n)) of 1/2, every
    # tenth of [0, 1) within 5 standard deviations of its 2,000 expected numbers
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(2000 * 0.9))


def test_a_draw_depends_on_key_counter_and_shape_only_not_on_earlier_draws():
    counter = make_counter()
    first, second = CounterGenerator([0, 0], counter=counter), CounterGenerator([0, 1], counter=counter)
    set_counter(counter, 5)
    alone = first.random(50)
    second.random(50)                    # draws of another generator, and of other counters,
    set_counter(counter, 3)              # in between
    first.random(50)
    set_counter(counter, 5)
    np.testing.assert_array_equal(first.random(50), alone)
    assert not np.array_equal(second.random(50), alone)            # another key, other numbers
    set_counter(counter, 6)
    assert not np.array_equal(first.random(50), alone)             # another counter, other numbers


def test_a_new_generator_with_the_same_seed_draws_the_same_numbers():
    np.testing.assert_array_equal(CounterGenerator([1, 2]).random(30), CounterGenerator([1, 2]).random(30))


def test_dropout_draws_its_mask_from_a_counter_generator():
    layer = nn.Dropout(0.3)
    generator = CounterGenerator([9, 0])
    layer.use_generator(generator)
    set_counter(generator.counter, 4)
    x = np.ones((40, 50), np.float32)
    y = layer(Tensor(x)).numpy()
    keep = reference_uniform(key_of([9, 0]), 4, x.size).reshape(x.shape) >= 0.3
    np.testing.assert_array_equal(y, np.where(keep, np.float32(1 / 0.7), np.float32(0)))
    assert abs(keep.mean() - 0.7) < 5 * np.sqrt(0.7 * 0.3 / x.size)
    layer.reseed(1)                       # reseeding returns to the layer's own generator
    assert layer.generators == {}


# --- on a GPU -----------------------------------------------------------------------------
gpu = pytest.mark.skipif(not backend.is_gpu_available(), reason=f"needs a GPU: {backend.gpu_unavailable_reason()}")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("counter", [0, 12345, 2 ** 64 - 1])
def test_the_kernel_on_the_gpu_equals_the_numpy_formula_bit_for_bit(counter):
    generator = CounterGenerator([3, 1], device="cuda")
    set_counter(generator.counter, counter)
    u = generator.random((64, 1000))
    np.testing.assert_array_equal(backend.to_numpy(u).ravel(), reference_uniform(key_of([3, 1]), counter, u.size))


@pytest.mark.gpu
@gpu
def test_dropout_masks_on_the_gpu_and_the_cpu_are_the_same():
    masks = []
    for device in ("cpu", "cuda"):
        layer = nn.Dropout(0.4).use_generator(CounterGenerator([2, 5], device=device))
        masks.append(backend.to_numpy(layer(Tensor(np.ones((8, 300), np.float32), device=device)).data))
    np.testing.assert_array_equal(masks[0], masks[1])


@pytest.mark.gpu
@gpu
def test_a_counter_on_another_device_than_the_generator_is_an_error():
    with pytest.raises(ValueError, match="the counter is on cpu, the generator on cuda:0"):
        CounterGenerator(0, device="cuda", counter=make_counter("cpu"))
