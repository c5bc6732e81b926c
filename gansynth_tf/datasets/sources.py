"""The Source interface, its windows, and the file source (folder / manifest / FMA tracks).

Each yields unbatched ``(wave float32 [audio_length], genre_id int32)`` windows."""

import abc
import collections
import concurrent.futures
import os

import numpy as np
import tensorflow as tf
from absl import logging

from gansynth_tf import audio_io, spectral
from gansynth_tf import split as split_lib
from gansynth_tf.datasets.cache import cache_location
from gansynth_tf.datasets.config import (
    TRACK_INTERLEAVE,
    TRACK_SHUFFLE_MB,
    DataError,
)

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


def _window(wave, length, start):
    """The window [length] of mono wave [n] at start, in a buffer of its own; a short wave
    is centre-padded."""
    # A copy, not the slice itself: TensorFlow's Slice returns a view into the input's
    # buffer when the start is 64-byte aligned (one start in 16 here), and a window that
    # waits in the clip shuffle buffer would then keep its whole decoded track resident.
    return tf.cond(tf.shape(wave)[0] <= length,
                   lambda: spectral.crop_or_pad(wave[None, :, None], length, 1)[0, :, 0],
                   lambda: tf.raw_ops.DeepCopy(x=tf.slice(wave, [start], [length])))


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
        probed = {}   # path -> (AudioInfo, None) or (None, why it is unreadable)

        def probe(paths):
            todo = [p for p in dict.fromkeys(paths) if p not in probed]
            infos, bad = _probe_all(todo, cfg.probe_threads)
            probed.update({info.path: (info, None) for info in infos})
            probed.update({path: (None, reason) for path, reason in bad})

        if track_split is None:
            # A new split is chosen among the readable files only, so that an unreadable
            # file is never a genre's one held-out or one training track.
            probe([p for p, _ in entries])
            _require_usable_genres(entries, probed, name, where)
            readable = [probed[p][0] is not None for p, _ in entries]
            track_split = split_lib.choose(
                [(k, g) for (_, g), k, ok in zip(entries, keys, readable) if ok],
                cfg.holdout_fraction).with_training(
                [(k, g) for (_, g), k, ok in zip(entries, keys, readable) if not ok])
        self.track_split, self.split = track_split, split
        if split == "train":
            self._warn_small_genres(name, track_split)
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
        probe([p for p, _ in entries])
        bad = [(p, probed[p][1]) for p, _ in entries if probed[p][0] is None]
        skipped = list(skipped) + bad
        for path, reason in bad:
            logging.warning("Skipping %s: %s", path, reason)
        files = [(probed[p][0], g) for p, g in entries if probed[p][0] is not None]
        usable = _require_usable_genres(entries, probed, name, where)
        genres = sorted(set(g for _, g in entries))
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

    @staticmethod
    def _warn_small_genres(name, track_split):
        """Start-up warnings for genres the held-out rule treats unevenly."""
        counts = sorted(track_split.counts().items())
        alone = [g for g, (h, t) in counts if t and not h]
        if track_split.fraction > 0 and alone:
            logging.warning("%s: genre(s) %s have a single readable file, which training "
                            "uses, so no track of theirs is held out: evaluate scores them "
                            "only with --holdout_fraction=0 (on training tracks). Add a second "
                            "file to each to hold one out.", name, alone)
        # The at-least-one rule can cost a small genre over twice the fraction asked for.
        costly = [f"{g} (1 of {1 + t} files)" for g, (h, t) in counts
                  if h == 1 and 2 * track_split.fraction * (1 + t) < 1]
        if costly:
            logging.warning("%s: genre(s) %s hold out far more than --holdout_fraction=%g of "
                            "their files for evaluation, because a genre of two or more files "
                            "holds out at least one, which training never reads. Add files to "
                            "these genres, or train on every file with --holdout_fraction=0 "
                            "(evaluate then scores training tracks).",
                            name, ", ".join(costly), track_split.fraction)

    def _split_note(self):
        counts = self.track_split.counts()
        held = sum(h for h, _ in counts.values())
        total = sum(h + t for h, t in counts.values())
        if self.split == "all":
            return f" (all {total} tracks, held-out ones included)"
        return (f" ({self.split} split: {held} of {total} tracks held out for evaluation, "
                f"--holdout_fraction={self.track_split.fraction:g})")

    def _cache_mode(self):
        return cache_location(self.cfg, self.name,
                              self.paths + [str(self.cfg.sample_rate), self.backend],
                              self.decoded_bytes)

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

        def random_offsets(item, r):
            wave, label = item
            n = tf.shape(wave)[0]
            k = _num_windows(n, length, cfg.clips_per_file)
            if weights is not None:
                k = k * _repeats(label, tf.stack([r, tf.constant(7, tf.int64)]), weights)
            offsets = tf.random.stateless_uniform(
                [k], seed=tf.stack([r, tf.constant(11, tf.int64)]), minval=0,
                maxval=tf.maximum(n - length, 0) + 1, dtype=tf.int32)
            return wave, offsets, label

        def windows(wave, offsets, label):
            # Cut one window at a time as the stream asks for it: a track's k (times its
            # genre's oversampling) windows are never all in memory at once.
            return tf.data.Dataset.from_tensor_slices(offsets).map(
                lambda start: (_window(wave, length, start), label))

        ds = tf.data.Dataset.zip((decoded, rand)).map(
            random_offsets, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=self.keeps_order(training))
        # Windows of TRACK_INTERLEAVE tracks alternate, so the clip shuffle mixes tracks.
        ds = ds.interleave(windows, cycle_length=TRACK_INTERLEAVE, block_length=1)
        ds = ds.filter(self._audible)
        return ds.shuffle(cfg.shuffle_buffer, seed=self._seed(4),
                          reshuffle_each_iteration=True)


def _require_usable_genres(entries, probed, name, where):
    """Readable files per genre of [(path, genre)]; DataError if a genre has none."""
    usable = collections.Counter(g for p, g in entries if probed[p][0] is not None)
    dead = sorted(set(g for _, g in entries) - set(usable))
    if dead:
        total = collections.Counter(g for _, g in entries)
        raise DataError(f"{name}{where}: genre(s) {dead} have no usable audio "
                        f"({', '.join(f'{g}: {total[g]} file(s), all skipped' for g in dead)}"
                        "); fix or remove those files, or drop the genre.")
    return usable


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
