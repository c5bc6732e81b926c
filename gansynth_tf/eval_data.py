"""The data an evaluation scores against: a run's DataConfig and its real clips.

:func:`data_config` rebuilds the run's data settings (its data.json, or the flags.txt of
an older run), :func:`heldout_split` says which tracks the scored real clips come from
(the run's split.json; :mod:`gansynth_tf.split`), and :func:`real_source` /
:func:`collect_clips` read a fixed number of clips per genre spread over those tracks.
Used by :mod:`gansynth_tf.evaluate` and the bench scripts; every name also imports from
there.
"""

import dataclasses
import math
import os
import typing

import numpy as np
from absl import logging

from gansynth_tf import datasets, rundir
from gansynth_tf import split as split_lib

FLAGS_FILE = "flags.txt"


def read_flagfile(path):
    """flags.txt (absl flags_into_string) -> {name: value string, or bool for --[no]name}."""
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("--"):
                continue
            if "=" in line:
                name, value = line[2:].split("=", 1)
                values[name] = value
            elif line.startswith("--no"):
                values[line[4:]] = False
                values.setdefault(line[2:], True)
            else:
                values[line[2:]] = True
    return values


def _convert(name, value, hint):
    """A flags.txt string -> the DataConfig field's type (bool / int / str, Optional)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = args[0] if args else hint
    if kind is bool:
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(value, bool):
        raise ValueError(f"flags.txt: --{name} has no value")
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value


def data_config(train_dir, rep, overrides=None):
    """The run's DataConfig (its data.json), then `overrides` (name -> value, None = keep).

    A run from before data.json was saved is read from its flags.txt instead. sample_rate
    and audio_length always follow the representation (the model's).
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    saved = rundir.load_data_config(train_dir)
    if saved is not None:
        kwargs = dataclasses.asdict(saved)
    else:
        kwargs = _data_config_from_flagfile(train_dir, bool(overrides))
    kwargs.update(overrides)
    kwargs["sample_rate"], kwargs["audio_length"] = rep.sample_rate, rep.audio_length
    return datasets.DataConfig(**kwargs)


def _data_config_from_flagfile(train_dir, have_overrides):
    """DataConfig fields from an older run's flags.txt (runs before data.json)."""
    hints = typing.get_type_hints(datasets.DataConfig)
    fields = {f.name for f in dataclasses.fields(datasets.DataConfig)}
    path = os.path.join(train_dir, FLAGS_FILE)
    stored = read_flagfile(path) if os.path.exists(path) else {}
    if not stored and not have_overrides:
        logging.warning("%s not found: using the default data flags (synthetic dataset); "
                        "pass --dataset/--data_dir to evaluate on other data", path)
    # "--nocache" is parsed as cache=False; the mirror key "nocache" is not a field.
    return {name: _convert(name, value, hints[name]) for name, value in stored.items()
            if name in fields}


def collect_clips(source, genres, per_genre):
    """Up to `per_genre` clips of each genre, spread evenly over the source's windows.

    Reads the whole evaluation stream (`source.waves_dataset(training=False)`), then keeps
    evenly spaced clips of each genre so that every track contributes, not only the first
    ones in file order.

    Args:
      genres: the run's genre names; source genres are mapped to them by name.
    Returns:
      (waves float32 `[n, L]`, labels int32 `[n]`), labels are ids into `genres`.
    """
    if sorted(source.genres) != sorted(genres):
        raise ValueError(
            f"the data's genres {source.genres} differ from the run's {list(genres)}: "
            f"evaluate on the data the run was trained on (--dataset/--data_dir)")
    to_run = {i: genres.index(g) for i, g in enumerate(source.genres)}
    clips = {g: [] for g in range(len(genres))}
    for wave, label in source.waves_dataset(training=False).as_numpy_iterator():
        clips[to_run[int(label)]].append(wave)
    waves, labels = [], []
    for g, found in clips.items():
        if not found:
            raise ValueError(f"no evaluation clips of genre {genres[g]!r} in the data")
        if len(found) < per_genre:
            logging.warning("genre %r: only %d clips of the %d wanted", genres[g],
                            len(found), per_genre)
        keep = np.unique(np.round(np.linspace(0, len(found) - 1,
                                              min(per_genre, len(found)))).astype(int))
        waves += [found[i] for i in keep]
        labels += [g] * len(keep)
    length = source.cfg.audio_length
    stacked = np.stack(waves).astype(np.float32) if waves else np.zeros([0, length],
                                                                         np.float32)
    return stacked, np.array(labels, np.int32)


def real_source(cfg, split, track_split, per_genre):
    """A Source of `split` whose evaluation stream holds about `per_genre` clips a genre.

    File sources read ceil(per_genre / fewest files of a genre) windows per file (unless
    --clips_per_file says otherwise), so that the smallest genre still fills its quota
    while a large corpus is not read into memory whole; nothing is cached.
    """
    cfg = dataclasses.replace(cfg, cache=False)
    source = datasets.build_source(cfg, split=split, track_split=track_split)
    if isinstance(source, datasets.FileSource) and cfg.clips_per_file is None:
        fewest = max(1, min(source.class_counts.values()))
        cfg = dataclasses.replace(cfg, clips_per_file=max(1, math.ceil(per_genre / fewest)))
        source = datasets.build_source(cfg, split=split, track_split=source.track_split)
    return source


def heldout_split(train_dir, cfg):
    """(split name for the scored real clips, the run's TrackSplit or None, a note)."""
    track_split = split_lib.load(train_dir)
    if cfg.dataset in ("synthetic", "nsynth"):
        return "heldout", None, "held-out clips" if cfg.dataset == "synthetic" else \
            "NSynth's own held-out records"
    if track_split is None:
        logging.warning("%s has no %s (trained before held-out splits): choosing one now "
                        "with --holdout_fraction=%g; this run's training may have read "
                        "those tracks.", train_dir, split_lib.SPLIT_FILE, cfg.holdout_fraction)
        if cfg.holdout_fraction == 0:
            return "all", None, "training tracks (no held-out split)"
        return "heldout", None, "tracks chosen as held out now (the run has no split.json)"
    if track_split.fraction == 0:
        logging.warning("%s was trained on every track (--holdout_fraction=0): real clips "
                        "come from training tracks, so the ceiling is optimistic.", train_dir)
        return "all", track_split, "training tracks (--holdout_fraction=0)"
    if cfg.holdout_fraction == 0:
        # Asked for on the command line (the run's own data.json has its split's fraction):
        # the way to score genres that have no held-out track.
        logging.warning("--holdout_fraction=0: real clips come from every track of %s's "
                        "data, its training tracks included, so the ceiling is optimistic.",
                        train_dir)
        return "all", track_split, "every track, training ones included (--holdout_fraction=0)"
    return "heldout", track_split, "held-out tracks (split.json)"
