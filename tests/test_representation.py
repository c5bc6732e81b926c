"""Representation: the resynthesis consistency measure the generator can be trained on."""
import numpy as np
import pytest
import tensorflow as tf

from gansynth_tf import normalizers, synthetic
from gansynth_tf.representation import Representation


def _rep(mel):
    rep = Representation(sample_rate=8000, audio_length=4096, spec_shape=(32, 128), overlap=0.5,
                         mel=mel, mel_inversion="magenta")
    waves = np.stack([synthetic.synthesize_clip(g, i, 0, 8000, 4096)
                      for g in synthetic.GENRES for i in range(2)]).astype("float32")
    rep.set_normalizer(
        normalizers.MinMaxNormalizer().fit(rep.waves_to_unnormalized(waves[:, :, None]).numpy())
    )
    return rep, rep.waves_to_features(waves[:, :, None])


@pytest.mark.parametrize("mel", [False, True])
def test_resynthesized_log_magnitude_returns_the_magnitude_of_consistent_features(mel):
    rep, feats = _rep(mel)
    resynth = rep.resynthesized_log_magnitude(feats).numpy()
    assert resynth.shape == feats.shape[:3]
    # It is what re-analysing the IF resynthesis gives, up to where the 1e-6 inside the log
    # sits (log(|S| + eps) there, log(|S|^2 + eps^2) / 2 here): only near-silent bins differ.
    reanalysed = rep.waves_to_features(rep.features_to_waves(feats, "if")[..., None]).numpy()[
        ..., 0
    ]
    diff = np.abs(resynth - reanalysed)
    assert np.mean(diff) < 1e-4 and np.quantile(diff, 0.999) < 2e-3 and np.max(diff) < 0.05
    # Real features are consistent: the linear inverse is exact, GANSynth's mel inverse close.
    mismatch = np.mean(np.abs(resynth - feats.numpy()[..., 0]))
    assert mismatch < (0.01 if not mel else 0.1), mismatch
    # The same magnitudes with a scrambled IF channel do not resynthesise to themselves.
    rng = np.random.default_rng(0)
    scrambled = feats.numpy().copy()
    scrambled[..., 1] = rng.uniform(-0.8, 0.8, scrambled[..., 1].shape)
    scrambled_mismatch = np.mean(
        np.abs(rep.resynthesized_log_magnitude(scrambled).numpy() - feats.numpy()[..., 0])
    )
    # (Mel: GANSynth's inverse already blurs real features, so the margin is smaller.)
    assert scrambled_mismatch > mismatch + (0.05 if not mel else 0.01), (
        mismatch,
        scrambled_mismatch,
    )


def test_resynthesized_log_magnitude_has_finite_gradients_even_for_silence():
    rep, feats = _rep(True)
    silence = -np.ones_like(feats.numpy())  # the data minimum everywhere: near-zero magnitudes
    for x in (feats, tf.constant(silence)):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.abs(rep.resynthesized_log_magnitude(x) - x[..., 0]))
        grad = tape.gradient(loss, x).numpy()
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_with_mel_inversion_keeps_the_features_and_changes_only_the_inverse():
    rep, feats = _rep(True)
    refined = rep.with_mel_inversion("refined")
    assert (rep.mel_inversion, refined.mel_inversion) == ("magenta", "refined")
    assert refined.get_config() == {**rep.get_config(), "mel_inversion": "refined"}
    waves = rep.features_to_waves(feats, "if")
    np.testing.assert_array_equal(refined.waves_to_features(waves[..., None]).numpy(),
                                  rep.waves_to_features(waves[..., None]).numpy())
    # The refined inverse (NNLS magnitude + Griffin-Lim from GANSynth's phase) gives audio
    # whose mel magnitudes are closer to the features than GANSynth's approximate inverse.
    def error(r):
        back = r.waves_to_features(r.features_to_waves(feats, "if")[..., None]).numpy()
        return np.mean(np.abs(back[..., 0] - feats.numpy()[..., 0]))
    assert error(refined) < 0.5 * error(rep), (error(refined), error(rep))
    with pytest.raises(ValueError, match="mel_inversion"):
        rep.with_mel_inversion("exact")
