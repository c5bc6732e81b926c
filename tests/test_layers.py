"""Layer maths, shapes and serialization round trips."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf.layers import (
    EqualizedConv2D,
    EqualizedDense,
    FadeIn,
    GenreBias,
    MinibatchStddev,
    ModulatedConv2D,
    PixelNorm,
    average_downsampling,
    he_scale,
    nearest_upsampling,
)


def roundtrip(layer):
    """Serialize through the registered name and rebuild; also via cls.from_config."""
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()
    direct = type(layer).from_config(layer.get_config())
    assert direct.get_config() == layer.get_config()
    return clone


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# --------------------------------------------------------------------------- PixelNorm


def test_pixel_norm_matches_formula_and_gives_unit_rms():
    x = rand(3, 2, 5, 7)
    y = PixelNorm()(x).numpy()
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-8)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.mean(y**2, axis=-1)), 1.0, rtol=1e-5)
    assert y.shape == x.shape
    # Zero vectors stay finite thanks to epsilon.
    assert np.all(PixelNorm()(np.zeros((1, 4), "float32")).numpy() == 0.0)


def test_pixel_norm_config_roundtrip():
    clone = roundtrip(PixelNorm(epsilon=1e-6, name="pn"))
    assert clone.epsilon == 1e-6 and clone.name == "pn"


# --------------------------------------------------------------------------- MinibatchStddev


def mbstd_reference(x, group):
    """Consecutive groups: std over the group, averaged over (T, F, C), appended."""
    n = x.shape[0]
    g = x.reshape(n // group, group, *x.shape[1:])
    std = np.sqrt(np.mean((g - g.mean(axis=1, keepdims=True)) ** 2, axis=1) + 1e-8)
    stat = np.repeat(std.mean(axis=(1, 2, 3)), group)
    return np.concatenate(
        [x, np.broadcast_to(stat[:, None, None, None], x.shape[:3] + (1,))], axis=-1
    )


@pytest.mark.parametrize("batch,expected_group", [(8, 4), (6, 3), (5, 1), (2, 2)])
def test_minibatch_stddev_matches_reference(batch, expected_group):
    x = rand(batch, 2, 3, 4, seed=batch)
    y = MinibatchStddev(group_size=4)(x).numpy()
    assert y.shape == (batch, 2, 3, 5)
    np.testing.assert_allclose(y, mbstd_reference(x, expected_group), rtol=1e-5, atol=1e-6)
    # Samples in different groups see different statistics; within a group the same.
    if expected_group > 1 and batch // expected_group > 1:
        assert y[0, 0, 0, -1] != y[expected_group, 0, 0, -1]
    assert np.all(y[:expected_group, ..., -1] == y[0, 0, 0, -1])


def test_minibatch_stddev_dynamic_batch_matches_static():
    layer = MinibatchStddev(group_size=4)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, 2, 3, 4], tf.float32)])
    for batch, group in [(8, 4), (6, 3), (7, 1)]:
        x = rand(batch, 2, 3, 4, seed=batch)
        np.testing.assert_allclose(fn(x).numpy(), mbstd_reference(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_config_roundtrip_and_validation():
    assert roundtrip(MinibatchStddev(group_size=2)).group_size == 2
    with pytest.raises(ValueError):
        MinibatchStddev(group_size=0)


# --------------------------------------------------------------------------- equalized LR


def test_he_scale_formula():
    assert he_scale(100, 0.0) == pytest.approx(math.sqrt(2 / 100))
    assert he_scale(100, 1.0) == pytest.approx(math.sqrt(1 / 100))
    assert he_scale(9 * 64, 0.2) == pytest.approx(math.sqrt(2 / (1.04 * 576)))


def test_equalized_conv_applies_runtime_scale_to_unit_normal_kernel():
    layer = EqualizedConv2D(6, 3, he_slope=0.0)
    x = rand(2, 5, 7, 4)
    y = layer(x).numpy()
    kernel = layer.kernel.numpy()
    assert kernel.shape == (3, 3, 4, 6) and y.shape == (2, 5, 7, 6)
    assert layer.scale == pytest.approx(math.sqrt(2 / (3 * 3 * 4)))
    expected = tf.nn.conv2d(x, kernel * math.sqrt(2 / 36), strides=1, padding="SAME").numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(6))


@pytest.mark.parametrize("slope,gain", [(0.0, math.sqrt(2.0)), (1.0, 1.0)])
def test_equalized_conv_output_std_follows_gain(slope, gain):
    # Unit-variance input: the output std is gain (= sqrt(2/(1+s^2))) up to sampling error.
    layer = EqualizedConv2D(64, 3, he_slope=slope)
    y = layer(rand(16, 16, 16, 32, seed=3)).numpy()
    assert np.std(layer.kernel.numpy()) == pytest.approx(1.0, rel=0.05)  # stored N(0, 1)
    # Normalise by the realised kernel std so the check is about the run-time scale only.
    assert np.std(y) / np.std(layer.kernel.numpy()) == pytest.approx(gain, rel=0.07)


def test_equalized_conv_valid_padding_and_roundtrip():
    layer = EqualizedConv2D(3, (2, 5), he_slope=1.0, padding="valid", use_bias=False, name="c")
    y = layer(rand(1, 4, 9, 2))
    assert y.shape == (1, 3, 5, 3)
    assert layer.compute_output_shape((1, 4, 9, 2)) == (1, 3, 5, 3)
    assert layer.bias is None and len(layer.weights) == 1
    clone = roundtrip(layer)
    assert clone.built  # the serialized build config recreates the weights
    clone.set_weights(layer.get_weights())
    x = rand(2, 4, 9, 2, seed=5)
    np.testing.assert_allclose(clone(x).numpy(), layer(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError):
        EqualizedConv2D(3, 3, padding="causal")


@pytest.mark.parametrize("kernel_size", [(3, 3), (3, 1), (5, 2), (2, 3)])
def test_reflect_time_padding_mirrors_time_and_zero_pads_frequency(kernel_size):
    layer = EqualizedConv2D(4, kernel_size, padding="reflect_time")
    x = rand(2, 6, 7, 3, seed=4)
    y = layer(x).numpy()
    assert y.shape == (2, 6, 7, 4)
    kh, kw = kernel_size
    mirrored = np.pad(x, [(0, 0), ((kh - 1) // 2, kh // 2), (0, 0), (0, 0)], mode="reflect")
    padded = np.pad(mirrored, [(0, 0), (0, 0), ((kw - 1) // 2, kw // 2), (0, 0)])
    expected = tf.nn.conv2d(padded, layer.kernel.numpy() * layer.scale, 1, "VALID").numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # Inside the edges it is the 'same' conv; only the edge frames differ.
    same = tf.nn.conv2d(x, layer.kernel.numpy() * layer.scale, 1, "SAME").numpy()
    inner = slice((kh - 1) // 2, 6 - kh // 2)
    np.testing.assert_allclose(y[:, inner], same[:, inner], rtol=1e-5, atol=1e-5)
    if (kh - 1) // 2:
        assert not np.allclose(y[:, 0], same[:, 0], atol=1e-3)
    if kh // 2:
        assert not np.allclose(y[:, -1], same[:, -1], atol=1e-3)


def test_modulated_conv_reflect_time_padding_is_the_mirrored_valid_conv():
    keras.utils.set_random_seed(5)
    same = ModulatedConv2D(3, style_dim=4)
    mirror = ModulatedConv2D(3, style_dim=4, padding="reflect_time")
    x, style = rand(2, 5, 6, 2, seed=1), rand(2, 4, seed=2)
    same.build(x.shape)
    mirror.build(x.shape)
    mirror.set_weights(same.get_weights())
    padded = np.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)], mode="reflect")
    # 'same' on the mirrored input, cropped back: the time edges see mirrored frames, the
    # frequency edges zeros, exactly as in the reflect_time layer.
    expected = same(padded, style=style).numpy()[:, 1:-1]
    np.testing.assert_allclose(mirror(x, style=style).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert roundtrip(mirror).padding == "REFLECT_TIME"
    with pytest.raises(ValueError, match="padding"):
        ModulatedConv2D(3, style_dim=4, padding="valid")


def test_equalized_dense_scale_std_and_roundtrip():
    layer = EqualizedDense(256)  # default he_slope 1: gain 1
    x = rand(512, 128, seed=7)
    y = layer(x).numpy()
    assert y.shape == (512, 256)
    np.testing.assert_allclose(
        y, x @ (layer.kernel.numpy() * math.sqrt(1 / 128)), rtol=1e-4, atol=1e-4
    )
    assert np.std(y) == pytest.approx(1.0, rel=0.07)
    relu_layer = EqualizedDense(256, he_slope=0.0)
    assert np.std(relu_layer(x).numpy()) == pytest.approx(math.sqrt(2.0), rel=0.07)
    clone = roundtrip(layer)
    assert clone.units == 256 and clone.he_slope == 1.0


# --------------------------------------------------------------------------- resampling


def test_upsample_is_nearest_and_downsample_is_average():
    x = np.arange(2 * 2 * 3 * 1, dtype="float32").reshape(2, 2, 3, 1)
    up = nearest_upsampling((2, 2))(x).numpy()
    assert up.shape == (2, 4, 6, 1)
    np.testing.assert_array_equal(up[:, ::2, ::2], x)
    np.testing.assert_array_equal(up[:, 1::2, 1::2], x)
    np.testing.assert_array_equal(average_downsampling((2, 2))(up).numpy(), x)
    y = rand(1, 4, 6, 3)
    down = average_downsampling((2, 3))(y).numpy()
    assert down.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(down[0, 1, 1], y[0, 2:4, 3:6].mean(axis=(0, 1)), rtol=1e-6)
    assert nearest_upsampling((1, 2))(y).shape == (1, 4, 12, 3)


@pytest.mark.parametrize("factor", [(1, 1), (1, 2), (2, 1), (2, 4), (3, 2)])
def test_resampling_matches_repeat_and_block_mean_per_axis(factor):
    # The factors are (time, freq), axes 1 and 2, even when keras' global image format is
    # channels_first.
    x = rand(2, 7, 9, 3, seed=sum(factor))
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        up, down = nearest_upsampling(factor)(x).numpy(), average_downsampling(factor)(x).numpy()
    finally:
        keras.config.set_image_data_format(previous)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(x, factor[0], axis=1), factor[1], axis=2))
    t, f = 7 // factor[0], 9 // factor[1]  # a remainder row / column is dropped
    blocks = x[:, :t * factor[0], :f * factor[1]].reshape(2, t, factor[0], f, factor[1], 3)
    np.testing.assert_allclose(down, blocks.mean(axis=(2, 4)), rtol=1e-6, atol=1e-6)


def test_resampling_layers_are_built_at_creation():
    # Weightless; the networks' unused stages never call them (see test_networks).
    assert nearest_upsampling(2).built and average_downsampling((1, 2)).built


def test_resampling_validates_factors():
    with pytest.raises(ValueError):
        nearest_upsampling((0, 2))
    with pytest.raises(ValueError):
        average_downsampling((2, 2, 2))


# --------------------------------------------------------------------------- FadeIn


def test_fade_in_endpoints_are_exact_and_midpoint_blends():
    low, high = rand(2, 3, 4, 2, seed=1), rand(2, 3, 4, 2, seed=2)
    fade = FadeIn(alpha=0.0)
    np.testing.assert_array_equal(fade([low, high]).numpy(), low)
    fade.set_alpha(1.0)
    np.testing.assert_array_equal(fade([low, high]).numpy(), high)
    fade.set_alpha(0.25)
    np.testing.assert_allclose(fade([low, high]).numpy(), 0.75 * low + 0.25 * high, rtol=1e-6)
    assert not fade.alpha.trainable and fade.trainable_weights == []


def test_fade_in_alpha_change_does_not_retrace():
    fade = FadeIn(alpha=0.0)
    low, high = tf.zeros([1, 2, 2, 1]), tf.ones([1, 2, 2, 1])
    fn = tf.function(lambda a, b: fade([a, b]))
    outs = []
    for alpha in (0.0, 0.3, 1.0):
        fade.set_alpha(alpha)
        outs.append(float(fn(low, high)[0, 0, 0, 0]))
    assert outs == pytest.approx([0.0, 0.3, 1.0])
    assert fn.experimental_get_tracing_count() == 1


def test_fade_in_config_roundtrip():
    clone = roundtrip(FadeIn(alpha=0.5, name="f"))
    assert float(clone.alpha.numpy()) == 0.5


def test_genre_bias_starts_at_zero_then_looks_up_rows_and_roundtrips():
    layer = GenreBias(5)
    genre = np.eye(3, dtype="float32")[[2, 0]]
    np.testing.assert_array_equal(layer(genre).numpy(), np.zeros((2, 5)))
    table = np.arange(15, dtype="float32").reshape(3, 5)
    layer.table.assign(table)
    np.testing.assert_array_equal(layer(genre).numpy(), table[[2, 0]])
    # Soft labels mix the rows.
    np.testing.assert_allclose(
        layer(np.array([[0.5, 0.5, 0.0]], "float32")).numpy(), [(table[0] + table[1]) / 2]
    )
    assert roundtrip(GenreBias(7)).units == 7


def test_modulated_conv_equals_a_demodulated_kernel_per_sample():
    keras.utils.set_random_seed(3)
    layer = ModulatedConv2D(4, style_dim=5, kernel_size=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 7, 2)).astype("float32")
    style = rng.normal(size=(3, 5)).astype("float32")
    layer.build(x.shape)
    layer.bias.assign(rng.normal(size=(4,)).astype("float32"))
    y = layer(x, style=style).numpy()
    scale = style @ layer.style_kernel.numpy() / np.sqrt(5) + layer.style_bias.numpy()
    for n in range(3):
        kernel = layer.kernel.numpy() * scale[n][None, None, :, None]
        kernel /= np.sqrt(np.sum(kernel**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        expected = tf.nn.conv2d(x[n:n + 1], kernel, 1, "SAME").numpy()[0] + layer.bias.numpy()
        np.testing.assert_allclose(y[n], expected, rtol=1e-4, atol=1e-4)
    # Demodulated: unit-variance inputs give unit-variance outputs whatever the style's size.
    big = rng.normal(size=(64, 16, 16, 2)).astype("float32")
    for size in (0.1, 10.0):
        out = layer(big, style=np.full((64, 5), size, "float32")).numpy() - layer.bias.numpy()
        assert 0.7 < out[:, 1:-1, 1:-1].std() < 1.3
