"""Progressive Generator and Discriminator built from a resolution schedule.

Spectrograms are ``[batch, time, freq, spec_channels]`` with channel 0 the log-magnitude
and channel 1 the instantaneous frequency, both scaled to [-1, 1]. The schedule is a
:class:`~gansynth_tf.network_config.NetworkConfig` (its own module, with the presets; both
still import from here): a list of (time, freq) resolutions, one per stage, each an integer
multiple of the previous one, with per-stage channel counts.

Every block of every stage is built at construction time, so the set of weights (and
therefore checkpoints, EMA copies and optimizer slots) does not depend on the stage.
``set_stage(stage, alpha)`` selects how many blocks run: at stage ``s`` the generator
outputs ``resolutions[s]`` and the discriminator expects inputs of that size. Changing the
stage changes shapes, so each stage gets its own ``tf.function`` trace; ``alpha`` lives in
a :class:`~gansynth_tf.layers.FadeIn` variable and can change without retracing.
"""
import keras
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
    nearest_upsampling,
    upsampling,
)

# The schedule and its presets live in network_config; importable from here as before.
from gansynth_tf.network_config import (  # noqa: F401
    CONDITIONING_MODES,
    SKIP_UPSAMPLING_MODES,
    TIME_PADDING_MODES,
    NetworkConfig,
    gansynth_channels,
    hires_config,
    quickstart_config,
)

_PACKAGE = "gansynth_tf"
LEAKY_SLOPE = 0.2
MODULATED_ACTIVATION_GAIN = 2.0**0.5


# NetworkConfig.gen_time_padding -> the generator's 3x3 conv padding (layers.CONV_PADDINGS).
_CONV_PADDING = {"zeros": "same", "reflect": "reflect_time"}


@tf.custom_gradient
def lrelu(x):
    """Leaky ReLU (slope ``LEAKY_SLOPE``) with a gradient that is cheap to differentiate again.

    The gradient penalties differentiate every activation twice. ``tf.maximum(x, 0.2 x)``
    back-propagates through two selects and a comparison per element, which made it ~45%
    of a quickstart train step on CPU; a bare ``tf.nn.leaky_relu`` is as fast but grappler
    then fuses conv + bias + LeakyRelu and fails on the double backprop (logged errors).
    Here the forward pass is the LeakyRelu kernel and the gradient one select on the
    output's sign; measured 1.8x faster per train step than ``maximum``, same losses.
    """
    y = tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)

    def grad(dy):
        # The mask comes from y (same sign as x): grappler may fuse conv + bias + LeakyRelu,
        # and a gradient that read the pre-activation x would point into the fused node.
        return tf.where(y >= 0, dy, tf.constant(LEAKY_SLOPE, dy.dtype) * dy)

    return y, grad


_lrelu = lrelu


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GeneratorBlock(keras.layers.Layer):
    """Nearest upsample (optional) then two [3x3 conv -> leaky ReLU 0.2 -> pixel norm].

    ``[N, T, F, C_in]`` -> ``[N, T*ft, F*ff, filters]``. With ``style_dim`` the convs are
    :class:`~gansynth_tf.layers.ModulatedConv2D` driven by ``style`` ``[N, style_dim]``
    and there is no pixel norm (demodulation keeps the scale).
    """

    def __init__(self, filters, upsample=(2, 2), style_dim=None, time_padding="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.style_dim = None if style_dim is None else int(style_dim)
        if time_padding not in TIME_PADDING_MODES:
            raise ValueError(f"time_padding must be one of {TIME_PADDING_MODES}, "
                             f"got {time_padding!r}")
        self.time_padding = time_padding
        padding = _CONV_PADDING[time_padding]
        self.upsample_factor = None if upsample is None else tuple(upsample)
        # Sub-layers take the block's policy: one given as dtype= (or read back from a
        # config) would otherwise apply to the block alone, its convs computing in float32.
        policy = self.dtype_policy
        self.upsample = (None if upsample is None else
                         nearest_upsampling(upsample, name="upsample", dtype=policy))
        if self.style_dim is None:
            self.conv0 = EqualizedConv2D(self.filters, 3, he_slope=0.0, padding=padding,
                                         name="conv0", dtype=policy)
            self.conv1 = EqualizedConv2D(self.filters, 3, he_slope=0.0, padding=padding,
                                         name="conv1", dtype=policy)
            self.norm = PixelNorm(name="pixel_norm", dtype=policy)
        else:
            self.conv0 = ModulatedConv2D(self.filters, self.style_dim, padding=padding,
                                         name="conv0", dtype=policy)
            self.conv1 = ModulatedConv2D(self.filters, self.style_dim, padding=padding,
                                         name="conv1", dtype=policy)
            self.norm = None

    def build(self, input_shape):
        self.conv0.build(input_shape)
        self.conv1.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, x, genre_bias=None, style=None):
        """``genre_bias``: optional ``[N, 2 * filters]`` added to the two conv outputs;
        ``style`` ``[N, style_dim]``: required with ``style_dim``, refused without."""
        if (style is None) != (self.style_dim is None):
            raise ValueError(f"{self.name}: a style is needed exactly when style_dim is set "
                             f"(style_dim={self.style_dim})")
        if self.upsample is not None:
            x = self.upsample(x)
        b0 = b1 = 0.0
        if genre_bias is not None:
            genre_bias = tf.cast(genre_bias[:, None, None, :], x.dtype)
            b0, b1 = genre_bias[..., : self.filters], genre_bias[..., self.filters :]
        if self.norm is None:
            # Demodulation gives unit-variance conv outputs; the gain restores what the leaky
            # ReLU takes (StyleGAN2's sqrt 2), or ten blocks would shrink the features ~25x.
            gain = tf.constant(MODULATED_ACTIVATION_GAIN, x.dtype)
            x = _lrelu(self.conv0(x, style=style) + b0) * gain
            return _lrelu(self.conv1(x, style=style) + b1) * gain
        x = self.norm(_lrelu(self.conv0(x) + b0))
        return self.norm(_lrelu(self.conv1(x) + b1))

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters,
                  "upsample": self.upsample_factor}
        if self.style_dim is not None:  # configs saved before it existed stay as they were
            config["style_dim"] = self.style_dim
        if self.time_padding != "zeros":  # likewise
            config["time_padding"] = self.time_padding
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiscriminatorBlock(keras.layers.Layer):
    """3x3 conv (C_in) -> lrelu -> 3x3 conv (filters) -> lrelu -> average-pool down.

    ``[N, T, F, C_in]`` -> ``[N, T/ft, F/ff, filters]``.
    """

    def __init__(self, in_filters, filters, downsample=(2, 2), **kwargs):
        super().__init__(**kwargs)
        self.in_filters = int(in_filters)
        self.filters = int(filters)
        self.downsample_factor = tuple(downsample)
        policy = self.dtype_policy  # for the sub-layers, as in GeneratorBlock
        self.conv0 = EqualizedConv2D(self.in_filters, 3, he_slope=0.0, name="conv0",
                                     dtype=policy)
        self.conv1 = EqualizedConv2D(self.filters, 3, he_slope=0.0, name="conv1", dtype=policy)
        self.downsample = average_downsampling(downsample, name="downsample", dtype=policy)

    def build(self, input_shape):
        self.conv0.build(input_shape)
        self.conv1.build(tuple(input_shape[:-1]) + (self.in_filters,))

    def call(self, x):
        x = _lrelu(self.conv0(x))
        x = _lrelu(self.conv1(x))
        return self.downsample(x)

    def get_config(self):
        return {
            **super().get_config(),
            "in_filters": self.in_filters,
            "filters": self.filters,
            "downsample": self.downsample_factor,
        }


class _ProgressiveNetwork(keras.Model):
    """Shared stage / alpha handling and (de)serialization of both networks."""

    def __init__(self, config, stage=None, **kwargs):
        super().__init__(**kwargs)
        self.config = (
            config if isinstance(config, NetworkConfig) else NetworkConfig.from_dict(config)
        )
        self.stage = self.config.num_stages - 1 if stage is None else self._check_stage(stage)
        self.fade = FadeIn(alpha=1.0, name="fade_in", dtype=self.dtype_policy)

    def _check_stage(self, stage):
        stage = int(stage)
        if not 0 <= stage < self.config.num_stages:
            raise ValueError(f"stage must be in [0, {self.config.num_stages}), got {stage}")
        return stage

    @property
    def alpha(self):
        """The fade-in variable (scalar float32)."""
        return self.fade.alpha

    def set_stage(self, stage, alpha=None):
        """Select the active stage (changes shapes: retraces) and optionally set alpha."""
        self.stage = self._check_stage(stage)
        if alpha is not None:
            self.set_alpha(alpha)

    def set_alpha(self, alpha):
        """Set the fade-in weight of the newest block; no retrace."""
        self.fade.set_alpha(alpha)

    def get_config(self):
        # With the dtype policy: a network built under mixed_float16 reloads as one. A config
        # saved before it was kept has no "dtype" and takes the global policy, as it did then.
        return {"name": self.name, "config": self.config.to_dict(), "stage": self.stage,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    # Keras 3 keeps layers held in Python lists out of tf.train.Checkpoint's object graph, so
    # without this a checkpoint would hold only the layers stored as plain attributes and a
    # resumed or loaded run would silently keep random blocks.
    _LAYER_LISTS = (
        "blocks",
        "to_spec",
        "from_spec",
        "fade_upsample",
        "fade_downsample",
        "genre_biases",
        "mapping",
    )

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        for name in self._LAYER_LISTS:
            for i, layer in enumerate(getattr(self, name, ())):
                children[f"{name}_{i}"] = layer
        return children

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Generator(_ProgressiveNetwork):
    """Genre-conditioned progressive generator.

    Call with ``[z, genre_one_hot]``: ``z`` ``[N, latent_dim]``, ``genre_one_hot``
    ``[N, num_genres]``; returns float32 spectrograms ``[N, T_s, F_s, spec_channels]`` in
    [-1, 1] for the current stage ``s``.

    Architecture: ``pixel_norm(concat(z, genre))`` -> equalized dense to
    ``res[0] * gen_channels[0]`` -> reshape to ``[N, T_0, F_0, C_0]`` -> lrelu, pixel norm
    -> 3x3 conv, lrelu, pixel norm. (GANSynth pads the 1x1 latent map spatially and applies
    a VALID conv of the start size; that is the same linear map as this dense layer, each
    output position getting its own weights.) Then per later stage a
    :class:`GeneratorBlock`. Every stage has a 1x1 to-spectrogram conv (gain 1) with tanh;
    during a transition the output is ``FadeIn([upsample(to_spec[s-1](h_{s-1})),
    to_spec[s](h_s)])``. With ``config.skip_outputs`` it is instead
    ``tanh(S_s)`` with ``S_0 = to_spec[0](h_0)`` and ``S_s = upsample(S_{s-1}) + a *
    to_spec[s](h_s)`` (``a`` = alpha at the current stage, 1 before it; ``upsample`` is
    nearest or bilinear, ``config.skip_upsampling``). With
    ``config.genre_bias`` every conv output also gets a learned per-genre bias before its
    activation. With ``config.modulation`` the normalised ``concat(z, genre)`` also goes
    through a mapping of two dense layers + lrelu (width ``latent_dim``) to a style ``w``
    that modulates both convs of every block (StyleGAN2; no pixel norm in the blocks).
    """

    def __init__(self, config, stage=None, **kwargs):
        kwargs.setdefault("name", "generator")
        super().__init__(config, stage, **kwargs)
        cfg = self.config
        t0, f0 = cfg.resolutions[0]
        # Every sub-layer takes the network's policy (a dtype= given here, or read back from
        # a config), not only the global one, as in GeneratorBlock.
        policy = self.dtype_policy
        self.input_norm = PixelNorm(name="input_norm", dtype=policy)
        # he_slope 0: the dense plays the role of a conv followed by leaky ReLU.
        self.initial_dense = EqualizedDense(
            t0 * f0 * cfg.gen_channels[0], he_slope=0.0, name="initial_dense", dtype=policy
        )
        self.initial_norm = PixelNorm(name="initial_norm", dtype=policy)
        self.initial_conv = EqualizedConv2D(
            cfg.gen_channels[0], 3, he_slope=0.0, padding=_CONV_PADDING[cfg.gen_time_padding],
            name="initial_conv", dtype=policy
        )
        style_dim = cfg.latent_dim if cfg.modulation else None
        self.mapping = [
            EqualizedDense(cfg.latent_dim, he_slope=0.0, name=f"mapping_{i}", dtype=policy)
            for i in range(2 if cfg.modulation else 0)
        ]
        self.blocks = [
            GeneratorBlock(cfg.gen_channels[s], upsample=cfg.stage_factor(s), name=f"block_{s}",
                           style_dim=style_dim, time_padding=cfg.gen_time_padding, dtype=policy)
            for s in range(1, cfg.num_stages)
        ]
        self.to_spec = [
            EqualizedConv2D(cfg.spec_channels, 1, he_slope=1.0, name=f"to_spec_{s}",
                            dtype=policy)
            for s in range(cfg.num_stages)
        ]
        # genre_biases[0]: the initial conv; [s]: block s's two convs.
        self.genre_biases = (
            [GenreBias(cfg.gen_channels[0], name="genre_bias_0", dtype=policy)]
            + [
                GenreBias(2 * cfg.gen_channels[s], name=f"genre_bias_{s}", dtype=policy)
                for s in range(1, cfg.num_stages)
            ]
            if cfg.genre_bias
            else []
        )
        # fade_upsample[s - 1] brings stage s-1's output (the skip path's running sum) up
        # to stage s. Weightless, so the interpolation does not change the checkpoint.
        self.fade_upsample = [
            upsampling(cfg.stage_factor(s), cfg.skip_upsampling, name=f"fade_upsample_{s}",
                       dtype=policy)
            for s in range(1, cfg.num_stages)
        ]
        self.build(None)

    def build(self, input_shape=None):
        if self.built:
            return
        cfg = self.config
        t0, f0 = cfg.resolutions[0]
        self.initial_dense.build((None, cfg.latent_dim + cfg.num_genres))
        for i, dense in enumerate(self.mapping):
            dense.build((None, cfg.latent_dim + cfg.num_genres if i == 0 else cfg.latent_dim))
        self.initial_conv.build((None, t0, f0, cfg.gen_channels[0]))
        for bias in self.genre_biases:
            bias.build((None, cfg.num_genres))
        for s in range(cfg.num_stages):
            t, f = cfg.resolutions[s]
            if s > 0:
                self.blocks[s - 1].build(
                    (None,) + cfg.resolutions[s - 1] + (cfg.gen_channels[s - 1],)
                )
            self.to_spec[s].build((None, t, f, cfg.gen_channels[s]))

    def call(self, inputs):
        z, genre = inputs
        cfg = self.config
        t0, f0 = cfg.resolutions[0]
        x = self.input_norm(tf.concat([z, tf.cast(genre, z.dtype)], axis=-1))
        style = None
        if self.mapping:
            style = x
            for dense in self.mapping:
                style = _lrelu(dense(style))
        x = tf.reshape(self.initial_dense(x), [-1, t0, f0, cfg.gen_channels[0]])
        x = self.initial_norm(_lrelu(x))
        x = self.initial_conv(x)
        if self.genre_biases:
            x = x + tf.cast(
                self.genre_biases[0](tf.cast(genre, x.dtype))[:, None, None, :], x.dtype
            )
        x = self.initial_norm(_lrelu(x))
        if cfg.skip_outputs:
            return tf.cast(tf.tanh(self._skip_sum(x, genre, style)), tf.float32)
        previous = None
        for s in range(1, self.stage + 1):
            previous = x
            x = self.blocks[s - 1](x, self._block_bias(s, genre, x.dtype), style=style)
        out = tf.tanh(self.to_spec[self.stage](x))
        if self.stage > 0:
            low = self.fade_upsample[self.stage - 1](
                tf.tanh(self.to_spec[self.stage - 1](previous))
            )
            out = self.fade([low, out])
        return tf.cast(out, tf.float32)

    def _block_bias(self, s, genre, dtype):
        return self.genre_biases[s](tf.cast(genre, dtype)) if self.genre_biases else None

    def _skip_sum(self, x, genre, style):
        """Pre-tanh skip output: stage 0's to-spectrogram, then per stage s the upsampled
        sum plus stage s's own (the newest one weighted by alpha while it fades in)."""
        total = self.to_spec[0](x)
        for s in range(1, self.stage + 1):
            x = self.blocks[s - 1](x, self._block_bias(s, genre, x.dtype), style=style)
            low = self.fade_upsample[s - 1](total)
            total = low + self.to_spec[s](x)
            if s == self.stage:
                # (1 - alpha) * low + alpha * (low + new) = low + alpha * new.
                total = self.fade([low, total])
        return total


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Discriminator(_ProgressiveNetwork):
    """Progressive critic with an auxiliary genre classifier (and optional projection).

    Call with ``x`` ``[N, T_s, F_s, spec_channels]`` or ``[x, genre_one_hot]`` (the genre is
    required when ``conditioning == 'projection'``). Returns float32
    ``(score [N, 1], genre_logits [N, num_genres])``.

    Architecture at stage ``s``: from-spectrogram 1x1 conv + lrelu to ``disc_channels[s]``,
    :class:`DiscriminatorBlock` for stages ``s .. 1`` (during a transition the block-``s``
    output is faded with ``from_spec[s-1](avg_pool(x))``), then the final block at
    ``res[0]``: minibatch stddev, 3x3 conv, flatten, dense ``disc_channels[0]`` + lrelu,
    and two linear heads (score and genre logits). Projection adds
    ``sum(embed(genre) * features)`` to the score.
    """

    def __init__(self, config, stage=None, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(config, stage, **kwargs)
        cfg = self.config
        ch = cfg.disc_channels
        policy = self.dtype_policy  # for every sub-layer, as in the Generator
        self.from_spec = [
            EqualizedConv2D(ch[s], 1, he_slope=0.0, name=f"from_spec_{s}", dtype=policy)
            for s in range(cfg.num_stages)
        ]
        self.blocks = [
            DiscriminatorBlock(ch[s], ch[s - 1], downsample=cfg.stage_factor(s), name=f"block_{s}",
                               dtype=policy)
            for s in range(1, cfg.num_stages)
        ]
        # fade_downsample[s - 1] brings a stage-s input down to stage s-1.
        self.fade_downsample = [
            average_downsampling(cfg.stage_factor(s), name=f"fade_downsample_{s}", dtype=policy)
            for s in range(1, cfg.num_stages)
        ]
        self.mbstd = MinibatchStddev(cfg.mbstd_group_size, name="minibatch_stddev", dtype=policy)
        self.final_conv = EqualizedConv2D(ch[0], 3, he_slope=0.0, name="final_conv", dtype=policy)
        self.final_dense = EqualizedDense(ch[0], he_slope=0.0, name="final_dense", dtype=policy)
        self.score_head = EqualizedDense(1, he_slope=1.0, name="score", dtype=policy)
        self.class_head = EqualizedDense(cfg.num_genres, he_slope=1.0, name="genre_logits",
                                         dtype=policy)
        self.projection = (
            EqualizedDense(ch[0], he_slope=1.0, use_bias=False, name="projection_embedding",
                           dtype=policy)
            if cfg.conditioning == "projection"
            else None
        )
        self.build(None)

    def build(self, input_shape=None):
        if self.built:
            return
        cfg = self.config
        ch = cfg.disc_channels
        for s in range(cfg.num_stages):
            t, f = cfg.resolutions[s]
            self.from_spec[s].build((None, t, f, cfg.spec_channels))
            if s > 0:
                self.blocks[s - 1].build((None, t, f, ch[s]))
        t0, f0 = cfg.resolutions[0]
        self.final_conv.build((None, t0, f0, ch[0] + 1))
        self.final_dense.build((None, t0 * f0 * ch[0]))
        self.score_head.build((None, ch[0]))
        self.class_head.build((None, ch[0]))
        if self.projection is not None:
            self.projection.build((None, cfg.num_genres))

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            x, genre = inputs
        else:
            x, genre = inputs, None
        if self.projection is not None and genre is None:
            raise ValueError(
                "a projection discriminator must be called with [specgram, genre_one_hot]"
            )
        cfg = self.config
        s = self.stage
        h = _lrelu(self.from_spec[s](x))
        if s > 0:
            h = self.blocks[s - 1](h)
            low = _lrelu(self.from_spec[s - 1](self.fade_downsample[s - 1](x)))
            h = self.fade([low, h])
            for b in range(s - 1, 0, -1):
                h = self.blocks[b - 1](h)
        h = self.mbstd(h)
        h = _lrelu(self.final_conv(h))
        t0, f0 = cfg.resolutions[0]
        features = _lrelu(self.final_dense(tf.reshape(h, [-1, t0 * f0 * cfg.disc_channels[0]])))
        score = self.score_head(features)
        if self.projection is not None:
            embedded = self.projection(tf.cast(genre, features.dtype))
            score = score + tf.reduce_sum(embedded * features, axis=-1, keepdims=True)
        return tf.cast(score, tf.float32), tf.cast(self.class_head(features), tf.float32)
