"""Mixed precision that is right (issue #14 item 5).

A ``mixed_float16`` training step of :class:`GANSynthGAN` must keep float32 variables
under float16 compute, scale its losses with the optimizers' dynamic loss scale, and give
the float32 run's losses from the same weights, data and noise; the gradient penalties'
own loss scale must keep their float16 input gradients from underflowing.

Tolerances. float16 keeps 11 significant bits: unit roundoff u = 2^-11 ~ 4.9e-4. A forward
pass through the tiny networks (about six float16 layers) rounds at each of them, so values
differ from float32 by a few u: over 256 samples the critic's scores by 1.2e-3 (median), its
input-gradient norms by 8.8e-4. The tail is wider, and not from float16 arithmetic: the
critic is piecewise linear (leaky ReLU), and rounding an input by u can move a
pre-activation across a kink, changing that sample's input gradient by up to ~1 % (a
float32 critic fed float16-rounded inputs alone shows 1.1 %). So the penalties are compared
over the batch (norm of the difference over norm of the reference), not sample by sample.
SGD steps add each step's gradient rounding to the weights, linearly: the weights' change
differs from float32's by 3.7 % (generator, one step) and 1.1 % (both networks, 4 steps).
Each bound below is 3-5x the deviation measured (printed with -s), and far below what the
bug it targets gives (a factor of the loss scale, 2^12 or more, or a penalty's gradient
lost entirely).

SGD, not GANSynth's Adam, for the step comparisons: Adam with beta_1 = 0 moves every weight
by about +-lr on its first step (g / sqrt(g^2)), so a weight whose gradient is near zero
flips sign between precisions and the float32 / float16 weights differ by ~lr wherever
rounding crosses zero; worse, Adam hides a wrong gradient scale. SGD's step is linear in the
gradient, so a missing (or doubled) loss scale shows as a factor of the scale.
"""
import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_gan import TINY  # the tiny network of the GAN tests

from gansynth_tf import losses
from gansynth_tf.gan import build_gan
from gansynth_tf.losses import ADVERSARIAL_LOSSES, LossConfig, gradient_penalty, r1_penalty
from gansynth_tf.networks import Discriminator

MIXED = "mixed_float16"
STEPS = 4
LR = 0.01
# Below the 2^15 default on purpose: from these weights the first full-scale critic step
# overflows float16 (the genre cross-entropy's gradient, x10 and x2^15, passes 65504) and is
# skipped, which would make the float16 run one update behind the float32 one.
SCALE = 2.0**12


@pytest.fixture(autouse=True)
def float32_afterwards():
    """Every test leaves the global policy as float32, whatever happens in it."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@contextlib.contextmanager
def policy(name):
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, *TINY.final_resolution, 2)).astype("float32")
    y = np.eye(TINY.num_genres, dtype="float32")[rng.integers(0, TINY.num_genres, n)]
    return x, y


def make_pair(kind="wgan_gp", initial_scale=SCALE, mixed=MIXED, **loss_kwargs):
    """A float32 GAN and a `mixed` one (mixed_float16 by default) with identical weights,
    noise seed and objective, each compiled with SGD (a float16 one's wrapped in a
    LossScaleOptimizer)."""
    loss = LossConfig(kind=kind, **loss_kwargs)
    with policy("float32"):
        keras.utils.set_random_seed(0)
        g32 = build_gan(TINY, seed=3)
        g32.compile(keras.optimizers.SGD(LR), keras.optimizers.SGD(LR), loss=loss)
        g32.set_alpha(0.7)
    with policy(mixed):
        keras.utils.set_random_seed(1)  # other initial weights, replaced below
        g16 = build_gan(TINY, seed=3)
        g16.set_weights(g32.get_weights())
        if mixed == "mixed_float16":
            wrap = lambda: keras.optimizers.LossScaleOptimizer(  # noqa: E731
                keras.optimizers.SGD(LR), initial_scale=initial_scale)
        else:
            wrap = lambda: keras.optimizers.SGD(LR)  # noqa: E731
        g16.compile(wrap(), wrap(), loss=loss)
        g16.set_alpha(0.7)
    return g32, g16


def trainable(gan):
    return gan.generator.trainable_weights + gan.discriminator.trainable_weights


def flat(values):
    return np.concatenate([np.ravel(v) for v in values])


def rel(a, b):
    """Relative deviation of a from the reference b (norms over all elements)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def step(gan, data, name, n=1):
    """n eager train steps under the gan's own policy; the per-step logs (trackers reset)."""
    logs = []
    with policy(name):
        for _ in range(n):
            for m in gan.metrics:
                m.reset_state()
            logs.append({k: float(v) for k, v in gan.train_step(data).items()})
    return logs


# --------------------------------------------------------------------------- (a) dtypes


def test_mixed_float16_keeps_float32_variables_under_float16_compute():
    with policy(MIXED):
        keras.utils.set_random_seed(0)
        gan = build_gan(TINY, seed=0)
        gan.compile(mode_seeking_weight=1.0)
    data = tuple(tf.constant(a) for a in batch())

    def check():
        for net in (gan.generator, gan.discriminator, gan.ema_generator):
            layers = list(net._flatten_layers(include_self=True, recursive=True))
            assert len(layers) > 10, net.name  # the sub-layers are there to be checked
            wrong = [(lay.path, lay.compute_dtype, lay.variable_dtype) for lay in layers
                     if (lay.compute_dtype, lay.variable_dtype) != ("float16", "float32")]
            assert not wrong, wrong
            not32 = [(v.path, v.dtype) for v in net.weights if v.dtype != "float32"]
            assert not not32, not32
        assert trainable(gan) and all(v.dtype == "float32" for v in trainable(gan))
        for opt in (gan.d_optimizer, gan.g_optimizer):
            slots = [(v.path, v.dtype) for v in opt.inner_optimizer.variables
                     if v.dtype not in ("float32", "int64")]
            assert not slots, slots

    check()
    logs = step(gan, data, MIXED, n=2)
    check()  # no step created or recast a variable
    assert all(np.isfinite(v) for v in logs[-1].values()), logs[-1]
    # What the losses consume is float32: the networks cast their outputs.
    with policy(MIXED):
        z = tf.random.stateless_normal([2, TINY.latent_dim], [0, 0])
        fake = gan.generator([z, data[1][:2]])
        score, logits = gan.discriminator([fake, data[1][:2]])
    assert (fake.dtype, score.dtype, logits.dtype) == (tf.float32,) * 3


# --------------------------------------------------------------------------- (b) loss scale


def test_mixed_float16_wraps_both_optimizers_in_a_dynamic_loss_scale():
    with policy(MIXED):
        gan = build_gan(TINY, seed=0)
        gan.compile()  # GANSynth's Adam, wrapped by compile
    for opt in (gan.d_optimizer, gan.g_optimizer):
        assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
        assert isinstance(opt.inner_optimizer, keras.optimizers.Adam)
        assert opt.dynamic_scale.dtype == "float32"
        assert float(opt.dynamic_scale) == 2.0**15
        assert float(opt.scale_loss(tf.constant(1.5))) == 1.5 * 2.0**15
    assert gan.d_optimizer is not gan.g_optimizer
    # float32 compiles leave the optimizers alone.
    plain = build_gan(TINY, seed=0)
    plain.compile()
    assert not isinstance(plain.d_optimizer, keras.optimizers.LossScaleOptimizer)


def test_the_loss_scale_multiplies_the_losses_and_is_removed_from_the_updates():
    # SGD's update is lr * gradient: a loss that was not scaled (but unscaled by the
    # optimizer) moves the weights 2^12 times too little, a scaled one that was not
    # unscaled 2^12 times too much. Each network's change must match float32's.
    g32, g16 = make_pair(mode_seeking_weight=1.0)
    data = tuple(tf.constant(a) for a in batch())
    nets = ("generator", "discriminator")
    start = {n: flat(v.numpy() for v in getattr(g32, n).trainable_weights) for n in nets}
    step(g32, data, "float32")
    step(g16, data, MIXED)
    for opt in (g16.d_optimizer, g16.g_optimizer):
        assert int(opt.iterations) == 1, "a skipped step: the comparison below is void"
        assert float(opt.dynamic_scale) == SCALE
    for net in nets:
        d32, d16 = (flat(v.numpy() for v in getattr(g, net).trainable_weights) - start[net]
                    for g in (g32, g16))
        deviation = rel(d16, d32)
        print(f"{net}: one-step change |d| = {np.linalg.norm(d32):.4g}, "
              f"float16 vs float32 relative deviation {deviation:.3g} (bound 0.15)")
        assert np.linalg.norm(d32) > 1e-3 and deviation < 0.15


def test_an_overflowing_loss_scale_skips_the_step_and_halves_the_scale():
    # 2^40 times any loss overflows float16's gradients: the optimizers must see the
    # scaled loss (else nothing overflows and the step applies), skip the update and halve.
    _, g16 = make_pair(initial_scale=2.0**40, mode_seeking_weight=0.0)
    start = [v.numpy() for v in trainable(g16)]
    step(g16, tuple(tf.constant(a) for a in batch()), MIXED)
    for opt in (g16.d_optimizer, g16.g_optimizer):
        assert int(opt.iterations) == 0 and float(opt.dynamic_scale) == 2.0**39
    for s, v in zip(start, trainable(g16)):
        np.testing.assert_array_equal(s, v.numpy(), err_msg=v.path)


@pytest.mark.parametrize("kind,fn", [("wgan_gp", "gradient_penalty"), ("nonsaturating",
                                                                       "r1_penalty")])
def test_the_penalty_gets_the_critic_optimizers_loss_scale(monkeypatch, kind, fn):
    seen = []
    original = getattr(losses, fn)

    def spy(*args):
        seen.append(float(args[-1]))  # loss_scale, passed positionally by the registry
        return original(*args)

    monkeypatch.setattr(losses, fn, spy)
    g32, g16 = make_pair(kind=kind, mode_seeking_weight=0.0)
    data = tuple(tf.constant(a) for a in batch())
    step(g16, data, MIXED)
    step(g32, data, "float32")
    assert seen == [SCALE, 1.0]


# --------------------------------------------------------------------------- (c) losses


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL_LOSSES))
def test_mixed_float16_steps_give_the_float32_losses(kind):
    assert {"wgan_gp", "nonsaturating"} <= set(ADVERSARIAL_LOSSES)
    g32, g16 = make_pair(kind=kind, mode_seeking_weight=1.0)
    data = tuple(tf.constant(a) for a in batch())
    start = [v.numpy() for v in trainable(g32)]
    logs32 = step(g32, data, "float32", STEPS)
    logs16 = step(g16, data, MIXED, STEPS)
    for opt in (g16.d_optimizer, g16.g_optimizer):
        assert int(opt.iterations) == STEPS, "a skipped float16 step: not like for like"
    penalty = "gp" if kind == "wgan_gp" else "r1"
    assert min(log[penalty] for log in logs32) > 1e-3  # the double backprop takes part
    worst = {}
    for i, (a, b) in enumerate(zip(logs16, logs32)):
        assert set(a) == set(b) and all(np.isfinite(v) for v in a.values()), (i, a)
        for key in b:
            if key.startswith("acc_"):  # 0/1 arg-max counts: not a rounding question
                continue
            worst[key] = max(worst.get(key, 0.0), abs(a[key] - b[key]))
            assert a[key] == pytest.approx(b[key], rel=1e-2, abs=1e-3), (kind, i, key)
    print(kind, "worst |float16 - float32| over", STEPS, "steps:",
          {k: f"{v:.2g}" for k, v in worst.items()})
    moved = rel(flat(v.numpy() for v in trainable(g16)) - flat(start),
                flat(v.numpy() for v in trainable(g32)) - flat(start))
    print(kind, f"weights' change after {STEPS} steps: relative deviation {moved:.3g} "
          "(bound 0.06)")
    assert moved < 0.06


# --------------------------------------------------------------------------- (d) penalties


@pytest.fixture(scope="module")
def critics():
    """A float32 and a mixed_float16 critic with the same weights, and penalty inputs."""
    rng = np.random.default_rng(5)
    real, fake = (rng.uniform(-1, 1, (8, *TINY.final_resolution, 2)).astype("float32")
                  for _ in range(2))
    eps = rng.uniform(size=8).astype("float32")
    genre = np.eye(TINY.num_genres, dtype="float32")[rng.integers(0, TINY.num_genres, 8)]
    with policy("float32"):
        keras.utils.set_random_seed(0)
        d32 = Discriminator(TINY)
        d32([real, genre])
    with policy(MIXED):
        d16 = Discriminator(TINY)
        d16([real, genre])
        d16.set_weights(d32.get_weights())
    assert d16.compute_dtype == "float16"
    return d32, d16, real, fake, eps, genre


def scaled_critic(d, genre, c=1.0):
    return lambda x: d([x, genre])[0] * c


def test_penalties_under_mixed_float16_match_float32(critics):
    d32, d16, real, fake, eps, genre = critics
    gp32 = gradient_penalty(scaled_critic(d32, genre), real, fake, eps).numpy()
    gp16 = gradient_penalty(scaled_critic(d16, genre), real, fake, eps, SCALE)
    r32 = r1_penalty(scaled_critic(d32, genre), real).numpy()
    r16 = r1_penalty(scaled_critic(d16, genre), real, SCALE)
    assert gp16.dtype == r16.dtype == tf.float32
    gp16, r16 = gp16.numpy(), r16.numpy()
    assert np.all(np.isfinite(gp16)) and np.all(np.isfinite(r16))
    assert np.all(gp32 > 0.1) and np.all(r32 > 1e-3)  # not trivially small values
    gp_dev, r1_dev = rel(gp16, gp32), rel(r16, r32)
    print(f"gp: batch relative deviation {gp_dev:.3g} (bound 2e-2, worst sample "
          f"{np.max(np.abs(gp16 / gp32 - 1)):.3g}); r1: {r1_dev:.3g} (bound 4e-2, worst "
          f"sample {np.max(np.abs(r16 / r32 - 1)):.3g})")
    assert gp_dev < 2e-2 and r1_dev < 4e-2


TINY_SCORES = 2.0**-20  # scores ~1e-7: the critic's float16 input gradients underflow


def test_the_loss_scale_keeps_tiny_critic_gradients_from_underflowing(critics):
    d32, d16, real, fake, eps, genre = critics
    c32, c16 = scaled_critic(d32, genre, TINY_SCORES), scaled_critic(d16, genre, TINY_SCORES)
    # R1 is the squared input-gradient norm itself: lost without the scale, kept with it.
    r32 = r1_penalty(c32, real).numpy()
    assert np.all(r32 > 0)
    unscaled = r1_penalty(c16, real, 1.0).numpy()
    scaled = r1_penalty(c16, real, 2.0**15).numpy()
    print(f"r1 of tiny scores: float32 {r32.mean():.3g}, float16 unscaled {unscaled.mean():.3g}"
          f", scaled {scaled.mean():.3g} (batch relative deviation {rel(scaled, r32):.3g}, "
          "bound 4e-2)")
    assert rel(unscaled, r32) > 0.9  # all but a subnormal remnant flushed to zero
    assert rel(scaled, r32) < 4e-2

    # WGAN-GP's value cannot show it: with norms ~1e-6, (norm - 1)^2 is 1 to within the
    # penalty's own 1e-12 sqrt guard in both precisions. What underflows is its training
    # signal: the critic's gradient of the penalty (double backprop). Taken as in the
    # critic step, with the outer loss scaled too, so only the inner scale differs.
    def weight_grads(d, critic, inner, outer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(gradient_penalty(critic, real, fake, eps, inner)) * outer
        return flat((g / outer).numpy() for g in tape.gradient(loss, d.trainable_variables)
                    if g is not None)

    ref = weight_grads(d32, c32, 1.0, 1.0)
    assert np.linalg.norm(ref) > 0
    lost = rel(weight_grads(d16, c16, 1.0, 2.0**15), ref)
    kept = rel(weight_grads(d16, c16, 2.0**15, 2.0**15), ref)
    # For scale: the same gradient of an ordinary critic (scores ~0.2, no scale needed).
    usual = rel(weight_grads(d16, scaled_critic(d16, genre), 1.0, 1.0),
                weight_grads(d32, scaled_critic(d32, genre), 1.0, 1.0))
    print(f"gp's weight gradient, tiny scores: relative error unscaled {lost:.3g}, "
          f"scaled {kept:.3g} (bound 6e-2); ordinary critic, unscaled: {usual:.3g}")
    assert lost > 0.9 and kept < 6e-2
