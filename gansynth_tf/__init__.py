"""gansynth-tf: a Keras 3 / TensorFlow port of GANSynth for genre-conditioned audio."""

import os

# Every command imports this package before TensorFlow. TensorFlow 2.17 logs "Unable to
# register cuDNN/cuFFT/cuBLAS factory" at ERROR level on every import, GPU or not, so
# level 2 (warnings off) still shows them; 3 keeps the console readable, and Python
# exceptions still report real failures. A level the user set (0 shows everything) wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
