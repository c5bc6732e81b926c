"""Spectral core: parity with GANSynth's own code, round trips, mel matrix, refined inverse."""
import os

import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf import spectral
from gansynth_tf.spectral import SpecgramsHelper, crop_or_pad

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "gansynth_golden.npz"))
TAGS = ["32x256", "64x128", "16x512_ov50_22k", "32x256_phase", "32x256_keepdc", "128x1024"]
CASES = [(tag, sig) for tag in TAGS for sig in ("chord", "sweep", "drums", "mix")
         if f"{sig}__{tag}__wave" in GOLDEN.files]
AUDIBLE = np.log(1e-3)  # compare IF only where the magnitude is not negligible


def golden_helper(tag, **kwargs):
    rows, bins, length, overlap, rate, ifreq, discard_dc = GOLDEN[f"params__{tag}"][:7]
    return SpecgramsHelper(int(length), (int(rows), int(bins)), overlap, int(rate), 1,
                           bool(ifreq), bool(discard_dc), **kwargs)


def batch(x):
    return tf.constant(np.asarray(x, np.float32)[None])


def circular_if_error(a, b):
    """IF / pi values that differ by 2 are the same phase step."""
    d = np.abs(a - b) % 2.0
    return np.minimum(d, 2.0 - d)


def sine(length, freq, rate=16000, amp=0.5):
    t = np.arange(length) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :, None]


def snr_db(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("tag", TAGS)
def test_framing_matches_gansynth(tag):
    h = golden_helper(tag)
    nfft, hop, pad_left, pad_right = GOLDEN[f"params__{tag}"][7:11]
    assert (h.nfft, h.hop, h.pad_left, h.pad_right) == (nfft, hop, pad_left, pad_right)


def test_paper_setting_framing():
    h = SpecgramsHelper(64000, (128, 1024), 0.75, 16000, 1)
    assert (h.nfft, h.hop, h.pad_left) == (2048, 512, 3072)


@pytest.mark.parametrize("tag", ["32x256", "64x128", "16x512_ov50_22k"])
def test_mel_matrices_match_gansynth(tag):
    h = golden_helper(tag)
    np.testing.assert_allclose(h.linear_to_mel_matrix(), GOLDEN[f"l2mel__{tag}"], atol=1e-6)
    np.testing.assert_allclose(h.mel_to_linear_matrix(), GOLDEN[f"mel2l__{tag}"], atol=1e-6)


@pytest.mark.parametrize("tag,sig", CASES)
def test_specgrams_match_gansynth(tag, sig):
    h = golden_helper(tag)
    key = f"{sig}__{tag}__"
    wave = batch(GOLDEN[key + "wave"][:, None])
    for ours, name in ((h.waves_to_specgrams(wave), "lin_specgram"),
                       (h.waves_to_melspecgrams(wave), "mel_specgram")):
        ours, ref = ours[0].numpy(), GOLDEN[key + name]
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours[..., 0], ref[..., 0], atol=1e-3, err_msg=name)
        audible = ref[..., 0] > AUDIBLE
        assert audible.mean() > 0.05
        assert circular_if_error(ours[..., 1], ref[..., 1])[audible].max() < 1e-2, name


@pytest.mark.parametrize("tag,sig", CASES)
def test_inverses_match_gansynth(tag, sig):
    h = golden_helper(tag)
    key = f"{sig}__{tag}__"
    lin = h.specgrams_to_waves(batch(GOLDEN[key + "lin_specgram"]))[0, :, 0].numpy()
    np.testing.assert_allclose(lin, GOLDEN[key + "lin_recon_wave"], atol=1e-4)
    mel = h.melspecgrams_to_waves(batch(GOLDEN[key + "mel_specgram"]))[0, :, 0].numpy()
    np.testing.assert_allclose(mel, GOLDEN[key + "mel_recon_wave"], atol=1e-4)
    m2l = h.melspecgrams_to_specgrams(batch(GOLDEN[key + "mel_specgram"]))[0].numpy()
    ref = GOLDEN[key + "mel_to_lin_specgram"]
    audible = ref[..., 0] > AUDIBLE
    np.testing.assert_allclose(m2l[..., 0][audible], ref[..., 0][audible], atol=1e-3)
    assert circular_if_error(m2l[..., 1], ref[..., 1])[audible].max() < 1e-2


@pytest.mark.parametrize("kind", ["short", "long"])
def test_crop_or_pad_matches_gansynth(kind):
    raw = GOLDEN[f"crop_or_pad__{kind}__raw"]
    out = crop_or_pad(raw[None, :, None], 4096, 1)[0, :, 0].numpy()
    np.testing.assert_array_equal(out, GOLDEN[f"crop_or_pad__{kind}__4096"])


def test_crop_or_pad_centres_and_tiles_channels():
    out = crop_or_pad(np.ones((2, 3, 1), np.float32), 8, 2).numpy()
    assert out.shape == (2, 8, 2)
    # pad 5: 2 on the right, 3 on the left
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(out[..., 0], out[..., 1])


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("shape,length", [((128, 1024), 64000), ((32, 256), 4096)])
def test_linear_round_trip_of_a_sine(shape, length):
    h = SpecgramsHelper(length, shape)
    wave = sine(length, 440.0)
    rec = h.specgrams_to_waves(h.waves_to_specgrams(tf.constant(wave))).numpy()
    interior = slice(h.nfft, -h.nfft)
    ref, est = wave[0, interior, 0], rec[0, interior, 0]
    assert snr_db(ref, est) >= 50.0
    assert np.sqrt(np.mean((ref - est) ** 2)) <= 1e-5


def test_if_of_a_pure_tone_is_its_frequency_in_bins():
    h = SpecgramsHelper(16384, (64, 512))
    bin_hz = h.sample_rate / h.nfft
    k = 80.3  # a tone between two bins
    spec = h.waves_to_specgrams(tf.constant(sine(16384, k * bin_hz)))[0].numpy()
    # Column j holds bin j + 1 (DC discarded). Per hop the tone's phase advances by
    # 2 pi k hop / nfft, seen modulo 2 pi.
    expected = (2 * np.pi * k * h.hop / h.nfft + np.pi) % (2 * np.pi) - np.pi
    for bin_index in (80, 81):
        inst = spec[8:, bin_index - 1, 1] * np.pi  # frames clear of the left padding
        np.testing.assert_allclose(np.angle(np.exp(1j * (inst - expected))), 0.0, atol=1e-3)
        # Converted back to a frequency around that bin's centre:
        nominal = 2 * np.pi * bin_index * h.hop / h.nfft
        deviation = np.angle(np.exp(1j * (inst - nominal)))
        freq_bins = bin_index + deviation * h.nfft / (2 * np.pi * h.hop)
        np.testing.assert_allclose(freq_bins, k, atol=1e-2)


def test_mel_matrix_shape_bands_and_normalisation():
    h = SpecgramsHelper(64000, (128, 1024), 0.75, 16000, 1)
    m = h.linear_to_mel_matrix()
    assert m.shape == (1024, 1024)
    assert np.all(m >= 0) and np.all(m <= 1.0 + 1e-9)
    assert np.all(m[0] == 0), "bin 0 (the discarded DC) carries no weight"
    # The 1.5-bin minimum width leaves no band empty, except GANSynth's band 0 at this size:
    # widening band 1 moves band 0's upper edge down onto its centre (a quirk we keep).
    assert np.all(m.sum(axis=0)[1:] > 0) and m[:, 0].sum() == 0
    # Centres rise monotonically with the mel index.
    peaks = np.argmax(m, axis=0)
    assert np.all(np.diff(peaks) >= 0)
    # Bands at the top span several linear bins; the lowest are narrow.
    widths = (m > 0).sum(axis=0)
    assert widths[-1] > widths[0]
    inv = h.mel_to_linear_matrix()
    assert inv.shape == (1024, 1024)
    colsum = (m @ m.T).sum(axis=0)
    assert colsum[0] == 0, "linear bin 0 (DC) has no mel weight; its inverse stays 0"
    scale = np.zeros_like(colsum)
    scale[colsum > 1e-8] = 1.0 / colsum[colsum > 1e-8]
    np.testing.assert_allclose(inv, m.T @ np.diag(scale), rtol=1e-9, atol=1e-12)
    # Half the mel downscale halves the mel bins.
    assert SpecgramsHelper(4096, (32, 256), mel_downscale=2).linear_to_mel_matrix().shape == (
        256, 128)


def test_helper_runs_inside_tf_function_and_tf_data():
    h = SpecgramsHelper(4096, (32, 256))
    waves = np.random.RandomState(0).randn(4, 4096, 1).astype(np.float32) * 0.1
    eager = h.waves_to_melspecgrams(tf.constant(waves)).numpy()
    graph = tf.function(h.waves_to_melspecgrams)(tf.constant(waves)).numpy()
    data = next(iter(tf.data.Dataset.from_tensor_slices(waves).batch(4).map(
        h.waves_to_melspecgrams))).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-5)
    np.testing.assert_allclose(data, eager, atol=1e-5)
    assert eager.shape == (4, 32, 256, 2)


def test_phase_channel_without_ifreq_is_phase_over_pi():
    h = SpecgramsHelper(4096, (32, 256), ifreq=False)
    wave = tf.constant(sine(4096, 1000.0))
    spec = h.waves_to_specgrams(wave)[0].numpy()
    stft = h.waves_to_stfts(wave)[0, :, :, 0].numpy()
    np.testing.assert_allclose(spec[..., 1], np.angle(stft) / np.pi, atol=1e-6)


# ----------------------------------------------------------------------------- refined inverse


def _mel_sc(h, wave):
    wave = tf.constant(wave)
    return float(h.spectral_convergence(wave, h.melspecgrams_to_waves(
        h.waves_to_melspecgrams(wave)))[0])


@pytest.fixture(scope="module")
def paper_signals():
    rate, length = 16000, 64000
    t = np.arange(length) / rate
    chirp = 0.5 * np.sin(2 * np.pi * (100 * t + (4000 - 100) / (2 * 4.0) * t ** 2))
    noise = 0.3 * np.random.RandomState(0).randn(length)
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    return {k: v.astype(np.float32)[None, :, None]
            for k, v in (("chirp", chirp), ("noise", noise), ("sine", tone))}


def test_refined_mel_inverse_beats_gansynth(paper_signals):
    magenta = SpecgramsHelper(64000, (128, 1024), 0.75, 16000, 1, mel_inversion="magenta")
    refined = SpecgramsHelper(64000, (128, 1024), 0.75, 16000, 1, mel_inversion="refined")
    sc = {(name, h.mel_inversion): _mel_sc(h, wave)
          for name, wave in paper_signals.items() for h in (magenta, refined)}
    # GANSynth's mel inverse is as poor as its reputation on the chirp.
    assert sc["chirp", "magenta"] > 0.3
    for name in ("chirp", "noise"):
        assert sc[name, "refined"] <= 0.5 * sc[name, "magenta"], (name, sc)
    assert sc["sine", "refined"] < sc["sine", "magenta"], sc


def test_nnls_magnitude_reproduces_the_mel_power():
    h = SpecgramsHelper(4096, (32, 256))
    wave = tf.constant(np.random.RandomState(1).randn(1, 4096, 1).astype(np.float32) * 0.2)
    mel_power = tf.exp(h.waves_to_melspecgrams(wave)[..., 0]) - spectral.LOG_EPSILON
    lin_power = h.mel_power_to_linear_power(mel_power)
    assert np.all(lin_power.numpy() >= 0)
    m = tf.constant(h.linear_to_mel_matrix(), tf.float32)
    refit = tf.tensordot(lin_power, m, 1)
    rel = tf.norm(refit - mel_power) / tf.norm(mel_power)
    naive = tf.tensordot(tf.maximum(tf.tensordot(mel_power, tf.constant(
        h.mel_to_linear_matrix(), tf.float32), 1), 0.0), m, 1)
    assert float(rel) < 0.05
    assert float(rel) < float(tf.norm(naive - mel_power) / tf.norm(mel_power))


# ----------------------------------------------------------------------------- errors


def test_bad_configuration_errors():
    with pytest.raises(ValueError, match="power of two"):
        SpecgramsHelper(4096, (32, 200))
    with pytest.raises(ValueError, match="covers only"):
        SpecgramsHelper(100000, (32, 256))
    with pytest.raises(ValueError, match="mel_inversion"):
        SpecgramsHelper(4096, (32, 256), mel_inversion="best")
    with pytest.raises(ValueError, match="overlap"):
        SpecgramsHelper(4096, (32, 256), overlap=1.0)


def test_bad_input_errors_are_clear():
    h = SpecgramsHelper(4096, (32, 256))
    with pytest.raises(ValueError, match="rank 3"):
        h.waves_to_specgrams(tf.zeros([4096, 1]))
    with pytest.raises(TypeError, match="float32"):
        h.waves_to_specgrams(tf.zeros([1, 4096, 1], tf.float64))
    with pytest.raises(ValueError, match="4096 samples"):
        h.waves_to_specgrams(tf.zeros([1, 4000, 1]))
    with pytest.raises(ValueError, match="channel"):
        h.waves_to_specgrams(tf.zeros([1, 4096, 2]))
    with pytest.raises(ValueError, match=r"\[batch, 32, 256, 2\]"):
        h.specgrams_to_waves(tf.zeros([1, 16, 256, 2]))
    with pytest.raises(ValueError, match="rank 4"):
        h.melspecgrams_to_waves(tf.zeros([32, 256, 2]))


def test_stack_channels_equals_tf_stack_and_keeps_gradients():
    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.normal(size=(2, 5, 7)).astype(np.float32)) for _ in range(2))
    out = spectral.stack_channels([a, b])
    assert out.shape == (2, 5, 7, 2)
    np.testing.assert_array_equal(out.numpy(), tf.stack([a, b], -1).numpy())
    # Unknown static shapes (inside a tf.function) keep what is known.
    f = tf.function(spectral.stack_channels,
                    input_signature=[[tf.TensorSpec([None, 5, None], tf.float32)] * 3])
    got = f([a, b, a])
    np.testing.assert_array_equal(got.numpy(), tf.stack([a, b, a], -1).numpy())
    assert f.get_concrete_function().structured_outputs.shape.as_list() == [None, 5, None, 3]
    with tf.GradientTape() as tape:
        tape.watch(a)
        y = tf.reduce_sum(spectral.stack_channels([a, b]) * [2.0, 3.0])
    np.testing.assert_allclose(tape.gradient(y, a).numpy(), 2.0)


def test_magnitude_matches_abs():
    z = tf.complex(*(tf.constant(np.random.default_rng(1).normal(size=(3, 64)).astype(np.float32)
                                * 100) for _ in range(2)))
    np.testing.assert_allclose(spectral.magnitude(z).numpy(), tf.abs(z).numpy(), rtol=1e-6)
