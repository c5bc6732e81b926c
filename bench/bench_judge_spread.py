"""How much a run's scores depend on its judges: one checkpoint, judges trained anew.

`evaluate` trains its two judges (the neural classifier and the feature judge) on clips of
the run's training tracks; how many clips (--num_classifier_train) and the seed decide
which judges come out. Generated clips sit far from the real ones, so two judges with the
same real ceiling can disagree about them. This runs `python -m gansynth_tf.evaluate` on
one run for every (clips per genre, seed) pair, each with its own freshly trained judges,
and tabulates every evaluation and the spread (mean, min-max) of each metric:

    python bench/bench_judge_spread.py --train_dir=runs/music_s20 \
        --num_classifier_train=100,150,250 --seeds=0,1 \
        --output_dir=bench/results/judge_spread_s20

With --classifier_members=M every neural judge is an ensemble of M classifiers (seeds S,
S + 1, ..., S + M - 1; give seeds M apart so that no two judges share a member), and the
table also gives the spread of the members' own generated accuracy.

Writes <output_dir>/eval_n<N>_s<S>.json (each evaluation's metrics; _m<M> added for
ensembles), spread.json and spread.md. The judges and evaluate's own tables and sheets go
to <output_dir>/judges/ (not for committing); an evaluation whose JSON exists is not run
again.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "The run to evaluate (its latest checkpoint).")
flags.DEFINE_string("checkpoint", None, "A checkpoint of the run instead of its latest.")
flags.DEFINE_list("num_classifier_train", ["100", "150"], "Training-track clips per genre "
                  "the judges learn from; one set of judges per value and seed.")
flags.DEFINE_list("seeds", ["0", "1"], "evaluate --seed values (classifier initialisation, "
                  "generated latents, k-means).")
flags.DEFINE_integer("classifier_epochs", 15, "Classifier epochs.")
flags.DEFINE_integer("classifier_members", 1, "Classifiers per neural judge (evaluate "
                     "--classifier_members).")
flags.DEFINE_integer("num_generated_per_genre", 60, "Generated clips per genre.")
flags.DEFINE_float("truncation", 1.0, "Latent scale.")
flags.DEFINE_string("output_dir", None, "Where the results go.")
flags.mark_flags_as_required(["train_dir", "output_dir"])

KEYS = (("real_accuracy", "classifier real"), ("generated_accuracy", "classifier generated"),
        ("judge2_real_accuracy", "feature judge real"),
        ("judge2_generated_accuracy", "feature judge generated"),
        ("frechet_distance", "FD"), ("diversity_l1_ratio", "diversity L1"))


def evaluate_once(n, seed, members):
    name = f"n{n}_s{seed}" + (f"_m{members}" if members > 1 else "")
    out = os.path.join(FLAGS.output_dir, f"eval_{name}.json")
    if not os.path.exists(out):
        # evaluate's own sheets (a PNG each) stay with the judges, outside what is committed.
        work = os.path.join(FLAGS.output_dir, "judges", name)
        cmd = [sys.executable, "-m", "gansynth_tf.evaluate", f"--train_dir={FLAGS.train_dir}",
               "--retrain_classifier", f"--classifier_dir={work}",
               f"--num_classifier_train={n}", f"--classifier_epochs={FLAGS.classifier_epochs}",
               f"--classifier_members={members}",
               f"--num_generated_per_genre={FLAGS.num_generated_per_genre}",
               f"--truncation={FLAGS.truncation}", f"--seed={seed}",
               f"--output_json={os.path.join(work, 'eval', 'metrics.json')}"]
        if FLAGS.checkpoint:
            cmd.append(f"--checkpoint={FLAGS.checkpoint}")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(os.path.join(work, "eval", "metrics.json"), out)
    with open(out, encoding="utf-8") as f:
        return {"num_classifier_train": int(n), "seed": int(seed), "members": int(members),
                "metrics": json.load(f)}


def mean_range(s, fmt):
    return f"{s['mean']:{fmt}} ({s['min']:{fmt}}-{s['max']:{fmt}})"


def report(rows):
    head = ("| clips per genre | seed | members | " + " | ".join(label for _, label in KEYS)
            + " | members' generated |")
    lines = [head, "|" + "---|" * (len(KEYS) + 4)]
    for r in rows:
        m = r["metrics"]
        each = m.get("generated_accuracy_members", [m["generated_accuracy"]])
        lines.append(f"| {r['num_classifier_train']} | {r['seed']} | {r.get('members', 1)} | "
                     + " | ".join(f"{m[k]:.3f}" for k, _ in KEYS)
                     + f" | {min(each):.3f}-{max(each):.3f} |")
    spread = {}
    for k, _ in KEYS:
        v = np.array([r["metrics"][k] for r in rows], dtype=float)
        spread[k] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    ratios = {
        "classifier": np.array([r["metrics"]["generated_accuracy"]
                                / r["metrics"]["real_accuracy"] for r in rows]),
        "feature_judge": np.array([r["metrics"]["judge2_generated_accuracy"]
                                   / r["metrics"]["judge2_real_accuracy"] for r in rows])}
    for name, v in ratios.items():
        spread[f"{name}_ratio"] = {"mean": float(v.mean()), "min": float(v.min()),
                                   "max": float(v.max())}
    # Every member of every ensemble is also one classifier's verdict: the spread a
    # single-network judge would have had, from the same evaluations.
    single = np.array([a for r in rows
                       for a in r["metrics"].get("generated_accuracy_members",
                                                 [r["metrics"]["generated_accuracy"]])])
    spread["member_generated_accuracy"] = {"mean": float(single.mean()),
                                           "min": float(single.min()),
                                           "max": float(single.max()), "count": len(single)}
    lines += ["", f"Over {len(rows)} sets of judges: "
              + "; ".join(f"{label} {mean_range(spread[k], '.3f')}" for k, label in KEYS)
              + f"; generated / real: classifier {mean_range(spread['classifier_ratio'], '.2f')}"
              + f", feature judge {mean_range(spread['feature_judge_ratio'], '.2f')}"
              + f"; each classifier member alone ({spread['member_generated_accuracy']['count']}):"
              + f" generated {mean_range(spread['member_generated_accuracy'], '.3f')}."]
    return "\n".join(lines) + "\n", spread


def shared_members(seeds, members):
    """Pairs of seeds whose ensembles would share a member (seed ranges overlap)."""
    seeds = sorted(int(s) for s in seeds)
    return [(a, b) for a, b in zip(seeds, seeds[1:]) if b - a < members]


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    members = FLAGS.classifier_members
    for a, b in shared_members(FLAGS.seeds, members):
        raise app.UsageError(f"--seeds {a} and {b} are less than --classifier_members={members} "
                             "apart, so their judges would share members: give seeds "
                             f"{members} apart (e.g. 0,{members},{2 * members})")
    rows = []
    for n in FLAGS.num_classifier_train:
        for seed in FLAGS.seeds:
            rows.append(evaluate_once(n, seed, members))
            m = rows[-1]["metrics"]
            print(f"n={n} seed={seed} members={members}: classifier {m['real_accuracy']:.3f} / "
                  f"{m['generated_accuracy']:.3f}, feature judge "
                  f"{m['judge2_real_accuracy']:.3f} / {m['judge2_generated_accuracy']:.3f}",
                  flush=True)
    text, spread = report(rows)
    with open(os.path.join(FLAGS.output_dir, "spread.md"), "w", encoding="utf-8") as f:
        f.write(f"Judge spread of {FLAGS.train_dir} (psi {FLAGS.truncation:g}); command: "
                f"python bench/bench_judge_spread.py {' '.join(sys.argv[1:])}\n\n{text}")
    with open(os.path.join(FLAGS.output_dir, "spread.json"), "w", encoding="utf-8") as f:
        json.dump({"train_dir": FLAGS.train_dir, "truncation": FLAGS.truncation,
                   "runs": rows, "spread": spread}, f, indent=1)
    print(text)


if __name__ == "__main__":
    app.run(main)
