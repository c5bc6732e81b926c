"""LossConfig, the adversarial-loss registry, and the run's saved loss and data configs."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import helpers_rundir
from gansynth_tf import datasets, evaluate, losses, rundir
from gansynth_tf.gan import build_gan
from gansynth_tf.networks import NetworkConfig

TINY = NetworkConfig(resolutions=((2, 8), (4, 16)), gen_channels=(8, 8), disc_channels=(8, 8),
                     num_genres=3, latent_dim=8)


def test_loss_config_round_trips_and_reads_the_older_loss_json():
    config = losses.LossConfig(kind="nonsaturating", r1_gamma=2.5, mode_seeking_weight=0.0)
    assert losses.LossConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # loss.json before LossConfig: flag names, the kind under "loss", some fields missing.
    older = losses.LossConfig.from_dict({"loss": "nonsaturating", "gp_weight": 5.0})
    assert (older.kind, older.gp_weight, older.dynamics_weight) == ("nonsaturating", 5.0, 0.0)
    with pytest.raises(ValueError, match="unknown loss settings"):
        losses.LossConfig.from_dict({"kind": "wgan_gp", "gp_wieght": 1.0})


@pytest.mark.parametrize("bad", [dict(kind="hinge"), dict(penalty_fraction=0.0),
                                 dict(penalty_fraction=1.5), dict(gp_weight=-1.0),
                                 dict(dynamics_weight=float("nan"))])
def test_loss_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        losses.LossConfig(**bad)


def test_registry_losses_match_their_formulas():
    d_real = tf.constant([0.5, -1.0, 2.0])
    d_fake = tf.constant([-0.5, 1.0, 0.0])
    config = losses.LossConfig(drift_weight=0.1)
    per_sample, terms = config.adversarial.critic(d_real, d_fake, config)
    np.testing.assert_allclose(per_sample, [-1.0 + 0.025, 2.0 + 0.1, -2.0 + 0.4], rtol=1e-6)
    np.testing.assert_allclose(terms["drift"], [0.25, 1.0, 4.0])
    np.testing.assert_allclose(config.adversarial.generator(d_fake), [0.5, -1.0, 0.0])

    logistic = losses.LossConfig(kind="nonsaturating", r1_gamma=4.0)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    per_sample, terms = logistic.adversarial.critic(d_real, d_fake, logistic)
    np.testing.assert_allclose(per_sample, softplus(d_fake.numpy()) + softplus(-d_real.numpy()),
                               rtol=1e-6)
    assert terms == {}
    np.testing.assert_allclose(logistic.adversarial.generator(d_fake),
                               softplus(-d_fake.numpy()), rtol=1e-6)
    # R1 of a linear critic 3 * sum(x): ||grad||^2 = 9 * size, weighted gamma / 2.
    real = tf.ones([2, 4])
    penalty, weight, name = logistic.adversarial.penalty(
        lambda x: 3.0 * tf.reduce_sum(x, axis=1), real, real, tf.zeros([2]), logistic, 1.0)
    np.testing.assert_allclose(penalty, [36.0, 36.0], rtol=1e-6)
    assert (weight, name) == (2.0, "r1")
    assert set(losses.ADVERSARIAL_TRACKERS) == {"gp", "drift", "r1"}


def test_compile_takes_a_loss_config_and_field_overrides():
    gan = build_gan(TINY)
    gan.compile(loss=losses.LossConfig(kind="nonsaturating", ac_weight=2.0),
                mode_seeking_weight=0.0)
    assert gan.loss_config == losses.LossConfig(kind="nonsaturating", ac_weight=2.0,
                                                mode_seeking_weight=0.0)
    names = {m.name for m in gan.metrics}
    assert "r1" in names and not names & {"gp", "drift", "ms_term", "ms_ratio"}
    gan.compile(loss="wgan_gp")
    names = {m.name for m in gan.metrics}
    assert {"gp", "drift", "ms_term"} <= names and "r1" not in names
    with pytest.raises(ValueError, match="consistency_fn"):
        gan.compile(consistency_weight=1.0)


def test_data_config_round_trips_through_the_run_dir(tmp_path):
    assert rundir.load_data_config(str(tmp_path)) is None
    config = datasets.DataConfig(dataset="folder", data_dir="/music/my tracks", cache=False,
                                 clips_per_file=3, holdout_fraction=0.2, seed=4)
    rundir.save_data_config(str(tmp_path), config)
    assert rundir.load_data_config(str(tmp_path)) == config
    # A field a later version dropped is ignored rather than failing the load.
    path = os.path.join(str(tmp_path), rundir.DATA)
    with open(path) as f:
        values = json.load(f)
    values["retired_setting"] = 1
    with open(path, "w") as f:
        json.dump(values, f)
    assert rundir.load_data_config(str(tmp_path)) == config


def test_evaluate_reads_data_json_before_flags_txt(tmp_path):
    train_dir = helpers_rundir.make_train_dir(
        str(tmp_path / "run"), ["a", "b"], flags_lines=["--dataset=synthetic", "--seed=1"])
    saved = datasets.DataConfig(dataset="folder", data_dir="/data/x y", clips_per_file=2,
                                seed=9)
    rundir.save_data_config(train_dir, saved)
    rep = helpers_rundir.tiny_representation()
    cfg = evaluate.data_config(train_dir, rep, {"clips_per_file": 5, "data_dir": None})
    assert (cfg.dataset, cfg.data_dir, cfg.clips_per_file, cfg.seed) == (
        "folder", "/data/x y", 5, 9)
    assert (cfg.sample_rate, cfg.audio_length) == (rep.sample_rate, rep.audio_length)
    assert dataclasses.replace(cfg, clips_per_file=2, sample_rate=saved.sample_rate,
                               audio_length=saved.audio_length) == saved
