"""Where does a run lose its genres: in the spectrograms it draws, or on the way to audio?

The headline metric (`gansynth_tf.evaluate`) classifies AUDIO: generated features are
turned into waves (IF phase) and a classifier trained on real waves judges them. A low
score can mean that the generator draws the wrong spectrograms, or that right spectrograms
sound wrong once their (generated) IF phase is integrated. This script separates the two:

1. audio classifier (the evaluation's, `--classifier_dir`) on real clips, on real clips
   sent through the representation and back with IF phase, and on generated clips;
2. a small CNN trained here on the REAL log-magnitude features (the model's own input,
   channel 0) applied to generated log-magnitudes directly (no audio involved), and to the
   log-magnitudes re-analysed from the generated audio;
3. the phase-consistency mismatch `mean|resynthesised log-magnitude - drawn log-magnitude|`
   (`Representation.resynthesized_log_magnitude`) for real and generated features, and for
   real magnitudes with a random IF channel (what "no phase information" scores);
4. hybrids judged by the audio classifier, each generated clip paired with a held-out real
   clip of its genre: real magnitude + generated IF, generated magnitude + real IF, and the
   generated clip with the real clip's envelope over time (each frame's mean log-magnitude)
   and the reverse; plus real and generated clips through Griffin-Lim (no IF used);
5. temporal contrast (`gan.dynamics`, mean over its bands) of real and generated features
   per genre.

    python bench/diagnose_quality.py --train_dirs=runs/quality/ms0,runs/quality/ms1 \\
        --classifier_dir=runs/quality/classifier --output_json=bench/results/diagnosis.json

Real clips come from the run's own data (its flags.txt), as in the evaluation; the feature
classifier trains on the clips after the held-out ones.
"""

import os

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import classifier as classifier_lib  # noqa: E402
from gansynth_tf import evaluate, gan, generate  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("train_dirs", None, "Runs to diagnose (their latest checkpoint).")
flags.DEFINE_string("classifier_dir", None, "The audio genre classifier (evaluate's); "
                    "default <train_dir>/eval_classifier of the first run.")
flags.DEFINE_integer("num_real", 50, "Held-out real clips per genre.")
flags.DEFINE_integer("num_feature_train", 150, "Real clips per genre that train the "
                     "feature classifier (after the held-out ones: the quickstart has 200 "
                     "clips per genre).")
flags.DEFINE_integer("num_generated", 50, "Generated clips per genre.")
flags.DEFINE_integer("feature_epochs", 8, "Epochs of the feature classifier.")
flags.DEFINE_integer("seed", 0, "Latents and classifier initialisation.")
flags.DEFINE_enum("mel_inversion", None, ["magenta", "refined"], "Mel inverse for every "
                  "audio rendering (default: each run's own).")
flags.DEFINE_string("output_json", None, "Where to write the figures.")


def _per_genre(pred, y, g):
    return [float(np.mean(pred[y == k] == k)) if np.any(y == k) else None for k in range(g)]


def _feature_classifier(shape, num_genres, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        keras.layers.MaxPool2D(2),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.MaxPool2D(2),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_genres),
    ])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _batched(fn, x, batch=64):
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


def diagnose(train_dir, classifier_dir):
    sampler = generate.TrainDirSampler(train_dir, "if", mel_inversion=FLAGS.mel_inversion)
    rep, genres = sampler.trained.representation, list(sampler.genres)
    g = len(genres)
    cfg = evaluate.data_config(train_dir, rep)
    held_split, track_split, _ = evaluate.heldout_split(train_dir, cfg)
    held_source = evaluate.real_source(cfg, held_split, track_split, FLAGS.num_real)
    held, held_y = evaluate.collect_clips(held_source, genres, FLAGS.num_real)
    train_source = evaluate.real_source(cfg, "train" if held_split == "heldout" else "all",
                                        getattr(held_source, "track_split", track_split),
                                        FLAGS.num_feature_train)
    train, train_y = evaluate.collect_clips(train_source, genres, FLAGS.num_feature_train)
    clf = classifier_lib.GenreClassifier.load(classifier_dir)

    def features(waves):
        return _batched(lambda w: rep.waves_to_features(w[:, :, None]), waves)

    def to_audio(feats, phase="if"):
        return _batched(lambda f: rep.features_to_waves(f, phase), feats)

    def audio_acc(waves, y):
        pred = clf.predict(np.nan_to_num(waves))[0].argmax(1)
        return float(np.mean(pred == y)), _per_genre(pred, y, g)

    fake_y = np.repeat(np.arange(g), FLAGS.num_generated)
    z = generate.latents(FLAGS.seed, len(fake_y), sampler.latent_dim)
    one_hot = np.eye(g, dtype=np.float32)
    fake_feats = _batched(lambda i: sampler.trained.features(one_hot[fake_y[i]], z[i]),
                          np.arange(len(fake_y)))
    held_feats, train_feats = features(held), features(train)
    held_rt, fake_audio = to_audio(held_feats), to_audio(fake_feats)

    out = {"train_dir": train_dir, "classifier_dir": classifier_dir, "genres": genres,
           "images_seen": int(sampler.trained.images_seen.numpy())}
    out["audio_classifier"] = {
        "real": audio_acc(held, held_y), "real_round_trip": audio_acc(held_rt, held_y),
        "generated": audio_acc(fake_audio, fake_y)}

    model = _feature_classifier(train_feats.shape[1:3] + (1,), g, FLAGS.seed)
    model.fit(train_feats[..., :1], train_y, epochs=FLAGS.feature_epochs, batch_size=32,
              verbose=0)

    def feat_acc(feats, y):
        pred = model.predict(feats[..., :1], verbose=0).argmax(1)
        return float(np.mean(pred == y)), _per_genre(pred, y, g)

    out["feature_classifier"] = {
        "real": feat_acc(held_feats, held_y),
        "real_round_trip": feat_acc(features(held_rt), held_y),
        "generated": feat_acc(fake_feats, fake_y),
        "generated_round_trip": feat_acc(features(fake_audio), fake_y)}

    def mismatch(feats):
        resynth = _batched(rep.resynthesized_log_magnitude, feats)
        return float(np.mean(np.abs(resynth - feats[..., 0])))

    # Hybrids: pair generated clip k of a genre with held-out real clip k of that genre.
    n = FLAGS.num_generated
    order = np.argsort(held_y, kind="stable")
    pick = np.concatenate([order[held_y[order] == k][:n] for k in range(g)])
    if len(pick) != len(fake_y):
        raise ValueError(f"--num_real must be >= --num_generated ({n}) for the hybrids")
    real_f, fake_f = held_feats[pick], fake_feats
    fake_env = fake_f[..., 0].mean(axis=2, keepdims=True)
    real_env = real_f[..., 0].mean(axis=2, keepdims=True)

    def swap(base, channel, other):
        out = base.copy()
        out[..., channel] = other[..., channel]
        return out

    def shift_envelope(base, from_env, to_env):
        out = base.copy()
        out[..., 0] = np.clip(out[..., 0] - from_env + to_env, -1.0, 1.0)
        return out

    out["audio_classifier"].update({
        "real_round_trip_griffin_lim": audio_acc(to_audio(held_feats, "griffin_lim"), held_y),
        "generated_griffin_lim": audio_acc(to_audio(fake_feats, "griffin_lim"), fake_y),
        "real_magnitude_generated_if": audio_acc(to_audio(swap(real_f, 1, fake_f)), fake_y),
        "generated_magnitude_real_if": audio_acc(to_audio(swap(fake_f, 1, real_f)), fake_y),
        "generated_with_real_envelope": audio_acc(
            to_audio(shift_envelope(fake_f, fake_env, real_env)), fake_y),
        "real_with_generated_envelope": audio_acc(
            to_audio(shift_envelope(real_f, real_env, fake_env)), fake_y)})

    def contrast(feats, y):
        d = np.asarray(gan.dynamics(feats)).mean(axis=1)
        return float(d.mean()), [float(d[y == k].mean()) for k in range(g)]

    out["temporal_contrast"] = {"real": contrast(real_f, fake_y),
                                "generated": contrast(fake_f, fake_y)}

    random_if = held_feats.copy()
    rng = np.random.default_rng(FLAGS.seed)
    random_if[..., 1] = rng.uniform(-0.8, 0.8, random_if[..., 1].shape)
    out["consistency_mismatch"] = {"real": mismatch(held_feats), "generated": mismatch(fake_feats),
                                   "real_with_random_if": mismatch(random_if)}
    return out


def _table(results):
    rows = []
    for r in results:
        # parent/run: runs of different experiments are often all called ms0 / ms1.
        name = "/".join(os.path.normpath(r["train_dir"]).split(os.sep)[-2:])
        for which in ("audio_classifier", "feature_classifier"):
            for key, (acc, per) in r[which].items():
                rows.append([name, which.replace("_", " "), key.replace("_", " "), f"{acc:.3f}",
                             " ".join("-" if p is None else f"{p:.2f}" for p in per)])
        for key, (value, per) in r["temporal_contrast"].items():
            rows.append([name, "temporal contrast (gan.dynamics)", key, f"{value:.3f}",
                         " ".join(f"{p:.3f}" for p in per)])
        c = r["consistency_mismatch"]
        rows.append([name, "consistency mismatch", "real / generated / real + random IF",
                     f"{c['real']:.3f} / {c['generated']:.3f} / "
                     f"{c['real_with_random_if']:.3f}", ""])
    genres = " ".join(results[0]["genres"])
    return bc.markdown_table(["run", "measure", "clips", "value", f"per genre ({genres})"], rows)


def main(argv):
    del argv
    if not FLAGS.train_dirs:
        raise app.UsageError("--train_dirs is required")
    classifier_dir = FLAGS.classifier_dir or os.path.join(FLAGS.train_dirs[0],
                                                          evaluate.CLASSIFIER_SUBDIR)
    results = [diagnose(d, classifier_dir) for d in FLAGS.train_dirs]
    print(_table(results))
    if FLAGS.output_json:
        bc.write_json(FLAGS.output_json, {"machine": bc.machine_info(), "runs": results})


if __name__ == "__main__":
    flags.mark_flag_as_required("train_dirs")
    app.run(main)
