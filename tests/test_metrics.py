"""metrics.py: every metric on inputs small enough to work out by hand."""
import math

import numpy as np
import pytest
import scipy.linalg

from gansynth_tf import metrics


def test_gaussian_stats_by_hand():
    # Two points (1, 2), (3, 6): mean (2, 4); unbiased (n - 1 = 1) deviations (-1, -2), (1, 2).
    mean, cov = metrics.gaussian_stats([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(cov, [[2.0, 4.0], [4.0, 8.0]])
    mean, cov = metrics.gaussian_stats([[0, 0], [2, 0], [0, 2], [2, 2]])
    np.testing.assert_allclose(cov, np.eye(2) * 4 / 3)  # 4 squared deviations of 1 over 3
    with pytest.raises(ValueError, match="at least two rows"):
        metrics.gaussian_stats([[1.0, 2.0]])


def test_frechet_distance_by_hand():
    # 1-D: (0 - 3)^2 + 1 + 4 - 2 sqrt(1 * 4) = 10.
    assert metrics.frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0)
    # Singular covariances on different axes: no shared spread, 1 + 1 - 0 = 2.
    assert metrics.frechet_distance([0, 0], np.diag([1.0, 0.0]), [0, 0],
                                    np.diag([0.0, 1.0])) == pytest.approx(2.0)
    # The same rank-1 covariance: sqrt(S^1/2 S S^1/2) = S, 10 + 10 - 2 * 10 = 0.
    s = np.array([[2.0, 4.0], [4.0, 8.0]])
    assert metrics.frechet_distance([1, 1], s, [1, 1], s) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_on_well_conditioned_covariances():
    rng = np.random.default_rng(0)
    for d in (2, 5, 12):
        a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
        s1, s2 = a @ a.T + np.eye(d), b @ b.T + 0.5 * np.eye(d)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * covmean)
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_entropy_by_hand():
    # 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2; unnormalised counts give the same.
    assert metrics.entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5 * math.log(2))
    assert metrics.entropy([2, 1, 1]) == pytest.approx(1.5 * math.log(2))
    assert metrics.entropy([0.0, 1.0, 0.0]) == pytest.approx(0.0)
    np.testing.assert_allclose(metrics.entropy([[0.5, 0.5], [1.0, 0.0]]), [math.log(2), 0.0])
    np.testing.assert_allclose(metrics.entropy([[0.5, 1.0], [0.5, 0.0]], axis=0),
                               [math.log(2), 0.0])


def test_kmeans_by_hand():
    x = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    centers, assign = metrics.kmeans(x, 2, seed=0)
    np.testing.assert_allclose(np.sort(centers[:, 0]), [0.5, 11.0])
    assert assign[0] == assign[1] != assign[2] == assign[3] == assign[4]
    # Fixed seed: the same answer every call.
    again = metrics.kmeans(x, 2, seed=0)
    np.testing.assert_array_equal(again[1], assign)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        metrics.kmeans(x, 6)


def test_two_proportion_p_values_by_hand():
    # 0.5 vs 0.75 of 20 each: pooled 0.625, se = sqrt(0.625 * 0.375 * 0.1), z = sqrt(8/3);
    # two-sided p = erfc(z / sqrt 2) = erfc(sqrt(4/3)) = 0.1025.
    p = metrics.two_proportion_p_values([0.5, 0.3, 0.0], 20, [0.75, 0.3, 0.0], 20)
    assert p[0] == pytest.approx(math.erfc(math.sqrt(4 / 3)), rel=1e-9)
    assert p[0] == pytest.approx(0.1025, abs=1e-4)
    assert p[1] == pytest.approx(1.0) and p[2] == pytest.approx(1.0)  # equal; both empty


def test_ndb_by_hand():
    # Real: ten points at 0 and ten at 10 (whitened to -1 and +1): two bins of share 0.5.
    real = np.array([[0.0]] * 10 + [[10.0]] * 10)
    same = metrics.ndb(real, real[::-1], k=2)
    assert same["ndb"] == 0 and same["ndb_k"] == 0.0
    np.testing.assert_allclose(sorted(same["real_proportions"]), [0.5, 0.5])
    # Every generated point at 0: shares 1 and 0, z = 0.5 / sqrt(0.75 * 0.25 * 0.1) = 3.65,
    # p = 2.6e-4 in both bins.
    collapsed = metrics.ndb(real, np.zeros((20, 1)), k=2)
    assert (collapsed["ndb"], collapsed["ndb_k"], collapsed["different"]) == (2, 1.0,
                                                                              [True, True])
    assert sorted(collapsed["generated_proportions"]) == [0.0, 1.0]
    # 15 / 5: p = 0.1025 (above): different at alpha 0.2, not at 0.05.
    skewed = np.array([[0.0]] * 15 + [[10.0]] * 5)
    assert metrics.ndb(real, skewed, k=2, alpha=0.05)["ndb"] == 0
    assert metrics.ndb(real, skewed, k=2, alpha=0.2)["ndb"] == 2


def test_ndb_whitening_ignores_the_scale_of_each_dimension_and_keeps_constant_ones():
    rng = np.random.default_rng(1)
    real = np.concatenate([rng.standard_normal((60, 3)), rng.standard_normal((60, 3)) + 4])
    fake = rng.standard_normal((80, 3)) + [4, 4, 0]
    scale, offset = np.array([1.0, 1000.0, 0.01]), np.array([5.0, -3.0, 2.0])
    plain = metrics.ndb(real, fake, k=4, seed=3)
    scaled = metrics.ndb(real * scale + offset, fake * scale + offset, k=4, seed=3)
    assert scaled["ndb"] == plain["ndb"] > 0
    assert sorted(scaled["real_proportions"]) == pytest.approx(sorted(plain["real_proportions"]))
    constant = metrics.ndb(np.c_[real, np.ones(120)], np.c_[fake, np.ones(80)], k=4, seed=3)
    assert constant["ndb"] == plain["ndb"]


def test_mean_pairwise_distances_by_hand():
    # One pair (0, 0) - (3, 4): L1 = mean(3, 4) = 3.5, L2 = RMS = 5 / sqrt(2).
    l1, l2 = metrics.mean_pairwise_distances([[0.0, 0.0], [3.0, 4.0]])
    assert (l1, l2) == pytest.approx((3.5, 5 / math.sqrt(2)))
    # Pairs (1, 0) -> 1, sqrt(2); (0, 2) -> 2, sqrt(8); (1, 2) -> 3, sqrt(10).
    l1, l2 = metrics.mean_pairwise_distances([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    assert l1 == pytest.approx(2.0)
    assert l2 == pytest.approx((math.sqrt(2) + math.sqrt(8) + math.sqrt(10)) / 3)
    assert metrics.mean_pairwise_distances([[1.0, 2.0]]) == (None, None)


def test_edge_ratios_find_loud_edges_and_ignore_onsets_in_the_middle():
    rng = np.random.default_rng(0)
    sr = 8000
    waves = rng.normal(size=(3, 2 * sr))
    waves[1, :400] *= 3.0        # the first 50 ms three times louder
    waves[1, -400:] *= 0.5       # the last half as loud
    waves[2, sr:sr + 400] *= 10  # one loud onset in the middle: the median ignores it
    start, end = metrics.edge_ratios(waves, sr)
    # Within the sampling noise of an RMS over 400 samples (about 4%).
    np.testing.assert_allclose(start, [1.0, 3.0, 1.0], rtol=0.1)
    np.testing.assert_allclose(end, [1.0, 0.5, 1.0], rtol=0.1)
    # Only the edge's own samples count: a louder 60 ms edge reads the same as 50 ms.
    waves[0, :480] *= 2.0
    assert metrics.edge_ratios(waves, sr)[0][0] == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError, match="too short"):
        metrics.edge_ratios(waves[:, :3000], sr)
