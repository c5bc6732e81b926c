"""SavedModel export: reload without this package, signatures, metadata, saved_model_cli."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers_rundir
from gansynth_tf import export, rundir

GENRES = ["hip hop", "r&b/soul", "jazz"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    train_dir = helpers_rundir.make_train_dir(str(root / "run"), GENRES, mel=True)
    export_dir = export.export_saved_model(train_dir, str(root / "run" / "export"))
    return train_dir, export_dir


def _env_without_project():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


FRESH_SCRIPT = r"""
import json, sys
# The project is installed (pip install -e .): any import of it now fails, so the load
# below shows that the SavedModel needs none of it.
sys.modules["gansynth_tf"] = None
import numpy as np
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = {}
meta = {k: v.numpy() for k, v in m.signatures["metadata"]().items()}
out["meta"] = {"genres": [g.decode() for g in meta["genres"]],
               "sample_rate": int(meta["sample_rate"]), "latent_dim": int(meta["latent_dim"]),
               "audio_length": int(meta["audio_length"]), "phase": meta["phase"].decode()}
out["genres_sig"] = [g.decode() for g in m.signatures["genres"]()["genres"].numpy()]
out["genres_attr"] = [g.decode() for g in m.genres.numpy()]
out["sample_rate_attr"] = int(m.sample_rate.numpy())
latent = out["meta"]["latent_dim"]
audio = m.signatures["serving_default"](genre=tf.constant([0, 2, 1], tf.int32),
                                        z=tf.random.normal([3, latent], seed=1))["audio"]
out["default"] = [list(audio.shape), audio.dtype.name, bool(np.isfinite(audio.numpy()).all())]
named = m.signatures["generate_by_name"](genre=tf.constant(["jazz", "hip hop"]),
                                         seed=tf.constant(7, tf.int64))
again = m.signatures["generate_by_name"](genre=tf.constant(["jazz", "hip hop"]),
                                         seed=tf.constant(7, tf.int64))
out["named"] = [list(named["audio"].shape), named["audio"].dtype.name,
                bool(np.isfinite(named["audio"].numpy()).all()),
                named["genre_id"].numpy().tolist(),
                bool(np.array_equal(named["audio"].numpy(), again["audio"].numpy()))]
# The same latent through the default signature gives the same audio.
same = m.signatures["serving_default"](genre=named["genre_id"], z=named["z"])["audio"]
out["named_matches_default"] = float(np.max(np.abs(same.numpy() - named["audio"].numpy()))
                                     / (np.max(np.abs(same.numpy())) + 1e-12))
try:
    m.signatures["generate_by_name"](genre=tf.constant(["polka"]), seed=tf.constant(0, tf.int64))
    out["unknown"] = "no error"
except tf.errors.InvalidArgumentError as e:
    out["unknown"] = e.message
try:
    m.signatures["serving_default"](genre=tf.constant([3]), z=tf.zeros([1, latent]))
    out["out_of_range"] = "no error"
except tf.errors.InvalidArgumentError as e:
    out["out_of_range"] = e.message
raw = m.signatures["serving_default"](genre=tf.constant([0, 1], tf.int32),
                                      z=tf.random.normal([2, latent], seed=2))
out["ready_peaks"] = np.max(np.abs(raw["audio"].numpy()), axis=1).tolist()
out["ready_is_scaled_raw"] = float(np.max(np.abs(
    raw["audio"].numpy() / np.max(np.abs(raw["audio"].numpy()), axis=1, keepdims=True)
    - raw["audio_raw"].numpy() / np.max(np.abs(raw["audio_raw"].numpy()), axis=1,
                                        keepdims=True))))
long = m.signatures["generate_long"](genre_path=tf.constant("jazz:0,hip hop:0.2"),
                                     seed=tf.constant(3, tf.int64),
                                     seconds=tf.constant(0.5))
long_again = m.signatures["generate_long"](genre_path=tf.constant("jazz:0,hip hop:0.2"),
                                           seed=tf.constant(3, tf.int64),
                                           seconds=tf.constant(0.5))
out["long"] = [list(long["audio"].shape), float(np.max(np.abs(long["audio"].numpy()))),
               bool(np.array_equal(long["audio"].numpy(), long_again["audio"].numpy()))]
try:
    m.signatures["generate_long"](genre_path=tf.constant("polka"),
                                  seed=tf.constant(0, tf.int64), seconds=tf.constant(0.5))
    out["long_unknown"] = "no error"
except tf.errors.InvalidArgumentError as e:
    out["long_unknown"] = e.message
print("RESULT " + json.dumps(out))
"""


def test_reloads_in_fresh_python_without_the_project(exported, tmp_path):
    _, export_dir = exported
    proc = subprocess.run([sys.executable, "-c", FRESH_SCRIPT, os.path.abspath(export_dir)],
                          cwd=str(tmp_path), env=_env_without_project(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    length = helpers_rundir.AUDIO_LENGTH
    assert out["meta"] == {"genres": GENRES, "sample_rate": helpers_rundir.SAMPLE_RATE,
                           "latent_dim": helpers_rundir.LATENT_DIM, "audio_length": length,
                           "phase": "if"}
    assert out["genres_sig"] == GENRES and out["genres_attr"] == GENRES
    assert out["sample_rate_attr"] == helpers_rundir.SAMPLE_RATE
    assert out["default"] == [[3, length], "float32", True]
    assert out["named"] == [[2, length], "float32", True, [2, 0], True]
    assert out["named_matches_default"] < 1e-5
    for name in ["polka", *GENRES]:
        assert name in out["unknown"]
    assert "[0, 3)" in out["out_of_range"]
    np.testing.assert_allclose(out["ready_peaks"], [10 ** (-1 / 20)] * 2, rtol=1e-5)
    assert out["ready_is_scaled_raw"] < 1e-5
    assert out["long"][0] == [int(round(0.5 * helpers_rundir.SAMPLE_RATE))]
    assert out["long"][1] == pytest.approx(10 ** (-1 / 20), rel=1e-5) and out["long"][2]
    assert "polka" in out["long_unknown"] and "unknown genre" in out["long_unknown"]


def test_generate_long_is_the_piece_generate_duration_makes(exported):
    """The SavedModel signature and the CLI's long-form path draw the same walk and joins."""
    from gansynth_tf import generate, longform

    _, export_dir = exported
    sampler = generate.load_sampler(export_dir=export_dir)
    path = longform.parse_genre_path("jazz:0,hip hop:0.3", sampler.genres)
    eager, _ = longform.long_form(sampler, 0.7, path, seed=4, batch_size=export.LONG_BATCH)
    piece = sampler.model.signatures["generate_long"](
        genre_path=tf.constant("jazz:0,hip hop:0.3"), seed=tf.constant(4, tf.int64),
        seconds=tf.constant(0.7))["audio_raw"].numpy()
    assert piece.shape == eager.shape
    # Graph and eager kernels round differently (by ~5e-4 of the peak on AVX2 machines); a
    # different walk or join would differ by the order of the peak itself.
    peak = np.max(np.abs(eager))
    np.testing.assert_allclose(piece, eager, rtol=0, atol=2e-3 * peak)
    assert np.sqrt(np.mean((piece - eager) ** 2)) < 3e-4 * peak


def _waves(trained, genre, z):
    return tf.function(lambda g, z: trained.waves(g, z))(genre, z).numpy()


def test_export_reproduces_the_generator_it_was_built_from(tmp_path):
    """Every generator weight is tracked and saved: the SavedModel sounds like its source."""
    train_dir = helpers_rundir.make_train_dir(str(tmp_path / "run"), GENRES, mel=True)
    trained = rundir.TrainedGenerator(train_dir)
    export_dir = export.export_saved_model(train_dir, str(tmp_path / "export"),
                                           trained=trained)
    z = tf.random.stateless_normal([2, helpers_rundir.LATENT_DIM], seed=[3, 4])
    genre = tf.constant([1, 2], tf.int32)
    expected = _waves(trained, genre, z)
    loaded = tf.saved_model.load(export_dir)
    assert len(loaded.generator_variables) == len(trained.generator.variables)
    got = loaded.signatures["serving_default"](genre=genre, z=z)["audio_raw"].numpy()
    assert got.shape == (2, helpers_rundir.AUDIO_LENGTH)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.max(np.abs(expected)))


def test_checkpoint_round_trip_gives_the_same_generator(exported):
    train_dir, _ = exported
    z = tf.random.stateless_normal([2, helpers_rundir.LATENT_DIM], seed=[3, 4])
    genre = tf.constant([1, 2], tf.int32)
    first = _waves(rundir.TrainedGenerator(train_dir), genre, z)
    second = _waves(rundir.TrainedGenerator(train_dir), genre, z)
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-4 * np.max(np.abs(first)))


def test_assets_hold_genres_and_metadata(exported):
    _, export_dir = exported
    with open(os.path.join(export_dir, "assets", export.GENRES_ASSET)) as f:
        assert json.load(f) == GENRES
    with open(os.path.join(export_dir, "assets", export.MODEL_ASSET)) as f:
        meta = json.load(f)
    assert meta["sample_rate"] == helpers_rundir.SAMPLE_RATE
    assert meta["num_genres"] == 3 and meta["phase"] == "if"


def test_saved_model_cli_lists_the_signatures(exported):
    _, export_dir = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    assert os.path.exists(cli), "saved_model_cli is installed with tensorflow"
    proc = subprocess.run([cli, "show", "--all", "--dir", export_dir], capture_output=True,
                          text=True, env=_env_without_project(), timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in export.SIGNATURES:
        assert f"signature_def['{name}']" in proc.stdout
    assert "inputs['genre'] tensor_info:" in proc.stdout
    assert "DT_STRING" in proc.stdout and "DT_INT64" in proc.stdout
    assert f"shape: (-1, {helpers_rundir.AUDIO_LENGTH})" in proc.stdout


def test_griffin_lim_export_and_replacing_an_export(exported, tmp_path):
    train_dir, _ = exported
    target = str(tmp_path / "gl")
    export.export_saved_model(train_dir, target, phase="if")
    export.main(["export", f"--train_dir={train_dir}", f"--export_dir={target}",
                 "--phase=griffin_lim", "--griffin_lim_iterations=4"])
    loaded = tf.saved_model.load(target)
    assert loaded.phase.numpy() == b"griffin_lim"
    audio = loaded.generate_by_name(tf.constant(["jazz"]), tf.constant(1, tf.int64))["audio"]
    assert audio.shape == (1, helpers_rundir.AUDIO_LENGTH)
    assert np.isfinite(audio.numpy()).all()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".export-")]
    # Griffin-Lim runs under XLA in this process, but the export holds plain ops only.
    with open(os.path.join(target, "saved_model.pb"), "rb") as f:
        graph = f.read()
    assert b"_XlaMustCompile" not in graph


def test_refuses_to_overwrite_a_folder_that_is_not_a_saved_model(exported, tmp_path):
    train_dir, _ = exported
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit) as e:
        export.main(["export", f"--train_dir={train_dir}", f"--export_dir={tmp_path}"])
    assert "refusing to replace" in str(e.value.code)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    train_dir = helpers_rundir.make_train_dir(str(tmp_path / "run"), GENRES)
    for name in os.listdir(rundir.checkpoint_dir(train_dir)):
        os.remove(os.path.join(rundir.checkpoint_dir(train_dir), name))
    with pytest.raises(SystemExit) as e:
        export.main(["export", f"--train_dir={train_dir}"])
    assert "no checkpoint" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        export.main(["export"])
    assert "--train_dir is required" in str(e.value.code)


def _staging_folder(parent, name, owner=None, age_s=0):
    folder = parent / name
    (folder / "saved_model").mkdir(parents=True)
    if owner is not None:
        (folder / export.STAGING_OWNER).write_text(owner)
    if age_s:
        old = os.path.getmtime(folder) - age_s
        os.utime(folder, (old, old))
    return folder


def test_an_export_removes_what_killed_exports_to_it_left(exported, tmp_path):
    import socket
    train_dir, _ = exported
    host = socket.gethostname()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)
    # The case: a kill during export left .export-XXXXXXXX beside the target.
    legacy = _staging_folder(tmp_path, ".export-k1ll3d_x", age_s=3600)
    dead = _staging_folder(tmp_path, ".export-out-d3adxxxx", owner=f"{host} {dead_pid}")
    # Still being written (this process), another target's, and a fresh ownerless one.
    live = _staging_folder(tmp_path, ".export-out-l1vexxxx", owner=f"{host} {os.getpid()}")
    other = _staging_folder(tmp_path, ".export-other-d3adxxxx", owner=f"{host} {dead_pid}")
    fresh = _staging_folder(tmp_path, ".export-fr3sh_xx")
    export.export_saved_model(train_dir, str(tmp_path / "out"))
    assert not legacy.exists() and not dead.exists()
    assert live.exists() and other.exists() and fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".export-")) == \
        sorted([live.name, other.name, fresh.name]), "its own staging folder is gone"


def test_a_failed_export_leaves_nothing_behind(exported, tmp_path, monkeypatch):
    train_dir, _ = exported

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(OSError):
        export.export_saved_model(train_dir, str(tmp_path / "new" / "out"))
    assert not (tmp_path / "new").exists(), list(tmp_path.rglob("*"))
    # A run that is not there: no folder made for its export either.
    with pytest.raises(ValueError, match="no genres.json"):
        export.export_saved_model(str(tmp_path / "no_run"))
    assert not (tmp_path / "no_run").exists()


@pytest.mark.parametrize("kind", ["under_a_file", "a_file"])
def test_an_unwritable_export_dir_is_one_line_naming_it_and_its_flag(exported, tmp_path, kind):
    # Root ignores a read-only mode, so a path under a regular file stands in for a
    # read-only run folder: both fail where the export's folder is written.
    train_dir, _ = exported
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    target = blocker / "export" if kind == "under_a_file" else blocker
    with pytest.raises(SystemExit) as e:
        export.main(["export", f"--train_dir={train_dir}", f"--export_dir={target}"])
    message = str(e.value.code)
    assert message.startswith("export: ") and "\n" not in message, message
    assert f"--export_dir={target}" in message and "give --export_dir a" in message
    assert blocker.read_text() == ""
