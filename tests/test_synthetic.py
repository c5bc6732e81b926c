"""The embedded synthetic genres: determinism, speed, separability, diversity, files."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from gansynth_tf import datasets, synthetic, synthetic_genres

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
N = 64000


def _coarse_logspec(wave, frames=32, bins=64):
    """Log-magnitude spectrogram pooled to [frames, bins], the quickstart's resolution."""
    nfft = 512
    hop = (len(wave) - nfft) // (frames - 1)
    idx = np.arange(frames)[:, None] * hop + np.arange(nfft)[None]
    mag = np.abs(np.fft.rfft(wave[idx] * np.hanning(nfft), axis=1))[:, :256]
    return np.log(mag.reshape(frames, bins, -1).mean(-1) + 1e-4)


@pytest.fixture(scope="module")
def features():
    """{genre: [clips, frames * bins]} for 8 clips per genre."""
    return {g: np.stack([_coarse_logspec(synthetic.synthesize_clip(g, i, 0, SR, N)).ravel()
                         for i in range(8)]) for g in synthetic.GENRES}


def test_genres_and_shapes():
    assert len(synthetic.GENRES) >= 6
    assert list(synthetic.GENRES) == sorted(synthetic.GENRES)
    assert sorted(synthetic_genres.RECIPES) == list(synthetic.GENRES)  # one recipe a genre
    for g in synthetic.GENRES:
        x = synthetic.synthesize_clip(g, 0, 0, SR, N)
        assert x.shape == (N,) and x.dtype == np.float32
        assert np.isfinite(x).all()
        assert np.max(np.abs(x)) == pytest.approx(0.9, abs=1e-6)
        assert abs(float(np.mean(x))) < 1e-3
    assert synthetic.synthesize_clip("rock", 0, 0, 22050, 5000).shape == (5000,)
    with pytest.raises(ValueError, match="unknown synthetic genre"):
        synthetic.synthesize_clip("polka", 0)


def test_deterministic_per_seed_genre_index():
    a = synthetic.synthesize_clip("jazz", 5, seed=2)
    np.testing.assert_array_equal(a, synthetic.synthesize_clip(3, 5, seed=2))
    assert not np.allclose(a, synthetic.synthesize_clip("jazz", 6, seed=2))
    assert not np.allclose(a, synthetic.synthesize_clip("jazz", 5, seed=3))


def test_genres_separable_at_low_resolution(features):
    """Nearest-centroid on 32x64 log spectrograms: train on 5 clips, test on 3."""
    genres = synthetic.GENRES
    train = np.concatenate([features[g][:5] for g in genres])
    mu, sd = train.mean(0), train.std(0) + 1e-6
    cents = np.stack([((features[g][:5] - mu) / sd).mean(0) for g in genres])
    correct = total = 0
    for k, g in enumerate(genres):
        test = (features[g][5:] - mu) / sd
        pred = np.argmin(((test[:, None] - cents[None]) ** 2).sum(-1), axis=1)
        correct += int(np.sum(pred == k))
        total += len(test)
    assert correct / total >= 0.9, f"accuracy {correct}/{total}"


def test_wide_variation_inside_each_genre(features):
    for g, f in features.items():
        c = np.corrcoef(f - f.mean(1, keepdims=True))
        off = c[~np.eye(len(f), dtype=bool)]
        # No two clips of a genre are near copies of each other.
        assert off.max() < 0.97, f"{g}: max within-genre correlation {off.max():.3f}"
        assert np.std(f, axis=0).mean() > 0.2, g


def test_write_dataset_cli_feeds_folder_source(tmp_path):
    synthetic.main(["prog", f"--output_dir={tmp_path}", "--clips_per_genre=2",
                    "--seed=4", "--sample_rate=8000", "--clip_seconds=0.5"])
    root = tmp_path / "genres"
    assert sorted(os.listdir(root)) == list(synthetic.GENRES)
    path = root / "techno" / "techno.00001.wav"
    info = soundfile.info(str(path))
    assert (info.samplerate, info.frames, info.subtype) == (8000, 4000, "PCM_16")
    data, _ = soundfile.read(str(path), dtype="float32")
    np.testing.assert_allclose(data, synthetic.synthesize_clip("techno", 1, 4, 8000, 4000),
                               atol=1.0 / 32767)
    src = datasets.build_source(datasets.DataConfig(
        dataset="folder", data_dir=str(tmp_path), sample_rate=8000, audio_length=4000,
        audio_backend="soundfile"))
    assert src.genres == list(synthetic.GENRES)
    assert src.class_counts == {g: 2 for g in synthetic.GENRES} and not src.skipped
    with pytest.raises(SystemExit, match="--output_dir"):
        synthetic.main(["prog"])


def test_help_and_bad_paths_end_in_a_message_not_a_traceback(tmp_path):
    help_run = subprocess.run([sys.executable, "-m", "gansynth_tf.synthetic", "--help"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0, help_run.stderr[-2000:]
    assert "--clips_per_genre" in help_run.stdout and "--sheet" in help_run.stdout
    assert "Traceback" not in help_run.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as e:
        synthetic.main(["prog", f"--output_dir={blocker}/sub"])
    assert f"--output_dir={blocker}/sub" in str(e.value.code)
