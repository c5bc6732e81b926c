"""Drives the web demo in a real browser: headless Chromium through Selenium.

Shared by tests/test_demo_browser.py (the end-to-end test) and bench/demo_screenshot.py
(docs/demo.png). Needs the `demo` extra (selenium) and Chromium with its driver: on Debian
`apt-get install chromium chromium-driver` (.ci/run does it).

    with DemoServer(["--model=quickstart"]) as server:
        with chromium_driver(browser) as driver:
            result = generate_piece(driver, server.url, "jazz", seconds=2.0)

Nothing here imports TensorFlow: the model runs in the server's own process.
"""

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Names Debian, other distributions and Google give the browser and its driver.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVER_NAMES = ("chromedriver",)
# Start-up (TensorFlow and Gradio imports, loading the model) and one short piece each take
# seconds on 2 idle cores; the margin is for cores shared with other work.
TIMEOUT_SECONDS = 120.0


def find_browser():
    """(chromium path, chromedriver path), or None where either is missing."""
    browser = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    driver = next(filter(None, map(shutil.which, DRIVER_NAMES)), None)
    return (browser, driver) if browser and driver else None


def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class DemoServer:
    """`python -m gansynth_tf.demo ARGS --port=<free>` in a subprocess, for a `with` block.

    Its output goes to a file: `log()` reads it (for a failure's message) while the block
    runs; the process is ended and the file removed on leaving it, whatever happened.
    """

    def __init__(self, args, host="127.0.0.1", timeout=TIMEOUT_SECONDS):
        self.args, self.host, self.timeout = list(args), host, timeout
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}/"
        self.process = None
        self._log = tempfile.NamedTemporaryFile(prefix="gansynth-demo-", suffix=".log",
                                                delete=False)

    def log(self):
        with open(self._log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def __enter__(self):
        # Unbuffered, so the log is complete when read while the server runs.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gansynth_tf.demo", *self.args, f"--host={self.host}",
             f"--port={self.port}"], stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the demo server exited with status "
                                   f"{self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the demo server did not answer at {self.url} within "
                           f"{self.timeout:g} s:\n{self.log()[-3000:]}")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        with contextlib.suppress(OSError):
            os.remove(self._log.name)
        return False


@contextlib.contextmanager
def chromium_driver(browser, width=1280, height=1000):
    """A headless Chromium WebDriver showing pages width x height; quits on leaving."""
    # pylint: disable=import-outside-toplevel
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    # pylint: enable=import-outside-toplevel

    chromium, chromedriver = browser
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start;
    # /dev/shm is small in containers.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", f"--window-size={width},{height}", "--mute-audio"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        # --window-size counts the window's frame: this makes the page itself that size.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        driver.set_page_load_timeout(TIMEOUT_SECONDS)
        driver.set_script_timeout(TIMEOUT_SECONDS)
        yield driver
    finally:
        driver.quit()


def _choose(driver, wait, elem_id, value):
    """Picks `value` in the Gradio dropdown #elem_id as a person would: open, click."""
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    # pylint: enable=import-outside-toplevel

    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"#{elem_id} input")))
    box.click()
    # The open list is the element the combobox names (Gradio may render it elsewhere).
    listbox = box.get_attribute("aria-controls")
    option = wait.until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, f"[id='{listbox}'] [role=option][aria-label='{value}']")))
    option.click()
    wait.until(lambda _: box.get_attribute("value") == value)


def _type_number(driver, wait, elem_id, value):
    """Types `value` into the number box of Gradio slider or number #elem_id."""
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    # pylint: enable=import-outside-toplevel

    box = wait.until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, f"#{elem_id} input[type=number]")))
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(f"{value:g}", Keys.TAB)
    wait.until(lambda _: float(box.get_attribute("value") or "nan") == float(value))


def generate_piece(driver, url, genre, seconds, genre2=None, blend=None, seed=None,
                   timeout=TIMEOUT_SECONDS):
    """Loads the page, sets the controls, presses Generate and waits for the results.

    Returns a dict: audio_src (the <audio> element's URL), audio_duration (seconds, as the
    browser decoded it), wav (the bytes at audio_src, fetched by the page itself),
    image_width / image_height (the spectrogram <img>'s natural size), status (the text
    above the player), download_href (the WAV link).
    Raises selenium's TimeoutException when something does not appear within `timeout`.
    """
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    # pylint: enable=import-outside-toplevel

    wait = WebDriverWait(driver, timeout, poll_frequency=0.25)
    driver.get(url)
    _choose(driver, wait, "genre", genre)
    if genre2 is not None:
        _choose(driver, wait, "genre2", genre2)
    if blend is not None:
        _type_number(driver, wait, "blend", blend)
    if seed is not None:
        _type_number(driver, wait, "seed", seed)
    _type_number(driver, wait, "seconds", seconds)
    wait.until(ec.element_to_be_clickable((By.ID, "generate"))).click()

    audio = wait.until(lambda d: next(
        (a for a in d.find_elements(By.CSS_SELECTOR, "#audio audio")
         if (a.get_attribute("src") or "").endswith(".wav")), False))
    # readyState >= 1 (HAVE_METADATA): the browser has read the file's header and length.
    duration = wait.until(lambda d: d.execute_script(
        "const a = arguments[0]; return a.readyState >= 1 && isFinite(a.duration) ? "
        "a.duration : null;", audio))
    image = wait.until(lambda d: next(
        (i for i in d.find_elements(By.CSS_SELECTOR, "#spectrogram img")
         if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                             i)), False))
    src = audio.get_attribute("src")
    # The page's own fetch: the file as the browser gets it, same origin and cookies.
    encoded = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status))"
        ".then(b => { let s = ''; const u = new Uint8Array(b);"
        "  for (let i = 0; i < u.length; i += 8192)"
        "    s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));"
        "  done(btoa(s)); })"
        ".catch(e => done('ERROR ' + e));", src)
    if encoded.startswith("ERROR"):
        raise RuntimeError(f"the page could not fetch {src}: {encoded}")
    links = driver.find_elements(By.CSS_SELECTOR, "#download a[download]")
    return {
        "audio_src": src,
        "audio_duration": float(duration),
        "wav": base64.b64decode(encoded),
        "image_width": int(driver.execute_script("return arguments[0].naturalWidth", image)),
        "image_height": int(driver.execute_script("return arguments[0].naturalHeight",
                                                  image)),
        "status": driver.find_element(By.ID, "status").text,
        "download_href": links[0].get_attribute("href") if links else None,
    }
