"""glibc heap settings for a long training run (mallopt), applied by the training command.

TensorFlow's CPU tensors come from malloc. glibc serves a large request (activations of
several MB) with its own mmap, and returns it to the system when freed; but after each
such free it raises its mmap threshold to that size (the "dynamic threshold"), so later
requests of that size come from the heap arenas, which keep freed memory resident and
fragment. Setting the threshold explicitly turns that adjustment off. Smaller blocks are
freed into the arenas and stay resident until a trim; the training callbacks trim before
each scalar summary. The threshold is 32 MiB, the ceiling of glibc's own dynamic one on
64-bit: a low one maps and unmaps every activation of every step, and each fresh mapping
page-faults in again. The measured effects on the music recipe are in docs/real_music.md
("Session 9", "Session 10") and bench/README.md ("Session 15").

Elsewhere than glibc (macOS, musl) nothing is changed.
"""

import ctypes
import ctypes.util
import functools

# mallopt parameter numbers (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
# Requests at least this large are mmapped (and unmapped when freed), whatever came before.
MMAP_THRESHOLD_BYTES = 32 << 20


@functools.lru_cache(maxsize=None)
def _libc():
    # Looked up once: find_library runs `ldconfig -p` in a subprocess, and the trim is
    # called every few steps from a process of several GB.
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def fix_mmap_threshold(threshold=MMAP_THRESHOLD_BYTES):
    """Sets glibc's mmap threshold to `threshold` bytes; True where it was applied."""
    libc = _libc()
    if libc is None:
        return False
    return libc.mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1


def release_free_memory():
    """Hands the heap arenas' free pages back to the system (glibc's malloc_trim(0)).

    Freed small blocks stay resident in glibc's arenas until a trim; a training step frees
    and reallocates thousands of them, so resident memory creeps up between trims. True
    where memory was released, False where there was none to release or no glibc.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    return libc.malloc_trim(0) == 1
