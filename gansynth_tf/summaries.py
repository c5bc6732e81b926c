"""TensorBoard summaries of generated audio: a labelled spectrogram image and a track per genre.

Per genre, at a training step:

* ``spectrogram/<genre>``: the generated log-magnitude (dB) and instantaneous frequency side
  by side, time in seconds and frequency in Hz (on the model's own HTK mel scale for mel
  features), each with a colour bar; a uint8 RGBA image drawn with matplotlib's Agg canvas
  and ``librosa.display.specshow``.
* ``audio/<genre>``: clips of the genre from different latents joined into one track by
  short equal-power crossfades (longform.crossfade_join), scaled by one gain into [-1, 1],
  so that several seconds can be heard at once and the clips keep their relative levels.

The image shows the first clips of that track at the times they are heard in it.

Shapes: features ``[clips, frames, bins, 2]`` normalised, as the generator draws them at the
final resolution; waves ``[clips, audio_length]``; a track ``[samples]`` float32.
"""

import warnings

import numpy as np
import tensorflow as tf

from gansynth_tf import generate as generate_lib
from gansynth_tf import longform, normalizers, spectral

# Crossfade between clips of a track: long enough to hide the step in phase and level
# between unrelated clips (no click), short enough that each clip is heard on its own.
CROSSFADE_SECONDS = 0.05
# A track's peak after scaling; a near-silent track (peak under SILENCE_PEAK) is scaled
# as if its peak were SILENCE_PEAK, so that a silent generator is heard as silent.
TRACK_PEAK = 0.99
SILENCE_PEAK = 1e-3
# Colour range of the log-magnitude panel, at most this many dB below its top so that quiet
# detail keeps some contrast (see magnitude_range_db).
MAX_RANGE_DB = 100.0
FREE_RANGE_DB = 80.0
# Clips sent through the inverse at once: bounds the memory of the refined mel inverse.
INVERSE_BATCH = 32
FIGURE_SIZE = (9.0, 3.0)  # inches; at DPI 900 x 300 pixels: fits TensorBoard at its actual size
DPI = 100


# ----------------------------------------------------------------------------- axes


def frame_times(representation):
    """Seconds [frames]: the centre of each STFT frame within a clip.

    GANSynth pads the clip on the left so that the last frame ends on its last sample;
    frame i covers samples [i * hop - pad_left, i * hop - pad_left + nfft).
    """
    h = representation.helper
    frames = representation.spec_shape[0]
    return (np.arange(frames) * h.hop - h.pad_left + h.nfft / 2.0) / h.sample_rate


def bin_frequencies(representation):
    """Hz [bins]: the frequency each feature row stands for.

    Linear: STFT bin k + 1 (the DC bin is dropped), k * sample_rate / nfft. Mel: the centroid
    of each band's filter over the STFT bins' frequencies (the bands are not exactly at
    their nominal mel centres: GANSynth widens the lowest ones to 1.5 bins).
    """
    h = representation.helper
    bins = representation.spec_shape[1]
    linear = (np.arange(bins) + 1.0) * h.sample_rate / h.nfft
    if not representation.mel:
        return linear
    weights = h.linear_to_mel_matrix()  # [linear bins, mel bins]
    total = weights.sum(axis=0)
    nominal = spectral.mel_to_hertz(np.linspace(0.0, spectral.hertz_to_mel(h.sample_rate / 2.0),
                                                weights.shape[1] + 2)[1:-1])
    centroid = (linear[:, None] * weights).sum(axis=0) / np.where(total > 0, total, 1.0)
    return np.maximum.accumulate(np.where(total > 0, centroid, nominal))


def _edges(centres, low, high):
    """Cell edges [n + 1] around sorted centres [n]: midpoints, the ends at low and high."""
    centres = np.asarray(centres, np.float64)
    return np.concatenate([[low], (centres[1:] + centres[:-1]) / 2.0, [high]])


def log_magnitude_db(representation, log_magnitude):
    """Channel 0 of denormalised features (natural log) -> dB.

    Linear features hold log |S| (20 log10 per unit), mel features log mel power
    (10 log10 per unit).
    """
    per_unit = (10.0 if representation.mel else 20.0) / np.log(10.0)
    return per_unit * np.asarray(log_magnitude, np.float64)


def _denormalize(representation, features):
    norm = normalizers.from_config(representation.normalizer)
    return norm.denormalize(tf.cast(features, tf.float32)).numpy()


def magnitude_range_db(representation, magnitude_db=None):
    """(low, high) dB of the log-magnitude colour bar.

    A fitted min/max normaliser maps the real data's range onto [-margin, margin]: that
    range, denormalised, is fixed for the run, so images compare across steps and show
    where the generator draws beyond what it was shown. Other normalisers (GANSynth's
    constants, none) say nothing about the data: then the drawn magnitude_db's own top and
    FREE_RANGE_DB below it. Either way at most MAX_RANGE_DB wide.
    """
    norm = normalizers.from_config(representation.normalizer)
    if isinstance(norm, normalizers.MinMaxNormalizer) and norm.fitted:
        bins = representation.spec_shape[1]
        ends = norm.margin * np.stack([-np.ones([1, bins, 2]), np.ones([1, bins, 2])])
        db = log_magnitude_db(representation,
                              norm.denormalize(tf.constant(ends, tf.float32)).numpy()[..., 0])
        low, high = float(db.min()), float(db.max())
    elif magnitude_db is not None and np.size(magnitude_db):
        high = float(np.max(magnitude_db))
        low = high - FREE_RANGE_DB
    else:
        raise ValueError("an unfitted normaliser gives no range: pass the drawn magnitude_db")
    return max(low, high - MAX_RANGE_DB), high


# ----------------------------------------------------------------------------- track


def crossfade_samples(representation):
    """Samples of each crossfade in a track: CROSSFADE_SECONDS, at most a quarter clip."""
    return min(round(CROSSFADE_SECONDS * representation.sample_rate),
               representation.audio_length // 4)


def track_clips(representation, seconds, min_clips=1):
    """Clips in a track of at least `seconds` (and at least `min_clips`)."""
    if seconds < 0:
        raise ValueError(f"audio summary length {seconds} s must be >= 0")
    if min_clips < 1:
        raise ValueError(f"clips per track {min_clips} must be >= 1")
    if seconds == 0:
        return int(min_clips)
    num, _, _ = longform.layout(seconds, representation.sample_rate,
                                representation.audio_length, crossfade_samples(representation))
    # layout counts the clips whose crossfaded join reaches `seconds`; whole clips are kept.
    return max(int(num), int(min_clips))


def track_length(representation, num_clips):
    """Samples in a track of num_clips joined clips."""
    length, overlap = representation.audio_length, crossfade_samples(representation)
    return (num_clips - 1) * (length - overlap) + length


def clip_starts(representation, num_clips):
    """Seconds [num_clips] at which each clip begins in its track."""
    hop = representation.audio_length - crossfade_samples(representation)
    return np.arange(num_clips) * hop / representation.sample_rate


def join_track(waves, overlap):
    """Clips [n, L] -> one float32 track [(n - 1) * (L - overlap) + L] within [-1, 1].

    Equal-power crossfades of `overlap` samples (GAN clips have unrelated phases, so the
    sum over a join adds power); one gain for the whole track sets its peak to TRACK_PEAK,
    keeping the clips' levels relative to each other. NaN and inf become 0.
    """
    waves = np.nan_to_num(np.asarray(waves, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    track = longform.crossfade_join(waves, overlap)
    peak = float(np.max(np.abs(track))) if track.size else 0.0
    return (track * (TRACK_PEAK / max(peak, SILENCE_PEAK))).astype(np.float32)


# ----------------------------------------------------------------------------- image


def _time_cells(representation, num_clips, total_clips):
    """Frame indices kept and cell edges (seconds) for the first num_clips clips of a track
    of total_clips, as they are heard in it: each clip from the centre of the crossfade
    before it to the centre of the one after (the track's ends at 0 and its last sample).
    """
    sr, length = representation.sample_rate, representation.audio_length
    half = crossfade_samples(representation) / 2.0 / sr
    centres, starts = frame_times(representation), clip_starts(representation, total_clips)
    keep, edges = [], [0.0]
    for k in range(num_clips):
        low = starts[k] + (half if k > 0 else 0.0)
        high = starts[k] + (length / sr - half if k < total_clips - 1 else length / sr)
        t = starts[k] + centres
        idx = np.where((t >= low) & (t < high))[0]
        keep.append(idx)
        edges = np.concatenate([edges[:-1], _edges(t[idx], low, high)])
    return keep, edges


def _mel_ticks(top_hz, count=7):
    """Hz ticks evenly spaced on the HTK mel scale up to top_hz, rounded to two digits."""
    hz = spectral.mel_to_hertz(np.linspace(0.0, spectral.hertz_to_mel(top_hz), count))
    rounded = [0.0] + [float(f"{v:.2g}") for v in hz[1:]]
    return sorted(set(rounded))


def _hz_label(value, _pos=None):
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def spectrogram_figure(features, representation, genre, step, total_clips=None, dpi=DPI):
    """The image of one genre: log-magnitude and IF of its clips, side by side.

    Args:
      features: normalised features [n, frames, bins, 2] (or [frames, bins, 2]) of clips
        0..n-1 of the genre's track, at the final resolution.
      representation: the run's Representation (rate, hop, mel or linear, normaliser).
      genre: name in the title; step: training step in the title.
      total_clips: clips in the whole track (default n); the clips are drawn at the times
        they are heard in it, with dashed lines at the crossfades between them.
    Returns:
      uint8 [1, H, W, 4] RGBA (H, W = FIGURE_SIZE * dpi), for tf.summary.image.
    """
    # Imported here: only drawing needs them, and librosa is slow to import. The object API
    # with its own Agg canvas: no pyplot state, no global backend switch.
    # pylint: disable=import-outside-toplevel
    from librosa import display
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    # pylint: enable=import-outside-toplevel

    features = np.asarray(features, np.float32)
    if features.ndim == 3:
        features = features[None]
    frames, bins = representation.spec_shape
    if features.ndim != 4 or features.shape[1:] != (frames, bins, 2):
        raise ValueError(f"features must be [clips, {frames}, {bins}, 2] for this "
                         f"representation, got shape {features.shape}")
    n = len(features)
    total_clips = n if total_clips is None else int(total_clips)
    if total_clips < n:
        raise ValueError(f"total_clips={total_clips} is less than the {n} clips drawn")
    keep, t_edges = _time_cells(representation, n, total_clips)
    raw = _denormalize(representation, features)
    log_mag = np.concatenate([log_magnitude_db(representation, raw[k, keep[k], :, 0])
                              for k in range(n)])
    ifreq = np.concatenate([raw[k, keep[k], :, 1] for k in range(n)])
    nyquist = representation.sample_rate / 2.0
    f_edges = np.clip(_edges(bin_frequencies(representation), 0.0, nyquist), 0.0, nyquist)
    low_db, high_db = magnitude_range_db(representation, log_mag)
    joins = [(clip_starts(representation, total_clips)[k]
              + crossfade_samples(representation) / 2.0 / representation.sample_rate)
             for k in range(1, n)]

    fig = Figure(figsize=FIGURE_SIZE, dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    panels = [
        (log_mag, "magma", low_db, high_db, "log-magnitude", "dB", None, "w"),
        # IF / pi is a phase step wrapped into [-1, 1]: a cyclic map shows +-1 alike.
        (ifreq, "twilight", -1.0, 1.0, "instantaneous frequency",
         "IF / \u03c0 (phase step per hop)", [-1, -0.5, 0, 0.5, 1], "k"),
    ]
    for ax, (data, cmap, vmin, vmax, title, unit, cticks, line) in zip(axes, panels):
        mesh = display.specshow(data.T, x_coords=t_edges, y_coords=f_edges, x_axis="s",
                                y_axis="mel" if representation.mel else "linear",
                                sr=representation.sample_rate, cmap=cmap, vmin=vmin,
                                vmax=vmax, ax=ax)
        if representation.mel:
            # The model's exact mel scale (HTK), so every band is one equal-height row.
            ax.set_yscale("function", functions=(
                lambda hz: spectral.hertz_to_mel(np.maximum(hz, 0.0)),
                lambda mel: spectral.mel_to_hertz(np.maximum(mel, 0.0))))
            ax.yaxis.set_major_locator(ticker.FixedLocator(_mel_ticks(nyquist)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_hz_label))
        ax.set_ylim(0.0, nyquist)
        ax.set_xlim(t_edges[0], t_edges[-1])
        for t in joins:
            ax.axvline(t, color=line, lw=0.8, ls="--", alpha=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
        bar = fig.colorbar(mesh, ax=ax, pad=0.01, ticks=cticks)
        bar.set_label(unit)
    axes[0].set_ylabel("frequency (Hz, mel scale)" if representation.mel
                       else "frequency (Hz)")
    axes[1].set_ylabel("")
    clips = "clip 1" if n == 1 else f"clips 1-{n}"
    fig.suptitle(f"{genre}  \u2014  step {int(step):,}  \u2014  {clips} of the audio track "
                 f"(dashed: crossfades)", fontsize=11)
    with warnings.catch_warnings():
        # A genre name in a script the fonts lack draws as boxes; the tag keeps the name.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        canvas.draw()
    return np.asarray(canvas.buffer_rgba(), np.uint8)[None].copy()


def audio_spectrogram_figure(audio, sample_rate, title, dpi=DPI, figsize=FIGURE_SIZE):
    """A labelled log-power spectrogram of a waveform, in the style of spectrogram_figure.

    For audio from anywhere (a SavedModel's output, a WAV), where spectrogram_figure needs a
    run's features: generate.log_spectrogram's ~32 ms frames, time (s) across, frequency
    (Hz) up, a dB colour bar spanning FREE_RANGE_DB below the loudest cell.

    Args:
      audio: float [samples]; sample_rate: Hz; title: the figure's title.
    Returns:
      a matplotlib Figure with its own Agg canvas (`fig.savefig(path)` writes a PNG).
    """
    # pylint: disable=import-outside-toplevel
    from librosa import display
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    # pylint: enable=import-outside-toplevel

    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be one non-empty channel [samples], got {audio.shape}")
    spec = generate_lib.log_spectrogram(audio, sample_rate)  # [frames, bins] dB
    nfft = 2 * (spec.shape[1] - 1)
    hop = nfft // 4
    seconds = len(audio) / sample_rate
    # Frame i covers samples [i * hop, i * hop + nfft). Frames that run past the end are
    # left out: the STFT pads them with zeros, and the cut shows as a broadband stripe.
    starts = np.arange(spec.shape[0]) * hop
    centres = (starts + nfft / 2.0) / sample_rate
    keep = max(1, int(np.sum(starts + nfft <= len(audio))))
    spec, centres = spec[:keep], centres[:keep]
    nyquist = sample_rate / 2.0
    t_edges = _edges(centres, 0.0, max(seconds, centres[-1]))
    f_edges = _edges(np.arange(spec.shape[1]) * sample_rate / nfft, 0.0, nyquist)
    high = float(np.max(spec))

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    mesh = display.specshow(spec.T, x_coords=t_edges, y_coords=f_edges, x_axis="s",
                            y_axis="linear", sr=sample_rate, cmap="magma",
                            vmin=high - FREE_RANGE_DB, vmax=high, ax=ax)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_hz_label))
    ax.set_ylim(0.0, nyquist)
    ax.set_xlim(t_edges[0], t_edges[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(mesh, ax=ax, pad=0.01).set_label("power (dB)")
    return fig


# ----------------------------------------------------------------------------- writing


def write_genre_summaries(writer, step, representation, genres, features, image_clips=2):
    """Writes `spectrogram/<genre>` and `audio/<genre>` for every genre at `step`.

    Args:
      writer: a tf.summary file writer.
      features: normalised [genres, clips, frames, bins, 2] at the final resolution:
        clip k of every genre's track, in order.
      image_clips: clips of each track drawn in its image (the first ones).
    Returns:
      {genre: track float32 [track_length(representation, clips)]} as written.
    """
    features = tf.convert_to_tensor(features, tf.float32)
    num_genres, clips = int(features.shape[0]), int(features.shape[1])
    if num_genres != len(genres):
        raise ValueError(f"features hold {num_genres} genres, but {len(genres)} are named")
    flat = tf.reshape(features, [num_genres * clips, *features.shape[2:]])
    waves = np.concatenate([representation.features_to_waves(flat[i:i + INVERSE_BATCH])
                            .numpy() for i in range(0, len(flat), INVERSE_BATCH)])
    waves = waves.reshape(num_genres, clips, -1)
    overlap = crossfade_samples(representation)
    shown = max(1, min(int(image_clips), clips))
    seconds = track_length(representation, clips) / representation.sample_rate
    tags = generate_lib.safe_names(genres)
    tracks = {}
    with writer.as_default(step=int(step)):
        for g, genre in enumerate(genres):
            image = spectrogram_figure(features[g, :shown].numpy(), representation, genre,
                                       step, total_clips=clips)
            tf.summary.image(f"spectrogram/{tags[genre]}", image, description=(
                f"{genre}: log-magnitude (dB) and instantaneous frequency of the first "
                f"{shown} of the {clips} clips in audio/{tags[genre]}, from fixed latents."))
            track = join_track(waves[g], overlap)
            tracks[genre] = track
            tf.summary.audio(f"audio/{tags[genre]}", track[None, :, None],
                             representation.sample_rate, description=(
                                 f"{genre}: {clips} clips from fixed latents, {seconds:.1f} s, "
                                 f"joined by {1000.0 * overlap / representation.sample_rate:.0f}"
                                 f" ms equal-power crossfades, one gain to a "
                                 f"{TRACK_PEAK} peak."))
    writer.flush()
    return tracks
