"""Embedded synthetic genre dataset: six genres synthesised with numpy, no files shipped.

Clip `i` of genre `g` is a pure function of (seed, g, i, sample_rate, num_samples):
every random choice comes from ``np.random.default_rng([seed, g, i])``. Each genre has
its own rhythm, timbre and harmony, and draws tempo, key, mode, patterns and
instrument parameters per clip, so two clips of one genre differ audibly while the
genres stay separable on coarse spectrograms (32 frames x 64 bins is enough).

Run as a module to write a GTZAN-style folder of WAVs (``<output_dir>/genres/<genre>/
<genre>.00000.wav``) and optionally a spectrogram sheet::

    python -m gansynth_tf.synthetic --output_dir=/tmp/synth --clips_per_genre=20
    python -m gansynth_tf.synthetic --sheet=docs/synthetic_genres.png
"""

import os

import numpy as np
import soundfile

from gansynth_tf import cli
from gansynth_tf.synthetic_genres import RECIPES  # how each genre sounds

GENRES = ("ambient", "chiptune", "classical", "jazz", "rock", "techno")  # sorted: ids


def genre_index(genre):
    """Genre id (index into GENRES) from a name or an id."""
    if isinstance(genre, (int, np.integer)):
        if not 0 <= int(genre) < len(GENRES):
            raise ValueError(f"genre id {genre} out of range 0..{len(GENRES) - 1}")
        return int(genre)
    if genre not in GENRES:
        raise ValueError(f"unknown synthetic genre {genre!r}; choose from {GENRES}")
    return GENRES.index(genre)


def synthesize_clip(genre, index, seed=0, sample_rate=16000, num_samples=64000):
    """One clip: float32 [num_samples] in [-1, 1], peak 0.9; pure function of its args."""
    g = genre_index(genre)
    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be >= 0, got index={index}, seed={seed}")
    rng = np.random.default_rng([int(seed), g, int(index)])
    # Drum hits slice up to ~2 s of this noise at small offsets, even for short clips.
    noise = rng.standard_normal(max(int(num_samples), int(2 * sample_rate)) + 8000)
    x = RECIPES[GENRES[g]](rng, float(sample_rate), int(num_samples), noise)[:num_samples]
    x = x - np.mean(x)
    peak = np.max(np.abs(x))
    if peak > 0:
        x = x * (0.9 / peak)
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- files / sheet


def write_dataset(output_dir, clips_per_genre=10, seed=0, sample_rate=16000, clip_seconds=4.0):
    """Writes GTZAN-style `output_dir/genres/<genre>/<genre>.NNNNN.wav` (16-bit PCM).

    Returns the folder holding the genre folders (usable as --data_dir of `folder`).
    """
    root = os.path.join(output_dir, "genres")
    num_samples = int(round(clip_seconds * sample_rate))
    for genre in GENRES:
        folder = os.path.join(root, genre)
        os.makedirs(folder, exist_ok=True)
        for i in range(clips_per_genre):
            wave = synthesize_clip(genre, i, seed, sample_rate, num_samples)
            soundfile.write(os.path.join(folder, f"{genre}.{i:05d}.wav"), wave, sample_rate,
                            subtype="PCM_16")
    return root


def render_sheet(path, clips_per_genre=4, seed=0, sample_rate=16000, num_samples=64000):
    """Saves a PNG grid of log-mel spectrograms: one row per genre, one column per clip."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import librosa  # pylint: disable=import-outside-toplevel
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    seconds = num_samples / sample_rate
    # Up to 5 whole or round ticks whatever the clip length (the last row only).
    ticks = (np.linspace(0.0, seconds, 5) if seconds < 4 else
             np.arange(0, seconds + 1e-9, max(1, round(seconds / 4))))
    fig, axes = plt.subplots(len(GENRES), clips_per_genre,
                             figsize=(3.0 * clips_per_genre, 1.9 * len(GENRES)),
                             squeeze=False)
    for r, genre in enumerate(GENRES):
        for c in range(clips_per_genre):
            wave = synthesize_clip(genre, c, seed, sample_rate, num_samples)
            mel = librosa.feature.melspectrogram(y=wave, sr=sample_rate, n_fft=1024,
                                                 hop_length=256, n_mels=80)
            ax = axes[r, c]
            ax.imshow(librosa.power_to_db(mel, ref=np.max, top_db=70), origin="lower",
                      aspect="auto", cmap="magma",
                      extent=[0, seconds, 0, 80])
            ax.set_xticks([] if r < len(GENRES) - 1 else ticks)
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(genre, fontsize=11)
            if r == 0:
                ax.set_title(f"clip {c}", fontsize=9)
    fig.suptitle(f"Synthetic genres (seed {seed}): log-mel spectrograms, "
                 f"0-{sample_rate / 2000:g} kHz, {seconds:g} s", fontsize=12)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv=None):
    """CLI; flags live on a private FlagValues so importing this module defines none."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    fv = flags.FlagValues()
    flags.DEFINE_string("output_dir", None, "Where to write genres/<genre>/*.wav.",
                        flag_values=fv)
    flags.DEFINE_integer("clips_per_genre", 10, "Clips written per genre.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Dataset seed.", flag_values=fv)
    flags.DEFINE_integer("sample_rate", 16000, "Sample rate in Hz.", flag_values=fv)
    flags.DEFINE_float("clip_seconds", 4.0, "Clip length in seconds.", flag_values=fv)
    flags.DEFINE_string("sheet", None, "Optional PNG path for a spectrogram sheet.",
                        flag_values=fv)
    cli.parse_flags(fv, argv, "synthetic", __doc__)
    if not fv.output_dir and not fv.sheet:
        raise SystemExit("synthetic: give --output_dir=DIR (WAV folder) and/or "
                         "--sheet=FILE.png")
    if fv.output_dir:
        try:
            cli.make_writable_dir(fv.output_dir, "--output_dir")
        except cli.PathError as e:
            raise SystemExit(f"synthetic: {e}") from None
        root = write_dataset(fv.output_dir, fv.clips_per_genre, fv.seed, fv.sample_rate,
                             fv.clip_seconds)
        print(f"wrote {fv.clips_per_genre} clips x {len(GENRES)} genres to {root} "
              f"(use --dataset=folder --data_dir={fv.output_dir})")
    if fv.sheet:
        print("wrote", render_sheet(fv.sheet, seed=fv.seed, sample_rate=fv.sample_rate,
                                    num_samples=int(round(fv.clip_seconds * fv.sample_rate))))


if __name__ == "__main__":
    main()
