"""Real-music headline: runs of flags/music_cpu.cfg evaluated on held-out tracks, over images.

Every checkpoint of every run named in --runs (NAME=TRAIN_DIR) whose images seen are in
--images (default: all kept checkpoints) is evaluated against ONE set of held-out real clips
and ONE pair of judges (the neural classifier and the feature judge; `evaluate.prepare_real`
on the first run, whose split every run shares when they trained on the same data with the
same --holdout_fraction), at each --truncations value. Writes

    <output_dir>/music.json    every evaluation's metrics
    <output_dir>/music.md      every evaluation, each run's mean over its last --mean_last
                               checkpoints, and the per-genre figures
    <output_dir>/curve.png     accuracy (both judges), FD and diversity against images seen

Beside the real ceiling it scores the held-out clips after a round trip through the run's
representation (waves -> normalised mel-IF features -> waves): what a generator that drew
exactly the held-out clips, in this representation, would score.

    python bench/bench_music.py --runs=ms1=runs/music/ms1,ms0=runs/music/ms0 \
        --output_dir=bench/results/music
    python bench/bench_music.py --from_json=bench/results/music/music.json \
        --output_dir=bench/results/music      # tables and plot again, no evaluation
"""

import json
import os

import numpy as np

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import evaluate, generate, split  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", None, "NAME=TRAIN_DIR pairs; the first one's split and data "
                  "define the real clips.")
flags.DEFINE_list("images", None, "Evaluate the checkpoints at these images seen (default: "
                  "every kept checkpoint).")
flags.DEFINE_list("truncations", ["1"], "Latent scales.")
flags.DEFINE_integer("num_real", 100, "Held-out real clips per genre.")
flags.DEFINE_integer("num_classifier_train", 150, "Training-track clips per genre for the judges.")
flags.DEFINE_integer("num_generated_per_genre", 60, "Generated clips per genre.")
flags.DEFINE_integer("classifier_epochs", 15, "Classifier epochs.")
flags.DEFINE_integer("classifier_members", 1, "Classifiers in the neural judge (evaluate "
                     "--classifier_members); 1, the benchmark's judge since session 9, keeps "
                     "its figures comparable with earlier runs.")
flags.DEFINE_string("classifier_dir", None, "Where the shared judges are saved (default "
                    "<first run>/../eval_classifier).")
flags.DEFINE_string("output_dir", "bench/results/music", "Where the results go.")
flags.DEFINE_integer("mean_last", 3, "Also tabulate each run's metrics averaged over its "
                     "last N evaluated checkpoints (min-max beside): one checkpoint swings "
                     "by as much as the levers compared.", lower_bound=1)
flags.DEFINE_string("from_json", None, "Only rewrite music.md and curve.png in --output_dir "
                    "from this music.json (no evaluation).")

CURVE_KEYS = (("generated_accuracy", "classifier: generated"),
              ("judge2_generated_accuracy", "feature judge: generated"))


def checkpoints(train_dir):
    """[(images_seen, path)] of the run's kept checkpoints, oldest first."""
    state = tf.train.get_checkpoint_state(os.path.join(train_dir, "checkpoints"))
    out = []
    for path in (state.all_model_checkpoint_paths if state else []):
        images = tf.Variable(0, dtype=tf.int64)
        tf.train.Checkpoint(images_seen=images).restore(path).expect_partial()
        out.append((int(images.numpy()), path))
    return sorted(out)


def representation_ceiling(rep, real, batch_size=16):
    """Both judges' accuracy on the held-out clips after rep's round trip."""
    out = []
    for i in range(0, len(real.waves), batch_size):
        features = rep.waves_to_features(tf.constant(real.waves[i:i + batch_size, :, None]))
        out.append(rep.features_to_waves(features).numpy())
    waves = np.concatenate(out).astype(np.float32)
    return {"classifier": real.classifier.accuracy(waves, real.labels),
            "feature_judge": real.judge.accuracy(waves, real.labels),
            "num_clips": int(len(waves))}


def _f(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def table(rows):
    head = ("| run | images | psi | classifier real / generated | feature judge real / "
            "generated | FD gen-real (real-real) | NDB/K | diversity L1 |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["metrics"]
        lines.append(
            f"| {r['run']} | {m['images_seen']} | {m['truncation']:g} | "
            f"{_f(m['real_accuracy'])} / **{_f(m['generated_accuracy'])}** | "
            f"{_f(m['judge2_real_accuracy'])} / **{_f(m['judge2_generated_accuracy'])}** | "
            f"{_f(m['frechet_distance'], 2)} ({_f(m['frechet_distance_real_vs_real'], 2)}) | "
            f"{_f(m['ndb_k'])} | {_f(m['diversity_l1_ratio'])} |")
    return "\n".join(lines) + "\n"


MEAN_KEYS = (("generated_accuracy", "classifier", 3), ("judge2_generated_accuracy",
                                                       "feature judge", 3),
             ("frechet_distance", "FD", 2), ("ndb_k", "NDB/K", 3),
             ("diversity_l1_ratio", "diversity L1", 3))


def mean_last(rows, n):
    """[{run, truncation, images: [...], <key>: (mean, min, max)}] over each run's and
    truncation's last `n` evaluated checkpoints (fewer where fewer were evaluated)."""
    out = []
    for run, psi in dict.fromkeys((r["run"], r["metrics"]["truncation"]) for r in rows):
        sel = sorted((r["metrics"] for r in rows
                      if r["run"] == run and r["metrics"]["truncation"] == psi),
                     key=lambda m: m["images_seen"])[-n:]
        entry = {"run": run, "truncation": psi, "images": [m["images_seen"] for m in sel]}
        for key, _, _ in MEAN_KEYS:
            values = [m[key] for m in sel if m.get(key) is not None]
            entry[key] = ((float(np.mean(values)), min(values), max(values)) if values
                          else None)
        out.append(entry)
    return out


def mean_table(summary):
    lines = ["| run | psi | checkpoints (images) | " + " | ".join(
        f"{name} mean (min-max)" for _, name, _ in MEAN_KEYS) + " |",
        "|---|---|---|" + "---|" * len(MEAN_KEYS)]
    for e in summary:
        cells = []
        for key, _, digits in MEAN_KEYS:
            v = e[key]
            cells.append("n/a" if v is None else
                         f"**{v[0]:.{digits}f}** ({v[1]:.{digits}f}-{v[2]:.{digits}f})")
        lines.append(f"| {e['run']} | {e['truncation']:g} | "
                     f"{', '.join(f'{i // 1000}k' for i in e['images'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def per_genre_table(rows):
    genres = list(rows[0]["metrics"]["per_genre"])
    lines = ["| run | images | psi | " + " | ".join(
        f"{g}: clf / judge 2 / div" for g in genres) + " |",
        "|---|---|---|" + "---|" * len(genres)]
    for r in rows:
        m = r["metrics"]
        cells = [f"{_f(m['per_genre'][g]['generated_accuracy'], 2)} / "
                 f"{_f(m['per_genre'][g]['judge2_generated_accuracy'], 2)} / "
                 f"{_f(m['per_genre'][g]['diversity_l1_ratio'], 2)}" for g in genres]
        lines.append(f"| {r['run']} | {m['images_seen']} | {m['truncation']:g} | "
                     + " | ".join(cells) + " |")
    m = rows[0]["metrics"]
    lines.append("| real (ceiling) | | | " + " | ".join(
        f"{_f(m['per_genre'][g]['real_accuracy'], 2)} / "
        f"{_f(m['per_genre'][g]['judge2_real_accuracy'], 2)} / 1" for g in genres) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path, ceiling=None):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.5))
    # One colour per run and truncation in all three panels; the two judges differ by style.
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, psi) in enumerate(sorted({(r["run"], r["metrics"]["truncation"])
                                           for r in rows})):
        colour = colours[i % len(colours)]
        sel = sorted((r["metrics"] for r in rows
                      if r["run"] == run and r["metrics"]["truncation"] == psi),
                     key=lambda m: m["images_seen"])
        x = [m["images_seen"] / 1000 for m in sel]
        label = run if psi == 1 else f"{run}, psi {psi:g}"
        for (key, name), style in zip(CURVE_KEYS, ("-o", "--s")):
            axes[0].plot(x, [m[key] for m in sel], style, color=colour,
                         label=f"{label} {name}")
        axes[1].plot(x, [m["frechet_distance"] for m in sel], "-o", color=colour, label=label)
        axes[2].plot(x, [m["diversity_l1_ratio"] for m in sel], "-o", color=colour,
                     label=label)
    m0 = rows[0]["metrics"]
    axes[0].axhline(m0["real_accuracy"], color="grey", ls=":", label="classifier: real")
    axes[0].axhline(m0["judge2_real_accuracy"], color="black", ls=":",
                    label="feature judge: real")
    if ceiling:
        axes[0].axhline(ceiling["classifier"], color="grey", ls="-.", lw=0.8,
                        label="classifier: real, round trip")
        axes[0].axhline(ceiling["feature_judge"], color="black", ls="-.", lw=0.8,
                        label="feature judge: real, round trip")
    axes[0].axhline(m0["chance_accuracy"], color="black", lw=0.8, label="chance")
    axes[1].axhline(m0["frechet_distance_real_vs_real"], color="grey", ls=":",
                    label="real vs real")
    axes[2].axhline(1.0, color="grey", ls=":")
    axes[2].axhline(0.7, color="black", lw=0.8, ls="--", label="target 0.7")
    for ax, title in zip(axes, ("genre accuracy, held-out judges", "Frechet distance "
                                "(classifier embedding)", "diversity L1, generated / real")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("thousand images seen")
        # Below the axes: inside, the legend covered the 0.4-0.6 band the ceilings run in.
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)
    axes[0].set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(rows, ceiling):
    """music.md and curve.png in --output_dir; returns the Markdown."""
    text = (table(rows) + f"\nMean of each run's last {FLAGS.mean_last} evaluated "
            "checkpoints:\n\n" + mean_table(mean_last(rows, FLAGS.mean_last)) + "\n"
            + per_genre_table(rows) + "\nHeld-out real clips after the "
            f"representation's round trip: classifier {ceiling['classifier']:.3f}, feature "
            f"judge {ceiling['feature_judge']:.3f} (real: "
            f"{rows[0]['metrics']['real_accuracy']:.3f} / "
            f"{rows[0]['metrics']['judge2_real_accuracy']:.3f}).\n")
    with open(os.path.join(FLAGS.output_dir, "music.md"), "w") as f:
        f.write(text)
    plot(rows, os.path.join(FLAGS.output_dir, "curve.png"), ceiling)
    return text


def main(argv):
    del argv
    if FLAGS.from_json:
        with open(FLAGS.from_json) as f:
            saved = json.load(f)
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        print(write_report(saved["rows"], saved["representation_ceiling"]))
        return
    if not FLAGS.runs:
        raise app.UsageError("--runs=NAME=TRAIN_DIR,... (or --from_json) is required.")
    runs = [r.split("=", 1) for r in FLAGS.runs]
    first_dir = runs[0][1]
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    options = evaluate.EvalOptions(
        num_real=FLAGS.num_real, num_classifier_train=FLAGS.num_classifier_train,
        num_generated_per_genre=FLAGS.num_generated_per_genre,
        classifier_epochs=FLAGS.classifier_epochs, classifier_members=FLAGS.classifier_members,
        classifier_dir=FLAGS.classifier_dir or os.path.join(
            os.path.dirname(os.path.abspath(first_dir)), "eval_classifier"))
    first = generate.load_sampler(first_dir)
    rep = first.trained.representation
    real = evaluate.prepare_real(first_dir, first.genres, rep,
                                 evaluate.data_config(first_dir, rep), options)
    ceiling = representation_ceiling(rep, real)
    print(f"held-out real clips after the representation's round trip: classifier "
          f"{ceiling['classifier']:.3f}, feature judge {ceiling['feature_judge']:.3f}",
          flush=True)
    first_split = split.load(first_dir)
    wanted = {int(i) for i in FLAGS.images} if FLAGS.images else None
    rows = []
    for name, train_dir in runs:
        if split.load(train_dir) != first_split:
            raise SystemExit(f"{train_dir} holds out other tracks than {first_dir}: "
                             "runs compared here must share one split")
        for images, path in checkpoints(train_dir):
            if wanted is not None and images not in wanted:
                continue
            for psi in (float(t) for t in FLAGS.truncations):
                sampler = generate.load_sampler(train_dir, checkpoint=path, truncation=psi)
                options.truncation = psi
                m = evaluate.evaluate_sampler(sampler, real, options)
                rows.append({"run": name, "metrics": m})
                print(f"{name} {images} psi {psi:g}: clf {m['generated_accuracy']:.3f} "
                      f"judge2 {m['judge2_generated_accuracy']:.3f} FD "
                      f"{m['frechet_distance']:.2f} div {m['diversity_l1_ratio']:.3f}",
                      flush=True)
                with open(os.path.join(FLAGS.output_dir, "music.json"), "w") as f:
                    json.dump({"representation_ceiling": ceiling, "rows": rows}, f, indent=1)
    print(write_report(rows, ceiling))


if __name__ == "__main__":
    app.run(main)
