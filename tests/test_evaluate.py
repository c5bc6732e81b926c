"""Evaluation: the metric maths, flags.txt handling, and an end-to-end run on tiny data."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import soundfile

import helpers_rundir
from gansynth_tf import classifier, datasets, evaluate
from gansynth_tf import metrics as metrics_lib
from gansynth_tf import split as split_lib

SR = helpers_rundir.SAMPLE_RATE
LENGTH = helpers_rundir.AUDIO_LENGTH
# Folder names are genre names; sorted, as the folder source orders them.
FAKE_GENRES = ["drone", "hip hop", "hiss"]


# ----------------------------------------------------------------------------- maths


def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + 0.1 * np.eye(5)
    mu = rng.standard_normal(5)
    assert metrics_lib.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_analytic_value():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + np.eye(4)
    shift = np.array([1.0, -2.0, 0.5, 3.0])
    # Same covariance: only the means count.
    assert metrics_lib.frechet_distance(np.zeros(4), cov, shift, cov) == pytest.approx(
        shift @ shift, rel=1e-9)
    # Commuting (diagonal) covariances: sum of (sqrt(s1) - sqrt(s2))^2 on the diagonal.
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = 2.0 ** 2 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = metrics_lib.frechet_distance(np.zeros(3), np.diag(s1), [2.0, 0, 0], np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)
    # From samples: two shifted standard normals are about |shift|^2 apart.
    x = rng.standard_normal((4000, 3))
    fd = metrics_lib.frechet_distance(*metrics_lib.gaussian_stats(x),
                                      *metrics_lib.gaussian_stats(x[::-1] + [2.0, 0, 0]))
    assert fd == pytest.approx(4.0, rel=0.01)


def test_ndb_is_small_for_one_distribution_and_large_for_a_shifted_one():
    rng = np.random.default_rng(2)
    centers = rng.standard_normal((6, 8)) * 4.0

    def sample(n, offset=0.0):
        return centers[rng.integers(0, 6, n)] + rng.standard_normal((n, 8)) + offset

    real = sample(1000)
    same = metrics_lib.ndb(real, sample(1000), k=20, seed=0)
    shifted = metrics_lib.ndb(real, sample(1000, offset=1.5), k=20, seed=0)
    assert same["k"] == 20 and len(same["different"]) == 20
    assert same["ndb_k"] <= 0.15
    assert shifted["ndb_k"] >= 0.5
    assert sum(same["real_proportions"]) == pytest.approx(1.0)
    # Mode collapse: all generated samples in one mode empties the other bins.
    collapsed = centers[0] + rng.standard_normal((500, 8))
    assert metrics_lib.ndb(real, collapsed, k=20, seed=0)["ndb_k"] >= 0.8


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(3)
    truth = np.repeat(np.arange(4), 50)
    x = np.eye(4)[truth] * 20.0 + rng.standard_normal((200, 4))
    centers, assign = metrics_lib.kmeans(x, 4, seed=1)
    assert centers.shape == (4, 4)
    # Same partition up to relabelling.
    for c in range(4):
        assert len(set(assign[truth == c])) == 1
    assert len(set(assign)) == 4
    with pytest.raises(ValueError, match="1 <= k <= n"):
        metrics_lib.kmeans(x[:3], 4)


def test_entropy_and_pairwise_distances():
    assert metrics_lib.entropy([0.25] * 4) == pytest.approx(math.log(4))
    assert metrics_lib.entropy([0.0, 1.0, 0.0]) == pytest.approx(0.0)
    np.testing.assert_allclose(metrics_lib.entropy([[0.5, 0.5], [1.0, 0.0]]), [math.log(2), 0])
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    l1, l2 = metrics_lib.mean_pairwise_distances(x)
    # Pairs: (1, 0) -> L1 1, RMS sqrt(2); (0, 2) -> 2, sqrt(8); (1, 2) -> 3, sqrt(10).
    assert l1 == pytest.approx(2.0)
    assert l2 == pytest.approx((math.sqrt(2) + math.sqrt(8) + math.sqrt(10)) / 3)
    assert metrics_lib.mean_pairwise_distances(x[:1]) == (None, None)


def test_flags_txt_sets_the_data_config_and_flags_override_it(tmp_path):
    train_dir = helpers_rundir.make_train_dir(
        str(tmp_path / "run"), FAKE_GENRES,
        flags_lines=["--dataset=folder", "--data_dir=/data/x y", "--nocache",
                     "--clips_per_file=3", "--sample_rate=16000", "--spec_shape=16,128",
                     "--noverbose_unrelated", "--seed=7"])
    rep = helpers_rundir.tiny_representation()
    cfg = evaluate.data_config(train_dir, rep)
    assert (cfg.dataset, cfg.data_dir, cfg.cache, cfg.clips_per_file, cfg.seed) == (
        "folder", "/data/x y", False, 3, 7)
    # The model's rate and length win over the data flags.
    assert (cfg.sample_rate, cfg.audio_length) == (SR, LENGTH)
    cfg = evaluate.data_config(train_dir, rep, {"data_dir": "/other", "dataset": None})
    assert (cfg.dataset, cfg.data_dir) == ("folder", "/other")


# ----------------------------------------------------------------------------- end to end


def _clip(genre, index):
    """Three evaluation windows' worth of an easily told apart 'genre'."""
    rng = np.random.default_rng([FAKE_GENRES.index(genre), index])
    n = 3 * LENGTH
    t = np.arange(n) / SR
    if genre == "drone":
        f0 = rng.uniform(150, 300)
        x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in (1, 2, 3))
    elif genre == "hip hop":
        x = np.zeros(n)
        period = int(rng.uniform(0.02, 0.04) * SR)
        for start in range(int(rng.integers(0, period)), n, period):
            m = min(200, n - start)
            x[start:start + m] += (np.sin(2 * np.pi * 900 * t[:m]) * np.exp(-t[:m] * 300))
    else:
        x = rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "data"
    for genre in FAKE_GENRES:
        os.makedirs(data / genre)
        for i in range(4):
            soundfile.write(str(data / genre / f"{i}.wav"), _clip(genre, i), SR,
                            subtype="PCM_16")
    train_dir = helpers_rundir.make_train_dir(
        str(root / "run"), FAKE_GENRES,
        flags_lines=["--dataset=folder", f"--data_dir={data}", "--audio_backend=soundfile",
                     f"--sample_rate={SR}", f"--audio_length={LENGTH}"])
    args = ["evaluate", f"--train_dir={train_dir}", "--num_real=4",
            "--num_classifier_train=8", "--num_generated_per_genre=4",
            "--classifier_epochs=12", "--tensorboard"]
    first = evaluate.main(args)
    return train_dir, args, first


def test_evaluation_writes_every_metric_in_range(evaluated):
    train_dir, _, metrics = evaluated
    path = os.path.join(train_dir, "eval", "metrics.json")
    with open(path) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(metrics))
    for key in ("real_accuracy", "generated_accuracy", "mean_entropy", "marginal_entropy",
                "max_entropy", "frechet_distance", "ndb", "ndb_k", "ndb_bins",
                "diversity_l1_ratio", "diversity_l2_ratio", "per_genre", "classifier",
                "images_seen", "genres"):
        assert key in saved, key
    assert saved["genres"] == FAKE_GENRES
    assert saved["num_real"] == 12 and saved["num_generated"] == 12
    # The classifier separates the real genres of held-out clips.
    assert saved["real_accuracy"] >= 0.9
    assert saved["classifier"]["trained_now"] is True
    assert saved["classifier"]["heldout_accuracy"] == pytest.approx(saved["real_accuracy"])
    # The second judge learns the same real genres from features, and is reported beside.
    assert saved["judge2_real_accuracy"] >= 0.9
    assert 0.0 <= saved["judge2_generated_accuracy"] <= 1.0
    assert saved["chance_accuracy"] == pytest.approx(1 / 3) and saved["warnings"] == []
    # Real vs real (held-out vs training tracks) is the floor the generated FD is read against.
    assert 0.0 <= saved["frechet_distance_real_vs_real"] < saved["frechet_distance"]
    assert 0.0 <= saved["generated_accuracy"] <= 1.0
    assert 0.0 <= saved["ndb_k"] <= 1.0 and saved["ndb_bins"] == 2  # 12 real clips / 5
    assert saved["frechet_distance"] >= 0.0
    assert saved["max_entropy"] == pytest.approx(math.log(3))
    assert 0.0 <= saved["mean_entropy"] <= saved["max_entropy"] + 1e-9
    assert 0.0 <= saved["marginal_entropy"] <= saved["max_entropy"] + 1e-9
    for name in FAKE_GENRES:
        g = saved["per_genre"][name]
        assert g["num_real"] == 4 and g["num_generated"] == 4
        assert 0.0 <= g["generated_accuracy"] <= 1.0
        assert 0.0 <= g["judge2_generated_accuracy"] <= 1.0 and g["judge2_real_accuracy"] >= 0.5
        assert g["diversity_l1_ratio"] > 0 and g["diversity_l2_ratio"] > 0
        assert g["diversity_l1_ratio"] == pytest.approx(
            g["diversity_l1_generated"] / g["diversity_l1_real"])
        assert 0.0 <= g["loud_edge_share_generated"] <= 1.0
    with open(os.path.join(train_dir, "eval", "metrics.md")) as f:
        md = f.read()
    assert "| generated genre accuracy |" in md and "| hip hop |" in md
    assert "| judge 2: generated genre accuracy |" in md and "real (training tracks) vs real" in md
    edges = f"{saved['loud_edge_share_generated']:.2f} / {saved['loud_edge_share_real']:.2f}"
    assert f"| clips with a loud edge (first or last 50 ms over 2x the middle), generated / real | {edges} |" in md  # noqa: E501
    with open(os.path.join(train_dir, "eval", "metrics.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert any(p.startswith("events.out.tfevents")
               for p in os.listdir(os.path.join(train_dir, "eval")))
    assert os.path.exists(os.path.join(train_dir, "eval_classifier", classifier.MODEL_FILE))


def test_second_evaluation_reuses_the_saved_classifier(evaluated, tmp_path, capsys):
    train_dir, args, first = evaluated
    out = str(tmp_path / "again.json")
    capsys.readouterr()
    second = evaluate.main(args[:-1] + [f"--output_json={out}"])
    assert second["classifier"]["trained_now"] is False
    assert "reusing the genre classifier" in capsys.readouterr().out
    assert second["judge2_real_accuracy"] == pytest.approx(first["judge2_real_accuracy"])
    assert second["frechet_distance_real_vs_real"] == pytest.approx(
        first["frechet_distance_real_vs_real"], rel=1e-4)
    assert second["real_accuracy"] == pytest.approx(first["real_accuracy"])
    assert first["truncation"] == 1.0 and first["diversity_l1_ratio"] > 0.05
    # Truncation 0 sends every latent to the mean: one clip per genre, no diversity left.
    third = evaluate.main(args[:-1] + [f"--output_json={tmp_path / 't0.json'}", "--truncation=0"])
    assert third["truncation"] == 0.0 and third["diversity_l1_ratio"] < 1e-3
    assert os.path.exists(out) and os.path.exists(str(tmp_path / "again.png"))


def test_a_classifier_of_several_members_is_trained_reported_and_reused(evaluated, tmp_path,
                                                                          capsys):
    train_dir, args, _ = evaluated
    base = [a for a in args if a != "--tensorboard"] + [
        f"--classifier_dir={tmp_path / 'judge'}", "--classifier_members=2"]
    first = evaluate.main(base + [f"--output_json={tmp_path / 'one.json'}"])
    assert first["classifier_members"] == 2 and first["classifier"]["trained_now"] is True
    assert first["classifier"]["members"] == 2
    assert len(first["classifier"]["member_heldout_accuracy"]) == 2
    assert len(first["generated_accuracy_members"]) == 2
    assert first["real_accuracy"] == pytest.approx(first["classifier"]["heldout_accuracy"])
    with open(tmp_path / "one.md") as f:
        assert "| classifier members (2): real accuracy each |" in f.read()
    capsys.readouterr()
    again = evaluate.main(base + [f"--output_json={tmp_path / 'two.json'}"])
    assert again["classifier"]["trained_now"] is False
    assert "(2 member(s)" in capsys.readouterr().out
    assert again["generated_accuracy_members"] == pytest.approx(
        first["generated_accuracy_members"])
    # Asked for another number of members, the saved ensemble is not reused.
    three = evaluate.main(base[:-1] + ["--classifier_members=1",
                                       f"--output_json={tmp_path / 'three.json'}"])
    assert three["classifier"]["trained_now"] is True and three["classifier_members"] == 1


def test_data_with_other_genres_is_rejected(evaluated, tmp_path):
    train_dir, _, _ = evaluated
    other = tmp_path / "other"
    for genre in ("polka", "drone"):
        os.makedirs(other / genre)
        for i in range(2):
            soundfile.write(str(other / genre / f"{i}.wav"), _clip("drone", i), SR)
    with pytest.raises(SystemExit) as e:
        evaluate.main(["evaluate", f"--train_dir={train_dir}", f"--data_dir={other}",
                       "--num_real=2", "--num_classifier_train=1"])
    assert "differ from the run's" in str(e.value.code) and "polka" in str(e.value.code)


def test_real_clips_come_from_held_out_tracks_and_spread_over_them(evaluated):
    train_dir, _, metrics = evaluated
    rep = helpers_rundir.tiny_representation()
    cfg = evaluate.data_config(train_dir, rep)
    held_src = evaluate.real_source(cfg, "heldout", None, 4)
    train_src = evaluate.real_source(cfg, "train", held_src.track_split, 8)
    assert not set(held_src.paths) & set(train_src.paths)
    assert len(held_src.paths) == 3 and len(train_src.paths) == 9   # 1 + 3 files a genre
    assert metrics["heldout_tracks"] == {g: 1 for g in FAKE_GENRES}
    assert metrics["real_clips_from"].startswith("tracks chosen as held out now")
    held, held_y = evaluate.collect_clips(held_src, FAKE_GENRES, 4)
    assert held.shape == (12, LENGTH) and np.bincount(held_y).tolist() == [4, 4, 4]
    # Fewer wanted than there are: evenly spaced over the stream, so every track is used.
    train, train_y = evaluate.collect_clips(train_src, FAKE_GENRES, 3)
    assert np.bincount(train_y).tolist() == [3, 3, 3]
    every, every_y = evaluate.collect_clips(train_src, FAKE_GENRES, 1000)
    for g in range(3):
        mine = every[every_y == g]
        picked = train[train_y == g]
        positions = [int(np.argmin(np.abs(mine - p).sum(axis=1))) for p in picked]
        assert positions[0] == 0 and positions[-1] == len(mine) - 1


def test_a_saved_split_decides_which_tracks_are_scored(evaluated, tmp_path):
    train_dir, _, _ = evaluated
    rep = helpers_rundir.tiny_representation()
    cfg = evaluate.data_config(train_dir, rep)
    run = str(tmp_path / "run")
    src = datasets.build_source(cfg, split="all")
    keys = [split_lib.file_key(p, cfg.data_dir) for p in src.paths]
    genres = [src.genres[y] for y in src.labels]
    # Hold out every genre's "0.wav", whatever the hash rule would pick.
    chosen = split_lib.TrackSplit(0.12, {
        g: (tuple(k for k, gg in zip(keys, genres) if gg == g and k.endswith("0.wav")),
            tuple(k for k, gg in zip(keys, genres) if gg == g and not k.endswith("0.wav")))
        for g in FAKE_GENRES})
    chosen.save(run)
    name, track_split, note = evaluate.heldout_split(run, cfg)
    assert (name, track_split, note) == ("heldout", chosen, "held-out tracks (split.json)")
    held = evaluate.real_source(cfg, name, track_split, 4)
    assert sorted(os.path.basename(p) for p in held.paths) == ["0.wav"] * 3
    # --holdout_fraction=0 on the command line scores every track, also for a run with a
    # split (the way to score a genre whose one file is a training track).
    name, track_split, note = evaluate.heldout_split(
        run, dataclasses.replace(cfg, holdout_fraction=0.0))
    assert (name, track_split) == ("all", chosen) and "training ones included" in note
    split_lib.TrackSplit(0.0, chosen.genres).save(run)
    assert evaluate.heldout_split(run, cfg)[0] == "all"


def test_a_ceiling_near_chance_is_flagged():
    near = evaluate.ceiling_warnings({"chance_accuracy": 1 / 3, "real_accuracy": 0.40,
                                      "judge2_real_accuracy": 0.9})
    assert len(near) == 1 and "genre classifier scores 0.400" in near[0]
    assert "--retrain_classifier" in near[0]
    assert evaluate.ceiling_warnings({"chance_accuracy": 0.25, "real_accuracy": 0.36,
                                      "judge2_real_accuracy": 0.5}) == []


@pytest.mark.parametrize("flag,where,expected", [
    ("--output_json", "{blocker}/metrics.json", "is a file"),
    ("--output_json", "{tmp}", "is a folder"),
    ("--classifier_dir", "{blocker}/classifier", "is a file"),
    ("--tensorboard_dir", "{blocker}/events", "is a file"),
])
def test_an_unwritable_output_is_one_line_naming_it_and_its_flag(evaluated, tmp_path, flag,
                                                                 where, expected):
    # Root ignores a read-only mode: a path under a regular file stands in for a read-only
    # run's default outputs. Checked before the minutes of evaluation.
    train_dir, args, _ = evaluated
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    path = where.format(blocker=blocker, tmp=tmp_path)
    # A new classifier folder is written, the run's saved one only read.
    extra = ["--retrain_classifier"] if flag == "--classifier_dir" else []
    with pytest.raises(SystemExit) as e:
        evaluate.main([*args, f"{flag}={path}", *extra])
    message = str(e.value.code)
    assert message.startswith("evaluate: ") and "\n" not in message, message
    assert f"{flag}={path}" in message and expected in message, message
    assert f"give {flag} a" in message, message
    assert blocker.read_text() == ""
