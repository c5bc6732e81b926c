"""Generates audio from a trained run or an exported SavedModel.

    python -m gansynth_tf.generate --train_dir=RUN --output_dir=OUT [--genre=jazz]
        [--num_samples=4] [--seed=0] [--phase=if|griffin_lim]
    python -m gansynth_tf.generate --export_dir=RUN/export --output_dir=OUT ...
    python -m gansynth_tf.generate ... --interpolate=jazz,rock --steps=8
    python -m gansynth_tf.generate ... --genre=jazz --interpolate_latent --steps=8
    python -m gansynth_tf.generate ... --duration=30 [--genre_path=ambient:0,rock:20]

Writes 16-bit PCM WAVs at the model's sample rate, each peak-normalised to -1 dBFS
(--normalize: 'limit', 'clip', or 'none' for the raw output as 32-bit float), and a PNG
sheet of their spectrograms:

* sampling: `<genre>_<i>.wav` for i < num_samples and every --genre (default all), and
  `sheet.png`. Sample i of every genre uses the same latent: row i of
  `numpy.random.default_rng(seed).standard_normal([num_samples, latent_dim])`, so columns
  of the sheet differ by genre only.
* --interpolate=A,B: `interp_<i>.wav` + `interp_sheet.png`, the genre condition going
  linearly from one-hot(A) to one-hot(B) in `steps` steps at the fixed latent of sample 0.
* --interpolate_latent: `latent_interp_<i>.wav` + `latent_interp_sheet.png`, one genre, the
  latent walking by slerp from sample 0 of --seed to sample 0 of --seed_b (default seed+1).
* --duration=SECONDS: one continuous piece per genre, `<genre>_long.wav`, or with
  --genre_path=ambient:0,rock:20 one piece morphing between genres, `path_long.wav`; plus
  `long_sheet.png`. Clips follow a slerp latent walk (--wander new latents per clip) and are
  joined by equal-power crossfades of --overlap_seconds (gansynth_tf/longform.py).

Genre names are made safe for file names: letters and digits of any script stay, and
every run of other characters but '.', '-', '_' becomes '_'. `manifest.json` maps every
file in the folder to its genre, seed, condition and the source and settings that made it;
a later run into the same folder adds its files to it (replacing the entries of files it
writes again).
"""

import abc
import json
import os
import unicodedata
import warnings

import numpy as np
import soundfile
import tensorflow as tf
from absl import flags, logging

from gansynth_tf import cli, models, rundir, spectral
from gansynth_tf import representation as representation_lib

NORMALIZE_MODES = ("peak", "limit", "clip", "none")
# "peak" level: -1 dBFS, the same as the SavedModel's ready-to-play `audio`.
PEAK_LEVEL = 10.0 ** (-1.0 / 20.0)
SHEET_MAX_COLUMNS = 8
MANIFEST = "manifest.json"
# Leaves room for "_<i>.wav" under the usual 255-byte limit on a file name.
MAX_STEM_BYTES = 200
# Settings of one run, copied into each of its manifest entries.
RUN_SETTINGS = ("source", "sample_rate", "audio_length", "phase", "truncation", "normalize")


# ----------------------------------------------------------------------------- samplers


class Sampler(abc.ABC):
    """A generator that turns (condition, z) into audio, whatever it was loaded from.

    Attributes:
      genres: names in id order; sample_rate, audio_length, latent_dim: ints; phase: str.
      truncation: every latent is multiplied by this before the generator sees it (the
        "truncation trick" in z space, z' = psi * z): below 1 it trades variety within a
        genre for clips more typical of it; 1 samples the training distribution.
    """

    genres = ()
    sample_rate = audio_length = latent_dim = 0
    phase = "if"
    truncation = 1.0

    @property
    def num_genres(self):
        return len(self.genres)

    def audio(self, condition, z):
        """condition float32 [b, num_genres] (one-hot or a mix), z [b, latent] -> float32
        numpy [b, audio_length]."""
        z = np.asarray(z, np.float32) * np.float32(self.truncation)
        return self._audio(np.asarray(condition, np.float32), z)

    @abc.abstractmethod
    def _audio(self, condition, z):
        """`audio` after truncation."""

    def genre_ids(self, names, flag="--genre"):
        """Names -> int ids; an unknown name raises ValueError listing the known genres."""
        ids = []
        for name in names:
            if name not in self.genres:
                raise ValueError(f"unknown genre {name!r} ({flag}); this model knows: "
                                 f"{', '.join(repr(g) for g in self.genres)}")
            ids.append(self.genres.index(name))
        return ids


class TrainDirSampler(Sampler):
    """The EMA generator of a train_dir (see rundir.TrainedGenerator)."""

    def __init__(self, train_dir, phase="if", checkpoint=None, griffin_lim_iterations=32,
                 mel_inversion=None):
        self.trained = rundir.TrainedGenerator(train_dir, checkpoint)
        if mel_inversion:
            self.trained.representation = self.trained.representation.with_mel_inversion(
                mel_inversion)
        rep = self.trained.representation
        self.genres = list(self.trained.genres)
        self.sample_rate, self.audio_length = rep.sample_rate, rep.audio_length
        self.latent_dim = self.trained.latent_dim
        self.phase = phase
        # One trace for every batch size: the inversion graph is slow to retrace.
        self._fn = tf.function(
            lambda c, z: self.trained.waves(c, z, phase, griffin_lim_iterations),
            input_signature=[tf.TensorSpec([None, self.num_genres], tf.float32),
                             tf.TensorSpec([None, self.latent_dim], tf.float32)])

    def _audio(self, condition, z):
        return self._fn(tf.constant(condition, tf.float32), tf.constant(z, tf.float32)).numpy()


class ExportSampler(Sampler):
    """A SavedModel written by gansynth_tf.export (its phase is fixed at export time)."""

    def __init__(self, export_dir):
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise FileNotFoundError(
                f"--export_dir={export_dir} holds no saved_model.pb: export a run first "
                f"(python -m gansynth_tf.export --train_dir=RUN --export_dir={export_dir})")
        self.model = tf.saved_model.load(export_dir)
        meta = {k: v.numpy() for k, v in self.model.signatures["metadata"]().items()}
        self.genres = [g.decode("utf-8") for g in meta["genres"]]
        self.sample_rate = int(meta["sample_rate"])
        self.audio_length = int(meta["audio_length"])
        self.latent_dim = int(meta["latent_dim"])
        self.phase = meta["phase"].decode("utf-8")
        self._fn = self.model.signatures["generate_conditioned"]

    def _audio(self, condition, z):
        out = self._fn(condition=tf.constant(condition, tf.float32),
                       z=tf.constant(z, tf.float32))
        # The raw output: this command normalises once per file (a piece, not each clip).
        # Exports made before audio_raw existed return the raw output as `audio`.
        return out.get("audio_raw", out["audio"]).numpy()


def load_sampler(train_dir=None, export_dir=None, phase=None, checkpoint=None,
                 griffin_lim_iterations=32, mel_inversion=None, truncation=1.0, model=None):
    """A Sampler from exactly one of train_dir / export_dir / model (a shipped model's name).

    phase None means the model's own: "if" for a train_dir, the export's phase for an
    export; asking an export for another phase is an error (it is baked into the graph).
    mel_inversion None means the run's (representation.json); an export's is baked in.
    truncation scales every latent (see Sampler).
    """
    if not truncation >= 0:
        raise ValueError(f"--truncation must be >= 0, got {truncation}")
    if sum(map(bool, (train_dir, export_dir, model))) != 1:
        shipped = ", ".join(models.available()) or "none"
        raise ValueError(f"give exactly one of --train_dir (a training run), --export_dir "
                         f"(a SavedModel from gansynth_tf.export) or --model (a shipped "
                         f"model: {shipped})")
    if model:
        export_dir = models.resolve(model)
    if train_dir:
        sampler = TrainDirSampler(train_dir, phase or "if", checkpoint, griffin_lim_iterations,
                                  mel_inversion)
    else:
        if mel_inversion:
            raise ValueError(f"--mel_inversion applies to --train_dir runs; {export_dir} has "
                             f"its inverse baked in: re-export the run to change it")
        sampler = ExportSampler(export_dir)
        if phase and phase != sampler.phase:
            raise ValueError(f"--phase={phase} but {export_dir} was exported with "
                             f"phase={sampler.phase}: re-export with --phase={phase} or "
                             f"generate from the run with --train_dir")
    sampler.truncation = float(truncation)
    return sampler


# ----------------------------------------------------------------------------- maths


def latents(seed, num, latent_dim):
    """float32 [num, latent_dim] standard normal, row i fixed by (seed, i) for any num >= i."""
    return np.random.default_rng(seed).standard_normal([num, latent_dim]).astype(np.float32)


def slerp(a, b, t):
    """Spherical interpolation between latents a and b [latent] at fractions t [n].

    Returns [n, latent]: t=0 gives a, t=1 gives b; with |a| == |b| every point keeps that
    norm (a Gaussian latent's typical shell), which linear interpolation would cut through.
    Nearly (anti)parallel vectors fall back to linear interpolation.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1.0 - t) * a + t * b).astype(np.float32)
    out = (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def genre_walk(num_genres, a, b, steps):
    """Conditions [steps, num_genres]: (1 - t) one_hot(a) + t one_hot(b), t in [0, 1]."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    eye = np.eye(num_genres, dtype=np.float64)
    return ((1.0 - t) * eye[a] + t * eye[b]).astype(np.float32)


# ----------------------------------------------------------------------------- files


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


def _generate(sampler, condition, z, batch_size):
    """Batched sampler.audio: condition [n, G], z [n, latent] -> [n, audio_length]."""
    out = [sampler.audio(condition[i:i + batch_size], z[i:i + batch_size])
           for i in range(0, len(z), batch_size)]
    return np.concatenate(out, axis=0)


# ----------------------------------------------------------------------------- modes


def generate_samples(sampler, output_dir, genres=None, num_samples=4, seed=0, batch_size=16,
                     normalize="peak"):
    """Writes `<genre>_<i>.wav` and `sheet.png`; returns manifest entries (dicts)."""
    genres = list(genres) if genres else list(sampler.genres)
    ids = sampler.genre_ids(genres)
    stems = safe_names(sampler.genres)
    z = latents(seed, num_samples, sampler.latent_dim)
    eye = np.eye(sampler.num_genres, dtype=np.float32)
    condition = np.concatenate([np.repeat(eye[[g]], num_samples, 0) for g in ids])
    audio = _generate(sampler, condition, np.tile(z, [len(ids), 1]), batch_size)
    entries, clips, titles = [], [], []
    for k, (genre, g) in enumerate(zip(genres, ids)):
        for i in range(num_samples):
            name = f"{stems[genre]}_{i}.wav"
            clip = audio[k * num_samples + i]
            write_wav(os.path.join(output_dir, name), clip, sampler.sample_rate, normalize)
            entries.append({"file": name, "genre": genre, "genre_id": g, "seed": seed,
                            "index": i})
            if i < SHEET_MAX_COLUMNS:
                clips.append(clip)
                titles.append(name)
    spectrogram_sheet(os.path.join(output_dir, "sheet.png"), clips, titles,
                      sampler.sample_rate, ncols=min(num_samples, SHEET_MAX_COLUMNS),
                      suptitle=f"seed {seed}, phase {sampler.phase}")
    return entries


def interpolate_genres(sampler, output_dir, genre_a, genre_b, steps=8, seed=0,
                       normalize="peak"):
    """Writes `interp_<i>.wav` and `interp_sheet.png` walking genre A -> B at a fixed z."""
    a, b = sampler.genre_ids([genre_a, genre_b], flag="--interpolate")
    conditions = genre_walk(sampler.num_genres, a, b, steps)
    z = np.repeat(latents(seed, 1, sampler.latent_dim), steps, axis=0)
    audio = _generate(sampler, conditions, z, steps)
    entries, titles = [], []
    for i, t in enumerate(np.linspace(0.0, 1.0, steps)):
        name = f"interp_{i}.wav"
        write_wav(os.path.join(output_dir, name), audio[i], sampler.sample_rate, normalize)
        entries.append({"file": name, "genre_a": genre_a, "genre_b": genre_b,
                        "mix": float(t), "seed": seed, "index": 0})
        titles.append(f"{name} ({1 - t:.2f} {genre_a} / {t:.2f} {genre_b})")
    spectrogram_sheet(os.path.join(output_dir, "interp_sheet.png"), list(audio), titles,
                      sampler.sample_rate, suptitle=f"{genre_a} -> {genre_b}, seed {seed}")
    return entries


def interpolate_latent(sampler, output_dir, genre, steps=8, seed=0, seed_b=None,
                       normalize="peak"):
    """Writes `latent_interp_<i>.wav` + sheet: slerp from seed's to seed_b's latent."""
    seed_b = seed + 1 if seed_b is None else seed_b
    (g,) = sampler.genre_ids([genre])
    za = latents(seed, 1, sampler.latent_dim)[0]
    zb = latents(seed_b, 1, sampler.latent_dim)[0]
    t = np.linspace(0.0, 1.0, steps)
    z = slerp(za, zb, t)
    condition = np.repeat(np.eye(sampler.num_genres, dtype=np.float32)[[g]], steps, axis=0)
    audio = _generate(sampler, condition, z, steps)
    entries, titles = [], []
    for i in range(steps):
        name = f"latent_interp_{i}.wav"
        write_wav(os.path.join(output_dir, name), audio[i], sampler.sample_rate, normalize)
        entries.append({"file": name, "genre": genre, "genre_id": g, "seed_a": seed,
                        "seed_b": seed_b, "t": float(t[i])})
        titles.append(f"{name} (t={t[i]:.2f})")
    spectrogram_sheet(os.path.join(output_dir, "latent_interp_sheet.png"), list(audio),
                      titles, sampler.sample_rate,
                      suptitle=f"{genre}: seed {seed} -> seed {seed_b} (slerp)")
    return entries


def long_pieces(sampler, output_dir, seconds, genres=None, genre_path=None, seed=0,
                wander=0.25, overlap_seconds=0.5, batch_size=16, normalize="peak"):
    """Writes `<genre>_long.wav` per genre (or `path_long.wav` for a genre path) + a sheet.

    See :mod:`gansynth_tf.longform`: clips along a slerp latent walk joined by equal-power
    crossfades; every piece of one run uses the same walk (same seed), so genres differ by
    their condition only.
    """
    from gansynth_tf import longform  # pylint: disable=import-outside-toplevel

    if genre_path:
        jobs = [("path", longform.parse_genre_path(genre_path, sampler.genres))]
    else:
        names = list(genres) if genres else list(sampler.genres)
        jobs = [(safe_names(sampler.genres)[g], [(0.0, i)])
                for g, i in zip(names, sampler.genre_ids(names))]
    entries, pieces = [], []
    for stem, path in jobs:
        audio, info = longform.long_form(sampler, seconds, path, seed, wander,
                                         overlap_seconds, batch_size)
        name = f"{stem}_long.wav"
        write_wav(os.path.join(output_dir, name), audio, sampler.sample_rate, normalize)
        labels = [(t, sampler.genres[g]) for t, g in path]
        entries.append({"file": name, "seconds": float(seconds), "seed": seed,
                        "wander": float(wander), "overlap_seconds": info["overlap"] /
                        sampler.sample_rate, "clips": info["clips"],
                        "genre_path": [{"seconds": t, "genre": g} for t, g in labels],
                        "genre": labels[0][1] if len(labels) == 1 else None})
        pieces.append((name, audio, info["joins"], labels if len(labels) > 1 else []))
    longform.render_pieces(os.path.join(output_dir, "long_sheet.png"), pieces,
                           sampler.sample_rate,
                           suptitle=f"{seconds:g} s pieces, seed {seed}, wander {wander:g}")
    return entries


# ----------------------------------------------------------------------------- CLI


def make_flags():
    fv = flags.FlagValues()
    flags.DEFINE_string("train_dir", None, "Training run to generate from (the EMA "
                        "generator of its latest checkpoint). Give this or --export_dir.",
                        flag_values=fv)
    flags.DEFINE_string("export_dir", None, "SavedModel written by gansynth_tf.export to "
                        "generate from. Give this or --train_dir.", flag_values=fv)
    flags.DEFINE_string("model", None, "Name of a model shipped with the package (instead of "
                        "--train_dir/--export_dir); --list_models lists them.", flag_values=fv)
    flags.DEFINE_bool("list_models", False, "Print the shipped models' names and exit.",
                      flag_values=fv)
    flags.DEFINE_bool("list_genres", False, "Print the model's genres (one per line, id order) "
                      "and exit.", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "With --train_dir: a checkpoint prefix to use "
                        "instead of the latest.", flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Folder for the WAV files, sheets and "
                        "manifest.json (created if missing).", flag_values=fv)
    flags.DEFINE_multi_string("genre", None, "Genre name to sample (repeat the flag for "
                              "several); default: every genre. With --interpolate_latent: "
                              "exactly one.", flag_values=fv)
    flags.DEFINE_integer("num_samples", 4, "Clips per genre.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the latent vectors (numpy default_rng).",
                         flag_values=fv)
    flags.DEFINE_integer("seed_b", None, "With --interpolate_latent: seed of the end "
                         "latent (default --seed + 1).", flag_values=fv)
    flags.DEFINE_enum("phase", None, list(representation_lib.PHASES),
                      "Phase reconstruction: 'if' (integrate the generated instantaneous "
                      "frequency) or 'griffin_lim'. Default: 'if' for --train_dir, the "
                      "export's own for --export_dir.", flag_values=fv)
    flags.DEFINE_integer("griffin_lim_iterations", 32, "Iterations for --phase=griffin_lim "
                         "(with --train_dir).", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("truncation", 1.0, "Multiply every latent by this (the truncation "
                       "trick, z' = psi * z): < 1 gives clips more typical of their genre and "
                       "less varied; 1 samples as trained.", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_enum("mel_inversion", None, list(spectral.MEL_INVERSIONS), "With "
                      "--train_dir and mel features: the mel-to-audio inverse, instead of "
                      "the run's own (representation.json). 'refined' fits a non-negative "
                      "linear magnitude and refines GANSynth's phase with Griffin-Lim.",
                      flag_values=fv)
    flags.DEFINE_string("interpolate", None, "GENRE_A,GENRE_B: walk the genre condition "
                        "from A to B at a fixed latent; writes interp_<i>.wav.",
                        flag_values=fv)
    flags.DEFINE_bool("interpolate_latent", False, "Slerp the latent from --seed to "
                      "--seed_b for one --genre; writes latent_interp_<i>.wav.",
                      flag_values=fv)
    flags.DEFINE_float("duration", None, "Seconds: write one continuous piece per --genre "
                       "(default every genre), `<genre>_long.wav`, made of clips along a "
                       "smooth latent walk joined by crossfades (see --wander, "
                       "--genre_path).", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_string("genre_path", None, "With --duration: one piece that morphs "
                        "between genres, GENRE:SECONDS,... (e.g. ambient:0,rock:20,jazz:40; "
                        "the condition blends linearly between points); writes "
                        "path_long.wav.", flag_values=fv)
    flags.DEFINE_float("wander", 0.25, "With --duration: how fast the latent walk moves, in "
                       "new random latents per clip (0 = one latent throughout, 1 = a new "
                       "one every clip).", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_float("overlap_seconds", 0.5, "With --duration: crossfade length between "
                       "consecutive clips (at most half a clip).", lower_bound=0.0,
                       flag_values=fv)
    flags.DEFINE_integer("steps", 8, "Points of an interpolation, ends included.",
                         lower_bound=2, flag_values=fv)
    flags.DEFINE_integer("batch_size", 16, "Clips generated per call (bounds memory).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_enum("normalize", "peak", list(NORMALIZE_MODES),
                      "Level of each file: 'peak' (default) scales every clip or piece to "
                      "peak at -1 dBFS; 'limit' scales down only one that would clip; "
                      "'clip' hard-clips; 'none' writes the generator's raw output as "
                      "32-bit float WAV.", flag_values=fv)
    return fv


def read_manifest(output_dir):
    """The manifest already in output_dir, or None; unreadable JSON raises ValueError."""
    path = os.path.join(output_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest.get("files"), list):
            raise ValueError("no 'files' list")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path} is not a manifest this command can add to ({e}): move it "
                         f"away or choose another --output_dir") from None
    return manifest


def merge_manifests(earlier, latest):
    """`latest` with the files of `earlier` that it did not write again listed first.

    Entries of a manifest from before entries carried their run's settings get them from
    its top level, so that every entry says what made it.
    """
    files = {e["file"]: e for e in latest["files"]}
    kept = []
    for entry in (earlier or {}).get("files", []):
        if entry.get("file") not in files:
            kept.append({**{k: earlier[k] for k in RUN_SETTINGS if k in earlier}, **entry})
    return {**latest, "files": kept + latest["files"]}


def write_manifest(output_dir, manifest):
    path = os.path.join(output_dir, MANIFEST)
    return cli.write_json(path, manifest, indent=2, ensure_ascii=False)


def run(fv):
    """Runs the command for parsed flags; returns this run's manifest dict.

    manifest.json in --output_dir lists this run's files after the earlier runs' ones.
    """
    if fv.list_models:
        print("\n".join(models.available()))
        return None
    if fv.list_genres:
        sampler = load_sampler(fv.train_dir, fv.export_dir, fv.phase, fv.checkpoint,
                               fv.griffin_lim_iterations, fv.mel_inversion, model=fv.model)
        print("\n".join(sampler.genres))
        return None
    cli.require(fv, "generate", "output_dir")
    interp_pair = None
    if fv.interpolate is not None:
        interp_pair = fv.interpolate.split(",")
        if len(interp_pair) != 2 or not all(interp_pair):
            raise ValueError(f"--interpolate={fv.interpolate!r}: expected two genre names "
                             f"separated by one comma, e.g. --interpolate=jazz,rock")
    if fv.genre_path and not fv.duration:
        raise ValueError("--genre_path needs --duration=SECONDS")
    if fv.duration is not None and fv.duration <= 0:
        raise ValueError(f"--duration={fv.duration}: must be > 0 seconds")
    if fv.interpolate_latent and len(fv.genre or []) != 1:
        raise ValueError("--interpolate_latent needs exactly one --genre=NAME")
    sampler = load_sampler(fv.train_dir, fv.export_dir, fv.phase, fv.checkpoint,
                           fv.griffin_lim_iterations, fv.mel_inversion, fv.truncation,
                           model=fv.model)
    # Validate every name before writing anything.
    sampler.genre_ids(fv.genre or [])
    if interp_pair:
        sampler.genre_ids(interp_pair, flag="--interpolate")
    cli.make_writable_dir(fv.output_dir, "--output_dir")
    earlier = read_manifest(fv.output_dir)
    source = fv.train_dir or fv.export_dir or f"model:{fv.model}"
    manifest = {"source": source, "sample_rate": sampler.sample_rate,
                "audio_length": sampler.audio_length, "phase": sampler.phase,
                "truncation": sampler.truncation, "normalize": fv.normalize, "files": []}
    if interp_pair:
        manifest["files"] += interpolate_genres(sampler, fv.output_dir, *interp_pair,
                                                steps=fv.steps, seed=fv.seed,
                                                normalize=fv.normalize)
    if fv.interpolate_latent:
        manifest["files"] += interpolate_latent(sampler, fv.output_dir, fv.genre[0],
                                                fv.steps, fv.seed, fv.seed_b, fv.normalize)
    if fv.duration:
        manifest["files"] += long_pieces(sampler, fv.output_dir, fv.duration, fv.genre,
                                         fv.genre_path, fv.seed, fv.wander,
                                         fv.overlap_seconds, fv.batch_size, fv.normalize)
    elif not interp_pair and not fv.interpolate_latent:
        manifest["files"] += generate_samples(sampler, fv.output_dir, fv.genre,
                                              fv.num_samples, fv.seed, fv.batch_size,
                                              fv.normalize)
    settings = {k: manifest[k] for k in RUN_SETTINGS}
    manifest["files"] = [{**settings, **entry} for entry in manifest["files"]]
    write_manifest(fv.output_dir, merge_manifests(earlier, manifest))
    return manifest


def main(argv=None):
    fv = make_flags()
    cli.parse_flags(fv, argv, "generate", __doc__)
    try:
        manifest = run(fv)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"generate: {e}") from None
    if manifest is None:  # --list_models / --list_genres
        return None
    logging.info("wrote %d files", len(manifest["files"]))
    print(f"wrote {len(manifest['files'])} WAV files ({manifest['sample_rate']} Hz, "
          f"{manifest['audio_length']} samples, phase={manifest['phase']}) and their "
          f"spectrogram sheet to {fv.output_dir}")
    return manifest


if __name__ == "__main__":
    main()
