"""heap.fix_mmap_threshold: applied on glibc, a no-op elsewhere."""
import sys

import pytest

from gansynth_tf import heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's: Linux only")
def test_the_mmap_threshold_is_set_on_glibc():
    assert heap._libc() is not None
    assert heap.fix_mmap_threshold() is True
    assert heap.fix_mmap_threshold(heap.MMAP_THRESHOLD_BYTES * 2) is True


def test_without_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(heap, "_libc", lambda: None)
    assert heap.fix_mmap_threshold() is False
