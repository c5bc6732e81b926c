"""The layout of a training directory, and loading a trained generator from one.

    train_dir/
      train.lock            while a run trains here: its pid, host and start (runlock.py)
      flags.txt             resolved command-line flags (a flagfile: rerun with --flagfile)
      genres.json           genre names in id order
      representation.json   sample rate, clip length, STFT shape, mel/linear, normaliser
      network.json          the NetworkConfig (resolution schedule, channels, latent size)
      schedule.json         the progressive schedule (images per stable/transition phase)
      loss.json             the losses.LossConfig (--loss, its weights), compared on resume
      data.json             the datasets.DataConfig it trained on (what evaluate reads)
      checkpoints/          tf.train.CheckpointManager: ckpt-N.* + "checkpoint" index
      events.out.tfevents*  TensorBoard
      export/               SavedModel written at the end of training

Everything needed to sample lives here: loading needs no dataset.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from gansynth_tf import cli, datasets, losses, networks, progressive
from gansynth_tf.representation import Representation

GENRES = datasets.GENRE_MAP_FILE
NETWORK = "network.json"
PRESET_KEY = "preset"  # in network.json beside the NetworkConfig fields
SCHEDULE = "schedule.json"
LOSS = "loss.json"
DATA = "data.json"
CHECKPOINTS = "checkpoints"


def _write_json(path, obj):
    cli.write_json(path, obj, indent=2)


def _read_json(train_dir, name):
    path = os.path.join(train_dir, name)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {train_dir!r} is not a train_dir written by run_training.py "
            f"(or training has not started yet)")
    with open(path) as f:
        return json.load(f)


def save_genres(train_dir, genres):
    datasets.save_genre_map(train_dir, genres)


def load_genres(train_dir):
    return datasets.load_genre_map(train_dir)


def save_network_config(train_dir, config, preset=None):
    """network.json: the NetworkConfig, and the --model preset it came from (if any)."""
    values = config.to_dict()
    if preset is not None:
        values[PRESET_KEY] = preset
    _write_json(os.path.join(train_dir, NETWORK), values)


def load_network_config(train_dir):
    values = _read_json(train_dir, NETWORK)
    values.pop(PRESET_KEY, None)
    return networks.NetworkConfig.from_dict(values)


def load_network_preset(train_dir):
    """The --model preset the run's network came from, or None (custom, or an older run)."""
    return _read_json(train_dir, NETWORK).get(PRESET_KEY)


def save_schedule(train_dir, schedule):
    _write_json(os.path.join(train_dir, SCHEDULE), {
        "resolutions": [list(r) for r in schedule.resolutions],
        "stable_images": schedule.stable_images,
        "transition_images": schedule.transition_images})


def load_schedule(train_dir):
    return progressive.ProgressiveSchedule(**_read_json(train_dir, SCHEDULE))


def save_loss_config(train_dir, config):
    _write_json(os.path.join(train_dir, LOSS), config.to_dict())


def load_loss_config(train_dir):
    """The run's :class:`~gansynth_tf.losses.LossConfig`, or None for a run from before
    the loss was saved."""
    if not os.path.exists(os.path.join(train_dir, LOSS)):
        return None
    return losses.LossConfig.from_dict(_read_json(train_dir, LOSS))


def save_data_config(train_dir, config):
    _write_json(os.path.join(train_dir, DATA), dataclasses.asdict(config))


def load_data_config(train_dir):
    """The run's :class:`~gansynth_tf.datasets.DataConfig`, or None for a run from before
    it was saved (evaluate then falls back to the run's flags.txt)."""
    if not os.path.exists(os.path.join(train_dir, DATA)):
        return None
    values = _read_json(train_dir, DATA)
    known = {f.name for f in dataclasses.fields(datasets.DataConfig)}
    # Settings a later version dropped are ignored; new ones take their defaults.
    return datasets.DataConfig(**{k: v for k, v in values.items() if k in known})


def checkpoint_dir(train_dir):
    return os.path.join(train_dir, CHECKPOINTS)


def latest_checkpoint(train_dir):
    return tf.train.latest_checkpoint(checkpoint_dir(train_dir))


class TrainedGenerator:
    """The EMA generator of a run, at the stage it reached, with what it needs to sound.

    Attributes:
      generator: `networks.Generator` (EMA weights) set to its trained stage.
      representation, genres, network_config, images_seen, stage.
    """

    def __init__(self, train_dir, checkpoint=None):
        self.train_dir = train_dir
        self.genres = load_genres(train_dir)
        self.representation = Representation.load(train_dir)
        self.network_config = load_network_config(train_dir)
        self.schedule = load_schedule(train_dir)
        checkpoint = checkpoint or latest_checkpoint(train_dir)
        if checkpoint is None:
            raise FileNotFoundError(
                f"no checkpoint in {checkpoint_dir(train_dir)}: train first (run_training.py "
                f"--train_dir={train_dir}) or point at another run")
        # float32 whatever precision trained it (the weights are float32 in every policy):
        # samples, exports and evaluations do not depend on the training machine.
        self.generator = networks.Generator(self.network_config, dtype="float32")
        self.images_seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        ckpt = tf.train.Checkpoint(ema_generator=self.generator, images_seen=self.images_seen)
        status = ckpt.restore(checkpoint)
        # Every generator weight must come from the checkpoint (the discriminator and the
        # optimizers in it are not needed here).
        status.assert_existing_objects_matched()
        status.expect_partial()
        self.checkpoint = checkpoint
        self.stage, self.alpha = self.schedule.stage_alpha(int(self.images_seen.numpy()))
        self.generator.set_stage(self.stage, self.alpha)

    @property
    def latent_dim(self):
        return self.network_config.latent_dim

    @property
    def num_genres(self):
        return len(self.genres)

    def genre_ids(self, names):
        """Genre names -> ids; an unknown name fails with the list of known genres."""
        ids = []
        for name in names:
            if name not in self.genres:
                raise ValueError(f"unknown genre {name!r}; this model knows: "
                                 f"{', '.join(self.genres)}")
            ids.append(self.genres.index(name))
        return np.asarray(ids, np.int32)

    def features(self, genre, z):
        """One-hot or ids + z `[b, latent]` -> features at the FINAL resolution `[b, T, F, 2]`.

        A run stopped before its last stage still yields full-size features: the current
        stage's output is repeated up (nearest), as the fade-in would show it.
        """
        genre = tf.convert_to_tensor(genre)
        if genre.shape.rank == 1:
            genre = tf.one_hot(genre, self.num_genres)
        out = self.generator([tf.cast(z, tf.float32), tf.cast(genre, tf.float32)])
        return upsample_to(out, self.network_config.final_resolution)

    def waves(self, genre, z, phase="if", griffin_lim_iterations=32):
        """`[b, audio_length]` float32 audio at the representation's sample rate."""
        return self.representation.features_to_waves(self.features(genre, z), phase,
                                                     griffin_lim_iterations)


def upsample_to(x, resolution):
    """Nearest-neighbour repeat of `[b, t, f, c]` up to `resolution` (integer factors)."""
    t, f = int(resolution[0]), int(resolution[1])
    ft, ff = t // x.shape[1], f // x.shape[2]
    if (ft, ff) == (1, 1):
        return x
    return tf.repeat(tf.repeat(x, ft, axis=1), ff, axis=2)
