"""Genre-labelled audio sources and the tf.data input pipeline.

Sources (``DataConfig.dataset``):

* ``folder``   one sub-folder per genre, as GTZAN (``genres/<genre>/*.wav``).
* ``manifest`` a CSV of ``path,genre``; or FMA's ``tracks.csv`` via ``fma_metadata``.
* ``nsynth``   NSynth TFRecords, labelled by instrument family / source or pitch.
* ``synthetic`` the embedded numpy-synthesised genres (:mod:`gansynth_tf.synthetic`).

``build_source(cfg)`` probes the data once (file headers, label counts), reports
skipped files and class counts, and returns a :class:`Source` whose
``waves_dataset(training)`` yields unbatched ``(wave float32 [audio_length],
genre_id int32)``. ``make_train_dataset`` batches it and maps it to features.

File sources decode whole files (tensorflow-io in the graph or soundfile; see
:mod:`gansynth_tf.audio_io`), cache the decoded, resampled mono audio in memory when
it fits, and cut each file into ``audio_length`` windows: random offsets while
training, evenly spaced fixed offsets for evaluation. Files shorter than a window are
centre-padded, as GANSynth's ``crop_or_pad`` does.
"""

import abc
import collections
import concurrent.futures
import csv
import dataclasses
import glob
import hashlib
import json
import os
import re
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import flags, logging

from gansynth_tf import audio_io, spectral, synthetic
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
    audio_backend: str = "tfio"
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
    (flags.DEFINE_enum, "audio_backend", "tfio", "Audio decoder: tensorflow-io in the "
     "tf.data graph, or soundfile (no tensorflow-io).",
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


# ----------------------------------------------------------------------------- windows


def _fixed_offsets(n, length, k):
    """k evenly spaced window starts covering [0, n - length]; first window at 0."""
    span = tf.cast(tf.maximum(n - length, 0), tf.float32)
    steps = tf.maximum(tf.cast(k - 1, tf.float32), 1.0)
    return tf.cast(tf.round(tf.range(k, dtype=tf.float32) * span / steps), tf.int32)


def _cut_windows(wave, length, k, offsets):
    """Windows [k, length] of mono wave [n]; a short wave is centre-padded (crop_or_pad)."""
    n = tf.shape(wave)[0]

    def short():
        padded = spectral.crop_or_pad(wave[None, :, None], length, 1)[0, :, 0]
        return tf.tile(padded[None], [k, 1])

    def long():
        # One contiguous slice per window: ~4x faster than a gather over a [k, length]
        # index grid (which also materialises k * length int32 indices).
        return tf.map_fn(lambda start: tf.slice(wave, [start], [length]), offsets,
                         fn_output_signature=tf.TensorSpec([length], wave.dtype))

    return tf.cond(n <= length, short, long)


def _num_windows(n, length, clips_per_file):
    if clips_per_file:
        return tf.constant(int(clips_per_file), tf.int32)
    return tf.maximum(1, n // length)


def _repeats(label, seed, weights):
    """Oversampling factor for balanced training: floor(w) + Bernoulli(frac(w))."""
    w = tf.gather(tf.constant(weights, tf.float32), label)
    u = tf.random.stateless_uniform([], seed=seed)
    return tf.cast(tf.floor(w) + tf.cast(u < w - tf.floor(w), tf.float32), tf.int32)


# ----------------------------------------------------------------------------- sources


class Source(abc.ABC):
    """A labelled audio source.

    Attributes:
      genres: sorted list of genre names; genre id = index.
      class_counts: {genre: number of files / examples}.
      clip_counts: {genre: number of evaluation windows}.
      skipped: [(path, reason)] for inputs left out at start-up.
    """

    name = "source"
    balanced_by_default = False

    def __init__(self, cfg, genres, class_counts, clip_counts=None, skipped=()):
        self.cfg = cfg
        self.genres = list(genres)
        self.class_counts = dict(class_counts)
        self.clip_counts = dict(clip_counts if clip_counts is not None else class_counts)
        self.skipped = list(skipped)
        if len(self.genres) < 2:
            raise DataError(f"{self.name}: found {len(self.genres)} genre(s) "
                            f"{self.genres}; at least two genres are needed.")

    @property
    def num_genres(self):
        return len(self.genres)

    @property
    def balanced(self):
        """Whether training oversamples small genres (cfg.balanced, else the default)."""
        if self.cfg.balanced is None:
            return self.balanced_by_default
        return bool(self.cfg.balanced)

    @property
    def num_clips(self):
        """Evaluation windows in one pass over the data."""
        return int(sum(self.clip_counts.values()))

    def _split_note(self):
        return ""

    def _balance_weights(self):
        """Per-genre oversampling factors that equalise clips per epoch."""
        counts = np.array([max(1, self.clip_counts.get(g, 0)) for g in self.genres], float)
        return (counts.max() / counts).tolist()

    def _seed(self, salt):
        return int(self.cfg.seed) * 1000 + salt

    def keeps_order(self, training):
        """Whether parallel maps must keep their order: evaluation always does."""
        return not training or bool(self.cfg.deterministic)

    def summary(self):
        """A start-up report: genres, counts and skipped files."""
        lines = [f"{self.name}: {self.num_genres} genres, {sum(self.class_counts.values())} "
                 f"items, {self.num_clips} clips of {self.cfg.audio_length} samples at "
                 f"{self.cfg.sample_rate} Hz{self._split_note()}"]
        width = max(len(g) for g in self.genres)
        for i, g in enumerate(self.genres):
            lines.append(f"  {i:3d} {g:<{width}}  {self.class_counts.get(g, 0):7d} items "
                         f"{self.clip_counts.get(g, 0):8d} clips")
        if self.balanced:
            weights = self._balance_weights()
            lines.append(f"  balanced sampling: on (each genre's clips drawn x{min(weights):.2f}"
                         f"-x{max(weights):.2f}; --nobalanced turns it off)")
        else:
            lines.append("  balanced sampling: off (genres drawn in proportion to their clips)")
        if self.skipped:
            reasons = collections.Counter(_reason_kind(r) for _, r in self.skipped)
            lines.append(f"  skipped {len(self.skipped)} input(s): " +
                         ", ".join(f"{n} {k}" for k, n in sorted(reasons.items())))
        return "\n".join(lines)

    @abc.abstractmethod
    def waves_dataset(self, training):
        """Unbatched (wave float32 [audio_length], genre_id int32).

        training=True: shuffled, random window offsets, reshuffled each epoch,
        oversampled per genre if cfg.balanced. training=False: fixed order and
        offsets. Finite in both cases (repeat it for more epochs).
        """


def _reason_kind(reason):
    return reason.split(" (")[0].split(":")[0]


class FileSource(Source):
    """Audio files with genre labels (folder, manifest and FMA layouts).

    Attributes (besides Source's):
      track_split: the :class:`~gansynth_tf.split.TrackSplit` of all the layout's files.
      split: which of its files this source reads ('train', 'heldout' or 'all').
    """

    balanced_by_default = True

    def __init__(self, cfg, entries, name, skipped=(), where="", root=None, split="all",
                 track_split=None):
        """entries: [(path, genre)] of candidate audio files (not yet probed).

        root: the folder file keys are relative to (default: the common parent).
        split: 'train' / 'heldout' / 'all'; track_split: a saved split to apply (default:
        chosen from the files with cfg.holdout_fraction).
        """
        self.name = name
        if split not in split_lib.SPLITS:
            raise ValueError(f"split={split!r}: expected one of {split_lib.SPLITS}")
        root = root or os.path.commonpath([os.path.dirname(os.path.abspath(p))
                                           for p, _ in entries])
        keys = [split_lib.file_key(p, root) for p, _ in entries]
        if track_split is None:
            track_split = split_lib.choose(zip(keys, (g for _, g in entries)),
                                           cfg.holdout_fraction)
        self.track_split, self.split = track_split, split
        if split != "all":
            want = split == "heldout"
            all_genres = sorted(set(g for _, g in entries))
            entries = [(p, g) for (p, g), k in zip(entries, keys)
                       if track_split.is_held_out(g, k) == want]
            missing = sorted(set(all_genres) - set(g for _, g in entries))
            if missing:
                raise DataError(
                    f"{name}{where}: no {'held-out' if want else 'training'} track for "
                    f"genre(s) {missing} (a genre needs at least two files to hold one "
                    "out); add tracks, or evaluate on training tracks with "
                    "--holdout_fraction=0.")
        self.backend = audio_io.resolve_backend(cfg.audio_backend)
        if cfg.audio_backend == "tfio" and self.backend != "tfio":
            logging.warning("%s: --audio_backend=tfio unavailable, using soundfile.", name)
        infos, bad = _probe_all([p for p, _ in entries], cfg.probe_threads)
        skipped = list(skipped) + bad
        for path, reason in bad:
            logging.warning("Skipping %s: %s", path, reason)
        genre_of = dict(entries)
        files = [(info, genre_of[info.path]) for info in infos]
        all_genres = sorted(set(g for _, g in entries))
        usable = collections.Counter(g for _, g in files)
        dead = [g for g in all_genres if usable[g] == 0]
        if dead:
            total = collections.Counter(g for _, g in entries)
            raise DataError(f"{name}{where}: genre(s) {dead} have no usable audio "
                            f"({', '.join(f'{g}: {total[g]} file(s), all skipped' for g in dead)}"
                            "); fix or remove those files, or drop the genre.")
        genres = all_genres
        length, sr = cfg.audio_length, cfg.sample_rate
        self.paths = [info.path for info, _ in files]
        self.labels = np.array([genres.index(g) for _, g in files], np.int32)
        self.kinds = np.array([audio_io.decoder_kind(info, self.backend, sr)
                               for info, _ in files], np.int32)
        resampled = [audio_io.resampled_length(info.frames, info.sample_rate, sr)
                     for info, _ in files]
        clips = [cfg.clips_per_file or max(1, n // length) for n in resampled]
        short = sum(n < length for n in resampled)
        if resampled and 2 * short > len(resampled):
            # Such files still give one clip each, centre-padded with silence: with most of
            # them short the model learns that silence, which no other sign shows.
            longest = max(resampled)
            logging.warning(
                "%s: %d of %d files are shorter than one clip (--audio_length=%d samples, "
                "%.2f s at %d Hz; the longest file has %d samples, %.2f s): their clips are "
                "padded with silence. Give a shorter --audio_length or longer files.",
                name, short, len(resampled), length, length / sr, sr, longest, longest / sr)
        self.decoded_bytes = 4 * int(sum(resampled))
        class_counts = {g: int(usable[g]) for g in genres}
        clip_counts = {g: 0 for g in genres}
        for (_, g), k in zip(files, clips):
            clip_counts[g] += k
        super().__init__(cfg, genres, class_counts, clip_counts, skipped)

        tfio_rates = sorted(set(info.sample_rate for (info, _), k in zip(files, self.kinds)
                                if k != audio_io.KIND_SOUNDFILE and info.sample_rate != sr))
        self.decoder = audio_io.GraphDecoder(sr, tfio_rates, set(self.kinds.tolist()))
        self.rate_index = np.array([self.decoder.rate_index(k, info.sample_rate)
                                    for (info, _), k in zip(files, self.kinds)], np.int32)
        if self.backend == "tfio":
            fallback = collections.Counter(f"{info.format}/{info.subtype}"
                                           for (info, _), k in zip(files, self.kinds)
                                           if k == audio_io.KIND_SOUNDFILE)
            if fallback:
                logging.warning("%s: %d file(s) decoded by soundfile because tensorflow-io "
                                "has no decoder for them: %s", name, sum(fallback.values()),
                                ", ".join(f"{k} x{n}" for k, n in sorted(fallback.items())))
        self.cache_mode = self._cache_mode()
        self._decoded = None
        logging.info("%s", self.summary())

    def _split_note(self):
        counts = self.track_split.counts()
        held = sum(h for h, _ in counts.values())
        total = sum(h + t for h, t in counts.values())
        if self.split == "all":
            return f" (all {total} tracks, held-out ones included)"
        return (f" ({self.split} split: {held} of {total} tracks held out for evaluation, "
                f"--holdout_fraction={self.track_split.fraction:g})")

    def _cache_mode(self):
        cfg = self.cfg
        if not cfg.cache:
            return None
        if cfg.cache_dir:
            key = hashlib.sha1("\n".join(self.paths + [str(cfg.sample_rate), self.backend])
                               .encode("utf-8")).hexdigest()[:12]
            tf.io.gfile.makedirs(cfg.cache_dir)
            return os.path.join(cfg.cache_dir, f"{self.name}_{key}")
        if self.decoded_bytes > cfg.cache_max_mb * 2**20:
            logging.info("%s: not caching decoded audio (%.0f MB > cache_max_mb=%d); set "
                         "cache_dir to cache on disk.", self.name, self.decoded_bytes / 2**20,
                         cfg.cache_max_mb)
            return None
        return ""   # in memory

    def _audible(self, wave, label):
        """False for a window quieter than cfg.min_clip_dbfs (RMS, dB re full scale)."""
        del label
        threshold = 10.0 ** (self.cfg.min_clip_dbfs / 20.0)
        return tf.sqrt(tf.reduce_mean(tf.square(wave))) >= threshold

    def _files(self):
        return tf.data.Dataset.from_tensor_slices(
            (tf.constant(self.paths), self.kinds, self.rate_index, self.labels))

    def _decode(self, files, deterministic):
        decoder = self.decoder

        def decode(path, kind, rate_index, label):
            return decoder(path, kind, rate_index), label

        ds = files.map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=deterministic)
        # A file that passed the header probe but fails to decode is dropped, not fatal.
        ds = ds.ignore_errors(log_warning=True)
        return ds.filter(lambda wave, label: tf.size(wave) > 0)

    def decoded_dataset(self):
        """(mono wave float32 [n] at sample_rate, genre_id) per file, in file order."""
        if self.cache_mode is None:
            return self._decode(self._files(), True)
        if self._decoded is None:
            # One cache shared by training and evaluation pipelines.
            self._decoded = self._decode(self._files(), True).cache(self.cache_mode)
        return self._decoded

    def waves_dataset(self, training):
        cfg, length = self.cfg, self.cfg.audio_length
        if not training:
            def fixed(wave, label):
                k = _num_windows(tf.shape(wave)[0], length, cfg.clips_per_file)
                windows = _cut_windows(wave, length, k,
                                       _fixed_offsets(tf.shape(wave)[0], length, k))
                return windows, tf.fill([k], label)
            ds = self.decoded_dataset().map(fixed, num_parallel_calls=tf.data.AUTOTUNE)
            return ds.unbatch().filter(self._audible)

        n_files = len(self.paths)
        if self.cache_mode is None:
            files = self._files().shuffle(n_files, seed=self._seed(1),
                                          reshuffle_each_iteration=True)
            decoded = self._decode(files, self.keeps_order(training))
        else:
            # In memory the buffer holds references to cached tracks; from a disk cache it
            # holds copies, so bound it in bytes there.
            tracks = min(n_files, 512)
            if self.cache_mode:
                mean_bytes = self.decoded_bytes / max(1, n_files)
                tracks = max(2, min(tracks, int(TRACK_SHUFFLE_MB * 2**20 // mean_bytes)))
            decoded = self.decoded_dataset().shuffle(tracks, seed=self._seed(2),
                                                     reshuffle_each_iteration=True)
        weights = self._balance_weights() if self.balanced else None
        rand = tf.data.Dataset.random(seed=self._seed(3), rerandomize_each_iteration=True)

        def random_windows(item, r):
            wave, label = item
            n = tf.shape(wave)[0]
            k = _num_windows(n, length, cfg.clips_per_file)
            if weights is not None:
                k = k * _repeats(label, tf.stack([r, tf.constant(7, tf.int64)]), weights)
            offsets = tf.random.stateless_uniform(
                [k], seed=tf.stack([r, tf.constant(11, tf.int64)]), minval=0,
                maxval=tf.maximum(n - length, 0) + 1, dtype=tf.int32)
            return _cut_windows(wave, length, k, offsets), tf.fill([k], label)

        ds = tf.data.Dataset.zip((decoded, rand)).map(
            random_windows, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=self.keeps_order(training))
        ds = ds.unbatch().filter(self._audible)
        return ds.shuffle(cfg.shuffle_buffer, seed=self._seed(4),
                          reshuffle_each_iteration=True)


def _probe_all(paths, threads):
    """Probes files in parallel (header reads are I/O bound). Returns (infos, bad)."""
    def probe(path):
        try:
            return audio_io.probe_audio(path), None
        except audio_io.AudioProbeError as e:
            return None, (path, str(e))
    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(pool.map(probe, paths))
    infos = [info for info, _ in results if info is not None]
    bad = [b for _, b in results if b is not None]
    return infos, bad


def _visible(name):
    return not name.startswith(".") and name != "__MACOSX"


def _audio_files_under(folder):
    """Sorted audio file paths below `folder` (recursive); hidden entries ignored."""
    out, other = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        for f in sorted(files):
            if not _visible(f):
                continue
            if audio_io.is_audio_path(f):
                out.append(os.path.join(root, f))
            else:
                other += 1
    return out, other


def _require_dir(path, what):
    if not path:
        raise DataError(f"{what}: --data_dir is required.")
    if not os.path.exists(path):
        raise DataError(f"{what}: --data_dir={path} does not exist.")


def resolve_genre_root(data_dir):
    """The folder whose sub-folders are genres: data_dir, or GTZAN's genres(_original)."""
    for sub in ("genres_original", "genres", os.path.join("Data", "genres_original"),
                os.path.join("Data", "genres")):
        cand = os.path.join(data_dir, sub)
        if os.path.isdir(cand):
            return cand
    return data_dir


def folder_entries(data_dir):
    """[(path, genre)] for a genre-per-folder tree; raises DataError on bad layouts."""
    _require_dir(data_dir, "--dataset=folder")
    if not os.path.isdir(data_dir):
        raise DataError(f"--dataset=folder: --data_dir={data_dir} is a file; give the folder "
                        "that holds one sub-folder per genre.")
    root = resolve_genre_root(data_dir)
    genres = sorted(d for d in os.listdir(root)
                    if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if not genres:
        top, _ = _audio_files_under(root) if os.path.isdir(root) else ([], 0)
        raise DataError(f"--dataset=folder: no genre sub-folders in {root} (found "
                        f"{len(top)} audio file(s)); put each genre's files in "
                        f"{root}/<genre>/.")
    entries = []
    for g in genres:
        files, other = _audio_files_under(os.path.join(root, g))
        if not files:
            raise DataError(f"--dataset=folder: genre folder {os.path.join(root, g)!r} holds "
                            f"no audio files ({other} other file(s)); add audio "
                            f"({', '.join(audio_io.AUDIO_EXTENSIONS[:5])}, ...) or remove it.")
        entries += [(f, g) for f in files]
    if len(genres) < 2:
        raise DataError(f"--dataset=folder: found {len(genres)} genre folder(s) in {root}: "
                        f"{genres}; at least two genres are needed.")
    return entries, root


def manifest_entries(csv_path):
    """[(path, genre)] from a `path,genre` CSV (header optional); missing files skipped."""
    if os.path.isdir(csv_path):
        cand = os.path.join(csv_path, "manifest.csv")
        if not os.path.isfile(cand):
            raise DataError(f"--dataset=manifest: {csv_path} is a folder without "
                            "manifest.csv; give --data_dir=<file>.csv.")
        csv_path = cand
    base = os.path.dirname(os.path.abspath(csv_path))
    entries, skipped = [], []
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = [(line, r) for line, r in enumerate(csv.reader(f), start=1)
                if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"--dataset=manifest: {csv_path} is empty; expected rows of "
                        "path,genre.")
    col_p, col_g = 0, 1
    head = [c.strip().lower() for c in rows[0][1]]
    if "path" in head and "genre" in head:
        col_p, col_g = head.index("path"), head.index("genre")
        rows = rows[1:]
    for line, row in rows:
        if len(row) <= max(col_p, col_g) or not row[col_g].strip():
            skipped.append((f"{csv_path}:{line}", "malformed row (need path,genre)"))
            continue
        path = row[col_p].strip()
        path = path if os.path.isabs(path) else os.path.join(base, path)
        if not os.path.isfile(path):
            skipped.append((path, "missing file"))
            continue
        if audio_io.is_audio_path(path):
            entries.append((path, row[col_g].strip()))
    return entries, skipped, csv_path


def _fma_tracks(tracks_csv):
    """{track_id: genre_top, subset} from FMA's multi-header tracks.csv."""
    with open(tracks_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = []
        for row in reader:
            if row and re.fullmatch(r"\d+", row[0].strip()):
                first = row
                break
            header.append(row)
        else:
            raise DataError(f"--fma_metadata={tracks_csv}: no track rows found.")

        def column(top, sub):
            for j in range(len(header[0])):
                names = [h[j].strip() if j < len(h) else "" for h in header]
                if len(names) >= 2 and names[0] == top and names[1] == sub:
                    return j
            return None

        if len(header) < 2:
            raise DataError(f"--fma_metadata={tracks_csv}: expected FMA's 2-3 header rows "
                            "(track / genre_top).")
        j_genre, j_subset = column("track", "genre_top"), column("set", "subset")
        if j_genre is None:
            raise DataError(f"--fma_metadata={tracks_csv}: no track/genre_top column.")
        out = {}
        for row in [first] + list(reader):
            if not row or not row[0].strip().isdigit():
                continue
            genre = row[j_genre].strip() if j_genre < len(row) else ""
            subset = row[j_subset].strip() if j_subset is not None and j_subset < len(row) \
                else ""
            out[int(row[0])] = (genre, subset)
    return out


def _fma_audio_dir(data_dir):
    """FMA audio folder: data_dir itself (holds 000/, 001/...) or its single fma_* child."""
    def has_shards(d):
        return any(re.fullmatch(r"\d{3}", s) and os.path.isdir(os.path.join(d, s))
                   for s in os.listdir(d))
    if has_shards(data_dir):
        return data_dir
    cands = sorted(d for d in os.listdir(data_dir) if d.startswith("fma_") and
                   os.path.isdir(os.path.join(data_dir, d)) and d != "fma_metadata" and
                   has_shards(os.path.join(data_dir, d)))
    if len(cands) != 1:
        raise DataError(f"FMA: {data_dir} holds {'no' if not cands else 'several'} fma_<size> "
                        f"audio folders {cands}; point --data_dir at one (e.g. "
                        f"{os.path.join(data_dir, 'fma_small')}).")
    return os.path.join(data_dir, cands[0])


def fma_entries(data_dir, fma_metadata):
    """[(path, genre_top)] for FMA tracks present under data_dir."""
    _require_dir(data_dir, "--dataset=manifest with --fma_metadata")
    tracks_csv = fma_metadata
    if os.path.isdir(tracks_csv):
        tracks_csv = os.path.join(tracks_csv, "tracks.csv")
    if not os.path.isfile(tracks_csv):
        raise DataError(f"--fma_metadata={fma_metadata}: tracks.csv not found.")
    audio_dir = _fma_audio_dir(data_dir)
    tracks = _fma_tracks(tracks_csv)
    entries, no_genre, absent = [], 0, 0
    for tid, (genre, _) in sorted(tracks.items()):
        name = f"{tid:06d}"
        path = os.path.join(audio_dir, name[:3], name + ".mp3")
        if not os.path.isfile(path):
            absent += 1       # expected: fma_small/medium hold a subset of tracks.csv
            continue
        if not genre:
            no_genre += 1
            continue
        entries.append((path, genre))
    logging.info("FMA: %d tracks with audio and a top genre in %s (%d listed tracks not "
                 "present, %d present without genre_top).", len(entries), audio_dir, absent,
                 no_genre)
    if not entries:
        raise DataError(f"FMA: no track of {tracks_csv} has audio under {audio_dir} "
                        "(expected <audio_dir>/<xxx>/<xxxxxx>.mp3).")
    return entries, audio_dir


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
        self.cache_mode = None
        if cfg.cache:
            if cfg.cache_dir:
                tf.io.gfile.makedirs(cfg.cache_dir)
                self.cache_mode = os.path.join(
                    cfg.cache_dir, f"synthetic_s{cfg.seed}_n{n}_{cfg.sample_rate}_"
                                   f"{cfg.audio_length}")
            elif bytes_needed <= cfg.cache_max_mb * 2**20:
                self.cache_mode = ""
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
        self.files = _nsynth_files(cfg.data_dir, heldout=split == "heldout")
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
        self.cache_mode = None
        if cfg.cache:
            if cfg.cache_dir:
                tf.io.gfile.makedirs(cfg.cache_dir)
                key = hashlib.sha1("\n".join(self.files + [cfg.nsynth_label]).encode()
                                   ).hexdigest()[:12]
                self.cache_mode = os.path.join(cfg.cache_dir, f"nsynth_{key}")
            elif bytes_needed <= cfg.cache_max_mb * 2**20:
                self.cache_mode = ""
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


def _nsynth_files(data_dir, heldout=False):
    """NSynth's TFRecords; heldout=True: its own valid (else test) split beside them."""
    _require_dir(data_dir, "--dataset=nsynth")
    if heldout:
        folder = data_dir if os.path.isdir(data_dir) else os.path.dirname(data_dir)
        for name in ("nsynth-valid", "nsynth-test"):
            files = sorted(glob.glob(os.path.join(folder, name + "*.tfrecord*")))
            if files:
                return files
        logging.warning("--dataset=nsynth: no nsynth-valid/-test TFRecords beside %s: "
                        "evaluating on the training records.", data_dir)
    if os.path.isfile(data_dir):
        return [data_dir]
    files = sorted(glob.glob(os.path.join(data_dir, "nsynth-train*.tfrecord*")))
    if not files:
        files = sorted(glob.glob(os.path.join(data_dir, "*.tfrecord*")))
    if not files:
        raise DataError(f"--dataset=nsynth: no *.tfrecord files in {data_dir}; download "
                        "nsynth-train.tfrecord (see data/README.md).")
    return files


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
    _require_dir(cfg.data_dir, "--dataset=manifest")
    entries, skipped, csv_path = manifest_entries(cfg.data_dir)
    for path, reason in skipped:
        logging.warning("Skipping %s: %s", path, reason)
    if not entries:
        raise DataError(f"--dataset=manifest: no usable audio rows in {csv_path} "
                        f"({len(skipped)} skipped).")
    return FileSource(cfg, entries, "manifest", skipped=skipped, where=f" ({csv_path})",
                      root=os.path.dirname(os.path.abspath(csv_path)), **files)


def make_train_dataset(source, batch_size, to_features, training=True, repeat=True):
    """Batched (features float32 [batch, T, F, 2], one_hot float32 [batch, num_genres]).

    to_features maps waves [batch, audio_length, 1] to normalised spectrograms.
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
        x = tf.cast(to_features(waves[:, :, None]), tf.float32)
        return x, tf.one_hot(labels, num_genres, dtype=tf.float32)

    ds = ds.map(features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=keeps_order)
    return ds.prefetch(tf.data.AUTOTUNE)


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


__all__ = ["DATASETS", "NSYNTH_LABELS", "DataConfig", "DataError", "Source", "FileSource",
           "SyntheticSource", "NSynthSource", "build_source", "make_train_dataset",
           "save_genre_map", "load_genre_map", "config_from_flags", "sample_waves",
           "fit_normalizer", "folder_entries", "manifest_entries", "fma_entries",
           "resolve_genre_root"]
