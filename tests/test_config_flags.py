"""The data flags are defined once and shared by train and evaluate."""
import dataclasses
import subprocess
import sys

import pytest
from absl import flags

from gansynth_tf import datasets, evaluate


def test_data_flags_match_data_config_fields_and_defaults():
    fv = flags.FlagValues()
    datasets.define_data_flags(fv)
    fields = {f.name: f.default for f in dataclasses.fields(datasets.DataConfig)}
    for name in datasets.DATA_FLAG_NAMES:
        assert name in fields, name
        # One default for a setting: the flag's is the DataConfig's.
        assert fv[name].default == fields[name], name
    fv(["prog", "--dataset=folder", "--data_dir=/a b", "--nocache", "--clips_per_file=2"])
    cfg = datasets.config_from_flags(fv)
    assert (cfg.dataset, cfg.data_dir, cfg.cache, cfg.clips_per_file) == (
        "folder", "/a b", False, 2)


def test_evaluate_defines_the_same_data_flags_as_overrides():
    fv = evaluate.make_flags()
    train_fv = flags.FlagValues()
    datasets.define_data_flags(train_fv)
    for name in evaluate.DATA_FLAGS:
        assert fv[name].default is None, name
        assert type(fv[name]) is type(train_fv[name]), name
        assert "data.json" in fv[name].help
    with pytest.raises(ValueError, match="not data flags"):
        datasets.define_data_flags(flags.FlagValues(), ("dataset", "sample_rate"))


def test_python_m_train_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "gansynth_tf.train", "--helpfull"],
                            capture_output=True, text=True, timeout=120)
    # absl's --helpfull exits with status 1 after printing; the text is the check.
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "--holdout_fraction" in result.stdout and "--gp_weight" in result.stdout
