"""What a person sees on the console: no CUDA/cuDNN noise from TensorFlow on a CPU machine,
no XLA start-up lines, no SavedModel renaming notices."""
import logging
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import logging as absl_logging

import helpers_rundir
from gansynth_tf import export

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("Unable to register", "cuda", "TensorRT", "oneDNN")
# TensorFlow's and XLA's C++ log lines (absl's "I0000 00:00:..." before InitializeLog), and
# tf.saved_model.save's renaming notice.
NOISE_RE = re.compile(r"Unable to register|cuda|TensorRT|oneDNN|absl::InitializeLog|^I0000|"
                      r"^W0000|XLA service|Compiled cluster|unsupported characters",
                      re.IGNORECASE | re.MULTILINE)


def _run_without_log_level(*args, **env_vars):
    """Runs a command as a user would: TF_CPP_MIN_LOG_LEVEL unset (conftest sets it)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")}
    env.update(env_vars)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)


# absl's own --helpshort (the trainer's) exits 1 by design.
@pytest.mark.parametrize("command,returncode", [
    (["-m", "gansynth_tf.generate", "--help"], 0),
    (["run_training.py", "--helpshort"], 1)])
def test_commands_print_no_tensorflow_start_up_noise(command, returncode):
    result = _run_without_log_level(*command)
    assert result.returncode == returncode, result.stderr[-2000:]
    assert "gansynth" in result.stdout  # its own usage text
    noisy = [line for line in (result.stdout + result.stderr).splitlines()
             if any(word.lower() in line.lower() for word in NOISE)]
    assert not noisy, noisy


def test_a_log_level_the_user_set_is_kept():
    result = _run_without_log_level(
        "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'; import gansynth_tf; "
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    assert result.stdout.strip() == "1"


def test_list_genres_of_the_shipped_model_prints_no_tensorflow_line():
    result = _run_without_log_level("-m", "gansynth_tf.generate", "--model=quickstart",
                                    "--list_genres")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not NOISE_RE.findall(result.stdout + result.stderr), result.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return helpers_rundir.make_train_dir(str(tmp_path_factory.mktemp("console") / "run"),
                                         ["jazz", "rock"])


def _generate_with_griffin_lim(train_dir, output_dir, **env_vars):
    return _run_without_log_level(
        "-m", "gansynth_tf.generate", f"--train_dir={train_dir}", "--phase=griffin_lim",
        "--num_samples=1", f"--output_dir={output_dir}", **env_vars)


def test_the_first_xla_compilation_prints_no_absl_start_up_lines(tiny_run, tmp_path):
    # --phase=griffin_lim runs Griffin-Lim's XLA loop: XLA's absl log, which
    # TF_CPP_MIN_LOG_LEVEL does not reach, announces its start (gansynth_tf/tflog.py).
    result = _generate_with_griffin_lim(tiny_run, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 2 WAV files" in result.stdout
    assert not NOISE_RE.findall(result.stdout + result.stderr), result.stderr


def test_tf_cpp_min_log_level_0_shows_tensorflows_log_again(tiny_run, tmp_path):
    result = _generate_with_griffin_lim(tiny_run, tmp_path / "out", TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "XLA service" in result.stderr and "Compiled cluster" in result.stderr


def _renaming_notices(caplog):
    return [r.getMessage() for r in caplog.records if "unsupported characters" in r.getMessage()]


@pytest.fixture
def absl_info(caplog):
    """caplog with absl's INFO records (the renaming notice is one). absl's verbosity, not
    the logger's level: tf.saved_model.save resets the logger to the verbosity mid-save."""
    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    caplog.set_level(logging.INFO)
    yield caplog
    absl_logging.set_verbosity(previous)


def test_a_variable_read_inside_a_name_scope_draws_the_renaming_notice(tmp_path, absl_info):
    """Shows that absl_info sees the notice, so that the next test's silence means something."""
    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.f = tf.function(lambda: {"y": module.v * 2.0}, input_signature=[])
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"f": module.f})
    assert _renaming_notices(absl_info)


def test_export_has_no_signature_input_to_rename(tiny_run, tmp_path, absl_info):
    export.export_saved_model(tiny_run, str(tmp_path / "export"))
    assert any("fingerprint" in r.getMessage() for r in absl_info.records)  # INFO is seen
    assert not _renaming_notices(absl_info)


def test_tensorflow_info_records_are_dropped_and_the_commands_own_kept(monkeypatch):
    import logging

    from gansynth_tf import tflog

    def record(path, level, name="absl"):
        return logging.LogRecord(name, level, path, 1, "message", None, None)

    drop = tflog._DropLibraryInfo()
    saver = "/venv/lib/python3.11/site-packages/tensorflow/python/checkpoint/functional_saver.py"
    assert not drop.filter(record(saver, logging.INFO))
    assert not drop.filter(record("/x/builder_impl.py", logging.INFO, name="tensorflow"))
    assert drop.filter(record(saver, logging.WARNING))          # warnings stay
    assert drop.filter(record("/repo/gansynth_tf/train.py", logging.INFO))
    # Asking TensorFlow for its INFO log turns the filter off.
    from absl import logging as absl_logging
    handler = absl_logging.get_absl_handler()
    before = list(handler.filters)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    tflog.quiet_tensorflow_info()
    assert handler.filters == before
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    tflog.quiet_tensorflow_info()
    tflog.quiet_tensorflow_info()  # idempotent
    added = [f for f in handler.filters if isinstance(f, tflog._DropLibraryInfo)]
    assert len(added) == 1
    for f in added:
        handler.removeFilter(f)
    for logger in (absl_logging.get_absl_logger(), logging.getLogger("tensorflow")):
        for f in [f for f in logger.filters if isinstance(f, tflog._DropLibraryInfo)]:
            logger.removeFilter(f)
