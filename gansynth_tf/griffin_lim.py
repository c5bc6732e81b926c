"""Batched fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013) in TensorFlow.

Framing is `tf.signal.stft`'s: frame i starts at sample i * frame_step, no centring, a
periodic Hann window. Shapes: magnitudes `[batch, frames, fft_length // 2 + 1]`, waves
`[batch, (frames - 1) * frame_step + frame_length]`.
"""

import tensorflow as tf

_TINY = 1e-12


def stft(waves, frame_length, frame_step, fft_length=None):
    """`[batch, samples]` -> `[batch, frames, fft_length // 2 + 1]` complex64."""
    return tf.signal.stft(waves, frame_length, frame_step, fft_length or frame_length,
                          pad_end=False)


def istft(stfts, frame_length, frame_step, fft_length=None):
    """Least-squares inverse of `stft` (Griffin & Lim 1984).

    Each sample is divided by the actual sum of squared windows over the frames that cover
    it, so the first and last frame_length - frame_step samples come back at full level
    (`tf.signal.inverse_stft` assumes the steady-state sum everywhere and fades them).
    """
    fft_length = fft_length or frame_length
    window = tf.signal.hann_window(frame_length, periodic=True)
    frames = tf.signal.irfft(stfts, [fft_length])[..., :frame_length] * window
    waves = tf.signal.overlap_and_add(frames, frame_step)
    num_frames = tf.shape(stfts)[-2]
    wss = tf.signal.overlap_and_add(
        tf.tile(tf.square(window)[None, :], [num_frames, 1]), frame_step)
    return waves / tf.where(wss > _TINY, wss, tf.ones_like(wss))


def _unit(z):
    return z / tf.cast(tf.abs(z) + _TINY, z.dtype)


def griffin_lim(magnitudes, frame_length, frame_step, fft_length=None, iterations=32,
                momentum=0.99, initial_phase=None):
    """Waves whose STFT magnitude approaches `magnitudes`.

    Args:
      magnitudes: `[batch, frames, bins]` float32, bins = fft_length // 2 + 1.
      iterations: projections onto consistent spectrograms.
      momentum: 0 gives classic Griffin-Lim; 0.99 is the fast variant's usual choice.
      initial_phase: optional `[batch, frames, bins]` radians; zero phase if None (so the
        result is deterministic).
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
    mag = tf.cast(magnitudes, tf.complex64)
    if initial_phase is None:
        angles = tf.ones_like(mag)
    else:
        phase = tf.convert_to_tensor(initial_phase, tf.float32)
        angles = tf.complex(tf.cos(phase), tf.sin(phase))
    accel = tf.cast(momentum / (1.0 + momentum), tf.complex64)

    def body(i, angles, previous):
        rebuilt = stft(istft(mag * angles, frame_length, frame_step, fft_length),
                       frame_length, frame_step, fft_length)
        return i + 1, _unit(rebuilt - accel * previous), rebuilt

    _, angles, _ = tf.while_loop(lambda i, *_: i < iterations, body,
                                 (0, angles, tf.zeros_like(mag)))
    return istft(mag * angles, frame_length, frame_step, fft_length)


def spectral_convergence(target_magnitudes, waves, frame_length, frame_step, fft_length=None):
    """|| target - |STFT(waves)| ||_F / || target ||_F per example: `[batch]`."""
    est = tf.abs(stft(waves, frame_length, frame_step, fft_length))
    return (tf.norm(target_magnitudes - est, axis=[-2, -1])
            / (tf.norm(target_magnitudes, axis=[-2, -1]) + _TINY))
