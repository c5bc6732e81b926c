"""The web demo end to end in a real browser: the server in a subprocess with the shipped
model, headless Chromium driven by Selenium choosing a genre, a blend and a duration,
pressing Generate, then the WAV behind the <audio> element and the spectrogram <img>.

Skipped, with the reason, only where Chromium or chromedriver is not installed (.ci/run
installs Debian's `chromium` and `chromium-driver`) or the demo extra (gradio, selenium) is
not importable.
"""
import io
import urllib.request

import numpy as np
import pytest
import soundfile

pytest.importorskip("gradio", reason="gradio (the demo extra, requirements-demo.txt) is "
                                     "not installed")
pytest.importorskip("selenium", reason="selenium (the demo extra, requirements-demo.txt) is "
                                       "not installed")

from gansynth_tf import demo_browser  # noqa: E402

BROWSER = demo_browser.find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium or chromedriver on PATH (Debian: apt-get install "
                            "chromium chromium-driver)")
SAMPLE_RATE = 8000                       # the quickstart model's
SECONDS = 2.0                            # short, to keep CI fast


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    with demo_browser.DemoServer(["--model=quickstart", f"--output_dir={out}"]) as running:
        yield running


@pytest.fixture(scope="module")
def driver():
    with demo_browser.chromium_driver(BROWSER) as chromium:
        yield chromium


def _generate(server, driver, *args, **kwargs):
    """generate_piece, failing with the server's output if the page does not deliver."""
    try:
        return demo_browser.generate_piece(driver, server.url, *args, **kwargs)
    except Exception as e:  # any failure gets the server's log
        pytest.fail(f"{type(e).__name__}: {e}\n--- demo server output ---\n"
                    f"{server.log()[-4000:]}")


def test_a_genre_and_a_duration_give_a_playable_wav_of_that_length_and_its_spectrogram(
        server, driver):
    result = _generate(server, driver, "techno", SECONDS, seed=7)
    assert result["audio_src"].startswith(server.url) and result["audio_src"].endswith(".wav")
    # The browser decoded the header: a WAV it can play, of the asked length.
    assert result["audio_duration"] == pytest.approx(SECONDS, abs=0.01)
    audio, sr = soundfile.read(io.BytesIO(result["wav"]), dtype="float32")
    assert sr == SAMPLE_RATE
    assert abs(len(audio) - SECONDS * SAMPLE_RATE) <= 0.01 * SAMPLE_RATE
    assert np.max(np.abs(audio)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)   # -1 dBFS
    assert result["image_width"] > 0 and result["image_height"] > 0
    assert "techno" in result["status"] and "seed 7" in result["status"]
    # The download link serves the same file to a plain HTTP client.
    assert result["download_href"], "no WAV download link on the page"
    with urllib.request.urlopen(result["download_href"], timeout=30) as response:
        assert response.read() == result["wav"]


def test_a_blend_of_two_genres_is_made_and_named(server, driver):
    result = _generate(server, driver, "ambient", SECONDS, genre2="rock", blend=0.25, seed=7)
    assert "ambient 75% + rock 25%" in result["status"]
    audio, sr = soundfile.read(io.BytesIO(result["wav"]), dtype="float32")
    assert sr == SAMPLE_RATE and len(audio) == SECONDS * SAMPLE_RATE
    assert result["image_width"] > 0
