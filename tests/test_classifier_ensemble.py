"""The evaluation's genre classifier as an ensemble: mean vote, seeds, save/load, reuse."""

import json
import os
import shutil

import numpy as np
import pytest

from gansynth_tf import classifier, eval_judges

SR = 8000
LENGTH = 1024
GENRES = ["low", "high"]


def _clips(n, seed):
    """n sine clips per genre: 'low' 200-400 Hz, 'high' 1.5-3 kHz, random phase and level."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / SR
    waves, labels = [], []
    for g, (lo, hi) in enumerate(((200, 400), (1500, 3000))):
        for _ in range(n):
            f = rng.uniform(lo, hi)
            waves.append(rng.uniform(0.1, 0.8) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)))
            labels.append(g)
    return np.asarray(waves, np.float32), np.asarray(labels, np.int32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    waves, labels = _clips(12, 0)
    ensemble = classifier.ClassifierEnsemble.create(3, GENRES, SR, LENGTH, seed=5)
    ensemble.fit(waves, labels, epochs=3, seed=5)
    single = classifier.GenreClassifier.create(GENRES, SR, LENGTH, seed=5)
    single.fit(waves, labels, epochs=3, seed=5)
    folder = str(tmp_path_factory.mktemp("ensemble"))
    ensemble.save(folder)
    return ensemble, single, folder


def test_the_ensemble_votes_with_its_members_mean(trained):
    ensemble, _, _ = trained
    waves, _ = _clips(5, 1)
    each, embeddings = ensemble.predict_members(waves)
    assert each.shape == (3, 10, 2) and embeddings.shape[0] == 10
    np.testing.assert_allclose(each.sum(axis=-1), 1.0, atol=1e-5)
    probs, same_embeddings = ensemble.predict(waves)
    np.testing.assert_allclose(probs, each.mean(axis=0), atol=1e-6)
    # The embedding is member 0's alone (members' spaces are not aligned).
    np.testing.assert_allclose(same_embeddings, ensemble.members[0].predict(waves)[1],
                               atol=1e-6)
    # Members start from different seeds, so they are different networks.
    assert not np.allclose(each[0], each[1], atol=1e-4)


def test_member_zero_is_the_single_classifier_of_the_same_seed(trained):
    ensemble, single, _ = trained
    waves, _ = _clips(5, 2)
    np.testing.assert_allclose(ensemble.members[0].predict(waves)[0], single.predict(waves)[0],
                               atol=1e-5)


def test_a_saved_ensemble_loads_back_and_predicts_alike(trained):
    ensemble, _, folder = trained
    assert sorted(os.listdir(folder)) == sorted([classifier.MODEL_FILE, classifier.META_FILE,
                                                 "member_1", "member_2"])
    loaded = classifier.ClassifierEnsemble.load(folder)
    assert len(loaded.members) == 3 and loaded.meta["members"] == 3
    assert loaded.genres == GENRES and loaded.matches(GENRES, SR, LENGTH)
    waves, labels = _clips(5, 3)
    np.testing.assert_allclose(loaded.predict(waves)[0], ensemble.predict(waves)[0],
                               atol=1e-5)
    assert loaded.accuracy(waves, labels) == pytest.approx(ensemble.accuracy(waves, labels))


def test_a_smaller_ensemble_saved_over_a_larger_one_leaves_no_stale_members(trained, tmp_path):
    ensemble, _, folder = trained
    target = str(tmp_path / "judge")
    shutil.copytree(folder, target)
    smaller = classifier.ClassifierEnsemble(ensemble.members[:2])
    smaller.save(target)
    assert sorted(os.listdir(target)) == sorted([classifier.MODEL_FILE, classifier.META_FILE,
                                                 "member_1"])
    assert len(classifier.ClassifierEnsemble.load(target).members) == 2
    classifier.ClassifierEnsemble(ensemble.members[:1]).save(target)
    assert sorted(os.listdir(target)) == sorted([classifier.MODEL_FILE, classifier.META_FILE])


def test_a_plain_saved_classifier_loads_as_one_member(trained, tmp_path):
    _, single, _ = trained
    single.save(str(tmp_path))
    with open(tmp_path / classifier.META_FILE) as f:
        assert "members" not in json.load(f)
    loaded = classifier.ClassifierEnsemble.load(str(tmp_path))
    assert len(loaded.members) == 1
    waves, _ = _clips(3, 4)
    np.testing.assert_allclose(loaded.predict(waves)[0], single.predict(waves)[0], atol=1e-5)


def test_a_saved_ensemble_is_reused_only_with_the_same_number_of_members(trained):
    _, _, folder = trained
    rep = type("Rep", (), {"sample_rate": SR, "audio_length": LENGTH})()
    assert len(eval_judges.load_matching_classifier(folder, GENRES, rep, members=3).members) == 3
    assert eval_judges.load_matching_classifier(folder, GENRES, rep, members=1) is None
    assert eval_judges.load_matching_classifier(folder, GENRES, rep, retrain=True,
                                                members=3) is None
    assert eval_judges.load_matching_classifier(folder, ["low", "mid"], rep, members=3) is None


def test_a_saved_ensemble_that_cannot_be_read_is_trained_anew(trained, tmp_path, caplog):
    _, _, folder = trained
    rep = type("Rep", (), {"sample_rate": SR, "audio_length": LENGTH})()
    missing, cut = str(tmp_path / "missing"), str(tmp_path / "cut")
    shutil.copytree(folder, missing)
    shutil.rmtree(os.path.join(missing, "member_2"))
    with pytest.raises(FileNotFoundError, match="member_2"):
        classifier.ClassifierEnsemble.load(missing)
    shutil.copytree(folder, cut)
    model = os.path.join(cut, "member_1", classifier.MODEL_FILE)
    with open(model, "r+b") as f:
        f.truncate(os.path.getsize(model) // 3)
    for broken in (missing, cut):
        caplog.clear()
        assert eval_judges.load_matching_classifier(broken, GENRES, rep, members=3) is None
        assert any("cannot be read" in r.getMessage() and broken in r.getMessage()
                   for r in caplog.records)


def test_members_must_judge_the_same_clips():
    with pytest.raises(ValueError, match="at least one member"):
        classifier.ClassifierEnsemble([])
    a = classifier.GenreClassifier.create(GENRES, SR, LENGTH)
    b = classifier.GenreClassifier.create(GENRES, SR, 2 * LENGTH)
    with pytest.raises(ValueError, match="same genres"):
        classifier.ClassifierEnsemble([a, b])


def test_metrics_give_every_members_accuracy_beside_the_mean_vote(trained):
    ensemble, _, _ = trained
    real, real_y = _clips(10, 6)
    fake, fake_y = _clips(10, 7)
    m = eval_judges.compute_metrics(ensemble, GENRES, SR, real, real_y, fake, fake_y,
                                    ndb_bins=2)
    assert m["classifier_members"] == 3
    assert len(m["real_accuracy_members"]) == 3 and len(m["generated_accuracy_members"]) == 3
    each, _ = ensemble.predict_members(fake)
    assert m["generated_accuracy_members"] == pytest.approx(
        [float(np.mean(np.argmax(p, 1) == fake_y)) for p in each])
    assert m["generated_accuracy"] == pytest.approx(
        float(np.mean(np.argmax(each.mean(axis=0), 1) == fake_y)))
    # A plain classifier is one member.
    one = eval_judges.compute_metrics(ensemble.members[0], GENRES, SR, real, real_y, fake,
                                      fake_y, ndb_bins=2)
    assert one["classifier_members"] == 1
    assert one["generated_accuracy_members"] == [pytest.approx(one["generated_accuracy"])]


def test_metrics_count_generated_clips_with_loud_edges(trained):
    # 1024 samples at 8 kHz: too short for 50 ms edges and 200 ms margins, so both shrink
    # with the clip; sine clips are equally loud throughout.
    ensemble, _, _ = trained
    real, real_y = _clips(10, 6)
    fake, fake_y = _clips(10, 7)
    fake[::2, :100] *= 4.0    # half the clips burst at the start
    fake[1::4, -100:] *= 3.0  # a quarter at the end
    m = eval_judges.compute_metrics(ensemble, GENRES, SR, real, real_y, fake, fake_y,
                                    ndb_bins=2)
    assert m["loud_edge_share_real"] == 0.0
    assert m["loud_edge_share_generated"] == pytest.approx(0.75)
    loud = eval_judges.loud_edges(fake, SR)
    assert loud[::2].all() and loud[1::4].all() and not loud[3::4].any()
    assert m["per_genre"]["low"]["loud_edge_share_generated"] == pytest.approx(
        loud[fake_y == 0].mean())
