"""minigrad.host_memory: freed arrays kept for the next step. What glibc's malloc says of
its own memory (mallinfo2) shows where a large array came from: mapped from the system for
itself (and unmapped when freed), or from the heap, where it stays when freed."""
import json
import platform
import subprocess
import sys

import pytest

from minigrad import host_memory

CHILD = """
import ctypes, json
import numpy
from minigrad.host_memory import keep_freed_memory

class MallInfo2(ctypes.Structure):          # glibc's struct mallinfo2: ten size_t fields
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
kept = keep_freed_memory()
a = numpy.ones(16 * 2 ** 20, dtype=numpy.float32)         # 64 MiB
mapped_while_alive = mallinfo2().hblkhd
del a
heap_after_free = mallinfo2().arena
print(json.dumps([kept, mapped_while_alive, heap_after_free]))
"""
MIB = 2 ** 20

def glibc_version():
    """(major, minor) of the C library when it is glibc, else None."""
    name, version = platform.libc_ver()
    return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else None


glibc_only = pytest.mark.skipif((glibc_version() or (0, 0)) < (2, 33),
                                reason="mallopt and mallinfo2 are glibc's (2.33 and later)")


def malloc_figures(environment_value):
    """(kept, bytes mapped for single blocks while a 64 MiB array lives, heap bytes after it
    is freed) in a fresh process with MINIGRAD_KEEP_FREED_MEMORY set to ``environment_value``."""
    environment = {host_memory.ENVIRONMENT_VARIABLE: environment_value, "PYTHONPATH": ":".join(sys.path)}
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            env=environment, check=True)
    return json.loads(result.stdout)


@glibc_only
def test_a_large_array_comes_from_the_heap_and_stays_there_when_freed():
    kept, mapped, heap_after_free = malloc_figures("")
    assert kept is True
    assert mapped < 64 * MIB                 # not mapped for itself...
    assert heap_after_free >= 64 * MIB       # ...but from the heap, which keeps it


@glibc_only
def test_without_it_a_large_array_is_mapped_for_itself_and_given_back():
    kept, mapped, heap_after_free = malloc_figures("0")
    assert kept is False
    assert mapped >= 64 * MIB
    assert heap_after_free < 64 * MIB


def test_it_does_nothing_when_turned_off(monkeypatch):
    monkeypatch.setenv(host_memory.ENVIRONMENT_VARIABLE, "0")
    assert host_memory.keep_freed_memory() is False


def test_it_does_nothing_where_the_c_library_is_not_glibc(monkeypatch):
    monkeypatch.delenv(host_memory.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert host_memory.keep_freed_memory() is False
