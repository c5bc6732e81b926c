"""Progressive-growing schedule: which stage and fade-in alpha apply after N images.

Stage 0 has only a stable phase; every later stage starts with a transition phase, in
which alpha rises linearly from 0 to 1 as the new block fades in, followed by a stable
phase at alpha = 1 (GANSynth / ProGAN: 800k images each). After the last stable phase
training continues at the final stage with alpha = 1.

Real spectrograms are brought to the current stage with :func:`blend_real`, the exact
counterpart of the generator's fade-in, so the discriminator always compares like with
like.
"""
import dataclasses
from typing import Tuple

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of the schedule: images ``[start, end)`` at ``stage``, fading or stable."""

    stage: int
    transition: bool
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class ProgressiveSchedule:
    """Stage / alpha as a function of the number of training images seen.

    Attributes:
      resolutions: ``[(time, freq), ...]`` per stage (as in ``NetworkConfig``).
      stable_images: images per stable phase.
      transition_images: images per transition (fade-in) phase.
    """

    resolutions: Tuple[Tuple[int, int], ...]
    stable_images: int = 800_000
    transition_images: int = 800_000

    def __post_init__(self):
        object.__setattr__(
            self, "resolutions", tuple(tuple(int(v) for v in r) for r in self.resolutions)
        )
        if not self.resolutions:
            raise ValueError("resolutions must not be empty")
        if self.stable_images < 1 or self.transition_images < 1:
            raise ValueError("stable_images and transition_images must be positive")

    @property
    def num_stages(self):
        return len(self.resolutions)

    @property
    def total_images(self):
        """Images until the end of the final stable phase."""
        return self.num_stages * self.stable_images + (self.num_stages - 1) * self.transition_images

    def phases(self):
        """All phases in order: stable 0, then (transition s, stable s) for s >= 1."""
        out = [Phase(0, False, 0, self.stable_images)]
        for s in range(1, self.num_stages):
            start = out[-1].end
            middle = start + self.transition_images
            out.append(Phase(s, True, start, middle))
            out.append(Phase(s, False, middle, middle + self.stable_images))
        return out

    def phase(self, images_seen):
        """The :class:`Phase` containing ``images_seen`` (the last one once past the end)."""
        if images_seen < 0:
            raise ValueError(f"images_seen must be >= 0, got {images_seen}")
        for p in self.phases():
            if images_seen < p.end:
                return p
        return self.phases()[-1]

    def stage_alpha(self, images_seen):
        """``(stage, alpha)`` after ``images_seen`` images; alpha in [0, 1]."""
        p = self.phase(images_seen)
        if not p.transition:
            return p.stage, 1.0
        return p.stage, (images_seen - p.start) / float(p.end - p.start)

    def resolution(self, images_seen):
        """(time, freq) of the stage active after ``images_seen`` images."""
        return self.resolutions[self.stage_alpha(images_seen)[0]]


def gansynth_schedule(resolutions):
    """GANSynth's schedule: 800k images per stable and per transition phase."""
    return ProgressiveSchedule(resolutions, 800_000, 800_000)


def quickstart_schedule(resolutions, stable_images=8_000, transition_images=8_000):
    """Short schedule for CPU runs (500 steps per phase at batch 16)."""
    return ProgressiveSchedule(resolutions, stable_images, transition_images)


def _resolutions_of(schedule):
    """Accept a ProgressiveSchedule, a NetworkConfig (anything with .resolutions) or a list."""
    return tuple(tuple(r) for r in getattr(schedule, "resolutions", schedule))


def _avg_pool(x, factor):
    if tuple(factor) == (1, 1):
        return x
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding="VALID")


def _nearest_up(x, factor):
    return tf.repeat(tf.repeat(x, factor[0], axis=1), factor[1], axis=2)


def blend_real(x_full, stage, alpha, schedule):
    """Bring real spectrograms to ``res[stage]``, faded like the generator output.

    Args:
      x_full: ``[N, T, F, C]`` real spectrograms; T and F must be integer multiples of
        ``res[stage]`` (the full resolution, or already the stage resolution).
      stage: active stage (Python int; it fixes the output shape).
      alpha: fade-in weight in [0, 1] (float or scalar tensor / variable; no retrace).
      schedule: a ProgressiveSchedule, a NetworkConfig or a list of (time, freq).

    Returns:
      ``[N, T_s, F_s, C]``: ``avg_pool(x)`` to ``res[stage]``; during a transition
      ``alpha * that + (1 - alpha) * upsample(avg_pool(that))``, i.e. the previous
      stage's resolution shown at the current size, as ProGAN does.
    """
    resolutions = _resolutions_of(schedule)
    t, f = resolutions[stage]
    in_t, in_f = x_full.shape[1], x_full.shape[2]
    if in_t % t or in_f % f:
        raise ValueError(
            f"input resolution {(in_t, in_f)} is not a multiple of stage {stage}'s {(t, f)}"
        )
    x = _avg_pool(x_full, (in_t // t, in_f // f))
    if stage == 0:
        return x
    pt, pf = resolutions[stage - 1]
    factor = (t // pt, f // pf)
    low = _nearest_up(_avg_pool(x, factor), factor)
    alpha = tf.cast(alpha, x.dtype)
    return (1.0 - alpha) * low + alpha * x  # exact endpoints, like FadeIn


class ProgressiveCallback(keras.callbacks.Callback):
    """Drive a :class:`~gansynth_tf.gan.GANSynthGAN` through a schedule during ``fit``.

    Before each batch it reads ``model.images_seen`` (advanced by ``train_step`` and saved
    with the weights, so resumed runs continue where they stopped) and applies
    ``schedule.stage_alpha``: alpha changes are a variable assignment; a stage change calls
    ``model.set_stage``, which re-creates the train function (new shapes). Feed real data
    at the FINAL resolution: ``train_step`` pools it down to the active stage.
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def _apply(self):
        stage, alpha = self.schedule.stage_alpha(int(self.model.images_seen.numpy()))
        if stage != self.model.stage:
            self.model.set_stage(stage, alpha)
        else:
            self.model.set_alpha(alpha)

    def on_train_begin(self, logs=None):
        self._apply()

    def on_train_batch_begin(self, batch, logs=None):
        self._apply()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["stage"] = float(self.model.stage)
            logs["alpha"] = float(self.model.alpha.numpy())
            logs["images_seen"] = float(self.model.images_seen.numpy())
