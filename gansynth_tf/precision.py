"""The compute precision of training: a Keras dtype policy, chosen from --precision.

Variables stay float32 under every policy; only activations (and so their memory) shrink.
``mixed_float16`` needs loss scaling (``GANSynthGAN.compile`` wraps the optimizers);
``mixed_bfloat16`` keeps float32's exponent range, so it does not. ``auto`` picks
``mixed_bfloat16`` on a CPU with native bfloat16 arithmetic (x86 AVX512_BF16 or AMX-BF16,
Arm BF16) when no GPU is visible, and float32 everywhere else: emulated bfloat16 is slower
than float32. Measured speed and memory: docs/design.md, "Precision".
"""

import os

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
# /proc/cpuinfo flag names (x86 "flags", Arm "Features") of native bfloat16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo=CPUINFO):
    """The CPU feature flags listed in `cpuinfo` (empty where it cannot be read)."""
    if not os.path.exists(cpuinfo):
        return frozenset()
    found = set()
    with open(cpuinfo, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                found.update(value.split())
    return frozenset(found)


def resolve(precision, has_gpu, flags=None):
    """The Keras policy name for --precision=`precision` on this machine.

    has_gpu: whether TensorFlow sees a GPU; flags: the CPU's feature flags (default:
    read from /proc/cpuinfo, only needed for ``auto``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision={precision!r}: expected one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if has_gpu:
        return "float32"
    flags = cpu_flags() if flags is None else flags
    return "mixed_bfloat16" if NATIVE_BF16_FLAGS & set(flags) else "float32"


def from_flags(precision, mixed_precision, has_gpu, flags=None):
    """Resolves --precision together with the older --mixed_precision (= mixed_float16)."""
    if mixed_precision:
        if precision not in ("float32", "mixed_float16"):
            raise ValueError(f"--mixed_precision means --precision=mixed_float16; it "
                             f"contradicts --precision={precision}: give one of the two")
        return "mixed_float16"
    return resolve(precision, has_gpu, flags)
