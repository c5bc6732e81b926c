"""Samplers: a trained generator as (genre condition, latent) -> audio, and the latents.

:class:`Sampler` is the one interface generation, evaluation, the demo and the long-form
pieces use, whatever the generator was loaded from: a training run's EMA generator
(:class:`TrainDirSampler`) or a SavedModel from :mod:`gansynth_tf.export`
(:class:`ExportSampler`, also what a shipped model is); :func:`load_sampler` picks one from
the command-line sources. :func:`latents`, :func:`slerp` and :func:`genre_walk` make the
inputs. Every name also imports from :mod:`gansynth_tf.generate`.
"""

import abc
import os

import numpy as np
import tensorflow as tf

from gansynth_tf import models, rundir

# ----------------------------------------------------------------------------- samplers


class Sampler(abc.ABC):
    """A generator that turns (condition, z) into audio, whatever it was loaded from.

    Attributes:
      genres: names in id order; sample_rate, audio_length, latent_dim: ints; phase: str.
      truncation: every latent is multiplied by this before the generator sees it (the
        "truncation trick" in z space, z' = psi * z): below 1 it trades variety within a
        genre for clips more typical of it; 1 samples the training distribution.
    """

    genres = ()
    sample_rate = audio_length = latent_dim = 0
    phase = "if"
    truncation = 1.0

    @property
    def num_genres(self):
        return len(self.genres)

    def audio(self, condition, z):
        """condition float32 [b, num_genres] (one-hot or a mix), z [b, latent] -> float32
        numpy [b, audio_length]."""
        z = np.asarray(z, np.float32) * np.float32(self.truncation)
        return self._audio(np.asarray(condition, np.float32), z)

    @abc.abstractmethod
    def _audio(self, condition, z):
        """`audio` after truncation."""

    def genre_ids(self, names, flag="--genre"):
        """Names -> int ids; an unknown name raises ValueError listing the known genres."""
        ids = []
        for name in names:
            if name not in self.genres:
                raise ValueError(f"unknown genre {name!r} ({flag}); this model knows: "
                                 f"{', '.join(repr(g) for g in self.genres)}")
            ids.append(self.genres.index(name))
        return ids


class TrainDirSampler(Sampler):
    """The EMA generator of a train_dir (see rundir.TrainedGenerator)."""

    def __init__(self, train_dir, phase="if", checkpoint=None, griffin_lim_iterations=32,
                 mel_inversion=None):
        self.trained = rundir.TrainedGenerator(train_dir, checkpoint)
        if mel_inversion:
            self.trained.representation = self.trained.representation.with_mel_inversion(
                mel_inversion)
        rep = self.trained.representation
        self.genres = list(self.trained.genres)
        self.sample_rate, self.audio_length = rep.sample_rate, rep.audio_length
        self.latent_dim = self.trained.latent_dim
        self.phase = phase
        # One trace for every batch size: the inversion graph is slow to retrace.
        self._fn = tf.function(
            lambda c, z: self.trained.waves(c, z, phase, griffin_lim_iterations),
            input_signature=[tf.TensorSpec([None, self.num_genres], tf.float32),
                             tf.TensorSpec([None, self.latent_dim], tf.float32)])

    def _audio(self, condition, z):
        return self._fn(tf.constant(condition, tf.float32), tf.constant(z, tf.float32)).numpy()


class ExportSampler(Sampler):
    """A SavedModel written by gansynth_tf.export (its phase is fixed at export time)."""

    def __init__(self, export_dir):
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise FileNotFoundError(
                f"--export_dir={export_dir} holds no saved_model.pb: export a run first "
                f"(python -m gansynth_tf.export --train_dir=RUN --export_dir={export_dir})")
        self.model = tf.saved_model.load(export_dir)
        meta = {k: v.numpy() for k, v in self.model.signatures["metadata"]().items()}
        self.genres = [g.decode("utf-8") for g in meta["genres"]]
        self.sample_rate = int(meta["sample_rate"])
        self.audio_length = int(meta["audio_length"])
        self.latent_dim = int(meta["latent_dim"])
        self.phase = meta["phase"].decode("utf-8")
        self._fn = self.model.signatures["generate_conditioned"]

    def _audio(self, condition, z):
        out = self._fn(condition=tf.constant(condition, tf.float32),
                       z=tf.constant(z, tf.float32))
        # The raw output: this command normalises once per file (a piece, not each clip).
        # Exports made before audio_raw existed return the raw output as `audio`.
        return out.get("audio_raw", out["audio"]).numpy()


def load_sampler(train_dir=None, export_dir=None, phase=None, checkpoint=None,
                 griffin_lim_iterations=32, mel_inversion=None, truncation=1.0, model=None):
    """A Sampler from exactly one of train_dir / export_dir / model (a shipped model's name).

    phase None means the model's own: "if" for a train_dir, the export's phase for an
    export; asking an export for another phase is an error (it is baked into the graph).
    mel_inversion None means the run's (representation.json); an export's is baked in.
    truncation scales every latent (see Sampler).
    """
    if not truncation >= 0:
        raise ValueError(f"--truncation must be >= 0, got {truncation}")
    if sum(map(bool, (train_dir, export_dir, model))) != 1:
        shipped = ", ".join(models.available()) or "none"
        raise ValueError(f"give exactly one of --train_dir (a training run), --export_dir "
                         f"(a SavedModel from gansynth_tf.export) or --model (a shipped "
                         f"model: {shipped})")
    if model:
        export_dir = models.resolve(model)
    if train_dir:
        sampler = TrainDirSampler(train_dir, phase or "if", checkpoint, griffin_lim_iterations,
                                  mel_inversion)
    else:
        if mel_inversion:
            raise ValueError(f"--mel_inversion applies to --train_dir runs; {export_dir} has "
                             f"its inverse baked in: re-export the run to change it")
        sampler = ExportSampler(export_dir)
        if phase and phase != sampler.phase:
            raise ValueError(f"--phase={phase} but {export_dir} was exported with "
                             f"phase={sampler.phase}: re-export with --phase={phase} or "
                             f"generate from the run with --train_dir")
    sampler.truncation = float(truncation)
    return sampler


# ----------------------------------------------------------------------------- latents


def latents(seed, num, latent_dim):
    """float32 [num, latent_dim] standard normal, row i fixed by (seed, i) for any num >= i."""
    return np.random.default_rng(seed).standard_normal([num, latent_dim]).astype(np.float32)


def slerp(a, b, t):
    """Spherical interpolation between latents a and b [latent] at fractions t [n].

    Returns [n, latent]: t=0 gives a, t=1 gives b; with |a| == |b| every point keeps that
    norm (a Gaussian latent's typical shell), which linear interpolation would cut through.
    Nearly (anti)parallel vectors fall back to linear interpolation.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1.0 - t) * a + t * b).astype(np.float32)
    out = (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def genre_walk(num_genres, a, b, steps):
    """Conditions [steps, num_genres]: (1 - t) one_hot(a) + t one_hot(b), t in [0, 1]."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    eye = np.eye(num_genres, dtype=np.float64)
    return ((1.0 - t) * eye[a] + t * eye[b]).astype(np.float32)
