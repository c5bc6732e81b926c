"""The judges of an evaluation and the metrics they give.

The genre classifier (:mod:`gansynth_tf.classifier`) is trained on real clips of the
run's training tracks, or reused from an earlier evaluation of the same run
(:func:`load_matching_classifier`, :func:`train_classifier`); beside it
``reference.npz`` keeps its training clips' embeddings and audio features, from which the
second judge (:mod:`gansynth_tf.feature_judge`) is fitted and the real-vs-real Frechet
distance taken. :func:`prepare_real` puts the held-out clips and both judges in a
:class:`RealSet`; :func:`compute_metrics` scores generated clips against it (the maths in
:mod:`gansynth_tf.metrics`, the metrics listed in :mod:`gansynth_tf.evaluate`). Every name
also imports from :mod:`gansynth_tf.evaluate`.
"""

import dataclasses
import os
import zipfile

import numpy as np
from absl import logging

from gansynth_tf import classifier as classifier_lib
from gansynth_tf import feature_judge
from gansynth_tf import metrics as metrics_lib
from gansynth_tf.eval_data import collect_clips, heldout_split, real_source

CLASSIFIER_SUBDIR = "eval_classifier"
# Beside the saved classifier: its training clips' embeddings and audio features, so a
# reused classifier still gives the real-vs-real distance and fits the feature judge.
REFERENCE_FILE = "reference.npz"


def load_matching_classifier(classifier_dir, genres, rep, retrain=False, members=1):
    """The classifier ensemble saved in classifier_dir if it judges this run's clips with
    `members` classifiers, else None."""
    if retrain or not os.path.exists(os.path.join(classifier_dir, classifier_lib.MODEL_FILE)):
        return None
    try:
        clf = classifier_lib.ClassifierEnsemble.load(classifier_dir)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        # A member folder deleted or a file cut short: unusable as it is, so train anew
        # (as for a mismatch) rather than stop the evaluation.
        logging.warning("the classifier in %s cannot be read (%s): training a new one",
                        classifier_dir, e)
        return None
    if not clf.matches(genres, rep.sample_rate, rep.audio_length):
        logging.warning("the classifier in %s was trained for genres %s at %d Hz x %d "
                        "samples, not this run's: training a new one", classifier_dir,
                        clf.genres, clf.sample_rate, clf.audio_length)
        return None
    if len(clf.members) != members:
        logging.warning("the classifier in %s has %d member(s), not --classifier_members=%d: "
                        "training a new one", classifier_dir, len(clf.members), members)
        return None
    return clf


def train_classifier(classifier_dir, genres, rep, train_waves, train_labels, held_waves,
                     held_labels, options):
    """Trains options.classifier_members classifiers on real clips (seeds options.seed,
    +1, ...), records their held-out accuracy, saves them; returns the ensemble."""
    if len(train_waves) == 0:
        raise ValueError("no real clips left to train the genre classifier: raise "
                         "--num_classifier_train or use more data")
    members = options.classifier_members
    print(f"training the genre classifier{f' ({members} members)' if members > 1 else ''} "
          f"on {len(train_waves)} real clips ({options.classifier_epochs} epochs)", flush=True)
    clf = classifier_lib.ClassifierEnsemble.create(members, genres, rep.sample_rate,
                                                   rep.audio_length, options.seed)
    histories = clf.fit(train_waves, train_labels, options.classifier_epochs, seed=options.seed)
    held_probs, _ = clf.predict_members(held_waves)
    held_labels = np.asarray(held_labels)
    clf.meta.update({"train_clips": int(len(train_waves)),
                     "epochs": int(options.classifier_epochs), "seed": int(options.seed),
                     "train_accuracy": float(np.mean([h["accuracy"][-1] for h in histories])),
                     "heldout_accuracy": float(np.mean(
                         np.argmax(held_probs.mean(axis=0), 1) == held_labels)),
                     "member_heldout_accuracy": [float(np.mean(np.argmax(p, 1) == held_labels))
                                                 for p in held_probs],
                     "heldout_clips": int(len(held_waves))})
    clf.save(classifier_dir)
    return clf


# A clip's edge is loud when its RMS is over this many times the middle's (metrics.edge_ratios).
LOUD_EDGE_RATIO = 2.0


def loud_edges(waves, sample_rate):
    """waves `[n, L]` -> bool `[n]`: the first or the last 50 ms (a tenth of a shorter clip)
    over LOUD_EDGE_RATIO x the middle's RMS."""
    seconds = waves.shape[1] / sample_rate
    start, end = metrics_lib.edge_ratios(waves, sample_rate,
                                         edge_seconds=min(0.05, seconds / 10),
                                         margin_seconds=min(0.2, seconds / 5),
                                         frame_seconds=min(0.01, seconds / 50))
    return (start > LOUD_EDGE_RATIO) | (end > LOUD_EDGE_RATIO)


def compute_metrics(clf, genres, sample_rate, real, real_y, fake, fake_y, ndb_bins=50,
                    ndb_alpha=0.05, seed=0, judge=None, reference_embeddings=None):
    """All metrics from real and generated waves `[n, L]` with genre ids `[n]`.

    judge: a fitted :class:`~gansynth_tf.feature_judge.FeatureJudge` (the second judge);
    reference_embeddings: classifier embeddings of real clips from other (training)
    tracks, for the real-vs-real Frechet distance beside the generated-vs-real one.
    """
    if hasattr(clf, "predict_members"):
        real_members, real_emb = clf.predict_members(real)
        fake_members, fake_emb = clf.predict_members(fake)
    else:  # a single GenreClassifier
        (real_p, real_emb), (fake_p, fake_emb) = clf.predict(real), clf.predict(fake)
        real_members, fake_members = real_p[None], fake_p[None]
    real_p, fake_p = real_members.mean(axis=0), fake_members.mean(axis=0)
    real_feat = classifier_lib.log_mel_features(real, sample_rate)
    fake_feat = classifier_lib.log_mel_features(fake, sample_rate)
    real_pred, fake_pred = np.argmax(real_p, 1), np.argmax(fake_p, 1)
    k = min(int(ndb_bins), max(2, len(real) // 5))
    if k < ndb_bins:
        logging.warning("NDB with %d bins instead of %d: only %d real clips (use --num_real "
                        ">= %d per genre for %d bins)", k, ndb_bins, len(real),
                        -(-5 * ndb_bins // len(genres)), ndb_bins)
    bins = metrics_lib.ndb(real_feat, fake_feat, k, ndb_alpha, seed)
    metrics = {
        "real_accuracy": float(np.mean(real_pred == real_y)),
        "generated_accuracy": float(np.mean(fake_pred == fake_y)),
        "mean_entropy": float(np.mean(metrics_lib.entropy(fake_p))),
        "marginal_entropy": float(metrics_lib.entropy(np.mean(fake_p, axis=0))),
        "max_entropy": float(np.log(len(genres))),
        "frechet_distance": metrics_lib.frechet_distance(
            *metrics_lib.gaussian_stats(real_emb), *metrics_lib.gaussian_stats(fake_emb)),
        "ndb": bins["ndb"], "ndb_k": bins["ndb_k"], "ndb_bins": bins["k"],
        "ndb_alpha": bins["alpha"],
        "num_real": int(len(real)), "num_generated": int(len(fake)),
        # The classifier's verdict is its members' mean vote; each member's own accuracy
        # shows how much one classifier's figure would have depended on its seed.
        "classifier_members": int(len(real_members)),
        "real_accuracy_members": [float(np.mean(np.argmax(p, 1) == real_y))
                                  for p in real_members],
        "generated_accuracy_members": [float(np.mean(np.argmax(p, 1) == fake_y))
                                       for p in fake_members],
    }
    metrics["frechet_distance_real_vs_real"] = None
    if reference_embeddings is not None and len(reference_embeddings) > 1:
        metrics["frechet_distance_real_vs_real"] = metrics_lib.frechet_distance(
            *metrics_lib.gaussian_stats(real_emb),
            *metrics_lib.gaussian_stats(reference_embeddings))
    judge_real = judge_fake = None
    if judge is not None:
        judge_real, judge_fake = judge.predict(real), judge.predict(fake)
        metrics["judge2_name"] = feature_judge.NAME
        metrics["judge2_real_accuracy"] = float(np.mean(judge_real == real_y))
        metrics["judge2_generated_accuracy"] = float(np.mean(judge_fake == fake_y))
    real_loud, fake_loud = loud_edges(real, sample_rate), loud_edges(fake, sample_rate)
    metrics["loud_edge_share_real"] = float(real_loud.mean())
    metrics["loud_edge_share_generated"] = float(fake_loud.mean())
    metrics["chance_accuracy"] = 1.0 / len(genres)
    metrics["warnings"] = ceiling_warnings(metrics)
    per_genre, l1_ratios, l2_ratios = {}, [], []
    for g, name in enumerate(genres):
        r, f = real_y == g, fake_y == g
        r_l1, r_l2 = metrics_lib.mean_pairwise_distances(real_feat[r])
        f_l1, f_l2 = metrics_lib.mean_pairwise_distances(fake_feat[f])
        l1 = f_l1 / r_l1 if r_l1 and f_l1 is not None else None
        l2 = f_l2 / r_l2 if r_l2 and f_l2 is not None else None
        l1_ratios += [l1] if l1 is not None else []
        l2_ratios += [l2] if l2 is not None else []
        per_genre[name] = {
            "num_real": int(r.sum()), "num_generated": int(f.sum()),
            "real_accuracy": float(np.mean(real_pred[r] == g)) if r.any() else None,
            "generated_accuracy": float(np.mean(fake_pred[f] == g)) if f.any() else None,
            "judge2_real_accuracy": (float(np.mean(judge_real[r] == g))
                                     if judge is not None and r.any() else None),
            "judge2_generated_accuracy": (float(np.mean(judge_fake[f] == g))
                                          if judge is not None and f.any() else None),
            "diversity_l1_real": r_l1, "diversity_l1_generated": f_l1,
            "diversity_l1_ratio": l1, "diversity_l2_real": r_l2,
            "diversity_l2_generated": f_l2, "diversity_l2_ratio": l2,
            "loud_edge_share_real": float(real_loud[r].mean()) if r.any() else None,
            "loud_edge_share_generated": float(fake_loud[f].mean()) if f.any() else None}
    metrics["diversity_l1_ratio"] = float(np.mean(l1_ratios)) if l1_ratios else None
    metrics["diversity_l2_ratio"] = float(np.mean(l2_ratios)) if l2_ratios else None
    metrics["per_genre"] = per_genre
    return metrics


def save_reference(classifier_dir, clf, sample_rate, waves, labels):
    """Embeddings and feature-judge statistics of the classifier's training clips."""
    _, embeddings = clf.predict(waves)
    feats = feature_judge.features(waves, sample_rate)
    path = os.path.join(classifier_dir, REFERENCE_FILE)
    np.savez(path, embeddings=embeddings, features=feats, labels=np.asarray(labels))
    return {"embeddings": embeddings, "features": feats, "labels": np.asarray(labels)}


def load_reference(classifier_dir):
    path = os.path.join(classifier_dir, REFERENCE_FILE)
    if not os.path.exists(path):
        return None
    with np.load(path) as f:
        return {k: f[k] for k in ("embeddings", "features", "labels")}


@dataclasses.dataclass
class RealSet:
    """What every evaluation of one run scores against (see :func:`prepare_real`)."""
    waves: np.ndarray            # [n, L] real clips from held-out tracks
    labels: np.ndarray           # [n] genre ids into the run's genres
    classifier: object           # classifier_lib.ClassifierEnsemble
    judge: object                # feature_judge.FeatureJudge
    reference_embeddings: np.ndarray   # classifier embeddings of training-track clips
    info: dict                   # provenance for the metrics JSON


def prepare_real(train_dir, genres, rep, data_cfg, options):
    """Held-out real clips, the two judges and the real-vs-real reference of one run."""
    held_split, track_split, real_from = heldout_split(train_dir, data_cfg)
    classifier_dir = options.classifier_dir or os.path.join(train_dir, CLASSIFIER_SUBDIR)
    clf = load_matching_classifier(classifier_dir, genres, rep, options.retrain_classifier,
                                   options.classifier_members)
    reference = None if clf is None else load_reference(classifier_dir)
    trained_now = clf is None
    print(f"reading real clips from {real_from} of the {data_cfg.dataset} data", flush=True)
    held_source = real_source(data_cfg, held_split, track_split, options.num_real)
    held, held_y = collect_clips(held_source, genres, options.num_real)
    track_split = getattr(held_source, "track_split", track_split)
    if reference is None:
        # The classifier and the feature judge learn from training tracks only.
        train_split = "train" if held_split == "heldout" or data_cfg.dataset == "nsynth" \
            else "all"
        train_source = real_source(data_cfg, train_split, track_split,
                                   options.num_classifier_train)
        train, train_y = collect_clips(train_source, genres, options.num_classifier_train)
        if trained_now:
            clf = train_classifier(classifier_dir, genres, rep, train, train_y, held, held_y,
                                   options)
        reference = save_reference(classifier_dir, clf, rep.sample_rate, train, train_y)
    else:
        print(f"reusing the genre classifier in {classifier_dir} ({len(clf.members)} "
              f"member(s), trained on {clf.meta.get('train_clips', '?')} clips, "
              f"{clf.meta.get('epochs', '?')} epochs; --retrain_classifier trains a new one)",
              flush=True)
    judge = feature_judge.FeatureJudge.fit_features(reference["features"], reference["labels"],
                                                    rep.sample_rate, len(genres), options.seed)
    info = {"dataset": data_cfg.dataset, "real_clips_from": real_from,
            "heldout_tracks": ({g: len(h) for g, (h, _) in track_split.genres.items()}
                               if track_split is not None else None),
            "classifier": {"dir": classifier_dir, "trained_now": trained_now,
                           **{k: v for k, v in clf.meta.items() if k != "genres"}}}
    return RealSet(held, held_y, clf, judge, reference["embeddings"], info)


# A judge whose real ceiling is this close to chance tells the genres apart too little for
# any generated-clip figure of it to mean anything.
CHANCE_MARGIN = 0.1


def ceiling_warnings(metrics):
    """Warnings (strings) for judges whose held-out real accuracy is near chance."""
    out = []
    chance = metrics["chance_accuracy"]
    for key, name in (("real_accuracy", "the genre classifier"),
                      ("judge2_real_accuracy", "the feature judge")):
        value = metrics.get(key)
        if value is not None and value < chance + CHANCE_MARGIN:
            out.append(f"{name} scores {value:.3f} on held-out real clips, within "
                       f"{CHANCE_MARGIN} of chance ({chance:.3f}): its generated-clip "
                       "accuracy means little (retrain it with more clips or epochs: "
                       "--retrain_classifier --num_classifier_train --classifier_epochs, "
                       "or use more data)")
    for w in out:
        logging.warning("%s", w)
    return out
