"""Evaluates a run's generator against held-out real clips.

    python -m gansynth_tf.evaluate --train_dir=RUN [--num_real=100]
        [--num_generated_per_genre=50] [--classifier_epochs=15] [--classifier_members=5]
        [--tensorboard]

Data flags (--dataset, --data_dir, ...) default to the run's own data.json, and sample rate
and clip length always come from the run's representation.json. Real clips come from the
tracks the run held out (its split.json; :mod:`gansynth_tf.split`): --num_real per genre,
spread over those tracks, are what every metric scores. The judges learn from
--num_classifier_train clips per genre of the training tracks: the neural genre classifier
(classifier.py; saved in RUN/eval_classifier/ and reused by later evaluations of the same
run) and a second, independent judge (feature_judge.py: MFCC / spectral-contrast
statistics + logistic regression). Their accuracy on the held-out real clips is the
ceiling the generated clips are measured against.

Metrics (GANSynth section 4 / Richardson & Weiss 2018; the maths in
:mod:`gansynth_tf.metrics`), in the JSON:

* real_accuracy: the classifier on held-out real clips (the ceiling);
  generated_accuracy: the classifier's genre == the conditioning genre ("pitch accuracy").
  The classifier is --classifier_members networks (default 5) trained from seeds --seed,
  +1, ... and its genre is their mean vote; real_accuracy_members and
  generated_accuracy_members give each network's own (the spread one seed would have had).
  judge2_real_accuracy / judge2_generated_accuracy: the same for the feature judge.
* mean_entropy: mean per-clip entropy of the predicted genre distribution (nats; low =
  confidently one genre); marginal_entropy: entropy of the mean prediction (high = all
  genres produced); max_entropy = ln(num_genres).
* frechet_distance: Frechet distance between Gaussians fitted to the classifier embeddings
  of real and generated clips (an FID analogue); frechet_distance_real_vs_real: the same
  between the held-out real clips and real clips of the training tracks (what a generator
  that matched the training tracks would score).
* ndb, ndb_k: k-means (K bins) on whitened log-mel spectrograms of the real clips; a bin is
  statistically different when a two-proportion z-test of its real vs generated share has
  p < alpha; NDB/K is the fraction of such bins (0 = matches, 1 = every bin differs).
* per-genre diversity: mean pairwise L1 (mean |a - b|) and L2 (RMS) distance between log-mel
  spectrograms of one genre's generated clips, divided by the same for its real clips
  (1 = as diverse as the data, << 1 = mode collapse); diversity_l1_ratio / _l2_ratio are
  the means over genres.
* loud_edge_share_generated / _real: the share of clips whose first or last 50 ms is over
  twice as loud (RMS) as the median of their middle (metrics.edge_ratios). Clips cut from
  music score about 1 at both ends, so a share well above the real one is an artefact of
  the generator (a burst at each end of a clip), which the other metrics barely see.

Writes metrics.json (--output_json, default RUN/eval/metrics.json), metrics.md (the printed
table) and metrics.png beside it, and optionally TensorBoard scalars at the run's
images_seen step.
"""

import dataclasses
import json
import os
import typing

import numpy as np
import tensorflow as tf
from absl import flags, logging

from gansynth_tf import classifier as classifier_lib
from gansynth_tf import datasets, spectral
from gansynth_tf import export as export_lib
from gansynth_tf import generate as generate_lib
from gansynth_tf import representation as representation_lib

# The real clips and the judges live in eval_data and eval_judges; their names still import
# from here (tests, bench/ scripts).
from gansynth_tf.eval_data import (  # noqa: F401
    FLAGS_FILE,
    collect_clips,
    data_config,
    heldout_split,
    read_flagfile,
    real_source,
)
from gansynth_tf.eval_judges import (  # noqa: F401
    CHANCE_MARGIN,
    CLASSIFIER_SUBDIR,
    REFERENCE_FILE,
    RealSet,
    ceiling_warnings,
    compute_metrics,
    load_matching_classifier,
    load_reference,
    prepare_real,
    save_reference,
    train_classifier,
)

EVAL_SUBDIR = "eval"
# Data flags that evaluate accepts as overrides of the run's data.json.
DATA_FLAGS = ("dataset", "data_dir", "fma_metadata", "nsynth_label", "audio_backend",
              "clips_per_file", "synthetic_clips_per_genre", "cache_dir",
              "holdout_fraction")


# ----------------------------------------------------------------------------- evaluation


@dataclasses.dataclass
class EvalOptions:
    """Sizes and switches of one evaluation (the CLI's flags)."""
    num_real: int = 100
    num_classifier_train: int = 150
    num_generated_per_genre: int = 50
    classifier_epochs: int = 15
    classifier_members: int = 5
    retrain_classifier: bool = False
    ndb_bins: int = 50
    ndb_alpha: float = 0.05
    phase: str = "if"
    mel_inversion: typing.Optional[str] = None
    truncation: float = 1.0
    seed: int = 0
    batch_size: int = 16
    classifier_dir: typing.Optional[str] = None



def generate_clips(sampler, num_per_genre, seed, batch_size):
    """num_per_genre clips of every genre: (waves `[G * n, L]`, labels `[G * n]`)."""
    g = sampler.num_genres
    labels = np.repeat(np.arange(g, dtype=np.int32), num_per_genre)
    z = generate_lib.latents(seed, g * num_per_genre, sampler.latent_dim)
    condition = np.eye(g, dtype=np.float32)[labels]
    waves = np.concatenate([sampler.audio(condition[i:i + batch_size], z[i:i + batch_size])
                            for i in range(0, len(z), batch_size)])
    finite = np.isfinite(waves)
    if not finite.all():
        logging.warning("%d non-finite generated samples set to 0", int((~finite).sum()))
    return np.nan_to_num(waves, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), labels



def evaluate_sampler(sampler, real, options):
    """The metrics of one sampler (a run at one checkpoint) against a prepared RealSet."""
    genres, rep = sampler.genres, sampler.trained.representation
    print(f"generating {options.num_generated_per_genre} clips per genre "
          f"(phase={options.phase})", flush=True)
    fake, fake_y = generate_clips(sampler, options.num_generated_per_genre, options.seed,
                                  options.batch_size)
    metrics = compute_metrics(real.classifier, genres, rep.sample_rate, real.waves,
                              real.labels, fake, fake_y, options.ndb_bins, options.ndb_alpha,
                              options.seed, judge=real.judge,
                              reference_embeddings=real.reference_embeddings)
    trained = sampler.trained
    metrics.update({
        "train_dir": trained.train_dir, "checkpoint": trained.checkpoint,
        "images_seen": int(trained.images_seen.numpy()), "stage": int(trained.stage),
        "phase": options.phase, "mel_inversion": rep.mel_inversion,
        "truncation": options.truncation, "genres": list(genres), "seed": options.seed,
        **real.info})
    return metrics


def evaluate(train_dir, data_cfg=None, options=None, checkpoint=None):
    """Runs the whole evaluation of `train_dir`; returns the metrics dict (see module doc).

    data_cfg: a datasets.DataConfig; default from the run's data.json. checkpoint: a
    checkpoint path of the run (default its latest), e.g. for a learning curve.
    """
    options = options or EvalOptions()
    sampler = generate_lib.load_sampler(train_dir, phase=options.phase,
                                        checkpoint=checkpoint,
                                        mel_inversion=options.mel_inversion,
                                        truncation=options.truncation)
    rep = sampler.trained.representation
    data_cfg = data_cfg or data_config(train_dir, rep)
    real = prepare_real(train_dir, sampler.genres, rep, data_cfg, options)
    return evaluate_sampler(sampler, real, options)


# ----------------------------------------------------------------------------- reports


def _fmt(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _member_rows(m):
    """Each classifier member's accuracies, when the judge has more than one."""
    if m.get("classifier_members", 1) <= 1:
        return []
    gen, real = m["generated_accuracy_members"], m["real_accuracy_members"]
    return [f"| classifier members ({m['classifier_members']}): real accuracy each | "
            f"{', '.join(_fmt(v) for v in real)} |",
            f"| classifier members: generated accuracy each (min-max) | "
            f"{', '.join(_fmt(v) for v in gen)} ({_fmt(min(gen))}-{_fmt(max(gen))}) |"]


def markdown_table(m):
    """The summary and per-genre tables as Markdown."""
    lines = [f"Evaluation of {m.get('train_dir', '?')} at {m.get('images_seen', '?')} "
             f"images (phase {m.get('phase', '?')}, mel inverse "
             f"{m.get('mel_inversion', '?')}, truncation {m.get('truncation', 1.0):g}; "
             f"{m['num_real']} real / "
             f"{m['num_generated']} generated clips)", "",
             f"Real clips: {m.get('real_clips_from', '?')}; chance accuracy "
             f"{_fmt(m.get('chance_accuracy'))}.", "",
             "| metric | value |", "| --- | --- |",
             f"| real accuracy (classifier ceiling) | {_fmt(m['real_accuracy'])} |",
             f"| generated genre accuracy | {_fmt(m['generated_accuracy'])} |",
             *_member_rows(m),
             f"| judge 2 ({m.get('judge2_name', 'n/a')}): real accuracy (ceiling) | "
             f"{_fmt(m.get('judge2_real_accuracy'))} |",
             f"| judge 2: generated genre accuracy | "
             f"{_fmt(m.get('judge2_generated_accuracy'))} |",
             f"| mean per-clip entropy (nats) | {_fmt(m['mean_entropy'])} |",
             f"| marginal entropy (nats, max {m['max_entropy']:.3f}) | "
             f"{_fmt(m['marginal_entropy'])} |",
             f"| Frechet distance (classifier embedding), generated vs real | "
             f"{_fmt(m['frechet_distance'])} |",
             f"| Frechet distance, real (training tracks) vs real | "
             f"{_fmt(m.get('frechet_distance_real_vs_real'))} |",
             f"| NDB/K (K={m['ndb_bins']}, alpha {m['ndb_alpha']}) | {_fmt(m['ndb_k'])} "
             f"({m['ndb']} bins) |",
             f"| diversity ratio L1 (generated / real) | {_fmt(m['diversity_l1_ratio'])} |",
             f"| diversity ratio L2 (generated / real) | {_fmt(m['diversity_l2_ratio'])} |",
             f"| clips with a loud edge (first or last 50 ms over 2x the middle), "
             f"generated / real | {_fmt(m.get('loud_edge_share_generated'), 2)} / "
             f"{_fmt(m.get('loud_edge_share_real'), 2)} |",
             "", "| genre | real acc | generated acc | judge 2 real | judge 2 generated | "
             "diversity L1 ratio | diversity L2 ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, g in m["per_genre"].items():
        lines.append(f"| {name} | {_fmt(g['real_accuracy'])} | "
                     f"{_fmt(g['generated_accuracy'])} | "
                     f"{_fmt(g.get('judge2_real_accuracy'))} | "
                     f"{_fmt(g.get('judge2_generated_accuracy'))} | "
                     f"{_fmt(g['diversity_l1_ratio'])} | {_fmt(g['diversity_l2_ratio'])} |")
    lines += [""] + [f"**Warning:** {w}." for w in m.get("warnings", [])]
    return "\n".join(lines) + "\n"


def plot_metrics(m, path):
    """Per-genre accuracy (real vs generated) and diversity-ratio bars as a PNG."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    names = list(m["per_genre"])
    x = np.arange(len(names))
    nan = float("nan")

    def column(key):
        return [nan if m["per_genre"][n][key] is None else m["per_genre"][n][key]
                for n in names]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.4 * len(names) + 4), 3.8))
    ax1.bar(x - 0.3, column("real_accuracy"), 0.2, label="real (ceiling)", color="#999999")
    ax1.bar(x - 0.1, column("generated_accuracy"), 0.2, label="generated", color="#d95f02")
    if m.get("judge2_real_accuracy") is not None:
        ax1.bar(x + 0.1, column("judge2_real_accuracy"), 0.2, label="judge 2 real",
                color="#cccccc")
        ax1.bar(x + 0.3, column("judge2_generated_accuracy"), 0.2, label="judge 2 generated",
                color="#fdae6b")
    ax1.set_ylim(0, 1.3)  # headroom for the legend
    ax1.set_title(f"genre accuracy (generated {_fmt(m['generated_accuracy'])}, judge 2 "
                  f"{_fmt(m.get('judge2_generated_accuracy'))})", fontsize=9)
    ax2.bar(x - 0.2, column("diversity_l1_ratio"), 0.4, label="L1", color="#1b9e77")
    ax2.bar(x + 0.2, column("diversity_l2_ratio"), 0.4, label="L2", color="#7570b3")
    ax2.axhline(1.0, color="black", lw=0.8, ls="--")
    ratios = [v for v in column("diversity_l1_ratio") + column("diversity_l2_ratio")
              if np.isfinite(v)]
    ax2.set_ylim(0, 1.3 * max(ratios + [1.0]))
    ax2.set_title("intra-genre diversity, generated / real")
    for ax in (ax1, ax2):
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"FD {_fmt(m['frechet_distance'], 2)} (real vs real "
                 f"{_fmt(m.get('frechet_distance_real_vs_real'), 2)}), NDB/K {_fmt(m['ndb_k'])}, "
                 f"images {m.get('images_seen', '?')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


SCALARS = ("real_accuracy", "generated_accuracy", "judge2_real_accuracy",
           "judge2_generated_accuracy", "mean_entropy", "marginal_entropy",
           "frechet_distance", "frechet_distance_real_vs_real", "ndb_k",
           "diversity_l1_ratio", "diversity_l2_ratio", "loud_edge_share_generated")


def write_tensorboard(m, logdir, step):
    """Scalars eval/<metric> (and eval/<metric>/<genre>) plus the table as text."""
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for key in SCALARS:
            if m.get(key) is not None:
                tf.summary.scalar(f"eval/{key}", m[key], step=step)
        for name, g in m["per_genre"].items():
            for key in ("generated_accuracy", "judge2_generated_accuracy",
                        "diversity_l1_ratio"):
                if g.get(key) is not None:
                    tf.summary.scalar(f"eval/{key}/{name}", g[key], step=step)
        tf.summary.text("eval/table", markdown_table(m), step=step)
    writer.flush()
    writer.close()
    return logdir


def write_reports(m, output_json):
    """metrics.json, .md and .png (same stem); returns the three paths."""
    os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
    stem = os.path.splitext(output_json)[0]
    with open(output_json, "w") as f:
        json.dump(m, f, indent=2, ensure_ascii=False)
    with open(stem + ".md", "w") as f:
        f.write(markdown_table(m))
    return output_json, stem + ".md", plot_metrics(m, stem + ".png")


# ----------------------------------------------------------------------------- CLI


def make_flags():
    fv = flags.FlagValues()
    flags.DEFINE_string("train_dir", None, "Training run to evaluate (its latest "
                        "checkpoint's EMA generator).", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "Evaluate this checkpoint of the run instead "
                        "of its latest (a path under TRAIN_DIR/checkpoints, e.g. for a "
                        "learning curve).", flag_values=fv)
    flags.DEFINE_string("output_json", None, "Metrics JSON path (default "
                        "TRAIN_DIR/eval/metrics.json); .md and .png are written beside it.",
                        flag_values=fv)
    flags.DEFINE_integer("num_real", 100, "Real clips PER GENRE for the metrics, from the "
                         "run's held-out tracks (split.json), spread over them. NDB needs "
                         "many: with ~10 real clips per bin, a bin the generator never fills "
                         "is only significant with a few hundred generated clips.",
                         lower_bound=2, flag_values=fv)
    flags.DEFINE_integer("num_classifier_train", 150, "Real clips PER GENRE from the "
                         "training tracks to train the genre classifier and the feature "
                         "judge on (unused when a saved classifier is reused).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("num_generated_per_genre", 50, "Generated clips per genre.",
                         lower_bound=2, flag_values=fv)
    flags.DEFINE_integer("classifier_epochs", 15, "Epochs of classifier training.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("classifier_members", 5, "Genre classifiers trained alike from "
                         "seeds --seed, --seed + 1, ...; their mean vote is the judge's "
                         "(steadier than one: one classifier's generated-clip accuracy moves "
                         "with its seed). The metrics also give each member's accuracy.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_bool("retrain_classifier", False, "Train a new classifier even if "
                      "TRAIN_DIR/eval_classifier holds one.", flag_values=fv)
    flags.DEFINE_string("classifier_dir", None, "Where the classifier is saved and reused "
                        "(default TRAIN_DIR/eval_classifier).", flag_values=fv)
    flags.DEFINE_integer("ndb_bins", 50, "K of NDB/K (k-means bins); fewer when there are "
                         "fewer than 5 real clips per bin.", lower_bound=2, flag_values=fv)
    flags.DEFINE_float("ndb_alpha", 0.05, "Significance level of NDB's per-bin "
                       "two-proportion test.", lower_bound=1e-6, upper_bound=0.5,
                       flag_values=fv)
    flags.DEFINE_enum("phase", "if", list(representation_lib.PHASES), "Phase reconstruction "
                      "of generated clips: 'if' or 'griffin_lim'.", flag_values=fv)
    flags.DEFINE_float("truncation", 1.0, "Scale the generated clips' latents by this "
                       "(the truncation trick; < 1 trades diversity for typicality). The "
                       "metrics record it.", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_enum("mel_inversion", None, list(spectral.MEL_INVERSIONS), "Mel-to-audio "
                      "inverse for the generated clips instead of the run's own "
                      "(representation.json): compare inverses on one trained model.",
                      flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the generated latents, the classifier and "
                         "k-means.", flag_values=fv)
    flags.DEFINE_integer("batch_size", 16, "Clips generated per call.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_bool("tensorboard", False, "Also write the metrics as TensorBoard "
                      "summaries at the run's images_seen step.", flag_values=fv)
    flags.DEFINE_string("tensorboard_dir", None, "Event folder for --tensorboard (default "
                        "TRAIN_DIR/eval, shown beside the training curves).", flag_values=fv)
    # Data overrides; unset = the run's data.json value.
    datasets.define_data_flags(fv, DATA_FLAGS, overrides=True, help_texts={
        "holdout_fraction": "0 scores real clips from every track, training ones included "
                            "(for genres with no held-out track); for a run without "
                            "split.json, the share of tracks to hold out now."})
    return fv


def main(argv=None):
    from gansynth_tf import cli  # here: the output checks below are main's alone

    fv = make_flags()
    export_lib.parse_flags(fv, argv, "evaluate", __doc__)
    export_lib.require(fv, "evaluate", "train_dir")
    options = EvalOptions(
        num_real=fv.num_real, num_classifier_train=fv.num_classifier_train,
        num_generated_per_genre=fv.num_generated_per_genre,
        classifier_epochs=fv.classifier_epochs, classifier_members=fv.classifier_members,
        retrain_classifier=fv.retrain_classifier,
        ndb_bins=fv.ndb_bins, ndb_alpha=fv.ndb_alpha, phase=fv.phase,
        mel_inversion=fv.mel_inversion, truncation=fv.truncation, seed=fv.seed,
        batch_size=fv.batch_size, classifier_dir=fv.classifier_dir)
    output_json = fv.output_json or os.path.join(fv.train_dir, EVAL_SUBDIR, "metrics.json")
    classifier_dir = fv.classifier_dir or os.path.join(fv.train_dir, CLASSIFIER_SUBDIR)
    logdir = fv.tensorboard_dir or os.path.join(fv.train_dir, EVAL_SUBDIR)
    # Where each output goes, and the flag that sends it elsewhere.
    outputs = [(output_json, "--output_json"), (classifier_dir, "--classifier_dir")]
    if fv.tensorboard:
        outputs.append((logdir, "--tensorboard_dir"))
    try:
        rep = representation_lib.Representation.load(fv.train_dir)
        # The outputs are written after minutes of work (a read-only run's default ones
        # too): check them first. The classifier is written when none is saved to reuse.
        cli.check_writable(output_json, "--output_json")
        saved = all(os.path.exists(os.path.join(classifier_dir, name))
                    for name in (classifier_lib.MODEL_FILE, REFERENCE_FILE))
        if fv.retrain_classifier or not saved:
            cli.check_writable(classifier_dir, "--classifier_dir", folder=True)
        if fv.tensorboard:
            cli.check_writable(logdir, "--tensorboard_dir", folder=True)
        cfg = data_config(fv.train_dir, rep, {name: fv[name].value for name in DATA_FLAGS})
        metrics = evaluate(fv.train_dir, cfg, options, checkpoint=fv.checkpoint)
        paths = write_reports(metrics, output_json)
        if fv.tensorboard:
            write_tensorboard(metrics, logdir, metrics["images_seen"])
            paths += (logdir,)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"evaluate: {e}") from None
    except OSError as e:
        # Left to the writes themselves (e.g. a saved classifier of other genres, retrained
        # into a read-only folder): named with the flag of the output it was writing.
        target = os.path.abspath(str(e.filename or ""))
        for path, flag in outputs:
            folder = os.path.abspath(path if flag != "--output_json" else
                                     os.path.dirname(os.path.abspath(path)))
            if e.filename and (target == folder or target.startswith(folder + os.sep)):
                raise SystemExit(f"evaluate: cannot write {e.filename} ({e.strerror}): give "
                                 f"{flag} a path you can write to") from None
        raise
    print(markdown_table(metrics))
    print("wrote " + ", ".join(paths))
    return metrics


if __name__ == "__main__":
    main()
