"""Train gansynth-tf: `python run_training.py --flagfile=flags/quickstart.cfg`.

Every flag is listed with `python run_training.py --helpfull`; the flagfiles in flags/ are
ready-made configurations. Rerunning the same command resumes from the last checkpoint.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from gansynth_tf import train  # noqa: E402

if __name__ == "__main__":
    app.run(train.main)
