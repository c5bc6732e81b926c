"""The second judge: features that ignore loudness, and a linear model that tells genres apart."""
import numpy as np

from gansynth_tf import feature_judge

SR = 16000


def _clip(kind, rng, n=SR):
    t = np.arange(n) / SR
    if kind == 0:       # low harmonic tone
        f0 = rng.uniform(100, 200)
        x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    elif kind == 1:     # clicks
        x = np.zeros(n)
        x[rng.integers(0, 400)::rng.integers(800, 1600)] = 1.0
    else:               # bright noise
        x = np.diff(rng.standard_normal(n + 1))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def test_features_are_fixed_size_finite_and_ignore_level():
    rng = np.random.default_rng(0)
    clip = _clip(0, rng)
    f = feature_judge.clip_features(clip, SR)
    assert f.shape == (2 * (feature_judge.N_MFCC + 7 + 4),) and np.isfinite(f).all()
    np.testing.assert_allclose(feature_judge.clip_features(0.05 * clip, SR), f, rtol=1e-3,
                               atol=2e-3)
    assert np.isfinite(feature_judge.clip_features(np.zeros(SR, np.float32), SR)).all()
    assert feature_judge.features(np.stack([clip, clip]), SR).shape == (2, f.shape[0])


def test_judge_tells_separable_genres_apart_and_not_noise_labels():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 12)
    waves = np.stack([_clip(k, rng) for k in labels])
    judge = feature_judge.FeatureJudge.fit(waves, labels, SR, num_genres=4)
    test_y = np.repeat(np.arange(3), 5)
    test = np.stack([_clip(k, rng) for k in test_y])
    assert judge.accuracy(test, test_y) == 1.0
    p = judge.predict_proba(test)
    assert p.shape == (15, 4) and np.allclose(p.sum(1), 1) and np.all(p[:, 3] == 0)
    # Same clips, shuffled labels: a held-out score near chance, not near 1.
    shuffled = rng.permutation(labels)
    noisy = feature_judge.FeatureJudge.fit(waves, shuffled, SR, num_genres=3)
    assert noisy.accuracy(test, test_y) < 0.75
    same = feature_judge.FeatureJudge.fit_features(feature_judge.features(waves, SR), labels,
                                                   SR, 4)
    assert (same.predict(test) == judge.predict(test)).all()
