"""The genre classifier that evaluation uses to judge generated audio (GANSynth's pitch
classifier, for genres), and the log-mel features of the other metrics.

The classifier takes raw waves, so real and generated clips go through exactly the same
front end: a log-mel spectrogram (`LogMel`), centred per clip so that the level of a clip
does not decide its genre (a generator that is too loud or quiet is still judged on its
content), then a small CNN: three [conv 3x3 -> group norm -> ReLU -> max-pool] blocks
(16, 32, 64 channels), a fourth conv, global average pooling, a 64-unit ReLU layer named
"embedding" (the space of the Frechet distance, like Inception's pool3 for FID), dropout,
and genre logits.

Saved as `classifier.keras` with `classifier.json` (genres, sample rate, clip length,
held-out accuracy) beside it, so `evaluate` can reuse it. `ClassifierEnsemble` is the judge
`evaluate` uses: one or more such classifiers, trained alike from different seeds, whose
genre probabilities it averages (one classifier's verdict on generated clips moves with its
seed far more than its real accuracy does).
"""

import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

_PACKAGE = "gansynth_tf"
MODEL_FILE = "classifier.keras"
META_FILE = "classifier.json"
EMBEDDING_LAYER = "embedding"
LOGITS_LAYER = "logits"
LOG_FLOOR_DB = -100.0
# Spread of centred log-mel values (dB) mapped to ~unit scale for the CNN.
DB_SCALE = 20.0


def frontend_params(sample_rate, audio_length, max_frames=256, n_mels=64):
    """STFT/mel settings for a clip: ~32 ms power-of-two frames, at most max_frames frames.

    Returns a dict with sample_rate, nfft, hop, n_mels (LogMel's config).
    """
    nfft = int(2 ** np.round(np.log2(max(sample_rate * 0.032, 16))))
    nfft = max(16, min(nfft, 2 ** int(np.floor(np.log2(max(audio_length, 16))))))
    hop = max(nfft // 4, -(-audio_length // max_frames))
    return {"sample_rate": int(sample_rate), "nfft": nfft, "hop": int(hop),
            "n_mels": int(min(n_mels, nfft // 2))}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LogMel(keras.layers.Layer):
    """Waves `[b, samples]` -> log-mel power in dB `[b, frames, n_mels, 1]` (floor -100 dB).

    center=True subtracts each clip's mean and divides by DB_SCALE (level invariance).
    """

    def __init__(self, sample_rate, nfft, hop, n_mels, center=True, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.nfft, self.hop = int(sample_rate), int(nfft), int(hop)
        self.n_mels, self.center = int(n_mels), bool(center)
        self._mel = tf.signal.linear_to_mel_weight_matrix(
            self.n_mels, self.nfft // 2 + 1, float(self.sample_rate), 20.0,
            self.sample_rate / 2.0)

    def call(self, waves):
        stft = tf.signal.stft(tf.cast(waves, tf.float32), self.nfft, self.hop, self.nfft,
                              pad_end=True)
        power = tf.tensordot(tf.square(tf.abs(stft)), self._mel, 1)
        db = tf.maximum(10.0 * tf.math.log(power + 1e-12) / np.log(10.0), LOG_FLOOR_DB)
        if self.center:
            db = (db - tf.reduce_mean(db, axis=[1, 2], keepdims=True)) / DB_SCALE
        return db[..., None]

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else -(-input_shape[1] // self.hop)
        return (input_shape[0], frames, self.n_mels, 1)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "nfft": self.nfft,
                "hop": self.hop, "n_mels": self.n_mels, "center": self.center}


def build_model(num_genres, sample_rate, audio_length, embedding_dim=64):
    """Keras model: waves `[b, audio_length]` -> genre logits `[b, num_genres]`."""
    params = frontend_params(sample_rate, audio_length)
    waves = keras.Input(shape=(audio_length,), name="waves")
    x = LogMel(**params, name="log_mel")(waves)
    frames, mels = -(-audio_length // params["hop"]), params["n_mels"]
    # Group norm, not batch norm: it has no moving statistics, which after the few hundred
    # steps this classifier trains for are still far from the data and made inference
    # collapse to chance while training accuracy was 100%.
    for i, channels in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False,
                                name=f"conv{i}")(x)
        x = keras.layers.GroupNormalization(groups=4, name=f"norm{i}")(x)
        x = keras.layers.ReLU()(x)
        # Pool only axes still long enough: short clips keep some time resolution.
        pool = (2 if frames >= 4 else 1, 2 if mels >= 4 else 1)
        x = keras.layers.MaxPooling2D(pool, name=f"pool{i}")(x)
        frames, mels = frames // pool[0], mels // pool[1]
    x = keras.layers.Conv2D(64, 3, padding="same", use_bias=False, name="conv3")(x)
    x = keras.layers.GroupNormalization(groups=4, name="norm3")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    x = keras.layers.Dropout(0.2)(x)
    logits = keras.layers.Dense(num_genres, name=LOGITS_LAYER)(x)
    return keras.Model(waves, logits, name="genre_classifier")


class GenreClassifier:
    """A trained (or to-be-trained) genre classifier with its metadata.

    Attributes:
      model: Keras model, waves `[b, audio_length]` -> logits `[b, num_genres]`.
      genres, sample_rate, audio_length; meta: dict saved as classifier.json.
    """

    def __init__(self, model, genres, sample_rate, audio_length, meta=None):
        self.model = model
        self.genres = list(genres)
        self.sample_rate, self.audio_length = int(sample_rate), int(audio_length)
        self.meta = dict(meta or {})
        self._heads = keras.Model(
            model.inputs, [model.get_layer(EMBEDDING_LAYER).output, model.outputs[0]])
        self._predict = None

    @classmethod
    def create(cls, genres, sample_rate, audio_length, seed=0):
        keras.utils.set_random_seed(seed)
        return cls(build_model(len(genres), sample_rate, audio_length), genres, sample_rate,
                   audio_length)

    def fit(self, waves, labels, epochs=10, batch_size=None, learning_rate=1e-3, seed=0,
            verbose=0):
        """Trains on waves `[n, audio_length]` with int labels `[n]`; returns the history.

        batch_size None: 32, or smaller for small sets so that every epoch still takes
        several steps.
        """
        keras.utils.set_random_seed(seed)
        if batch_size is None:
            batch_size = int(min(32, max(8, len(waves) // 8)))
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           metrics=["accuracy"])
        history = self.model.fit(np.asarray(waves, np.float32), np.asarray(labels, np.int32),
                                 epochs=epochs, batch_size=batch_size, shuffle=True,
                                 verbose=verbose)
        self._predict = None
        return history.history

    def predict(self, waves, batch_size=64):
        """waves `[n, audio_length]` -> (probabilities `[n, G]`, embeddings `[n, E]`)."""
        waves = np.asarray(waves, np.float32)
        if waves.ndim != 2 or waves.shape[1] != self.audio_length:
            raise ValueError(f"the classifier takes waves [n, {self.audio_length}], got "
                             f"{waves.shape}")
        if self._predict is None:
            # One trace for every batch size: an ensemble's members would otherwise each
            # retrace for the last, shorter batch of every set (and TF warns of it).
            self._predict = tf.function(
                lambda w: self._heads(w, training=False),
                input_signature=[tf.TensorSpec([None, self.audio_length], tf.float32)])
        probs, embeds = [], []
        for i in range(0, len(waves), batch_size):
            emb, logits = self._predict(tf.constant(waves[i:i + batch_size]))
            probs.append(tf.nn.softmax(logits).numpy())
            embeds.append(emb.numpy())
        if not probs:
            return (np.zeros([0, len(self.genres)], np.float32),
                    np.zeros([0, self._heads.outputs[0].shape[-1]], np.float32))
        return np.concatenate(probs), np.concatenate(embeds)

    def accuracy(self, waves, labels):
        probs, _ = self.predict(waves)
        return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))

    def matches(self, genres, sample_rate, audio_length):
        """Whether this classifier can judge clips of a run with these settings."""
        return (list(genres) == self.genres and int(sample_rate) == self.sample_rate
                and int(audio_length) == self.audio_length)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.model.save(os.path.join(directory, MODEL_FILE))
        meta = {**self.meta, "genres": self.genres, "sample_rate": self.sample_rate,
                "audio_length": self.audio_length}
        with open(os.path.join(directory, META_FILE), "w") as f:
            json.dump(meta, f, indent=2, ensure_ascii=False)
        return directory

    @classmethod
    def load(cls, directory):
        model_path = os.path.join(directory, MODEL_FILE)
        meta_path = os.path.join(directory, META_FILE)
        for path in (model_path, meta_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} not found: no saved classifier in "
                                        f"{directory}")
        with open(meta_path) as f:
            meta = json.load(f)
        model = keras.models.load_model(model_path, compile=False)
        return cls(model, meta["genres"], meta["sample_rate"], meta["audio_length"], meta)


MEMBER_SUBDIR = "member_{}"


class ClassifierEnsemble:
    """Genre classifiers trained alike from seeds seed, seed + 1, ...; their mean vote.

    Member 0 is saved in the folder itself (a one-member ensemble is a plain saved
    GenreClassifier, and one saved by earlier versions loads as such), member i in
    ``member_<i>/``. The embedding (the space of the Frechet distance) is member 0's: the
    members' embedding spaces are not aligned, so they are not averaged.

    Attributes:
      members: the GenreClassifiers; genres, sample_rate, audio_length: theirs;
      meta: the ensemble's classifier.json (members, per-member held-out accuracy, ...).
    """

    def __init__(self, members, meta=None):
        if not members:
            raise ValueError("a classifier ensemble needs at least one member")
        first = members[0]
        for m in members[1:]:
            if not m.matches(first.genres, first.sample_rate, first.audio_length):
                raise ValueError("the members of a classifier ensemble must judge the same "
                                 "genres at the same sample rate and clip length")
        self.members = list(members)
        self.genres = first.genres
        self.sample_rate, self.audio_length = first.sample_rate, first.audio_length
        self.meta = {**first.meta, **dict(meta or {}), "members": len(self.members)}

    @classmethod
    def create(cls, num_members, genres, sample_rate, audio_length, seed=0):
        return cls([GenreClassifier.create(genres, sample_rate, audio_length, seed + i)
                    for i in range(int(num_members))])

    def fit(self, waves, labels, epochs=10, seed=0, **kwargs):
        """Trains member i with seed + i; returns the members' histories."""
        return [m.fit(waves, labels, epochs, seed=seed + i, **kwargs)
                for i, m in enumerate(self.members)]

    def predict_members(self, waves):
        """waves `[n, L]` -> (each member's probabilities `[members, n, G]`, member 0's
        embeddings `[n, E]`)."""
        probs, embeddings = self.members[0].predict(waves)
        return np.stack([probs] + [m.predict(waves)[0] for m in self.members[1:]]), embeddings

    def predict(self, waves):
        """waves `[n, L]` -> (mean probabilities `[n, G]`, member 0's embeddings `[n, E]`)."""
        probs, embeddings = self.predict_members(waves)
        return probs.mean(axis=0), embeddings

    def accuracy(self, waves, labels):
        probs, _ = self.predict(waves)
        return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))

    def matches(self, genres, sample_rate, audio_length):
        return self.members[0].matches(genres, sample_rate, audio_length)

    def save(self, directory):
        first = self.members[0]
        first.meta.update(self.meta)
        first.save(directory)
        for i, m in enumerate(self.members[1:], 1):
            m.save(os.path.join(directory, MEMBER_SUBDIR.format(i)))
        # A larger ensemble saved here before leaves member folders past this one's count;
        # they are never read, but they would pass for part of this judge.
        stale = len(self.members)
        while os.path.isdir(path := os.path.join(directory, MEMBER_SUBDIR.format(stale))):
            shutil.rmtree(path)
            stale += 1
        return directory

    @classmethod
    def load(cls, directory):
        first = GenreClassifier.load(directory)
        count = int(first.meta.get("members", 1))
        others = [GenreClassifier.load(os.path.join(directory, MEMBER_SUBDIR.format(i)))
                  for i in range(1, count)]
        return cls([first] + others, first.meta)


def log_mel_features(waves, sample_rate, grid=(32, 32), batch_size=64):
    """Log-mel spectrograms for NDB and diversity: waves `[n, samples]` -> `[n, d]`.

    Absolute dB (not centred: level differences are part of the distribution), area-pooled
    to at most `grid` (frames, mel bins) so k-means works in a few hundred dimensions.
    """
    waves = np.asarray(waves, np.float32)
    params = frontend_params(sample_rate, waves.shape[1])
    layer = LogMel(**params, center=False)
    out = []
    for i in range(0, len(waves), batch_size):
        db = layer(tf.constant(waves[i:i + batch_size]))
        size = [min(int(db.shape[1]), grid[0]), min(int(db.shape[2]), grid[1])]
        pooled = tf.image.resize(db, size, method="area")
        out.append(tf.reshape(pooled, [pooled.shape[0], -1]).numpy())
    return np.concatenate(out) if out else np.zeros([0, 0], np.float32)
