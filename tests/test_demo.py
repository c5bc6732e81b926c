"""The web demo without a browser: render() on the shipped quickstart model, the page's
build, and the command's one-line errors (tests/test_demo_browser.py drives the page)."""
import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from gansynth_tf import demo, generate, longform

PEAK = 10.0 ** (-1.0 / 20.0)


@pytest.fixture(scope="module")
def sampler():
    return generate.load_sampler(model="quickstart")


def test_render_gives_the_duration_at_minus_one_dbfs_with_its_wav_and_spectrogram(sampler,
                                                                                   tmp_path):
    sr, audio, png, wav = demo.render(sampler, "jazz", seed=3, seconds=2.0,
                                      output_dir=str(tmp_path))
    assert sr == sampler.sample_rate == 8000
    assert audio.dtype == np.float32 and audio.shape == (2 * sr,)
    assert np.all(np.abs(audio) <= 1.0)
    assert np.max(np.abs(audio)) == pytest.approx(PEAK, abs=1e-6)
    assert os.path.dirname(wav) == str(tmp_path) and wav.endswith(".wav")
    decoded, wav_sr = soundfile.read(wav, dtype="float32")
    assert wav_sr == sr and decoded.shape == audio.shape
    np.testing.assert_allclose(decoded, audio, atol=1.0 / 32767 + 1e-6)   # 16-bit PCM of it
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 600                   # a drawn figure
    assert image[..., :3].std() > 0.05                                      # not blank


def test_a_piece_shorter_than_one_clip_and_a_long_one_have_their_exact_length(sampler,
                                                                             tmp_path):
    for seconds in (0.3, 12.5):
        _, audio, _, wav = demo.render(sampler, "rock", seconds=seconds,
                                       output_dir=str(tmp_path))
        assert audio.shape == (round(seconds * 8000),)
        assert soundfile.info(wav).frames == round(seconds * 8000)


def test_blend_zero_is_the_first_genre_one_the_second_and_between_differs(sampler, tmp_path):
    def piece(genre2, blend):
        return demo.render(sampler, "ambient", genre2, blend, seed=5, seconds=1.0,
                           output_dir=str(tmp_path))[1]

    ambient, techno = piece(None, 0.5), piece("techno", 1.0)
    np.testing.assert_array_equal(piece("techno", 0.0), ambient)
    np.testing.assert_array_equal(piece(demo.NO_SECOND_GENRE, 0.7), ambient)
    np.testing.assert_array_equal(
        techno, demo.render(sampler, "techno", seed=5, seconds=1.0,
                            output_dir=str(tmp_path))[1])
    mixed = piece("techno", 0.5)
    assert np.max(np.abs(mixed - ambient)) > 0.05 and np.max(np.abs(mixed - techno)) > 0.05
    condition = demo.genre_mix(sampler, "ambient", "techno", 0.25)
    np.testing.assert_allclose(condition, [0.75, 0, 0, 0, 0, 0.25])
    assert demo.describe(sampler.genres, condition) == "ambient 75% + techno 25%"
    assert demo.describe(sampler.genres, demo.genre_mix(sampler, "rock")) == "rock"


def test_the_seed_fixes_the_piece(sampler, tmp_path):
    def piece(seed):
        return demo.render(sampler, "classical", seed=seed, seconds=1.5,
                           output_dir=str(tmp_path))[1]

    np.testing.assert_array_equal(piece(11), piece(11))
    assert np.max(np.abs(piece(11) - piece(12))) > 0.05


def test_truncation_scales_the_latents_of_this_piece_only(sampler, tmp_path):
    _, truncated, _, _ = demo.render(sampler, "jazz", seed=2, truncation=0.5, seconds=1.0,
                                     output_dir=str(tmp_path))
    assert sampler.truncation == 1.0                  # the shared model is left as it was
    reference = generate.load_sampler(model="quickstart", truncation=0.5)
    raw, _ = longform.long_form(reference, 1.0, [(0.0, sampler.genres.index("jazz"))], 2)
    np.testing.assert_allclose(truncated, generate.to_pcm_range(raw, "peak"), atol=1e-6)
    _, full, _, _ = demo.render(sampler, "jazz", seed=2, truncation=1.0, seconds=1.0,
                                output_dir=str(tmp_path))
    assert np.max(np.abs(full - truncated)) > 0.05


def test_without_blend_or_truncation_it_is_the_savedmodels_generate_long(sampler, tmp_path):
    _, audio, _, _ = demo.render(sampler, "chiptune", seed=4, seconds=1.5,
                                 output_dir=str(tmp_path))
    served = sampler.model.signatures["generate_long"](
        genre_path=tf.constant("chiptune"), seed=tf.constant(4, tf.int64),
        seconds=tf.constant(1.5))["audio"].numpy()
    assert served.shape == audio.shape
    # The same clips batched differently: float32 round-off only, which the IF's phase
    # integration amplifies and which depends on the CPU's kernels (a 2-core AMD EPYC: the
    # largest sample differs by 0.010, at 48 dB SNR; another seed would be near 0 dB).
    error = audio - served
    snr_db = 10 * np.log10(np.mean(served**2) / np.mean(error**2))
    assert snr_db > 40 and np.max(np.abs(error)) < 0.03, (snr_db, np.max(np.abs(error)))


def test_bad_settings_fail_with_a_message_saying_what_is_allowed(sampler, tmp_path):
    cases = [
        (("polka",), {}, "unknown genre 'polka' \\(genre\\); this model knows: 'ambient'"),
        (("jazz", "polka", 0.5), {}, "unknown genre 'polka' \\(second genre\\)"),
        (("jazz", "rock", 1.5), {}, "blend must be in \\[0, 1\\]"),
        (("jazz",), {"seconds": 0.0}, "duration must be in \\(0, 60\\]"),
        (("jazz",), {"seconds": 61.0}, "duration must be in \\(0, 60\\]"),
        (("jazz",), {"truncation": -0.1}, "truncation must be >= 0"),
        (("jazz",), {"seed": 1.5}, "seed must be a whole number"),
        (("jazz",), {"seed": None}, "seed must be a whole number"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            demo.render(sampler, *args, output_dir=str(tmp_path), **kwargs)
    assert os.listdir(tmp_path) == []                 # nothing written for a bad request


def test_the_page_offers_the_models_genres_and_every_control():
    gr = pytest.importorskip("gradio", reason="the demo extra (requirements-demo.txt) is "
                                              "not installed")
    sampler = generate.load_sampler(model="quickstart")
    app = demo.build_app(sampler, "model:quickstart")
    assert isinstance(app, gr.Blocks)
    by_id = {block.elem_id: block for block in app.blocks.values() if block.elem_id}
    assert {"genre", "genre2", "blend", "seed", "truncation", "seconds", "generate", "audio",
            "spectrogram", "download", "status"} <= set(by_id)
    assert [value for _, value in by_id["genre"].choices] == sampler.genres
    assert [value for _, value in by_id["genre2"].choices] == [demo.NO_SECOND_GENRE,
                                                               *sampler.genres]
    assert by_id["seconds"].maximum == demo.MAX_SECONDS
    summary = demo.model_summary(sampler, "model:quickstart")
    assert "6 genres (ambient, chiptune" in summary and "8000 Hz" in summary
    assert "0.512 s" in summary


def test_command_errors_name_the_flag(tmp_path, monkeypatch):
    cases = [
        ([], "give exactly one of --train_dir"),
        (["--model=nope"], "--model=nope: no shipped model of that name (shipped: "
                           "quickstart"),
        ([f"--export_dir={tmp_path / 'missing'}"], "--export_dir="),
        ([f"--export_dir={tmp_path}"], "holds no saved_model.pb"),
        ([f"--train_dir={tmp_path / 'missing'}"], "no such folder"),
        ([f"--train_dir={tmp_path}"], f"--train_dir={tmp_path}: "),
        (["--model=quickstart", "--port=0"], "port"),
        (["--model=quickstart", "--bogus"], "Unknown command line flag 'bogus'"),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as e:
            demo.main(["demo", *args])
        assert expected in str(e.value.code), (args, e.value.code)
        assert str(e.value.code).startswith("demo: "), e.value.code
    # Without the extra: the command says how to install it.
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(SystemExit, match=r"demo: gradio is not installed.*\.\[demo\]"):
        demo.main(["demo", "--model=quickstart", f"--output_dir={tmp_path / 'out'}"])


def test_an_unknown_model_exits_nonzero_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gansynth_tf.demo", "--model=nope"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("demo:")]
    assert len(lines) == 1 and "--model=nope" in lines[0], result.stderr[-2000:]


def test_help_lists_every_flag_with_its_meaning(capsys):
    with pytest.raises(SystemExit) as e:
        demo.main(["demo", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in demo.make_flags():
        assert f"--{name}" in out
        assert len(demo.make_flags()[name].help) > 10
