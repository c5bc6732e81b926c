"""Keras callbacks of a training run: checkpoints and TensorBoard (:class:`RunCallback`) and
the console's progress line (:class:`ProgressLog`)."""

import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from gansynth_tf import heap, rundir, summaries


def resident_memory_mb(status="/proc/self/status"):
    """{'rss_mb': now, 'peak_rss_mb': the peak so far} of this process, in MiB (Linux's
    VmRSS / VmHWM); empty where /proc is not there."""
    if not os.path.exists(status):
        return {}
    names = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}
    out = {}
    with open(status, encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in names:
                out[names[key]] = int(value.split()[0]) / 1024.0
    return out


class RunCallback(keras.callbacks.Callback):
    """Per-step bookkeeping: stage/alpha in the logs, TensorBoard, checkpoints, stop.

    Scalars every `summary_every` steps; every `audio_every` steps a spectrogram image and
    an audio track of at least `audio_seconds` (summaries.py) per genre, from latents fixed
    for the run so that steps compare; the image draws the first `audio_samples` clips of
    the track. A checkpoint every `checkpoint_every` steps and at each stage change; stops
    at `target_steps`.
    """

    def __init__(self, manager, writer, representation, genres, target_steps,
                 summary_every, audio_every, checkpoint_every, audio_samples, seed,
                 audio_seconds=0.0):
        super().__init__()
        self.manager, self.writer = manager, writer
        self.representation, self.genres = representation, genres
        self.target_steps = target_steps
        self.summary_every, self.audio_every = summary_every, audio_every
        self.checkpoint_every = checkpoint_every
        self.audio_samples = audio_samples
        self.audio_clips = summaries.track_clips(representation, audio_seconds, audio_samples)
        self._audio_z = None  # [genres * clips, latent], drawn once the latent size is known
        self._seed = seed
        self._last_time = None
        self._last_images = None
        self._last_stage = None

    def _step(self):
        return int(self.model.step_counter.numpy())

    def on_train_begin(self, logs=None):
        self._last_time = time.time()
        self._last_images = int(self.model.images_seen.numpy())
        self._last_stage = self.model.stage

    def on_train_batch_end(self, batch, logs=None):
        model = self.model
        step = self._step()
        if logs is not None:
            logs["stage"] = float(model.stage)
            logs["alpha"] = float(model.alpha.numpy())
        if step % self.summary_every == 0:
            heap.release_free_memory()  # before the RSS scalars, which then show the live size
            self._scalars(step, logs or {})
        if self.audio_every and step % self.audio_every == 0:
            self.write_audio(step)
        if step % self.checkpoint_every == 0 or model.stage != self._last_stage:
            self.manager.save(checkpoint_number=step)
            self._last_stage = model.stage
        if step >= self.target_steps:
            model.stop_training = True

    def _scalars(self, step, logs):
        now, images = time.time(), int(self.model.images_seen.numpy())
        rate = (images - self._last_images) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_images = now, images
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                if np.ndim(value) == 0:
                    tf.summary.scalar(f"train/{name}", float(value))
            tf.summary.scalar("progress/stage", float(self.model.stage))
            tf.summary.scalar("progress/alpha", float(self.model.alpha.numpy()))
            tf.summary.scalar("progress/images_seen", float(images))
            tf.summary.scalar("progress/images_per_second", rate)
            for name, value in resident_memory_mb().items():
                tf.summary.scalar(f"progress/{name}", value)

    def audio_latents(self, latent_dim):
        """float32 [genres * clips, latent_dim]: genre g's clip k in row g * clips + k, the
        same at every summary of the run (and of a resume with the same --seed)."""
        if self._audio_z is None or self._audio_z.shape[1] != latent_dim:
            rng = np.random.RandomState(self._seed + 12345)
            rows = len(self.genres) * self.audio_clips
            self._audio_z = rng.randn(rows, latent_dim).astype(np.float32)
        return self._audio_z

    def write_audio(self, step):
        """Spectrogram image and audio track per genre, from the EMA generator."""
        model = self.model
        z = self.audio_latents(model.latent_dim)
        ids = np.repeat(np.arange(len(self.genres)), self.audio_clips).astype(np.int32)
        onehot = tf.one_hot(ids, len(self.genres))
        batch = summaries.INVERSE_BATCH
        feats = tf.concat([model.ema_generator([tf.constant(z[i:i + batch]), onehot[i:i + batch]])
                           for i in range(0, len(z), batch)], axis=0)
        feats = rundir.upsample_to(feats, model.config.final_resolution)
        feats = tf.reshape(feats, [len(self.genres), self.audio_clips, *feats.shape[1:]])
        summaries.write_genre_summaries(self.writer, step, self.representation, self.genres,
                                        feats, image_clips=self.audio_samples)


def format_duration(seconds):
    """'42s', '15m20s', '3h05m': short enough for a progress line."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def stage_name(config, stage):
    """'stage 2/4 (8x32)': 1-based, as a person counts."""
    shape = "x".join(map(str, config.resolutions[stage]))
    return f"stage {stage + 1}/{config.num_stages} ({shape})"


class ProgressLog(keras.callbacks.Callback):
    """One progress report over the whole run, counted from the model's own images_seen.

    Keras' bar counts the steps of one fit() call against its epochs: with --max_steps it
    jumped to the end, after a resume it started again at 1. This one reads images_seen
    (restored with the checkpoint) against the run's target, so a resume continues the
    count. Images/s and the ETA come from the current stage (later stages are slower), from
    its first step's end on (that step traces the new train function).

    A line every `every_steps` steps and at the last one (verbose 1; verbose 2 adds the
    losses, 0 prints none); each stage change is logged. Lines rather than a bar redrawn
    in place: TensorFlow's own log lines (checkpoint saves) would land inside such a bar.

    With a time budget (`budget`: a budget.BudgetStop) the run ends at whichever comes
    first, the images or the deadline: the bar counts toward the one the current stage's
    rate says comes first (before a rate is known, the one with the larger share done).
    """

    BAR_WIDTH = 20

    def __init__(self, schedule, config, batch_size, target_steps, every_steps, verbose,
                 stream=None, budget=None, clock=time.time):
        super().__init__()
        self.schedule, self.config = schedule, config
        self.budget, self.clock = budget, clock
        self.target_images = target_steps * batch_size
        self.target_steps, self.every_steps, self.verbose = target_steps, every_steps, verbose
        self.stream = stream or sys.stdout
        self._stage = None
        self._window = None  # (time, images) at the end of the current stage's first step
        self._rate = None
        self._last = self._printed = None  # (step, images, logs) of the last step; its step

    def on_train_begin(self, logs=None):
        self._stage = self.model.stage

    def on_train_end(self, logs=None):
        # A run stopped between reports (the time budget, --max_steps) still ends on a line.
        if self.verbose > 0 and self._last is not None and self._last[0] != self._printed:
            self._write(*self._last)

    def _write(self, step, images, logs):
        self.stream.write(self.line(images, logs) + "\n")
        self.stream.flush()
        self._printed = step

    def on_train_batch_end(self, batch, logs=None):
        model = self.model
        step, images = int(model.step_counter.numpy()), int(model.images_seen.numpy())
        now = self.clock()
        if model.stage != self._stage:
            self._stage, self._window = model.stage, None
            logging.info("%s begins at %s images%s",
                         stage_name(self.config, model.stage).capitalize(),
                         f"{self._stage_start(model.stage):,}",
                         f", fading in over {self.schedule.transition_images:,} images"
                         if model.stage > 0 else "")
        if self._window is None:
            self._window = (now, images)
        elif now > self._window[0]:
            self._rate = (images - self._window[1]) / (now - self._window[0])
        self._last = (step, images, logs)
        if self.verbose > 0 and (step >= self.target_steps or step % self.every_steps == 0):
            self._write(step, images, logs)

    def _stage_start(self, stage):
        return next(p.start for p in self.schedule.phases() if p.stage == stage)

    def line(self, images, logs=None):
        """'[#####...] 1,600/48,000 images (3%)  stage 2/4 (8x32) alpha 0.42  52.0 images/s
        ETA 15m20s', with the losses at verbose 2; when a time budget is nearer its end
        than the images are: '[...] 9,600 images (40% of the time budget)  ...  time budget
        left 51m00s'."""
        target = max(self.target_images, 1)
        done = min(images / target, 1.0)
        eta = max(self.target_images - images, 0) / self._rate if self._rate else None
        left = None
        if self.budget is not None and self.budget.total_seconds:
            left = max(0.0, self.budget.deadline - self.clock())
            by_time = min(1.0 - left / self.budget.total_seconds, 1.0)
        # Which ends the run first: by the current rate once it is known, else by the shares.
        time_ends_it = left is not None and (left < eta if eta is not None else by_time > done)
        if time_ends_it:
            count = f"{images:,} images ({100 * by_time:.0f}% of the time budget)"
            done = by_time
        else:
            count = f"{images:,}/{self.target_images:,} images ({100 * done:.0f}%)"
        filled = int(done * self.BAR_WIDTH)
        parts = [f"[{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] {count}",
                 f"{stage_name(self.config, self.model.stage)} alpha "
                 f"{float(self.model.alpha.numpy()):.2f}"]
        if self._rate:
            parts.append(f"{self._rate:.1f} images/s")
        if time_ends_it:
            parts.append(f"time budget left {format_duration(left)}")
        else:
            parts.append("ETA --" if eta is None else f"ETA {format_duration(eta)}")
        if self.verbose >= 2 and logs:
            parts.append(" ".join(f"{name} {float(logs[name]):.4g}"
                                  for name in ("d_loss", "g_loss") if name in logs))
        return "  ".join(parts)
