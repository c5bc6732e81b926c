"""What to read (DataConfig), its flags, the errors, and the saved genre map."""

import dataclasses
import json
import os
from typing import Optional

import tensorflow as tf
from absl import flags

from gansynth_tf import audio_io
from gansynth_tf import split as split_lib

DATASETS = ("synthetic", "folder", "manifest", "nsynth")
NSYNTH_LABELS = ("instrument_family", "pitch", "instrument_source")
GENRE_MAP_FILE = "genres.json"
# GANSynth trains on NSynth pitches 24..84 inclusive.
NSYNTH_PITCH_RANGE = (24, 84)
NSYNTH_RATE = 16000
NSYNTH_LENGTH = 64000
# The synthetic source's held-out clips come from this seed offset: disjoint from training.
SYNTHETIC_HELDOUT_SEED = 100_003
# Decoded whole tracks held in the training shuffle buffer when they are not cached in
# memory (disk cache or none): a bound in bytes, so long tracks cannot fill the RAM.
TRACK_SHUFFLE_MB = 256
# Tracks whose training windows are drawn in turn (each window cut only when read).
TRACK_INTERLEAVE = 4
# Feature batches made ahead of the train step. A fixed depth, not AUTOTUNE: tf.data's
# prefetch autotuner doubles its buffer each time the step finds it empty, which the fast
# first stages do all the time, and it never shrinks it for the slow last ones.
PREFETCH_BATCHES = 2


class DataError(ValueError):
    """Input data that cannot be used; the message says what was found and what to do."""


@dataclasses.dataclass
class DataConfig:
    """What to read and how. Field names match the training script's flags.

    clips_per_file: windows cut from each file per epoch (training) or in the fixed
      evaluation set; None = as many non-overlapping windows as fit (at least one),
      e.g. 7 for a 30 s GTZAN track at 4 s.
    balanced: sample every genre equally often; None = on for file sources (folder,
      manifest, FMA), off for NSynth (GANSynth's setting); the synthetic genres are equal.
    holdout_fraction: share of each file-source genre's tracks held out from training
      (:mod:`gansynth_tf.split`); 0 = none.
    min_clip_dbfs: file-source windows whose RMS level is below this (dB re full scale)
      are dropped, in training and evaluation: the silence before, between and after
      tracks is not music of any genre.
    cache: keep decoded audio in memory when it is below cache_max_mb; cache_dir
      caches on disk instead (any size).
    synthetic_clips_per_genre: size of the synthetic dataset (clip indices 0..N-1).
    deterministic: training pipelines keep their order too (parallel maps and batches
      in sequence), so a seed fixes the data order; off, they hand on whichever element
      is ready first, which is faster but makes each run see another order.
    """
    dataset: str = "synthetic"
    data_dir: Optional[str] = None
    fma_metadata: Optional[str] = None
    nsynth_label: str = "instrument_family"
    audio_backend: str = "soundfile"
    sample_rate: int = 16000
    audio_length: int = 64000
    clips_per_file: Optional[int] = None
    balanced: Optional[bool] = None
    holdout_fraction: float = split_lib.DEFAULT_FRACTION
    cache: bool = True
    cache_dir: Optional[str] = None
    cache_max_mb: int = 2048
    shuffle_buffer: int = 1024
    min_clip_dbfs: float = -60.0
    synthetic_clips_per_genre: int = 200
    seed: int = 0
    deterministic: bool = False
    probe_threads: int = 8

    def validate(self):
        if self.dataset not in DATASETS:
            raise DataError(f"--dataset={self.dataset!r}: expected one of {DATASETS}.")
        if self.nsynth_label not in NSYNTH_LABELS:
            raise DataError(f"--nsynth_label={self.nsynth_label!r}: expected one of "
                            f"{NSYNTH_LABELS}.")
        if self.audio_backend not in audio_io.BACKENDS:
            raise DataError(f"--audio_backend={self.audio_backend!r}: expected one of "
                            f"{audio_io.BACKENDS}.")
        if self.sample_rate <= 0 or self.audio_length <= 0:
            raise DataError(f"sample_rate ({self.sample_rate}) and audio_length "
                            f"({self.audio_length}) must be positive.")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise DataError(f"--holdout_fraction={self.holdout_fraction}: must be in [0, 1) "
                            "(0.12 holds out about one track in eight of each genre).")
        if self.clips_per_file is not None and self.clips_per_file < 1:
            raise DataError(f"--clips_per_file={self.clips_per_file}: must be >= 1 "
                            "(or unset for automatic).")


def config_from_flags(flag_values, **overrides):
    """DataConfig from an absl FlagValues: every field that is a defined flag is read."""
    kwargs = {}
    for field in dataclasses.fields(DataConfig):
        if field.name in flag_values:
            kwargs[field.name] = getattr(flag_values, field.name)
    kwargs.update(overrides)
    return DataConfig(**kwargs)


# The data flags, defined once for every command that reads data: (definer, name, default,
# help, bounds). Names match DataConfig's fields; sample_rate / audio_length belong to the
# representation and are defined by the training command.
_DATA_FLAGS = (
    (flags.DEFINE_enum, "dataset", "synthetic", "Data source: the embedded synthetic genres "
     "(no download), a folder per genre (GTZAN), a CSV manifest (or FMA with "
     "--fma_metadata), or NSynth TFRecords.", {"enum_values": list(DATASETS)}),
    (flags.DEFINE_string, "data_dir", None, "Root of the dataset (folder/manifest/nsynth).",
     {}),
    (flags.DEFINE_string, "fma_metadata", None, "FMA tracks.csv; with --dataset=manifest "
     "reads FMA's layout under --data_dir.", {}),
    (flags.DEFINE_enum, "nsynth_label", "instrument_family", "NSynth feature used as the "
     "class ('pitch' is GANSynth's setting).", {"enum_values": list(NSYNTH_LABELS)}),
    (flags.DEFINE_enum, "audio_backend", "soundfile", "Audio decoder: soundfile (libsndfile, "
     "streamed in blocks: any length in bounded memory), or tensorflow-io in the tf.data "
     "graph (whole files; long ones still go to soundfile).",
     {"enum_values": list(audio_io.BACKENDS)}),
    (flags.DEFINE_integer, "clips_per_file", None, "Windows per file per epoch, and in the "
     "evaluation set (default: as many as fit without overlap).", {"lower_bound": 1}),
    (flags.DEFINE_boolean, "balanced", None, "Sample genres equally often, whatever their "
     "clip counts (default: on for folder/manifest/FMA, off for NSynth; --nobalanced turns "
     "it off).", {}),
    (flags.DEFINE_float, "holdout_fraction", split_lib.DEFAULT_FRACTION, "Share of each "
     "genre's tracks (folder/manifest/FMA) held out for evaluation, chosen from the file "
     "names and saved as <train_dir>/split.json; training never reads them. 0 = train on "
     "every track.", {"lower_bound": 0.0, "upper_bound": 0.9}),
    (flags.DEFINE_boolean, "cache", True, "Keep decoded audio in memory when it fits "
     "(--cache_max_mb).", {}),
    (flags.DEFINE_string, "cache_dir", None, "Cache decoded audio on disk here instead.", {}),
    (flags.DEFINE_integer, "cache_max_mb", 2048, "Largest dataset cached in memory, MB.", {}),
    (flags.DEFINE_integer, "shuffle_buffer", 1024, "Shuffle buffer (clips).", {}),
    (flags.DEFINE_float, "min_clip_dbfs", -60.0, "Drop windows of files quieter than this "
     "RMS level (dB re full scale): the silence around and between tracks; -inf keeps "
     "every window.", {}),
    (flags.DEFINE_integer, "synthetic_clips_per_genre", 200, "Size of the synthetic "
     "dataset.", {}),
)
DATA_FLAG_NAMES = tuple(entry[1] for entry in _DATA_FLAGS)


def define_data_flags(flag_values, names=DATA_FLAG_NAMES, overrides=False, help_texts=None):
    """Defines the data flags ``names`` on ``flag_values`` (an absl FlagValues).

    overrides: for commands that read a run's saved DataConfig (evaluate): every flag
      defaults to None, meaning "the run's value".
    help_texts: {name: help} where a command uses a flag in its own way.
    """
    unknown = sorted(set(names) - set(DATA_FLAG_NAMES))
    if unknown:
        raise ValueError(f"not data flags: {unknown}")
    for define, name, default, help_text, extra in _DATA_FLAGS:
        if name not in names:
            continue
        help_text = (help_texts or {}).get(name, help_text)
        if overrides:
            default, help_text = None, f"{help_text} Default: the run's data.json."
        define(name=name, default=default, help=help_text, flag_values=flag_values, **extra)


# ----------------------------------------------------------------------------- genre map


def save_genre_map(train_dir, genres):
    """Writes ``<train_dir>/genres.json``: {"genres": [...], "num_genres": n}; id = index."""
    genres = [str(g) for g in genres]
    tf.io.gfile.makedirs(train_dir)
    path = os.path.join(train_dir, GENRE_MAP_FILE)
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump({"genres": genres, "num_genres": len(genres)}, f, indent=1,
                  ensure_ascii=False)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return path


def load_genre_map(train_dir):
    """Reads the genre list saved by :func:`save_genre_map` (index = genre id)."""
    path = os.path.join(train_dir, GENRE_MAP_FILE)
    if not tf.io.gfile.exists(path):
        raise DataError(f"no {GENRE_MAP_FILE} in {train_dir}: it is written when training "
                        "starts; point at a training directory.")
    with tf.io.gfile.GFile(path, "r") as f:
        data = json.load(f)
    genres = data["genres"] if isinstance(data, dict) else data
    return [str(g) for g in genres]
