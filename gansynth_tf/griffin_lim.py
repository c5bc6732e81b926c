"""Batched fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013) in TensorFlow.

Framing is `tf.signal.stft`'s: frame i starts at sample i * frame_step, no centring, a
periodic Hann window. Shapes: magnitudes `[batch, frames, fft_length // 2 + 1]`, waves
`[batch, (frames - 1) * frame_step + frame_length]`.
"""

import contextlib
import threading

import tensorflow as tf

from gansynth_tf import tflog

_TINY = 1e-12


def stft(waves, frame_length, frame_step, fft_length=None):
    """`[batch, samples]` -> `[batch, frames, fft_length // 2 + 1]` complex64."""
    return tf.signal.stft(waves, frame_length, frame_step, fft_length or frame_length,
                          pad_end=False)


# Least squares divides each sample by the sum of squared windows over it. At a clip's ends
# that sum falls towards 0, and whatever part of a spectrogram is not the STFT of any signal
# (much of a generated one, and Griffin-Lim's even after its iterations) comes out
# multiplied by up to 1 / window there: a burst thousands of times the clip's level in its
# outer samples. For audio that is listened to, the sum is floored at WSS_FLOOR of its peak,
# which keeps the ends no louder than the middle (measured on random spectra: ~0.6x, against
# ~5000x unfloored; 0.01 would still give ~5x). A consistent spectrogram then still comes
# back exactly except in the outermost ~20% of a window's length at each end, which fades.
# Inside the Griffin-Lim iterations the exact inverse is kept: it is the projection the
# algorithm needs, and the next STFT multiplies by the window again, so nothing bursts there.
WSS_FLOOR = 0.1


def _inverse_window_sum(num_frames, frame_length, frame_step, floor=0.0):
    """`[samples]`: 1 / max(sum of squared Hann windows over each sample, floor * peak)."""
    window = tf.signal.hann_window(frame_length, periodic=True)
    wss = tf.signal.overlap_and_add(
        tf.tile(tf.square(window)[None, :], [num_frames, 1]), frame_step)
    return 1.0 / tf.maximum(wss, tf.maximum(floor * tf.reduce_max(wss), _TINY))


def _istft_with(stfts, window, inverse_wss, frame_length, frame_step, fft_length):
    frames = tf.signal.irfft(stfts, [fft_length])[..., :frame_length] * window
    return tf.signal.overlap_and_add(frames, frame_step) * inverse_wss


def istft(stfts, frame_length, frame_step, fft_length=None, floor=WSS_FLOOR):
    """Least-squares inverse of `stft` (Griffin & Lim 1984).

    Each sample is divided by the actual sum of squared windows over the frames that cover
    it, so the first and last frame_length - frame_step samples come back at full level
    (`tf.signal.inverse_stft` assumes the steady-state sum everywhere and fades them all),
    but for the outermost ones, where that sum is below `floor` of its peak (see WSS_FLOOR;
    floor=0 is the exact inverse, which bursts at the ends of inconsistent spectrograms).
    """
    fft_length = fft_length or frame_length
    window = tf.signal.hann_window(frame_length, periodic=True)
    inverse_wss = _inverse_window_sum(tf.shape(stfts)[-2], frame_length, frame_step, floor)
    return _istft_with(stfts, window, inverse_wss, frame_length, frame_step, fft_length)


def _griffin_lim_loop(magnitudes, cos0, sin0, frame_length, frame_step, fft_length,
                      iterations, momentum, floor):
    """The iterations on real tensors: `[b, frames, bins]` magnitudes and phase cos/sin.

    Why real arithmetic: the unit-phase step z / |z| on complex64 is several element-wise
    passes with complex casts; on (re, im) pairs it is a few fused real ones. The window
    and the window-sum normaliser are computed once, not per iteration.
    """
    window = tf.signal.hann_window(frame_length, periodic=True)
    num_frames = tf.shape(magnitudes)[-2]
    exact_wss = _inverse_window_sum(num_frames, frame_length, frame_step)
    accel = momentum / (1.0 + momentum)

    def rebuild(re, im, inverse_wss):
        return _istft_with(tf.complex(magnitudes * re, magnitudes * im), window, inverse_wss,
                           frame_length, frame_step, fft_length)

    def body(i, re, im, prev_re, prev_im):
        rebuilt = stft(rebuild(re, im, exact_wss), frame_length, frame_step, fft_length)
        r_re, r_im = tf.math.real(rebuilt), tf.math.imag(rebuilt)
        d_re, d_im = r_re - accel * prev_re, r_im - accel * prev_im
        # Unit phase d / (|d| + tiny): a zero d (silent bin) stays zero.
        inv = 1.0 / (tf.sqrt(d_re * d_re + d_im * d_im) + _TINY)
        return i + 1, d_re * inv, d_im * inv, r_re, r_im

    zeros = tf.zeros_like(magnitudes)
    _, re, im, _, _ = tf.while_loop(lambda i, *_: i < iterations, body,
                                    (tf.constant(0), cos0, sin0, zeros, zeros))
    return rebuild(re, im, _inverse_window_sum(num_frames, frame_length, frame_step, floor))


# The loop runs as one XLA cluster: on CPU it fuses the element-wise work between the FFTs
# and the framing ops (measured 1.5-2x at batch 1). Inside `plain_ops()` (used while a
# SavedModel is traced) the plain ops are used instead, so exported models do not depend on
# XLA where they are served.
_griffin_lim_xla = tf.function(_griffin_lim_loop, jit_compile=True, reduce_retracing=True)
_plain = threading.local()


@contextlib.contextmanager
def plain_ops():
    """Within this block (on this thread), `griffin_lim` builds plain TF ops, no XLA."""
    previous = getattr(_plain, "active", False)
    _plain.active = True
    try:
        yield
    finally:
        _plain.active = previous


def griffin_lim(magnitudes, frame_length, frame_step, fft_length=None, iterations=32,
                momentum=0.99, initial_phase=None, floor=WSS_FLOOR):
    """Waves whose STFT magnitude approaches `magnitudes`.

    Args:
      magnitudes: `[batch, frames, bins]` float32, bins = fft_length // 2 + 1.
      iterations: projections onto consistent spectrograms.
      momentum: 0 gives classic Griffin-Lim; 0.99 is the fast variant's usual choice.
      initial_phase: optional `[batch, frames, bins]` radians; zero phase if None (so the
        result is deterministic).
      floor: window-sum floor of the final inverse STFT (see WSS_FLOOR; 0 is exact least
        squares, as librosa's, whose unconverged output can burst at the clip's ends).
    Returns:
      `[batch, (frames - 1) * frame_step + frame_length]` float32.
    """
    magnitudes = tf.convert_to_tensor(magnitudes, tf.float32)
    if magnitudes.shape.rank != 3:
        raise ValueError(f"magnitudes must be [batch, frames, bins], got {magnitudes.shape}")
    fft_length = fft_length or frame_length
    if magnitudes.shape[-1] is not None and magnitudes.shape[-1] != fft_length // 2 + 1:
        raise ValueError(f"magnitudes have {magnitudes.shape[-1]} bins; fft_length "
                         f"{fft_length} needs {fft_length // 2 + 1}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if initial_phase is None:
        cos0, sin0 = tf.ones_like(magnitudes), tf.zeros_like(magnitudes)
    else:
        phase = tf.convert_to_tensor(initial_phase, tf.float32)
        cos0, sin0 = tf.cos(phase), tf.sin(phase)
    if getattr(_plain, "active", False):
        loop = _griffin_lim_loop
    else:
        tflog.start_xla_quietly()  # XLA's once-a-process start-up lines, off the console
        loop = _griffin_lim_xla
    return loop(magnitudes, cos0, sin0, int(frame_length), int(frame_step), int(fft_length),
                int(iterations), float(momentum), float(floor))


def spectral_convergence(target_magnitudes, waves, frame_length, frame_step, fft_length=None):
    """|| target - |STFT(waves)| ||_F / || target ||_F per example: `[batch]`."""
    est = tf.abs(stft(waves, frame_length, frame_step, fft_length))
    return (tf.norm(target_magnitudes - est, axis=[-2, -1])
            / (tf.norm(target_magnitudes, axis=[-2, -1]) + _TINY))
