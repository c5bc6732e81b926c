"""Held-out tracks: the split rule, its stability, and that training never reads them."""
import os

import numpy as np
import pytest
import soundfile

from gansynth_tf import audio_io, datasets
from gansynth_tf import split as split_lib

SR = 8000


def _corpus(root, files_per_genre):
    """A folder per genre of short tones; names with spaces and non-ASCII letters."""
    paths = {}
    for g, (genre, n) in enumerate(files_per_genre.items()):
        os.makedirs(root / genre, exist_ok=True)
        for i in range(n):
            path = root / genre / f"track {i:02d} é.wav"
            t = np.arange(SR) / SR
            soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * (200 + 40 * g + i) * t))
                            .astype(np.float32), SR)
            paths.setdefault(genre, []).append(str(path))
    return paths


def _cfg(root, **kw):
    base = dict(dataset="folder", data_dir=str(root), sample_rate=SR, audio_length=2000,
                audio_backend="soundfile", cache=False)
    base.update(kw)
    return datasets.DataConfig(**base)


def test_choose_holds_out_about_the_fraction_and_keeps_both_sides():
    keys = [(f"g{g}/track{i}.ogg", f"g{g}") for g in range(3) for i in range(200)]
    s = split_lib.choose(keys, 0.12)
    for genre, (held, train) in s.genres.items():
        assert 0.07 < len(held) / 200 < 0.17, (genre, len(held))
        assert not set(held) & set(train) and len(held) + len(train) == 200
    # Small genres: at least one held out, at least one kept for training.
    small = split_lib.choose([("a/1.wav", "a"), ("a/2.wav", "a"), ("b/1.wav", "b"),
                              ("b/2.wav", "b"), ("b/3.wav", "b")], 0.12)
    assert small.counts() == {"a": (1, 1), "b": (1, 2)}
    single = split_lib.choose([("a/1.wav", "a"), ("b/1.wav", "b"), ("b/2.wav", "b")], 0.12)
    assert single.counts()["a"] == (0, 1)
    assert split_lib.choose(keys, 0.0).counts() == {f"g{g}": (0, 200) for g in range(3)}
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_lib.choose(keys, 1.0)


def _names(genre, count, below, fraction, ext=".wav"):
    """`count` file names in `genre` whose keys hash below `fraction` (or not: below=False)."""
    out, i = [], 0
    while len(out) < count:
        name = f"take {i} ü{ext}"
        if (split_lib.hash_unit(f"{genre}/{name}") < fraction) == below:
            out.append(name)
        i += 1
    return out


def test_a_genre_gives_at_most_twice_its_share_to_the_held_out_set():
    # Four files, three of which hash below 0.12: the hash alone would hold out three.
    low = _names("jazz", 3, True, 0.12)
    keys = [(f"jazz/{n}", "jazz") for n in low + _names("jazz", 1, False, 0.12)]
    s = split_lib.choose(keys, 0.12)
    assert s.counts() == {"jazz": (1, 3)}
    assert s.genres["jazz"][0] == (min((k for k, _ in keys), key=split_lib.hash_unit),)
    # Files added to the training side keep the held-out set and are not duplicated.
    more = s.with_training([("jazz/broken.mp3", "jazz"), (s.genres["jazz"][0][0], "jazz"),
                            ("new/x.wav", "new")])
    assert more.counts() == {"jazz": (1, 4), "new": (0, 1)}
    assert more.is_held_out("jazz", s.genres["jazz"][0][0])
    assert not more.is_held_out("jazz", "jazz/broken.mp3")
    # 20 files, 10 below 0.12: round(2 * 0.12 * 20) = 5 held out, the lowest hashes.
    keys = [(f"pop/{n}", "pop") for n in _names("pop", 10, True, 0.12)
            + _names("pop", 10, False, 0.12)]
    held, _ = split_lib.choose(keys, 0.12).genres["pop"]
    lowest = sorted((k for k, _ in keys), key=split_lib.hash_unit)[:5]
    assert sorted(held) == sorted(lowest)


def test_the_split_is_chosen_among_readable_files(tmp_path, caplog):
    # The corrupt file has the lowest hash of its genre, so a split of every file would hold
    # out it alone and leave evaluation without a readable held-out track of "rock".
    names = _names("rock", 1, True, 0.05, ext=".mp3") + _names("rock", 2, False, 0.5)
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / names[0]).write_bytes(b"not audio at all" * 100)
    t = np.arange(SR) / SR
    for name in names[1:]:
        soundfile.write(str(tmp_path / "rock" / name), 0.3 * np.sin(2 * np.pi * 300 * t), SR)
    _corpus(tmp_path, {"ambient": 3})
    train = datasets.build_source(_cfg(tmp_path), split="train")
    # The corrupt file goes on the training side, where training skips and counts it.
    held_keys, train_keys = train.track_split.genres["rock"]
    assert len(held_keys) == 1 and len(train_keys) == 2 and f"rock/{names[0]}" in train_keys
    assert [os.path.basename(p) for p, _ in train.skipped] == [names[0]]
    assert train.class_counts["rock"] == 1
    held = datasets.build_source(_cfg(tmp_path), split="heldout",
                                 track_split=train.track_split)
    assert held.class_counts == {"ambient": 1, "rock": 1}
    assert not set(held.paths) & set(train.paths)

    # A genre with one readable file trains on it, and start-up says evaluate cannot hold
    # it out.
    _corpus(tmp_path, {"ambient": 3, "solo": 1})
    with caplog.at_level("WARNING"):
        train = datasets.build_source(_cfg(tmp_path), split="train")
    assert train.track_split.counts()["solo"] == (0, 1)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "['solo'] have a single readable file" in messages

    # A genre of three files gives one to evaluation, a third of it: start-up says so, and
    # names only that genre, not one whose share is near the fraction asked for.
    _corpus(tmp_path / "small", {"ambient": 3, "large": 12})
    caplog.clear()
    with caplog.at_level("WARNING"):
        train = datasets.build_source(_cfg(tmp_path / "small"), split="train")
    counts = train.track_split.counts()
    assert counts["ambient"] == (1, 2) and counts["large"][0] <= 3
    costly = [r.getMessage() for r in caplog.records if "hold out far more" in r.getMessage()]
    assert len(costly) == 1 and "ambient (1 of 3 files)" in costly[0]
    assert "large" not in costly[0]


def test_split_is_stable_when_files_are_added_and_round_trips(tmp_path):
    keys = [(f"rock/t{i}.mp3", "rock") for i in range(40)]
    before = split_lib.choose(keys, 0.15)
    more = keys + [(f"rock/new{i}.mp3", "rock") for i in range(40)]
    after = split_lib.choose(more, 0.15)
    for key, genre in keys:   # every old file keeps its side
        assert before.is_held_out(genre, key) == after.is_held_out(genre, key)
    # The saved split decides for the files it lists; new files follow the same hash rule.
    before.save(str(tmp_path))
    loaded = split_lib.load(str(tmp_path))
    assert loaded == before
    for key, genre in more:
        assert loaded.is_held_out(genre, key) == after.is_held_out(genre, key)
    assert split_lib.load(str(tmp_path / "nothing")) is None


def test_keys_are_relative_to_the_root_so_moving_the_corpus_changes_nothing(tmp_path):
    assert split_lib.file_key(str(tmp_path / "jazz" / "a b.wav"), str(tmp_path)) == "jazz/a b.wav"
    assert split_lib.file_key("/x/corpus/jazz/a.wav", "/x/corpus") == \
        split_lib.file_key("/elsewhere/corpus/jazz/a.wav", "/elsewhere/corpus")


def test_training_never_reads_a_held_out_track(tmp_path, monkeypatch):
    paths = _corpus(tmp_path, {"ambient": 9, "rock": 5, "jazz": 2})
    cfg = _cfg(tmp_path, holdout_fraction=0.3)
    train = datasets.build_source(cfg, split="train")
    held = datasets.build_source(cfg, split="heldout")
    every = {p for ps in paths.values() for p in ps}
    assert set(train.paths) | set(held.paths) == every
    assert not set(train.paths) & set(held.paths)
    assert all(held.class_counts[g] >= 1 for g in paths)       # a track of every genre
    assert all(train.class_counts[g] >= 1 for g in paths)
    assert "held out for evaluation" in train.summary()

    read = []
    real_load = audio_io.load_audio_np
    monkeypatch.setattr(audio_io, "load_audio_np",
                        lambda path, rate: read.append(path) or real_load(path, rate))
    for _ in range(2):
        list(train.waves_dataset(True).as_numpy_iterator())
    datasets.sample_waves(train, 8)
    assert read and set(read) <= set(train.paths)
    assert not set(read) & set(held.paths)

    # Adding tracks keeps every existing track on its side of the saved split.
    train.track_split.save(str(tmp_path.parent / f"{tmp_path.name}_run"))
    _corpus(tmp_path, {"ambient": 14, "rock": 5, "jazz": 2})
    saved = split_lib.load(str(tmp_path.parent / f"{tmp_path.name}_run"))
    held_again = datasets.build_source(cfg, split="heldout", track_split=saved)
    assert set(held.paths) <= set(held_again.paths)
    train_again = datasets.build_source(cfg, split="train", track_split=saved)
    assert set(train.paths) <= set(train_again.paths)


def test_heldout_needs_two_files_per_genre(tmp_path):
    _corpus(tmp_path, {"ambient": 3, "rock": 1})
    with pytest.raises(datasets.DataError, match=r"no held-out track for genre\(s\) \['rock'\]"):
        datasets.build_source(_cfg(tmp_path), split="heldout")
    # Training still uses the lone track.
    assert datasets.build_source(_cfg(tmp_path), split="train").class_counts["rock"] == 1


def test_synthetic_heldout_clips_come_from_another_seed():
    cfg = datasets.DataConfig(dataset="synthetic", sample_rate=SR, audio_length=1024,
                              synthetic_clips_per_genre=3)
    train = [w for w, _ in datasets.build_source(cfg, "train").waves_dataset(False)
             .as_numpy_iterator()]
    held = [w for w, _ in datasets.build_source(cfg, "heldout").waves_dataset(False)
            .as_numpy_iterator()]
    assert len(train) == len(held)
    for a in train:
        assert all(np.max(np.abs(a - b)) > 1e-3 for b in held)
