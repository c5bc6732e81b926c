"""Affine normalisers that map specgrams `[batch, time, freq, 2]` into [-1, 1].

The two GANSynth offers, plus the identity:

* `PrespecifiedNormalizer`: fixed constants (GANSynth's "prespecified" values).
* `MinMaxNormalizer`: a, b from the min/max over N examples with a margin (0.8), per channel
  or per channel and frequency bin (GANSynth's "simple" and "freq" normalisers).

normalize(x) = clip(a * x + b, -1, 1); denormalize(y) = (y - b) / a. A normaliser is saved as
a small JSON file in the run directory so training, export and generation use the same one.
"""

import json

import numpy as np
import tensorflow as tf

from gansynth_tf import cli

# GANSynth's prespecified constants for (log-magnitude, IF).
PRESPECIFIED_A = (0.0661371661726, 0.8)
PRESPECIFIED_B = (0.113718730221, 0.0)

NORMALIZERS = ("prespecified", "minmax", "minmax_freq", "none")


class AffineNormalizer:
    """clip(a * x + b, -1, 1) with `a`, `b` broadcast against `[..., freq, 2]` (or `[2]`)."""

    kind = "affine"

    def __init__(self, a, b):
        self.a = np.asarray(a, np.float32)
        self.b = np.asarray(b, np.float32)
        if self.a.shape != self.b.shape or self.a.shape[-1:] != (2,):
            raise ValueError(f"a and b must share a shape ending in 2 channels, got "
                             f"{self.a.shape} and {self.b.shape}")
        if np.any(self.a == 0):
            raise ValueError("a normaliser scale is 0: the data it was fitted on is constant")

    def normalize(self, x):
        x = tf.convert_to_tensor(x)
        return tf.clip_by_value(tf.cast(self.a, x.dtype) * x + tf.cast(self.b, x.dtype),
                                -1.0, 1.0)

    def denormalize(self, y):
        y = tf.convert_to_tensor(y)
        return (y - tf.cast(self.b, y.dtype)) / tf.cast(self.a, y.dtype)

    def get_config(self):
        return {"kind": self.kind, "a": self.a.tolist(), "b": self.b.tolist()}

    @classmethod
    def load(cls, path):
        """Reads any normaliser saved with `save` (see the module-level `load`)."""
        return load(path)

    def save(self, path):
        """Writes the JSON config atomically (a killed run never leaves half a file)."""
        cli.write_json(path, self.get_config())


class IdentityNormalizer(AffineNormalizer):
    kind = "none"

    def __init__(self):
        super().__init__([1.0, 1.0], [0.0, 0.0])

    def normalize(self, x):
        return tf.convert_to_tensor(x)

    def denormalize(self, y):
        return tf.convert_to_tensor(y)


class PrespecifiedNormalizer(AffineNormalizer):
    kind = "prespecified"

    def __init__(self, a=PRESPECIFIED_A, b=PRESPECIFIED_B):
        super().__init__(a, b)


class MinMaxNormalizer(AffineNormalizer):
    """Maps [min, max] of the fitted data to [-margin, margin].

    Args:
      per_frequency: one (a, b) per frequency bin and channel instead of per channel.
      margin: GANSynth's 0.8 leaves headroom for generated values beyond the data's range.
    """

    def __init__(self, per_frequency=False, margin=0.8, a=None, b=None):
        self.per_frequency = bool(per_frequency)
        self.margin = float(margin)
        if a is None:
            a, b = np.ones(2), np.zeros(2)
            self.fitted = False
        else:
            self.fitted = True
        super().__init__(a, b)

    @property
    def kind(self):
        return "minmax_freq" if self.per_frequency else "minmax"

    def fit(self, batches, num_examples=None):
        """Fits on `[n, time, freq, 2]` arrays: one array, or an iterable of batches.

        Stops after `num_examples` examples if given. Returns self.
        """
        if isinstance(batches, (np.ndarray, tf.Tensor)):
            batches = [batches]
        reduce_axes = (0, 1) if self.per_frequency else (0, 1, 2)
        lo = hi = None
        seen = 0
        for batch in batches:
            batch = np.asarray(batch, np.float64)
            if batch.ndim != 4 or batch.shape[-1] != 2:
                raise ValueError(f"MinMaxNormalizer.fit expects [n, time, freq, 2] batches, got "
                                 f"shape {batch.shape}")
            if num_examples is not None:
                batch = batch[:max(0, num_examples - seen)]
            if not len(batch):
                break
            b_lo, b_hi = batch.min(axis=reduce_axes), batch.max(axis=reduce_axes)
            lo = b_lo if lo is None else np.minimum(lo, b_lo)
            hi = b_hi if hi is None else np.maximum(hi, b_hi)
            seen += len(batch)
            if num_examples is not None and seen >= num_examples:
                break
        if lo is None:
            raise ValueError("MinMaxNormalizer.fit got no examples")
        span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
        self.a = (self.margin * 2.0 / span).astype(np.float32)
        self.b = (self.margin * (-2.0 * lo / span - 1.0)).astype(np.float32)
        self.fitted = True
        return self

    def get_config(self):
        config = super().get_config()
        config.update(per_frequency=self.per_frequency, margin=self.margin)
        return config


def make_normalizer(name, margin=0.8):
    """A new normaliser by name; "minmax*" ones still need `fit`."""
    if name == "prespecified":
        return PrespecifiedNormalizer()
    if name == "none":
        return IdentityNormalizer()
    if name in ("minmax", "minmax_freq"):
        return MinMaxNormalizer(per_frequency=name == "minmax_freq", margin=margin)
    raise ValueError(f"unknown normaliser {name!r}; choose one of {NORMALIZERS}")


def from_config(config):
    kind = config["kind"]
    if kind == "none":
        return IdentityNormalizer()
    if kind == "prespecified":
        return PrespecifiedNormalizer(config["a"], config["b"])
    if kind in ("minmax", "minmax_freq"):
        return MinMaxNormalizer(config.get("per_frequency", kind == "minmax_freq"),
                                config.get("margin", 0.8), config["a"], config["b"])
    raise ValueError(f"unknown normaliser kind {kind!r} in saved config")


def load(path):
    """Reads a normaliser saved with `.save(path)`."""
    try:
        with open(path) as f:
            return from_config(json.load(f))
    except FileNotFoundError:
        raise FileNotFoundError(f"no normaliser at {path}; it is written at the start of "
                                f"training into the train_dir") from None
