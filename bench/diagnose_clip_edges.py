"""Are generated clips louder at their edges than in their middle?

Real clips are cut at random from tracks, so their first and last moments are like any
other. A generator with zero-padded convs can still draw its first and last frames apart
(heard as a broadband burst at both ends of a clip). For each run this scores, per clip:

    start, end     RMS over the first / last --edge_ms of the audio divided by the median
                   RMS of its 10 ms frames between --margin_ms from either end
    loud edge      the share of clips with start or end over --loud_ratio
    features dB    the generator's own log-mel magnitudes (before any synthesis): mean over
                   bins of the first / last frame minus that of the middle frames (dB);
                   for real clips, of their features

for the run's generated clips (IF phase, as evaluate scores them) and for held-out real
clips (split.json), per genre and overall.

    python bench/diagnose_clip_edges.py \
        --runs=zeros=runs/music_s22_gb,reflect=runs/music_s26_reflect_seed0 \
        --output_dir=bench/results/clip_edges_s26
"""

import os

import numpy as np

import bench_common as bc  # noqa: E402

bc.quiet_tf()

from absl import app, flags  # noqa: E402

from gansynth_tf import eval_judges, evaluate, generate, metrics, normalizers  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", None, "NAME=TRAIN_DIR entries.")
flags.DEFINE_integer("num_per_genre", 40, "Held-out real and generated clips per genre.")
flags.DEFINE_integer("seed", 0, "Latent seed.")
flags.DEFINE_float("edge_ms", 50.0, "Length of each edge.")
flags.DEFINE_float("margin_ms", 200.0, "The middle starts and ends this far from the edges.")
flags.DEFINE_float("loud_ratio", eval_judges.LOUD_EDGE_RATIO,
                   "An edge is loud above this ratio to the middle (evaluate's threshold).")
flags.DEFINE_string("output_dir", "bench/results/clip_edges", "Where the results go.")

DB_PER_LOG_POWER = 10.0 / np.log(10.0)  # the magnitude channel is ln(mel power)


def feature_edges_db(features, rep):
    """Normalised features `[n, T, F, 2]` -> (first, last) `[n]`: dB of the first / last
    frame's mean log-mel power over the middle frames' (the outer eighth excluded)."""
    logmel = np.asarray(normalizers.from_config(rep.normalizer).denormalize(features))[..., 0]
    per_frame = logmel.mean(axis=-1)                         # [n, T]
    t = per_frame.shape[1]
    middle = per_frame[:, t // 8:t - t // 8].mean(axis=1)
    return (DB_PER_LOG_POWER * (per_frame[:, 0] - middle),
            DB_PER_LOG_POWER * (per_frame[:, -1] - middle))


def score(waves, features, labels, genres, rep):
    start, end = metrics.edge_ratios(waves, rep.sample_rate, FLAGS.edge_ms / 1000,
                                     FLAGS.margin_ms / 1000)
    first_db, last_db = feature_edges_db(features, rep)
    loud = (start > FLAGS.loud_ratio) | (end > FLAGS.loud_ratio)

    def stats(mask):
        return {"start_ratio_median": float(np.median(start[mask])),
                "end_ratio_median": float(np.median(end[mask])),
                "loud_edge_share": float(loud[mask].mean()),
                "first_frame_db": float(first_db[mask].mean()),
                "last_frame_db": float(last_db[mask].mean())}

    return {"all": stats(np.ones_like(loud)),
            "per_genre": {g: stats(labels == i) for i, g in enumerate(genres)}}


def run_one(train_dir):
    sampler = generate.load_sampler(train_dir)
    trained, rep = sampler.trained, sampler.trained.representation
    genres, n = list(sampler.genres), FLAGS.num_per_genre
    cfg = evaluate.data_config(train_dir, rep)
    split_name, track_split, _ = evaluate.heldout_split(train_dir, cfg)
    source = evaluate.real_source(cfg, split_name, track_split, 4 * n)
    real, real_y = evaluate.collect_clips(source, genres, n)
    real_features = np.concatenate([np.asarray(rep.waves_to_features(real[i:i + 16, :, None]))
                                    for i in range(0, len(real), 16)])
    fake_y = np.repeat(np.arange(len(genres), dtype=np.int32), n)
    z = generate.latents(FLAGS.seed, len(fake_y), trained.latent_dim)
    fake_features = np.concatenate([np.asarray(trained.features(fake_y[i:i + 16], z[i:i + 16]))
                                    for i in range(0, len(z), 16)])
    fake = np.concatenate([np.asarray(rep.features_to_waves(fake_features[i:i + 16]))
                           for i in range(0, len(z), 16)])
    return {"train_dir": train_dir, "checkpoint": trained.checkpoint,
            "images_seen": int(trained.images_seen.numpy()), "genres": genres,
            "generated": score(fake, fake_features, fake_y, genres, rep),
            "real_heldout": score(real, real_features, real_y, genres, rep)}


def main(argv):
    del argv
    if not FLAGS.runs:
        raise app.UsageError("--runs is required (NAME=TRAIN_DIR,...)")
    runs = dict(entry.split("=", 1) for entry in FLAGS.runs)
    info = bc.machine_info()
    info.update({"num_per_genre": FLAGS.num_per_genre, "seed": FLAGS.seed,
                 "edge_ms": FLAGS.edge_ms, "margin_ms": FLAGS.margin_ms,
                 "loud_ratio": FLAGS.loud_ratio, "runs": {}})
    rows, genre_rows = [], []
    for name, train_dir in runs.items():
        result = run_one(train_dir)
        info["runs"][name] = result
        for kind in ("generated", "real_heldout"):
            s = result[kind]["all"]
            rows.append([name, kind, f"{s['start_ratio_median']:.2f}",
                         f"{s['end_ratio_median']:.2f}", f"{s['loud_edge_share']:.2f}",
                         f"{s['first_frame_db']:+.1f}", f"{s['last_frame_db']:+.1f}"])
            genre_rows.append([name, kind] + [f"{v['loud_edge_share']:.2f}"
                                              for v in result[kind]["per_genre"].values()])
        print(name, "done", flush=True)
    genres = next(iter(info["runs"].values()))["genres"]
    table = bc.markdown_table(
        ["run", "clips", "start / middle (median)", "end / middle (median)",
         f"share with an edge > {FLAGS.loud_ratio:g}x", "first frame dB", "last frame dB"], rows)
    genre_table = bc.markdown_table(["run", "clips"] + genres, genre_rows)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    bc.write_json(os.path.join(FLAGS.output_dir, "clip_edges.json"), bc.finish(info))
    with open(os.path.join(FLAGS.output_dir, "clip_edges.md"), "w") as f:
        f.write(f"# Clip edges ({FLAGS.num_per_genre} clips per genre, edges of "
                f"{FLAGS.edge_ms:g} ms)\n\n{table}\n\nShare of clips with a loud edge, per "
                f"genre:\n\n{genre_table}\n")
    print(table)
    print(genre_table)


if __name__ == "__main__":
    app.run(main)
