"""gansynth-tf: a Keras 3 / TensorFlow port of GANSynth for genre-conditioned audio."""

__version__ = "0.1.0"
