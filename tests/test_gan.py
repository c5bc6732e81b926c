"""Loss maths, progressive schedule, GAN training step, EMA, precision and distribution."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf.gan import (
    GANSynthGAN,
    build_gan,
    dynamics,
    dynamics_gap,
    genre_accuracy,
    genre_cross_entropy,
    gradient_penalty,
    make_optimizers,
    mode_seeking_ratio,
    mode_seeking_term,
    penalty_count,
    r1_penalty,
)
from gansynth_tf.networks import Discriminator, Generator, NetworkConfig
from gansynth_tf.progressive import (
    ProgressiveCallback,
    ProgressiveSchedule,
    blend_real,
    gansynth_schedule,
)

# Keras warns that shuffle=True is ignored for tf.data input; the datasets here are synthetic.
pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = NetworkConfig(
    resolutions=((2, 8), (4, 16)),
    gen_channels=(16, 8),
    disc_channels=(16, 8),
    num_genres=4,
    latent_dim=8,
)


def genre_band_data(n, cfg=TINY, seed=0):
    """Random spectrograms whose log-magnitude is loud in a genre-specific frequency band."""
    rng = np.random.default_rng(seed)
    t, f = cfg.final_resolution
    ids = rng.integers(0, cfg.num_genres, n)
    x = rng.normal(0.0, 0.2, (n, t, f, 2))
    band = f // cfg.num_genres
    x[..., 0] -= 0.5
    for i, g in enumerate(ids):
        x[i, :, g * band : (g + 1) * band, 0] += 1.0
    onehot = np.eye(cfg.num_genres, dtype="float32")[ids]
    return np.clip(x, -1, 1).astype("float32"), onehot


def dataset(x, y, batch):
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch, drop_remainder=True)


def make_gan(seed=0, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    gan = build_gan(TINY, seed=seed)
    gan.compile(**compile_kwargs)
    return gan


# --------------------------------------------------------------------------- loss maths


def test_gradient_penalty_linear_critic_is_analytic():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4, 2)).astype("float32")
    real, fake = (
        rng.normal(size=(5, 3, 4, 2)).astype("float32"),
        rng.normal(size=(5, 3, 4, 2)).astype("float32"),
    )
    eps = rng.uniform(size=5).astype("float32")

    def critic(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])

    expected = (np.linalg.norm(w) - 1.0) ** 2
    gp = gradient_penalty(critic, real, fake, eps).numpy()
    assert gp.shape == (5,)
    np.testing.assert_allclose(gp, expected, rtol=1e-5)
    # A loss scale is removed again before the norm.
    scaled = gradient_penalty(critic, real, fake, eps, loss_scale=1024.0).numpy()
    np.testing.assert_allclose(scaled, expected, rtol=1e-5)


def test_gradient_penalty_interpolates_per_sample():
    # critic(x) = sum(x^2): grad = 2 x_hat, so the penalty is (2 ||x_hat|| - 1)^2 with
    # x_hat = eps * real + (1 - eps) * fake for each sample's own eps.
    real = np.array([[1.0, 0.0], [0.0, 2.0]], "float32")
    fake = np.array([[0.0, 1.0], [0.0, 0.0]], "float32")
    eps = np.array([0.25, 0.5], "float32")
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    expected = (2 * np.linalg.norm(x_hat, axis=1) - 1) ** 2
    gp = gradient_penalty(lambda x: tf.reduce_sum(x**2, axis=1), real, fake, eps).numpy()
    np.testing.assert_allclose(gp, expected, rtol=1e-5)


def test_r1_penalty_is_the_squared_input_gradient_norm_of_each_sample():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 4, 2)).astype("float32")
    real = rng.normal(size=(5, 3, 4, 2)).astype("float32")
    linear = r1_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]), real).numpy()
    np.testing.assert_allclose(linear, np.full(5, np.sum(w**2)), rtol=1e-5)
    # critic = sum(x^2): grad = 2x, penalty 4 ||x||^2 per sample; a loss scale cancels.
    quadratic = r1_penalty(
        lambda x: tf.reduce_sum(x**2, axis=[1, 2, 3]), real, loss_scale=512.0
    ).numpy()
    np.testing.assert_allclose(quadratic, 4 * np.sum(real**2, axis=(1, 2, 3)), rtol=1e-5)


def test_penalty_count_rounds_up_and_keeps_at_least_one_sample():
    assert penalty_count(16, 1.0) == 16
    assert penalty_count(16, 0.25) == 4
    assert penalty_count(10, 0.25) == 3
    assert penalty_count(4, 0.01) == 1
    assert penalty_count(8, 0.5) == 4
    # A dynamic batch gives the same counts as a tensor.
    for batch, fraction in [(16, 0.25), (10, 0.25), (4, 0.01), (8, 1.0)]:
        assert int(penalty_count(tf.constant(batch), fraction)) == penalty_count(batch, fraction)


def test_mode_seeking_term_matches_hand_computation():
    fake1 = np.array([[[1.0, 2.0]], [[0.0, 0.0]]], "float32")  # 2 pairs of 1x2 "images"
    fake2 = np.array([[[0.0, 4.0]], [[0.5, -0.5]]], "float32")
    z1 = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], "float32")
    z2 = np.array([[0.0, 1.0, -1.0], [2.0, 2.0, 2.0]], "float32")
    # pair 0: mean|f1-f2| = (1 + 2)/2 = 1.5; mean|z1-z2| = (1 + 0 + 2)/3 = 1.0 -> ratio 1.5
    # pair 1: (0.5 + 0.5)/2 = 0.5; (2 + 2 + 2)/3 = 2.0 -> ratio 0.25
    np.testing.assert_allclose(
        mode_seeking_ratio(fake1, fake2, z1, z2).numpy(), [1.5, 0.25], rtol=1e-6
    )
    np.testing.assert_allclose(
        mode_seeking_term(fake1, fake2, z1, z2).numpy(),
        [1 / (1.5 + 1e-5), 1 / (0.25 + 1e-5)],
        rtol=1e-6,
    )
    # Identical outputs (collapse) give the maximal penalty 1 / epsilon.
    assert mode_seeking_term(fake1, fake1, z1, z2).numpy()[0] == pytest.approx(1e5)


def test_genre_cross_entropy_and_accuracy():
    labels = np.eye(3, dtype="float32")[[0, 2]]
    logits = np.array([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0]], "float32")
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = [-log_softmax[0, 0], -log_softmax[1, 2]]
    np.testing.assert_allclose(genre_cross_entropy(labels, logits).numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(genre_accuracy(labels, logits).numpy(), [1.0, 0.0])


def test_make_optimizers_uses_gansynth_adam():
    d_opt, g_opt = make_optimizers()
    for opt in (d_opt, g_opt):
        assert isinstance(opt, keras.optimizers.Adam)
        assert float(opt.learning_rate) == pytest.approx(8e-4)
        assert opt.beta_1 == 0.0 and opt.beta_2 == 0.99
    assert d_opt is not g_opt


# --------------------------------------------------------------------------- schedule


def test_progressive_schedule_stage_and_alpha():
    sched = ProgressiveSchedule(
        ((2, 16), (4, 32), (8, 64)), stable_images=100, transition_images=50
    )
    assert sched.stage_alpha(0) == (0, 1.0)
    assert sched.stage_alpha(99) == (0, 1.0)
    assert sched.stage_alpha(100) == (1, 0.0)
    assert sched.stage_alpha(125) == (1, 0.5)
    assert sched.stage_alpha(150) == (1, 1.0)
    assert sched.stage_alpha(249) == (1, 1.0)
    assert sched.stage_alpha(260) == (2, pytest.approx(0.2))
    assert sched.total_images == 3 * 100 + 2 * 50 == sched.phases()[-1].end
    assert sched.stage_alpha(10**9) == (2, 1.0)
    assert sched.resolution(130) == (4, 32)
    kinds = [(p.stage, p.transition) for p in sched.phases()]
    assert kinds == [(0, False), (1, True), (1, False), (2, True), (2, False)]
    assert gansynth_schedule(sched.resolutions).stable_images == 800_000
    with pytest.raises(ValueError):
        sched.stage_alpha(-1)


def test_blend_real_pools_and_fades():
    res = ((2, 4), (4, 8), (8, 16))
    x = np.random.default_rng(0).normal(size=(2, 8, 16, 2)).astype("float32")
    def pool(a, k):
        n, t, f, c = a.shape
        return a.reshape(n, t // k, k, f // k, k, c).mean(axis=(2, 4))

    def up(a, k):
        return np.repeat(np.repeat(a, k, axis=1), k, axis=2)

    np.testing.assert_allclose(blend_real(x, 2, 1.0, res).numpy(), x, rtol=1e-6)
    np.testing.assert_allclose(
        blend_real(x, 2, 0.0, res).numpy(), up(pool(x, 2), 2), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(blend_real(x, 0, 0.3, res).numpy(), pool(x, 4), rtol=1e-5, atol=1e-6)
    s1 = pool(x, 2)
    expected = 0.3 * s1 + 0.7 * up(pool(s1, 2), 2)
    np.testing.assert_allclose(blend_real(x, 1, 0.3, res).numpy(), expected, rtol=1e-5, atol=1e-6)
    # Feeding data already at the stage resolution gives the same result.
    np.testing.assert_allclose(blend_real(s1, 1, 0.3, res).numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        blend_real(x[:, :6], 2, 1.0, res)


# --------------------------------------------------------------------------- training


def train_on_genre_bands(**compile_kwargs):
    """30 steps on genre-band data: (gan, history, critic genre accuracy before, after)."""
    # A larger learning rate than GANSynth's 8e-4 so that 30 steps are enough to show learning.
    d_opt, g_opt = make_optimizers(learning_rate=5e-3)
    gan = make_gan(seed=1, d_optimizer=d_opt, g_optimizer=g_opt, **compile_kwargs)
    x, y = genre_band_data(256, seed=1)
    x_test, y_test = genre_band_data(128, seed=2)

    def genre_acc():
        logits = gan.discriminator(x_test)[1]
        return float(np.mean(np.argmax(logits, 1) == np.argmax(y_test, 1)))

    before = genre_acc()
    history = gan.fit(dataset(x, y, 16), steps_per_epoch=30, epochs=1, verbose=0).history
    return gan, history, before, genre_acc()


def test_training_gives_finite_losses_and_learns_genres():
    gan, history, before, after = train_on_genre_bands(mode_seeking_weight=1.0)
    expected = {
        "d_loss", "g_loss", "wasserstein", "gp", "drift", "ac_real", "ac_fake",
        "acc_real", "acc_fake", "d_real", "d_fake", "ms_term", "ms_ratio",
    }  # fmt: skip
    assert set(history) == expected
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert history["ms_term"][-1] > 0 and history["gp"][-1] >= 0
    assert after >= 0.9 and after > before + 0.3, (before, after)
    assert int(gan.images_seen.numpy()) == 30 * 16 and int(gan.step_counter.numpy()) == 30
    for w in gan.generator.trainable_weights + gan.discriminator.trainable_weights:
        assert np.all(np.isfinite(w.numpy())), w.path


def test_nonsaturating_loss_with_r1_on_a_fraction_of_the_batch_learns_genres():
    _, history, before, after = train_on_genre_bands(loss="nonsaturating", r1_gamma=1.0,
                                                     penalty_fraction=0.25)
    assert "r1" in history and "gp" not in history and "drift" not in history
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert history["r1"][-1] >= 0
    # The logistic D loss is softplus(D(fake)) + softplus(-D(real)) >= 0 plus positive terms.
    assert history["d_loss"][-1] > 0
    assert after >= 0.9 and after > before + 0.3, (before, after)


def test_penalty_on_half_a_batch_is_weighted_up_to_the_whole_batch():
    # R1 depends only on (real, genre). In a batch whose second half repeats the first, the
    # penalty on the first half, weighted by 2, equals the penalty on the whole batch; so one
    # step with penalty_fraction=0.5 must give the same critic as one with 1.0.
    x, y = genre_band_data(4, seed=7)
    x, y = np.concatenate([x, x]), np.concatenate([y, y])

    def one_step(fraction, xs):
        gan = make_gan(seed=7, loss="nonsaturating", r1_gamma=10.0, penalty_fraction=fraction,
                       mode_seeking_weight=0.0)
        gan.fit(dataset(xs, y, 8), steps_per_epoch=1, verbose=0)
        return [w.numpy() for w in gan.discriminator.trainable_weights]

    full, half = one_step(1.0, x), one_step(0.5, x)
    for a, b in zip(full, half):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The same comparison on a batch without the repetition does see the subsampling.
    x2 = x.copy()
    x2[4:] = genre_band_data(4, seed=8)[0]
    differ = [
        not np.allclose(a, b, rtol=1e-4, atol=1e-6)
        for a, b in zip(one_step(1.0, x2), one_step(0.5, x2))
    ]
    assert any(differ)


def test_consistency_term_runs_at_the_final_stage_only_and_pulls_towards_its_target():
    # A stand-in consistency_fn whose "resynthesis" is always silence (-1): the term is then
    # mean|G_mag + 1|, so a heavily weighted run must end with quieter magnitudes.
    x, y = genre_band_data(64, seed=9)
    silence = lambda f: -tf.ones_like(f[..., 0])  # noqa: E731

    def train(weight, stage):
        gan = make_gan(seed=9, mode_seeking_weight=0.0, consistency_weight=weight,
                       consistency_fn=silence if weight else None)
        gan.set_stage(stage, 1.0)
        hist = gan.fit(dataset(x, y, 8), steps_per_epoch=25, verbose=0).history
        z = np.random.default_rng(1).normal(size=(32, TINY.latent_dim)).astype("float32")
        out = gan.generator([z, np.eye(4, dtype="float32")[np.arange(32) % 4]]).numpy()
        return hist, float(np.mean(out[..., 0]))

    hist_off, mag_off = train(0.0, 1)
    hist_on, mag_on = train(50.0, 1)
    assert "consistency" not in hist_off and hist_on["consistency"][-1] > 0
    assert mag_on < mag_off - 0.2, (mag_on, mag_off)
    # Below the final stage the generator's output is not audio yet: the term is skipped.
    hist_low, _ = train(50.0, 0)
    assert hist_low["consistency"][-1] == 0.0
    with pytest.raises(ValueError, match="consistency_fn"):
        build_gan(TINY).compile(consistency_weight=1.0)


def test_dynamics_is_the_contrast_and_flux_of_band_envelopes():
    x = np.zeros([3, 8, 16, 2], np.float32)
    x[1, :4, :, 0] = 1.0  # loud, then silent: every band's envelope has std 0.5, one step
    x[2, :, :4, 0] = np.arange(8)[:, None]  # a ramp in the lowest band only
    x[..., 1] = np.random.default_rng(0).normal(size=x[..., 1].shape)  # IF is ignored
    d = dynamics(x).numpy()
    assert d.shape == (3, 8)
    np.testing.assert_allclose(d[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(d[1], [0.5] * 4 + [1 / 7] * 4, atol=1e-6)
    np.testing.assert_allclose(d[2], [np.std(np.arange(8)), 0, 0, 0, 1, 0, 0, 0], atol=1e-5)
    # Pixel noise that is incoherent across a band mostly averages out of its envelope;
    # the same noise struck across the whole band at once does not.
    noise = np.random.default_rng(1).normal(0, 0.3, [1, 32, 64, 2]).astype(np.float32)
    coherent = np.repeat(noise[:, :, :1], 64, axis=2)
    assert np.all(dynamics(noise).numpy() < 0.5 * dynamics(coherent).numpy())
    with pytest.raises(ValueError, match="bands"):
        dynamics(x, bands=3)


def test_dynamics_gap_compares_genre_means_over_genres_present_on_both_sides():
    steady, pulsing = np.zeros([8, 16, 2], np.float32), np.zeros([8, 16, 2], np.float32)
    pulsing[::2, :, 0] = 1.0  # std 0.5 in every band
    real = np.stack([pulsing, steady, pulsing])
    genre = tf.one_hot([0, 1, 2], 4)
    assert float(dynamics_gap(real, genre, real, genre)) == 0.0
    # Fakes of genres 0 and 3: genre 3 has no real clip, so only genre 0 counts. Its real
    # clip has contrast 0.5 and flux 1 in every band; its fakes (steady + pulsing) average
    # half that: gap = mean(4 x 0.25^2, 4 x 0.5^2).
    fake = np.stack([steady, pulsing, steady])
    fake_genre = tf.one_hot([0, 0, 3], 4)
    expected = (0.25 ** 2 + 0.5 ** 2) / 2
    assert float(dynamics_gap(real, genre, fake, fake_genre)) == pytest.approx(expected, rel=1e-4)
    # The gradient raises a too-steady fake's contrast and never reaches the reals.
    fake_var, real_var = tf.Variable(fake), tf.Variable(real)
    with tf.GradientTape() as tape:
        gap = dynamics_gap(real_var, genre, fake_var, fake_genre)
    g_fake, g_real = tape.gradient(gap, [fake_var, real_var])
    assert g_real is None or float(tf.reduce_max(tf.abs(g_real))) == 0.0
    stepped = fake - 0.5 * g_fake.numpy()
    assert float(dynamics_gap(real, genre, stepped, fake_genre)) < expected


def test_dynamics_term_pulls_the_generator_towards_the_real_contrast():
    # Reals alternate between loud and silent frames (contrast ~1). From the same weights
    # and batch, generator updates with the term must raise the contrast of the clips more
    # than updates without it.
    x, y = genre_band_data(64, seed=4)
    x[:, ::2, :, 0], x[:, 1::2, :, 0] = 1.0, -1.0
    batch = next(iter(dataset(x, y, 16)))
    z = np.random.default_rng(1).normal(size=(32, TINY.latent_dim)).astype("float32")
    onehot = np.eye(4, dtype="float32")[np.arange(32) % 4]

    def after_steps(weight, steps=3):
        gan = make_gan(seed=4, mode_seeking_weight=0.0, dynamics_weight=weight)
        gan.set_stage(1, 1.0)
        before = float(np.mean(dynamics(gan.generator([z, onehot]))))
        for _ in range(steps):
            logs = gan.train_step(batch)
        return before, float(np.mean(dynamics(gan.generator([z, onehot])))), logs

    start, c_off, logs_off = after_steps(0.0)
    _, c_on, logs_on = after_steps(1000.0)
    real_c = float(np.mean(dynamics(x)))
    assert start < real_c - 0.1  # the untrained generator is too steady
    assert c_on - start > 2 * (c_off - start) and c_on > start + 0.01, (start, c_off, c_on)
    assert "dynamics_gap" not in logs_off and float(logs_on["dynamics_gap"]) > 0
    with pytest.raises(ValueError, match="dynamics_weight"):
        build_gan(TINY).compile(dynamics_weight=-1.0)


def test_compile_rejects_unknown_loss_and_bad_penalty_fraction():
    gan = build_gan(TINY, seed=0)
    with pytest.raises(ValueError, match="loss"):
        gan.compile(loss="hinge")
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="penalty_fraction"):
            gan.compile(penalty_fraction=bad)


def test_ema_generator_follows_formula_and_generate_uses_it():
    gan = make_gan(seed=3, ema_decay=0.75, ema_rampup=0, mode_seeking_weight=0.0)
    x, y = genre_band_data(8, seed=3)
    init = [w.numpy() for w in gan.generator.trainable_weights]
    for e, w in zip(gan.ema_generator.weights, gan.generator.weights):
        np.testing.assert_array_equal(e.numpy(), w.numpy())
    gan.fit(dataset(x, y, 8), steps_per_epoch=1, verbose=0)
    trained = [w for w in gan.generator.weights if w.trainable]
    ema = [e for e, w in zip(gan.ema_generator.weights, gan.generator.weights) if w.trainable]
    moved = 0
    for w0, w, e in zip(init, trained, ema):
        np.testing.assert_allclose(e.numpy(), 0.75 * w0 + 0.25 * w.numpy(), rtol=1e-5, atol=1e-6)
        moved += not np.allclose(w0, w.numpy())
    assert moved > 0
    z = np.random.default_rng(0).normal(size=(3, TINY.latent_dim)).astype("float32")
    out = gan.generate([0, 1, 3], z=z).numpy()
    assert out.shape == (3, 4, 16, 2)
    np.testing.assert_allclose(
        out, gan.ema_generator([z, np.eye(4, dtype="float32")[[0, 1, 3]]]).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        out, gan(([z, np.eye(4, dtype="float32")[[0, 1, 3]]])).numpy(), rtol=1e-6
    )
    assert not np.allclose(out, gan.generator([z, np.eye(4, dtype="float32")[[0, 1, 3]]]).numpy())
    np.testing.assert_array_equal(
        gan.generate([2, 2], seed=7).numpy(), gan.generate([2, 2], seed=7).numpy()
    )


def test_mode_seeking_off_drops_its_metrics_and_odd_batches_need_it_off():
    gan = make_gan(seed=4, mode_seeking_weight=0.0)
    x, y = genre_band_data(10, seed=4)
    history = gan.fit(dataset(x, y, 5), steps_per_epoch=1, verbose=0).history
    assert "ms_term" not in history and "ms_ratio" not in history and "g_loss" in history
    gan_ms = make_gan(seed=4, mode_seeking_weight=1.0)
    with pytest.raises(ValueError, match="even"):
        gan_ms.fit(dataset(x, y, 5), steps_per_epoch=1, verbose=0)


def test_int_genre_labels_and_constructor_checks():
    gan = make_gan(seed=5)
    x, y = genre_band_data(8, seed=5)
    history = gan.fit(dataset(x, np.argmax(y, 1), 8), steps_per_epoch=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0])
    with pytest.raises(ValueError, match="num_genres"):
        GANSynthGAN(Generator(TINY), Discriminator(TINY), num_genres=7)
    with pytest.raises(ValueError, match="latent_dim"):
        GANSynthGAN(Generator(TINY), Discriminator(TINY), latent_dim=3)


def test_progressive_callback_grows_the_networks_during_fit():
    gan = make_gan(seed=6)
    gan.set_stage(0)
    sched = ProgressiveSchedule(TINY.resolutions, stable_images=16, transition_images=32)
    x, y = genre_band_data(64, seed=6)  # full resolution; train_step pools to the stage

    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(
                (
                    gan.stage,
                    round(float(gan.alpha.numpy()), 4),
                    float(gan.discriminator.alpha.numpy()),
                )
            )

    history = gan.fit(
        dataset(x, y, 8),
        steps_per_epoch=8,
        verbose=0,
        callbacks=[ProgressiveCallback(sched), Record()],
    ).history
    # 8 images per step: stable (2 steps), transition over 32 images (4 steps), then stable.
    assert [s[:2] for s in seen] == [
        (0, 1.0),
        (0, 1.0),
        (1, 0.0),
        (1, 0.25),
        (1, 0.5),
        (1, 0.75),
        (1, 1.0),
        (1, 1.0),
    ]
    assert all(s[1] == pytest.approx(s[2]) for s in seen)  # forwarded to the networks
    assert gan.generator.stage == gan.discriminator.stage == gan.ema_generator.stage == 1
    assert history["stage"] == [1.0] and history["images_seen"] == [64.0]
    assert np.isfinite(history["d_loss"][0])


def test_set_stage_replaces_the_train_function():
    gan = make_gan(seed=7)
    x, y = genre_band_data(8, seed=7)
    gan.set_stage(0)
    gan.fit(dataset(x, y, 8), steps_per_epoch=1, verbose=0)
    first = gan.train_function
    gan.set_alpha(0.5)  # alpha only: same function
    assert gan.train_function is first
    gan.set_stage(1, alpha=0.5)
    assert gan.train_function is not first
    assert float(gan.generator.alpha.numpy()) == 0.5 == float(gan.ema_generator.alpha.numpy())
    gan.fit(dataset(x, y, 8), steps_per_epoch=1, verbose=0)
    assert gan.generate([0], seed=0).shape == (1, 4, 16, 2)


def test_ema_rampup_caps_half_life_at_a_fraction_of_images_seen():
    gan = make_gan(seed=3, ema_decay=0.999, ema_rampup=0.05, mode_seeking_weight=0.0)
    # Plain 0.999 at batch 16: half-life 16 * ln(.5) / ln(.999) = 11,085 images.
    plain = 16 * np.log(0.5) / np.log(0.999)
    for images, expect_half_life in [(1_000, 50.0), (100_000, 5_000.0), (10**7, plain)]:
        decay = float(gan.ema_decay_at(images, 16))
        np.testing.assert_allclose(16 * np.log(0.5) / np.log(decay), expect_half_life, rtol=1e-3)
    assert float(gan.ema_decay_at(10**7, 16)) == pytest.approx(0.999, abs=1e-7)
    gan.compile(ema_decay=0.9, ema_rampup=0)
    assert float(gan.ema_decay_at(10, 16)) == pytest.approx(0.9)
    # One step from the start: the ramp makes the average follow the weights almost exactly.
    ramped = make_gan(seed=3, ema_decay=0.999, ema_rampup=0.05, mode_seeking_weight=0.0)
    x, y = genre_band_data(8, seed=3)
    ramped.fit(dataset(x, y, 8), steps_per_epoch=1, verbose=0)
    for e, w in zip(ramped.ema_generator.weights, ramped.generator.weights):
        if w.trainable:
            np.testing.assert_allclose(e.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)


def test_save_weights_restores_counters_alpha_and_ema(tmp_path):
    gan = make_gan(seed=9)
    gan.set_alpha(0.4)
    gan.images_seen.assign(1234)
    assert gan.ema_generator.trainable_weights == []  # the EMA copy is never trained directly
    gan.save_weights(tmp_path / "gan.weights.h5")
    other = make_gan(seed=10)
    assert not all(np.array_equal(a, b) for a, b in zip(gan.get_weights(), other.get_weights()))
    other.load_weights(tmp_path / "gan.weights.h5")
    assert int(other.images_seen.numpy()) == 1234
    assert (
        float(other.alpha.numpy()) == pytest.approx(0.4) == float(other.discriminator.alpha.numpy())
    )
    for a, b in zip(gan.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    z = np.zeros((1, TINY.latent_dim), "float32")
    np.testing.assert_array_equal(gan.generate([1], z=z).numpy(), other.generate([1], z=z).numpy())


def test_mixed_float16_step_keeps_float32_outputs_and_losses():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        gan = make_gan(seed=8)
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        assert gan.generator.compute_dtype == "float16"
        assert gan.generator.initial_dense.kernel.dtype == "float32"
        x, y = genre_band_data(16, seed=8)
        start = [w.numpy() for w in gan.generator.trainable_weights]
        history = gan.fit(dataset(x, y, 8), steps_per_epoch=4, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in history.values())
        # The dynamic loss scale may skip the first step(s) on overflow, then updates apply.
        assert (
            int(gan.g_optimizer.iterations.numpy()) >= 2
            and int(gan.d_optimizer.iterations.numpy()) >= 2
        )
        assert any(
            not np.allclose(a, w.numpy()) for a, w in zip(start, gan.generator.trainable_weights)
        )
        out = gan.generate([0, 1], seed=0)
        assert out.dtype == tf.float32
        score, logits = gan.discriminator(out)
        assert score.dtype == tf.float32 and logits.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from gansynth_tf.gan import GANSynthGAN
    from gansynth_tf.networks import Discriminator, Generator, NetworkConfig

    cfg = NetworkConfig(resolutions=((2, 8), (4, 16)), gen_channels=(16, 8), disc_channels=(16, 8),
                        num_genres=3, latent_dim=8)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 4, 16, 2)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]

    def run(strategy, weights=None):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            gan = GANSynthGAN(Generator(cfg), Discriminator(cfg), Generator(cfg), seed=5)
            if weights is not None:
                gan.set_weights(weights)
            gan.compile(mode_seeking_weight=1.0)
            gan.set_alpha(0.6)
            initial = gan.get_weights()
            trainable = gan.generator.trainable_weights + gan.discriminator.trainable_weights
            start = [w.numpy() for w in trainable]
            ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
            logs = gan.fit(ds, epochs=1, steps_per_epoch=2, verbose=0).history
        end = [w.numpy() for w in trainable]
        ema = [w.numpy() for w in gan.ema_generator.weights]
        return initial, start, end, ema, {k: float(v[-1]) for k, v in logs.items()}, gan

    single = run(tf.distribute.get_strategy())
    mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), single[0])
    diff = lambda a, b: max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))
    print("RESULT" + json.dumps({
        "replicas": mirrored[5].distribute_strategy.num_replicas_in_sync,
        "same_start": diff(single[1], mirrored[1]),
        "moved": diff(single[1], single[2]),
        "weights": diff(single[2], mirrored[2]),
        "ema": diff(single[3], mirrored[3]),
        "logs_single": single[4], "logs_mirrored": mirrored[4],
        "images_seen": int(mirrored[5].images_seen.numpy()),
    }))
    """
)


def test_mirrored_strategy_two_replicas_matches_single_device():
    # Logical devices must be configured before TensorFlow initialises: fresh interpreter.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    r = json.loads(line[len("RESULT") :])
    assert r["replicas"] == 2
    assert r["same_start"] == 0.0 and r["moved"] > 1e-4
    assert r["weights"] < 1e-4 and r["ema"] < 1e-4
    assert r["images_seen"] == 16
    assert set(r["logs_single"]) == set(r["logs_mirrored"])
    for key, value in r["logs_single"].items():
        assert r["logs_mirrored"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_a_few_steps_on_the_embedded_synthetic_genres_learn_them():
    """The real pipeline end to end: synthetic genres -> mel IF features -> train_step."""
    from gansynth_tf import datasets, normalizers
    from gansynth_tf.representation import Representation

    rep = Representation(sample_rate=8000, audio_length=2048, spec_shape=(32, 64), overlap=0.5)
    source = datasets.build_source(datasets.DataConfig(
        dataset="synthetic", sample_rate=8000, audio_length=2048, synthetic_clips_per_genre=24))
    norm = normalizers.MinMaxNormalizer()
    datasets.fit_normalizer(source, rep.waves_to_unnormalized, norm, num_clips=48)
    rep.set_normalizer(norm)
    cfg = NetworkConfig(((8, 16), (16, 32), (32, 64)), (32, 16, 8), (32, 16, 8),
                        num_genres=source.num_genres, latent_dim=8)
    keras.utils.set_random_seed(2)
    gan = build_gan(cfg, seed=2)
    d_opt, g_opt = make_optimizers(learning_rate=5e-3)
    gan.compile(d_optimizer=d_opt, g_optimizer=g_opt, mode_seeking_weight=1.0)
    gan.set_stage(0, 1.0)
    # 96 of the 144 clips in fixed order (the synthetic source's evaluation order uses the
    # same clips as training): this checks that the genre head learns, not generalisation.
    probe_x, probe_y = next(iter(datasets.make_train_dataset(
        source, 96, rep.waves_to_features, training=False, repeat=False)))
    probe_x = blend_real(probe_x, 0, 1.0, cfg)

    def genre_acc():
        logits = gan.discriminator(probe_x)[1]
        return float(np.mean(np.argmax(logits, 1) == np.argmax(probe_y, 1)))

    before = genre_acc()
    history = gan.fit(datasets.make_train_dataset(source, 16, rep.waves_to_features),
                      steps_per_epoch=60, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    after = genre_acc()
    assert after >= 0.6 and after > before + 0.3, (before, after)
