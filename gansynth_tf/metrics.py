"""The metric maths of the evaluation (:mod:`gansynth_tf.evaluate`), on NumPy arrays.

* :func:`gaussian_stats` and :func:`frechet_distance`: the Frechet distance between
  Gaussians fitted to two sets of embeddings (an FID analogue);
* :func:`entropy`: Shannon entropy of predicted genre distributions;
* :func:`kmeans`, :func:`two_proportion_p_values` and :func:`ndb`: the Number of
  statistically Different Bins (Richardson & Weiss 2018);
* :func:`mean_pairwise_distances`: the intra-set diversity;
* :func:`edge_ratios`: how much louder a clip's first and last moments are than its middle.

Everything is float64; inputs may be any array-like.
"""

import numpy as np
from scipy import stats
from scipy.spatial import distance
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

# k-means restarts for NDB (the best inertia wins) and their iteration cap; explicit so that
# a change of scikit-learn's defaults cannot move the figures.
KMEANS_N_INIT = 3
KMEANS_MAX_ITER = 300


def gaussian_stats(x):
    """x `[n, d]` (n >= 2) -> (mean `[d]`, covariance `[d, d]`, unbiased), float64."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least two rows [n, d] for a covariance, got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu `[d]`, sigma `[d, d]`. |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2). The
    matrix roots are taken by symmetric eigendecompositions, which stay real and stable
    for the singular covariances of few samples in many dimensions (where
    scipy.linalg.sqrtm of S1 S2 turns complex or inaccurate).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ s2 @ root1
    tr_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_root, 0.0))


def entropy(p, axis=-1):
    """Shannon entropy in nats of the distributions p along `axis` (0 log 0 = 0).

    p `[..., g, ...]` -> the shape without `axis`; each distribution is scaled to sum 1
    first (softmax outputs in float32 miss it by ~1e-7).
    """
    return stats.entropy(np.asarray(p, np.float64), axis=axis)


def kmeans(x, k, seed=0, n_init=KMEANS_N_INIT, max_iter=KMEANS_MAX_ITER):
    """k-means (Lloyd, k-means++ seeding), the best of `n_init` seeded runs.

    Args:
      x: `[n, d]` with n >= k.
    Returns:
      (centers `[k, d]`, assignment int `[n]`).
    """
    x = np.asarray(x, np.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= n, got k={k}, n={len(x)}")
    fitted = KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter,
                    random_state=seed).fit(x)
    return fitted.cluster_centers_, fitted.labels_


def two_proportion_p_values(p1, n1, p2, n2):
    """Two-sided p-values of the pooled two-proportion z-test, element-wise.

    p1, p2: proportions `[k]` in samples of sizes n1 and n2. H0: both samples have the
    same proportion. A bin empty in both (standard error 0) gets p = 1.
    """
    p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = np.where(se > 0, np.abs(p1 - p2) / np.where(se > 0, se, 1.0), 0.0)
    return 2.0 * stats.norm.sf(z)


def ndb(real, generated, k=50, alpha=0.05, seed=0, whiten=True):
    """Number of statistically Different Bins (Richardson & Weiss 2018).

    Clusters the real samples into k bins, assigns every generated sample to its nearest
    bin centre and, per bin, tests H0 "same proportion of real and generated samples"
    with :func:`two_proportion_p_values`.

    Args:
      real: `[n_real, d]` (n_real >= k); generated: `[n_gen, d]`.
      whiten: standardise every dimension by the real samples' mean and (population) std
        first; a constant dimension is only centred.
    Returns:
      dict: ndb (int), ndb_k (ndb / k in [0, 1]), k, alpha, real_proportions `[k]`,
      generated_proportions `[k]`, different (bool per bin).
    """
    real = np.asarray(real, np.float64)
    generated = np.asarray(generated, np.float64)
    if whiten:
        scaler = StandardScaler().fit(real)
        real, generated = scaler.transform(real), scaler.transform(generated)
    centers, real_bins = kmeans(real, k, seed)
    gen_bins = np.argmin(distance.cdist(generated, centers, "sqeuclidean"), axis=1)
    n_r, n_g = len(real), len(generated)
    p_r = np.bincount(real_bins, minlength=k) / n_r
    p_g = np.bincount(gen_bins, minlength=k) / n_g
    different = two_proportion_p_values(p_r, n_r, p_g, n_g) < alpha
    return {"ndb": int(different.sum()), "ndb_k": float(different.mean()), "k": int(k),
            "alpha": float(alpha), "real_proportions": p_r.tolist(),
            "generated_proportions": p_g.tolist(), "different": different.tolist()}


def mean_pairwise_distances(x):
    """Mean over pairs i < j of (L1 = mean |x_i - x_j|, L2 = RMS of x_i - x_j).

    x `[n, d]`; returns (None, None) for n < 2.
    """
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return None, None
    d = x.shape[1]
    return (float(np.mean(distance.pdist(x, "cityblock")) / d),
            float(np.mean(distance.pdist(x, "euclidean")) / np.sqrt(d)))


def edge_ratios(waves, sample_rate, edge_seconds=0.05, margin_seconds=0.2, frame_seconds=0.01):
    """How loud each clip's edges are against its middle.

    waves `[n, L]` -> (start, end), each `[n]`: the RMS of the first / last `edge_seconds`
    over the median RMS of the clip's `frame_seconds` frames lying `margin_seconds` or
    more from either end (a median, so that a few onsets in the middle do not set it).
    A clip cut at random from music scores about 1 at both ends.
    """
    waves = np.asarray(waves, np.float64)
    hop = max(1, int(round(sample_rate * frame_seconds)))
    edge = max(1, int(round(sample_rate * edge_seconds)))
    margin = int(round(margin_seconds / frame_seconds))
    k = waves.shape[1] // hop
    if k <= 2 * margin or 2 * edge > waves.shape[1]:
        raise ValueError(f"clips of {waves.shape[1]} samples at {sample_rate} Hz are too short "
                         f"for edges of {edge_seconds} s and a margin of {margin_seconds} s")
    frames = np.sqrt(np.mean(np.square(waves[:, :k * hop].reshape(len(waves), k, hop)), -1))
    middle = np.median(frames[:, margin:k - margin], axis=1) + 1e-12

    def rms(x):
        return np.sqrt(np.mean(np.square(x), axis=1))

    return rms(waves[:, :edge]) / middle, rms(waves[:, -edge:]) / middle
