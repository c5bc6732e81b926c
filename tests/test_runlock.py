"""The run-directory lock: one holder at a time, a dead holder's lock taken over, release."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from gansynth_tf import runlock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD_LOCK = ("import sys, time\n"
             "from gansynth_tf import runlock\n"
             "runlock.acquire(sys.argv[1])\n"
             "print('held', flush=True)\n"
             "time.sleep(120)\n")


def test_a_held_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    lock = runlock.acquire(str(tmp_path))
    with open(tmp_path / runlock.LOCK_FILE) as f:
        record = json.load(f)
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    with pytest.raises(runlock.RunLockedError) as e:
        runlock.acquire(str(tmp_path))
    message = str(e.value)
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message
    assert "--train_dir" in message and "\n" not in message
    lock.release()
    assert not (tmp_path / runlock.LOCK_FILE).exists()
    runlock.acquire(str(tmp_path)).release()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runlock.RunLockedError, match=f"pid {holder.pid} "):
            runlock.acquire(str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release
        holder.wait(timeout=30)
        holder.stdout.close()
    assert (tmp_path / runlock.LOCK_FILE).exists(), "a killed run leaves its lock file"
    lock = runlock.acquire(str(tmp_path))
    assert lock.taken_over["pid"] == holder.pid
    with open(tmp_path / runlock.LOCK_FILE) as f:
        assert json.load(f)["pid"] == os.getpid()
    lock.release()


def test_a_lock_file_without_a_holder_is_taken_over(tmp_path):
    """A lock file left by any means (copied run, old crash) holds nothing by itself."""
    (tmp_path / runlock.LOCK_FILE).write_text(json.dumps(
        {"pid": 999999999, "host": socket.gethostname(), "started": "yesterday"}))
    with runlock.acquire(str(tmp_path)) as lock:
        assert lock.taken_over["pid"] == 999999999
    assert not (tmp_path / runlock.LOCK_FILE).exists()
