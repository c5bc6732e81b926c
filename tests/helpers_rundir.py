"""Builds a tiny but complete train_dir for tests of export, generation and evaluation.

The run is 8 kHz, 1216-sample clips (0.15 s) with 16x128 spectrograms: nfft 256, hop 64,
64 * 15 + 256 = 1216 samples, so the STFT covers the clip exactly. The network has two stages
(8x64 -> 16x128) with a handful of channels and random weights: these tests check plumbing
(shapes, files, signatures, error messages), not sound quality.
"""

import os

import keras
import tensorflow as tf

from gansynth_tf import networks, progressive, rundir
from gansynth_tf.representation import Representation

SAMPLE_RATE = 8000
AUDIO_LENGTH = 1216
SPEC_SHAPE = (16, 128)
LATENT_DIM = 8


def tiny_network_config(num_genres, latent_dim=LATENT_DIM):
    return networks.NetworkConfig(
        resolutions=((8, 64), SPEC_SHAPE), gen_channels=(8, 4), disc_channels=(8, 4),
        num_genres=num_genres, latent_dim=latent_dim)


def tiny_representation(mel=False):
    """Linear (default, fast to invert) or mel features at the tiny shape."""
    return Representation(sample_rate=SAMPLE_RATE, audio_length=AUDIO_LENGTH,
                          spec_shape=SPEC_SHAPE, mel=mel)


def make_train_dir(train_dir, genres, mel=False, seed=0, flags_lines=(), images_seen=None):
    """Writes genres/representation/network/schedule JSON and one checkpoint.

    Args:
      train_dir: folder to create (may exist).
      genres: genre names, id order.
      mel: mel or linear representation.
      seed: weight initialisation seed.
      flags_lines: lines of flags.txt (e.g. "--dataset=synthetic"); none written if empty.
      images_seen: stored in the checkpoint; default: past the end of the schedule, so the
        generator loads at its final stage with alpha 1.
    Returns:
      train_dir.
    """
    os.makedirs(train_dir, exist_ok=True)
    config = tiny_network_config(len(genres))
    schedule = progressive.ProgressiveSchedule(config.resolutions, 100, 100)
    rundir.save_genres(train_dir, genres)
    tiny_representation(mel).save(train_dir)
    rundir.save_network_config(train_dir, config)
    rundir.save_schedule(train_dir, schedule)
    if flags_lines:
        with open(os.path.join(train_dir, "flags.txt"), "w") as f:
            f.write("\n".join(flags_lines) + "\n")
    keras.utils.set_random_seed(seed)
    generator = networks.Generator(config)
    seen = schedule.total_images if images_seen is None else images_seen
    images = tf.Variable(seen, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(ema_generator=generator, images_seen=images)
    tf.train.CheckpointManager(checkpoint, rundir.checkpoint_dir(train_dir), 3).save()
    return train_dir
