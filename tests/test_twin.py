"""The CPU twin of the CUDA kernels is safe to load and safe to share (see the docstring of
minigrad/kernels/cuda/launch.py): its libraries are cached in the user's private folder and
checked before loading, never taken from the shared temporary folder; threads may run and
build kernels at once; a read-only cache folder and a missing g++ are handled.

Running as root, a test cannot make a folder really read-only or owned by someone else
without privileges it may lack, so those two are simulated where Python meets the system:
``os.open`` refuses to create files there (EROFS), ``os.stat`` reports another owner."""
import errno
import hashlib
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import warnings

import numpy as np
import pytest

from minigrad.kernels import cuda, reference
from minigrad.kernels.cuda import launch
from minigrad.geometry import window

from conftest import skip_without_twin

# A library that answers 42 whatever it is asked: what an attacker would plant.
PLANTED_SOURCE = r"""
extern "C" {
struct dim3 { unsigned int x, y, z; };
dim3 blockIdx, threadIdx, blockDim, gridDim;
void twin_set_thread(unsigned int, unsigned int, unsigned int, unsigned int) {}
void max_pool_forward(const float* x, float* y, int* argmax, int N, int C, int H, int W, int KH, int KW,
                      int SH, int SW, int PH, int PW, int OH, int OW) {
    for (long i = 0; i < (long)N * C * OH * OW; ++i) { y[i] = 42; argmax[i] = 0; }
}
}
"""


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty user cache folder (XDG_CACHE_HOME) and an empty shared temporary folder (what
    tempfile uses), with no library loaded yet: the cache folder's path."""
    skip_without_twin("cuda")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "shared-tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "shared-tmp"))
    launch.twin_library.cache_clear()
    launch.private_temporary_folder.cache_clear()
    yield str(tmp_path / "cache" / "minigrad" / "cuda-twin")
    launch.twin_library.cache_clear()
    launch.private_temporary_folder.cache_clear()


def max_pool_of_zeros():
    """The cuda set's 2x2 max pool of a float32 map of zeros (what a planted library spoils)."""
    x = np.zeros((1, 2, 4, 4), np.float32)
    y, _ = cuda.max_pool2d_forward(x, window((4, 4), 2, 2, 0))
    return y


def plant(path):
    """Compile the library that answers 42 to ``path``."""
    source = os.path.join(os.path.dirname(path), "planted.cc")
    with open(source, "w") as file:
        file.write(PLANTED_SOURCE)
    subprocess.run(["g++", "-shared", "-fPIC", source, "-o", path], check=True)


def cached_path(folder, file="pool.cu", real="float"):
    """Where twin_library keeps (or looks for) the library of ``file`` with today's g++."""
    compiler = hashlib.sha256(launch.compiler_version().encode()).hexdigest()[:8]
    return os.path.join(folder, f"{launch.library_prefix(file, real)}-{compiler}.so")


def libraries_in(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith("planted"))


def pretend_owned_by_someone_else(monkeypatch, path):
    real_stat = os.stat

    def stat_with_another_owner(p, *args, **kwargs):
        info = real_stat(p, *args, **kwargs)
        if os.path.abspath(p) != path:
            return info
        fields = list(info)
        fields[stat.ST_UID] = os.getuid() + 1000
        return os.stat_result(fields)
    monkeypatch.setattr(os, "stat", stat_with_another_owner)


def pretend_read_only(monkeypatch, folder):
    real_open = os.open

    def open_read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.dirname(os.path.abspath(path)) == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", open_read_only)


# --- where the libraries live ----------------------------------------------------------------------
def test_the_cache_folder_is_the_users_own(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert launch.cache_folder() == str(tmp_path / "minigrad" / "cuda-twin")
    home = os.path.join(os.path.expanduser("~"), ".cache", "minigrad", "cuda-twin")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")         # the XDG rule: ignored
    assert launch.cache_folder() == home
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert launch.cache_folder() == home


def test_libraries_are_built_into_a_private_folder(fresh_cache):
    np.testing.assert_array_equal(max_pool_of_zeros(), 0)
    assert stat.S_IMODE(os.stat(fresh_cache).st_mode) == 0o700
    assert libraries_in(fresh_cache) == [os.path.basename(cached_path(fresh_cache))]
    assert stat.S_IMODE(os.stat(cached_path(fresh_cache)).st_mode) & 0o077 == 0


def test_a_library_planted_in_the_old_shared_folder_is_never_loaded(fresh_cache):
    """The twin once cached its libraries in <temporary folder>/minigrad-cuda-twin, under
    names anyone could compute: another user could plant a library there."""
    shared = os.path.join(tempfile.gettempdir(), "minigrad-cuda-twin")
    os.makedirs(shared)
    old_digest = hashlib.sha256(f"float\n{launch.source('twin.h')}{launch.source('pool.cu')}".encode())
    plant(os.path.join(shared, f"pool-float-{old_digest.hexdigest()[:16]}.so"))
    np.testing.assert_array_equal(max_pool_of_zeros(), 0)


@pytest.mark.parametrize("flaw", ["another owner", "writable by others"])
def test_a_cached_library_that_fails_the_check_is_built_again(fresh_cache, monkeypatch, flaw):
    os.makedirs(fresh_cache, mode=0o700)
    path = cached_path(fresh_cache)
    plant(path)
    if flaw == "another owner":
        pretend_owned_by_someone_else(monkeypatch, path)
    else:
        os.chmod(path, 0o777)
    message = r"belongs to user id \d+, not to you" if flaw == "another owner" else \
        r"is writable by other users \(mode -rwxrwxrwx\)"
    with pytest.warns(RuntimeWarning, match=rf"does not load {re.escape(path)} {message}.*; building it again"):
        np.testing.assert_array_equal(max_pool_of_zeros(), 0)


@pytest.mark.parametrize("flaw", ["another owner", "writable by others"])
def test_a_cache_folder_that_fails_the_check_is_not_used(fresh_cache, monkeypatch, flaw):
    os.makedirs(fresh_cache, mode=0o700)
    plant(cached_path(fresh_cache))
    if flaw == "another owner":
        pretend_owned_by_someone_else(monkeypatch, fresh_cache)
    else:
        os.chmod(fresh_cache, 0o777)
    message = r"belongs to user id \d+, not to you \(user id \d+\)" if flaw == "another owner" else \
        r"is writable by other users \(mode drwxrwxrwx\)"
    with pytest.warns(RuntimeWarning, match=rf"does not use its cache folder: {re.escape(fresh_cache)} {message}; "
                                            r"building its libraries in .*minigrad-cuda-twin-"):
        np.testing.assert_array_equal(max_pool_of_zeros(), 0)
    private = launch.private_temporary_folder()
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    assert libraries_in(private) == [os.path.basename(cached_path(private))]


# --- threads ---------------------------------------------------------------------------------------
def test_threads_running_kernels_at_once_get_the_right_results(monkeypatch):
    """ctypes lets go of Python's lock during each kernel call: with built-ins shared by the
    whole library, one thread's blockIdx overwrote another's (2-60 wrong launches of 1,200
    in every run before they became thread_local)."""
    skip_without_twin("cuda")
    monkeypatch.setattr(launch, "TWIN_GRID", (8, 32))       # 256 calls a launch: more chances to clash
    win = window((16, 16), 2, 2, 0)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, 2, 16, 16)) for _ in range(16)]
    expected = [reference.max_pool2d_forward(x, win)[0] for x in inputs]
    wrong = []

    def launch_many(thread):
        for launch_index in range(150):
            which = 2 * thread + launch_index % 2                # alternate: no stale right answer
            y, _ = cuda.max_pool2d_forward(inputs[which], win)
            if not np.array_equal(y, expected[which]):
                wrong.append((thread, launch_index))

    threads = [threading.Thread(target=launch_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_threads_building_the_same_library_at_once(fresh_cache):
    start, errors, libraries = threading.Barrier(4), [], []

    def build():
        start.wait()
        try:
            libraries.append(launch.twin_library.__wrapped__("pool.cu", "float"))
        except Exception as error:                          # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(libraries) == 4
    assert libraries_in(fresh_cache) == [os.path.basename(cached_path(fresh_cache))]   # no .partial left


def test_processes_building_the_same_library_at_once(fresh_cache):
    env = dict(os.environ, XDG_CACHE_HOME=os.path.dirname(os.path.dirname(fresh_cache)),
               PYTHONPATH=os.pathsep.join(sys.path))
    code = "from minigrad.kernels.cuda import launch; launch.twin_library('pool.cu', 'float')"
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    errors = [p.communicate()[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    assert libraries_in(fresh_cache) == [os.path.basename(cached_path(fresh_cache))]


# --- a read-only cache folder, no g++ -------------------------------------------------------------------
def test_a_read_only_cache_folder_falls_back_to_a_private_folder(fresh_cache, monkeypatch):
    os.makedirs(fresh_cache, mode=0o700)
    pretend_read_only(monkeypatch, fresh_cache)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(max_pool_of_zeros(), 0)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "g++" not in messages[0].replace(".so", "")
    assert messages[0].startswith(f"the CPU twin's cache folder {fresh_cache} is not writable "
                                  f"(Read-only file system): building pool-float-")
    assert libraries_in(fresh_cache) == []
    assert libraries_in(launch.private_temporary_folder()) == [os.path.basename(cached_path(fresh_cache))]


def test_a_read_only_cache_folder_still_serves_its_libraries(fresh_cache, monkeypatch):
    max_pool_of_zeros()
    launch.twin_library.cache_clear()
    pretend_read_only(monkeypatch, fresh_cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(max_pool_of_zeros(), 0)


def test_a_cached_library_loads_without_g_plus_plus(fresh_cache, monkeypatch, tmp_path):
    max_pool_of_zeros()
    launch.twin_library.cache_clear()
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert launch.twin_missing_reason() is not None
    np.testing.assert_array_equal(max_pool_of_zeros(), 0)
    with pytest.raises(RuntimeError, match=r"g\+\+ is not installed.*, and .*cuda-twin holds no library built "
                                           r"from the current source \(lrn-double-[0-9a-f]{16}-\*\.so\)"):
        launch.twin_library("lrn.cu", "double")


def test_another_compiler_version_builds_its_own_library(fresh_cache, monkeypatch):
    first = cached_path(fresh_cache)
    launch.twin_library("pool.cu", "float")
    monkeypatch.setattr(launch, "compiler_version", lambda: "g++ (a newer one) 99.1.0\n")
    launch.twin_library.__wrapped__("pool.cu", "float")
    assert len(libraries_in(fresh_cache)) == 2 and os.path.basename(first) in libraries_in(fresh_cache)


def test_a_changed_header_names_a_new_library(monkeypatch, tmp_path):
    """pool.cu includes grid.h: a library built before grid.h changed must not be reused."""
    for name in ("twin.h", "grid.h", "pool.cu"):
        (tmp_path / name).write_text(launch.source(name))
    monkeypatch.setattr(launch, "FOLDER", str(tmp_path))
    before = launch.library_prefix("pool.cu", "float")
    (tmp_path / "grid.h").write_text(launch.source("grid.h") + "// changed\n")
    assert launch.library_prefix("pool.cu", "float") != before
