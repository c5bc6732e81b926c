"""DiffAugment: each transform against its numpy definition, its gradients, and the GAN's use."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_gan import TINY

from gansynth_tf import augment, rundir
from gansynth_tf.augment import Augment, cutout, gain, time_shift
from gansynth_tf.gan import build_gan
from gansynth_tf.losses import LossConfig

N, T, F = 6, 16, 24


def spectrograms(seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (N, T, F, 2)).astype(np.float32)


def draws(k, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (N, k)).astype(np.float32)


def test_time_shift_rolls_each_clip_by_its_own_shift_within_an_eighth():
    x, u = spectrograms(), draws(1)
    out = time_shift(tf.constant(x), tf.constant(u)).numpy()
    most = T // 8
    shifts = np.floor(u[:, 0] * (2 * most + 1)).astype(int) - most
    for i in range(N):
        np.testing.assert_array_equal(out[i], np.roll(x[i], shifts[i], axis=0))
    # The extremes of the draws reach the extremes of the range; the middle is no shift.
    ends = time_shift(tf.constant(x[:3]), tf.constant([[0.0], [0.5], [0.9999]])).numpy()
    np.testing.assert_array_equal(ends[0], np.roll(x[0], -most, axis=0))
    np.testing.assert_array_equal(ends[1], x[1])
    np.testing.assert_array_equal(ends[2], np.roll(x[2], most, axis=0))


def test_cutout_zeroes_one_half_by_half_rectangle_clipped_at_the_edges():
    x = spectrograms()
    u = np.array([[0.5, 0.5], [0.0, 0.0], [0.99, 0.2]] * 2, np.float32)
    out = cutout(tf.constant(x), tf.constant(u)).numpy()
    for i in range(N):
        ct, cf = int(u[i, 0] * T), int(u[i, 1] * F)
        mask = np.zeros((T, F), bool)
        mask[max(0, ct - T // 4):ct + T // 4, max(0, cf - F // 4):cf + F // 4] = True
        np.testing.assert_array_equal(out[i][mask], 0.0)
        np.testing.assert_array_equal(out[i][~mask], x[i][~mask])
    # Centred: exactly a quarter of the area; at a corner, a quarter of that.
    assert (out[0, ..., 0] == 0).sum() == (T // 2) * (F // 2)
    assert (out[1, ..., 0] == 0).sum() == (T // 4) * (F // 4)


def test_gain_moves_only_the_log_magnitude_by_one_offset_per_clip():
    x, u = spectrograms(), draws(1)
    out = gain(tf.constant(x), tf.constant(u)).numpy()
    offsets = (2 * u[:, 0] - 1) * augment.GAIN_RANGE
    np.testing.assert_allclose(out[..., 0], x[..., 0] + offsets[:, None, None], atol=1e-6)
    np.testing.assert_array_equal(out[..., 1], x[..., 1])
    assert np.abs(offsets).max() <= augment.GAIN_RANGE and np.ptp(offsets) > 0


@pytest.mark.parametrize("name", sorted(augment.AUGMENTATIONS))
def test_each_augmentation_passes_gradients_as_its_adjoint(name):
    # Every transform is linear in x plus a constant: the gradient of <w, f(x)> is the
    # adjoint applied to w, which for these is f's own rearrangement / mask of w.
    fn, k = augment.AUGMENTATIONS[name]
    x, u = tf.constant(spectrograms()), tf.constant(draws(k))
    w = tf.constant(spectrograms(seed=5))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(w * fn(x, u))
    grad = tape.gradient(y, x).numpy()
    if name == "time_shift":
        most = T // 8
        shifts = np.floor(draws(k)[:, 0] * (2 * most + 1)).astype(int) - most
        expected = np.stack([np.roll(w.numpy()[i], -shifts[i], axis=0) for i in range(N)])
    elif name == "cutout":
        expected = w.numpy() * (cutout(tf.ones_like(x), u).numpy() != 0)
    else:
        expected = w.numpy()
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_augment_composes_in_order_and_is_the_identity_without_names():
    x = tf.constant(spectrograms())
    none = Augment(())
    assert not none and none.draws == 0
    np.testing.assert_array_equal(none(x, tf.zeros([N, 0])).numpy(), x.numpy())
    both = Augment(("gain", "time_shift"))
    assert both and both.draws == 2
    u = draws(2)
    expected = time_shift(gain(x, tf.constant(u[:, :1])), tf.constant(u[:, 1:]))
    np.testing.assert_array_equal(both(x, tf.constant(u)).numpy(), expected.numpy())
    with pytest.raises(ValueError, match="unknown \\['rotate'\\]"):
        Augment(("rotate",))
    with pytest.raises(ValueError, match="twice"):
        Augment(("gain", "gain"))


def test_loss_config_keeps_augment_through_its_json_round_trip(tmp_path):
    config = LossConfig(augment=["time_shift", "cutout"])
    assert config.augment == ("time_shift", "cutout")
    assert LossConfig.from_dict(config.to_dict()) == config
    rundir._write_json(str(tmp_path / "loss.json"), config.to_dict())
    assert rundir.load_loss_config(str(tmp_path)) == config
    with pytest.raises(ValueError, match="--augment: unknown"):
        LossConfig(augment=("flip",))


def _gan(names, seed=3):
    keras.utils.set_random_seed(0)
    gan = build_gan(TINY, seed=seed)
    gan.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01),
                loss=LossConfig(augment=tuple(names), mode_seeking_weight=1.0))
    gan.set_alpha(0.7)
    return gan


def test_the_critic_sees_augmented_reals_and_fakes_in_both_steps():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (8, *TINY.final_resolution, 2)).astype(np.float32))
    y = tf.constant(np.eye(TINY.num_genres, dtype=np.float32)[np.arange(8) % TINY.num_genres])
    plain, augmented = _gan(()), _gan(("time_shift", "cutout", "gain"))
    augmented.set_weights(plain.get_weights())
    logs_plain = {k: float(v) for k, v in plain.train_step((x, y)).items()}
    logs_aug = {k: float(v) for k, v in augmented.train_step((x, y)).items()}
    assert all(np.isfinite(v) for v in logs_aug.values())
    # Same weights, same latents: the critic's scores differ only because its inputs do.
    for key in ("d_real", "d_fake", "ac_real", "ac_fake"):
        assert abs(logs_aug[key] - logs_plain[key]) > 1e-6, key
    # Without --augment the step is the one it was: the latents' draws are unchanged.
    again = _gan(())
    again.set_weights(plain.get_weights())
    plain2 = _gan(())
    plain2.set_weights(plain.get_weights())
    a = {k: float(v) for k, v in again.train_step((x, y)).items()}
    b = {k: float(v) for k, v in plain2.train_step((x, y)).items()}
    assert a == pytest.approx(b, rel=1e-6)
    assert dataclasses.replace(augmented.loss_config, augment=()) == plain.loss_config


def test_the_penalty_runs_on_augmented_inputs():
    # A cut-out over everything (fraction 2) zeroes every critic input, the penalty's
    # interpolates included: two different real batches then give the same penalty.
    rng = np.random.default_rng(1)
    y = tf.constant(np.eye(TINY.num_genres, dtype=np.float32)[np.arange(8) % TINY.num_genres])
    logs = []
    old = augment.CUTOUT_FRACTION
    try:
        augment.CUTOUT_FRACTION = 2.0
        for _ in range(2):
            x = rng.uniform(-1, 1, (8, *TINY.final_resolution, 2)).astype(np.float32)
            gan = _gan(("cutout",))
            logs.append({k: float(v) for k, v in gan.train_step((tf.constant(x), y)).items()})
    finally:
        augment.CUTOUT_FRACTION = old
    assert logs[0]["gp"] > 1e-4
    for key in ("gp", "d_real", "d_fake"):
        assert logs[0][key] == pytest.approx(logs[1][key], rel=1e-5, abs=1e-7), key
    # Without the cut-out the two batches' penalties differ.
    plain = [{k: float(v) for k, v in _gan(()).train_step(
        (tf.constant(rng.uniform(-1, 1, (8, *TINY.final_resolution, 2)).astype(np.float32)),
         y)).items()} for _ in range(2)]
    assert abs(plain[0]["gp"] - plain[1]["gp"]) > 1e-4
