"""heap: glibc's mmap threshold and trimming; applied on glibc, a no-op elsewhere."""
import ctypes
import os
import sys

import pytest

from gansynth_tf import heap

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="mallopt / malloc_trim are glibc's: Linux only")


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc_only
def test_the_mmap_threshold_is_set_on_glibc():
    assert heap._libc() is not None
    assert heap.fix_mmap_threshold() is True
    assert heap.fix_mmap_threshold(1 << 20) is True
    assert heap.fix_mmap_threshold() is True


@glibc_only
def test_trimming_returns_freed_small_blocks_to_the_system():
    libc = heap._libc()
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block, count = 4096, 40_000  # 160 MB of blocks far below any mmap threshold
    blocks = [libc.malloc(block) for _ in range(count)]
    for b in blocks:
        ctypes.memset(b, 1, block)  # touched: resident
    # Everything but the last block is freed: the heap's top stays in use, so glibc keeps
    # the freed pages resident until it is asked to trim.
    for b in blocks[:-1]:
        libc.free(b)
    before = _resident_bytes()
    assert heap.release_free_memory() is True
    after = _resident_bytes()
    libc.free(blocks[-1])
    assert before - after > 0.5 * block * count


def test_without_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    assert heap.fix_mmap_threshold() is False
    assert heap.release_free_memory() is False
