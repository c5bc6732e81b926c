"""Decoding and resampling: formats, scaling, both backends, bad files."""
import tracemalloc

import numpy as np
import pytest
import soundfile

from gansynth_tf import audio_io

HAS_TFIO = audio_io.tfio_available()
CAN_WRITE_MP3 = "MP3" in soundfile.available_formats()


def _stereo(rate, seconds=0.6):
    t = np.arange(int(rate * seconds)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    right = 0.25 * np.sin(2 * np.pi * 1000.0 * t + 0.3)
    return np.stack([left, right], axis=1).astype(np.float32)


# name: (extension, format, subtype, rate, tolerance between backends / vs reference)
FORMATS = {
    "wav16": ("wav", "WAV", "PCM_16", 22050, 1e-5),
    "wav24": ("wav", "WAV", "PCM_24", 44100, 1e-5),
    "wav32": ("wav", "WAV", "PCM_32", 16000, 1e-5),
    "wavfloat": ("wav", "WAV", "FLOAT", 48000, 1e-5),
    "wavu8": ("wav", "WAV", "PCM_U8", 8000, 1e-5),
    "flac16": ("flac", "FLAC", "PCM_16", 44100, 1e-5),
    "flac24": ("flac", "FLAC", "PCM_24", 32000, 1e-5),
    "ogg": ("ogg", "OGG", "VORBIS", 22050, 1e-4),
    "opus": ("opus", "OGG", "OPUS", 48000, 1e-4),
    "mp3": ("mp3", "MP3", "MPEG_LAYER_III", 44100, 1e-4),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio io")        # a space in the path on purpose
    out = {}
    for name, (ext, fmt, subtype, rate, _) in FORMATS.items():
        if fmt == "MP3" and not CAN_WRITE_MP3:
            continue
        path = str(root / f"{name} clip.{ext}")
        soundfile.write(path, _stereo(rate), rate, format=fmt, subtype=subtype)
        out[name] = path
    return out


RATE_PAIRS = [(22050, 16000), (44100, 16000), (48000, 16000), (8000, 16000),
              (11025, 16000), (16000, 24000), (44056, 16000)]


@pytest.mark.parametrize("rates", RATE_PAIRS)
@pytest.mark.parametrize("n", [1, 3, 12345, 30001])
def test_resample_tf_matches_numpy_and_the_stated_length(rates, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ref = audio_io.resample_np(x, *rates)
    got = audio_io.resample_tf(x, *rates).numpy()
    assert ref.dtype == got.dtype == np.float32
    assert ref.shape == got.shape == (audio_io.resampled_length(n, *rates),)
    np.testing.assert_array_equal(got, ref)


def test_resampled_length_rounds_half_up():
    assert audio_io.resampled_length(7, 32000, 16000) == 4      # 3.5
    assert audio_io.resampled_length(12345, 22050, 16000) == 8958
    assert audio_io.resampled_length(1000, 48000, 16000) == 333
    assert audio_io.resampled_length(100, 16000, 16000) == 100


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 44056])
def test_resample_keeps_tone_and_removes_alias(rate):
    t = np.arange(rate) / rate
    # 1 kHz must survive, in phase; 12 kHz (9 kHz at 22.05 kHz) is above the new Nyquist
    # (8 kHz) and must be filtered out rather than folded back.
    alias = 12000 if rate > 24000 else 9000
    x = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * alias * t)
    y = audio_io.resample_tf(x.astype(np.float32), rate, 16000).numpy()
    ty = np.arange(len(y)) / 16000.0
    mid = slice(500, -500)
    err = y[mid] - np.sin(2 * np.pi * 1000 * ty[mid])
    assert np.max(np.abs(err)) < 2e-3
    # Where the alias would land (16000 - alias), nothing is left.
    spectrum = np.abs(np.fft.rfft(y[mid] * np.hanning(len(y[mid]))))
    freqs = np.fft.rfftfreq(len(y[mid]), 1 / 16000)
    folded = spectrum[np.argmin(np.abs(freqs - (16000 - alias)))]
    assert 20 * np.log10(folded / spectrum.max()) < -80


def test_decode_matches_librosa_load(files):
    librosa = pytest.importorskip("librosa")
    for name in ("wav16", "wav24", "flac16", "wavfloat"):
        ref, _ = librosa.load(files[name], sr=16000, mono=True)
        for backend in ("soundfile", "tfio") if HAS_TFIO else ("soundfile",):
            wave = audio_io.read_wave(files[name], 16000, backend=backend)
            assert wave.shape == ref.shape, (name, backend)
            np.testing.assert_allclose(wave, ref, atol=1e-5, err_msg=f"{name} {backend}")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_soundfile_backend_decodes_downmixes_and_resamples(files, name):
    if name not in files:
        pytest.skip("soundfile/libsndfile here cannot write MP3")
    _, _, _, rate, _ = FORMATS[name]
    wave = audio_io.read_wave(files[name], 16000, backend="soundfile")
    info = audio_io.probe_audio(files[name])
    assert info.channels == 2 and info.sample_rate == rate
    assert wave.dtype == np.float32
    assert wave.shape == (audio_io.resampled_length(info.frames, rate, 16000),)
    # Reference: the analytic down-mix at 16 kHz (lossy codecs and 8-bit get more slack).
    ref = _stereo(16000).mean(axis=1)
    n = min(len(ref), len(wave))
    mid = slice(400, n - 400)
    tol = {"wavu8": 2e-2, "ogg": 5e-2, "opus": 5e-2, "mp3": 5e-2}.get(name, 2e-3)
    if name == "mp3":
        # MP3 decoders add a start delay; align by cross-correlation first.
        lag = int(np.argmax(np.correlate(wave[:4000], ref[:3000], "valid")))
        wave = wave[lag:]
        n = min(len(ref), len(wave))
        mid = slice(400, n - 400)
    assert np.max(np.abs(wave[mid] - ref[mid])) < tol


@pytest.mark.skipif(not HAS_TFIO, reason="tensorflow-io is not usable here")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_backends_give_same_samples(files, name):
    if name not in files:
        pytest.skip("soundfile/libsndfile here cannot write MP3")
    a = audio_io.read_wave(files[name], 16000, backend="tfio")
    b = audio_io.read_wave(files[name], 16000, backend="soundfile")
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=FORMATS[name][4])


@pytest.mark.skipif(not HAS_TFIO, reason="tensorflow-io is not usable here")
def test_decoder_kinds_and_per_file_fallback(files):
    kinds = {name: audio_io.decoder_kind(audio_io.probe_audio(p), "tfio", 16000)
             for name, p in files.items()}
    assert kinds["wav16"] == audio_io.KIND_WAV_INT16
    assert kinds["wav24"] == audio_io.KIND_WAV_INT32
    # tensorflow-io reads every 32-bit WAV as float: 32-bit integer PCM goes to soundfile.
    assert kinds["wav32"] == audio_io.KIND_SOUNDFILE
    assert kinds["wavfloat"] == audio_io.KIND_WAV_FLOAT
    assert kinds["flac24"] == audio_io.KIND_FLAC_INT32
    assert kinds["ogg"] == audio_io.KIND_VORBIS
    # tensorflow-io has no 8-bit WAV decoder: that file falls back to soundfile.
    assert kinds["wavu8"] == audio_io.KIND_SOUNDFILE
    if "mp3" in kinds:
        assert kinds["mp3"] == audio_io.KIND_MP3
    assert all(audio_io.decoder_kind(audio_io.probe_audio(p), "soundfile", 16000)
               == audio_io.KIND_SOUNDFILE for p in files.values())


def test_integer_pcm_is_scaled_to_unit_range(tmp_path):
    path = str(tmp_path / "full.wav")
    x = np.array([-32768, -16384, 0, 16384, 32767] * 100, np.int16)
    soundfile.write(path, x, 16000, subtype="PCM_16")
    backends = ["soundfile"] + (["tfio"] if HAS_TFIO else [])
    for backend in backends:
        y = audio_io.read_wave(path, 16000, backend=backend)
        np.testing.assert_allclose(y, x / 32768.0, atol=1e-7)


def test_probe_rejects_bad_files(tmp_path):
    not_riff = tmp_path / "jazz.00054.wav"
    not_riff.write_bytes(b"this is not a RIFF file" * 20)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = tmp_path / "good.wav"
    soundfile.write(str(good), np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[:len(data) // 2])
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:44])
    zeros_mp3 = tmp_path / "broken track.mp3"
    zeros_mp3.write_bytes(b"\0" * 5000)
    expect = {not_riff: "not readable as audio", empty: "empty file",
              truncated: "truncated WAV", header_only: "holds no audio",
              zeros_mp3: "not readable as audio .no decoder recognises its contents"}
    for path, reason in expect.items():
        with pytest.raises(audio_io.AudioProbeError, match=reason) as caught:
            audio_io.probe_audio(str(path))
        # libsndfile says "File does not exist" of files it cannot decode; they exist.
        assert "does not exist" not in str(caught.value)
    assert audio_io.probe_audio(str(good)).frames == 16000


def test_audio_path_filter():
    assert audio_io.is_audio_path("/a/b c/rock.00001.wav")
    assert audio_io.is_audio_path("x.FLAC")
    assert not audio_io.is_audio_path("/a/.DS_Store")
    assert not audio_io.is_audio_path("/a/._rock.wav")
    assert not audio_io.is_audio_path("/a/notes.txt")


def test_resolve_backend_rejects_unknown():
    with pytest.raises(ValueError, match="audio_backend"):
        audio_io.resolve_backend("ffmpeg")
    assert audio_io.resolve_backend("soundfile") == "soundfile"


@pytest.mark.parametrize("rate, channels", [(48000, 2), (44100, 1), (16000, 2)])
def test_streamed_decode_equals_the_whole_file_decoded_at_once(tmp_path, monkeypatch,
                                                               rate, channels):
    # Blocks of 1000 frames: dozens of block seams inside 1.3 s.
    monkeypatch.setattr(audio_io, "STREAM_BLOCK_FRAMES", 1000)
    x = np.random.default_rng(rate).standard_normal((int(1.3 * rate) + 7, channels))
    path = str(tmp_path / f"long track {rate}.flac")
    soundfile.write(path, (0.2 * x).astype(np.float32), rate, subtype="PCM_24")
    whole, _ = soundfile.read(path, dtype="float32", always_2d=True)
    ref = audio_io.resample_np(whole.mean(axis=1), rate, 16000)
    got = audio_io.load_audio_np(path, 16000)
    assert got.dtype == np.float32
    assert got.shape == ref.shape == (audio_io.resampled_length(len(whole), rate, 16000),)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_streamed_decode_holds_the_track_only_once(tmp_path, monkeypatch):
    # 20 s of 48 kHz stereo -> 1.28 MB at 16 kHz mono. Decoding into a list of pieces and
    # concatenating them peaks at twice that; writing into the output in place, at the
    # output plus a few blocks (small here, so that they do not hide the difference).
    monkeypatch.setattr(audio_io, "STREAM_BLOCK_FRAMES", 4096)
    rate = 48000
    x = np.random.default_rng(0).standard_normal((20 * rate, 2)).astype(np.float32)
    path = str(tmp_path / "long stereo.flac")
    soundfile.write(path, 0.2 * x, rate, subtype="PCM_16")
    tracemalloc.start()
    try:
        got = audio_io.load_audio_np(path, 16000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (audio_io.resampled_length(20 * rate, rate, 16000),)
    assert peak < 1.4 * got.nbytes, (peak, got.nbytes)


@pytest.mark.parametrize("capacity", [0, 3, 10, 25])
def test_growing_buffer_returns_exactly_what_was_appended(capacity):
    pieces = [np.arange(n, dtype=np.float32) + 100 * i for i, n in enumerate([4, 0, 7, 1, 5])]
    buf = audio_io._GrowingBuffer(capacity)  # pylint: disable=protected-access
    for piece in pieces:
        buf.append(piece)
    got = buf.result()
    np.testing.assert_array_equal(got, np.concatenate(pieces))
    assert got.dtype == np.float32
    # An overcounted header leaves no slack pinned behind the result.
    assert got.base is None or got.base.nbytes == got.nbytes


def test_long_files_are_streamed_by_soundfile_whatever_the_backend():
    minutes = audio_io.STREAM_ABOVE_MB * 2**20 / (48000 * 2 * 4) / 60
    frames = minutes * 60 * 48000
    short = audio_io.AudioInfo("a.flac", "FLAC", "PCM_16", 48000, int(0.9 * frames), 2)
    long_ = audio_io.AudioInfo("b.flac", "FLAC", "PCM_16", 48000, int(1.1 * frames), 2)
    assert audio_io.decoder_kind(short, "tfio", 16000) == audio_io.KIND_FLAC_INT16
    assert audio_io.decoder_kind(long_, "tfio", 16000) == audio_io.KIND_SOUNDFILE
