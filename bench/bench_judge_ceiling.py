"""The feature judge cross-validated by track: is a held-out ceiling the split's or the corpus's?

`evaluate`'s ceiling is the judges' accuracy on the clips of one run's held-out tracks
(split.json: one or two tracks a genre). Whether an absolute accuracy is reachable on a
corpus depends on how well any judge of that kind generalises to unseen tracks, which one
split can over- or under-state. This cuts about `--clips_per_genre` clips from the tracks
of every genre of a genre folder, evenly spaced within each track and equally many from
each of a genre's tracks (as `evaluate` reads its real clips; quiet windows below
`--min_clip_dbfs` dropped, as training does), and scores the feature judge
(`gansynth_tf/feature_judge.py`, the features and model `evaluate` uses) three ways:

- **by track**: `StratifiedGroupKFold` over tracks, `--repeats` shuffles of `--folds`
  folds; every track is scored once a repeat by a judge that never heard it;
- **by clip**: `StratifiedKFold` over clips, the same tracks on both sides of the split
  (what a judge that trained on the tracks it scores would claim);
- **the run's split** (with `--train_dir`): fit on its training tracks, scored on its
  held-out ones.

With `--neural_members=M` the neural judge (`gansynth_tf/classifier.py`, an ensemble of M
networks trained as `evaluate` trains them) is also scored by track, on one repeat of the
folds (it costs a training per fold). Accuracies are balanced (the mean of the per-genre
recalls), as `evaluate`'s are with equal clips per genre.

    python bench/bench_judge_ceiling.py --data_dir=runs/real_corpus/genres \
        --train_dir=runs/music_s24_seed2 --output_dir=bench/results/judge_ceiling_s25

Writes <output_dir>/ceiling.json and ceiling.md.
"""

import collections
import json
import math
import os
import time

import numpy as np

import bench_common

bench_common.quiet_tf()

from absl import app, flags  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, recall_score  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold  # noqa: E402

from gansynth_tf import audio_io, classifier, feature_judge  # noqa: E402
from gansynth_tf import split as split_lib  # noqa: E402
from gansynth_tf.datasets import layouts  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A genre-per-folder tree of tracks (--dataset=folder).")
flags.DEFINE_string("train_dir", None, "Optional: a run whose split.json is also scored.")
flags.DEFINE_integer("sample_rate", 16000, "Clip sample rate (the music recipe's).")
flags.DEFINE_integer("audio_length", 32768, "Clip length in samples (the music recipe's).")
flags.DEFINE_integer("clips_per_genre", 180, "About this many clips of each genre, "
                     "ceil(clips_per_genre / its tracks) from each track.", lower_bound=1)
flags.DEFINE_float("min_clip_dbfs", -60.0, "Clips quieter than this (RMS, dB re full "
                   "scale) are dropped.")
flags.DEFINE_integer("folds", 5, "Folds per repeat.", lower_bound=2)
flags.DEFINE_integer("repeats", 5, "Shuffled repeats of the folds.", lower_bound=1)
flags.DEFINE_integer("neural_members", 0, "Networks per neural judge scored by track "
                     "(0: the feature judge only).", lower_bound=0)
flags.DEFINE_integer("classifier_epochs", 15, "Epochs of each network (evaluate's).")
flags.DEFINE_string("output_dir", None, "Where ceiling.json and ceiling.md go.")
flags.mark_flags_as_required(["data_dir", "output_dir"])

TARGET = 0.7  # issue 17's absolute accuracy target


def track_clips(path, sample_rate, length, count, min_dbfs):
    """float32 [k <= count, length]: evenly spaced windows of one track, quiet ones dropped."""
    wave = audio_io.load_audio_np(path, sample_rate)
    if len(wave) < length:
        wave = np.pad(wave, (0, length - len(wave)))
    starts = np.round(np.linspace(0, len(wave) - length, count)).astype(int)
    clips = np.stack([wave[s:s + length] for s in np.unique(starts)])
    rms = np.sqrt(np.mean(clips.astype(np.float64) ** 2, axis=1))
    return clips[rms >= 10.0 ** (min_dbfs / 20.0)]


def corpus_clips(entries, root):
    """(waves [n, L], genre ids [n], track ids [n], [(track key, genre)], genre names)."""
    genres = sorted({g for _, g in entries})
    tracks = collections.Counter(g for _, g in entries)
    waves, labels, groups, keys = [], [], [], []
    for t, (path, genre) in enumerate(entries):
        clips = track_clips(path, FLAGS.sample_rate, FLAGS.audio_length,
                            math.ceil(FLAGS.clips_per_genre / tracks[genre]),
                            FLAGS.min_clip_dbfs)
        waves.append(clips)
        labels += [genres.index(genre)] * len(clips)
        groups += [t] * len(clips)
        keys.append((split_lib.file_key(path, root), genre))
    return np.concatenate(waves), np.array(labels), np.array(groups), keys, genres


def feature_predict(feats, labels, train, test, num_genres):
    """Genre ids [len(test)] predicted by a feature judge fitted on the clips `train`."""
    judge = feature_judge.FeatureJudge.fit_features(feats[train], labels[train],
                                                    FLAGS.sample_rate, num_genres)
    return judge.model.predict(feats[test])


def neural_predictor(waves, genres):
    """A predict function like feature_predict's, for the neural judge on `waves`."""
    def predict(_, labels, train, test, num_genres):
        judge = classifier.ClassifierEnsemble.create(FLAGS.neural_members, genres,
                                                     FLAGS.sample_rate, FLAGS.audio_length)
        judge.fit(waves[train], labels[train], FLAGS.classifier_epochs)
        return np.argmax(judge.predict(waves[test])[0], axis=1)
    return predict


def cross_validate(predict, feats, labels, groups, num_genres, by_track, repeats):
    """Per repeat: {balanced accuracy over all folds' predictions, per-genre recalls,
    per-fold balanced accuracies}."""
    results = []
    for r in range(repeats):
        if by_track:
            folds = StratifiedGroupKFold(FLAGS.folds, shuffle=True, random_state=r)
            cuts = folds.split(feats, labels, groups)
        else:
            folds = StratifiedKFold(FLAGS.folds, shuffle=True, random_state=r)
            cuts = folds.split(feats, labels)
        pred = np.empty_like(labels)
        per_fold = []
        for train, test in cuts:
            pred[test] = predict(feats, labels, train, test, num_genres)
            per_fold.append(balanced_accuracy_score(labels[test], pred[test]))
        results.append({"balanced_accuracy": balanced_accuracy_score(labels, pred),
                        "per_genre": recall_score(labels, pred, average=None,
                                                  labels=list(range(num_genres))).tolist(),
                        "per_fold": per_fold})
    return results


def run_split(feats, labels, groups, keys, genres, train_dir):
    """The run's own split: fit on its training tracks, scored on its held-out ones."""
    track_split = split_lib.load(train_dir)
    if track_split is None:
        raise app.UsageError(f"--train_dir={train_dir} has no {split_lib.SPLIT_FILE}")
    held = np.array([track_split.is_held_out(genre, key) for key, genre in keys])
    test = held[groups]
    pred = feature_predict(feats, labels, ~test, test, len(genres))
    return {"balanced_accuracy": balanced_accuracy_score(labels[test], pred),
            "per_genre": recall_score(labels[test], pred, average=None,
                                      labels=list(range(len(genres)))).tolist(),
            "held_out_tracks": int(held.sum())}


def summary(repeats):
    acc = np.array([r["balanced_accuracy"] for r in repeats])
    folds = np.concatenate([r["per_fold"] for r in repeats])
    return {"repeats": len(acc), "mean": float(acc.mean()),
            "sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "fold_min": float(folds.min()), "fold_max": float(folds.max()),
            "folds_at_target": float(np.mean(folds >= TARGET)),
            "per_genre": np.mean([r["per_genre"] for r in repeats], axis=0).tolist()}


def report(result):
    genres = result["genres"]
    rows = []
    for name, key in (("feature judge by track", "by_track"),
                      ("feature judge by clip (tracks on both sides)", "by_clip"),
                      ("neural judge by track", "neural_by_track")):
        if key not in result:
            continue
        s = result[key]
        spread = f" +- {s['sd']:.3f}" if s["repeats"] > 1 else " (one repeat)"
        rows.append([name, f"{s['mean']:.3f}{spread}",
                     f"{s['fold_min']:.2f}-{s['fold_max']:.2f}",
                     f"{s['folds_at_target']:.2f}"] + [f"{v:.2f}" for v in s["per_genre"]])
    if "run_split" in result:
        s = result["run_split"]
        rows.append([f"feature judge, run's split ({s['held_out_tracks']} held-out tracks)",
                     f"{s['balanced_accuracy']:.3f}", "", ""]
                    + [f"{v:.2f}" for v in s["per_genre"]])
    headers = (["protocol", "balanced accuracy", "fold range", f"folds >= {TARGET}"]
               + list(genres))
    return bench_common.markdown_table(headers, rows)


def main(argv):
    del argv
    start = time.time()
    entries, root = layouts.folder_entries(FLAGS.data_dir)
    waves, labels, groups, keys, genres = corpus_clips(entries, root)
    feats = feature_judge.features(waves, FLAGS.sample_rate)
    num_genres = len(genres)
    result = {"data_dir": FLAGS.data_dir, "genres": genres, "tracks": len(entries),
              "clips": int(len(labels)), "clips_per_genre": FLAGS.clips_per_genre,
              "folds": FLAGS.folds, "repeats": FLAGS.repeats,
              "tracks_per_genre": [int(len(np.unique(groups[labels == g])))
                                   for g in range(num_genres)],
              "clips_of_genre": np.bincount(labels, minlength=num_genres).tolist(),
              "by_track": summary(cross_validate(feature_predict, feats, labels, groups,
                                                 num_genres, True, FLAGS.repeats)),
              "by_clip": summary(cross_validate(feature_predict, feats, labels, groups,
                                                num_genres, False, FLAGS.repeats))}
    if FLAGS.neural_members:
        result["neural_members"] = FLAGS.neural_members
        result["neural_by_track"] = summary(cross_validate(
            neural_predictor(waves, genres), feats, labels, groups, num_genres, True, 1))
    if FLAGS.train_dir:
        result["train_dir"] = FLAGS.train_dir
        result["run_split"] = run_split(feats, labels, groups, keys, genres, FLAGS.train_dir)
    result["seconds"] = round(time.time() - start, 1)
    result["machine"] = bench_common.machine_info()
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    bench_common.write_json(os.path.join(FLAGS.output_dir, "ceiling.json"), result)
    table = report(result)
    with open(os.path.join(FLAGS.output_dir, "ceiling.md"), "w", encoding="utf-8") as f:
        f.write(f"Judges on {result['tracks']} tracks, {result['clips']} clips (about "
                f"{FLAGS.clips_per_genre} a genre), {FLAGS.repeats} x {FLAGS.folds} folds "
                f"(the neural judge, {FLAGS.neural_members} network(s): 1 x {FLAGS.folds}); "
                f"balanced accuracy, chance {1 / num_genres:.2f}.\n\n{table}\n")
    print(table)
    print(json.dumps({k: result[k] for k in ("tracks", "clips", "seconds")}))


if __name__ == "__main__":
    app.run(main)
