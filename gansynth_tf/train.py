"""Training: the run directory, checkpoints that resume, TensorBoard, export at the end.

Entry point: `python run_training.py --flagfile=flags/quickstart.cfg` (see README.md).

Rerunning the same command after a kill continues from the last checkpoint, at the same
step, images seen, stage and alpha. The run directory layout is described in rundir.py.
"""

import dataclasses
import functools
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
    budget,
    cli,
    datasets,
    distribution,
    heap,
    losses,
    networks,
    normalizers,
    precision,
    progressive,
    rundir,
    runlock,
    tflog,
    train_flags,  # noqa: F401  (defines the flags)
)
from gansynth_tf import split as split_lib
from gansynth_tf.representation import Representation
from gansynth_tf.train_callbacks import (  # noqa: F401  (re-exported: train.RunCallback, ...)
    ProgressLog,
    RunCallback,
    format_duration,
    stage_name,
)

FLAGS = flags.FLAGS


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
    elif kind == "quickstart":
        config = networks.quickstart_config(num_genres, FLAGS.latent_dim or 64,
                                            FLAGS.conditioning)
    else:
        config = _custom_network_config(num_genres)
    if FLAGS.skip_upsampling != "nearest" and not FLAGS.skip_outputs:
        raise UsageError(f"--skip_upsampling={FLAGS.skip_upsampling} only acts on the skip "
                         "path: add --skip_outputs, or leave --skip_upsampling out")
    if FLAGS.gen_time_padding == "reflect" and config.resolutions[0][0] < 2:
        raise UsageError(f"--gen_time_padding=reflect needs at least 2 frames at every stage; "
                         f"the first stage is {config.resolutions[0][0]}x"
                         f"{config.resolutions[0][1]}: start --resolutions at 2 frames or more, "
                         "or leave --gen_time_padding out")
    return dataclasses.replace(config, genre_bias=FLAGS.genre_bias,
                               modulation=FLAGS.modulation,
                               skip_outputs=FLAGS.skip_outputs,
                               skip_upsampling=FLAGS.skip_upsampling,
                               gen_time_padding=FLAGS.gen_time_padding)


def _custom_network_config(num_genres):
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
                                      conditioning=FLAGS.conditioning)
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
    if FLAGS.time_budget_minutes > 0 and FLAGS.distribution == "multiworker":
        raise UsageError("--time_budget_minutes plans a run on one machine; it does not "
                         "work with --distribution=multiworker (use --total_images there)")
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
    plan = budget.BudgetPlan.load(train_dir)
    if plan is not None:  # a budget scaled the schedule: compare what the flags asked for
        saved_schedule = progressive.ProgressiveSchedule(
            saved_schedule.resolutions, plan.configured["stable_images"],
            plan.configured["transition_images"])
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
        ("modulation", saved_net.modulation, new_net.modulation),
        ("skip_outputs", saved_net.skip_outputs, new_net.skip_outputs),
        ("skip_upsampling", saved_net.skip_upsampling, new_net.skip_upsampling),
        ("gen_time_padding", saved_net.gen_time_padding, new_net.gen_time_padding),
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
            distribution.barrier(strategy)
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
        distribution.barrier(strategy)
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
    try:
        role = distribution.WorkerRole.from_tf_config(FLAGS.distribution)
    except ValueError as e:
        raise UsageError(str(e)) from None
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


def _train_locked(train_dir, scratch=None, role=distribution.WorkerRole()):
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
    try:
        policy = precision.from_flags(FLAGS.precision, FLAGS.mixed_precision,
                                      has_gpu=bool(tf.config.list_physical_devices("GPU")))
    except ValueError as e:
        raise UsageError(str(e)) from None
    keras.mixed_precision.set_global_policy(policy)
    logging.info("Compute precision: %s (--precision=%s)", policy, FLAGS.precision)
    strategy = distribution.make_strategy(FLAGS.distribution)

    # A resumed run keeps the split it started with, even if files were added since.
    saved_split = split_lib.load(train_dir)
    data_config = datasets.config_from_flags(FLAGS)
    source = datasets.build_source(data_config, split="train", track_split=saved_split)
    if role.chief and getattr(source, "track_split", None) is not None and saved_split is None:
        source.track_split.save(train_dir)
    multiworker = distribution.multi_worker(strategy)
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

    def build_compiled_gan():
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
        return gan

    plan, used_before = None, 0.0
    if role.chief:
        plan, schedule, used_before = _budget_plan(train_dir, schedule, build_compiled_gan,
                                                   representation, on_device,
                                                   len(source.genres), started)
    gan = build_compiled_gan()
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
    if plan is not None and FLAGS.time_budget_minutes <= 0:
        total_images = plan.scaled_total(total_images, FLAGS.batch_size)
    elif plan is not None:
        # The final stage trains on until the budget is spent, up to the total asked for:
        # the plan is a prediction, and a machine faster than measured uses its time.
        total_images = FLAGS.total_images or plan.configured["total_images"]
    end_of_run = math.ceil(total_images / FLAGS.batch_size)
    target = end_of_run if FLAGS.max_steps is None else min(end_of_run, FLAGS.max_steps)
    budget_stop = None
    if plan is not None and FLAGS.time_budget_minutes > 0:
        budget_stop = budget.stop_run(train_dir, plan, FLAGS.time_budget_minutes,
                                      config.num_stages - 1, started, used_before)
        if budget_stop.spent() and stage == config.num_stages - 1:
            logging.info("The time budget (--time_budget_minutes=%g) of this run is spent: "
                         "no more training", FLAGS.time_budget_minutes)
            target = min(target, step)
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
        progress = ProgressLog(schedule, config, FLAGS.batch_size, target, spe, FLAGS.verbose,
                               budget=budget_stop)
        if FLAGS.jit_compile:
            tflog.start_xla_quietly()  # XLA's once-a-process start-up lines, off the console
        # The dataset shuffles itself; fit's default shuffle=True only draws a warning.
        # Keras' own bar counts this call's epochs, not the run: ProgressLog reports instead.
        gan.fit(data, epochs=math.ceil(target / spe), initial_epoch=step // spe,
                steps_per_epoch=spe, verbose=0, shuffle=False,
                callbacks=[progressive.ProgressiveCallback(schedule), run_cb, progress,
                           *([budget_stop] if budget_stop else [])])
        step = int(gan.step_counter.numpy())
        manager.save(checkpoint_number=step)
        if audio_every:
            run_cb.write_audio(step)
        writer.close()
        if budget_stop:
            budget_stop.record()
    finished = step >= target or (budget_stop is not None and budget_stop.stopped)
    export_dir = None
    if FLAGS.export_at_end and finished and role.chief:
        from gansynth_tf import export
        export_dir = os.path.join(train_dir, "export")
        export.export_saved_model(train_dir, export_dir)
        logging.info("Exported the EMA generator to %s", export_dir)
    logging.info("%s", closing_summary(
        train_dir, gan, config, source.genres, images_at_start, target, end_of_run,
        export_dir, time.time() - started,
        budget_stopped=budget_stop is not None and budget_stop.stopped))
    return gan


def _budget_plan(train_dir, schedule, build_compiled_gan, representation, on_device,
                 num_genres, started):
    """budget.plan_run for this run's flags; the probe batch is what its train step takes
    (waves with --features_on_device, else normalised features)."""
    rng = np.random.default_rng(FLAGS.seed)
    batch = FLAGS.batch_size
    if on_device:
        inputs = rng.uniform(-0.5, 0.5, (batch, representation.audio_length))
    else:
        inputs = rng.uniform(-1.0, 1.0, (batch, *representation.spec_shape, 2))
    example = (inputs.astype(np.float32),
               np.eye(num_genres, dtype=np.float32)[rng.integers(0, num_genres, batch)])
    try:
        return budget.plan_run(train_dir, schedule, FLAGS.total_images or
                               schedule.total_images, FLAGS.time_budget_minutes, batch,
                               build_compiled_gan, example, started, seed=FLAGS.seed)
    except budget.BudgetError as e:
        raise UsageError(str(e)) from None


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
                    export_dir, seconds, budget_stopped=False):
    """What the run did, where its output is and what to run next (several lines)."""
    step, images = int(gan.step_counter.numpy()), int(gan.images_seen.numpy())
    session = images - images_at_start
    rate = f" at {session / seconds:.1f} images/s" if session and seconds > 0 else ""
    lines = [f"Done: {images:,} of {target * FLAGS.batch_size:,} images seen (step {step}), "
             f"{stage_name(config, gan.stage)}; this session {session:,} images in "
             f"{format_duration(seconds)}{rate}"]
    if budget_stopped:
        lines.append(f"  stopped by --time_budget_minutes={FLAGS.time_budget_minutes:g} at "
                     f"the final stage, {end_of_run - step} steps before --total_images "
                     f"(budget.json has the plan)")
    elif step < end_of_run:
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
    heap.fix_mmap_threshold()  # large freed tensors go back to the system (heap.py)
    try:
        train()
    except (UsageError, cli.PathError, runlock.RunLockedError, datasets.DataError,
            FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # python -m gansynth_tf.train, like run_training.py
    app.run(main)
