"""The headline experiment: genre accuracy and diversity, with and without mode seeking.

Trains the quickstart configuration on the embedded synthetic genres once per
--mode_seeking_weights value (same seed, same data, same budget, one run after the
other so each has the whole machine), evaluates every run with `gansynth_tf.evaluate`
against ONE shared genre classifier, and writes a comparison:

    python bench/bench_quality.py                        # ~1 h on 2 CPU cores
    python bench/bench_quality.py --runs_dir=/tmp/q --train_flags=--total_images=20000

    <output_dir>/quality.json   every run's metrics, wall-clock and command
    <output_dir>/quality.md     the comparison table (with the targets)
    <output_dir>/quality.png    per-genre accuracy and diversity of every run
    <output_dir>/samples_ms<w>.png   spectrogram sheet of each run (generate.py)

With --truncations=1,0.7 every run is also evaluated with its latents scaled by 0.7 (the
truncation trick; `evaluate --truncation`): one more column per run and value.

Rerunning resumes: a finished run is not retrained (its training command exits at once),
so only the evaluation is repeated.
"""

import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("flagfile_path", os.path.join(REPO, "flags", "quickstart.cfg"),
                    "Training configuration shared by all runs.")
flags.DEFINE_list("mode_seeking_weights", ["0", "1"], "One run per weight.")
flags.DEFINE_integer("seed", 0, "Seed of every run (weights, data order, latents).")
flags.DEFINE_string("runs_dir", os.path.join(REPO, "runs", "quality"), "Where the runs go.")
flags.DEFINE_string("output_dir", os.path.join(REPO, "bench", "results", "quality"),
                    "Where the comparison goes.")
flags.DEFINE_list("train_flags", [], "Extra flags for run_training.py, e.g. "
                  "--train_flags=--total_images=20000.")
flags.DEFINE_list("eval_flags", [], "Extra flags for gansynth_tf.evaluate.")
flags.DEFINE_list("truncations", ["1"], "Evaluate every run at each of these latent "
                  "scales (evaluate --truncation).")
flags.DEFINE_integer("samples_per_genre", 4, "Clips per genre in each spectrogram sheet.")
flags.DEFINE_string("output_json", None, "Also copy quality.json here (run_all.sh).")

# The headline issue's targets.
TARGET_ACCURACY = 0.8
TARGET_DIVERSITY = 0.7


def _run(cmd, log_path):
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    t0 = time.time()
    with open(log_path, "a") as log:
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise SystemExit(f"command failed (rc {proc.returncode}); see {log_path}")
    return time.time() - t0


def _row(name, fmt, runs, key):
    return f"| {name} | " + " | ".join(fmt(r["metrics"].get(key)) for r in runs) + " |"


def _f3(v):
    return "n/a" if v is None else f"{v:.3f}"


def _label(r, short=False):
    psi = r.get("truncation", 1.0)
    base = f"ms {r['weight']:g}" if short else f"mode seeking {r['weight']:g}"
    return base if psi == 1.0 else f"{base}, psi {psi:g}"


def markdown(runs):
    head = "| metric | " + " | ".join(_label(r) for r in runs) + " |"
    lines = [head, "|---|" + "---|" * len(runs),
             _row(f"genre accuracy of generated clips (target >= {TARGET_ACCURACY})", _f3,
                  runs, "generated_accuracy"),
             _row("genre accuracy of real clips (ceiling)", _f3, runs, "real_accuracy"),
             _row(f"intra-genre diversity L1, generated / real (target >= {TARGET_DIVERSITY})",
                  _f3, runs, "diversity_l1_ratio"),
             _row("intra-genre diversity L2, generated / real", _f3, runs, "diversity_l2_ratio"),
             _row("Frechet distance (classifier embedding)", _f3, runs, "frechet_distance"),
             _row("NDB/K", _f3, runs, "ndb_k"),
             _row("mean per-clip entropy (nats)", _f3, runs, "mean_entropy"),
             _row("marginal entropy (nats)", _f3, runs, "marginal_entropy"),
             "| images trained | " + " | ".join(str(r["metrics"].get("images_seen")) for r in runs)
             + " |",
             "| training wall-clock (min) | " + " | ".join(
                 "n/a" if r["train_seconds"] is None else f"{r['train_seconds'] / 60:.1f}"
                 for r in runs) + " |"]
    genres = list(runs[0]["metrics"]["per_genre"])
    lines += ["", "| genre | " + " | ".join(
        f"acc {_label(r, True)} | div {_label(r, True)}" for r in runs) + " |",
        "|---|" + "---|---|" * len(runs)]
    for g in genres:
        cells = []
        for r in runs:
            pg = r["metrics"]["per_genre"][g]
            cells += [_f3(pg["generated_accuracy"]), _f3(pg["diversity_l1_ratio"])]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    genres = list(runs[0]["metrics"]["per_genre"])
    x = np.arange(len(genres))
    width = 0.8 / (len(runs) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    real = [runs[0]["metrics"]["per_genre"][g]["real_accuracy"] for g in genres]
    ax1.bar(x - 0.4 + width / 2, real, width, color="#999999", label="real (ceiling)")
    for i, r in enumerate(runs, 1):
        pg = r["metrics"]["per_genre"]
        label = f"{_label(r, True)}: {r['metrics']['generated_accuracy']:.2f}"
        ax1.bar(x - 0.4 + width * (i + 0.5), [pg[g]["generated_accuracy"] for g in genres],
                width, label=label)
        ax2.bar(x - 0.4 + width * (i + 0.5), [pg[g]["diversity_l1_ratio"] for g in genres],
                width, label=f"{_label(r, True)}: {r['metrics']['diversity_l1_ratio']:.2f}")
    ax1.axhline(TARGET_ACCURACY, color="black", lw=0.8, ls="--")
    ax2.axhline(TARGET_DIVERSITY, color="black", lw=0.8, ls="--")
    ax2.axhline(1.0, color="#999999", lw=0.8, ls=":")
    ax1.set_title("genre accuracy of generated clips (-- target)")
    ax2.set_title("intra-genre diversity L1, generated / real (-- target)")
    # Headroom for a legend of up to two rows above the bars.
    ax1.set_ylim(0, 1.45)
    ratios = [r["metrics"]["per_genre"][g]["diversity_l1_ratio"] or 0.0 for r in runs
              for g in genres]
    ax2.set_ylim(0, max(1.55, 1.3 * max(ratios)))  # headroom for the legend
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(genres, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=7, loc="upper center", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv):
    del argv
    os.makedirs(FLAGS.runs_dir, exist_ok=True)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    classifier_dir = os.path.join(FLAGS.runs_dir, "eval_classifier")
    runs = []
    for w in FLAGS.mode_seeking_weights:
        weight = float(w)
        name = f"ms{weight:g}"
        train_dir = os.path.join(FLAGS.runs_dir, name)
        log = os.path.join(FLAGS.runs_dir, name + ".log")
        train = [sys.executable, "run_training.py", f"--flagfile={FLAGS.flagfile_path}",
                 f"--train_dir={train_dir}", f"--mode_seeking_weight={weight:g}",
                 f"--seed={FLAGS.seed}", "--verbose=2", *FLAGS.train_flags]
        seconds = _run(train, log)
        evaluations = []
        for psi in (float(t) for t in FLAGS.truncations):
            suffix = "" if psi == 1.0 else f"_psi{psi:g}"
            out_json = os.path.join(FLAGS.output_dir, f"{name}{suffix}_metrics.json")
            evaluate = [sys.executable, "-m", "gansynth_tf.evaluate",
                        f"--train_dir={train_dir}", f"--classifier_dir={classifier_dir}",
                        f"--output_json={out_json}", f"--seed={FLAGS.seed}",
                        f"--truncation={psi:g}", *FLAGS.eval_flags]
            _run(evaluate, log)
            evaluations.append((psi, evaluate, out_json))
        sheet_dir = os.path.join(FLAGS.runs_dir, name + "_samples")
        _run([sys.executable, "-m", "gansynth_tf.generate", f"--train_dir={train_dir}",
              f"--output_dir={sheet_dir}", f"--num_samples={FLAGS.samples_per_genre}",
              f"--seed={FLAGS.seed}"], log)
        with open(os.path.join(sheet_dir, "sheet.png"), "rb") as src, open(
                os.path.join(FLAGS.output_dir, f"samples_{name}.png"), "wb") as dst:
            dst.write(src.read())
        # A resumed, already finished run trains for ~0 s: keep the first measured time.
        times_path = os.path.join(train_dir, "bench_quality_train_seconds.json")
        if os.path.exists(times_path) and seconds < 60:
            with open(times_path) as f:
                seconds = json.load(f)["seconds"]
        else:
            with open(times_path, "w") as f:
                json.dump({"seconds": seconds}, f)
        for psi, evaluate, out_json in evaluations:
            with open(out_json) as f:
                metrics = json.load(f)
            runs.append({"weight": weight, "truncation": psi, "train_dir": train_dir,
                         "train_seconds": seconds, "train_command": train,
                         "eval_command": evaluate, "metrics": metrics})
    result = {"runs": runs, "targets": {"generated_accuracy": TARGET_ACCURACY,
                                        "diversity_l1_ratio": TARGET_DIVERSITY}}
    table = markdown(runs)
    print(table)
    for path in [os.path.join(FLAGS.output_dir, "quality.json")] + (
            [FLAGS.output_json] if FLAGS.output_json else []):
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
    with open(os.path.join(FLAGS.output_dir, "quality.md"), "w") as f:
        f.write(table)
    plot(runs, os.path.join(FLAGS.output_dir, "quality.png"))
    print("wrote", FLAGS.output_dir)


if __name__ == "__main__":
    app.run(main)
