"""Long-form pieces from a clip generator: a smooth latent walk, a genre path, crossfaded joins.

A piece of `seconds` is made of clips of the model's length L that start every
``hop = L - overlap`` samples. Clip i takes

* its latent from a walk: random anchors ``a_0, a_1, ...`` (rows of
  ``tf.random.stateless_normal`` for the seed, so the CLI and the SavedModel's
  ``generate_long`` draw the same ones), clip i at walk position ``p = i * wander`` between
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
import tensorflow as tf

from gansynth_tf import generate as generate_lib

DEFAULT_OVERLAP_SECONDS = 0.5
DEFAULT_WANDER = 0.25
# Ready-to-play level: every clip or piece peaks at -1 dBFS (headroom for lossy encoders).
PEAK_DBFS = -1.0


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


# The second word of the stateless seed of a walk's anchors: a piece's latents differ from
# generate_by_name's z for the same seed, and the CLI and the SavedModel draw the same ones.
WALK_SEED_STREAM = 7


def conditions_tf(point_times, point_ids, times, num_genres):
    """Conditions [len(times), num_genres] (float32 tensor) along a genre path.

    point_times [P] (strictly increasing seconds), point_ids [P] int; constant one-hot before
    the first point and after the last, linear blends between points.
    """
    point_times = tf.cast(point_times, tf.float64)
    times = tf.cast(times, tf.float64)
    onehot = tf.one_hot(tf.cast(point_ids, tf.int32), num_genres, dtype=tf.float64)
    last = tf.shape(point_times)[0] - 1
    idx = tf.searchsorted(point_times, times, side="right")
    lo = tf.clip_by_value(idx - 1, 0, last)
    hi = tf.clip_by_value(idx, 0, last)
    t_lo, t_hi = tf.gather(point_times, lo), tf.gather(point_times, hi)
    w = tf.where(t_hi > t_lo, (times - t_lo) / tf.maximum(t_hi - t_lo, 1e-12), 0.0)
    w = tf.clip_by_value(w, 0.0, 1.0)[:, None]
    return tf.cast((1.0 - w) * tf.gather(onehot, lo) + w * tf.gather(onehot, hi), tf.float32)


def genre_conditions(path, times, num_genres):
    """Conditions [len(times), num_genres] (numpy) along a parsed genre path."""
    return conditions_tf([t for t, _ in path], [g for _, g in path], times, num_genres).numpy()


def slerp_rows(a, b, t):
    """Row-wise slerp of a, b [n, d] at fractions t [n] (linear where nearly parallel)."""
    a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
    t = tf.cast(t, tf.float64)[:, None]
    norms = tf.norm(a, axis=1) * tf.norm(b, axis=1)
    cos = tf.reduce_sum(a * b, axis=1) / tf.maximum(norms, 1e-12)
    omega = tf.acos(tf.clip_by_value(cos, -1.0, 1.0))[:, None]
    sin = tf.sin(omega)
    safe = tf.where(sin < 1e-6, tf.ones_like(sin), sin)
    spherical = (tf.sin((1.0 - t) * omega) * a + tf.sin(t * omega) * b) / safe
    return tf.cast(tf.where(sin < 1e-6, (1.0 - t) * a + t * b, spherical), tf.float32)


def latent_walk_tf(seed, num_clips, latent_dim, wander=DEFAULT_WANDER):
    """Latents [num_clips, latent_dim] (float32 tensor) along a slerp walk.

    The anchors are `tf.random.stateless_normal` rows for seed (seed, WALK_SEED_STREAM).
    """
    positions = tf.range(num_clips, dtype=tf.float64) * tf.cast(wander, tf.float64)
    k = tf.cast(tf.floor(positions), tf.int32)
    anchors = tf.random.stateless_normal(
        tf.stack([k[-1] + 2, latent_dim]),
        seed=tf.stack([tf.cast(seed, tf.int64), tf.constant(WALK_SEED_STREAM, tf.int64)]))
    return slerp_rows(tf.gather(anchors, k), tf.gather(anchors, k + 1),
                      positions - tf.cast(k, tf.float64))


def latent_walk(seed, num_clips, latent_dim, wander=DEFAULT_WANDER):
    """Latents [num_clips, latent_dim] (numpy) along a slerp walk through random anchors."""
    if wander < 0:
        raise ValueError(f"--wander={wander}: must be >= 0 (anchors per clip)")
    return latent_walk_tf(seed, num_clips, latent_dim, wander).numpy()


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


def crossfade_join_tf(clips, overlap):
    """Clips [n, L] joined with equal-power crossfades of `overlap` samples -> [(n-1)*hop+L].

    float64 tensor; `overlap` a Python int (it fixes the graph's ramp).
    """
    clips = tf.cast(clips, tf.float64)
    length = int(clips.shape[1])
    n = tf.shape(clips)[0]
    hop = length - overlap
    if overlap:
        ramp = tf.sin(0.5 * np.pi * (tf.range(overlap, dtype=tf.float64) + 0.5) / overlap)
        ones = tf.ones([length - 2 * overlap], tf.float64)
        middle = tf.ones([n, length], tf.float64) * tf.concat([ramp, ones, ramp[::-1]], 0)
        # The first clip keeps its start and the last its end at full level.
        first = tf.cast(tf.range(n) == 0, tf.float64)[:, None]
        last = tf.cast(tf.range(n) == n - 1, tf.float64)[:, None]
        head = tf.concat([tf.ones([overlap], tf.float64), tf.zeros([length - overlap],
                                                                   tf.float64)], 0)
        tail = head[::-1]
        gain = middle + first * head * (1.0 - middle) + last * tail * (1.0 - middle)
        clips = clips * gain
    return tf.signal.overlap_and_add(clips, hop)


def crossfade_join(clips, overlap):
    """Clips [n, L] joined with equal-power crossfades of `overlap` samples -> [(n-1)*hop+L]."""
    return crossfade_join_tf(np.asarray(clips, np.float64), int(overlap)).numpy()


def peak_normalize_tf(audio, peak_dbfs=PEAK_DBFS):
    """audio [..., samples] scaled so that each row peaks at `peak_dbfs`; silence stays."""
    audio = tf.convert_to_tensor(audio)
    peak = tf.reduce_max(tf.abs(audio), axis=-1, keepdims=True)
    target = tf.cast(10.0 ** (peak_dbfs / 20.0), audio.dtype)
    return tf.where(peak > 1e-6, audio * target / tf.maximum(peak, 1e-6), audio)


def parse_genre_path_tf(text, genre_names):
    """The graph version of parse_genre_path, for a SavedModel signature.

    text: string scalar, "GENRE" (the whole piece) or "GENRE:SECONDS,GENRE:SECONDS,...".
    Returns (times float64 [P], ids int32 [P]); an unknown name or times that are not
    strictly increasing from >= 0 fail with an InvalidArgumentError saying so.
    """
    items = tf.strings.strip(tf.strings.split(text, ","))
    timed = tf.strings.regex_full_match(items, ".*:[^:]*")
    names = tf.strings.strip(tf.where(timed, tf.strings.regex_replace(items, ":[^:]*$", ""),
                                      items))
    times = tf.strings.to_number(
        tf.where(timed, tf.strings.regex_replace(items, "^.*:", ""), "0"), tf.float64)
    matches = tf.equal(names[:, None], tf.constant(list(genre_names))[None, :])
    found = tf.reduce_any(matches, axis=1)
    checks = [
        tf.debugging.Assert(tf.reduce_all(found), [
            f"genre_path: unknown genre name(s); this model knows: [{', '.join(genre_names)}]; "
            "unknown:", tf.boolean_mask(names, tf.logical_not(found))]),
        tf.debugging.Assert(
            tf.reduce_all(times[1:] > times[:-1]) & tf.reduce_all(times >= 0.0),
            ["genre_path times must be >= 0 and strictly increasing, e.g. "
             "'ambient:0,rock:20'; got", times]),
    ]
    with tf.control_dependencies(checks):
        ids = tf.cast(tf.argmax(tf.cast(matches, tf.int32), axis=1), tf.int32)
    return times, ids


def long_form_tf(waves_fn, genre_path, seed, seconds, genre_names, sample_rate, clip_length,
                 latent_dim, wander=DEFAULT_WANDER, overlap_seconds=DEFAULT_OVERLAP_SECONDS,
                 batch_size=16, max_seconds=600.0):
    """The graph version of long_form: raw audio float32 [round(seconds * sample_rate)].

    waves_fn(condition [b, num_genres], z [b, latent]) -> audio [b, clip_length]; clips are
    made `batch_size` at a time (a tf.map_fn), so memory does not grow with the length.
    """
    overlap = min(int(round(overlap_seconds * sample_rate)), clip_length // 2)
    hop = clip_length - overlap
    seconds = tf.cast(seconds, tf.float64)
    tf.debugging.Assert((seconds > 0.0) & (seconds <= max_seconds),
                        [f"seconds must be in (0, {max_seconds:g}]; got", seconds])
    total = tf.maximum(tf.cast(tf.round(seconds * sample_rate), tf.int32), 1)
    num = tf.maximum(1, -((overlap - total) // hop))
    times, ids = parse_genre_path_tf(genre_path, genre_names)
    centres = (tf.cast(tf.range(num) * hop, tf.float64) + clip_length / 2.0) / sample_rate
    condition = conditions_tf(times, ids, centres, len(genre_names))
    z = latent_walk_tf(seed, num, latent_dim, wander)
    chunks = -(-num // batch_size)
    pad = chunks * batch_size - num
    condition = tf.reshape(tf.pad(condition, [[0, pad], [0, 0]]),
                           [chunks, batch_size, len(genre_names)])
    z = tf.reshape(tf.pad(z, [[0, pad], [0, 0]]), [chunks, batch_size, latent_dim])
    clips = tf.map_fn(lambda cz: tf.cast(waves_fn(cz[0], cz[1]), tf.float32), (condition, z),
                      fn_output_signature=tf.TensorSpec([batch_size, clip_length], tf.float32),
                      parallel_iterations=1)
    clips = tf.reshape(clips, [-1, clip_length])[:num]
    clips = tf.where(tf.math.is_finite(clips), clips, 0.0)
    audio = crossfade_join_tf(clips, overlap)[:total]
    audio = tf.pad(audio, [[0, total - tf.shape(audio)[0]]])
    return tf.cast(audio, tf.float32)


def join_times(num_clips, hop, overlap, sample_rate):
    """Seconds at the centre of each crossfade."""
    return [(i * hop + overlap / 2.0) / sample_rate for i in range(1, num_clips)]


def long_form(sampler, seconds, genre_path, seed=0, wander=DEFAULT_WANDER,
              overlap_seconds=DEFAULT_OVERLAP_SECONDS, batch_size=16, condition=None):
    """A piece of `seconds` from `sampler` (generate.Sampler) along `genre_path`.

    condition: instead of a genre path (give genre_path=None), one genre mix float
    [num_genres] held for the whole piece, e.g. 0.7 jazz + 0.3 rock (the demo's blend); a
    one-hot row gives the same piece as the path of that genre alone.

    Returns (audio float64 [samples] as the generator made it, no normalisation; info dict
    with clips, hop, overlap and join times).
    """
    sr, length = sampler.sample_rate, sampler.audio_length
    overlap = min(int(round(overlap_seconds * sr)), length // 2)
    num, hop, total = layout(seconds, sr, length, overlap)
    centres = (np.arange(num) * hop + length / 2.0) / sr
    if condition is None:
        condition = genre_conditions(genre_path, centres, sampler.num_genres)
    else:
        condition = np.asarray(condition, np.float32)
        if condition.shape != (sampler.num_genres,):
            raise ValueError(f"condition of shape {condition.shape}: expected one mix of "
                             f"[{sampler.num_genres}] genres")
        condition = np.repeat(condition[None, :], num, axis=0)
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
    every frame "inside" the clips: farther from all joins than a quarter of the median
    join spacing, at most 0.25 s and at least the window plus a frame (short clips whose
    crossfades cover most of their length still leave inside frames). Reported: each join's
    z-score and percentile among the inside values. A join that stands out no more than the
    clips' own variation has a z-score near 0 and a percentile well under 100.
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
    spacing = float(np.median(np.diff(joins))) if len(joins) > 1 else np.inf
    exclude = min(0.25, max(window_seconds + frame_seconds, 0.25 * spacing))
    inside = np.min(np.abs(centres[:, None] - joins[None, :]), axis=1) > exclude
    k = max(1, int(round(window_seconds * sample_rate / hop)))
    at_join = [int(np.argmin(np.abs(centres - j))) for j in joins]
    out = {"joins": int(len(joins)), "frames_inside": int(inside.sum()),
           "exclude_seconds": exclude}
    for name, values in series.items():
        padded = np.pad(values, k, mode="edge")
        windowed = np.max(np.stack([padded[i:i + n] for i in range(2 * k + 1)]), axis=0)
        ref = windowed[inside]
        mu, sd = float(np.mean(ref)), float(np.std(ref) + 1e-12)
        z = [float((windowed[i] - mu) / sd) for i in at_join]
        pct = [float(np.mean(ref < windowed[i]) * 100.0) for i in at_join]
        out[name] = {"inside_mean": mu, "inside_std": sd, "join_z": z, "join_percentile": pct,
                     "max_join_z": float(np.max(z)), "mean_join_z": float(np.mean(z)),
                     # The clips' own extreme: the largest z among the inside frames.
                     "max_inside_z": float((np.max(ref) - mu) / sd),
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
