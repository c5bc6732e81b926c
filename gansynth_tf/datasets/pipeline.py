"""Entry points: build a source from a DataConfig, batch it into features, sample it."""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from gansynth_tf import split as split_lib
from gansynth_tf.datasets.config import PREFETCH_BATCHES, DataError
from gansynth_tf.datasets.corpora import NSynthSource, SyntheticSource
from gansynth_tf.datasets.layouts import (
    fma_entries,
    folder_entries,
    manifest_entries,
    require_dir,
)
from gansynth_tf.datasets.sources import FileSource

# ----------------------------------------------------------------------------- entry points


def build_source(cfg, split="all", track_split=None):
    """Probes the configured data and returns a Source (see module docstring).

    split: 'train' (what training reads: held-out tracks left out), 'heldout' (only
    them; NSynth: its valid/test records; synthetic: clips of another seed) or 'all'.
    track_split: a saved :class:`~gansynth_tf.split.TrackSplit` for file sources
    (default: chosen from the files with cfg.holdout_fraction).
    """
    cfg.validate()
    if split not in split_lib.SPLITS:
        raise ValueError(f"split={split!r}: expected one of {split_lib.SPLITS}")
    if cfg.dataset == "synthetic":
        return SyntheticSource(cfg, split)
    if cfg.dataset == "nsynth":
        return NSynthSource(cfg, split)
    files = dict(split=split, track_split=track_split)
    if cfg.dataset == "folder":
        entries, root = folder_entries(cfg.data_dir)
        return FileSource(cfg, entries, "folder", where=f" ({root})", root=root, **files)
    if cfg.fma_metadata:
        entries, audio_dir = fma_entries(cfg.data_dir, cfg.fma_metadata)
        return FileSource(cfg, entries, "fma", where=f" ({audio_dir})", root=audio_dir,
                          **files)
    require_dir(cfg.data_dir, "--dataset=manifest")
    entries, skipped, csv_path = manifest_entries(cfg.data_dir)
    for path, reason in skipped:
        logging.warning("Skipping %s: %s", path, reason)
    if not entries:
        raise DataError(f"--dataset=manifest: no usable audio rows in {csv_path} "
                        f"({len(skipped)} skipped).")
    return FileSource(cfg, entries, "manifest", skipped=skipped, where=f" ({csv_path})",
                      root=os.path.dirname(os.path.abspath(csv_path)), **files)


def batch_features(to_features, waves):
    """Batched waves ``[batch, audio_length]`` -> float32 features ``[batch, T, F, C]``.

    The one conversion of the training data, wherever it runs: in the tf.data map of
    :func:`make_train_dataset` (on the host) or inside the train step (on the device,
    ``--features_on_device``; see ``GANSynthGAN.compile(preprocess_fn=...)``).
    """
    return tf.cast(to_features(waves[:, :, None]), tf.float32)


def make_train_dataset(source, batch_size, to_features, training=True, repeat=True):
    """Batched (features float32 [batch, T, F, 2], one_hot float32 [batch, num_genres]).

    to_features maps waves [batch, audio_length, 1] to normalised spectrograms (applied
    by :func:`batch_features`). None: the batches hold the waves, float32
    [batch, audio_length], for a model that computes the features itself (on the device).
    Batches drop the remainder so shapes are static.
    """
    num_genres = source.num_genres
    keeps_order = source.keeps_order(training)
    ds = source.waves_dataset(training)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=keeps_order)

    def features(waves, labels):
        x = (tf.cast(waves, tf.float32) if to_features is None
             else batch_features(to_features, waves))
        return x, tf.one_hot(labels, num_genres, dtype=tf.float32)

    ds = ds.map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=keeps_order)
    return ds.prefetch(PREFETCH_BATCHES)


def sample_waves(source, num_clips, training=True):
    """Up to num_clips waves as numpy float32 [n, audio_length, 1] (for fitting stats).

    Uses the shuffled training stream so a prefix covers all genres; deterministic
    for the config's seed.
    """
    waves = [w for w, _ in source.waves_dataset(training).take(num_clips)
             .as_numpy_iterator()]
    if not waves:
        raise DataError(f"{source.name}: no clips could be read to compute statistics.")
    return np.stack(waves)[:, :, None]


def fit_normalizer(source, to_specgrams, normalizer, num_clips=512, batch_size=32):
    """Fits `normalizer` (.fit(numpy specgrams)) on num_clips clips; returns it.

    to_specgrams maps waves [b, audio_length, 1] to un-normalised specgrams [b, T, F, 2].
    Save the fitted normaliser with the run (normalizer.save(path)).
    """
    waves = sample_waves(source, num_clips)
    specs = [np.asarray(to_specgrams(tf.constant(waves[i:i + batch_size])))
             for i in range(0, len(waves), batch_size)]
    normalizer.fit(np.concatenate(specs))
    return normalizer
