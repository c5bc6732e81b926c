"""Training: flags, run directory, checkpoints that resume, TensorBoard, export at the end.

Entry point: `python run_training.py --flagfile=flags/quickstart.cfg` (see README.md).

Rerunning the same command after a kill continues from the last checkpoint, at the same
step, images seen, stage and alpha. The run directory layout is described in rundir.py.
"""

import dataclasses
import functools
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from gansynth_tf import (
    cli,
    datasets,
    losses,
    networks,
    normalizers,
    progressive,
    rundir,
    runlock,
    summaries,
    tflog,
)
from gansynth_tf import split as split_lib
from gansynth_tf.representation import Representation

FLAGS = flags.FLAGS

# ---- run
# The loss flags' defaults are LossConfig's: one place for them.
_LOSS_DEFAULTS = losses.LossConfig()

flags.DEFINE_string("train_dir", None, "Directory for checkpoints, TensorBoard logs, the "
                    "resolved flags, genre map and export. Rerunning with the same "
                    "--train_dir resumes from its last checkpoint.")
flags.DEFINE_integer("seed", 0, "Seed for weights, latents and data order.")
flags.DEFINE_boolean("deterministic", False, "Reproducible runs: TensorFlow's op determinism "
                     "and a data pipeline that keeps its order, so two runs with the same "
                     "--seed end with the same weights; slower (see README.md).")
flags.DEFINE_integer("max_steps", None, "Stop after this many training steps in total "
                     "(counting steps before a resume); for smoke runs. Default: train to "
                     "--total_images.")
flags.DEFINE_integer("total_images", None, "Images (clips) to train on in total. Default: "
                     "the end of the progressive schedule (all stages' stable and transition "
                     "phases). GANSynth: 11M.")
flags.DEFINE_integer("steps_per_epoch", 100, "Steps per Keras epoch (one progress line).")
flags.DEFINE_integer("checkpoint_every_steps", 200, "Save a checkpoint every N steps (and at "
                     "every stage change and at the end).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep (oldest deleted first).")
flags.DEFINE_integer("summary_every_steps", 20, "Write TensorBoard scalars every N steps.")
flags.DEFINE_integer("audio_summary_every_steps", 500, "Write generated audio and "
                     "spectrogram images per genre to TensorBoard every N steps (0: never); "
                     "see docs/tensorboard.md.")
flags.DEFINE_integer("audio_summary_samples", 2, "Clips per genre drawn in each spectrogram "
                     "image: the first clips of the genre's audio track (which holds at "
                     "least this many), from fixed latents so progress is seen and heard on "
                     "the same seeds.", lower_bound=1)
flags.DEFINE_float("audio_summary_seconds", 5.0, "Length of each genre's audio summary: clips "
                   "from different fixed latents joined by short crossfades until the track "
                   "is at least this long (0: --audio_summary_samples clips).",
                   lower_bound=0.0)
flags.DEFINE_boolean("export_at_end", True, "Write a SavedModel to <train_dir>/export when "
                     "training finishes.")
flags.DEFINE_integer("verbose", 1, "Progress over the whole run (images seen of the "
                     "target, stage, alpha, images/s, ETA) every --steps_per_epoch steps: 0 "
                     "none, 1 progress lines, 2 progress lines with the losses.")

# ---- data (names match datasets.DataConfig)
datasets.define_data_flags(flags.FLAGS)
# Representation defaults match the default (quickstart) model; flags/gansynth_hires.cfg
# sets GANSynth's 16 kHz / 64000 / 128x1024 / 0.75.
flags.DEFINE_integer("sample_rate", 8000, "Model sample rate in Hz; audio is resampled.")
flags.DEFINE_integer("audio_length", 4096, "Samples per training clip (GANSynth: 64000 = 4 s "
                     "at 16 kHz); long tracks are cut into windows of this length.")

# ---- representation
flags.DEFINE_list("spec_shape", ["32", "128"], "Spectrogram (frames, bins) at full "
                  "resolution; bins a power of two, nfft = 2 * bins. Must equal the last "
                  "--resolutions entry.")
flags.DEFINE_float("overlap", 0.5, "STFT frame overlap (hop = nfft * (1 - overlap)); "
                   "GANSynth: 0.75.")
flags.DEFINE_enum("spectrogram", "mel", ["mel", "linear"], "Log-magnitude + IF on a mel "
                  "(GANSynth's best) or linear frequency axis.")
flags.DEFINE_enum("mel_inversion", "refined", ["refined", "magenta"], "Mel-to-audio inverse "
                  "for summaries, generation and export: ours (NNLS + Griffin-Lim) or "
                  "GANSynth's exact (fast, lossy).")
flags.DEFINE_enum("normalizer", "minmax", list(normalizers.NORMALIZERS), "Feature "
                  "normaliser: min/max over --normalizer_examples clips per channel "
                  "(minmax) or per channel and bin (minmax_freq), GANSynth's constants "
                  "(prespecified), or none.")
flags.DEFINE_integer("normalizer_examples", 512, "Clips used to fit a min/max normaliser.")

# ---- model
flags.DEFINE_enum("model", "quickstart", ["quickstart", "hires", "custom"], "Network size: "
                  "GANSynth's hi-res (2x16 -> 128x1024), the small CPU quickstart, or custom "
                  "(--resolutions and --channels).")
flags.DEFINE_list("resolutions", None, "Custom schedule as TxF entries, low to high, e.g. "
                  "4x16,8x32,16x64,32x128 (--model=custom).")
flags.DEFINE_list("channels", None, "Custom channels per stage for both networks "
                  "(--model=custom), e.g. 128,96,64,32.")
flags.DEFINE_integer("latent_dim", None, "Latent size (default: 256 hires, 64 quickstart).")
flags.DEFINE_boolean("genre_bias", False, "Generator: add a learned per-genre bias to every "
                     "conv output (genre information in every block, not only at the input).")
flags.DEFINE_enum("conditioning", "acgan", list(networks.CONDITIONING_MODES), "Genre "
                  "conditioning of the discriminator: auxiliary classifier (AC-GAN) or "
                  "projection (plus the classifier head).")

# ---- optimisation
flags.DEFINE_integer("batch_size", 16, "Global batch size (split across replicas).")
flags.DEFINE_float("g_learning_rate", 8e-4, "Generator Adam learning rate (GANSynth: 8e-4).")
flags.DEFINE_float("d_learning_rate", 8e-4, "Discriminator Adam learning rate.")
flags.DEFINE_float("adam_beta1", 0.0, "Adam beta1 (GANSynth: 0).")
flags.DEFINE_float("adam_beta2", 0.99, "Adam beta2 (GANSynth: 0.99).")
flags.DEFINE_enum("loss", _LOSS_DEFAULTS.kind, list(losses.ADVERSARIAL_LOSSES), "Adversarial loss: GANSynth's "
                  "WGAN-GP (--gp_weight, --drift_weight) or the non-saturating logistic loss "
                  "with the R1 penalty on reals (--r1_gamma).")
flags.DEFINE_float("r1_gamma", _LOSS_DEFAULTS.r1_gamma, "R1 weight gamma (loss += gamma / 2 * ||grad D(real)||^2) "
                   "with --loss=nonsaturating.", lower_bound=0.0)
flags.DEFINE_float("penalty_fraction", _LOSS_DEFAULTS.penalty_fraction, "Fraction of each batch the gradient penalty "
                   "(GP or R1) is computed on, weighted up to the whole batch: the double "
                   "backprop is the costliest part of a step.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("consistency_weight", _LOSS_DEFAULTS.consistency_weight, "Weight of the phase-consistency term: at the "
                   "final stage the generator also pays the mean |log-magnitude of the audio "
                   "its own IF gives - the log-magnitude it drew| (normalised units); 0 = off.",
                   lower_bound=0.0)
flags.DEFINE_float("dynamics_weight", _LOSS_DEFAULTS.dynamics_weight, "Weight of the temporal-dynamics term: the "
                   "generator also pays the squared gap between its clips' and the same "
                   "genre's real clips' contrast and flux over time of the band-averaged "
                   "log-magnitude (gan.dynamics); 0 = off.", lower_bound=0.0)
flags.DEFINE_float("gp_weight", _LOSS_DEFAULTS.gp_weight, "WGAN-GP gradient penalty weight.")
flags.DEFINE_float("drift_weight", _LOSS_DEFAULTS.drift_weight, "Weight of E[D(real)^2].")
flags.DEFINE_float("ac_weight", _LOSS_DEFAULTS.ac_weight, "Weight of the genre classifier cross-entropy "
                   "(GANSynth's best: 10).")
flags.DEFINE_float("mode_seeking_weight", _LOSS_DEFAULTS.mode_seeking_weight, "Weight of the MSGAN mode-seeking term "
                   "1 / (mean|G(z1,c)-G(z2,c)| / mean|z1-z2| + 1e-5); 0 turns it off.")
flags.DEFINE_float("ema_decay", 0.999, "Decay of the generator weights' moving average "
                   "(what sampling and export use).")
flags.DEFINE_float("ema_rampup", 0.05, "Cap the moving average's half-life at this fraction "
                   "of the images seen so far (StyleGAN2's ramp-up), so that short runs do "
                   "not sample a stale average; 0 = plain --ema_decay.", lower_bound=0.0)
flags.DEFINE_integer("stable_images", 800_000, "Images per stable phase (GANSynth: 800k).")
flags.DEFINE_integer("transition_images", 800_000, "Images per fade-in phase (GANSynth: "
                     "800k).")

# ---- performance and scale
flags.DEFINE_boolean("jit_compile", False, "Compile the train step with XLA.")
flags.DEFINE_boolean("mixed_precision", False, "mixed_float16 with loss scaling (GPU).")
flags.DEFINE_enum("distribution", "none", ["none", "mirrored", "multiworker"], "tf.distribute "
                  "strategy: one device, MirroredStrategy over local GPUs, or "
                  "MultiWorkerMirroredStrategy over machines (TF_CONFIG).")
flags.DEFINE_boolean("features_on_device", None, "Compute the spectral features (STFT, "
                     "mel, IF, normalisation) inside the train step on the accelerator; the "
                     "input pipeline then only decodes and cuts waves on the host. A "
                     "placement choice: the features are the same, and a run may resume "
                     "with either value. Default: on when TensorFlow sees a GPU.")


class UsageError(ValueError):
    """A flag combination that cannot work; the message names the flag and the fix."""


def resolve_features_on_device():
    """--features_on_device, resolved: unset means on when TensorFlow sees a GPU."""
    if FLAGS.features_on_device is not None:
        return bool(FLAGS.features_on_device)
    return bool(tf.config.list_physical_devices("GPU"))


# ----------------------------------------------------------------------------- building


def _parse_resolutions(entries):
    out = []
    for entry in entries:
        try:
            t, f = entry.lower().split("x")
            out.append((int(t), int(f)))
        except ValueError:
            raise UsageError(f"--resolutions entry {entry!r} is not TxF (e.g. 8x64)") from None
    return tuple(out)


def network_config_from_flags(num_genres):
    kind = FLAGS.model
    if kind == "hires":
        config = networks.hires_config(num_genres, FLAGS.latent_dim or 256, FLAGS.conditioning)
        return dataclasses.replace(config, genre_bias=FLAGS.genre_bias)
    if kind == "quickstart":
        config = networks.quickstart_config(num_genres, FLAGS.latent_dim or 64,
                                            FLAGS.conditioning)
        return dataclasses.replace(config, genre_bias=FLAGS.genre_bias)
    if not FLAGS.resolutions or not FLAGS.channels:
        raise UsageError("--model=custom needs --resolutions (e.g. 4x16,8x32) and "
                         "--channels (one per resolution)")
    resolutions = _parse_resolutions(FLAGS.resolutions)
    channels = tuple(int(c) for c in FLAGS.channels)
    if len(channels) != len(resolutions):
        raise UsageError(f"--channels has {len(channels)} entries but --resolutions has "
                         f"{len(resolutions)}: give one channel count per resolution")
    try:
        return networks.NetworkConfig(resolutions, channels, channels, num_genres,
                                      FLAGS.latent_dim or 128,
                                      conditioning=FLAGS.conditioning,
                                      genre_bias=FLAGS.genre_bias)
    except ValueError as e:
        raise UsageError(f"--resolutions/--channels: {e}") from None


def representation_from_flags():
    try:
        spec_shape = tuple(int(v) for v in FLAGS.spec_shape)
        return Representation(sample_rate=FLAGS.sample_rate, audio_length=FLAGS.audio_length,
                              spec_shape=spec_shape, overlap=FLAGS.overlap,
                              mel=FLAGS.spectrogram == "mel",
                              mel_inversion=FLAGS.mel_inversion)
    except ValueError as e:
        raise UsageError(f"--spec_shape/--overlap/--audio_length: {e}") from None


def check_flags():
    if not FLAGS.train_dir:
        raise UsageError("--train_dir is required: where checkpoints and logs go")
    for name in ("batch_size", "steps_per_epoch", "checkpoint_every_steps",
                 "keep_checkpoints", "summary_every_steps", "stable_images",
                 "transition_images"):
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1")
    if FLAGS.max_steps is not None and FLAGS.max_steps < 0:
        raise UsageError(f"--max_steps={FLAGS.max_steps} must be >= 0")
    if FLAGS.mode_seeking_weight < 0:
        raise UsageError(f"--mode_seeking_weight={FLAGS.mode_seeking_weight} must be >= 0")
    if FLAGS.mode_seeking_weight > 0 and FLAGS.batch_size % 2:
        raise UsageError(f"--batch_size={FLAGS.batch_size} must be even when "
                         f"--mode_seeking_weight > 0 (fakes are paired)")
    if FLAGS.penalty_fraction <= 0:
        raise UsageError(f"--penalty_fraction={FLAGS.penalty_fraction} must be in (0, 1]")
    if FLAGS.dataset != "synthetic" and not FLAGS.data_dir:
        raise UsageError(f"--dataset={FLAGS.dataset} needs --data_dir (see data/README.md)")
    datasets.config_from_flags(FLAGS).validate()  # --sample_rate=0 and the like
    # Fail on a bad representation or model before reading any data.
    spec_shape = representation_from_flags().spec_shape
    final = network_config_from_flags(num_genres=2).final_resolution
    if tuple(spec_shape) != tuple(final):
        raise UsageError(f"--spec_shape {spec_shape} must equal the model's final resolution "
                         f"{final} (--model/--resolutions)")


def make_strategy():
    if FLAGS.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    if FLAGS.distribution == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """Which process of a multi-worker run this is (TF_CONFIG's task), and whether it is
    the chief: the one process that writes the run (docs/distributed.md).

    The chief is the task of type "chief" if the cluster has one, else worker 0; a run
    without --distribution=multiworker (or without TF_CONFIG) is its own chief.
    """

    chief: bool = True
    task_type: str = None
    task_id: int = None

    @classmethod
    def from_flags(cls):
        if FLAGS.distribution != "multiworker":
            return cls()
        try:
            tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        except ValueError as e:
            raise UsageError(f"--distribution=multiworker: TF_CONFIG is not JSON ({e})") from None
        cluster, task = tf_config.get("cluster") or {}, tf_config.get("task") or {}
        if not task:
            return cls()
        task_type, task_id = task.get("type"), int(task.get("index", 0))
        chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                         and "chief" not in cluster)
        return cls(chief, task_type, task_id)

    @property
    def name(self):
        return "the only worker" if self.task_type is None else \
            f"{self.task_type} {self.task_id}"


def _multi_worker(strategy):
    return strategy.extended._in_multi_worker_mode()  # pylint: disable=protected-access


def _barrier(strategy):
    """Returns once every worker of `strategy` has called it (a tiny all-reduce)."""
    if _multi_worker(strategy):
        one = strategy.run(tf.function(lambda: tf.constant(1.0)))
        strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None).numpy()


# ----------------------------------------------------------------------------- callbacks


class RunCallback(keras.callbacks.Callback):
    """Per-step bookkeeping: stage/alpha in the logs, TensorBoard, checkpoints, stop.

    Scalars every `summary_every` steps; every `audio_every` steps a spectrogram image and
    an audio track of at least `audio_seconds` (summaries.py) per genre, from latents fixed
    for the run so that steps compare; the image draws the first `audio_samples` clips of
    the track. A checkpoint every `checkpoint_every` steps and at each stage change; stops
    at `target_steps`.
    """

    def __init__(self, manager, writer, representation, genres, target_steps,
                 summary_every, audio_every, checkpoint_every, audio_samples, seed,
                 audio_seconds=0.0):
        super().__init__()
        self.manager, self.writer = manager, writer
        self.representation, self.genres = representation, genres
        self.target_steps = target_steps
        self.summary_every, self.audio_every = summary_every, audio_every
        self.checkpoint_every = checkpoint_every
        self.audio_samples = audio_samples
        self.audio_clips = summaries.track_clips(representation, audio_seconds, audio_samples)
        self._audio_z = None  # [genres * clips, latent], drawn once the latent size is known
        self._seed = seed
        self._last_time = None
        self._last_images = None
        self._last_stage = None

    def _step(self):
        return int(self.model.step_counter.numpy())

    def on_train_begin(self, logs=None):
        self._last_time = time.time()
        self._last_images = int(self.model.images_seen.numpy())
        self._last_stage = self.model.stage

    def on_train_batch_end(self, batch, logs=None):
        model = self.model
        step = self._step()
        if logs is not None:
            logs["stage"] = float(model.stage)
            logs["alpha"] = float(model.alpha.numpy())
        if step % self.summary_every == 0:
            self._scalars(step, logs or {})
        if self.audio_every and step % self.audio_every == 0:
            self.write_audio(step)
        if step % self.checkpoint_every == 0 or model.stage != self._last_stage:
            self.manager.save(checkpoint_number=step)
            self._last_stage = model.stage
        if step >= self.target_steps:
            model.stop_training = True

    def _scalars(self, step, logs):
        now, images = time.time(), int(self.model.images_seen.numpy())
        rate = (images - self._last_images) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_images = now, images
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                if np.ndim(value) == 0:
                    tf.summary.scalar(f"train/{name}", float(value))
            tf.summary.scalar("progress/stage", float(self.model.stage))
            tf.summary.scalar("progress/alpha", float(self.model.alpha.numpy()))
            tf.summary.scalar("progress/images_seen", float(images))
            tf.summary.scalar("progress/images_per_second", rate)

    def audio_latents(self, latent_dim):
        """float32 [genres * clips, latent_dim]: genre g's clip k in row g * clips + k, the
        same at every summary of the run (and of a resume with the same --seed)."""
        if self._audio_z is None or self._audio_z.shape[1] != latent_dim:
            rng = np.random.RandomState(self._seed + 12345)
            rows = len(self.genres) * self.audio_clips
            self._audio_z = rng.randn(rows, latent_dim).astype(np.float32)
        return self._audio_z

    def write_audio(self, step):
        """Spectrogram image and audio track per genre, from the EMA generator."""
        model = self.model
        z = self.audio_latents(model.latent_dim)
        ids = np.repeat(np.arange(len(self.genres)), self.audio_clips).astype(np.int32)
        onehot = tf.one_hot(ids, len(self.genres))
        batch = summaries.INVERSE_BATCH
        feats = tf.concat([model.ema_generator([tf.constant(z[i:i + batch]), onehot[i:i + batch]])
                           for i in range(0, len(z), batch)], axis=0)
        feats = rundir.upsample_to(feats, model.config.final_resolution)
        feats = tf.reshape(feats, [len(self.genres), self.audio_clips, *feats.shape[1:]])
        summaries.write_genre_summaries(self.writer, step, self.representation, self.genres,
                                        feats, image_clips=self.audio_samples)


def format_duration(seconds):
    """'42s', '15m20s', '3h05m': short enough for a progress line."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def stage_name(config, stage):
    """'stage 2/4 (8x32)': 1-based, as a person counts."""
    return f"stage {stage + 1}/{config.num_stages} ({'x'.join(map(str, config.resolutions[stage]))})"


class ProgressLog(keras.callbacks.Callback):
    """One progress report over the whole run, counted from the model's own images_seen.

    Keras' bar counts the steps of one fit() call against its epochs: with --max_steps it
    jumped to the end, after a resume it started again at 1. This one reads images_seen
    (restored with the checkpoint) against the run's target, so a resume continues the
    count. Images/s and the ETA come from the current stage (later stages are slower), from
    its first step's end on (that step traces the new train function).

    A line every `every_steps` steps and at the last one (verbose 1; verbose 2 adds the
    losses, 0 prints none); each stage change is logged. Lines rather than a bar redrawn
    in place: TensorFlow's own log lines (checkpoint saves) would land inside such a bar.
    """

    BAR_WIDTH = 20

    def __init__(self, schedule, config, batch_size, target_steps, every_steps, verbose,
                 stream=None):
        super().__init__()
        self.schedule, self.config = schedule, config
        self.target_images = target_steps * batch_size
        self.target_steps, self.every_steps, self.verbose = target_steps, every_steps, verbose
        self.stream = stream or sys.stdout
        self._stage = None
        self._window = None  # (time, images) at the end of the current stage's first step
        self._rate = None

    def on_train_begin(self, logs=None):
        self._stage = self.model.stage

    def on_train_batch_end(self, batch, logs=None):
        model = self.model
        step, images = int(model.step_counter.numpy()), int(model.images_seen.numpy())
        now = time.time()
        if model.stage != self._stage:
            self._stage, self._window = model.stage, None
            logging.info("%s begins at %s images%s",
                         stage_name(self.config, model.stage).capitalize(),
                         f"{self._stage_start(model.stage):,}",
                         f", fading in over {self.schedule.transition_images:,} images"
                         if model.stage > 0 else "")
        if self._window is None:
            self._window = (now, images)
        elif now > self._window[0]:
            self._rate = (images - self._window[1]) / (now - self._window[0])
        if self.verbose > 0 and (step >= self.target_steps or step % self.every_steps == 0):
            self.stream.write(self.line(images, logs) + "\n")
            self.stream.flush()

    def _stage_start(self, stage):
        return next(p.start for p in self.schedule.phases() if p.stage == stage)

    def line(self, images, logs=None):
        """'[#####...] 1,600/48,000 images (3%)  stage 2/4 (8x32) alpha 0.42  52.0 images/s
        ETA 15m20s', with the losses at verbose 2."""
        target = max(self.target_images, 1)
        done = min(images / target, 1.0)
        filled = int(done * self.BAR_WIDTH)
        parts = [f"[{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] {images:,}/"
                 f"{self.target_images:,} images ({100 * done:.0f}%)",
                 f"{stage_name(self.config, self.model.stage)} alpha "
                 f"{float(self.model.alpha.numpy()):.2f}"]
        if self._rate:
            parts.append(f"{self._rate:.1f} images/s")
            parts.append(f"ETA {format_duration(max(self.target_images - images, 0) / self._rate)}")
        else:
            parts.append("ETA --")
        if self.verbose >= 2 and logs:
            parts.append(" ".join(f"{name} {float(logs[name]):.4g}"
                                  for name in ("d_loss", "g_loss") if name in logs))
        return "  ".join(parts)


# ----------------------------------------------------------------------------- main


# The flag of each LossConfig field (saved to loss.json when a run starts; a resume with
# other values would train another objective on the same weights).
LOSS_FLAG_OF_FIELD = {"kind": "loss"}


def loss_config_from_flags():
    """The LossConfig the loss flags describe."""
    return losses.LossConfig(**{
        f.name: getattr(FLAGS, LOSS_FLAG_OF_FIELD.get(f.name, f.name))
        for f in dataclasses.fields(losses.LossConfig)})


def _flag_text(value):
    """A setting as it is written on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        if value and isinstance(value[0], (tuple, list)):  # resolutions
            return ",".join("x".join(str(v) for v in r) for r in value)
        return ",".join(str(v) for v in value)
    return str(value)


def resume_differences(train_dir):
    """[(flag, saved value, value now)] for every setting of the flags that differs from
    what the run in train_dir saved: those that shape the data (representation, the
    normaliser), the model (network), its schedule and the loss."""
    saved_rep, new_rep = Representation.load(train_dir), representation_from_flags()
    saved_net = rundir.load_network_config(train_dir)
    new_net = network_config_from_flags(saved_net.num_genres)  # genres are checked apart
    saved_schedule = rundir.load_schedule(train_dir)
    saved_model = rundir.load_network_preset(train_dir)
    pairs = [
        ("sample_rate", saved_rep.sample_rate, new_rep.sample_rate),
        ("audio_length", saved_rep.audio_length, new_rep.audio_length),
        ("spec_shape", saved_rep.spec_shape, new_rep.spec_shape),
        ("overlap", saved_rep.overlap, new_rep.overlap),
        ("spectrogram", "mel" if saved_rep.mel else "linear", FLAGS.spectrogram),
        ("normalizer", saved_rep.normalizer.get("kind"), FLAGS.normalizer),
        ("latent_dim", saved_net.latent_dim, new_net.latent_dim),
        ("conditioning", saved_net.conditioning, new_net.conditioning),
        ("genre_bias", saved_net.genre_bias, new_net.genre_bias),
        ("stable_images", saved_schedule.stable_images, FLAGS.stable_images),
        ("transition_images", saved_schedule.transition_images, FLAGS.transition_images),
    ]
    if saved_model is not None and saved_model != FLAGS.model:
        pairs.append(("model", saved_model, FLAGS.model))  # its sizes differ with it
    else:
        pairs += [("resolutions", saved_net.resolutions, new_net.resolutions),
                  ("channels", saved_net.gen_channels, new_net.gen_channels),
                  ("channels", saved_net.disc_channels, new_net.disc_channels)]
    saved_loss = rundir.load_loss_config(train_dir)
    if saved_loss is not None:
        new_loss = loss_config_from_flags()
        pairs += [(LOSS_FLAG_OF_FIELD.get(f.name, f.name), getattr(saved_loss, f.name),
                   getattr(new_loss, f.name)) for f in dataclasses.fields(losses.LossConfig)]
    out = []
    for flag, saved, new in pairs:
        saved, new = _flag_text(saved), _flag_text(new)
        if saved != new and (flag, saved, new) not in out:
            out.append((flag, saved, new))
    return out


def check_resume_settings(train_dir):
    """Stops a resume whose flags would change the data, model or loss of the run."""
    differences = resume_differences(train_dir)
    if differences:
        changes = "; ".join(f"--{flag}={saved} there, --{flag}={new} now"
                            for flag, saved, new in differences)
        raise UsageError(
            f"cannot resume {train_dir} with other settings ({changes}): resume with its "
            f"own (--flagfile={os.path.join(train_dir, 'flags.txt')}) or start a new run "
            f"with another --train_dir")


def _prepare_run(source, chief=True, strategy=None):
    """New run: fit the normaliser and write configs. Resume: read them back and check.

    In a multi-worker run only the chief fits and writes them; the other workers wait for
    it (a barrier on `strategy`) and read the chief's files, so that every worker
    normalises its share of the data alike.
    """
    train_dir = FLAGS.train_dir
    resuming = rundir.latest_checkpoint(train_dir) is not None
    if not chief or resuming:
        if strategy is not None:
            _barrier(strategy)
        saved = rundir.load_genres(train_dir)
        if list(saved) != list(source.genres):
            raise UsageError(
                f"{train_dir} was trained on genres {saved} but the data now has "
                f"{source.genres}; use a new --train_dir or the original data")
        representation = Representation.load(train_dir)
        config = rundir.load_network_config(train_dir)
        schedule = rundir.load_schedule(train_dir)
        if resuming:
            logging.info("Resuming from %s", rundir.latest_checkpoint(train_dir))
        return representation, config, schedule
    representation = representation_from_flags()
    config = network_config_from_flags(source.num_genres)
    norm = normalizers.make_normalizer(FLAGS.normalizer)
    if isinstance(norm, normalizers.MinMaxNormalizer):
        logging.info("Fitting the %s normaliser on %d clips", FLAGS.normalizer,
                     FLAGS.normalizer_examples)
        datasets.fit_normalizer(source, representation.waves_to_unnormalized, norm,
                                num_clips=FLAGS.normalizer_examples)
    representation.set_normalizer(norm)
    schedule = progressive.ProgressiveSchedule(config.resolutions, FLAGS.stable_images,
                                               FLAGS.transition_images)
    representation.save(train_dir)
    rundir.save_genres(train_dir, source.genres)
    rundir.save_network_config(train_dir, config, preset=FLAGS.model)
    rundir.save_schedule(train_dir, schedule)
    rundir.save_loss_config(train_dir, loss_config_from_flags())
    if strategy is not None:
        _barrier(strategy)
    return representation, config, schedule


def make_checkpoint(gan):
    """The objects a resume needs, under the names rundir.TrainedGenerator reads."""
    return tf.train.Checkpoint(
        generator=gan.generator, ema_generator=gan.ema_generator,
        discriminator=gan.discriminator, g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer, images_seen=gan.images_seen.value,
        step=gan.step_counter.value, alpha=gan.alpha.value)


def train():
    """Runs (or resumes) training as the flags say; returns the trained GAN.

    Holds the train_dir's lock (runlock) throughout: a second run on it stops at once.
    In a multi-worker run only the chief takes the lock and writes into the train_dir;
    every other worker reads the chief's run files and writes its own checkpoints (saving
    is collective: every worker must save) into a private temporary folder that is
    removed when it ends.
    """
    check_flags()
    train_dir = FLAGS.train_dir
    role = WorkerRole.from_flags()
    if not role.chief:
        scratch = tempfile.mkdtemp(prefix=f"gansynth_{role.task_type}{role.task_id}_")
        logging.info("%s is not the chief: it reads %s and writes its checkpoints to %s "
                     "(removed at the end)", role.name.capitalize(), train_dir, scratch)
        try:
            return _train_locked(train_dir, scratch, role)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    created = cli.missing_folders(train_dir)
    cli.make_writable_dir(train_dir, "--train_dir")
    try:
        with runlock.acquire(train_dir) as lock:
            if lock.taken_over:
                logging.warning("Taking over %s from a run that ended without releasing "
                                "it (pid %s on host %s, started %s)", lock.path,
                                lock.taken_over.get("pid"), lock.taken_over.get("host"),
                                lock.taken_over.get("started"))
            return _train_locked(train_dir)
    except BaseException:
        # A run that fails before writing anything leaves no empty run folder behind.
        cli.remove_empty_folders(created)
        raise


def _train_locked(train_dir, scratch=None, role=WorkerRole()):
    """Trains into train_dir; a non-chief worker (`role`) writes into `scratch` instead."""
    from gansynth_tf import gan as gan_lib  # heavy; after flags are parsed

    started = time.time()

    # Before any data is read: a resume that would train something else stops at once.
    if rundir.latest_checkpoint(train_dir) is not None:
        check_resume_settings(train_dir)
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        # Picks deterministic kernels (or raises for ops that have none) and runs tf.data
        # maps in order; the data config's `deterministic` says the same to the pipeline.
        tf.config.experimental.enable_op_determinism()
    if FLAGS.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy()

    # A resumed run keeps the split it started with, even if files were added since.
    saved_split = split_lib.load(train_dir)
    data_config = datasets.config_from_flags(FLAGS)
    source = datasets.build_source(data_config, split="train", track_split=saved_split)
    if role.chief and getattr(source, "track_split", None) is not None and saved_split is None:
        source.track_split.save(train_dir)
    multiworker = _multi_worker(strategy)
    representation, config, schedule = _prepare_run(source, role.chief,
                                                    strategy if multiworker else None)
    if role.chief:
        with open(os.path.join(train_dir, "flags.txt"), "w") as f:
            f.write(FLAGS.flags_into_string())
        # Written at every start: a resume may point at a moved --data_dir, and evaluate
        # should read where the data is now.
        rundir.save_data_config(train_dir, data_config)

    on_device = resolve_features_on_device()
    logging.info("Spectral features computed %s (--features_on_device=%s)",
                 "in the train step, on the device" if on_device else
                 "in the input pipeline, on the host", str(on_device).lower())
    to_features = functools.partial(datasets.batch_features, representation.waves_to_features)
    with strategy.scope():
        gan = gan_lib.build_gan(config, seed=FLAGS.seed)
        d_opt, g_opt = gan_lib.make_optimizers(FLAGS.d_learning_rate, FLAGS.adam_beta1,
                                               FLAGS.adam_beta2)
        g_opt.learning_rate = FLAGS.g_learning_rate
        gan.compile(d_opt, g_opt, loss=loss_config_from_flags(),
                    consistency_fn=representation.resynthesized_log_magnitude,
                    ema_decay=FLAGS.ema_decay, ema_rampup=FLAGS.ema_rampup,
                    preprocess_fn=to_features if on_device else None,
                    jit_compile=FLAGS.jit_compile)
    checkpoint = make_checkpoint(gan)
    # Every worker saves (MultiWorkerMirroredStrategy's save is collective); only the
    # chief's checkpoints are the run's, and every worker resumes from them.
    manager = tf.train.CheckpointManager(checkpoint, rundir.checkpoint_dir(scratch or train_dir),
                                         max_to_keep=FLAGS.keep_checkpoints)
    latest = rundir.latest_checkpoint(train_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    stage, alpha = schedule.stage_alpha(int(gan.images_seen.numpy()))
    gan.set_stage(stage, alpha)

    step = int(gan.step_counter.numpy())
    images_at_start = int(gan.images_seen.numpy())
    total_images = FLAGS.total_images or schedule.total_images
    end_of_run = math.ceil(total_images / FLAGS.batch_size)
    target = end_of_run if FLAGS.max_steps is None else min(end_of_run, FLAGS.max_steps)
    logging.info("Step %d of %d (%s of %s images); %s, alpha %.3f", step, target,
                 f"{images_at_start:,}", f"{target * FLAGS.batch_size:,}",
                 stage_name(config, stage), alpha)

    if step < target:
        data = datasets.make_train_dataset(
            source, FLAGS.batch_size, None if on_device else representation.waves_to_features)
        if multiworker and FLAGS.deterministic:
            # Every worker reads the whole stream (in the same order) and keeps its share of
            # each global batch: the batches are those of a one-process run with this seed.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = \
                tf.data.experimental.AutoShardPolicy.DATA
            data = data.with_options(options)
        # TensorBoard and the audio summaries are the chief's.
        writer = (tf.summary.create_file_writer(train_dir) if role.chief
                  else tf.summary.create_noop_writer())
        audio_every = FLAGS.audio_summary_every_steps if role.chief else 0
        run_cb = RunCallback(manager, writer, representation, source.genres, target,
                             FLAGS.summary_every_steps, audio_every,
                             FLAGS.checkpoint_every_steps, FLAGS.audio_summary_samples,
                             FLAGS.seed, FLAGS.audio_summary_seconds)
        spe = FLAGS.steps_per_epoch
        progress = ProgressLog(schedule, config, FLAGS.batch_size, target, spe, FLAGS.verbose)
        if FLAGS.jit_compile:
            tflog.start_xla_quietly()  # XLA's once-a-process start-up lines, off the console
        # The dataset shuffles itself; fit's default shuffle=True only draws a warning.
        # Keras' own bar counts this call's epochs, not the run: ProgressLog reports instead.
        gan.fit(data, epochs=math.ceil(target / spe), initial_epoch=step // spe,
                steps_per_epoch=spe, verbose=0, shuffle=False,
                callbacks=[progressive.ProgressiveCallback(schedule), run_cb, progress])
        step = int(gan.step_counter.numpy())
        manager.save(checkpoint_number=step)
        if audio_every:
            run_cb.write_audio(step)
        writer.close()
    export_dir = None
    if FLAGS.export_at_end and step >= target and role.chief:
        from gansynth_tf import export
        export_dir = os.path.join(train_dir, "export")
        export.export_saved_model(train_dir, export_dir)
        logging.info("Exported the EMA generator to %s", export_dir)
    logging.info("%s", closing_summary(
        train_dir, gan, config, source.genres, images_at_start, target, end_of_run,
        export_dir, time.time() - started))
    return gan


def _next_programs():
    """The interpreter running this (so the commands find the package) and the TensorBoard
    beside it (a virtualenv's; else the one on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return sys.executable, beside if os.path.exists(beside) else "tensorboard"


def _here_or_absolute(path):
    """`path` relative to the working folder when it lies inside it (.venv/bin/python)."""
    if not os.path.isabs(path):
        return path
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def closing_summary(train_dir, gan, config, genres, images_at_start, target, end_of_run,
                    export_dir, seconds):
    """What the run did, where its output is and what to run next (several lines)."""
    step, images = int(gan.step_counter.numpy()), int(gan.images_seen.numpy())
    session = images - images_at_start
    rate = f" at {session / seconds:.1f} images/s" if session and seconds > 0 else ""
    lines = [f"Done: {images:,} of {target * FLAGS.batch_size:,} images seen (step {step}), "
             f"{stage_name(config, gan.stage)}; this session {session:,} images in "
             f"{format_duration(seconds)}{rate}"]
    if step < end_of_run:
        lines.append(f"  stopped at --max_steps={FLAGS.max_steps}, {end_of_run - step} steps "
                     f"before the end of --total_images: rerun with a larger --max_steps (or "
                     f"none) to continue")
    run = shlex.quote(train_dir)
    python, tensorboard = (shlex.quote(_here_or_absolute(p)) for p in _next_programs())
    if export_dir:
        lines.append(f"  export: {export_dir}")
    elif not FLAGS.export_at_end:
        lines.append(f"  no export (--export_at_end=false): {python} -m gansynth_tf.export "
                     f"--train_dir={run} writes one")
    lines += ["  next:",
              f"    {python} -m gansynth_tf.generate --train_dir={run} "
              f"--output_dir={shlex.quote(os.path.join(train_dir, 'samples'))} "
              f"--genre={shlex.quote(genres[0])} --num_samples=8",
              f"    {python} -m gansynth_tf.evaluate --train_dir={run}",
              f"    {tensorboard} --logdir {run}"]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; flags take the form "
                             f"--name=value")
    tflog.quiet_tensorflow_info()
    try:
        train()
    except (UsageError, cli.PathError, runlock.RunLockedError, datasets.DataError,
            FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # python -m gansynth_tf.train, like run_training.py
    app.run(main)
