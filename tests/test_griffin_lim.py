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
    back = gl.istft(gl.stft(wave, N_FFT, HOP), N_FFT, HOP).numpy()
    # The edges, covered by fewer windows, come back too (tf.signal.inverse_stft fades
    # them); only the few samples where the Hann window is ~0 lose float precision.
    np.testing.assert_allclose(back[:, 16:-16], wave[:, 16:-16], atol=1e-4)
    ref = tf.signal.inverse_stft(gl.stft(wave, N_FFT, HOP), N_FFT, HOP, N_FFT,
                                 window_fn=tf.signal.inverse_stft_window_fn(HOP)).numpy()
    edge = slice(16, N_FFT - HOP)
    assert np.abs(ref[:, edge] - wave[:, edge]).max() > 0.1


@pytest.mark.parametrize("signal", ["chord", "noise"])
def test_as_good_as_librosa_for_the_same_iterations(signal):
    wave = chord() if signal == "chord" else (
        0.1 * np.random.RandomState(3).randn(8192).astype(np.float32))
    mag = tf.abs(gl.stft(wave[None], N_FFT, HOP)).numpy()
    ours = gl.griffin_lim(mag, N_FFT, HOP, iterations=32, momentum=0.99).numpy()
    theirs = librosa.griffinlim(mag[0].T, n_iter=32, hop_length=HOP, win_length=N_FFT,
                                n_fft=N_FFT, window="hann", center=False, momentum=0.99,
                                init=None, length=ours.shape[1])[None].astype(np.float32)
    sc_ours = float(gl.spectral_convergence(mag, ours, N_FFT, HOP)[0])
    sc_theirs = float(gl.spectral_convergence(mag, theirs, N_FFT, HOP)[0])
    assert sc_ours <= sc_theirs + 1e-3, (sc_ours, sc_theirs)
    assert sc_ours < 0.5


def test_more_iterations_and_momentum_help():
    mag = tf.abs(gl.stft(chord()[None], N_FFT, HOP))
    sc = lambda **kw: float(gl.spectral_convergence(
        mag, gl.griffin_lim(mag, N_FFT, HOP, **kw), N_FFT, HOP)[0])
    assert sc(iterations=32) < sc(iterations=4)
    assert sc(iterations=16, momentum=0.99) < sc(iterations=16, momentum=0.0)


def test_true_initial_phase_is_a_fixed_point():
    wave = chord()[None]
    spec = gl.stft(wave, N_FFT, HOP)
    out = gl.griffin_lim(tf.abs(spec), N_FFT, HOP, iterations=5,
                         initial_phase=tf.math.angle(spec)).numpy()
    np.testing.assert_allclose(out[:, 16:-16], wave[:, 16:out.shape[1] - 16], atol=1e-3)


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
