"""GAN losses: the configuration (:class:`LossConfig`), the adversarial losses picked
from a registry (:data:`ADVERSARIAL_LOSSES`), and the per-sample loss maths.

Every function returns per-sample values (``[N]``); the model sums them over its replica
and divides by the global batch (see :mod:`gansynth_tf.gan`). The formulas and the
reasons for each term are in ``docs/design.md``.
"""
import dataclasses
import math
from typing import Callable, Tuple

import tensorflow as tf

from gansynth_tf.augment import Augment

MS_EPSILON = 1e-5


# ----------------------------------------------------------------------------- loss maths


def gradient_penalty(critic_fn, real, fake, eps, loss_scale=1.0):
    """Per-sample two-sided WGAN-GP penalty ``(||grad_x critic(x_hat)||_2 - 1)^2``.

    Args:
      critic_fn: maps ``[N, ...]`` inputs to scores ``[N]`` or ``[N, 1]`` (float32).
      real, fake: ``[N, ...]`` float tensors.
      eps: ``[N]`` interpolation weights in [0, 1]; ``x_hat = eps * real + (1 - eps) * fake``.
      loss_scale: multiplier applied to the inner scores before differentiating and removed
        afterwards (keeps float16 input gradients from underflowing).

    Returns:
      ``[N]`` float32 penalties.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    eps = tf.reshape(tf.cast(eps, tf.float32), [-1] + [1] * (len(real.shape) - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = tf.cast(critic_fn(x_hat), tf.float32)
        total = tf.reduce_sum(scores) * loss_scale
    grads = tape.gradient(total, x_hat) / loss_scale
    # The tiny constant keeps the sqrt differentiable when a gradient is exactly zero.
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=list(range(1, len(real.shape)))) + 1e-12)
    return tf.square(norms - 1.0)


def r1_penalty(critic_fn, real, loss_scale=1.0):
    """Per-sample R1 penalty ``||grad_x critic(real)||_2^2`` (Mescheder et al. 2018).

    Args:
      critic_fn: maps ``[N, ...]`` inputs to scores ``[N]`` or ``[N, 1]``.
      real: ``[N, ...]`` real samples.
      loss_scale: as in :func:`gradient_penalty`.

    Returns:
      ``[N]`` float32 squared gradient norms.
    """
    real = tf.cast(real, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(tf.cast(critic_fn(real), tf.float32)) * loss_scale
    grads = tape.gradient(total, real) / loss_scale
    return tf.reduce_sum(tf.square(grads), axis=list(range(1, len(real.shape))))


def penalty_count(batch, fraction):
    """Samples of a ``batch`` the penalty runs on: ``ceil(batch * fraction)``, at least 1.

    ``batch`` is a Python int (static shape: the result is an int, so slices stay static)
    or an int32 scalar tensor (the result is one too).
    """
    if isinstance(batch, int):
        return max(1, min(batch, int(math.ceil(batch * float(fraction) - 1e-9))))
    wanted = tf.cast(tf.math.ceil(tf.cast(batch, tf.float32) * float(fraction) - 1e-6), tf.int32)
    return tf.clip_by_value(wanted, 1, batch)


def mode_seeking_ratio(fake1, fake2, z1, z2):
    """Per-pair MSGAN diversity ``mean|G(z1,c) - G(z2,c)| / mean|z1 - z2|``.

    Args:
      fake1, fake2: ``[P, ...]`` outputs for the same genres and different latents.
      z1, z2: ``[P, latent_dim]`` the latents.

    Returns:
      ``[P]`` float32 ratios. (MSGAN takes batch means; a ratio per pair keeps the term a
      per-sample average - exact under data parallelism - and penalises each collapsed
      pair rather than only the batch as a whole.)
    """

    def per_pair_mean_abs(a, b):
        d = tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))
        return tf.reduce_mean(tf.reshape(d, [tf.shape(d)[0], -1]), axis=1)

    return per_pair_mean_abs(fake1, fake2) / per_pair_mean_abs(z1, z2)


def dynamics(features, bands=4):
    """Temporal contrast and onset strength per clip: ``[N, T, F, C]`` -> ``[N, 2 * bands]``.

    Channel 0 (log-magnitude) is averaged within ``bands`` equal frequency bands (``F`` must
    divide), giving each band's envelope over the ``T`` frames. Columns ``[:bands]`` are
    each envelope's standard deviation over time (slow contrast: kicks against silences,
    attacks against decays); columns ``[bands:]`` its mean absolute frame-to-frame change
    (band-wise spectral flux: onsets that strike a whole band at once). Incoherent
    pixel noise averages out within a band and scores low on both.
    """
    x = tf.cast(features[..., 0], tf.float32)
    t, f = x.shape[1], x.shape[2]
    if f % bands:
        raise ValueError(f"dynamics: {f} frequency bins do not split into {bands} bands")
    envelope = tf.reduce_mean(tf.reshape(x, [-1, t, bands, f // bands]), axis=-1)
    centred = envelope - tf.reduce_mean(envelope, axis=1, keepdims=True)
    # sqrt(var + tiny): a steady envelope (var 0) must get a zero gradient, not NaN.
    contrast = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=1) + 1e-12)
    flux = tf.reduce_mean(tf.abs(envelope[:, 1:] - envelope[:, :-1]), axis=1)
    return tf.concat([contrast, flux], axis=-1)


def dynamics_gap(real, genre, fake, fake_genre, bands=4):
    """Squared gap between fake and real per-genre mean :func:`dynamics`, a scalar.

    Averaged over the bands and over the genres present among both the reals and the
    fakes of this batch. The real side is a constant (no gradient reaches the data). With a
    batch's few clips per genre the real means are noisy, but the gradient of a squared gap
    is linear in them, so its expectation is that of the gap to the true genre mean.
    """

    def per_genre(values, onehot):
        onehot = tf.cast(onehot, tf.float32)
        counts = tf.reduce_sum(onehot, axis=0)
        means = tf.matmul(onehot, values, transpose_a=True) / tf.maximum(counts, 1.0)[:, None]
        return means, counts

    real_mean, real_count = per_genre(tf.stop_gradient(dynamics(real, bands)), genre)
    fake_mean, fake_count = per_genre(dynamics(fake, bands), fake_genre)
    present = tf.cast((real_count > 0) & (fake_count > 0), tf.float32)
    gap = tf.reduce_mean(tf.square(fake_mean - real_mean), axis=1)
    return tf.reduce_sum(present * gap) / tf.maximum(tf.reduce_sum(present), 1.0)


def mode_seeking_term(fake1, fake2, z1, z2, epsilon=MS_EPSILON):
    """Per-pair mode-seeking loss ``1 / (ratio + epsilon)``, shape ``[P]`` (see ratio)."""
    return 1.0 / (mode_seeking_ratio(fake1, fake2, z1, z2) + epsilon)


def genre_cross_entropy(genre_one_hot, logits):
    """Per-sample softmax cross-entropy ``[N]`` of genre logits ``[N, G]``."""
    return tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.cast(genre_one_hot, tf.float32), logits=logits
    )


def genre_accuracy(genre_one_hot, logits):
    """Per-sample 0/1 correctness ``[N]`` of the arg-max genre."""
    return tf.cast(
        tf.equal(tf.argmax(logits, axis=-1), tf.argmax(genre_one_hot, axis=-1)), tf.float32
    )


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Every setting of the training objective; saved with a run as ``loss.json``.

    kind: a key of :data:`ADVERSARIAL_LOSSES` (``wgan_gp``: GANSynth's; ``nonsaturating``:
      StyleGAN's logistic loss with R1). gp_weight / drift_weight: WGAN-GP's penalty and
      ``E[D(real)^2]`` weights; r1_gamma: R1's gamma (penalty ``gamma / 2 * ||grad||^2``).
    ac_weight: genre cross-entropy (AC-GAN) on both networks. mode_seeking_weight: MSGAN
      term (0 = off). penalty_fraction in (0, 1]: share of each batch the gradient penalty
      runs on, weighted up. consistency_weight / dynamics_weight: the generator's
      phase-consistency and temporal-dynamics terms (0 = off). augment: names of
      :data:`~gansynth_tf.augment.AUGMENTATIONS` applied to every critic input, real and
      generated (DiffAugment; empty = none).
    """
    kind: str = "wgan_gp"
    gp_weight: float = 10.0
    drift_weight: float = 0.001
    r1_gamma: float = 1.0
    ac_weight: float = 10.0
    mode_seeking_weight: float = 1.0
    penalty_fraction: float = 1.0
    consistency_weight: float = 0.0
    dynamics_weight: float = 0.0
    augment: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "augment", tuple(self.augment))  # JSON gives a list
        Augment(self.augment)  # raises on an unknown or repeated name
        if self.kind not in ADVERSARIAL_LOSSES:
            raise ValueError(f"loss must be one of {tuple(ADVERSARIAL_LOSSES)}, "
                             f"got {self.kind!r}")
        if not 0.0 < float(self.penalty_fraction) <= 1.0:
            raise ValueError(f"penalty_fraction must be in (0, 1], got {self.penalty_fraction}")
        for name in ("gp_weight", "drift_weight", "r1_gamma", "ac_weight",
                     "mode_seeking_weight", "consistency_weight", "dynamics_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def adversarial(self):
        """The :class:`AdversarialLoss` of ``kind``."""
        return ADVERSARIAL_LOSSES[self.kind]

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """From :meth:`to_dict`; also reads the older ``loss.json`` (``"loss"`` = kind)."""
        values = dict(values)
        if "loss" in values:
            values.setdefault("kind", values.pop("loss"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown loss settings {unknown}; known: {sorted(known)}")
        return cls(**values)


# ----------------------------------------------------------------------------- registry


def _wgan_critic(d_real, d_fake, config):
    """WGAN critic loss with GANSynth's drift term: ``D(fake) - D(real) + w * D(real)^2``."""
    drift = tf.square(d_real)
    return d_fake - d_real + config.drift_weight * drift, {"drift": drift}


def _wgan_gp_penalty(critic_fn, real, fake, eps, config, loss_scale):
    return gradient_penalty(critic_fn, real, fake, eps, loss_scale), config.gp_weight, "gp"


def _logistic_critic(d_real, d_fake, config):
    del config
    return tf.nn.softplus(d_fake) + tf.nn.softplus(-d_real), {}


def _r1_penalty(critic_fn, real, fake, eps, config, loss_scale):
    del fake, eps
    return r1_penalty(critic_fn, real, loss_scale), 0.5 * config.r1_gamma, "r1"


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
    """One adversarial objective, as three small functions.

    critic(d_real [N], d_fake [N], config) -> (per-sample loss [N], {tracker: [N]}).
    penalty(critic_fn, real [k, ...], fake [k, ...], eps [k], config, loss_scale)
      -> (per-sample penalty [k], its weight, its tracker name).
    generator(d_fake [N]) -> per-sample loss [N].
    trackers: the names of the terms this loss reports (others are hidden).
    """
    critic: Callable
    penalty: Callable
    generator: Callable
    trackers: Tuple[str, ...]


ADVERSARIAL_LOSSES = {
    "wgan_gp": AdversarialLoss(_wgan_critic, _wgan_gp_penalty, lambda d_fake: -d_fake,
                               ("gp", "drift")),
    "nonsaturating": AdversarialLoss(_logistic_critic, _r1_penalty,
                                     lambda d_fake: tf.nn.softplus(-d_fake), ("r1",)),
}
# Every penalty / adversarial tracker some loss reports.
ADVERSARIAL_TRACKERS = tuple(sorted({n for a in ADVERSARIAL_LOSSES.values() for n in a.trackers}))
