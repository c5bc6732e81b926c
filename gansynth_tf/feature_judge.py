"""A second genre judge, independent of the neural classifier: audio features + a linear model.

Each clip is peak-normalised (so loudness alone decides nothing), then described by the
mean and standard deviation over time of 20 MFCCs, 7 spectral-contrast bands, the spectral
centroid, roll-off, flatness and the zero-crossing rate (librosa), and an
``sklearn.linear_model.LogisticRegression`` on standardised features (``StandardScaler``)
predicts the genre. It shares nothing with :mod:`gansynth_tf.classifier` (no network, no
log-mel front end), so a generator that has learned to fool one does not fool it for free.
"""

import dataclasses

import librosa
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

N_MFCC = 20
NAME = "features + logistic regression"
MAG_FLOOR = 1e-3


def clip_features(wave, sample_rate):
    """float32 [d] statistics of one clip `[samples]` (see the module docstring)."""
    wave = np.asarray(wave, np.float32)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    wave = wave / peak if peak > 1e-6 else wave
    n_fft = 1024 if sample_rate >= 16000 else 512
    hop = n_fft // 4
    spec = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop)) ** 2
    mel = librosa.feature.melspectrogram(S=spec, sr=sample_rate, n_mels=64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
    # A floor ~100 dB under a full-scale partial: empty bands' contrast is float noise.
    mag = np.sqrt(spec) + MAG_FLOOR
    parts = [
        mfcc,
        # fmin: 6 octaves under Nyquist.
        librosa.feature.spectral_contrast(S=mag, sr=sample_rate, n_fft=n_fft,
                                          fmin=min(200.0, sample_rate / 160)),
        np.log1p(librosa.feature.spectral_centroid(S=mag, sr=sample_rate)),
        np.log1p(librosa.feature.spectral_rolloff(S=mag, sr=sample_rate)),
        np.log(librosa.feature.spectral_flatness(S=mag) + 1e-6),
        librosa.feature.zero_crossing_rate(wave, frame_length=n_fft, hop_length=hop),
    ]
    frames = min(p.shape[1] for p in parts)
    stacked = np.concatenate([p[:, :frames] for p in parts])
    return np.concatenate([stacked.mean(axis=1), stacked.std(axis=1)]).astype(np.float32)


def features(waves, sample_rate):
    """[n, d] clip statistics of waves `[n, samples]`."""
    return np.stack([clip_features(w, sample_rate) for w in np.asarray(waves)])


@dataclasses.dataclass
class FeatureJudge:
    """The fitted judge; `predict` returns genre ids, `accuracy` a fraction."""
    model: object
    sample_rate: int
    num_genres: int

    @classmethod
    def fit(cls, waves, labels, sample_rate, num_genres, seed=0):
        return cls.fit_features(features(waves, sample_rate), labels, sample_rate,
                                num_genres, seed)

    @classmethod
    def fit_features(cls, feats, labels, sample_rate, num_genres, seed=0):
        """The judge fitted on precomputed :func:`features` `[n, d]`."""
        model = make_pipeline(StandardScaler(),
                              LogisticRegression(C=0.5, max_iter=3000, random_state=seed))
        model.fit(np.asarray(feats), np.asarray(labels))
        return cls(model, int(sample_rate), int(num_genres))

    def predict_proba(self, waves):
        """[n, num_genres] probabilities (genres absent from the fit get 0)."""
        p = self.model.predict_proba(features(waves, self.sample_rate))
        out = np.zeros([len(p), self.num_genres], np.float64)
        out[:, self.model.classes_] = p
        return out

    def predict(self, waves):
        return np.argmax(self.predict_proba(waves), axis=1)

    def accuracy(self, waves, labels):
        return float(np.mean(self.predict(waves) == np.asarray(labels)))
