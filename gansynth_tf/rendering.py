"""Writing generated audio: file-name stems, output levels, WAV files, spectrogram sheets.

:func:`safe_names` turns genre names into file-name stems (letters and digits of any
script stay), :func:`to_pcm_range` / :func:`write_wav` set a clip's level (the --normalize
modes) and write it, and :func:`spectrogram_sheet` draws a PNG grid of clips. Used by
:mod:`gansynth_tf.generate` (every name also imports from there), the demo, the
TensorBoard summaries and the long-form pieces.
"""

import unicodedata
import warnings

import numpy as np
import soundfile
import tensorflow as tf

NORMALIZE_MODES = ("peak", "limit", "clip", "none")
# "peak" level: -1 dBFS, the same as the SavedModel's ready-to-play `audio`.
PEAK_LEVEL = 10.0 ** (-1.0 / 20.0)
SHEET_MAX_COLUMNS = 8
# Leaves room for "_<i>.wav" under the usual 255-byte limit on a file name.
MAX_STEM_BYTES = 200


def _file_stem(name):
    """Letters, digits and marks of any script, '.', '-', '_' kept; other runs -> '_'."""
    chars, replacing = [], False
    # NFC first, so "e" + a combining accent and the precomposed letter give one name.
    for ch in unicodedata.normalize("NFC", name):
        if ch in "._-" or unicodedata.category(ch)[0] in "LNM":
            chars.append(ch)
            replacing = False
        elif not replacing:
            chars.append("_")
            replacing = True
    stem = "".join(chars).encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore")
    return stem.strip("._")


def safe_names(genres):
    """{genre: file-name stem}: see _file_stem; made unique with the genre id."""
    out, used = {}, set()
    for i, genre in enumerate(genres):
        stem = _file_stem(genre) or f"genre{i}"
        if stem in used:
            stem = f"{stem}-{i}"
        used.add(stem)
        out[genre] = stem
    return out


def to_pcm_range(audio, mode):
    """float [n] -> float [n] at the level `mode` asks for.

    mode: "peak" scales every clip or piece to peak at -1 dBFS (silence stays silent),
    "limit" scales down only one that would clip (quieter ones keep the generator's level),
    "clip" hard-clips at full scale, "none" keeps the generator's raw output (any level; WAVs
    are then written as 32-bit float).
    """
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"--normalize must be one of {NORMALIZE_MODES}, got {mode!r}")
    audio = np.nan_to_num(np.asarray(audio, np.float64))
    if mode == "none":
        return audio
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if mode == "peak" and peak > 1e-6:
        return audio * (PEAK_LEVEL / peak)
    if mode == "limit" and peak > 1.0:
        return audio * (PEAK_LEVEL / peak)
    return np.clip(audio, -1.0, 1.0)


def write_wav(path, audio, sample_rate, normalize="peak"):
    """16-bit PCM WAV at the `normalize` level, or 32-bit float for the raw output ("none")."""
    subtype = "FLOAT" if normalize == "none" else "PCM_16"
    soundfile.write(path, to_pcm_range(audio, normalize), int(sample_rate), subtype=subtype)
    return path


def log_spectrogram(audio, sample_rate):
    """[n] -> log10 power [frames, bins] (dB) with a ~32 ms power-of-two frame."""
    n = len(audio)
    nfft = int(2 ** np.round(np.log2(max(sample_rate * 0.032, 16))))
    nfft = max(16, min(nfft, 2 ** int(np.floor(np.log2(max(n, 16))))))
    hop = nfft // 4
    frames = tf.signal.stft(tf.constant(audio, tf.float32), nfft, hop, nfft, pad_end=True)
    power = tf.square(tf.abs(frames)).numpy()
    return 10.0 * np.log10(power + 1e-10)


def spectrogram_sheet(path, clips, titles, sample_rate, ncols=None, suptitle=None):
    """Saves a PNG grid of clip spectrograms (dB, 80 dB range per panel).

    Args:
      clips: list of [n] arrays; titles: one string per clip; ncols: panels per row
        (default min(len(clips), 8)).
    """
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    ncols = ncols or min(len(clips), SHEET_MAX_COLUMNS)
    nrows = -(-len(clips) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.0 * nrows + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (clip, title) in enumerate(zip(clips, titles)):
        ax = axes[k // ncols, k % ncols]
        spec = log_spectrogram(clip, sample_rate)
        top = float(np.max(spec))
        ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=[0, len(clip) / sample_rate, 0, sample_rate / 2000.0])
        ax.set_title(title, fontsize=8)
        ax.axis("on")
        ax.tick_params(labelsize=6)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    with warnings.catch_warnings():
        # Titles in a script the installed fonts lack draw as boxes, once per glyph and
        # call; the exact names are in the file names and the manifest.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
