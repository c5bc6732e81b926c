"""Building-block layers of the GANSynth / progressive-GAN networks.

All tensors are channels-last spectrogram feature maps ``[batch, time, freq, channels]``.
Every layer is registered for Keras serialization under the ``gansynth_tf`` package and
round-trips through ``get_config`` / ``from_config`` (tests/layer_contract.py checks that,
saving and mixed precision for each). Resampling is Keras' own UpSampling2D and
AveragePooling2D, made by :func:`nearest_upsampling` and :func:`average_downsampling`.

Numerically sensitive statistics (pixel norm, minibatch stddev) are computed in float32
even under the ``mixed_float16`` policy: a 1e-8 epsilon underflows in float16.
"""
import math

import keras
import tensorflow as tf

_PACKAGE = "gansynth_tf"


def he_scale(fan_in, he_slope):
    """Run-time weight multiplier of equalized learning rate: sqrt(2 / ((1 + s^2) * fan_in)).

    ``he_slope`` is the negative slope ``s`` of the (leaky) ReLU that follows the layer
    in He et al.'s derivation: 0 gives gain sqrt(2), 1 (a linear layer) gives gain 1.
    """
    return math.sqrt(2.0 / ((1.0 + he_slope**2) * fan_in))


def _pair(value, name):
    """Normalise an int or a 2-sequence to a tuple of two positive ints."""
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return value


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PixelNorm(keras.layers.Layer):
    """Normalise each feature vector to unit RMS over the last (channel) axis.

    ``y = x / sqrt(mean_c(x^2) + epsilon)``; shape preserved (any rank, channels last).
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.built = True  # stateless; marked built so unused stages do not count as unbuilt

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + self.epsilon)
        return tf.cast(x, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _largest_divisor_at_most(n, limit):
    """Largest d in [1, limit] dividing n; n may be a scalar int32 tensor (dynamic batch)."""
    candidates = tf.range(limit, 0, -1)
    divides = tf.equal(tf.math.floormod(n, candidates), 0)
    return tf.gather(candidates, tf.argmax(tf.cast(divides, tf.int32)))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MinibatchStddev(keras.layers.Layer):
    """Append one channel holding the average across-group standard deviation (ProGAN).

    The batch is split into groups of ``group_size`` CONSECUTIVE samples (ProGAN uses
    strided groups; consecutive ones make the statistic identical whether a batch runs on
    one device or is split into per-replica slices that are multiples of the group size).
    When the batch is not divisible by ``group_size`` the largest divisor of the batch
    that is <= ``group_size`` is used. Per group: std over the group of every feature,
    averaged over (time, freq, channels) to one scalar, broadcast to a channel.

    Input ``[N, T, F, C]`` -> output ``[N, T, F, C + 1]``.
    """

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        if int(group_size) < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)
        self.epsilon = float(epsilon)
        self.built = True  # stateless

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        n = shape[0]
        static_n = x.shape[0]
        if static_n is not None:
            # Static batch: pick the group size in Python so shapes stay static.
            g = max(d for d in range(1, min(self.group_size, static_n) + 1) if static_n % d == 0)
        else:
            g = _largest_divisor_at_most(n, self.group_size)
        grouped = tf.reshape(x, tf.stack([n // g, g, shape[1], shape[2], shape[3]]))
        centred = grouped - tf.reduce_mean(grouped, axis=1, keepdims=True)
        std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=1) + self.epsilon)  # [N/g, T, F, C]
        stat = tf.reduce_mean(std, axis=[1, 2, 3])  # [N/g]
        stat = tf.repeat(stat, g)  # consecutive samples share their group's value -> [N]
        stat_map = tf.ones_like(x[..., :1]) * stat[:, None, None, None]
        return tf.concat([inputs, tf.cast(stat_map, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + 1
        return tuple(input_shape[:-1]) + (channels,)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}


# "reflect_time": 'same'-sized output with the time axis (1) padded by reflection and the
# frequency axis (2) by zeros. Time has no edges in the music a clip is cut from, so a
# generator's first and last frames should not see zeros their neighbours do not;
# frequency does have them (the lowest and highest bins).
CONV_PADDINGS = ("same", "valid", "reflect_time")


def _check_padding(padding):
    if str(padding).lower() not in CONV_PADDINGS:
        raise ValueError(f"padding must be one of {CONV_PADDINGS}, got {padding!r}")
    return str(padding).upper()


def pad_for_conv(x, kernel_size, padding):
    """``x`` ``[N, T, F, C]`` and a stride-1 conv's padding (upper case) -> the input and
    padding to give ``tf.nn.conv2d``: 'REFLECT_TIME' pads here, as 'same' would (``(k-1)//2``
    before, ``k//2`` after), and convolves 'VALID'; the others pass through."""
    if padding != "REFLECT_TIME":
        return x, padding
    kh, kw = kernel_size
    x = tf.pad(x, [[0, 0], [(kh - 1) // 2, kh // 2], [0, 0], [0, 0]], mode="REFLECT")
    x = tf.pad(x, [[0, 0], [0, 0], [(kw - 1) // 2, kw // 2], [0, 0]])
    return x, "VALID"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EqualizedConv2D(keras.layers.Layer):
    """2-D convolution with equalized learning rate (stride 1).

    The kernel is stored as N(0, 1) and multiplied at run time by
    ``he_scale(kh * kw * c_in, he_slope)``, so Adam's per-parameter step size acts the
    same on every layer. Bias starts at zero and is not scaled.
    ``[N, T, F, C_in]`` -> ``[N, T', F', filters]`` (T' = T, F' = F with 'same' or
    'reflect_time' padding; see :data:`CONV_PADDINGS`).
    """

    def __init__(
        self, filters, kernel_size=3, he_slope=0.0, padding="same", use_bias=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.he_slope = float(he_slope)
        self.padding = _check_padding(padding)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        c_in = int(input_shape[-1])
        kh, kw = self.kernel_size
        self.scale = he_scale(kh * kw * c_in, self.he_slope)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(kh, kw, c_in, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )

    def call(self, inputs):
        # KerasVariable arithmetic autocasts under mixed precision.
        kernel = self.kernel * self.scale
        x, padding = pad_for_conv(inputs, self.kernel_size, self.padding)
        y = tf.nn.conv2d(x, tf.cast(kernel, inputs.dtype), strides=1, padding=padding)
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        n, t, f, _ = input_shape
        if self.padding == "VALID":
            t = None if t is None else t - self.kernel_size[0] + 1
            f = None if f is None else f - self.kernel_size[1] + 1
        return (n, t, f, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "he_slope": self.he_slope,
            "padding": self.padding.lower(),
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EqualizedDense(keras.layers.Layer):
    """Fully connected layer with equalized learning rate: ``[N, D_in]`` -> ``[N, units]``.

    Weights N(0, 1) times ``he_scale(D_in, he_slope)`` at run time; default slope 1 (gain 1),
    as for a linear output layer.
    """

    def __init__(self, units, he_slope=1.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.he_slope = float(he_slope)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        d_in = int(input_shape[-1])
        self.scale = he_scale(d_in, self.he_slope)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(d_in, self.units),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            if self.use_bias
            else None
        )

    def call(self, inputs):
        kernel = self.kernel * self.scale
        y = tf.matmul(inputs, tf.cast(kernel, inputs.dtype))
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "he_slope": self.he_slope,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GenreBias(keras.layers.Layer):
    """Per-genre, per-channel bias: ``genre [N, G]`` (one-hot or soft) -> ``[N, units]``.

    A ``[G, units]`` table that starts at zero, so a network with it starts as one without
    it; the generator adds it to conv outputs so that every block, not only the input, is
    told the genre.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(int(input_shape[-1]), self.units), initializer="zeros"
        )

    def call(self, genre):
        return tf.matmul(genre, tf.cast(self.table, genre.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ModulatedConv2D(keras.layers.Layer):
    """StyleGAN2's modulated and demodulated convolution.

    Call ``layer(x, style=s)``: ``x`` ``[N, T, F, C_in]``, ``s`` ``[N, style_dim]`` ->
    ``[N, T, F, filters]`` (stride 1, 'same' or 'reflect_time' padding). An affine map of
    the style (weights N(0, 1) scaled at run time to gain 1, as in the equalized layers; bias
    starting at 1 so that a new layer is a plain conv)
    gives each sample a scale per input channel; the kernel is scaled by it, then each
    output channel of each sample by ``rsqrt(sum over taps and inputs of w^2 + eps)``
    (demodulation), which keeps unit-variance features without a normalisation layer
    and makes the kernel's own scale irrelevant (so it has no equalized-lr multiplier).
    Computed as ``conv(x * scale) * demod``: the per-sample kernel's result without a
    grouped convolution. The demodulation statistics are float32 under any policy.
    """

    def __init__(self, filters, style_dim, kernel_size=3, epsilon=1e-8, padding="same",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.style_dim = int(style_dim)
        if self.filters < 1 or self.style_dim < 1:
            raise ValueError(f"filters and style_dim must be positive, got {filters}, "
                             f"{style_dim}")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.epsilon = float(epsilon)
        self.padding = _check_padding(padding)
        if self.padding == "VALID":
            raise ValueError("ModulatedConv2D keeps its input's size: padding must be 'same' "
                             "or 'reflect_time'")

    def build(self, input_shape):
        c_in = int(input_shape[-1])
        kh, kw = self.kernel_size
        self.style_scale = he_scale(self.style_dim, 1.0)
        normal = keras.initializers.RandomNormal(0.0, 1.0)
        self.style_kernel = self.add_weight(name="style_kernel",
                                            shape=(self.style_dim, c_in), initializer=normal)
        self.style_bias = self.add_weight(name="style_bias", shape=(c_in,), initializer="ones")
        self.kernel = self.add_weight(name="kernel", shape=(kh, kw, c_in, self.filters),
                                      initializer=normal)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs, style):
        style = tf.cast(style, tf.float32)
        channel_scale = (tf.matmul(style, tf.cast(self.style_kernel, tf.float32))
                         * self.style_scale + tf.cast(self.style_bias, tf.float32))  # [N, C_in]
        kernel = tf.cast(self.kernel, tf.float32)
        energy = tf.reduce_sum(tf.square(kernel), axis=[0, 1])  # [C_in, filters]
        demod = tf.math.rsqrt(tf.matmul(tf.square(channel_scale), energy) + self.epsilon)
        dtype = inputs.dtype
        x = inputs * tf.cast(channel_scale[:, None, None, :], dtype)
        x, padding = pad_for_conv(x, self.kernel_size, self.padding)
        y = tf.nn.conv2d(x, tf.cast(kernel, dtype), strides=1, padding=padding)
        return y * tf.cast(demod[:, None, None, :], dtype) + tf.cast(self.bias, dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "style_dim": self.style_dim,
                "kernel_size": self.kernel_size, "epsilon": self.epsilon,
                "padding": self.padding.lower()}


def nearest_upsampling(factor, **kwargs):
    """Nearest-neighbour upsampling by integer factors (time, freq), a Keras layer.

    ``[N, T, F, C]`` -> ``[N, T*ft, F*ff, C]``. channels_last is fixed, whatever the global
    keras.config.image_data_format() says. kwargs: name, dtype.
    """
    return upsampling(factor, "nearest", **kwargs)


def upsampling(factor, interpolation, **kwargs):
    """Upsampling by integer factors (time, freq) with ``interpolation`` ('nearest' or
    'bilinear', Keras' UpSampling2D: half-pixel centres, edges clamped), a Keras layer.

    ``[N, T, F, C]`` -> ``[N, T*ft, F*ff, C]``; channels_last. kwargs: name, dtype.
    """
    layer = keras.layers.UpSampling2D(size=_pair(factor, "factor"),
                                      interpolation=interpolation,
                                      data_format="channels_last", **kwargs)
    return _built(layer)


def average_downsampling(factor, **kwargs):
    """Average pooling by integer factors (time, freq), a Keras layer.

    ``[N, T, F, C]`` -> ``[N, T//ft, F//ff, C]`` (a remainder is dropped); channels_last.
    kwargs: name, dtype.
    """
    factor = _pair(factor, "factor")
    layer = keras.layers.AveragePooling2D(pool_size=factor, strides=factor, padding="valid",
                                          data_format="channels_last", **kwargs)
    return _built(layer)


def _built(layer):
    """Marks a weightless layer built. Keras' fit builds the whole model symbolically (and
    fails on the stage-dependent calls) when any layer is unbuilt, and the resampling layers
    of the stages not running are never called."""
    layer.built = True
    return layer


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FadeIn(keras.layers.Layer):
    """Blend two same-shaped paths: ``(1 - alpha) * low + alpha * high``.

    ``alpha`` lives in a non-trainable scalar variable, so ``set_alpha`` changes the blend
    inside an already traced ``tf.function`` without retracing. Inputs ``[low, high]``.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_alpha = float(alpha)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_alpha),
            trainable=False,
        )
        self.built = True  # its only state is created above

    def set_alpha(self, alpha):
        """Assign the blend weight (a Python float or scalar tensor, expected in [0, 1])."""
        self.alpha.assign(tf.cast(alpha, self.alpha.dtype))

    def call(self, inputs):
        low, high = inputs
        alpha = tf.cast(self.alpha, high.dtype)
        return (1.0 - alpha) * low + alpha * high

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        # The current value travels with the weights; the config only carries the start value.
        return {**super().get_config(), "alpha": self.initial_alpha}
