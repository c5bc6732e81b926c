"""The GANSynth training model: a progressive, genre-conditioned GAN trained with ``fit``.

The critic and generator steps delegate their objective to :mod:`gansynth_tf.losses`
(configured by one :class:`~gansynth_tf.losses.LossConfig`); the model keeps the EMA
generator, the progressive stage and the stateless noise. Losses are per-sample sums over
this replica divided by the GLOBAL batch, so that gradients summed across replicas equal
the single-device gradients. The terms, and the measurements behind them, are in
``docs/design.md``.

Usage::

    cfg = quickstart_config(num_genres)               # or hires_config(num_genres)
    with strategy.scope():                            # optional (MirroredStrategy, ...)
        gan = build_gan(cfg, seed=0)
        gan.compile(d_opt, g_opt, loss=LossConfig(mode_seeking_weight=1.0))
    schedule = quickstart_schedule(cfg.resolutions)
    gan.fit(ds_of_(full_res_specgrams, genre_one_hot), callbacks=[ProgressiveCallback(schedule)])
    specs = gan.generate(genre_ids, seed=0)           # EMA generator, current stage
"""
import dataclasses

import keras
import tensorflow as tf

from gansynth_tf import distribution
from gansynth_tf.augment import Augment
from gansynth_tf.losses import (  # noqa: F401  (re-exported: the loss maths' old home)
    ADVERSARIAL_LOSSES,
    ADVERSARIAL_TRACKERS,
    MS_EPSILON,
    LossConfig,
    dynamics,
    dynamics_gap,
    genre_accuracy,
    genre_cross_entropy,
    gradient_penalty,
    mode_seeking_ratio,
    mode_seeking_term,
    penalty_count,
    r1_penalty,
)
from gansynth_tf.networks import Discriminator, Generator
from gansynth_tf.progressive import blend_real

LOSSES = tuple(ADVERSARIAL_LOSSES)
# Added to the seed of the augmentations' draws: a family apart from the latents' and the
# penalty's, which runs without --augment keep unchanged.
AUGMENT_SALT = 1 << 20


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
        self.loss_config, self.consistency_fn, self.preprocess_fn = LossConfig(), None, None
        self.ema_decay, self.ema_rampup = 0.999, 0.05
        self.set_stage(generator.stage, float(generator.alpha.numpy()))
        self.built = True

    # -- configuration --------------------------------------------------------------------

    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        loss=None,
        consistency_fn=None,
        ema_decay=0.999,
        ema_rampup=0.05,
        preprocess_fn=None,
        **kwargs,
    ):
        """Set the optimizers, the objective and the generator's moving average.

        Args:
          d_optimizer, g_optimizer: default to :func:`make_optimizers`. Under the
            ``mixed_float16`` policy they are wrapped in ``keras.optimizers.LossScaleOptimizer``.
          loss: a :class:`LossConfig` (default ``LossConfig()``), or its ``kind`` as a string.
            Keyword arguments named like LossConfig fields (``mode_seeking_weight=0``, ...)
            replace those fields, for short calls in tests and notebooks.
          consistency_fn: needed when ``loss.consistency_weight > 0``: maps features
            ``[N, T, F, C]`` at the final resolution to the resynthesised normalised
            log-magnitude ``[N, T, F]`` (``Representation.resynthesized_log_magnitude``).
          ema_decay, ema_rampup: the EMA's half-life in images is that of ``ema_decay`` per
            step, but at most ``ema_rampup`` times the images seen so far (StyleGAN2's
            ramp-up; ``None`` or 0 = plain ``ema_decay``).
          preprocess_fn: maps the batches' first element to the real features inside the
            train step, on the device (waves to features:
            ``functools.partial(datasets.batch_features, representation.waves_to_features)``);
            None = the batches hold the features already.
          **kwargs: the rest (``run_eagerly``, ``jit_compile``, ...) go to ``Model.compile``.
        """
        if loss is None:
            loss = LossConfig()
        elif isinstance(loss, str):
            loss = LossConfig(kind=loss)
        fields = {f.name for f in dataclasses.fields(LossConfig)}
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        if overrides:
            loss = dataclasses.replace(loss, **overrides)
        if loss.consistency_weight > 0 and consistency_fn is None:
            raise ValueError("consistency_weight > 0 needs a consistency_fn "
                             "(e.g. Representation.resynthesized_log_magnitude)")
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
        self.loss_config = loss
        self.augment = Augment(loss.augment)
        self.consistency_fn = consistency_fn
        self.preprocess_fn = preprocess_fn
        self.ema_decay = float(ema_decay)
        self.ema_rampup = float(ema_rampup or 0.0)

    @property
    def metrics(self):
        loss = self.loss_config
        skip = set(ADVERSARIAL_TRACKERS) - set(loss.adversarial.trackers)
        if loss.mode_seeking_weight <= 0:
            skip |= {"ms_term", "ms_ratio"}
        if loss.consistency_weight <= 0:
            skip.add("consistency")
        if loss.dynamics_weight <= 0:
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

    def _replica_noise(self, kind, local_batch, tail_shape, uniform=False, salt=0):
        """This replica's slice of a global-batch stateless draw, ``[local_batch, *tail_shape]``.

        ``kind`` (0-3) tells a step's draws apart; ``salt`` another family of them.
        """
        strategy = tf.distribute.get_strategy()
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32)
        tail = tf.constant(tail_shape, tf.int32, [len(tail_shape)])
        shape = tf.concat([[local_batch * strategy.num_replicas_in_sync], tail], axis=0)
        seed = tf.stack([tf.constant(self.seed + salt, tf.int64),
                         self.step_counter.value * 4 + kind])
        draw = tf.random.stateless_uniform if uniform else tf.random.stateless_normal
        return draw(shape, seed)[replica * local_batch : (replica + 1) * local_batch]

    def _critic_view(self, x, kind):
        """``x [N, T, F, C]`` as the critic sees it: augmented with this step's draws
        (``kind`` 0: reals, 1: fakes of the critic step, 2: of the generator step), or
        ``x`` itself without ``--augment``."""
        if not self.augment:
            return x
        draws = self._replica_noise(kind, tf.shape(x)[0], [self.augment.draws],
                                    uniform=True, salt=AUGMENT_SALT)
        return self.augment(x, draws)

    def _fake_genres(self, genre):
        """Genres for the fakes; with mode seeking, sample 2k's genre is shared by 2k+1."""
        if self.loss_config.mode_seeking_weight <= 0:
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
        real, fake = self._critic_view(real, 0), self._critic_view(fake, 1)
        # The penalty's samples: a static prefix of the batch, weighted up to the batch.
        loss = self.loss_config
        k = penalty_count(
            real.shape[0] if real.shape[0] is not None else batch, loss.penalty_fraction
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
            adversarial, terms = loss.adversarial.critic(d_real, d_fake, loss)
            penalty, penalty_weight, penalty_name = loss.adversarial.penalty(
                critic, real[:k], fake[:k], eps[:k], loss, inner_scale
            )
            terms[penalty_name] = penalty
            per_sample = adversarial + loss.ac_weight * ac_real
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
            g_fake, logits_fake = self.discriminator([self._critic_view(fake, 2), fake_genre])
            ac_fake = genre_cross_entropy(fake_genre, logits_fake)
            loss = self.loss_config
            per_sample = loss.adversarial.generator(g_fake[:, 0]) + loss.ac_weight * ac_fake
            g_loss = tf.reduce_sum(per_sample) / global_batch
            terms = {"ac_fake": ac_fake, "acc_fake": genre_accuracy(fake_genre, logits_fake)}
            if loss.mode_seeking_weight > 0:  # skipped entirely when off
                ratio = mode_seeking_ratio(fake[0::2], fake[1::2], z[0::2], z[1::2])
                ms_term = 1.0 / (ratio + MS_EPSILON)
                g_loss += loss.mode_seeking_weight * tf.reduce_sum(ms_term) / (global_batch / 2.0)
                # The pair's value on both members.
                per_sample += loss.mode_seeking_weight * tf.repeat(ms_term, 2)
                terms.update(ms_term=ms_term, ms_ratio=ratio)
            if loss.consistency_weight > 0 and self.stage == self.config.num_stages - 1:
                resynth = tf.cast(self.consistency_fn(fake), tf.float32)
                mismatch = tf.reduce_mean(tf.abs(resynth - fake[..., 0]), axis=[1, 2])
                g_loss += loss.consistency_weight * tf.reduce_sum(mismatch) / global_batch
                per_sample += loss.consistency_weight * mismatch
                terms["consistency"] = mismatch
            if loss.dynamics_weight > 0:
                gap = dynamics_gap(real, genre, fake, fake_genre)
                # A batch statistic, not a per-sample sum: divide by the replica count so
                # that the optimizer's sum over replicas is the mean of their gaps.
                replicas = global_batch / tf.cast(tf.shape(fake)[0], tf.float32)
                g_loss += loss.dynamics_weight * gap / replicas
                per_sample += loss.dynamics_weight * gap
                terms["dynamics_gap"] = gap
            scaled = self.g_optimizer.scale_loss(g_loss)
        self._apply(self.g_optimizer, scaled, tape, self.generator)
        return {"g_loss": per_sample, **terms}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Every layer is built in __init__ and the optimizers in compile, so Keras' pre-build
        # from the first batch has nothing to do. Under MultiWorkerMirroredStrategy it fails
        # (Keras 3.15 passes the whole distributed (x, y) batch to strategy.reduce, which
        # takes one value) and it would cost a collective and a batch: skip it.
        if all(layer.built for layer in self._flatten_layers()):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        real, genre = data[0], data[1]
        if self.preprocess_fn is not None:  # e.g. waves -> features on the device
            real = self.preprocess_fn(real)
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
        logs = {m.name: m.result() for m in self.metrics}
        if distribution.multi_worker(tf.distribute.get_strategy()):
            # Keras (3.15) averages the logs of a multi-worker step with
            # strategy.reduce(MEAN, value, axis=0), which fails on scalars: give it [1]s
            # (the mean over the workers' rows is then a scalar again).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


def build_gan(config, seed=0, **kwargs):
    """Convenience: fresh Generator, Discriminator and EMA generator for ``config``."""
    return GANSynthGAN(
        Generator(config, name="generator"),
        Discriminator(config, name="discriminator"),
        Generator(config, name="ema_generator"),
        seed=seed,
        **kwargs,
    )
