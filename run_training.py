"""Train gansynth-tf: `python run_training.py --flagfile=flags/quickstart.cfg`.

Every flag is listed with `python run_training.py --helpfull`; the flagfiles in flags/ are
ready-made configurations. Rerunning the same command resumes from the last checkpoint.
"""
from absl import app

# The package sets TensorFlow's C++ log level before TensorFlow is imported (see
# gansynth_tf/__init__.py).
from gansynth_tf import train

if __name__ == "__main__":
    app.run(train.main)
