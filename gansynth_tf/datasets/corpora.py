"""The fixed corpora: the embedded synthetic genres and NSynth TFRecords."""


import collections
import dataclasses

import numpy as np
import tensorflow as tf
from absl import logging

from gansynth_tf import audio_io, spectral, synthetic
from gansynth_tf.datasets.cache import cache_location
from gansynth_tf.datasets.config import (
    NSYNTH_LENGTH,
    NSYNTH_PITCH_RANGE,
    NSYNTH_RATE,
    SYNTHETIC_HELDOUT_SEED,
    DataError,
)
from gansynth_tf.datasets.layouts import nsynth_files
from gansynth_tf.datasets.sources import Source, _repeats


class SyntheticSource(Source):
    """The embedded numpy genres; clip i of genre g is synthesised on the fly."""

    name = "synthetic"

    def __init__(self, cfg, split="all"):
        # Held-out clips are synthesised from another seed: disjoint from the training ones.
        if split == "heldout":
            cfg = dataclasses.replace(cfg, seed=cfg.seed + SYNTHETIC_HELDOUT_SEED)
        self.split = split
        n = int(cfg.synthetic_clips_per_genre)
        if n < 1:
            raise DataError(f"--synthetic_clips_per_genre={n}: must be >= 1.")
        counts = {g: n for g in synthetic.GENRES}
        super().__init__(cfg, synthetic.GENRES, counts, counts)
        bytes_needed = 4 * cfg.audio_length * n * len(synthetic.GENRES)
        self.cache_mode = cache_location(
            cfg, "synthetic", [str(v) for v in (cfg.seed, n, cfg.sample_rate, cfg.audio_length)],
            bytes_needed)
        self._cached = None
        logging.info("%s", self.summary())

    def _index(self):
        n, g = self.cfg.synthetic_clips_per_genre, len(self.genres)
        # Clip-major order so any prefix holds every genre.
        return tf.data.Dataset.from_tensor_slices(
            (np.tile(np.arange(g, dtype=np.int32), n),
             np.repeat(np.arange(n, dtype=np.int32), g)))

    def _synth(self, index, deterministic):
        cfg = self.cfg

        def make(g, i):
            return synthetic.synthesize_clip(int(g), int(i), cfg.seed, cfg.sample_rate,
                                             cfg.audio_length)

        def synth(g, i):
            wave = tf.numpy_function(make, [g, i], tf.float32, stateful=False)
            return tf.ensure_shape(wave, [cfg.audio_length]), g

        return index.map(synth, num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=deterministic)

    def _in_memory(self):
        """All clips synthesised once in Python, clip-major like `_index`.

        Keeps tf.numpy_function out of the in-memory pipeline: a TF 2.17 iterator deleted
        while a numpy_function is in flight can deadlock on the GIL (seen here at the end of
        a partially read dataset), and the clips are small enough to hold anyway.
        """
        cfg = self.cfg
        n, g = cfg.synthetic_clips_per_genre, len(self.genres)
        waves = np.empty((n * g, cfg.audio_length), np.float32)
        labels = np.tile(np.arange(g, dtype=np.int32), n)
        for k in range(n * g):
            waves[k] = synthetic.synthesize_clip(int(labels[k]), k // g, cfg.seed,
                                                 cfg.sample_rate, cfg.audio_length)
        return tf.data.Dataset.from_tensor_slices((waves, labels))

    def waves_dataset(self, training):
        if self.cache_mode is not None:
            if self._cached is None:
                self._cached = (self._in_memory() if self.cache_mode == "" else
                                self._synth(self._index(), True).cache(self.cache_mode))
            ds = self._cached
            if training:
                ds = ds.shuffle(min(self.num_clips, 4096), seed=self._seed(5),
                                reshuffle_each_iteration=True)
            return ds
        index = self._index()
        if training:
            index = index.shuffle(self.num_clips, seed=self._seed(6),
                                  reshuffle_each_iteration=True)
        return self._synth(index, self.keeps_order(training))


class NSynthSource(Source):
    """NSynth TFRecords; label = instrument family / source name or pitch."""

    name = "nsynth"

    def __init__(self, cfg, split="all"):
        self.split = split
        self.files = nsynth_files(cfg.data_dir, heldout=split == "heldout")
        self.label_key = {"instrument_family": "instrument_family_str",
                          "instrument_source": "instrument_source_str",
                          "pitch": "pitch"}[cfg.nsynth_label]
        counts = self._count_labels(cfg)
        if cfg.nsynth_label == "pitch":
            genres = [str(p) for p in sorted(int(k) for k in counts)]
        else:
            genres = sorted(counts)
        super().__init__(cfg, genres, {g: counts[g] for g in genres})
        bytes_needed = 4 * cfg.audio_length * sum(counts.values())
        self.cache_mode = cache_location(cfg, "nsynth", self.files + [cfg.nsynth_label],
                                         bytes_needed)
        self._cached = None
        logging.info("%s", self.summary())

    def _keep(self, pitch):
        if self.cfg.nsynth_label != "pitch":
            return tf.constant(True)
        lo, hi = NSYNTH_PITCH_RANGE
        return tf.logical_and(pitch >= lo, pitch <= hi)

    def _label_string(self, parsed):
        if self.label_key == "pitch":
            return tf.strings.as_string(parsed["pitch"])
        return parsed[self.label_key]

    def _count_labels(self, cfg):
        spec = {"pitch": tf.io.FixedLenFeature([], tf.int64)}
        if self.label_key != "pitch":
            spec[self.label_key] = tf.io.FixedLenFeature([], tf.string)
        ds = tf.data.TFRecordDataset(self.files, num_parallel_reads=tf.data.AUTOTUNE)
        ds = ds.batch(1024).map(lambda r: tf.io.parse_example(r, spec),
                                num_parallel_calls=tf.data.AUTOTUNE)
        counts = collections.Counter()
        for parsed in ds.as_numpy_iterator():
            pitch = parsed["pitch"]
            if cfg.nsynth_label == "pitch":
                lo, hi = NSYNTH_PITCH_RANGE
                keep = pitch[(pitch >= lo) & (pitch <= hi)]
                counts.update(str(int(p)) for p in keep)
            else:
                counts.update(v.decode("utf-8") for v in parsed[self.label_key])
        if not counts:
            raise DataError(f"--dataset=nsynth: no usable examples in {self.files}.")
        return counts

    def waves_dataset(self, training):
        cfg = self.cfg
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(self.genres),
                                                tf.range(self.num_genres, dtype=tf.int32)),
            default_value=-1)
        spec = {"audio": tf.io.FixedLenFeature([NSYNTH_LENGTH], tf.float32),
                "pitch": tf.io.FixedLenFeature([], tf.int64)}
        if self.label_key != "pitch":
            spec[self.label_key] = tf.io.FixedLenFeature([], tf.string)

        def parse(record):
            ex = tf.io.parse_single_example(record, spec)
            return ex["audio"], table.lookup(self._label_string(ex)), ex["pitch"]

        def to_wave(audio, label):
            if cfg.sample_rate != NSYNTH_RATE:
                audio = audio_io.resample_tf(audio, NSYNTH_RATE, cfg.sample_rate)
            wave = spectral.crop_or_pad(audio[None, :, None], cfg.audio_length, 1)[0, :, 0]
            return wave, label

        def pipeline(deterministic):
            ds = tf.data.TFRecordDataset(self.files, num_parallel_reads=tf.data.AUTOTUNE)
            ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=deterministic)
            ds = ds.filter(lambda a, label, p: tf.logical_and(label >= 0, self._keep(p)))
            ds = ds.map(lambda a, label, p: to_wave(a, label),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            return ds.ignore_errors(log_warning=True)

        if self.cache_mode is not None:
            if self._cached is None:
                self._cached = pipeline(True).cache(self.cache_mode)
            ds = self._cached
        else:
            ds = pipeline(self.keeps_order(training))
        if not training:
            return ds
        if self.balanced:
            weights = self._balance_weights()
            rand = tf.data.Dataset.random(seed=self._seed(8), rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, rand)).flat_map(
                lambda item, r: tf.data.Dataset.from_tensors(item).repeat(
                    tf.cast(_repeats(item[1], tf.stack([r, tf.constant(7, tf.int64)]),
                                     weights), tf.int64)))
        return ds.shuffle(cfg.shuffle_buffer, seed=self._seed(9),
                          reshuffle_each_iteration=True)
