"""Long-form pieces: genre paths, the latent walk, crossfaded joins and the seam measure."""
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf import longform

SR = 8000
L = 4000


class NoiseSampler:
    """Stands in for a generator: white noise whose level and colour follow z and genre."""

    def __init__(self, num_genres=3, latent_dim=8):
        self.sample_rate, self.audio_length = SR, L
        self.num_genres, self.latent_dim = num_genres, latent_dim
        self.calls = []

    def audio(self, condition, z):
        self.calls.append((np.array(condition), np.array(z)))
        out = []
        for c, v in zip(condition, z):
            rng = np.random.default_rng(abs(int(1e6 * v[0])))
            out.append(0.3 * rng.standard_normal(L))
        return np.stack(out).astype(np.float32)


def test_genre_path_parses_and_blends():
    genres = ["ambient", "rock", "jazz"]
    path = longform.parse_genre_path("ambient:0, rock:10,jazz:20", genres)
    assert path == [(0.0, 0), (10.0, 1), (20.0, 2)]
    c = longform.genre_conditions(path, [0.0, 5.0, 10.0, 15.0, 25.0], 3)
    np.testing.assert_allclose(c, [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5],
                                   [0, 0, 1]], atol=1e-6)
    for bad, match in [("ambient", "GENRE:SECONDS"), ("polka:0", "unknown genre"),
                       ("rock:5,jazz:5", "strictly increasing"), ("rock:x", "not a number")]:
        with pytest.raises(ValueError, match=match):
            longform.parse_genre_path(bad, genres)


def test_latent_walk_is_smooth_and_wander_sets_the_pace():
    still = longform.latent_walk(0, 6, 16, wander=0.0)
    assert np.allclose(still, still[0])
    walk = longform.latent_walk(0, 9, 16, wander=0.25)
    anchors = tf.random.stateless_normal([4, 16], seed=[0, longform.WALK_SEED_STREAM]).numpy()
    np.testing.assert_allclose(walk[0], anchors[0], atol=1e-5)
    np.testing.assert_allclose(walk[4], anchors[1], atol=1e-5)   # every 4th clip an anchor
    np.testing.assert_allclose(walk[8], anchors[2], atol=1e-5)
    steps = np.linalg.norm(np.diff(walk, axis=0), axis=1)
    jumps = np.linalg.norm(np.diff(longform.latent_walk(0, 9, 16, wander=1.0), axis=0), axis=1)
    assert steps.max() < 0.5 * jumps.mean()
    with pytest.raises(ValueError, match="wander"):
        longform.latent_walk(0, 3, 4, wander=-1)


def test_crossfade_keeps_the_level_of_uncorrelated_clips_flat():
    rng = np.random.default_rng(0)
    clips = 0.3 * rng.standard_normal((6, L))
    overlap = 1000
    joined = longform.crossfade_join(clips, overlap)
    assert joined.shape == (5 * (L - overlap) + L,)
    rms = np.sqrt(np.mean(joined.reshape(-1, 500) ** 2, axis=1))
    assert np.all(np.abs(20 * np.log10(rms / 0.3)) < 1.0)      # no 3 dB dip at the joins
    # Constant clips: the sin/cos ramps of one join add up to exactly one in power.
    ramp_sum = longform.crossfade_join(np.ones((2, L)), overlap)[L - overlap:L]
    assert np.all(ramp_sum >= 1.0 - 1e-9) and np.all(ramp_sum <= np.sqrt(2) + 1e-9)


def test_seam_report_flags_a_hard_cut_and_passes_a_crossfade():
    rng = np.random.default_rng(1)
    loud = np.concatenate([0.05 * rng.standard_normal(L), 0.5 * rng.standard_normal(L),
                           0.05 * rng.standard_normal(L)])
    cut = longform.seam_report(loud, SR, [L / SR, 2 * L / SR])
    assert cut["level_step_db"]["max_join_z"] > 5
    assert min(cut["level_step_db"]["join_percentile"]) >= 99
    # 2 s clips crossfaded over 0.5 s, as a real piece: frames well inside the clips exist.
    clips = 0.3 * rng.standard_normal((5, 4 * L))
    smooth = longform.crossfade_join(clips, L)
    joins = longform.join_times(5, 3 * L, L, SR)
    report = longform.seam_report(smooth, SR, joins)
    assert report["joins"] == 4
    assert report["level_step_db"]["max_join_z"] < 3
    assert report["flux"]["max_join_z"] < 3
    assert report["exclude_seconds"] == pytest.approx(0.25)
    # Short clips whose crossfades cover most of their length (the quickstart's 0.5 s clips
    # with 0.25 s crossfades): the reference frames sit between the joins, not 0.25 s away
    # from them, and a crossfade still does not stand out while a hard cut does.
    clip, overlap = 4096, 2000
    short = 0.3 * rng.standard_normal((30, clip))
    smooth = longform.crossfade_join(short, overlap)
    joins = longform.join_times(30, clip - overlap, overlap, SR)
    report = longform.seam_report(smooth, SR, joins)
    assert report["frames_inside"] > 0.3 * len(smooth) / (0.01 * SR)
    assert report["level_step_db"]["max_join_z"] < 4 and report["flux"]["max_join_z"] < 4
    for series in ("level_step_db", "flux"):
        assert report[series]["max_join_z"] < report[series]["max_inside_z"]
    levels = np.repeat(np.where(np.arange(30) % 2, 0.5, 0.05), clip - overlap)
    cut = levels * rng.standard_normal(len(levels))
    hard = longform.seam_report(cut, SR, [i * (clip - overlap) / SR for i in range(1, 30)])
    assert hard["level_step_db"]["mean_join_percentile"] > 90


def test_long_form_gives_the_duration_and_follows_the_path():
    sampler = NoiseSampler()
    path = longform.parse_genre_path("ambient:1,jazz:3", ["ambient", "rock", "jazz"])
    audio, info = longform.long_form(sampler, 4.0, path, seed=3, wander=0.5,
                                     overlap_seconds=0.125, batch_size=4)
    assert audio.shape == (4 * SR,)
    assert info["overlap"] == 1000 and info["hop"] == 3000
    assert info["clips"] == 11 and len(info["joins"]) == 10
    conditions = np.concatenate([c for c, _ in sampler.calls])
    assert conditions.shape == (11, 3)
    np.testing.assert_allclose(conditions[0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(conditions[-1], [0, 0, 1], atol=1e-6)
    assert np.all(np.diff(conditions[:, 2]) >= -1e-9)            # the morph only moves on
    again, _ = longform.long_form(NoiseSampler(), 4.0, path, seed=3, wander=0.5,
                                  overlap_seconds=0.125)
    np.testing.assert_array_equal(audio, again)
    with pytest.raises(ValueError, match="duration"):
        longform.long_form(NoiseSampler(), 0.0, path)


def test_genre_path_in_the_graph_matches_the_parser_and_rejects_bad_paths():
    genres = ["ambient", "rock", "jazz"]
    times, ids = longform.parse_genre_path_tf(tf.constant("ambient:0, rock:10,jazz:20.5"),
                                              genres)
    np.testing.assert_allclose(times.numpy(), [0.0, 10.0, 20.5])
    assert ids.numpy().tolist() == [0, 1, 2]
    times, ids = longform.parse_genre_path_tf(tf.constant("jazz"), genres)
    assert times.numpy().tolist() == [0.0] and ids.numpy().tolist() == [2]
    for bad, match in [("polka", "unknown genre"), ("rock:5,jazz:5", "strictly increasing"),
                       ("rock:x", "rock:x|number|convert")]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=match):
            longform.parse_genre_path_tf(tf.constant(bad), genres)


def test_long_form_in_the_graph_equals_the_eager_piece():
    """The SavedModel's generate_long and the CLI's long_form make the same piece."""
    sampler = NoiseSampler()

    def waves(condition, z):
        # A deterministic function of (condition, z) that both paths can run.
        t = tf.range(L, dtype=tf.float32)[None, :] / SR
        f = 200.0 + 100.0 * tf.reduce_sum(condition * [0.0, 1.0, 2.0], axis=1, keepdims=True)
        return 0.1 * (1.0 + tf.abs(z[:, :1])) * tf.sin(2 * np.pi * f * t)

    sampler.audio = lambda c, z: waves(tf.constant(c), tf.constant(z)).numpy()
    path = [(0.0, 0), (1.0, 2)]
    eager, info = longform.long_form(sampler, 2.3, path, seed=5, wander=0.5,
                                     overlap_seconds=0.1, batch_size=2)
    graph = tf.function(lambda text, seed, seconds: longform.long_form_tf(
        waves, text, seed, seconds, ["a", "b", "c"], SR, L, sampler.latent_dim, wander=0.5,
        overlap_seconds=0.1, batch_size=2))
    piece = graph(tf.constant("a:0,c:1"), tf.constant(5, tf.int64), tf.constant(2.3))
    assert piece.shape == (int(round(2.3 * SR)),) and info["clips"] == 6
    np.testing.assert_allclose(piece.numpy(), eager, atol=1e-4)  # float32 sin, graph vs eager


def test_peak_normalize_sets_minus_one_dbfs_and_leaves_silence():
    x = tf.constant([[0.0, 3.0, -11.0], [0.0, 0.0, 0.0], [0.0, 0.01, -0.005]])
    y = longform.peak_normalize_tf(x).numpy()
    target = 10 ** (-1 / 20)
    np.testing.assert_allclose(np.abs(y).max(axis=1), [target, 0.0, target], rtol=1e-6)
    np.testing.assert_allclose(y[0] / y[0, 2], x.numpy()[0] / -11.0, rtol=1e-6)  # shape kept


def test_long_form_holds_a_fixed_genre_mix_and_a_one_hot_mix_equals_the_path():
    mix = np.array([0.25, 0.0, 0.75], np.float32)
    sampler = NoiseSampler()
    audio, info = longform.long_form(sampler, 2.0, None, seed=2, condition=mix)
    assert audio.shape == (2 * SR,)
    conditions = np.concatenate([c for c, _ in sampler.calls])
    assert conditions.shape == (info["clips"], 3)
    np.testing.assert_array_equal(conditions, np.repeat(mix[None], info["clips"], 0))
    by_path, _ = longform.long_form(NoiseSampler(), 2.0, [(0.0, 2)], seed=2)
    by_mix, _ = longform.long_form(NoiseSampler(), 2.0, None, seed=2,
                                   condition=np.eye(3, dtype=np.float32)[2])
    np.testing.assert_array_equal(by_path, by_mix)
    with pytest.raises(ValueError, match="expected one mix of"):
        longform.long_form(NoiseSampler(), 2.0, None, condition=[1.0, 0.0])
