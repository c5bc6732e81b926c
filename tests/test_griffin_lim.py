"""Fast Griffin-Lim against librosa's on the same magnitudes."""
import librosa
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf import griffin_lim as gl
from gansynth_tf.spectral import SpecgramsHelper

N_FFT, HOP = 512, 128


def chord(length=8192, rate=16000):
    t = np.arange(length) / rate
    wave = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((220, 261.6, 329.6)))
    return (0.3 * wave * np.exp(-t)).astype(np.float32)


def test_istft_inverts_stft_exactly_including_edges():
    wave = np.random.RandomState(0).randn(2, 4096).astype(np.float32)
    frames = 1 + (4096 - N_FFT) // HOP
    wave = wave[:, :(frames - 1) * HOP + N_FFT]
    exact = gl.istft(gl.stft(wave, N_FFT, HOP), N_FFT, HOP, floor=0.0).numpy()
    np.testing.assert_allclose(exact[:, 16:-16], wave[:, 16:-16], atol=1e-4)
    back = gl.istft(gl.stft(wave, N_FFT, HOP), N_FFT, HOP).numpy()
    # The edges, covered by fewer windows, come back too (tf.signal.inverse_stft fades
    # them); by default only the outermost ~20% of a window, where the window-square sum
    # is below WSS_FLOOR of its peak (1.5 here), fade.
    keep = slice(N_FFT // 4, -N_FFT // 4)
    np.testing.assert_allclose(back[:, keep], wave[:, keep], atol=1e-4)
    ref = tf.signal.inverse_stft(gl.stft(wave, N_FFT, HOP), N_FFT, HOP, N_FFT,
                                 window_fn=tf.signal.inverse_stft_window_fn(HOP)).numpy()
    edge = slice(N_FFT // 4, N_FFT - HOP)
    assert np.abs(ref[:, edge] - wave[:, edge]).max() > 0.1
    # Inside the floor the output is scaled down, never up.
    outer = np.r_[0:N_FFT // 16, back.shape[1] - N_FFT // 16:back.shape[1]]
    assert np.all(np.abs(back[:, outer]) <= np.abs(wave[:, outer]) + 1e-4)


@pytest.mark.parametrize("hop", [HOP, N_FFT // 2])
def test_inconsistent_spectrogram_has_no_burst_at_the_ends(hop):
    # A spectrogram that is no signal's STFT (random magnitudes and phases, as a generator
    # or an unconverged Griffin-Lim gives) must not be amplified where the window is ~0.
    # Without the floor the outer samples came out ~5000x the middle's RMS.
    rng = np.random.RandomState(1)
    shape = (3, 30, N_FFT // 2 + 1)
    spec = tf.complex(rng.randn(*shape).astype(np.float32), rng.randn(*shape).astype(np.float32))

    def rms(x):
        return np.sqrt(np.mean(x ** 2, axis=1))

    def ends_over_middle(wave):
        e = N_FFT // 8
        ends = np.concatenate([wave[:, :e], wave[:, -e:]], axis=1)
        return rms(ends) / rms(wave[:, N_FFT:-N_FFT])

    assert np.all(ends_over_middle(gl.istft(spec, N_FFT, hop).numpy()) < 1.0)
    assert np.all(ends_over_middle(gl.istft(spec, N_FFT, hop, floor=0.0).numpy()) > 100)
    rebuilt = gl.griffin_lim(np.abs(spec.numpy()), N_FFT, hop, iterations=2).numpy()
    assert np.all(ends_over_middle(rebuilt) < 1.5)


@pytest.mark.parametrize("signal", ["chord", "noise"])
def test_as_good_as_librosa_for_the_same_iterations(signal):
    wave = chord() if signal == "chord" else (
        0.1 * np.random.RandomState(3).randn(8192).astype(np.float32))
    mag = tf.abs(gl.stft(wave[None], N_FFT, HOP)).numpy()
    # floor=0: the same least-squares inverse as librosa's, for a like-for-like comparison.
    ours = gl.griffin_lim(mag, N_FFT, HOP, iterations=32, momentum=0.99, floor=0.0).numpy()
    theirs = librosa.griffinlim(mag[0].T, n_iter=32, hop_length=HOP, win_length=N_FFT,
                                n_fft=N_FFT, window="hann", center=False, momentum=0.99,
                                init=None, length=ours.shape[1])[None].astype(np.float32)
    sc_ours = float(gl.spectral_convergence(mag, ours, N_FFT, HOP)[0])
    sc_theirs = float(gl.spectral_convergence(mag, theirs, N_FFT, HOP)[0])
    assert sc_ours <= sc_theirs + 1e-3, (sc_ours, sc_theirs)
    assert sc_ours < 0.5
    # The default floor only fades the outer samples: away from the first and last frames
    # the audio is the same.
    floored = gl.griffin_lim(mag, N_FFT, HOP, iterations=32, momentum=0.99).numpy()
    np.testing.assert_allclose(floored[:, N_FFT:-N_FFT], ours[:, N_FFT:-N_FFT], atol=1e-4)


def test_more_iterations_and_momentum_help():
    mag = tf.abs(gl.stft(chord()[None], N_FFT, HOP))

    def sc(**kw):
        return float(gl.spectral_convergence(mag, gl.griffin_lim(mag, N_FFT, HOP, **kw),
                                             N_FFT, HOP)[0])

    assert sc(iterations=32) < sc(iterations=4)
    assert sc(iterations=16, momentum=0.99) < sc(iterations=16, momentum=0.0)


def test_true_initial_phase_is_a_fixed_point():
    wave = chord()[None]
    spec = gl.stft(wave, N_FFT, HOP)
    out = gl.griffin_lim(tf.abs(spec), N_FFT, HOP, iterations=5,
                         initial_phase=tf.math.angle(spec)).numpy()
    # (The outer ~20% of a window fades: the output's window-sum floor.)
    np.testing.assert_allclose(out[:, N_FFT // 4:-N_FFT // 4],
                               wave[:, N_FFT // 4:out.shape[1] - N_FFT // 4], atol=1e-3)


def test_batched_shapes_and_helper_framing():
    h = SpecgramsHelper(4096, (32, 256))
    waves = tf.constant(np.stack([chord(4096), -chord(4096)])[..., None])
    logmag = h.waves_to_specgrams(waves)
    out = h.specgrams_to_waves_griffin_lim(logmag, iterations=16)
    assert out.shape == (2, 4096, 1)
    sc = h.spectral_convergence(waves, out).numpy()
    assert np.all(sc < 0.5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="bins"):
        gl.griffin_lim(tf.ones([1, 10, 100]), N_FFT, HOP)
    with pytest.raises(ValueError, match=r"\[batch, frames, bins\]"):
        gl.griffin_lim(tf.ones([10, N_FFT // 2 + 1]), N_FFT, HOP)


def test_plain_ops_path_matches_the_xla_path():
    # By default the loop runs under XLA (eagerly or inside a tf.function); export traces
    # inside plain_ops() so SavedModels need no XLA. Both must give the same audio.
    mag = np.abs(gl.stft(chord()[None], N_FFT, HOP).numpy())
    xla = tf.function(lambda m: gl.griffin_lim(m, N_FFT, HOP, iterations=16))(mag).numpy()
    with gl.plain_ops():
        plain_fn = tf.function(lambda m: gl.griffin_lim(m, N_FFT, HOP, iterations=16))
        plain = plain_fn(mag).numpy()
        ops = {op.type for op in plain_fn.get_concrete_function(mag).graph.get_operations()}
    assert "StatefulPartitionedCall" not in ops and "PartitionedCall" not in ops
    assert xla.shape == plain.shape == (1, 8192 - (8192 - N_FFT) % HOP)
    np.testing.assert_allclose(xla, plain, atol=2e-4 * np.abs(plain).max())
    eager = gl.griffin_lim(mag, N_FFT, HOP, iterations=16).numpy()
    np.testing.assert_allclose(eager, xla, atol=1e-6 * np.abs(plain).max() + 1e-7)
    assert gl.spectral_convergence(mag, xla, N_FFT, HOP).numpy()[0] < 0.3
