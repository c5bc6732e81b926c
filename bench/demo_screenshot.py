"""A screenshot of the web demo after it made a piece: docs/demo.png.

Starts `python -m gansynth_tf.demo` with the shipped model on a free port, drives the page
in headless Chromium (gansynth_tf/demo_browser.py: choose the genres, set the blend and the
duration, press Generate, wait for the player and the spectrogram) and saves the window.
Needs the demo extra and Chromium with chromedriver (Debian: chromium chromium-driver).

    python bench/demo_screenshot.py [--output=docs/demo.png] [--genre=jazz --genre2=rock
        --blend=0.3 --seconds=10 --seed=3]
"""

import os
import sys
import time

from absl import app, flags

from gansynth_tf import demo_browser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "quickstart", "Shipped model to serve.")
flags.DEFINE_string("output", os.path.join(REPO, "docs", "demo.png"), "Where the PNG goes.")
flags.DEFINE_string("genre", "jazz", "First genre.")
flags.DEFINE_string("genre2", "rock", "Second genre to blend in ('' for none).")
flags.DEFINE_float("blend", 0.3, "Share of the second genre.")
flags.DEFINE_float("seconds", 10.0, "Duration of the piece.")
flags.DEFINE_integer("seed", 3, "Seed of the piece.")
flags.DEFINE_integer("width", 1280, "Window width (pixels).")
flags.DEFINE_integer("height", 1000, "Window height (pixels).")


def main(argv):
    del argv
    browser = demo_browser.find_browser()
    if browser is None:
        sys.exit("demo_screenshot: no Chromium or chromedriver on PATH (Debian: apt-get "
                 "install chromium chromium-driver)")
    start = time.perf_counter()
    with demo_browser.DemoServer([f"--model={FLAGS.model}"]) as server:
        ready = time.perf_counter()
        with demo_browser.chromium_driver(browser, FLAGS.width, FLAGS.height) as driver:
            result = demo_browser.generate_piece(
                driver, server.url, FLAGS.genre, FLAGS.seconds, genre2=FLAGS.genre2 or None,
                blend=FLAGS.blend if FLAGS.genre2 else None, seed=FLAGS.seed)
            driver.execute_script("window.scrollTo(0, 0);")
            time.sleep(0.5)  # the scroll and the player's layout settle
            os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
            driver.save_screenshot(FLAGS.output)
    print(f"server ready in {ready - start:.1f} s; piece: {result['status']}")
    print(f"wrote {FLAGS.output} ({FLAGS.width}x{FLAGS.height} window); spectrogram "
          f"{result['image_width']}x{result['image_height']} px, WAV {len(result['wav'])} "
          f"bytes, {result['audio_duration']:.2f} s in the browser's player")


if __name__ == "__main__":
    app.run(main)
