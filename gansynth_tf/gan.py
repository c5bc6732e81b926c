"""The GANSynth training model: WGAN-GP + AC-GAN + mode seeking, with an EMA generator.

Losses (per sample, averaged over the GLOBAL batch so that gradients summed across
replicas by the optimizer equal the single-device gradients). ``loss='wgan_gp'``
(GANSynth's, the default):

  D: D(fake) - D(real) + gp_weight * (||grad D(x_hat)|| - 1)^2
     + drift_weight * D(real)^2 + ac_weight * CE(genre, D_cls(real))
  G: -D(fake) + ac_weight * CE(genre_fake, D_cls(fake))
     + mode_seeking_weight * 1 / (ms + 1e-5)           (MSGAN, Mao et al. 2019)

``loss='nonsaturating'`` (StyleGAN's logistic loss with the R1 penalty, Mescheder et al.
2018), same genre and mode-seeking terms:

  D: softplus(D(fake)) + softplus(-D(real)) + r1_gamma / 2 * ||grad D(real)||^2 + ac...
  G: softplus(-D(fake)) + ac... + ms...

With ``consistency_weight > 0`` (and a ``consistency_fn``, e.g.
``Representation.resynthesized_log_magnitude``) the generator at the final stage also
pays ``consistency_weight * mean|resynth(G)_mag - G_mag|``: the log-magnitude of the audio
its own IF phase gives should be the log-magnitude it drew. A magnitude/IF pair that does
not fit smears energy in overlap-add (silences fill with noise, onsets blur), which the
critic, seeing only the spectrogram, does not penalise directly.

With ``dynamics_weight > 0`` the generator also pays for the gap between the temporal
statistics of its clips and those of the real clips of the same genre in the batch:
``dynamics_weight * mean_genres,stats (mean_fake - mean_real)^2`` of :func:`dynamics`
(contrast and flux over time of the log-magnitude in a few frequency bands).
Under-trained generators average over where in a clip events fall; their kicks, gaps and
note changes come out smeared, which a critic tolerates long before a listener (or a genre
classifier) does.

Either penalty can be computed on a fraction of each batch (``penalty_fraction``),
weighted up so that its expectation is unchanged: the double back-propagation is the
most expensive part of a step (cf. StyleGAN2's lazy regularisation).

Fakes use the genres of the real batch. With mode seeking on, fakes come in adjacent
pairs (2k, 2k+1) that share a genre and differ in z; the pairing is per replica slice,
so it is the same whether a batch runs on one device or is split across replicas.

Randomness (latents, interpolation weights) is stateless: drawn for the whole global
batch from ``(seed, step)`` and sliced per replica, so runs are reproducible and a
multi-replica step equals the single-device step.

Usage::

    cfg = quickstart_config(num_genres)               # or hires_config(num_genres)
    with strategy.scope():                            # optional (MirroredStrategy, ...)
        gan = build_gan(cfg, seed=0)
        gan.compile(mode_seeking_weight=1.0)          # GANSynth Adam by default
    schedule = quickstart_schedule(cfg.resolutions)
    gan.fit(ds_of_(full_res_specgrams, genre_one_hot), callbacks=[ProgressiveCallback(schedule)])
    specs = gan.generate(genre_ids, seed=0)           # EMA generator, current stage
"""
import math

import keras
import tensorflow as tf

from gansynth_tf.networks import Discriminator, Generator
from gansynth_tf.progressive import blend_real

MS_EPSILON = 1e-5
LOSSES = ("wgan_gp", "nonsaturating")


# ----------------------------------------------------------------------------- loss maths


def gradient_penalty(critic_fn, real, fake, eps, loss_scale=1.0):
    """Per-sample two-sided WGAN-GP penalty ``(||grad_x critic(x_hat)||_2 - 1)^2``.

    Args:
      critic_fn: maps ``[N, ...]`` inputs to scores ``[N]`` or ``[N, 1]`` (float32).
      real, fake: ``[N, ...]`` float tensors.
      eps: ``[N]`` interpolation weights in [0, 1]; ``x_hat = eps * real + (1 - eps) * fake``.
      loss_scale: multiplier applied to the inner scores before differentiating and removed
        afterwards (keeps float16 input gradients from underflowing).

    Returns:
      ``[N]`` float32 penalties.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    eps = tf.reshape(tf.cast(eps, tf.float32), [-1] + [1] * (len(real.shape) - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = tf.cast(critic_fn(x_hat), tf.float32)
        total = tf.reduce_sum(scores) * loss_scale
    grads = tape.gradient(total, x_hat) / loss_scale
    # The tiny constant keeps the sqrt differentiable when a gradient is exactly zero.
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=list(range(1, len(real.shape)))) + 1e-12)
    return tf.square(norms - 1.0)


def r1_penalty(critic_fn, real, loss_scale=1.0):
    """Per-sample R1 penalty ``||grad_x critic(real)||_2^2`` (Mescheder et al. 2018).

    Args:
      critic_fn: maps ``[N, ...]`` inputs to scores ``[N]`` or ``[N, 1]``.
      real: ``[N, ...]`` real samples.
      loss_scale: as in :func:`gradient_penalty`.

    Returns:
      ``[N]`` float32 squared gradient norms.
    """
    real = tf.cast(real, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(tf.cast(critic_fn(real), tf.float32)) * loss_scale
    grads = tape.gradient(total, real) / loss_scale
    return tf.reduce_sum(tf.square(grads), axis=list(range(1, len(real.shape))))


def penalty_count(batch, fraction):
    """Samples of a ``batch`` the penalty runs on: ``ceil(batch * fraction)``, at least 1.

    ``batch`` is a Python int (static shape: the result is an int, so slices stay static)
    or an int32 scalar tensor (the result is one too).
    """
    if isinstance(batch, int):
        return max(1, min(batch, int(math.ceil(batch * float(fraction) - 1e-9))))
    wanted = tf.cast(tf.math.ceil(tf.cast(batch, tf.float32) * float(fraction) - 1e-6), tf.int32)
    return tf.clip_by_value(wanted, 1, batch)


def mode_seeking_ratio(fake1, fake2, z1, z2):
    """Per-pair MSGAN diversity ``mean|G(z1,c) - G(z2,c)| / mean|z1 - z2|``.

    Args:
      fake1, fake2: ``[P, ...]`` outputs for the same genres and different latents.
      z1, z2: ``[P, latent_dim]`` the latents.

    Returns:
      ``[P]`` float32 ratios. (MSGAN takes batch means; a ratio per pair keeps the term a
      per-sample average - exact under data parallelism - and penalises each collapsed
      pair rather than only the batch as a whole.)
    """

    def per_pair_mean_abs(a, b):
        d = tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))
        return tf.reduce_mean(tf.reshape(d, [tf.shape(d)[0], -1]), axis=1)

    return per_pair_mean_abs(fake1, fake2) / per_pair_mean_abs(z1, z2)


def dynamics(features, bands=4):
    """Temporal contrast and onset strength per clip: ``[N, T, F, C]`` -> ``[N, 2 * bands]``.

    Channel 0 (log-magnitude) is averaged within ``bands`` equal frequency bands (``F`` must
    divide), giving each band's envelope over the ``T`` frames. Columns ``[:bands]`` are
    each envelope's standard deviation over time (slow contrast: kicks against silences,
    attacks against decays); columns ``[bands:]`` its mean absolute frame-to-frame change
    (band-wise spectral flux: onsets that strike a whole band at once). Incoherent
    pixel noise averages out within a band and scores low on both.
    """
    x = tf.cast(features[..., 0], tf.float32)
    t, f = x.shape[1], x.shape[2]
    if f % bands:
        raise ValueError(f"dynamics: {f} frequency bins do not split into {bands} bands")
    envelope = tf.reduce_mean(tf.reshape(x, [-1, t, bands, f // bands]), axis=-1)
    centred = envelope - tf.reduce_mean(envelope, axis=1, keepdims=True)
    # sqrt(var + tiny): a steady envelope (var 0) must get a zero gradient, not NaN.
    contrast = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=1) + 1e-12)
    flux = tf.reduce_mean(tf.abs(envelope[:, 1:] - envelope[:, :-1]), axis=1)
    return tf.concat([contrast, flux], axis=-1)


def dynamics_gap(real, genre, fake, fake_genre, bands=4):
    """Squared gap between fake and real per-genre mean :func:`dynamics`, a scalar.

    Averaged over the bands and over the genres present among both the reals and the
    fakes of this batch. The real side is a constant (no gradient reaches the data). With a
    batch's few clips per genre the real means are noisy, but the gradient of a squared gap
    is linear in them, so its expectation is that of the gap to the true genre mean.
    """

    def per_genre(values, onehot):
        onehot = tf.cast(onehot, tf.float32)
        counts = tf.reduce_sum(onehot, axis=0)
        means = tf.matmul(onehot, values, transpose_a=True) / tf.maximum(counts, 1.0)[:, None]
        return means, counts

    real_mean, real_count = per_genre(tf.stop_gradient(dynamics(real, bands)), genre)
    fake_mean, fake_count = per_genre(dynamics(fake, bands), fake_genre)
    present = tf.cast((real_count > 0) & (fake_count > 0), tf.float32)
    gap = tf.reduce_mean(tf.square(fake_mean - real_mean), axis=1)
    return tf.reduce_sum(present * gap) / tf.maximum(tf.reduce_sum(present), 1.0)


def mode_seeking_term(fake1, fake2, z1, z2, epsilon=MS_EPSILON):
    """Per-pair mode-seeking loss ``1 / (ratio + epsilon)``, shape ``[P]`` (see ratio)."""
    return 1.0 / (mode_seeking_ratio(fake1, fake2, z1, z2) + epsilon)


def genre_cross_entropy(genre_one_hot, logits):
    """Per-sample softmax cross-entropy ``[N]`` of genre logits ``[N, G]``."""
    return tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.cast(genre_one_hot, tf.float32), logits=logits
    )


def genre_accuracy(genre_one_hot, logits):
    """Per-sample 0/1 correctness ``[N]`` of the arg-max genre."""
    return tf.cast(
        tf.equal(tf.argmax(logits, axis=-1), tf.argmax(genre_one_hot, axis=-1)), tf.float32
    )


def make_optimizers(learning_rate=8e-4, beta_1=0.0, beta_2=0.99, epsilon=1e-8):
    """GANSynth's Adam settings, one optimizer per network: ``(d_optimizer, g_optimizer)``."""
    return tuple(
        keras.optimizers.Adam(
            learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name
        )
        for name in ("d_adam", "g_adam")
    )


# ----------------------------------------------------------------------------- model

_TRACKED = (
    "d_loss", "g_loss", "wasserstein", "gp", "drift", "r1", "ac_real", "ac_fake",
    "acc_real", "acc_fake", "d_real", "d_fake", "ms_term", "ms_ratio", "consistency",
    "dynamics_gap",
)  # fmt: skip


class GANSynthGAN(keras.Model):
    """Progressive, genre-conditioned GAN trained with ``fit``.

    Args:
      generator, discriminator: :class:`Generator` / :class:`Discriminator` sharing a config.
      ema_generator: a Generator of the same config holding the exponential moving average
        of the generator's weights (used by ``call`` / ``generate`` / export); created from
        the generator's config when omitted. Its weights start equal to the generator's.
      num_genres, latent_dim: optional; checked against the generator's config.
      seed: base seed of the stateless latent / interpolation noise.

    ``train_step`` expects ``(real_specgrams [N, T, F, C], genre [N, G] one-hot or [N] ids)``
    where (T, F) is the current stage's resolution or any integer multiple of it (e.g. the
    final resolution); reals are pooled and faded to the stage with :func:`blend_real`.
    Batches must have a fixed size (``drop_remainder=True``): the per-replica share of the
    global noise draw assumes an even split, and mode seeking needs an even per-replica batch.

    Build and compile inside ``strategy.scope()`` for multi-device training.
    """

    def __init__(
        self,
        generator,
        discriminator,
        ema_generator=None,
        num_genres=None,
        latent_dim=None,
        seed=0,
        **kw,
    ):
        kw.setdefault("name", "gansynth_gan")
        super().__init__(**kw)
        self.config = generator.config
        if discriminator.config.resolutions != self.config.resolutions:
            raise ValueError("generator and discriminator must share the resolution schedule")
        if num_genres is not None and num_genres != self.config.num_genres:
            raise ValueError(
                f"num_genres={num_genres} but the networks use {self.config.num_genres}"
            )
        if latent_dim is not None and latent_dim != self.config.latent_dim:
            raise ValueError(
                f"latent_dim={latent_dim} but the generator uses {self.config.latent_dim}"
            )
        self.generator = generator
        self.discriminator = discriminator
        if ema_generator is None:
            ema_generator = Generator(self.config, stage=generator.stage, name="ema_generator")
        self.ema_generator = ema_generator
        self.ema_generator.set_weights(generator.get_weights())
        self.ema_generator.trainable = False
        self.num_genres = self.config.num_genres
        self.latent_dim = self.config.latent_dim
        self.seed = int(seed)
        self.stage = generator.stage
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="ones", trainable=False)
        # ONLY_FIRST_REPLICA: every replica adds the same value; keep one copy's update.
        self.step_counter = self.add_weight(
            name="step_counter", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )  # fmt: skip
        self.images_seen = self.add_weight(
            name="images_seen", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )  # fmt: skip
        self.trackers = {name: keras.metrics.Mean(name=name) for name in _TRACKED}
        # Set again by compile.
        self.gp_weight, self.drift_weight, self.ac_weight = 10.0, 0.001, 10.0
        self.loss_kind, self.r1_gamma, self.penalty_fraction = "wgan_gp", 1.0, 1.0
        self.consistency_weight, self.consistency_fn = 0.0, None
        self.dynamics_weight = 0.0
        self.mode_seeking_weight, self.ema_decay, self.ema_rampup = 1.0, 0.999, 0.05
        self.set_stage(generator.stage, float(generator.alpha.numpy()))
        self.built = True

    # -- configuration --------------------------------------------------------------------

    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        gp_weight=10.0,
        drift_weight=0.001,
        ac_weight=10.0,
        mode_seeking_weight=1.0,
        ema_decay=0.999,
        ema_rampup=0.05,
        loss="wgan_gp",
        r1_gamma=1.0,
        penalty_fraction=1.0,
        consistency_weight=0.0,
        consistency_fn=None,
        dynamics_weight=0.0,
        **kwargs,
    ):
        """Set optimizers and loss weights; ``mode_seeking_weight=0`` skips the MSGAN term.

        ``loss`` is ``'wgan_gp'`` (uses ``gp_weight``, ``drift_weight``) or
        ``'nonsaturating'`` (uses ``r1_gamma``); see the module docstring.
        ``penalty_fraction`` in (0, 1]: the gradient penalty (GP or R1) runs on the first
        ``ceil(fraction * per-replica batch)`` samples and is weighted up by the inverse
        fraction. ``consistency_weight`` / ``consistency_fn``: the phase-consistency term of
        the module docstring (``consistency_fn`` maps features ``[N, T, F, C]`` at the final
        resolution to the resynthesised normalised log-magnitude ``[N, T, F]``).
        ``dynamics_weight``: the temporal-dynamics matching term of the module docstring
        (every stage; 0 skips it).

        The EMA's half-life in images is that of ``ema_decay`` per step, but at most
        ``ema_rampup`` times the images seen so far (StyleGAN2's ramp-up; ``None`` or 0 =
        plain ``ema_decay``): early in a short run the average must not lag behind a
        generator that is still changing fast. (Measured on the quickstart: with a fixed
        0.999 the EMA generator's genre accuracy was half the raw generator's.)

        Optimizers default to :func:`make_optimizers`. Under the ``mixed_float16`` policy they
        are wrapped in ``keras.optimizers.LossScaleOptimizer``. Other keyword arguments
        (``run_eagerly``, ``jit_compile``, ``steps_per_execution``) go to ``Model.compile``.
        """
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if not 0.0 < float(penalty_fraction) <= 1.0:
            raise ValueError(f"penalty_fraction must be in (0, 1], got {penalty_fraction}")
        if float(consistency_weight) < 0 or (
            float(consistency_weight) > 0 and consistency_fn is None
        ):
            raise ValueError("consistency_weight must be >= 0, and > 0 needs a consistency_fn "
                             "(e.g. Representation.resynthesized_log_magnitude)")
        if not float(dynamics_weight) >= 0:
            raise ValueError(f"dynamics_weight must be >= 0, got {dynamics_weight}")
        super().compile(optimizer=None, **kwargs)
        if d_optimizer is None or g_optimizer is None:
            default_d, default_g = make_optimizers()
            d_optimizer = d_optimizer or default_d
            g_optimizer = g_optimizer or default_g
        if self.generator.dtype_policy.name == "mixed_float16":
            wrap = keras.optimizers.LossScaleOptimizer
            d_optimizer = (
                d_optimizer
                if isinstance(d_optimizer, wrap)
                else wrap(d_optimizer, name="d_loss_scale")
            )
            g_optimizer = (
                g_optimizer
                if isinstance(g_optimizer, wrap)
                else wrap(g_optimizer, name="g_loss_scale")
            )
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        with self.distribute_strategy.scope():
            # Build on every weight of every stage: each step then updates the subset that
            # the active stage uses (Adam slots of not-yet-used blocks stay zero).
            if not self.d_optimizer.built:
                self.d_optimizer.build(self.discriminator.trainable_variables)
            if not self.g_optimizer.built:
                self.g_optimizer.build(self.generator.trainable_variables)
        self.gp_weight = float(gp_weight)
        self.drift_weight = float(drift_weight)
        self.ac_weight = float(ac_weight)
        self.mode_seeking_weight = float(mode_seeking_weight)
        self.ema_decay = float(ema_decay)
        self.ema_rampup = float(ema_rampup or 0.0)
        self.loss_kind = loss
        self.r1_gamma = float(r1_gamma)
        self.penalty_fraction = float(penalty_fraction)
        self.consistency_weight = float(consistency_weight)
        self.consistency_fn = consistency_fn
        self.dynamics_weight = float(dynamics_weight)

    @property
    def metrics(self):
        skip = {"r1"} if self.loss_kind == "wgan_gp" else {"gp", "drift"}
        if self.mode_seeking_weight <= 0:
            skip |= {"ms_term", "ms_ratio"}
        if self.consistency_weight <= 0:
            skip.add("consistency")
        if self.dynamics_weight <= 0:
            skip.add("dynamics_gap")
        return [self.trackers[n] for n in _TRACKED if n not in skip]

    def set_stage(self, stage, alpha=None):
        """Switch all three networks to ``stage`` (new shapes: the train function is rebuilt)."""
        changed = int(stage) != self.stage
        for net in (self.generator, self.discriminator, self.ema_generator):
            net.set_stage(stage)
        self.stage = int(stage)
        if alpha is not None:
            self.set_alpha(alpha)
        if changed:
            # Python-side stage is baked into traced graphs; stale functions must go.
            self.test_function = None
            self.predict_function = None
            if self.train_function is not None:
                self.make_train_function(force=True)

    def set_alpha(self, alpha):
        """Set the fade-in weight of all networks (variable assignment, no retrace)."""
        self.alpha.assign(alpha)
        for net in (self.generator, self.discriminator, self.ema_generator):
            net.set_alpha(alpha)

    # -- sampling ---------------------------------------------------------------------------

    def call(self, inputs):
        """``[z, genre_one_hot]`` -> EMA generator spectrograms ``[N, T_s, F_s, C]``."""
        return self.ema_generator(inputs)

    def generate(self, genre_ids, z=None, seed=None):
        """Sample from the EMA generator at the current stage.

        Args:
          genre_ids: ``[N]`` integer genre ids.
          z: optional ``[N, latent_dim]`` latents; drawn from N(0, 1) (stateless, from
            ``seed`` when given) otherwise.

        Returns:
          float32 tensor ``[N, T_s, F_s, spec_channels]`` in [-1, 1].
        """
        genre_ids = tf.reshape(tf.convert_to_tensor(genre_ids, tf.int32), [-1])
        n = tf.shape(genre_ids)[0]
        if z is None:
            shape = tf.stack([n, self.latent_dim])
            z = (
                tf.random.normal(shape)
                if seed is None
                else tf.random.stateless_normal(shape, [int(seed), 0])
            )
        return self.ema_generator(
            [tf.convert_to_tensor(z, tf.float32), tf.one_hot(genre_ids, self.num_genres)]
        )

    # -- training ---------------------------------------------------------------------------

    def _replica_noise(self, kind, local_batch, tail_shape, uniform=False):
        """This replica's slice of a global-batch stateless draw, ``[local_batch, *tail_shape]``."""
        strategy = tf.distribute.get_strategy()
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32)
        tail = tf.constant(tail_shape, tf.int32, [len(tail_shape)])
        shape = tf.concat([[local_batch * strategy.num_replicas_in_sync], tail], axis=0)
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.step_counter.value * 4 + kind])
        draw = tf.random.stateless_uniform if uniform else tf.random.stateless_normal
        return draw(shape, seed)[replica * local_batch : (replica + 1) * local_batch]

    def _fake_genres(self, genre):
        """Genres for the fakes; with mode seeking, sample 2k's genre is shared by 2k+1."""
        if self.mode_seeking_weight <= 0:
            return genre
        if genre.shape[0] is not None and genre.shape[0] % 2:
            raise ValueError(
                "mode seeking pairs fakes: the per-replica batch must be even, "
                f"got {genre.shape[0]}"
            )
        return tf.gather(genre, (tf.range(tf.shape(genre)[0]) // 2) * 2)

    def _apply(self, optimizer, scaled_loss, tape, network):
        """Differentiate the (loss-scaled) loss and apply to the weights the stage uses."""
        variables = network.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]  # inactive stages: None
        optimizer.apply([g for g, _ in used], [v for _, v in used])

    def ema_decay_at(self, images_seen, global_batch):
        """The EMA decay of this step (float32 scalar tensor); see ``compile``."""
        decay = tf.constant(self.ema_decay, tf.float32)
        if self.ema_rampup <= 0 or self.ema_decay <= 0:
            return decay
        batch = tf.cast(global_batch, tf.float32)
        # decay^(steps) = 1/2  <=>  half-life in images = batch * ln(1/2) / ln(decay).
        half_life = tf.minimum(batch * tf.math.log(0.5) / tf.math.log(decay),
                               self.ema_rampup * tf.cast(images_seen, tf.float32))
        return tf.minimum(decay, tf.pow(0.5, batch / tf.maximum(half_life, 1e-8)))

    def _update_ema(self, decay):
        """ema <- decay * ema + (1 - decay) * weights, on every replica's copy."""
        pairs = [
            (e.value, w.value)
            for e, w in zip(self.ema_generator.weights, self.generator.weights)
            if w.trainable
        ]

        def update_all(strategy, pairs, decay):
            for ema, w in pairs:
                strategy.extended.update(
                    ema, lambda e, v, d: e.assign(d * e + (1.0 - d) * v), args=(w, decay))

        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # already in cross-replica context
            update_all(tf.distribute.get_strategy(), pairs, decay)
        else:
            ctx.merge_call(update_all, args=(pairs, decay))

    def _discriminator_step(self, real, genre, fake_genre, global_batch):
        """One critic update; returns per-sample ``[N]`` terms for the trackers."""
        D, batch = self.discriminator, tf.shape(real)[0]
        z = self._replica_noise(0, batch, [self.latent_dim])
        eps = self._replica_noise(1, batch, [], uniform=True)
        fake = self.generator([z, fake_genre])
        # The penalty's samples: a static prefix of the batch, weighted up to the batch.
        k = penalty_count(
            real.shape[0] if real.shape[0] is not None else batch, self.penalty_fraction
        )
        upweight = tf.cast(batch, tf.float32) / tf.cast(k, tf.float32)
        with tf.GradientTape() as tape:
            d_real, logits_real = D([real, genre])
            d_fake = D([fake, fake_genre])[0][:, 0]
            d_real = d_real[:, 0]
            inner_scale = self.d_optimizer.scale_loss(1.0)  # float16-safe input gradients
            ac_real = genre_cross_entropy(genre, logits_real)
            penalty_genre = genre[:k]
            critic = lambda x: D([x, penalty_genre])[0]  # noqa: E731
            if self.loss_kind == "wgan_gp":
                penalty = gradient_penalty(
                    critic, real[:k], fake[:k], eps[:k], loss_scale=inner_scale
                )
                drift = tf.square(d_real)
                adversarial = d_fake - d_real + self.drift_weight * drift
                penalty_weight = self.gp_weight
                terms = {"gp": penalty, "drift": drift}
            else:
                penalty = r1_penalty(critic, real[:k], loss_scale=inner_scale)
                adversarial = tf.nn.softplus(d_fake) + tf.nn.softplus(-d_real)
                penalty_weight = 0.5 * self.r1_gamma
                terms = {"r1": penalty}
            per_sample = adversarial + self.ac_weight * ac_real
            d_loss = (
                tf.reduce_sum(per_sample) + penalty_weight * upweight * tf.reduce_sum(penalty)
            ) / global_batch
            # Loss scaling (mixed precision) must happen under the tape; a no-op otherwise.
            scaled = self.d_optimizer.scale_loss(d_loss)
        self._apply(self.d_optimizer, scaled, tape, D)
        # d_loss per sample for the tracker: the penalty spread evenly over the batch.
        mean_penalty = penalty_weight * tf.reduce_mean(penalty)
        return {
            "d_loss": per_sample + mean_penalty, "wasserstein": d_fake - d_real,
            "ac_real": ac_real, "acc_real": genre_accuracy(genre, logits_real),
            "d_real": d_real, "d_fake": d_fake, **terms,
        }  # fmt: skip

    def _generator_step(self, fake_genre, global_batch, real=None, genre=None):
        """One generator update with fresh latents; returns per-sample terms.

        ``real`` / ``genre`` (this replica's real batch) are needed by the dynamics term.
        """
        z = self._replica_noise(2, tf.shape(fake_genre)[0], [self.latent_dim])
        with tf.GradientTape() as tape:
            fake = self.generator([z, fake_genre])
            g_fake, logits_fake = self.discriminator([fake, fake_genre])
            ac_fake = genre_cross_entropy(fake_genre, logits_fake)
            adversarial = (
                -g_fake[:, 0] if self.loss_kind == "wgan_gp" else tf.nn.softplus(-g_fake[:, 0])
            )
            per_sample = adversarial + self.ac_weight * ac_fake
            g_loss = tf.reduce_sum(per_sample) / global_batch
            terms = {"ac_fake": ac_fake, "acc_fake": genre_accuracy(fake_genre, logits_fake)}
            if self.mode_seeking_weight > 0:  # skipped entirely when off
                ratio = mode_seeking_ratio(fake[0::2], fake[1::2], z[0::2], z[1::2])
                ms_term = 1.0 / (ratio + MS_EPSILON)
                g_loss += self.mode_seeking_weight * tf.reduce_sum(ms_term) / (global_batch / 2.0)
                # The pair's value on both members.
                per_sample += self.mode_seeking_weight * tf.repeat(ms_term, 2)
                terms.update(ms_term=ms_term, ms_ratio=ratio)
            if self.consistency_weight > 0 and self.stage == self.config.num_stages - 1:
                resynth = tf.cast(self.consistency_fn(fake), tf.float32)
                mismatch = tf.reduce_mean(tf.abs(resynth - fake[..., 0]), axis=[1, 2])
                g_loss += self.consistency_weight * tf.reduce_sum(mismatch) / global_batch
                per_sample += self.consistency_weight * mismatch
                terms["consistency"] = mismatch
            if self.dynamics_weight > 0:
                gap = dynamics_gap(real, genre, fake, fake_genre)
                # A batch statistic, not a per-sample sum: divide by the replica count so
                # that the optimizer's sum over replicas is the mean of their gaps.
                replicas = global_batch / tf.cast(tf.shape(fake)[0], tf.float32)
                g_loss += self.dynamics_weight * gap / replicas
                per_sample += self.dynamics_weight * gap
                terms["dynamics_gap"] = gap
            scaled = self.g_optimizer.scale_loss(g_loss)
        self._apply(self.g_optimizer, scaled, tape, self.generator)
        return {"g_loss": per_sample, **terms}

    def train_step(self, data):
        real, genre = data[0], data[1]
        if genre.shape.rank == 1 or genre.dtype.is_integer:
            genre = tf.one_hot(tf.reshape(tf.cast(genre, tf.int32), [-1]), self.num_genres)
        genre = tf.cast(genre, tf.float32)
        real = blend_real(tf.cast(real, tf.float32), self.stage, self.alpha, self.config)
        # Losses are sums over this replica divided by the GLOBAL batch: the optimizer sums
        # replica gradients, which then equal the single-device gradient of the batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.cast(tf.shape(real)[0] * replicas, tf.float32)
        fake_genre = self._fake_genres(genre)

        terms = self._discriminator_step(real, genre, fake_genre, global_batch)
        terms.update(self._generator_step(fake_genre, global_batch, real, genre))
        self._update_ema(
            self.ema_decay_at(
                self.images_seen.value + tf.cast(global_batch, tf.int64), global_batch
            )
        )
        self.step_counter.assign_add(1)
        self.images_seen.assign_add(tf.cast(global_batch, tf.int64))

        # Trackers take this replica's means; Keras aggregates them across replicas.
        for name, per_sample in terms.items():
            self.trackers[name].update_state(tf.reduce_mean(per_sample))
        return {m.name: m.result() for m in self.metrics}


def build_gan(config, seed=0, **kwargs):
    """Convenience: fresh Generator, Discriminator and EMA generator for ``config``."""
    return GANSynthGAN(
        Generator(config, name="generator"),
        Discriminator(config, name="discriminator"),
        Generator(config, name="ema_generator"),
        seed=seed,
        **kwargs,
    )
