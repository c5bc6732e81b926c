"""The audio representation a model is trained on, as one saved, reloadable object.

Training, export and generation must agree exactly on sample rate, clip length, STFT shape,
linear or mel, and normalisation. `Representation` holds those choices, turns waves into the
model's normalised features and back, and is saved as `representation.json` in the train dir.

Shapes: waves `[batch, audio_length, 1]` float32; features `[batch, frames, bins, 2]` float32
in [-1, 1].
"""

import dataclasses
import json
import os

import tensorflow as tf

from gansynth_tf import cli, normalizers
from gansynth_tf.spectral import LOG_EPSILON, SpecgramsHelper

PHASES = ("if", "griffin_lim")
FILENAME = "representation.json"


@dataclasses.dataclass
class Representation:
    """What the features are. `normalizer` is a normaliser config (see normalizers.py)."""

    sample_rate: int = 16000
    audio_length: int = 64000
    spec_shape: tuple = (128, 1024)
    overlap: float = 0.75
    mel: bool = True
    mel_inversion: str = "refined"
    normalizer: dict = dataclasses.field(
        default_factory=lambda: normalizers.PrespecifiedNormalizer().get_config())

    def __post_init__(self):
        self.spec_shape = tuple(int(v) for v in self.spec_shape)
        self._helper = SpecgramsHelper(self.audio_length, self.spec_shape, self.overlap,
                                       self.sample_rate, 1, True, True, self.mel_inversion)
        self._normalizer = normalizers.from_config(self.normalizer)

    # ---- conversions
    @property
    def helper(self):
        return self._helper

    @property
    def duration_seconds(self):
        return self.audio_length / self.sample_rate

    def with_mel_inversion(self, mel_inversion):
        """A copy that turns mel features into audio with another inverse (see
        spectral.MEL_INVERSIONS); the features themselves are unchanged, so a model trained
        with one inverse can be heard through the other."""
        return dataclasses.replace(self, mel_inversion=mel_inversion)

    def set_normalizer(self, normalizer):
        self.normalizer = normalizer.get_config()
        self._normalizer = normalizer

    def waves_to_unnormalized(self, waves):
        """`[b, audio_length, 1]` -> `[b, frames, bins, 2]` before normalisation."""
        if self.mel:
            return self._helper.waves_to_melspecgrams(waves)
        return self._helper.waves_to_specgrams(waves)

    def waves_to_features(self, waves):
        """`[b, audio_length, 1]` -> normalised `[b, frames, bins, 2]`."""
        return self._normalizer.normalize(self.waves_to_unnormalized(waves))

    def features_to_waves(self, features, phase="if", griffin_lim_iterations=32):
        """Normalised features `[b, frames, bins, 2]` -> waves `[b, audio_length]`.

        phase="if" integrates the generated IF channel (GANSynth); "griffin_lim" ignores it
        and rebuilds the phase from the magnitude alone.
        """
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        specgrams = tf.cast(self._normalizer.denormalize(tf.cast(features, tf.float32)),
                            tf.float32)
        h = self._helper
        if phase == "if":
            waves = (h.melspecgrams_to_waves(specgrams) if self.mel
                     else h.specgrams_to_waves(specgrams))
        elif self.mel:
            waves = h.melspecgrams_to_waves_griffin_lim(specgrams, griffin_lim_iterations)
        else:
            waves = h.specgrams_to_waves_griffin_lim(specgrams, griffin_lim_iterations)
        return waves[..., 0]

    def resynthesized_log_magnitude(self, features):
        """Normalised log-magnitude of the audio that the features' own IF phase gives.

        ``[b, frames, bins, 2]`` -> ``[b, frames, bins]``, differentiable: the features go to
        audio by integrating channel 1 (GANSynth's inverse; the mel case always uses the
        "magenta" matrix here, since the refined inverse iterates), and back through the
        STFT. Where magnitude and IF are consistent this returns channel 0; where the IF
        does not fit the magnitude, overlap-add smears the audio and the two differ.
        Only power is computed on the way back (no square roots or angles, whose gradients
        are undefined at zero).
        """
        h = self._helper
        specgrams = tf.cast(self._normalizer.denormalize(tf.cast(features, tf.float32)), tf.float32)
        if self.mel:
            specgrams = h.melspecgrams_to_specgrams(specgrams)
        waves = h.specgrams_to_waves(specgrams)
        stfts = h.waves_to_stfts(waves)[..., 0]
        power = tf.square(tf.math.real(stfts)) + tf.square(tf.math.imag(stfts))
        if self.mel:
            l2mel = tf.constant(h.linear_to_mel_matrix(), tf.float32)
            log_mag = tf.math.log(tf.tensordot(power, l2mel, 1) + LOG_EPSILON)
        else:
            log_mag = 0.5 * tf.math.log(power + LOG_EPSILON**2)
        return self._normalizer.normalize(tf.stack([log_mag, tf.zeros_like(log_mag)], -1))[..., 0]

    # ---- persistence
    def get_config(self):
        config = dataclasses.asdict(self)
        config["spec_shape"] = list(self.spec_shape)
        return config

    @classmethod
    def from_config(cls, config):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - fields
        if unknown:
            raise ValueError(f"unknown representation fields {sorted(unknown)}")
        return cls(**config)

    def save(self, directory):
        path = os.path.join(directory, FILENAME)
        return cli.write_json(path, self.get_config(), indent=2)

    @classmethod
    def load(cls, directory):
        path = os.path.join(directory, FILENAME)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} not found: is {directory!r} a train_dir written by run_training.py?")
        with open(path) as f:
            return cls.from_config(json.load(f))
