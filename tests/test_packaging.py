"""The installed package (`pip install -e .`): importable from anywhere, console scripts on
the venv's PATH, each entry point wired to a command and exiting 0 on success."""
import importlib.metadata
import os
import shutil
import subprocess
import sys
import types

import pytest

import gansynth_tf
from gansynth_tf import console

SCRIPTS = {"gansynth-train": "train", "gansynth-generate": "generate",
           "gansynth-export": "export", "gansynth-evaluate": "evaluate",
           "gansynth-demo": "demo"}
BIN = os.path.dirname(sys.executable)


def _run(args, cwd):
    # No PYTHONPATH: the package must come from the installation, not from the checkout;
    # no TF_CPP_MIN_LOG_LEVEL (conftest sets one): the entry must quieten TensorFlow itself.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_a_command_runs_from_outside_the_checkout(tmp_path):
    result = _run([sys.executable, "-m", "gansynth_tf.generate", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--output_dir" in result.stdout and "--genre" in result.stdout


def test_the_console_scripts_are_installed_and_point_at_the_entries():
    dist = importlib.metadata.distribution("gansynth-tf")
    assert dist.version == gansynth_tf.__version__
    points = {ep.name: ep for ep in dist.entry_points if ep.group == "console_scripts"}
    assert set(points) == set(SCRIPTS)
    for script, entry in SCRIPTS.items():
        assert shutil.which(script, path=BIN), f"{script} not in {BIN}"
        assert points[script].load() is getattr(console, entry)


def test_the_train_script_parses_the_trainers_flags(tmp_path):
    # absl's --helpfull exits 1 by design; it lists the trainer's flags under the module
    # that defines them.
    result = _run([shutil.which("gansynth-train", path=BIN), "--helpfull"], tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "gansynth_tf.train_flags:" in result.stdout and "--train_dir" in result.stdout
    assert "Unable to register" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("entry", ["generate", "export", "evaluate", "demo"])
def test_an_entry_exits_0_whatever_main_returns_and_passes_failures_on(entry, monkeypatch):
    # The mains return a manifest, a folder or the metrics: sys.exit would print it, exit 1.
    results = iter([{"files": ["a.wav"]}, "/runs/export"])
    fake = types.SimpleNamespace(main=lambda: next(results))
    monkeypatch.setitem(sys.modules, f"gansynth_tf.{entry}", fake)
    assert getattr(console, entry)() == 0
    assert getattr(console, entry)() == 0

    def fails():
        raise SystemExit(f"{entry}: --train_dir is required")

    fake.main = fails
    with pytest.raises(SystemExit, match="--train_dir is required"):
        getattr(console, entry)()


def test_a_built_wheel_holds_every_subpackage_and_the_shipped_model(tmp_path):
    # An editable install finds subpackages from the checkout; a wheel holds only what
    # pyproject's package list names, so a new subpackage must be listed there.
    import zipfile  # pylint: disable=import-outside-toplevel

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         root, "-w", str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    names = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    package = os.path.join(root, "gansynth_tf")
    for folder, _, files in os.walk(package):
        if "__init__.py" in files and "__pycache__" not in folder:
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            assert f"{rel}/__init__.py" in names, rel
    assert "gansynth_tf/models/quickstart/saved_model.pb" in names
