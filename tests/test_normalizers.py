"""Normalisers: GANSynth's constants, min/max fitting, round trips, save/load."""
import numpy as np
import pytest

from gansynth_tf import normalizers


def specgrams(n=6, seed=0):
    rng = np.random.RandomState(seed)
    logmag = rng.uniform(-13.8, 2.0, (n, 8, 16))
    inst = rng.uniform(-1.0, 1.0, (n, 8, 16))
    return np.stack([logmag, inst], -1).astype(np.float32)


def test_prespecified_constants_are_gansynths():
    norm = normalizers.PrespecifiedNormalizer()
    x = np.zeros((1, 1, 1, 2), np.float32)
    x[..., 0], x[..., 1] = -10.0, 0.5
    y = norm.normalize(x).numpy()
    np.testing.assert_allclose(y[..., 0], 0.0661371661726 * -10 + 0.113718730221, rtol=1e-6)
    np.testing.assert_allclose(y[..., 1], 0.4, rtol=1e-6)


@pytest.mark.parametrize("name", ["prespecified", "minmax", "minmax_freq", "none"])
def test_round_trip(name, tmp_path):
    data = specgrams()
    norm = normalizers.make_normalizer(name)
    if name.startswith("minmax"):
        norm.fit(data)
    y = norm.normalize(data).numpy()
    if name != "none":
        assert y.min() >= -1.0 and y.max() <= 1.0
    np.testing.assert_allclose(norm.denormalize(y).numpy(), data, atol=1e-4)
    path = str(tmp_path / "norm.json")
    norm.save(path)
    again = normalizers.load(path)
    np.testing.assert_allclose(again.normalize(data).numpy(), y, atol=1e-6)


def test_minmax_maps_extremes_to_the_margin():
    data = specgrams()
    y = normalizers.MinMaxNormalizer(margin=0.8).fit(data).normalize(data).numpy()
    for c in range(2):
        np.testing.assert_allclose([y[..., c].min(), y[..., c].max()], [-0.8, 0.8], atol=1e-5)


def test_minmax_per_frequency_fits_each_bin():
    data = specgrams()
    data[..., 3, 0] += 100.0  # one loud bin must not squash the others
    norm = normalizers.MinMaxNormalizer(per_frequency=True).fit(data)
    assert norm.a.shape == (16, 2)
    y = norm.normalize(data).numpy()
    np.testing.assert_allclose(y[..., 0].min(axis=(0, 1)), -0.8, atol=1e-5)
    np.testing.assert_allclose(y[..., 0].max(axis=(0, 1)), 0.8, atol=1e-5)


def test_fit_streams_batches_and_stops_at_num_examples():
    a, b = specgrams(4, 1), specgrams(4, 2)
    b[..., 0] = 50.0  # beyond num_examples: must be ignored
    streamed = normalizers.MinMaxNormalizer().fit(iter([a, b]), num_examples=4)
    direct = normalizers.MinMaxNormalizer().fit(a)
    np.testing.assert_allclose(streamed.a, direct.a)
    np.testing.assert_allclose(streamed.b, direct.b)


def test_errors():
    with pytest.raises(ValueError, match="unknown normaliser"):
        normalizers.make_normalizer("zscore")
    with pytest.raises(ValueError, match=r"\[n, time, freq, 2\]"):
        normalizers.MinMaxNormalizer().fit(np.zeros((2, 3)))
    with pytest.raises(FileNotFoundError, match="train_dir"):
        normalizers.load("/nonexistent/norm.json")
