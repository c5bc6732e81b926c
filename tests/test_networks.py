"""Generator / Discriminator: schedules, shapes at every stage, fade-in semantics, saving."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf.networks import (
    Discriminator,
    Generator,
    GeneratorBlock,
    NetworkConfig,
    gansynth_channels,
    hires_config,
    lrelu,
    quickstart_config,
)

NUM_GENRES = 10


def inputs(cfg, n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, cfg.latent_dim)).astype("float32")
    genre = np.eye(cfg.num_genres, dtype="float32")[rng.integers(0, cfg.num_genres, n)]
    return z, genre


def avg_pool(x, factor):
    n, t, f, c = x.shape
    return x.reshape(n, t // factor[0], factor[0], f // factor[1], factor[1], c).mean(axis=(2, 4))


def nearest_up(x, factor):
    return np.repeat(np.repeat(x, factor[0], axis=1), factor[1], axis=2)


def bilinear_up(x, factor):
    """Half-pixel-centred linear interpolation along time then frequency, edges clamped
    (np.interp holds the end values), computed apart from Keras."""
    for axis, k in ((1, factor[0]), (2, factor[1])):
        n = x.shape[axis]
        at = (np.arange(n * k) + 0.5) / k - 0.5
        x = np.apply_along_axis(lambda v: np.interp(at, np.arange(n), v), axis, x)
    return x


# --------------------------------------------------------------------------- activation


def test_lrelu_values_and_first_and_second_derivatives_match_the_plain_form():
    # The custom gradient must agree with max(x, 0.2 x) to second order: the gradient
    # penalties differentiate a gradient that passes through every activation.
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 6)).astype("float32"))
    w = tf.constant(rng.normal(size=(6, 3)).astype("float32"))

    def penalty_grad(act):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.reduce_sum(act(tf.matmul(x, w)) ** 2)
            g = inner.gradient(y, x)
            p = tf.reduce_sum(g**2)
        return y, g, outer.gradient(p, w)

    plain = penalty_grad(lambda v: tf.maximum(v, 0.2 * v))
    custom = penalty_grad(lrelu)
    for a, b in zip(plain, custom):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        lrelu(tf.constant([-2.0, 0.0, 3.0])).numpy(), [-0.4, 0.0, 3.0], rtol=1e-6
    )


# --------------------------------------------------------------------------- configs


def test_hires_config_is_gansynth_schedule():
    cfg = hires_config(NUM_GENRES)
    assert cfg.resolutions == tuple((2 * 2**s, 16 * 2**s) for s in range(7))
    assert cfg.resolutions[0] == (2, 16) and cfg.final_resolution == (128, 1024)
    assert cfg.gen_channels == (256, 256, 256, 256, 128, 64, 32) == cfg.disc_channels
    assert cfg.latent_dim == 256 and cfg.spec_channels == 2 and cfg.num_stages == 7
    assert cfg.output_shape() == (128, 1024, 2) and cfg.output_shape(0) == (2, 16, 2)
    assert gansynth_channels(7) == cfg.gen_channels


def test_quickstart_config_is_small():
    cfg = quickstart_config(NUM_GENRES)
    assert cfg.resolutions[0] == (4, 16) and cfg.final_resolution == (32, 128)
    assert 4 <= cfg.num_stages <= 5 and max(cfg.gen_channels) <= 128 and cfg.latent_dim <= 128
    assert all(cfg.stage_factor(s) == (2, 2) for s in range(1, cfg.num_stages))


def test_config_validation_and_dict_roundtrip():
    cfg = quickstart_config(3, conditioning="projection")
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiple"):
        NetworkConfig(((2, 16), (3, 32)), (8, 8), (8, 8), num_genres=2)
    with pytest.raises(ValueError, match="channel"):
        NetworkConfig(((2, 16), (4, 32)), (8,), (8, 8), num_genres=2)
    with pytest.raises(ValueError, match="conditioning"):
        NetworkConfig(((2, 16),), (8,), (8,), num_genres=2, conditioning="concat")
    # Non-uniform factors are allowed: time x1... is not (must grow), but (2, 1) is fine.
    ok = NetworkConfig(((2, 16), (4, 16)), (8, 8), (8, 8), num_genres=2)
    assert ok.stage_factor(1) == (2, 1)


# --------------------------------------------------------------------------- hi-res shapes


@pytest.fixture(scope="module")
def hires_nets():
    cfg = hires_config(NUM_GENRES)
    return cfg, Generator(cfg), Discriminator(cfg)


def test_hires_shapes_at_every_stage(hires_nets):
    cfg, gen, disc = hires_nets
    z, genre = inputs(cfg, 1)
    for stage, (t, f) in enumerate(cfg.resolutions):
        gen.set_stage(stage, alpha=0.5)
        disc.set_stage(stage, alpha=0.5)
        spec = gen([z, genre])
        assert spec.shape == (1, t, f, 2) and spec.dtype == tf.float32
        assert np.all(np.abs(spec.numpy()) <= 1.0)
        score, logits = disc(spec)
        assert score.shape == (1, 1) and logits.shape == (1, NUM_GENRES)
        assert score.dtype == tf.float32 and np.all(np.isfinite(score.numpy()))


def test_hires_parameter_counts(hires_nets):
    cfg, gen, disc = hires_nets
    # Generator: dense (266 -> 2*16*256) + 3x3 convs + 1x1 to-spec convs of all 7 stages.
    conv = lambda k, i, o: k * k * i * o + o  # noqa: E731
    ch = cfg.gen_channels
    expected_g = (256 + NUM_GENRES) * 32 * ch[0] + 32 * ch[0] + conv(3, ch[0], ch[0])
    expected_g += sum(conv(3, ch[s - 1], ch[s]) + conv(3, ch[s], ch[s]) for s in range(1, 7))
    expected_g += sum(conv(1, c, 2) for c in ch)
    assert gen.count_params() == expected_g + 1  # + the fade-in alpha
    assert 6e6 < disc.count_params() < 8e6
    assert len(gen.trainable_weights) == 2 * (1 + 1 + 2 * 6 + 7)


# --------------------------------------------------------------------------- fade-in semantics


@pytest.fixture(scope="module")
def quick_nets():
    keras.utils.set_random_seed(0)
    cfg = quickstart_config(4)
    return cfg, Generator(cfg), Discriminator(cfg)


@pytest.mark.parametrize("stage", [1, 3])
def test_generator_alpha_zero_is_upsampled_previous_stage(quick_nets, stage):
    cfg, gen, _ = quick_nets
    z, genre = inputs(cfg, 3, seed=stage)
    gen.set_stage(stage - 1, alpha=1.0)  # the previous stage, stable
    previous = gen([z, genre]).numpy()
    gen.set_stage(stage, alpha=0.0)
    faded_out = gen([z, genre]).numpy()
    np.testing.assert_allclose(
        faded_out, nearest_up(previous, cfg.stage_factor(stage)), rtol=1e-5, atol=1e-6
    )
    gen.set_alpha(1.0)
    new = gen([z, genre]).numpy()
    gen.set_alpha(0.25)
    np.testing.assert_allclose(
        gen([z, genre]).numpy(), 0.75 * faded_out + 0.25 * new, rtol=1e-4, atol=1e-5
    )


def test_discriminator_alpha_zero_is_previous_stage_on_pooled_input(quick_nets):
    cfg, _, disc = quick_nets
    x = np.random.default_rng(1).uniform(-1, 1, (4,) + cfg.output_shape(2)).astype("float32")
    disc.set_stage(1, alpha=1.0)
    score_prev, logits_prev = disc(avg_pool(x, cfg.stage_factor(2)))
    disc.set_stage(2, alpha=0.0)
    score, logits = disc(x)
    np.testing.assert_allclose(score.numpy(), score_prev.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), logits_prev.numpy(), rtol=1e-4, atol=1e-5)
    disc.set_alpha(1.0)
    assert not np.allclose(disc(x)[0].numpy(), score_prev.numpy())


def test_alpha_change_does_not_retrace_but_stage_change_does(quick_nets):
    cfg, gen, _ = quick_nets
    z, genre = inputs(cfg, 2)
    gen.set_stage(2, alpha=0.0)
    fn = tf.function(lambda a, b: gen([a, b]))
    out0 = fn(z, genre).numpy()
    gen.set_alpha(1.0)
    out1 = fn(z, genre).numpy()
    assert fn.experimental_get_tracing_count() == 1
    assert not np.allclose(out0, out1)
    gen.set_stage(3)
    # The stage is Python state: a new tf.function (or new input shapes) picks it up.
    assert tf.function(lambda a, b: gen([a, b]))(z, genre).shape == (2, 32, 128, 2)


def test_set_stage_validates(quick_nets):
    _, gen, disc = quick_nets
    with pytest.raises(ValueError):
        gen.set_stage(4)
    with pytest.raises(ValueError):
        disc.set_stage(-1)


# --------------------------------------------------------------------------- conditioning


def test_acgan_score_ignores_genre_projection_uses_it():
    keras.utils.set_random_seed(2)
    x = np.random.default_rng(2).uniform(-1, 1, (4, 4, 32, 2)).astype("float32")
    g1, g2 = np.eye(3, dtype="float32")[[0, 1, 2, 0]], np.eye(3, dtype="float32")[[1, 2, 0, 2]]
    small = dict(
        resolutions=((2, 16), (4, 32)), gen_channels=(16, 8), disc_channels=(16, 8), num_genres=3
    )
    acgan = Discriminator(NetworkConfig(**small))
    np.testing.assert_array_equal(acgan([x, g1])[0].numpy(), acgan(x)[0].numpy())
    proj = Discriminator(NetworkConfig(**small, conditioning="projection"))
    # The embedding starts random, so the genre changes the score; logits do not depend on it.
    assert not np.allclose(proj([x, g1])[0].numpy(), proj([x, g2])[0].numpy())
    np.testing.assert_allclose(proj([x, g1])[1].numpy(), proj([x, g2])[1].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="projection"):
        proj(x)


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("conditioning,skip_upsampling,modulation",
                         [("acgan", None, False), ("projection", None, False),
                          ("projection", "nearest", False), ("acgan", "bilinear", False),
                          ("projection", "nearest", True)])
def test_keras_save_and_load_reproduces_outputs(tmp_path, conditioning, skip_upsampling,
                                                modulation):
    keras.utils.set_random_seed(3)
    cfg = dataclasses.replace(quickstart_config(4, latent_dim=16, conditioning=conditioning),
                              skip_outputs=skip_upsampling is not None,
                              skip_upsampling=skip_upsampling or "nearest",
                              modulation=modulation)
    gen, disc = Generator(cfg, stage=2), Discriminator(cfg, stage=2)
    gen.set_alpha(0.3)
    disc.set_alpha(0.3)
    z, genre = inputs(cfg, 3)
    spec = gen([z, genre]).numpy()
    score = disc([spec, genre])[0].numpy()
    gen.save(tmp_path / "g.keras")
    disc.save(tmp_path / "d.keras")
    gen2 = keras.models.load_model(tmp_path / "g.keras")
    disc2 = keras.models.load_model(tmp_path / "d.keras")
    assert isinstance(gen2, Generator) and isinstance(disc2, Discriminator)
    assert (
        gen2.config == cfg and gen2.stage == 2 and float(gen2.alpha.numpy()) == pytest.approx(0.3)
    )
    np.testing.assert_allclose(gen2([z, genre]).numpy(), spec, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(disc2([spec, genre])[0].numpy(), score, rtol=1e-5, atol=1e-6)
    gen2.set_stage(3, alpha=1.0)
    assert gen2([z, genre]).shape == (3, 32, 128, 2)


MIXED = "mixed_float16"
TINY = dict(resolutions=((2, 4), (4, 8)), gen_channels=(6, 4), disc_channels=(6, 4),
            num_genres=3, latent_dim=5)


def _policies(net):
    return {layer.dtype_policy.name for layer in net._flatten_layers()}


def _run(net, cfg):
    z, genre = inputs(cfg, 4)
    if isinstance(net, Generator):
        return [net([z, genre])]
    x = np.random.default_rng(0).uniform(-1, 1, (4,) + cfg.output_shape()).astype("float32")
    return list(net([x, genre]))


@pytest.fixture
def global_policy():
    """Sets keras' global dtype policy for a test and puts the previous one back."""
    before = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(before)


@pytest.mark.parametrize("cls", [Generator, Discriminator])
def test_mixed_dtype_policy_round_trips_through_the_config(cls, tmp_path, global_policy):
    cfg = NetworkConfig(**TINY)
    # Built under the global mixed policy (as train --mixed_precision does), reloaded under
    # float32: the policy comes from the config, not from where it is loaded.
    global_policy(MIXED)
    net = cls(cfg, stage=1)
    global_policy("float32")
    config = net.get_config()
    for again in (cls.from_config(config),
                  keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
                      net))):
        assert again.dtype_policy.name == MIXED and _policies(again) == {MIXED}
        assert all(w.dtype == "float32" for w in again.weights)
        outputs = _run(again, cfg)
        assert all(o.dtype == tf.float32 and np.isfinite(o.numpy()).all() for o in outputs)
    # Given as dtype= with a float32 global policy: every sub-layer takes it, and a .keras
    # file keeps it.
    given = cls(cfg, stage=1, dtype=MIXED)
    assert _policies(given) == {MIXED}
    given.save(tmp_path / "net.keras")
    loaded = keras.models.load_model(tmp_path / "net.keras")
    assert isinstance(loaded, cls) and loaded.dtype_policy.name == MIXED
    assert _policies(loaded) == {MIXED}
    for a, b in zip(_run(given, cfg), _run(loaded, cfg)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [Generator, Discriminator])
def test_config_without_dtype_still_loads_with_the_global_policy(cls, global_policy):
    cfg = NetworkConfig(**TINY)
    old = {"name": "old", "config": cfg.to_dict(), "stage": 1}  # configs before "dtype"
    loaded = cls.from_config(old)
    assert loaded.config == cfg and loaded.stage == 1 and loaded.name == "old"
    assert _policies(loaded) == {"float32"}
    assert [o.shape for o in _run(loaded, cfg)]
    global_policy(MIXED)
    assert _policies(cls.from_config(old)) == {MIXED}  # the global policy, as before


def test_genre_bias_starts_neutral_reaches_every_block_and_is_checkpointed(tmp_path):
    keras.utils.set_random_seed(6)
    cfg = quickstart_config(3, latent_dim=16)
    biased_cfg = NetworkConfig.from_dict({**cfg.to_dict(), "genre_bias": True})
    plain, biased = Generator(cfg), Generator(biased_cfg)
    assert len(biased.genre_biases) == cfg.num_stages and not plain.genre_biases
    # Same weights elsewhere + zero tables = the plain generator.
    by_path = {w.path: w for w in biased.weights}
    for w in plain.weights:
        by_path[w.path.replace(plain.name, biased.name, 1)].assign(w)
    z, genre = inputs(cfg, 4)
    np.testing.assert_allclose(
        biased([z, genre]).numpy(), plain([z, genre]).numpy(), rtol=1e-6, atol=1e-6
    )
    # Only the last block's table changed: the output now depends on the genre through it.
    last = biased.genre_biases[-1]
    last.table.assign(np.random.default_rng(0).normal(size=last.table.shape).astype("float32"))
    assert not np.allclose(biased([z, genre]).numpy(), plain([z, genre]).numpy(), atol=1e-3)
    path = tf.train.Checkpoint(g=biased).save(str(tmp_path / "ckpt"))
    restored = Generator(biased_cfg)
    tf.train.Checkpoint(g=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored([z, genre]).numpy(), biased([z, genre]).numpy())
    # Configs written before the field existed load without it.
    legacy = cfg.to_dict()
    legacy.pop("genre_bias")
    assert NetworkConfig.from_dict(legacy) == cfg


def test_modulation_styles_every_block_keeps_the_feature_scale_and_is_checkpointed(tmp_path):
    keras.utils.set_random_seed(9)
    cfg = dataclasses.replace(quickstart_config(3, latent_dim=16), modulation=True)
    gen = Generator(cfg)
    assert len(gen.mapping) == 2
    assert all(b.style_dim == cfg.latent_dim and b.norm is None for b in gen.blocks)
    z, genre = inputs(cfg, 4)
    out = gen([z, genre]).numpy()
    # Demodulation plus the activation gain keep the features' scale through every block:
    # a leaky ReLU keeps about half a unit Gaussian's power (0.72x its RMS), so without the
    # gain the third block's RMS would be about 0.72^4 ~ 0.3 of the first's.
    x = gen.input_norm(tf.concat([z, genre], axis=-1))
    style = lrelu(gen.mapping[1](lrelu(gen.mapping[0](x))))
    h = gen.initial_norm(lrelu(gen.initial_conv(gen.initial_norm(lrelu(tf.reshape(
        gen.initial_dense(x), [-1, *cfg.resolutions[0], cfg.gen_channels[0]]))))))
    rms = []
    for block in gen.blocks:
        h = block(h, style=style)
        rms.append(float(tf.sqrt(tf.reduce_mean(tf.square(h)))))
    assert 0.6 < rms[-1] / rms[0] < 1.6, rms
    np.testing.assert_allclose(np.tanh(gen.to_spec[-1](h).numpy()), out, atol=1e-5)
    # The style reaches the blocks: another mapping changes the output, same z and genre.
    kernel = gen.mapping[1].kernel
    saved = kernel.numpy()
    kernel.assign(np.random.default_rng(1).normal(size=saved.shape).astype("float32"))
    assert not np.allclose(gen([z, genre]).numpy(), out, atol=1e-3)
    kernel.assign(saved)
    path = tf.train.Checkpoint(g=gen).save(str(tmp_path / "ckpt"))
    restored = Generator(cfg)
    tf.train.Checkpoint(g=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored([z, genre]).numpy(), out)
    # Configs written before the field existed load as unmodulated.
    legacy = cfg.to_dict()
    legacy.pop("modulation")
    assert NetworkConfig.from_dict(legacy) == dataclasses.replace(cfg, modulation=False)


def _skip_generator(skip_outputs, seed=8, skip_upsampling="nearest"):
    keras.utils.set_random_seed(seed)
    cfg = dataclasses.replace(quickstart_config(3, latent_dim=16), skip_outputs=skip_outputs,
                              skip_upsampling=skip_upsampling)
    return cfg, Generator(cfg)


def _upsampled_pre_tanh(out, factor, skip_upsampling):
    """tanh(upsample(S)) from tanh(S): the skip path upsamples the pre-tanh sum."""
    pre = np.arctanh(out.astype("float64"))
    up = nearest_up if skip_upsampling == "nearest" else bilinear_up
    return np.tanh(up(pre, factor))


@pytest.mark.parametrize("stage,skip_upsampling",
                         [(1, "nearest"), (3, "nearest"), (1, "bilinear"), (3, "bilinear")])
def test_skip_outputs_fade_in_the_new_stage_before_the_tanh(stage, skip_upsampling):
    cfg, gen = _skip_generator(True, skip_upsampling=skip_upsampling)
    z, genre = inputs(cfg, 3, seed=stage)
    gen.set_stage(stage - 1, alpha=1.0)
    previous = gen([z, genre]).numpy()
    gen.set_stage(stage, alpha=0.0)
    faded_out = gen([z, genre]).numpy()
    assert faded_out.shape == (3,) + cfg.output_shape(stage)
    np.testing.assert_allclose(
        faded_out, _upsampled_pre_tanh(previous, cfg.stage_factor(stage), skip_upsampling),
        rtol=1e-4, atol=1e-5,
    )
    gen.set_alpha(1.0)
    new = gen([z, genre]).numpy()
    gen.set_alpha(0.25)
    quarter = gen([z, genre]).numpy()
    # The blend is of the pre-tanh sums: S = low + alpha * to_spec[s](h_s).
    pre_tanh = 0.75 * np.arctanh(faded_out.astype("float64")) + 0.25 * np.arctanh(
        new.astype("float64"))
    np.testing.assert_allclose(quarter, np.tanh(pre_tanh), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("skip_outputs", [False, True])
def test_skip_outputs_keep_the_earlier_stages_in_the_output(skip_outputs):
    cfg, gen = _skip_generator(skip_outputs)
    z, genre = inputs(cfg, 3)
    gen.set_stage(1, alpha=1.0)
    previous = gen([z, genre]).numpy()
    assert np.abs(previous).max() > 1e-2
    # Silence the last stage's own output: a skip generator still has the earlier
    # stages' upsampled sum there, a plain one has nothing but tanh(0).
    for w in gen.to_spec[2].weights:
        w.assign(tf.zeros_like(w))
    gen.set_stage(2, alpha=1.0)
    out = gen([z, genre]).numpy()
    expected = nearest_up(previous, cfg.stage_factor(2)) if skip_outputs else 0.0 * out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_bilinear_skip_path_is_smooth_where_nearest_makes_blocks():
    # Same weights, only the skip path's interpolation differs. With stage 2's own output
    # silenced, the output is the upsampled sum of stages 0-1: nearest repeats each stage-1
    # cell in 2x2 blocks (half the time steps are exactly flat), bilinear moves every step.
    outs = {}
    for mode in ("nearest", "bilinear"):
        cfg, gen = _skip_generator(True, skip_upsampling=mode)
        for w in gen.to_spec[2].weights:
            w.assign(tf.zeros_like(w))
        gen.set_stage(2, alpha=1.0)
        outs[mode] = np.arctanh(gen(inputs(cfg, 2)).numpy().astype("float64"))
    flat = {mode: (np.abs(np.diff(out, axis=1)) < 1e-6).mean() for mode, out in outs.items()}
    assert flat["nearest"] >= 0.5 and flat["bilinear"] < 0.05, flat


def test_skip_outputs_round_trip_and_old_configs_load_without_them():
    cfg, _ = _skip_generator(True, skip_upsampling="bilinear")
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg and cfg.skip_outputs is True
    legacy = cfg.to_dict()
    legacy.pop("skip_outputs")
    legacy.pop("skip_upsampling")
    old = NetworkConfig.from_dict(legacy)
    assert old.skip_outputs is False and old.skip_upsampling == "nearest"
    with pytest.raises(ValueError, match="skip_upsampling"):
        dataclasses.replace(cfg, skip_upsampling="bicubic")
    with pytest.raises(ValueError, match="needs skip_outputs"):
        dataclasses.replace(cfg, skip_outputs=False)


def test_reflect_time_padding_round_trips_and_old_configs_load_as_zeros():
    cfg = dataclasses.replace(quickstart_config(3), gen_time_padding="reflect")
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg
    legacy = cfg.to_dict()
    legacy.pop("gen_time_padding")
    assert NetworkConfig.from_dict(legacy).gen_time_padding == "zeros"
    with pytest.raises(ValueError, match="gen_time_padding"):
        dataclasses.replace(cfg, gen_time_padding="circular")
    with pytest.raises(ValueError, match="2 frames"):
        NetworkConfig(((1, 16), (2, 32)), (8, 8), (8, 8), num_genres=2,
                      gen_time_padding="reflect")


@pytest.mark.parametrize("modulation", [False, True])
@pytest.mark.parametrize("time_padding,edges_match", [("zeros", False), ("reflect", True)])
def test_time_padding_decides_whether_edge_frames_are_drawn_like_the_rest(
        time_padding, edges_match, modulation):
    # A generator block fed the same frame at every time step: with reflected time padding
    # every output frame is the same (nothing tells the edges apart); with zeros the first
    # and last frames differ from the middle ones.
    keras.utils.set_random_seed(2)
    block = GeneratorBlock(6, upsample=(2, 2), time_padding=time_padding,
                           style_dim=4 if modulation else None)
    frame = np.random.default_rng(0).normal(size=(2, 1, 5, 3)).astype("float32")
    x = np.repeat(frame, 6, axis=1)
    style = np.ones((2, 4), "float32") if modulation else None
    y = block(x, style=style).numpy()
    assert y.shape == (2, 12, 10, 6)
    spread = np.abs(y - y[:, 6:7]).max(axis=(0, 2, 3))
    assert spread[3:9].max() < 1e-5
    if edges_match:
        assert spread.max() < 1e-5
    else:
        assert min(spread[0], spread[-1]) > 1e-2


def test_reflect_generator_saves_loads_and_is_time_uniform_from_the_first_conv(tmp_path):
    keras.utils.set_random_seed(4)
    cfg = dataclasses.replace(quickstart_config(3, latent_dim=8), gen_time_padding="reflect")
    gen = Generator(cfg, stage=2)
    assert gen.initial_conv.padding == "REFLECT_TIME"
    assert all(b.conv0.padding == b.conv1.padding == "REFLECT_TIME" for b in gen.blocks)
    assert Discriminator(cfg).final_conv.padding == "SAME"  # the critic keeps GANSynth's
    z, genre = inputs(cfg, 2)
    spec = gen([z, genre]).numpy()
    gen.save(tmp_path / "g.keras")
    gen2 = keras.models.load_model(tmp_path / "g.keras")
    assert gen2.config == cfg
    np.testing.assert_allclose(gen2([z, genre]).numpy(), spec, rtol=1e-6, atol=1e-6)


def test_tf_checkpoint_holds_every_block(tmp_path):
    """Layers kept in lists (blocks, to_spec, ...) must be in tf.train.Checkpoint too."""
    keras.utils.set_random_seed(5)
    cfg = quickstart_config(3, latent_dim=16)
    gen, disc = Generator(cfg), Discriminator(cfg)
    path = tf.train.Checkpoint(g=gen, d=disc).save(str(tmp_path / "ckpt"))
    gen2, disc2 = Generator(cfg), Discriminator(cfg)
    tf.train.Checkpoint(g=gen2, d=disc2).restore(path).assert_consumed()
    for a, b in zip(gen.weights + disc.weights, gen2.weights + disc2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    z, genre = inputs(cfg, 2)
    np.testing.assert_array_equal(gen([z, genre]).numpy(), gen2([z, genre]).numpy())


@pytest.mark.parametrize("stage", [0, 2])
def test_every_layer_is_built_before_any_call(stage):
    # Keras' fit builds a model symbolically when any of its layers is unbuilt, which the
    # stage-dependent calls do not survive; the layers of stages not running (their
    # resampling in particular) are never called, so construction must build them all.
    cfg = NetworkConfig(resolutions=((2, 4), (4, 8), (4, 24)), gen_channels=(6, 5, 4),
                        disc_channels=(6, 5, 4), num_genres=3, latent_dim=5, genre_bias=True,
                        modulation=True)
    for net in (Generator(cfg, stage=stage), Discriminator(cfg, stage=stage)):
        unbuilt = [layer.name for layer in net._flatten_layers() if not layer.built]
        assert unbuilt == [], unbuilt
