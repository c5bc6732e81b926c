"""Held-out tracks: a deterministic split of a file source by track, never by clip.

A file is held out when a hash of its path relative to the data root falls below
``fraction``: the choice depends on the file's own name, so adding files to a corpus
leaves the other files where they were, and moving the corpus elsewhere changes nothing.
Each genre with at least two files gets at least one held-out file (its lowest hash) and
keeps at least one for training, and gives at most twice its share to the held-out set
(``round(2 * fraction * files)``, at least one; the lowest hashes), so that a small genre
keeps most of its files. That cap is the one way adding files can move another one (back
to training, when a lower hash joins a genre at its cap). ``FileSource`` chooses among
the files it can read, so an unreadable file is never a genre's only held-out or training
track; it goes on the training side, where training skips and counts it. The split is
saved in the run directory (``split.json``), reused on resume and read back by
``evaluate``, which scores real clips from held-out tracks only; training never reads them.
"""

import dataclasses
import hashlib
import json
import os
from typing import Dict, Tuple

from gansynth_tf import cli

SPLIT_FILE = "split.json"
DEFAULT_FRACTION = 0.12
SPLITS = ("train", "heldout", "all")


def file_key(path, root):
    """The name a file is split by: its path below `root`, '/'-separated."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel.startswith(".."):
        rel = os.path.abspath(path)
    return rel.replace(os.sep, "/")


def hash_unit(key):
    """A uniform number in [0, 1) from a file key (SHA-1, so stable across machines)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:15], 16) / float(16**15)


@dataclasses.dataclass(frozen=True)
class TrackSplit:
    """Which files of each genre are held out.

    Attributes:
      fraction: target share of each genre's files held out.
      genres: {genre: (held-out keys, training keys)}, keys from :func:`file_key`.
    """
    fraction: float
    genres: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]]

    def is_held_out(self, genre, key):
        """Held-out status of a file; a file the split has not seen follows the hash rule."""
        held, train = self.genres.get(genre, ((), ()))
        if key in held:
            return True
        if key in train:
            return False
        return hash_unit(key) < self.fraction

    def counts(self):
        """{genre: (held-out files, training files)}."""
        return {g: (len(h), len(t)) for g, (h, t) in self.genres.items()}

    def with_training(self, keyed_genres):
        """This split with the files of [(key, genre)] added to their genres' training side."""
        genres = {g: (h, tuple(t)) for g, (h, t) in self.genres.items()}
        for key, genre in keyed_genres:
            held, train = genres.get(genre, ((), ()))
            if key not in held and key not in train:
                genres[genre] = (held, tuple(sorted(train + (key,))))
        return TrackSplit(self.fraction, genres)

    def to_dict(self):
        return {"fraction": self.fraction,
                "genres": {g: {"held_out": list(h), "train": list(t)}
                           for g, (h, t) in sorted(self.genres.items())}}

    @classmethod
    def from_dict(cls, d):
        return cls(float(d["fraction"]),
                   {g: (tuple(v["held_out"]), tuple(v["train"]))
                    for g, v in d["genres"].items()})

    def save(self, train_dir):
        os.makedirs(train_dir, exist_ok=True)
        path = os.path.join(train_dir, SPLIT_FILE)
        return cli.write_json(path, self.to_dict(), indent=1, ensure_ascii=False)


def load(train_dir):
    """The split saved in `train_dir`, or None for a run that has none."""
    path = os.path.join(train_dir, SPLIT_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return TrackSplit.from_dict(json.load(f))


def choose(keyed_genres, fraction=DEFAULT_FRACTION):
    """A TrackSplit of [(key, genre)]; see the module docstring for the rule."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--holdout_fraction={fraction}: must be in [0, 1).")
    by_genre = {}
    for key, genre in keyed_genres:
        by_genre.setdefault(genre, []).append(key)
    out = {}
    for genre, keys in by_genre.items():
        keys = sorted(set(keys), key=hash_unit)
        held = [k for k in keys if hash_unit(k) < fraction]
        if fraction > 0 and not held and len(keys) >= 2:
            held = keys[:1]
        held = held[:min(len(keys) - 1, max(1, round(2 * fraction * len(keys))))]
        out[genre] = (tuple(sorted(held)), tuple(sorted(set(keys) - set(held))))
    return TrackSplit(float(fraction), out)
