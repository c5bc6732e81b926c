"""What --deterministic costs: training images/s of the quickstart with and without it.

Runs run_training.py itself (input pipeline included, since the flag also keeps tf.data's
order) on flags/quickstart.cfg with one-step phases, so the run reaches the final stage
(32x128) after 7 steps; then times --steps steps there from the trainer's own
progress/images_per_second scalars (one per step), after --warmup untimed ones. The two
settings alternate --repeats times, so a change in machine load hits both.

    python bench/bench_determinism.py --output_json=bench/results/determinism.json
"""
import os
import statistics
import subprocess
import sys
import tempfile

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 30, "Timed steps at the final stage per run.")
flags.DEFINE_integer("warmup", 3, "Untimed steps at the final stage (tracing, caches).")
flags.DEFINE_integer("repeats", 2, "Runs per setting, alternating.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

PHASE_STEPS_TO_FINAL = 7  # quickstart: 4 stages = 7 phases of one step each at batch 16


def images_per_second(train_dir, first_step):
    rates = {}
    for name in os.listdir(train_dir):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(train_dir, name)):
                for value in event.summary.value:
                    if value.tag == "progress/images_per_second" and event.step >= first_step:
                        rates[event.step] = float(tf.make_ndarray(value.tensor))
    return [rates[s] for s in sorted(rates)]


def run_once(deterministic, folder):
    train_dir = os.path.join(folder, "det" if deterministic else "default")
    steps = PHASE_STEPS_TO_FINAL + FLAGS.warmup + FLAGS.steps
    cmd = [sys.executable, os.path.join(bc.REPO, "run_training.py"),
           "--flagfile=" + os.path.join(bc.REPO, "flags", "quickstart.cfg"),
           f"--train_dir={train_dir}", "--stable_images=16", "--transition_images=16",
           f"--max_steps={steps}", "--total_images=1000000", "--summary_every_steps=1",
           "--audio_summary_every_steps=0", "--checkpoint_every_steps=100000",
           "--export_at_end=false", "--verbose=0", "--normalizer_examples=64",
           f"--{'' if deterministic else 'no'}deterministic"]
    subprocess.run(cmd, check=True, cwd=bc.REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    rates = images_per_second(train_dir, PHASE_STEPS_TO_FINAL + FLAGS.warmup + 1)
    assert len(rates) == FLAGS.steps, (len(rates), FLAGS.steps)
    return rates


def main(argv):
    del argv
    info = {"machine": bc.machine_info(), "tf": bc.tf_device_info(tf), "steps": FLAGS.steps,
            "warmup": FLAGS.warmup, "runs": {"default": [], "deterministic": []}}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(FLAGS.repeats):
            for deterministic in (False, True):
                rates = run_once(deterministic, os.path.join(folder, str(repeat)))
                info["runs"]["deterministic" if deterministic else "default"].append(rates)
    medians = {k: statistics.median(r for run in runs for r in run)
               for k, runs in info["runs"].items()}
    info["median_images_per_second"] = medians
    info["deterministic_relative_speed"] = medians["deterministic"] / medians["default"]
    bc.finish(info)
    print(bc.markdown_table(
        ["setting", "images/s (median)", "relative"],
        [[k, f"{v:.1f}", f"{v / medians['default']:.2f}"] for k, v in medians.items()]))
    bc.write_json(FLAGS.output_json, info)


if __name__ == "__main__":
    app.run(main)
