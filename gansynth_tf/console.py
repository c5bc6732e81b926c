"""Entry points of the console scripts (pyproject.toml, [project.scripts]).

    gansynth-train     = python run_training.py
    gansynth-generate  = python -m gansynth_tf.generate
    gansynth-export    = python -m gansynth_tf.export
    gansynth-evaluate  = python -m gansynth_tf.evaluate
    gansynth-demo      = python -m gansynth_tf.demo

A console script exits with `sys.exit(entry())`. The commands' main() functions return
what they made (the manifest, the export folder, the metrics) for callers in Python, and
sys.exit would print that and exit with status 1; these entries return 0 instead.
Failures still leave through SystemExit with the command's message and status.
"""

import importlib
import sys


def _run(name):
    importlib.import_module(f"gansynth_tf.{name}").main()
    return 0


def train():
    # absl's app.run parses the global FLAGS that train.py defines, like run_training.py.
    from absl import app  # pylint: disable=import-outside-toplevel

    from gansynth_tf import train as train_lib  # pylint: disable=import-outside-toplevel

    app.run(train_lib.main, argv=sys.argv)


def generate():
    return _run("generate")


def export():
    return _run("export")


def evaluate():
    return _run("evaluate")


def demo():
    return _run("demo")
