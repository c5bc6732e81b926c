"""Sources, labels and the tf.data pipeline on small real files in each layout."""
import collections
import csv
import ctypes
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from absl import flags

from gansynth_tf import audio_io, datasets, spectral, synthetic
from gansynth_tf.datasets import sources as datasets_sources

SR = 16000
L = 8000          # 0.5 s clips keep the tests fast
HAS_TFIO = audio_io.tfio_available()
CAN_WRITE_MP3 = "MP3" in soundfile.available_formats()
BACKENDS = ["soundfile"] + (["tfio"] if HAS_TFIO else [])


def _tone(seconds, rate, freq, stereo=False):
    t = np.arange(int(round(seconds * rate))) / rate
    x = 0.4 * np.sin(2 * np.pi * freq * t) + 0.1
    return np.stack([x, 0.5 * x], 1).astype(np.float32) if stereo else x.astype(np.float32)


def _cfg(data_dir, **kw):
    base = dict(dataset="folder", data_dir=None if data_dir is None else str(data_dir),
                sample_rate=SR, audio_length=L,
                shuffle_buffer=64, probe_threads=2)
    base.update(kw)
    return datasets.DataConfig(**base)


def _collect(ds):
    waves, labels = [], []
    for w, y in ds.as_numpy_iterator():
        waves.append(w)
        labels.append(int(y))
    return np.array(waves), np.array(labels)


@pytest.fixture(scope="module")
def gtzan(tmp_path_factory):
    """GTZAN-like tree: genres_original/<genre>/..., mixed formats, rates and bad files."""
    root = tmp_path_factory.mktemp("gtzan") / "Data"
    base = root / "genres_original"
    spec = {
        # genre: [(file name, seconds, rate, stereo, format, subtype)]
        "blues": [("blues.00000.wav", 1.6, 22050, True, "WAV", "PCM_16"),
                  ("blues.00001.wav", 1.0, 44100, False, "WAV", "PCM_24")],
        "hip hop": [("hip hop 00000.flac", 2.1, 48000, True, "FLAC", "PCM_16"),
                    ("short one.wav", 0.25, 16000, False, "WAV", "FLOAT")],
        "jazz": [("jazz.00000.ogg", 1.2, 22050, True, "OGG", "VORBIS"),
                 ("jazz.00001.wav", 1.0, 8000, False, "WAV", "PCM_U8")],
    }
    if CAN_WRITE_MP3:
        spec["jazz"].append(("jazz.00002.mp3", 1.1, 44100, True, "MP3", "MPEG_LAYER_III"))
    for i, (genre, items) in enumerate(sorted(spec.items())):
        os.makedirs(base / genre)
        for j, (name, sec, rate, stereo, fmt, sub) in enumerate(items):
            soundfile.write(str(base / genre / name), _tone(sec, rate, 200 + 150 * i + 40 * j,
                                                            stereo), rate, format=fmt,
                            subtype=sub)
    (base / "jazz" / "jazz.00054.wav").write_bytes(b"not a RIFF header at all" * 40)
    (base / "blues" / "blues.00099.wav").write_bytes(b"")
    (base / "blues" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (base / "blues" / "notes.txt").write_text("liner notes")
    os.makedirs(root / "images_original" / "blues")     # Kaggle's sibling folder
    return root, spec


def _expected_clips(spec):
    out = {}
    for genre, items in spec.items():
        n = 0
        for _, sec, rate, _, _, _ in items:
            frames = int(round(sec * rate))
            n += max(1, audio_io.resampled_length(frames, rate, SR) // L)
        out[genre] = n
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_folder_source_labels_counts_and_skips(gtzan, backend):
    root, spec = gtzan
    src = datasets.build_source(_cfg(root, audio_backend=backend))
    assert src.genres == ["blues", "hip hop", "jazz"]
    assert src.num_genres == 3
    assert src.class_counts == {g: len(items) for g, items in spec.items()}
    assert src.clip_counts == _expected_clips(spec)
    skipped = {os.path.basename(p): r for p, r in src.skipped}
    assert set(skipped) == {"jazz.00054.wav", "blues.00099.wav"}
    assert "not readable" in skipped["jazz.00054.wav"]
    assert "empty" in skipped["blues.00099.wav"]
    assert "skipped 2 input(s)" in src.summary()

    waves, labels = _collect(src.waves_dataset(training=False))
    assert waves.shape == (src.num_clips, L) and waves.dtype == np.float32
    assert collections.Counter(labels.tolist()) == {
        i: src.clip_counts[g] for i, g in enumerate(src.genres)}
    assert np.all(np.abs(waves) <= 1.0)

    train_waves, train_labels = _collect(src.waves_dataset(training=True))
    assert train_waves.shape == waves.shape
    assert sorted(train_labels.tolist()) == sorted(labels.tolist())


def test_backends_give_same_pipeline_samples(gtzan):
    if not HAS_TFIO:
        pytest.skip("tensorflow-io is not usable here")
    root, _ = gtzan
    a, la = _collect(datasets.build_source(_cfg(root, audio_backend="tfio"))
                     .waves_dataset(False))
    b, lb = _collect(datasets.build_source(_cfg(root, audio_backend="soundfile"))
                     .waves_dataset(False))
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_windows_resampling_and_padding(gtzan):
    root, _ = gtzan
    src = datasets.build_source(_cfg(root, audio_backend="soundfile", cache=False))
    path = str(root / "genres_original" / "hip hop" / "hip hop 00000.flac")
    full = audio_io.read_wave(path, SR, "soundfile")
    assert len(full) == audio_io.resampled_length(int(2.1 * 48000), 48000, SR)  # 33600
    waves, labels = _collect(src.waves_dataset(False))
    hip = waves[labels == 1]
    # 33600 samples -> 4 windows of 8000 at evenly spaced fixed offsets 0 .. 25600.
    offsets = np.round(np.arange(4) * (len(full) - L) / 3).astype(int)
    for w, o in zip(hip[:4], offsets):
        np.testing.assert_allclose(w, full[o:o + L], atol=1e-6)
    # 0.25 s clip: centred zero padding, as spectral.crop_or_pad.
    short = audio_io.read_wave(str(root / "genres_original" / "hip hop" / "short one.wav"),
                               SR, "soundfile")
    expect = spectral.crop_or_pad(short[None, :, None], L, 1).numpy()[0, :, 0]
    np.testing.assert_allclose(hip[4], expect, atol=1e-7)
    pad = L - len(short)
    assert np.all(hip[4][:pad - pad // 2] == 0) and np.all(hip[4][L - pad // 2:] == 0)


def test_training_offsets_are_random_and_eval_fixed(gtzan):
    root, _ = gtzan
    src = datasets.build_source(_cfg(root, audio_backend="soundfile", clips_per_file=3))
    e1, _ = _collect(src.waves_dataset(False))
    e2, _ = _collect(src.waves_dataset(False))
    np.testing.assert_array_equal(e1, e2)
    assert len(e1) == 3 * sum(src.class_counts.values())
    train = src.waves_dataset(True)
    t1 = {w.tobytes() for w, _ in train.as_numpy_iterator()}
    t2 = {w.tobytes() for w, _ in train.as_numpy_iterator()}
    assert len(t1 ^ t2) > 0.5 * len(t1)   # new offsets every epoch


def test_data_dir_may_point_at_genre_folders_directly(gtzan):
    root, spec = gtzan
    src = datasets.build_source(_cfg(root / "genres_original", audio_backend="soundfile"))
    assert src.genres == sorted(spec)


def test_balanced_sampling_oversamples_small_genres(tmp_path):
    for genre, n in [("big", 6), ("small", 1)]:
        os.makedirs(tmp_path / genre)
        for i in range(n):
            soundfile.write(str(tmp_path / genre / f"{i}.wav"), _tone(0.5, SR, 300 + 50 * i),
                            SR)
    src = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", balanced=True))
    assert src.clip_counts == {"big": 6, "small": 1}
    counts = collections.Counter()
    ds = src.waves_dataset(True)
    for _ in range(3):
        counts.update(int(y) for _, y in ds.as_numpy_iterator())
    assert counts[0] == 18 and counts[1] == 18      # weight 6.0 exactly for "small"
    # File sources balance by default; --nobalanced draws genres as they come.
    default = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile"))
    assert default.balanced and "balanced sampling: on" in default.summary()
    assert collections.Counter(int(y) for _, y in default.waves_dataset(True)
                               .as_numpy_iterator()) == {0: 6, 1: 6}
    plain = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", balanced=False))
    assert "balanced sampling: off" in plain.summary()
    assert collections.Counter(int(y) for _, y in plain.waves_dataset(True)
                               .as_numpy_iterator()) == {0: 6, 1: 1}


def test_file_failing_after_probe_is_dropped_not_fatal(tmp_path):
    for genre in ("a", "b"):
        os.makedirs(tmp_path / genre)
        for i in range(2):
            soundfile.write(str(tmp_path / genre / f"{i}.wav"), _tone(0.5, SR, 440), SR)
    src = datasets.build_source(_cfg(tmp_path, audio_backend=BACKENDS[-1], cache=False))
    (tmp_path / "a" / "1.wav").write_bytes(b"garbage now")
    waves, labels = _collect(src.waves_dataset(True))
    assert len(waves) == 3 and collections.Counter(labels.tolist()) == {0: 1, 1: 2}


def test_errors_are_clear(tmp_path):
    with pytest.raises(datasets.DataError, match="--data_dir is required"):
        datasets.build_source(_cfg(None))
    with pytest.raises(datasets.DataError, match="does not exist"):
        datasets.build_source(_cfg(tmp_path / "nope"))
    os.makedirs(tmp_path / "rock")
    soundfile.write(str(tmp_path / "rock" / "r.wav"), _tone(0.5, SR, 300), SR)
    with pytest.raises(datasets.DataError, match=r"found 1 genre folder\(s\).*\['rock'\]"):
        datasets.build_source(_cfg(tmp_path))
    os.makedirs(tmp_path / "pop")
    (tmp_path / "pop" / "readme.md").write_text("x")
    with pytest.raises(datasets.DataError, match="pop.*holds no audio files"):
        datasets.build_source(_cfg(tmp_path))
    (tmp_path / "pop" / "bad.wav").write_bytes(b"junk" * 10)
    with pytest.raises(datasets.DataError, match=r"\['pop'\] have no usable audio"):
        datasets.build_source(_cfg(tmp_path))
    with pytest.raises(datasets.DataError, match="--dataset"):
        datasets.build_source(datasets.DataConfig(dataset="gtzan"))


def test_files_in_formats_nothing_here_decodes_are_named(tmp_path, caplog):
    for genre in ("rock", "pop"):
        os.makedirs(tmp_path / genre / "Disc 1")
        for i in range(2):
            soundfile.write(str(tmp_path / genre / f"{genre} {i}.wav"), _tone(0.5, SR, 300), SR)
    (tmp_path / "rock" / "Disc 1" / "01 Song.M4A").write_bytes(b"\0" * 64)
    (tmp_path / "rock" / "02 Song.wma").write_bytes(b"\0" * 64)
    (tmp_path / "pop" / "cover.jpg").write_bytes(b"\0" * 64)
    with caplog.at_level("WARNING"):
        src = datasets.build_source(_cfg(tmp_path, holdout_fraction=0.0))
    assert src.class_counts == {"pop": 2, "rock": 2}
    warned = [r.getMessage() for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert len(warned) == 1 and "ignored 2 file(s)" in warned[0]
    assert ".m4a x1, .wma x1" in warned[0] and "jpg" not in warned[0]
    # An audio file beside the genre folders belongs to none: said, not used.
    soundfile.write(str(tmp_path / "stray one.wav"), _tone(0.5, SR, 300), SR)
    caplog.clear()
    with caplog.at_level("WARNING"):
        src = datasets.build_source(_cfg(tmp_path, holdout_fraction=0.0))
    assert src.class_counts == {"pop": 2, "rock": 2}
    assert any("1 audio file(s) directly in it (e.g. 'stray one.wav')" in r.getMessage()
               for r in caplog.records)
    os.makedirs(tmp_path / "jazz")
    (tmp_path / "jazz" / "a.m4a").write_bytes(b"\0" * 64)
    with pytest.raises(datasets.DataError, match=r"jazz.*holds no audio files \(1 other file"
                       r"\(s\), 1 of them in formats that cannot be decoded here: \.m4a; "
                       "convert"):
        datasets.build_source(_cfg(tmp_path))


def test_manifest_csv(tmp_path):
    os.makedirs(tmp_path / "audio files")
    rows = [("path", "genre")]
    for i, genre in enumerate(["metal", "folk", "metal"]):
        name = f"audio files/t {i}.wav"
        soundfile.write(str(tmp_path / name), _tone(0.5, 22050, 300 + i * 100), 22050)
        rows.append((name, genre))
    rows.append(("audio files/missing.wav", "folk"))
    with open(tmp_path / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    src = datasets.build_source(datasets.DataConfig(
        dataset="manifest", data_dir=str(tmp_path / "list.csv"), audio_length=L,
        audio_backend="soundfile"))
    assert src.genres == ["folk", "metal"]
    assert src.class_counts == {"folk": 1, "metal": 2}
    assert [os.path.basename(p) for p, _ in src.skipped] == ["missing.wav"]
    waves, labels = _collect(src.waves_dataset(False))
    assert waves.shape == (3, L) and sorted(labels.tolist()) == [0, 1, 1]


@pytest.mark.parametrize("header, delimiter", [
    (("label", "id", "filename"), ","),      # other names, other order, an extra column
    (("File", "Genre"), "\t"),               # tab-separated, capitalised
    (None, "\t"),                            # no header
])
def test_manifest_header_names_order_and_tabs(tmp_path, header, delimiter):
    os.makedirs(tmp_path / "a, b")
    names = []
    for i, genre in enumerate(["jazz", "pop"]):
        name = f"a, b/t {i}.flac"
        soundfile.write(str(tmp_path / name), _tone(0.5, 22050, 300 + i * 100), 22050)
        names.append((name, genre))
    if header is None or len(header) == 2:
        rows = [header] if header else []
        rows += [(name, genre) for name, genre in names]
    else:
        rows = [header] + [(genre, str(i), name) for i, (name, genre) in enumerate(names)]
    with open(tmp_path / "list.tsv", "w", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    src = datasets.build_source(datasets.DataConfig(
        dataset="manifest", data_dir=str(tmp_path / "list.tsv"), audio_length=L,
        audio_backend="soundfile"))
    assert src.genres == ["jazz", "pop"] and not src.skipped
    assert sorted(os.path.basename(p) for p in src.paths) == ["t 0.flac", "t 1.flac"]


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="soundfile/libsndfile here cannot write MP3")
def test_fma_metadata(tmp_path):
    audio = tmp_path / "fma_small"
    meta = tmp_path / "fma_metadata"
    os.makedirs(audio / "000")
    os.makedirs(audio / "001")
    os.makedirs(meta)
    tracks = {2: "Hip-Hop", 5: "Hip-Hop", 10: "Pop", 140: "Old-Time / Historic",
              1000: "Pop", 3: "", 7: "Rock"}
    for tid, genre in tracks.items():
        if tid == 7:
            continue                                   # listed but not in this subset
        path = audio / f"{tid:06d}"[:3] / f"{tid:06d}.mp3"
        soundfile.write(str(path), _tone(0.6, 44100, 200 + tid, True), 44100)
    (audio / "001" / "001000.mp3").write_bytes(b"\xff\xfb" + b"\0" * 600)  # no audio in it
    with open(meta / "tracks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "album", "set", "track", "track"])
        w.writerow(["", "title", "subset", "genre_top", "title"])
        w.writerow(["track_id", "", "", "", ""])
        for tid, genre in sorted(tracks.items()):
            w.writerow([tid, "Some, album", "small", genre, f"song {tid}"])
    src = datasets.build_source(datasets.DataConfig(
        dataset="manifest", data_dir=str(tmp_path), fma_metadata=str(meta), audio_length=L,
        audio_backend=BACKENDS[-1]))
    assert src.genres == ["Hip-Hop", "Old-Time / Historic", "Pop"]
    assert src.class_counts == {"Hip-Hop": 2, "Old-Time / Historic": 1, "Pop": 1}
    assert [os.path.basename(p) for p, _ in src.skipped] == ["001000.mp3"]
    waves, labels = _collect(src.waves_dataset(False))
    assert waves.shape == (4, L) and sorted(labels.tolist()) == [0, 0, 1, 2]


def _nsynth_example(pitch, family, source, value):
    audio = np.full(64000, value, np.float32)
    audio[0] = 0.5
    feat = {
        "note_str": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"])),
        "pitch": tf.train.Feature(int64_list=tf.train.Int64List(value=[pitch])),
        "velocity": tf.train.Feature(int64_list=tf.train.Int64List(value=[100])),
        "audio": tf.train.Feature(float_list=tf.train.FloatList(value=audio)),
        "instrument_family_str": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[family.encode()])),
        "instrument_source_str": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[source.encode()])),
        "qualities": tf.train.Feature(int64_list=tf.train.Int64List(value=[0] * 10)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString()


def test_nsynth_labels_and_pitch_filter(tmp_path):
    path = str(tmp_path / "nsynth-train.tfrecord")
    notes = [(60, "guitar", "acoustic"), (20, "guitar", "electronic"), (84, "keyboard",
             "acoustic"), (90, "brass", "synthetic"), (24, "keyboard", "electronic")]
    with tf.io.TFRecordWriter(path) as w:
        for i, (p, fam, srcn) in enumerate(notes):
            w.write(_nsynth_example(p, fam, srcn, 0.01 * i))
    fam = datasets.build_source(datasets.DataConfig(dataset="nsynth", data_dir=str(tmp_path),
                                                    audio_length=L))
    assert fam.genres == ["brass", "guitar", "keyboard"]
    assert fam.class_counts == {"brass": 1, "guitar": 2, "keyboard": 2}
    waves, labels = _collect(fam.waves_dataset(False))
    assert waves.shape == (5, L) and labels.tolist() == [1, 1, 2, 0, 2]
    assert waves[0, 0] == 0.5 and np.allclose(waves[1, 1:], 0.01)   # crop from start
    pitch = datasets.build_source(datasets.DataConfig(
        dataset="nsynth", data_dir=path, nsynth_label="pitch", audio_length=L))
    assert pitch.genres == ["24", "60", "84"]        # 20 and 90 are outside 24..84
    _, labels = _collect(pitch.waves_dataset(False))
    assert labels.tolist() == [1, 2, 0]
    src = datasets.build_source(datasets.DataConfig(
        dataset="nsynth", data_dir=path, nsynth_label="instrument_source", audio_length=L))
    assert src.class_counts == {"acoustic": 2, "electronic": 2, "synthetic": 1}


def test_synthetic_source_is_the_synthesiser():
    cfg = datasets.DataConfig(synthetic_clips_per_genre=2, audio_length=L, seed=3)
    src = datasets.build_source(cfg)
    assert src.genres == list(synthetic.GENRES) and src.num_genres >= 6
    assert src.class_counts == {g: 2 for g in synthetic.GENRES}
    waves, labels = _collect(src.waves_dataset(False))
    assert waves.shape == (12, L)
    assert labels.tolist() == list(range(6)) * 2
    np.testing.assert_array_equal(waves[7], synthetic.synthesize_clip(1, 1, 3, SR, L))
    train, tl = _collect(src.waves_dataset(True))
    assert sorted(tl.tolist()) == sorted(labels.tolist()) and train.shape == waves.shape


def test_make_train_dataset_features_and_one_hot():
    src = datasets.build_source(datasets.DataConfig(synthetic_clips_per_genre=2,
                                                    audio_length=8192))
    helper = spectral.SpecgramsHelper(8192, (32, 128), overlap=0.0, sample_rate=SR)
    ds = datasets.make_train_dataset(src, 4, helper.waves_to_specgrams)
    assert ds.element_spec[0].shape.as_list() == [4, 32, 128, 2]
    assert ds.element_spec[1].shape.as_list() == [4, 6]
    batches = list(ds.take(5).as_numpy_iterator())     # 12 clips: repeats past one epoch
    for x, y in batches:
        assert x.dtype == np.float32 and np.isfinite(x).all()
        np.testing.assert_array_equal(y.sum(1), 1.0)
    once = list(datasets.make_train_dataset(src, 5, helper.waves_to_specgrams,
                                            training=False, repeat=False))
    assert len(once) == 2                              # 12 // 5, remainder dropped


def test_genre_map_roundtrip_and_flags(tmp_path):
    genres = ["hip hop", "jazz", "Old-Time / Historic"]
    path = datasets.save_genre_map(str(tmp_path / "run"), genres)
    assert os.path.basename(path) == "genres.json"
    assert datasets.load_genre_map(str(tmp_path / "run")) == genres
    with pytest.raises(datasets.DataError, match="genres.json"):
        datasets.load_genre_map(str(tmp_path))
    fv = flags.FlagValues()
    flags.DEFINE_string("dataset", "folder", "", flag_values=fv)
    flags.DEFINE_integer("audio_length", 1234, "", flag_values=fv)
    flags.DEFINE_boolean("balanced", True, "", flag_values=fv)
    flags.DEFINE_integer("unrelated", 1, "", flag_values=fv)
    fv(["prog"])
    cfg = datasets.config_from_flags(fv, seed=5)
    assert (cfg.dataset, cfg.audio_length, cfg.balanced, cfg.seed) == ("folder", 1234, True, 5)
    assert cfg.sample_rate == 16000


def test_cut_windows_are_the_slices_at_their_offsets():
    wave = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    offsets = np.array([0, 17, 900, 433], np.int32)
    out = datasets_sources._cut_windows(tf.constant(wave), 100, 4, tf.constant(offsets)).numpy()
    assert out.shape == (4, 100)
    for row, o in zip(out, offsets):
        np.testing.assert_array_equal(row, wave[o:o + 100])
    # A wave no longer than a window: k centre-padded copies (crop_or_pad).
    short = datasets_sources._cut_windows(tf.constant(wave[:60]), 100, 2,
                                          tf.constant([0, 0])).numpy()
    np.testing.assert_array_equal(short[0], short[1])
    np.testing.assert_array_equal(short[0, 20:80], wave[:60])
    assert not short[0, :20].any() and not short[0, 80:].any()


def test_window_is_the_slice_at_its_offset_or_the_padded_short_wave():
    wave = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    for start in (0, 17, 900):
        np.testing.assert_array_equal(
            datasets_sources._window(tf.constant(wave), 100, start).numpy(),
            wave[start:start + 100])
    # The same centre padding as _cut_windows (evaluation) for a wave shorter than a window.
    np.testing.assert_array_equal(
        datasets_sources._window(tf.constant(wave[:60]), 100, 0).numpy(),
        datasets_sources._cut_windows(tf.constant(wave[:60]), 100, 1,
                                      tf.constant([0])).numpy()[0])


def _buffer_address(tensor):
    """Address of a CPU tensor's data, read through DLPack (which exports without a copy)."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    managed = get(tf.experimental.dlpack.to_dlpack(tensor), b"dltensor")
    return ctypes.c_void_p.from_address(managed).value  # DLTensor.data comes first


@pytest.mark.parametrize("in_dataset", [False, True])
def test_window_owns_its_buffer_so_a_waiting_clip_frees_its_track(in_dataset):
    # TensorFlow's Slice returns a view into its input when the start is 64-byte aligned;
    # a window that is such a view keeps its whole decoded track resident while it waits
    # in the clip shuffle buffer.
    length, n = 32768, 200_000
    wave = tf.random.stateless_normal([n], seed=[0, 1])
    start = tf.constant(1024)  # 4096 bytes in: aligned
    if in_dataset:
        window = next(iter(tf.data.Dataset.from_tensors(wave).map(
            lambda w: datasets_sources._window(w, length, start))))
    else:
        window = datasets_sources._window(wave, length, start)
    np.testing.assert_array_equal(window.numpy(), wave.numpy()[1024:1024 + length])
    track, clip = _buffer_address(wave), _buffer_address(window)
    assert not track <= clip < track + 4 * n


def test_training_windows_are_track_slices_drawn_from_several_tracks_in_turn(tmp_path):
    # Each track a distinct ramp: a window's first sample names its track and its offset.
    n, tracks = 4 * L, 6
    ramps = {}
    for i in range(tracks):
        genre = f"g{i % 2}"
        os.makedirs(tmp_path / genre, exist_ok=True)
        ramp = (0.9 * (i + np.arange(n) / n) / tracks).astype(np.float32)
        soundfile.write(str(tmp_path / genre / f"t{i}.wav"), ramp, SR, subtype="FLOAT")
        ramps[i] = ramp
    src = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", balanced=False,
                                     shuffle_buffer=1, holdout_fraction=0.0))
    waves, labels = _collect(src.waves_dataset(True))
    assert len(waves) == tracks * 4  # n // L windows of each track, every epoch
    owners = []
    for w, y in zip(waves, labels):
        i = int(w[0] * tracks / 0.9)
        start = int(round((w[0] * tracks / 0.9 - i) * n))
        np.testing.assert_allclose(w, ramps[i][start:start + L], atol=1e-6)
        assert y == i % 2
        owners.append(i)
    # Without a clip shuffle the windows alternate over TRACK_INTERLEAVE tracks at a time.
    cycle = datasets_sources.TRACK_INTERLEAVE
    assert len(set(owners[:cycle])) == cycle
    assert collections.Counter(owners) == {i: 4 for i in range(tracks)}


def test_silent_windows_are_dropped_in_training_and_evaluation(tmp_path):
    # 1.5 s of silence, then 1.5 s of tone: 6 windows of 0.5 s, the first 3 silent.
    for genre in ("a", "b"):
        os.makedirs(tmp_path / genre)
        x = np.concatenate([np.zeros(int(1.5 * SR), np.float32), _tone(1.5, SR, 440)])
        soundfile.write(str(tmp_path / genre / "0.wav"), x, SR)
    src = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", balanced=False))
    assert src.clip_counts == {"a": 6, "b": 6}
    fixed = [w for w, _ in src.waves_dataset(False).as_numpy_iterator()]
    assert len(fixed) == 6 and all(np.sqrt(np.mean(w ** 2)) > 0.1 for w in fixed)
    trained = [w for w, _ in src.waves_dataset(True).as_numpy_iterator()]
    assert 0 < len(trained) < 12
    assert all(np.sqrt(np.mean(w ** 2)) >= 1e-3 for w in trained)
    keep_all = datasets.build_source(_cfg(tmp_path, audio_backend="soundfile",
                                          min_clip_dbfs=float("-inf")))
    assert len(list(keep_all.waves_dataset(False).as_numpy_iterator())) == 12


def test_an_audio_length_longer_than_most_files_is_warned_about(tmp_path, monkeypatch):
    # The case: an --audio_length longer than every file padded them silently.
    for genre in ("a", "b"):
        os.makedirs(tmp_path / genre)
        for i in range(2):
            soundfile.write(str(tmp_path / genre / f"{i}.wav"),
                            _tone(0.25 + 0.1 * i, SR, 440), SR)
    warnings = []
    monkeypatch.setattr(datasets_sources.logging, "warning",
                        lambda fmt, *args: warnings.append(fmt % args))
    datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", holdout_fraction=0))
    (line,) = [w for w in warnings if "shorter than one clip" in w]
    assert "4 of 4 files" in line and f"--audio_length={L} samples" in line, line
    assert f"longest file has {int(0.35 * SR)} samples" in line, line
    # One short file among long ones is no reason to warn.
    warnings.clear()
    for genre in ("a", "b"):
        for i in range(2, 5):
            soundfile.write(str(tmp_path / genre / f"{i}.wav"), _tone(1.0, SR, 440), SR)
    datasets.build_source(_cfg(tmp_path, audio_backend="soundfile", holdout_fraction=0))
    assert not [w for w in warnings if "shorter than one clip" in w], warnings
