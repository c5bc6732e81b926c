"""Generation CLI: WAV files and sheets, interpolations, clear errors; slerp maths."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

import helpers_rundir
from gansynth_tf import evaluate, export, generate

GENRES = ["hip hop", "r&b/soul", "jazz"]
STEMS = ["hip_hop", "r_b_soul", "jazz"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    train_dir = helpers_rundir.make_train_dir(str(root / "run"), GENRES)
    export_dir = export.export_saved_model(train_dir, str(root / "export"))
    return train_dir, export_dir


def _read(path):
    audio, rate = soundfile.read(path, dtype="float32")
    return audio, rate, soundfile.info(path).subtype


# One 16-bit PCM step. oneDNN picks its kernels by batch size (and on AVX2 machines the
# rounding differs with it), so the same (seed, i) drawn in a larger batch may land a step
# or two away in a few samples; a different clip differs by far more.
PCM_STEP = 1 / 32768


def _assert_same_clip(path_a, path_b):
    a, b = _read(path_a)[0], _read(path_b)[0]
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=3 * PCM_STEP)
    assert np.mean(a != b) < 0.05, f"{np.mean(a != b):.1%} of samples differ"


def _assert_different_clips(path_a, path_b):
    a, b = _read(path_a)[0], _read(path_b)[0]
    assert np.max(np.abs(a - b)) > 100 * PCM_STEP


def _exit_message(*args):
    """generate.main(args) must exit with a message (a bad flag or source): returns it."""
    with pytest.raises(SystemExit) as e:
        generate.main(["generate", *args])
    return str(e.value.code)


def _one_jazz_clip(train_dir, output_dir, *flags):
    """Generates jazz_0.wav from train_dir with extra flags; returns (manifest, audio)."""
    manifest = generate.main(["generate", f"--train_dir={train_dir}",
                              f"--output_dir={output_dir}", "--genre=jazz", "--num_samples=1",
                              *flags])
    return manifest, _read(os.path.join(str(output_dir), "jazz_0.wav"))[0]


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def test_samples_every_genre_from_a_train_dir(run, tmp_path):
    train_dir, _ = run
    out = tmp_path / "out"
    manifest = generate.main(["generate", f"--train_dir={train_dir}", f"--output_dir={out}",
                              "--num_samples=2", "--seed=3"])
    expected = {f"{s}_{i}.wav" for s in STEMS for i in range(2)}
    assert expected <= set(os.listdir(out))
    for name in expected:
        audio, rate, subtype = _read(out / name)
        assert rate == helpers_rundir.SAMPLE_RATE and subtype == "PCM_16"
        assert audio.shape == (helpers_rundir.AUDIO_LENGTH,)
        assert np.max(np.abs(audio)) > 0.5, "the default 'limit' keeps loud clips loud"
    assert _is_png(out / "sheet.png")
    with open(out / "manifest.json") as f:
        files = json.load(f)["files"]
    assert {(e["file"], e["genre"]) for e in files} == {
        (f"{s}_{i}.wav", g) for s, g in zip(STEMS, GENRES) for i in range(2)}
    assert manifest["sample_rate"] == helpers_rundir.SAMPLE_RATE


def test_export_output_is_seeded_and_shares_latents_across_calls(run, tmp_path):
    _, export_dir = run
    a, b = tmp_path / "a", tmp_path / "b"
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={a}",
                   "--genre=jazz", "--num_samples=3", "--seed=5"])
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={b}",
                   "--genre=jazz", "--genre=hip hop", "--num_samples=2", "--seed=5"])
    assert sorted(p for p in os.listdir(a) if p.endswith(".wav")) == [
        "jazz_0.wav", "jazz_1.wav", "jazz_2.wav"]
    # Sample i depends on (seed, i) only, not on how many samples or genres were asked for.
    for i in range(2):
        _assert_same_clip(a / f"jazz_{i}.wav", b / f"jazz_{i}.wav")
    _assert_different_clips(a / "jazz_0.wav", a / "jazz_1.wav")


def test_unknown_genre_fails_naming_the_known_genres(run, tmp_path):
    train_dir, export_dir = run
    for source in (f"--train_dir={train_dir}", f"--export_dir={export_dir}"):
        with pytest.raises(SystemExit) as e:
            generate.main(["generate", source, f"--output_dir={tmp_path / 'x'}",
                           "--genre=polka"])
        message = str(e.value.code)
        assert "unknown genre 'polka'" in message and "--genre" in message
        assert all(repr(g) in message for g in GENRES)
    with pytest.raises(SystemExit) as e:
        generate.main(["generate", f"--export_dir={export_dir}",
                       f"--output_dir={tmp_path / 'x'}", "--interpolate=jazz,polka"])
    assert "unknown genre 'polka' (--interpolate)" in str(e.value.code)
    assert not (tmp_path / "x").exists(), "nothing is written before the names are checked"


def test_unknown_genre_exits_nonzero_from_the_command_line(run, tmp_path):
    _, export_dir = run
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-m", "gansynth_tf.generate", f"--export_dir={export_dir}",
         f"--output_dir={tmp_path}", "--genre=polka"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    assert "unknown genre 'polka'" in proc.stderr and "'r&b/soul'" in proc.stderr


def test_genre_interpolation_walks_from_one_genre_to_the_other(run, tmp_path):
    _, export_dir = run
    out, plain = tmp_path / "interp", tmp_path / "plain"
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={out}",
                   "--interpolate=hip hop,jazz", "--steps=4", "--seed=2"])
    names = sorted(p for p in os.listdir(out) if p.endswith(".wav"))
    assert names == [f"interp_{i}.wav" for i in range(4)]
    assert _is_png(out / "interp_sheet.png")
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={plain}",
                   "--genre=hip hop", "--genre=jazz", "--num_samples=1", "--seed=2"])
    # The ends are plain samples of the two genres at the same latent (sample 0).
    _assert_same_clip(out / "interp_0.wav", plain / "hip_hop_0.wav")
    _assert_same_clip(out / "interp_3.wav", plain / "jazz_0.wav")
    _assert_different_clips(out / "interp_1.wav", out / "interp_0.wav")


def test_latent_interpolation_joins_two_seeds(run, tmp_path):
    train_dir, export_dir = run
    out, plain = tmp_path / "latent", tmp_path / "plain"
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={out}",
                   "--interpolate_latent", "--genre=r&b/soul", "--steps=3", "--seed=4",
                   "--seed_b=9"])
    assert sorted(p for p in os.listdir(out) if p.endswith(".wav")) == [
        f"latent_interp_{i}.wav" for i in range(3)]
    assert _is_png(out / "latent_interp_sheet.png")
    for seed, step in ((4, 0), (9, 2)):
        generate.main(["generate", f"--export_dir={export_dir}",
                       f"--output_dir={plain / str(seed)}", "--genre=r&b/soul",
                       "--num_samples=1", f"--seed={seed}"])
        _assert_same_clip(out / f"latent_interp_{step}.wav", plain / str(seed) / "r_b_soul_0.wav")
    with pytest.raises(SystemExit) as e:
        generate.main(["generate", f"--train_dir={train_dir}", f"--output_dir={out}",
                       "--interpolate_latent"])
    assert "exactly one --genre" in str(e.value.code)


def test_griffin_lim_from_a_train_dir_and_phase_mismatch_with_an_export(run, tmp_path):
    train_dir, export_dir = run
    manifest, audio = _one_jazz_clip(train_dir, tmp_path, "--phase=griffin_lim",
                                     "--griffin_lim_iterations=2")
    assert manifest["phase"] == "griffin_lim"
    assert audio.shape == (helpers_rundir.AUDIO_LENGTH,)
    assert "exported with phase=if" in _exit_message(
        f"--export_dir={export_dir}", f"--output_dir={tmp_path}", "--phase=griffin_lim")


def test_mel_inversion_override_for_a_train_dir_and_refused_for_an_export(run, tmp_path):
    train_dir = helpers_rundir.make_train_dir(str(tmp_path / "mel_run"), GENRES, mel=True)
    sampler = generate.load_sampler(train_dir)
    refined = generate.load_sampler(train_dir, mel_inversion="refined")
    assert sampler.trained.representation.mel_inversion == "refined"  # the helper's default
    magenta = generate.load_sampler(train_dir, mel_inversion="magenta")
    assert magenta.trained.representation.mel_inversion == "magenta"
    cond = np.eye(len(GENRES), dtype=np.float32)[:2]
    z = generate.latents(0, 2, helpers_rundir.LATENT_DIM)
    a, b = magenta.audio(cond, z), refined.audio(cond, z)
    assert a.shape == b.shape == (2, helpers_rundir.AUDIO_LENGTH)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    assert np.abs(a - b).max() > 1e-3
    _, audio = _one_jazz_clip(train_dir, tmp_path / "o", "--mel_inversion=magenta")
    assert audio.shape == (helpers_rundir.AUDIO_LENGTH,)
    _, export_dir = run
    assert "re-export" in _exit_message(f"--export_dir={export_dir}", f"--output_dir={tmp_path}",
                                        "--mel_inversion=refined")


def test_truncation_scales_the_latents_for_train_dirs_and_exports(run, tmp_path):
    train_dir, export_dir = run
    cond = np.eye(len(GENRES), dtype=np.float32)[[2, 2]]
    z = generate.latents(5, 2, helpers_rundir.LATENT_DIM)
    for source in ({"train_dir": train_dir}, {"export_dir": export_dir}):
        plain = generate.load_sampler(**source)
        half = generate.load_sampler(**source, truncation=0.5)
        np.testing.assert_allclose(half.audio(cond, z), plain.audio(cond, 0.5 * z), atol=1e-5)
        assert np.abs(half.audio(cond, z) - plain.audio(cond, z)).max() > 1e-3
        # psi = 0: every latent becomes the mean, so one clip per genre.
        zero = generate.load_sampler(**source, truncation=0.0).audio(cond, z)
        np.testing.assert_allclose(zero[0], zero[1], atol=1e-6)
    manifest, _ = _one_jazz_clip(train_dir, tmp_path, "--truncation=0.7")
    assert manifest["truncation"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="truncation"):
        generate.load_sampler(train_dir, truncation=-1.0)


def test_source_and_flag_errors_are_clear(run, tmp_path):
    train_dir, export_dir = run
    cases = [
        (["--output_dir=x"], "exactly one of --train_dir"),
        ([f"--train_dir={train_dir}", f"--export_dir={export_dir}", "--output_dir=x"],
         "exactly one of --train_dir"),
        ([f"--train_dir={train_dir}"], "--output_dir is required"),
        ([f"--export_dir={tmp_path}", "--output_dir=x"], "holds no saved_model.pb"),
        ([f"--train_dir={train_dir}", "--output_dir=x", "--interpolate=jazz"],
         "two genre names"),
        (["--num_samples=0"], "num_samples"),
        (["--bogus"], "Unknown command line flag 'bogus'"),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as e:
            generate.main(["generate", *args])
        assert expected in str(e.value.code), (args, e.value.code)


def test_help_and_every_flag_documented(capsys):
    with pytest.raises(SystemExit) as e:
        generate.main(["generate", "--help"])
    assert e.value.code == 0
    assert "--interpolate_latent" in capsys.readouterr().out
    for module in (export, generate, evaluate):
        fv = module.make_flags()
        for name in fv:
            assert fv[name].help and len(fv[name].help) > 10, (module.__name__, name)


def test_slerp_endpoints_norm_and_fallback():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0.0, 1.0, 7)
    path = generate.slerp(a, b, t)
    assert path.shape == (7, 16) and path.dtype == np.float32
    np.testing.assert_allclose(path[0], a, atol=1e-5)
    np.testing.assert_allclose(path[-1], b, atol=1e-5)
    # Equal-norm ends: the path stays on the sphere; a straight line would dip inside it.
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-5)
    assert np.linalg.norm((a + b) / 2) < 0.99 * np.linalg.norm(a)
    # Orthogonal unit vectors: the midpoint is (a + b) / sqrt(2).
    mid = generate.slerp([1.0, 0.0], [0.0, 1.0], [0.5])[0]
    np.testing.assert_allclose(mid, [2 ** -0.5, 2 ** -0.5], atol=1e-6)
    # Angles are spaced evenly.
    cos = path @ a / np.linalg.norm(a) ** 2
    np.testing.assert_allclose(np.diff(np.arccos(np.clip(cos, -1, 1))),
                               np.arccos(np.dot(a, b) / np.dot(a, a)) / 6, atol=1e-4)
    # Parallel vectors fall back to linear interpolation instead of dividing by 0.
    np.testing.assert_allclose(generate.slerp([1.0, 1.0], [2.0, 2.0], [0.5])[0], [1.5, 1.5])


def test_genre_walk_and_safe_names():
    walk = generate.genre_walk(4, 1, 3, 5)
    np.testing.assert_allclose(walk.sum(axis=1), 1.0)
    np.testing.assert_array_equal(walk[0], [0, 1, 0, 0])
    np.testing.assert_array_equal(walk[-1], [0, 0, 0, 1])
    np.testing.assert_allclose(walk[2], [0, 0.5, 0, 0.5])
    names = generate.safe_names(["hip hop", "hip/hop", "../x", "///", "Jazz-2.0"])
    assert names == {"hip hop": "hip_hop", "hip/hop": "hip_hop-1", "../x": "x",
                     "///": "genre3", "Jazz-2.0": "Jazz-2.0"}


def test_pcm_level_modes():
    loud = np.array([0.0, 2.0, -4.0])
    db1 = 10 ** (-1 / 20)                                    # -1 dBFS
    np.testing.assert_allclose(generate.to_pcm_range(loud, "limit"), [0, db1 / 2, -db1])
    np.testing.assert_allclose(generate.to_pcm_range(loud, "clip"), [0, 1, -1])
    np.testing.assert_allclose(generate.to_pcm_range(loud, "none"), loud)
    np.testing.assert_allclose(generate.to_pcm_range(loud, "peak"), [0, db1 / 2, -db1])
    quiet = np.array([0.1, -0.2])
    np.testing.assert_allclose(generate.to_pcm_range(quiet, "limit"), quiet)
    np.testing.assert_allclose(generate.to_pcm_range(quiet, "peak"), [db1 / 2, -db1])
    np.testing.assert_array_equal(generate.to_pcm_range(np.zeros(3), "peak"), np.zeros(3))
    assert np.isfinite(generate.to_pcm_range(np.array([np.nan, 0.5]), "limit")).all()


def test_raw_output_on_request_is_a_float_wav(tmp_path):
    loud = np.array([0.0, 2.5, -11.0, 0.25], np.float32)
    generate.write_wav(str(tmp_path / "raw.wav"), loud, 8000, normalize="none")
    back, rate = soundfile.read(str(tmp_path / "raw.wav"), dtype="float32")
    assert soundfile.info(str(tmp_path / "raw.wav")).subtype == "FLOAT" and rate == 8000
    np.testing.assert_array_equal(back, loud)
    generate.write_wav(str(tmp_path / "ready.wav"), loud, 8000)
    ready, _ = soundfile.read(str(tmp_path / "ready.wav"))
    assert np.max(np.abs(ready)) == pytest.approx(10 ** (-1 / 20), abs=1e-4)


def test_file_names_keep_the_letters_of_every_script():
    # "e" + a combining acute accent is the same genre as the precomposed "é".
    names = generate.safe_names(["dark é 日本", "हिन्दी", "Ελληνικά/λαϊκά", "cafe\u0301", "a\x00b"])
    assert names == {"dark é 日本": "dark_é_日本", "हिन्दी": "हिन्दी",
                     "Ελληνικά/λαϊκά": "Ελληνικά_λαϊκά", "cafe\u0301": "café", "a\x00b": "a_b"}
    long_name = "日本" * 200
    assert len(generate.safe_names([long_name])[long_name].encode("utf-8")) <= 200


def test_a_second_run_into_one_output_dir_adds_to_its_manifest(run, tmp_path):
    _, export_dir = run
    unicode_run = helpers_rundir.make_train_dir(str(tmp_path / "unicode_run"),
                                                ["dark é 日本", "jazz"])
    out = tmp_path / "out"
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={out}",
                   "--genre=jazz", "--num_samples=2", "--seed=1"])
    second = generate.main(["generate", f"--train_dir={unicode_run}", f"--output_dir={out}",
                            "--genre=dark é 日本", "--num_samples=1", "--truncation=0.5"])
    assert [e["file"] for e in second["files"]] == ["dark_é_日本_0.wav"]
    assert (out / "dark_é_日本_0.wav").exists()
    with open(out / "manifest.json", encoding="utf-8") as f:
        files = {e["file"]: e for e in json.load(f)["files"]}
    assert set(files) == {"jazz_0.wav", "jazz_1.wav", "dark_é_日本_0.wav"}
    # Each entry says what made it, whichever run that was.
    assert files["jazz_0.wav"]["source"] == export_dir
    assert files["jazz_0.wav"]["truncation"] == 1.0
    assert files["dark_é_日本_0.wav"]["source"] == unicode_run
    assert files["dark_é_日本_0.wav"]["truncation"] == 0.5
    # A file written again is listed once, as the latest run made it.
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={out}",
                   "--genre=jazz", "--num_samples=1", "--seed=7"])
    with open(out / "manifest.json", encoding="utf-8") as f:
        entries = json.load(f)["files"]
    assert sorted(e["file"] for e in entries) == [
        "dark_é_日本_0.wav", "jazz_0.wav", "jazz_1.wav"]
    assert {e["file"]: e["seed"] for e in entries}["jazz_0.wav"] == 7


def test_an_unusable_output_dir_is_named_with_its_flag(run, tmp_path):
    _, export_dir = run
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for path, expected in ((blocker, "is a file"), (blocker / "sub", "cannot create")):
        message = _exit_message(f"--export_dir={export_dir}", f"--output_dir={path}",
                                "--genre=jazz", "--num_samples=1")
        assert f"--output_dir={path}" in message and expected in message, message
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    message = _exit_message(f"--export_dir={export_dir}", f"--output_dir={broken}",
                            "--genre=jazz", "--num_samples=1")
    assert "manifest.json" in message and "--output_dir" in message, message


def test_duration_writes_one_continuous_piece_per_genre_and_a_morph(run, tmp_path):
    train_dir, export_dir = run
    sr = helpers_rundir.SAMPLE_RATE
    seconds = 4 * helpers_rundir.AUDIO_LENGTH / sr        # about four clips' worth
    out = tmp_path / "long"
    manifest = generate.main(["generate", f"--train_dir={train_dir}", f"--output_dir={out}",
                              f"--duration={seconds}", "--overlap_seconds=0.05"])
    for stem in STEMS:
        audio, rate, _ = _read(out / f"{stem}_long.wav")
        assert rate == sr and audio.shape == (int(round(seconds * sr)),)
        assert np.max(np.abs(audio)) <= 1.0 and np.std(audio) > 0
    assert _is_png(out / "long_sheet.png")
    entries = {e["file"]: e for e in manifest["files"]}
    assert entries["jazz_long.wav"]["genre"] == "jazz" and entries["jazz_long.wav"]["clips"] >= 4
    # A morph from an export: one file, its path recorded; the same walk as the plain pieces.
    generate.main(["generate", f"--export_dir={export_dir}", f"--output_dir={out}",
                   f"--duration={seconds}", "--overlap_seconds=0.05",
                   f"--genre_path=hip hop:0,jazz:{seconds / 2}"])
    with open(out / "manifest.json") as f:
        files = {e["file"]: e for e in json.load(f)["files"]}
    assert [p["genre"] for p in files["path_long.wav"]["genre_path"]] == ["hip hop", "jazz"]
    assert {f"{s}_long.wav" for s in STEMS} <= set(files)      # earlier pieces still listed
    assert "--duration" in _exit_message(f"--train_dir={train_dir}", f"--output_dir={out}",
                                         "--genre_path=jazz:0")
    assert "unknown genre" in _exit_message(f"--train_dir={train_dir}", f"--output_dir={out}",
                                            "--duration=1", "--genre_path=polka:0")
