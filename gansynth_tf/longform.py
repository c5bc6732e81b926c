"""Long-form pieces from a clip generator: a smooth latent walk, a genre path, crossfaded joins.

A piece of `seconds` is made of clips of the model's length L that start every
``hop = L - overlap`` samples. Clip i takes

* its latent from a walk: random anchors ``a_0, a_1, ...`` (row k of
  ``default_rng(seed).standard_normal``), clip i at walk position ``p = i * wander`` between
  anchors ``floor(p)`` and ``floor(p) + 1`` by slerp (``wander`` anchors per clip: 0 holds one
  latent for the whole piece, 1 draws a new one for every clip);
* its genre condition from a genre path ``[(seconds, genre id), ...]`` at the clip's centre:
  the one-hot of the point before, blended linearly into the next one (constant before the
  first point and after the last).

Consecutive clips are joined by an equal-power crossfade (sin / cos ramps) over the overlap:
clips of a GAN start with unrelated phases, so their sum adds power, not amplitude, and equal
power keeps the level flat across a join where a linear fade would dip by 3 dB.
"""

import numpy as np

from gansynth_tf import generate as generate_lib

DEFAULT_OVERLAP_SECONDS = 0.5
DEFAULT_WANDER = 0.25


def parse_genre_path(text, genres):
    """'ambient:0,rock:20' -> [(0.0, id), (20.0, id)] in time order; names from `genres`."""
    points = []
    for item in text.split(","):
        name, sep, when = item.strip().rpartition(":")
        if not sep or not name:
            raise ValueError(f"--genre_path entry {item!r} is not GENRE:SECONDS (e.g. "
                             f"--genre_path=ambient:0,rock:20)")
        try:
            seconds = float(when)
        except ValueError:
            raise ValueError(f"--genre_path entry {item!r}: {when!r} is not a number of "
                             "seconds") from None
        if name not in genres:
            raise ValueError(f"--genre_path: unknown genre {name!r}; this model's genres "
                             f"are {list(genres)}")
        points.append((seconds, list(genres).index(name)))
    times = [t for t, _ in points]
    if times != sorted(times) or len(set(times)) != len(times) or min(times) < 0:
        raise ValueError(f"--genre_path times {times} must be >= 0 and strictly increasing")
    return points


def genre_conditions(path, times, num_genres):
    """Conditions [len(times), num_genres] along a genre path at `times` (seconds)."""
    eye = np.eye(num_genres, dtype=np.float64)
    points = np.array([t for t, _ in path], np.float64)
    ids = [g for _, g in path]
    out = np.zeros([len(times), num_genres], np.float64)
    for i, t in enumerate(times):
        k = int(np.searchsorted(points, t, side="right")) - 1
        if k < 0:
            out[i] = eye[ids[0]]
        elif k >= len(points) - 1:
            out[i] = eye[ids[-1]]
        else:
            w = (t - points[k]) / (points[k + 1] - points[k])
            out[i] = (1.0 - w) * eye[ids[k]] + w * eye[ids[k + 1]]
    return out.astype(np.float32)


def latent_walk(seed, num_clips, latent_dim, wander=DEFAULT_WANDER):
    """Latents [num_clips, latent_dim] along a slerp walk through random anchors."""
    if wander < 0:
        raise ValueError(f"--wander={wander}: must be >= 0 (anchors per clip)")
    positions = np.arange(num_clips) * float(wander)
    anchors = generate_lib.latents(seed, int(np.floor(positions[-1])) + 2, latent_dim)
    out = np.empty([num_clips, latent_dim], np.float32)
    for i, p in enumerate(positions):
        k = int(np.floor(p))
        out[i] = generate_lib.slerp(anchors[k], anchors[k + 1], [p - k])[0]
    return out


def layout(seconds, sample_rate, clip_length, overlap):
    """(num_clips, hop, total samples) of a piece; overlap in samples, < clip_length / 2."""
    total = int(round(seconds * sample_rate))
    if total < 1:
        raise ValueError(f"--duration={seconds}: must be > 0")
    if not 0 <= overlap <= clip_length // 2:
        raise ValueError(f"overlap of {overlap} samples must be in [0, {clip_length // 2}] "
                         f"for clips of {clip_length}")
    hop = clip_length - overlap
    num = max(1, -(-(total - overlap) // hop))
    return num, hop, total


def crossfade_join(clips, overlap):
    """Clips [n, L] joined with equal-power crossfades of `overlap` samples -> [(n-1)*hop+L]."""
    clips = np.asarray(clips, np.float64)
    n, length = clips.shape
    hop = length - overlap
    out = np.zeros((n - 1) * hop + length, np.float64)
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / max(overlap, 1))
    for i, clip in enumerate(clips):
        c = clip.copy()
        if overlap and i > 0:
            c[:overlap] *= ramp
        if overlap and i < n - 1:
            c[length - overlap:] *= ramp[::-1]
        out[i * hop:i * hop + length] += c
    return out


def join_times(num_clips, hop, overlap, sample_rate):
    """Seconds at the centre of each crossfade."""
    return [(i * hop + overlap / 2.0) / sample_rate for i in range(1, num_clips)]


def long_form(sampler, seconds, genre_path, seed=0, wander=DEFAULT_WANDER,
              overlap_seconds=DEFAULT_OVERLAP_SECONDS, batch_size=16):
    """A piece of `seconds` from `sampler` (generate.Sampler) along `genre_path`.

    Returns (audio float64 [samples] as the generator made it, no normalisation; info dict
    with clips, hop, overlap and join times).
    """
    sr, length = sampler.sample_rate, sampler.audio_length
    overlap = min(int(round(overlap_seconds * sr)), length // 2)
    num, hop, total = layout(seconds, sr, length, overlap)
    centres = (np.arange(num) * hop + length / 2.0) / sr
    condition = genre_conditions(genre_path, centres, sampler.num_genres)
    z = latent_walk(seed, num, sampler.latent_dim, wander)
    clips = np.concatenate([sampler.audio(condition[i:i + batch_size], z[i:i + batch_size])
                            for i in range(0, num, batch_size)])
    clips = np.nan_to_num(clips)
    audio = crossfade_join(clips, overlap)[:total]
    if len(audio) < total:
        audio = np.pad(audio, [0, total - len(audio)])
    return audio, {"clips": num, "hop": hop, "overlap": overlap,
                   "joins": join_times(num, hop, overlap, sr)}


def seam_report(audio, sample_rate, joins, frame_seconds=0.02, window_seconds=0.04):
    """How much the joins stand out: level steps and spectral flux at joins vs inside clips.

    Frames of `frame_seconds` (Hann, hop half a frame) give two series: the step of the RMS
    level from the frame before (dB) and the spectral flux (mean positive change of the
    log-magnitude spectrum from the frame before). Each series is taken as its largest value
    within +-window_seconds of a point; the value at each join is compared with the same at
    every frame more than 0.25 s from all joins ("inside" the clips): its z-score and its
    percentile among the inside values. A join that stands out no more than the clips' own
    variation has a z-score near 0 and a percentile well under 100.
    """
    audio = np.asarray(audio, np.float64)
    frame = max(16, int(round(frame_seconds * sample_rate)))
    hop = frame // 2
    n = 1 + max(0, (len(audio) - frame) // hop)
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    frames = audio[idx] * np.hanning(frame)[None, :]
    level = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-10)
    logmag = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-5)
    series = {
        "level_step_db": np.concatenate([[0.0], np.abs(np.diff(level))]),
        "flux": np.concatenate([[0.0], np.mean(np.maximum(np.diff(logmag, axis=0), 0), 1)]),
    }
    centres = (np.arange(n) * hop + frame / 2.0) / sample_rate
    joins = np.asarray(joins, np.float64)
    if len(joins) == 0:
        return {"joins": 0}
    inside = np.min(np.abs(centres[:, None] - joins[None, :]), axis=1) > 0.25
    k = max(1, int(round(window_seconds * sample_rate / hop)))
    at_join = [int(np.argmin(np.abs(centres - j))) for j in joins]
    out = {"joins": int(len(joins)), "frames_inside": int(inside.sum())}
    for name, values in series.items():
        padded = np.pad(values, k, mode="edge")
        windowed = np.max(np.stack([padded[i:i + n] for i in range(2 * k + 1)]), axis=0)
        ref = windowed[inside]
        mu, sd = float(np.mean(ref)), float(np.std(ref) + 1e-12)
        z = [float((windowed[i] - mu) / sd) for i in at_join]
        pct = [float(np.mean(ref < windowed[i]) * 100.0) for i in at_join]
        out[name] = {"inside_mean": mu, "inside_std": sd, "join_z": z, "join_percentile": pct,
                     "max_join_z": float(np.max(z)), "mean_join_z": float(np.mean(z)),
                     "mean_join_percentile": float(np.mean(pct))}
    return out


def render_pieces(path, pieces, sample_rate, suptitle=None):
    """A PNG of long pieces, one wide spectrogram row each, joins marked under the time axis.

    pieces: [(title, audio [n], join seconds, [(seconds, label)] genre-path marks)].
    """
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    seconds = max(len(a) for _, a, _, _ in pieces) / sample_rate
    fig, axes = plt.subplots(len(pieces), 1, figsize=(min(24, 3 + 0.45 * seconds),
                                                      2.2 * len(pieces) + 0.5), squeeze=False)
    for ax, (title, audio, joins, marks) in zip(axes[:, 0], pieces):
        spec = generate_lib.log_spectrogram(np.asarray(audio, np.float32), sample_rate)
        top = float(np.max(spec))
        ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", vmin=top - 80,
                  vmax=top, extent=[0, len(audio) / sample_rate, 0, sample_rate / 2000.0])
        for j in joins:
            ax.plot([j], [0], marker="^", color="#1b9e77", markersize=4, clip_on=False)
        for t, label in marks:
            ax.axvline(t, color="white", lw=0.8, ls="--")
            ax.text(t, sample_rate / 2000.0 * 0.92, f" {label}", color="white", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("seconds (green marks: crossfaded joins)", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
