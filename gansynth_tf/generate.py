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

import json
import os

import numpy as np
from absl import flags, logging

from gansynth_tf import cli, models, spectral
from gansynth_tf import representation as representation_lib

# Samplers and latents live in samplers, the file writing in rendering; their names still
# import from here (evaluate, demo, tests, bench/ scripts).
from gansynth_tf.rendering import (  # noqa: F401
    MAX_STEM_BYTES,
    NORMALIZE_MODES,
    PEAK_LEVEL,
    SHEET_MAX_COLUMNS,
    _file_stem,
    log_spectrogram,
    safe_names,
    spectrogram_sheet,
    to_pcm_range,
    write_wav,
)
from gansynth_tf.samplers import (  # noqa: F401
    ExportSampler,
    Sampler,
    TrainDirSampler,
    genre_walk,
    latents,
    load_sampler,
    slerp,
)

MANIFEST = "manifest.json"
# Settings of one run, copied into each of its manifest entries.
RUN_SETTINGS = ("source", "sample_rate", "audio_length", "phase", "truncation", "normalize")


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
