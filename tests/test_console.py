"""What a person sees on the console: no CUDA/cuDNN noise from TensorFlow on a CPU machine."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("Unable to register", "cuda", "TensorRT", "oneDNN")


def _run_without_log_level(*args):
    """Runs a command as a user would: TF_CPP_MIN_LOG_LEVEL unset (conftest sets it)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONPATH")}
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
