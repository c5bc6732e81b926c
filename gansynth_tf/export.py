"""Exports a run's EMA generator plus spectrogram inversion as a TensorFlow SavedModel.

    python -m gansynth_tf.export --train_dir=RUN --export_dir=RUN/export [--phase=if]

The SavedModel needs neither this package nor any dataset: `tf.saved_model.load(DIR)` in any
Python with TensorFlow. Signatures (`saved_model_cli show --all --dir DIR` lists them):

Every signature that makes sound returns `audio`, ready to play: each clip (or piece)
scaled to peak at -1 dBFS, so within [-1, 1]; and `audio_raw`, the generator's output as it
came (its level is whatever the critic let it drift to: peaks of 10 and more are normal).

* `serving_default` (genre int32 [b], z float32 [b, latent]) -> audio, audio_raw float32
  [b, samples]
* `generate_by_name` (genre string [b], seed int64 []) -> audio, genre_id int32 [b],
  z float32 [b, latent] with z = tf.random.stateless_normal([b, latent], seed=[seed, 0]);
  an unknown name fails with an InvalidArgumentError that lists the known genres.
* `generate_conditioned` (condition float32 [b, num_genres], z) -> audio: any mix of genres
  (rows need not be one-hot), used for genre interpolation.
* `generate_long` (genre_path string [], seed int64 [], seconds float32 []) -> audio,
  audio_raw float32 [round(seconds * sample_rate)]: one continuous piece, as
  `generate --duration` makes it (gansynth_tf/longform.py: a slerp latent walk, 0.25 new
  anchors per clip, 0.5 s equal-power crossfades; the same piece for the same seed).
  genre_path is a genre name, or "ambient:0,rock:20" for a morph; at most 600 s.
* `genres` () -> genres string [num_genres] (id order)
* `metadata` () -> genres, sample_rate, audio_length, latent_dim, num_genres (int64 scalars),
  phase (string scalar), images_seen (int64 scalar)

The same values are attributes of the loaded object (`m.genres`, `m.sample_rate`, ... as
tf.Variables) and JSON files in `assets/` (`genres.json`: the list of names; `model.json`:
the metadata), so tools that do not run TensorFlow can read them too.

Clips are at the model's `sample_rate`, `audio_length` samples long.
"""

import json
import os
import re
import shutil
import socket
import tempfile
import time

import tensorflow as tf
from absl import flags, logging

from gansynth_tf import cli, griffin_lim, longform, rundir
from gansynth_tf import representation as representation_lib

# parse_flags and require stay importable from here: generate and evaluate use them.
from gansynth_tf.cli import parse_flags, require  # noqa: F401

DEFAULT_EXPORT_SUBDIR = "export"
GENRES_ASSET = "genres.json"
MODEL_ASSET = "model.json"
# The SavedModel is written into <parent>/.export-<name>-XXXX and moved into place when
# complete; the owner file in it names the writing process, so that a later export can tell
# a folder left by a killed one from one being written.
STAGING_PREFIX = ".export-"
STAGING_OWNER = "owner"
# A staging folder without an owner file (one made before owner files, or in the instant
# before its owner file) is stale once untouched this long.
STALE_STAGING_SECONDS = 600
# generate_long makes its clips this many at a time and refuses pieces longer than this.
LONG_BATCH = 8
LONG_MAX_SECONDS = 600.0
SIGNATURES = ("serving_default", "generate_by_name", "generate_conditioned", "generate_long",
              "genres", "metadata")


class ExportedGenerator(tf.Module):
    """The EMA generator and its inversion to audio, as a tf.Module to save.

    The Keras 3 generator itself is not attached as a child: its `_default_save_signature`
    cannot be traced for a two-input model without a functional input spec. Its variables
    are tracked instead (as Keras' own ExportArchive does), which is all the traced
    functions capture.
    """

    def __init__(self, trained, phase="if", griffin_lim_iterations=32):
        super().__init__(name="gansynth_generator")
        if phase not in representation_lib.PHASES:
            raise ValueError(f"phase must be one of {representation_lib.PHASES}, got {phase!r}")
        self._trained = trained
        self._phase_name = phase
        self._gl_iterations = int(griffin_lim_iterations)
        rep = trained.representation
        self._genre_list = list(trained.genres)
        # Keras variables wrap tf.Variables; tracking the tf.Variables saves the weights.
        self.generator_variables = [v.value for v in trained.generator.variables]
        self.genres = tf.Variable(self._genre_list, dtype=tf.string, trainable=False,
                                  name="genres")
        self.sample_rate = tf.Variable(rep.sample_rate, dtype=tf.int64, trainable=False,
                                       name="sample_rate")
        self.audio_length = tf.Variable(rep.audio_length, dtype=tf.int64, trainable=False,
                                        name="audio_length")
        self.latent_dim = tf.Variable(trained.latent_dim, dtype=tf.int64, trainable=False,
                                      name="latent_dim")
        self.num_genres = tf.Variable(len(self._genre_list), dtype=tf.int64, trainable=False,
                                      name="num_genres")
        self.phase = tf.Variable(phase, dtype=tf.string, trainable=False, name="phase")
        self.images_seen = tf.Variable(int(trained.images_seen.numpy()), dtype=tf.int64,
                                       trainable=False, name="images_seen")
        # What each traced function captures first, under its name (see _capture).
        generator_names = _capture_names([v.path for v in trained.generator.variables])
        metadata_names = ("genres", "sample_rate", "audio_length", "latent_dim", "num_genres",
                          "phase", "images_seen")

        def capture_generator():
            _capture(zip(generator_names, self.generator_variables))

        def capture_metadata():
            _capture((name, getattr(self, name)) for name in metadata_names)

        latent = trained.latent_dim
        num_genres = len(self._genre_list)
        known = ", ".join(self._genre_list)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="genre"),
                                      tf.TensorSpec([None, latent], tf.float32, name="z")])
        def generate(genre, z):
            capture_generator()
            tf.debugging.assert_equal(tf.shape(genre)[0], tf.shape(z)[0],
                                      message="genre and z must have the same batch size")
            in_range = tf.reduce_all((genre >= 0) & (genre < num_genres))
            tf.debugging.Assert(in_range, [f"genre ids must be in [0, {num_genres}) for "
                                           f"genres [{known}]; got", genre])
            return self._outputs(self._audio(tf.one_hot(genre, num_genres), z))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="genre"),
                                      tf.TensorSpec([], tf.int64, name="seed")])
        def generate_by_name(genre, seed):
            capture_generator()
            matches = tf.equal(genre[:, None], tf.constant(self._genre_list)[None, :])
            found = tf.reduce_any(matches, axis=1)
            tf.debugging.Assert(tf.reduce_all(found), [
                f"unknown genre name(s); this model knows: [{known}]; unknown:",
                tf.boolean_mask(genre, tf.logical_not(found))], summarize=num_genres)
            ids = tf.cast(tf.argmax(tf.cast(matches, tf.int32), axis=1), tf.int32)
            z = tf.random.stateless_normal(tf.stack([tf.shape(genre)[0], latent]),
                                           seed=tf.stack([seed, tf.constant(0, tf.int64)]))
            return {**self._outputs(self._audio(tf.one_hot(ids, num_genres), z)),
                    "genre_id": ids, "z": z}

        @tf.function(input_signature=[
            tf.TensorSpec([None, num_genres], tf.float32, name="condition"),
            tf.TensorSpec([None, latent], tf.float32, name="z")])
        def generate_conditioned(condition, z):
            capture_generator()
            tf.debugging.assert_equal(tf.shape(condition)[0], tf.shape(z)[0],
                                      message="condition and z must have the same batch size")
            return self._outputs(self._audio(condition, z))

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="genre_path"),
                                      tf.TensorSpec([], tf.int64, name="seed"),
                                      tf.TensorSpec([], tf.float32, name="seconds")])
        def generate_long(genre_path, seed, seconds):
            capture_generator()
            raw = longform.long_form_tf(
                self._audio, genre_path, seed, seconds, self._genre_list, rep.sample_rate,
                rep.audio_length, latent, wander=longform.DEFAULT_WANDER,
                overlap_seconds=longform.DEFAULT_OVERLAP_SECONDS, batch_size=LONG_BATCH,
                max_seconds=LONG_MAX_SECONDS)
            return self._outputs(raw)

        @tf.function(input_signature=[])
        def genres():
            _capture([("genres", self.genres)])
            return {"genres": tf.identity(self.genres)}

        @tf.function(input_signature=[])
        def metadata():
            capture_metadata()
            return {"genres": tf.identity(self.genres),
                    "sample_rate": tf.identity(self.sample_rate),
                    "audio_length": tf.identity(self.audio_length),
                    "latent_dim": tf.identity(self.latent_dim),
                    "num_genres": tf.identity(self.num_genres),
                    "phase": tf.identity(self.phase),
                    "images_seen": tf.identity(self.images_seen)}

        self.generate = generate
        self.generate_by_name = generate_by_name
        self.generate_conditioned = generate_conditioned
        self.generate_long = generate_long
        self.get_genres = genres
        self.get_metadata = metadata

    @staticmethod
    def _outputs(raw):
        """Ready-to-play `audio` (each row peaks at -1 dBFS) beside the generator's own."""
        return {"audio": longform.peak_normalize_tf(raw), "audio_raw": raw}

    def _audio(self, condition, z):
        """condition [b, num_genres], z [b, latent] -> audio [b, audio_length] float32."""
        return self._trained.waves(condition, z, self._phase_name, self._gl_iterations)

    def signatures(self):
        fns = (self.generate, self.generate_by_name, self.generate_conditioned,
               self.generate_long, self.get_genres, self.get_metadata)
        return dict(zip(SIGNATURES, fns))

    def metadata_dict(self):
        return {"genres": self._genre_list,
                "sample_rate": int(self.sample_rate.numpy()),
                "audio_length": int(self.audio_length.numpy()),
                "latent_dim": int(self.latent_dim.numpy()),
                "num_genres": len(self._genre_list),
                "phase": self._phase_name,
                "images_seen": int(self.images_seen.numpy())}


def _capture_names(paths):
    """Function-argument names TensorFlow keeps ([a-z0-9_], unique) for variable paths."""
    names = []
    for path in paths:
        name = re.sub(r"[^a-z0-9_]", "_", path.lower())
        if not name[:1].isalpha():
            name = f"v_{name}"
        unique, i = name, 1
        while unique in names:
            unique, i = f"{name}_{i}", i + 1
        names.append(unique)
    return names


def _capture(named_variables):
    """Captures variables into the function being traced, at its top level, by name.

    A variable first read deep in the body is captured there, by a placeholder named after
    the op that reads it ("generator_1/fade_in_1/Cast/ReadVariableOp/resource", or
    "map/while/input_7" inside tf.map_fn's loop). tf.saved_model.save must rename each such
    input of a signature to a valid argument name, and logs that it did ("Function
    `generate` contains input name(s) resource with unsupported characters which will be
    renamed to ..."). Captured first under valid names, later reads reuse these captures and
    nothing is renamed. Each function captures only the variables it reads.
    """
    graph = tf.compat.v1.get_default_graph()
    for name, variable in named_variables:
        graph.capture(variable.handle, name=name)


def _check_replaceable(export_dir):
    """Refuses to delete a non-empty folder that is not a SavedModel (likely a typo)."""
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not os.path.exists(
            os.path.join(export_dir, "saved_model.pb")):
        raise FileExistsError(
            f"--export_dir={export_dir} exists, is not empty and holds no saved_model.pb: "
            f"refusing to replace it; pick a new folder or empty it")


def _staging_prefix(export_dir):
    return f"{STAGING_PREFIX}{os.path.basename(os.path.abspath(export_dir))}-"


def _staging_is_stale(folder):
    owner = os.path.join(folder, STAGING_OWNER)
    try:
        with open(owner) as f:
            host, pid = f.read().split()
    except (OSError, ValueError):
        try:
            return time.time() - os.path.getmtime(folder) > STALE_STAGING_SECONDS
        except OSError:
            return False  # gone meanwhile
    if host != socket.gethostname():
        return False  # cannot tell whether it still runs
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False  # alive (another user's) or unreadable
    return False


def remove_stale_staging(export_dir):
    """Removes the staging folders of earlier exports to `export_dir` that were killed
    before they finished (their owner process is gone); returns their paths.

    Folders made before staging names carried the target (`.export-XXXXXXXX`) count too.
    """
    parent = os.path.dirname(os.path.abspath(export_dir))
    prefix = _staging_prefix(export_dir)
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(parent, name)
        legacy = name.startswith(STAGING_PREFIX) and len(name) == len(STAGING_PREFIX) + 8 \
            and "-" not in name[len(STAGING_PREFIX):]
        if ((name.startswith(prefix) or legacy) and os.path.isdir(folder)
                and _staging_is_stale(folder)):
            shutil.rmtree(folder, ignore_errors=True)
            if not os.path.exists(folder):
                removed.append(folder)
    return removed


def _make_staging(export_dir):
    """A new staging folder beside export_dir, owned by this process.

    Raises:
      cli.PathError: export_dir is a file, or its folder cannot be created or written.
    """
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise cli.PathError(f"--export_dir={export_dir} is a file, not a folder: give "
                            f"--export_dir a folder path")
    parent = os.path.dirname(os.path.abspath(export_dir))
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=_staging_prefix(export_dir), dir=parent)
    except OSError as e:
        raise cli.PathError(f"cannot write --export_dir={export_dir} ({e.strerror}: "
                            f"{e.filename or parent}): give --export_dir a folder you can "
                            f"write to") from None
    with open(os.path.join(staging, STAGING_OWNER), "w") as f:
        f.write(f"{socket.gethostname()} {os.getpid()}\n")
    return staging


def export_saved_model(train_dir, export_dir=None, phase="if", griffin_lim_iterations=32,
                       checkpoint=None, trained=None):
    """Writes the SavedModel described in the module docstring.

    Args:
      train_dir: run folder (rundir layout) with at least one checkpoint.
      export_dir: destination; default `train_dir/export`. An existing SavedModel there is
        replaced only once the new one is complete.
      phase: "if" (integrate the generated IF) or "griffin_lim" (baked into the graph).
      griffin_lim_iterations: iterations when phase="griffin_lim".
      checkpoint: a checkpoint prefix; default the latest in train_dir/checkpoints.
      trained: an already loaded rundir.TrainedGenerator to export instead of loading one
        (checkpoint is then ignored).
    Returns:
      export_dir.
    """
    export_dir = export_dir or os.path.join(train_dir, DEFAULT_EXPORT_SUBDIR)
    _check_replaceable(export_dir)
    for folder in remove_stale_staging(export_dir):
        logging.warning("Removed %s, left by an export that was killed before it finished",
                        folder)
    # Before loading anything: an unwritable destination fails at once.
    created = cli.missing_folders(os.path.dirname(os.path.abspath(export_dir)))
    staging = _make_staging(export_dir)
    try:
        trained = trained or rundir.TrainedGenerator(train_dir, checkpoint)
        module = ExportedGenerator(trained, phase, griffin_lim_iterations)
        # Assets are copied into the SavedModel's assets/ folder on save.
        asset_src = os.path.join(staging, "asset_src")
        os.makedirs(asset_src)
        meta = module.metadata_dict()
        for name, obj in ((GENRES_ASSET, meta["genres"]), (MODEL_ASSET, meta)):
            with open(os.path.join(asset_src, name), "w") as f:
                json.dump(obj, f, indent=2, ensure_ascii=False)
        module.genres_asset = tf.saved_model.Asset(os.path.join(asset_src, GENRES_ASSET))
        module.model_asset = tf.saved_model.Asset(os.path.join(asset_src, MODEL_ASSET))
        saved = os.path.join(staging, "saved_model")
        # Plain ops in the graph: the export must run where it is served, XLA or not.
        with griffin_lim.plain_ops():
            tf.saved_model.save(module, saved, signatures=module.signatures())
        if os.path.exists(export_dir):
            shutil.rmtree(export_dir)
        os.replace(saved, export_dir)
    except BaseException:
        # A failed export (a missing run, a full disk, Ctrl-C) leaves nothing behind.
        shutil.rmtree(staging, ignore_errors=True)
        cli.remove_empty_folders(created)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_dir


# ----------------------------------------------------------------------------- CLI


def _define_flags(fv):
    flags.DEFINE_string("train_dir", None, "Training directory to export from (holds "
                        "genres.json, representation.json, network.json, checkpoints/).",
                        flag_values=fv)
    flags.DEFINE_string("export_dir", None, "Where to write the SavedModel (default: "
                        "TRAIN_DIR/export). An existing SavedModel there is replaced.",
                        flag_values=fv)
    flags.DEFINE_enum("phase", "if", list(representation_lib.PHASES),
                      "How audio gets its phase: 'if' integrates the generated "
                      "instantaneous frequency (GANSynth); 'griffin_lim' rebuilds it from "
                      "the magnitude.", flag_values=fv)
    flags.DEFINE_integer("griffin_lim_iterations", 32, "Griffin-Lim iterations when "
                         "--phase=griffin_lim.", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix to export (e.g. "
                        "TRAIN_DIR/checkpoints/ckpt-12); default: the latest.",
                        flag_values=fv)


def make_flags():
    fv = flags.FlagValues()
    _define_flags(fv)
    return fv


def main(argv=None):
    fv = make_flags()
    parse_flags(fv, argv, "export", __doc__)
    require(fv, "export", "train_dir")
    try:
        out = export_saved_model(fv.train_dir, fv.export_dir, fv.phase,
                                 fv.griffin_lim_iterations, fv.checkpoint)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise SystemExit(f"export: {e}") from None
    with open(os.path.join(out, "assets", MODEL_ASSET)) as f:
        meta = json.load(f)
    print(f"exported {out}: {meta['num_genres']} genres, {meta['sample_rate']} Hz, "
          f"{meta['audio_length']} samples, phase={meta['phase']}, "
          f"images_seen={meta['images_seen']}")
    print(f"signatures: {', '.join(SIGNATURES)}")
    return out


if __name__ == "__main__":
    main()
