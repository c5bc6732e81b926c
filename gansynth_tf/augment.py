"""Differentiable augmentation of the critic's inputs (DiffAugment, Zhao et al. 2020).

With few hours of real music, a critic memorises its training clips and its gradients stop
guiding the generator. DiffAugment applies the same random, differentiable transforms to
the real and the generated spectrograms that the critic sees (in both networks' steps), so
the generator learns the un-augmented distribution while the critic cannot memorise.

Each augmentation maps normalised spectrograms ``x [N, T, F, C]`` (channel 0 the
log-magnitude, channel 1 the IF) and per-sample uniform draws ``u [N, draws]`` in [0, 1)
to an ``x``-shaped tensor; every one is differentiable in ``x``. Picked once, by
name, as an :class:`Augment` (``--augment=time_shift,cutout``).
"""

import tensorflow as tf

# Largest circular time shift, as a fraction of the frames (DiffAugment's translation: 1/8).
SHIFT_FRACTION = 0.125
# Side of the cut-out rectangle, as a fraction of each axis (DiffAugment's cutout: 1/2).
CUTOUT_FRACTION = 0.5
# Largest level change of the log-magnitude channel, in normalised units (+-0.2 of the
# [-1, 1] range that the min/max normaliser maps the training data to).
GAIN_RANGE = 0.2


def time_shift(x, u):
    """Rolls each clip along time by an integer in [-T/8, T/8] (u [N, 1]).

    Circular, so no fill value is needed (a constant would be a level the data lacks).
    """
    t = tf.shape(x)[1]
    most = tf.cast(tf.floor(tf.cast(t, tf.float32) * SHIFT_FRACTION), tf.int32)
    shift = tf.cast(tf.floor(u[:, 0] * tf.cast(2 * most + 1, u.dtype)), tf.int32) - most
    index = tf.math.floormod(tf.range(t)[None, :] - shift[:, None], t)
    return tf.gather(x, index, axis=1, batch_dims=1)


def cutout(x, u):
    """Zeroes one rectangle of half the frames by half the bins per clip (u [N, 2]: its
    centre), clipped at the edges; zero is the middle of the normalised range."""
    t, f = tf.shape(x)[1], tf.shape(x)[2]

    def inside(size, draw):
        half = tf.cast(tf.floor(tf.cast(size, tf.float32) * CUTOUT_FRACTION / 2), tf.int32)
        centre = tf.cast(tf.floor(draw * tf.cast(size, draw.dtype)), tf.int32)
        pos = tf.range(size)[None, :]
        return tf.logical_and(pos >= centre[:, None] - half, pos < centre[:, None] + half)

    cut = tf.logical_and(inside(t, u[:, 0])[:, :, None], inside(f, u[:, 1])[:, None, :])
    return x * tf.cast(tf.logical_not(cut), x.dtype)[..., None]


def gain(x, u):
    """Adds one level offset in [-GAIN_RANGE, GAIN_RANGE) to each clip's log-magnitude
    (u [N, 1]); the IF channel is left alone (a level change does not move the phase)."""
    offset = tf.cast((2.0 * u[:, 0] - 1.0) * GAIN_RANGE, x.dtype)
    channel0 = tf.one_hot(0, tf.shape(x)[-1], dtype=x.dtype)
    return x + offset[:, None, None, None] * channel0


# name: (function, uniform draws per sample it takes)
AUGMENTATIONS = {
    "time_shift": (time_shift, 1),
    "cutout": (cutout, 2),
    "gain": (gain, 1),
}


class Augment:
    """The augmentations named in ``names``, applied in order.

    ``draws`` is how many uniforms per sample one call takes; ``__call__(x, u)`` with
    ``u [N, draws]``. With no names it is the identity (and ``bool()`` is False).
    """

    def __init__(self, names=()):
        names = tuple(names)
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"--augment: unknown {unknown}; known: {sorted(AUGMENTATIONS)}")
        if len(set(names)) != len(names):
            raise ValueError(f"--augment names an augmentation twice: {list(names)}")
        self.names = names
        self.draws = sum(AUGMENTATIONS[n][1] for n in names)

    def __bool__(self):
        return bool(self.names)

    def __call__(self, x, u):
        start = 0
        for name in self.names:
            fn, k = AUGMENTATIONS[name]
            x = fn(x, u[:, start:start + k])
            start += k
        return x

