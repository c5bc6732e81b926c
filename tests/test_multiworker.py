"""Multi-worker training: two `gansynth_tf.train` processes on this machine, one cluster.

Each worker is a separate process with its own TF_CONFIG (MultiWorkerMirroredStrategy over
127.0.0.1 ports), on the CPU, with the tiny model and data of test_train.py. The checks:
both finish; the weights equal a one-process run with the same global batch and seed
(--deterministic: every worker reads the whole data stream in one order and keeps its
share of each global batch, see train.py); only the chief (worker 0) writes into the
train_dir; a killed cluster restarted on the same train_dir resumes from the chief's last
checkpoint.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from test_train import TINY, checkpoint_step, run_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Steps 1-2 at stage 1 (2x16), 3-4 fading in stage 2 (4x32): two traced train functions.
# A global batch of 8 gives each worker 4, the discriminator's minibatch-stddev group: with
# smaller shares its statistics would span other groups than in one process.
BATCH = 8
ARGS = [*TINY, f"--batch_size={BATCH}", "--stable_images=16", "--transition_images=16",
        "--audio_summary_every_steps=0", "--summary_every_steps=2",
        "--checkpoint_every_steps=2", "--seed=3", "--deterministic"]
STEPS = 4
DEADLINE = 240  # seconds for a whole cluster run (about 60 on 2 shared cores)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_cluster(train_dir, args, log_dir, tag):
    """Starts worker 0 (the chief) and worker 1; returns [(Popen, log path)]."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="-1",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        log = os.path.join(log_dir, f"{tag}_worker{index}.log")
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gansynth_tf.train", f"--train_dir={train_dir}",
                 *args, "--distribution=multiworker"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        workers.append((proc, log))
    return workers


def stop(workers):
    for proc, _ in workers:
        if proc.poll() is None:
            proc.kill()
    for proc, _ in workers:
        proc.wait(timeout=30)


def wait_all(workers, deadline=DEADLINE):
    """Exit codes of all workers, waiting up to `deadline` seconds in all."""
    end = time.time() + deadline
    for proc, log in workers:
        try:
            proc.wait(timeout=max(end - time.time(), 1))
        except subprocess.TimeoutExpired:
            stop(workers)
            raise AssertionError(f"worker still running after {deadline}s:\n"
                                 + tail(log)) from None
    return [proc.returncode for proc, _ in workers]


def tail(path, n=3000):
    with open(path) as f:
        return f.read()[-n:]


def network_weights(checkpoint_prefix):
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.split("/")[0] in ("generator", "ema_generator", "discriminator")}


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    train_dir = str(tmp_path / "cluster")
    workers = start_cluster(train_dir, [*ARGS, f"--max_steps={STEPS}"], tmp_path, "run")
    try:
        codes = wait_all(workers)
    finally:
        stop(workers)
    assert codes == [0, 0], [tail(log) for _, log in workers]
    chief_log, other_log = (tail(log, 10**6) for _, log in workers)
    done = f"Done: {STEPS * BATCH} of {STEPS * BATCH} images seen (step {STEPS})"
    assert done in chief_log and done in other_log

    # (c) Only the chief writes: its lock (released), its events file, its checkpoints;
    # worker 1's throwaway checkpoint folder is gone.
    scratch = re.search(r"Worker 1 is not the chief: it reads \S+ and writes its "
                        r"checkpoints to (\S+) ", other_log)
    assert scratch, other_log[-3000:]
    assert not os.path.exists(scratch.group(1))
    assert "not the chief" not in chief_log
    events = [n for n in os.listdir(train_dir) if n.startswith("events.out.tfevents")]
    assert len(events) == 1 and events[0].split(".")[-3] == str(workers[0][0].pid), events
    assert not os.path.exists(os.path.join(train_dir, "train.lock"))
    assert checkpoint_step(train_dir) == STEPS
    # Every 2 steps and at the stage change (step 3); none of worker 1's.
    assert sorted(os.listdir(os.path.join(train_dir, "checkpoints"))) == ["checkpoint"] + [
        f"ckpt-{i}.{ext}" for i in (2, 3, 4) for ext in ("data-00000-of-00001", "index")]

    # (b) The same weights as one process with the same global batch and seed.
    single_dir = str(tmp_path / "single")
    result = run_training([f"--train_dir={single_dir}", *ARGS, f"--max_steps={STEPS}"])
    assert result.returncode == 0, result.stderr[-3000:]
    cluster_w = network_weights(tf.train.latest_checkpoint(os.path.join(train_dir,
                                                                        "checkpoints")))
    single_w = network_weights(tf.train.latest_checkpoint(os.path.join(single_dir,
                                                                       "checkpoints")))
    at_step_2 = network_weights(os.path.join(single_dir, "checkpoints", "ckpt-2"))
    assert sorted(cluster_w) == sorted(single_w) and len(cluster_w) > 10
    moved = max(float(np.max(np.abs(single_w[n] - at_step_2[n]))) for n in single_w)
    gap = max(float(np.max(np.abs(single_w[n] - cluster_w[n]))) for n in single_w)
    # Two half-batch gradients summed against one full-batch gradient: rounding only.
    assert moved > 1e-3 and gap < 1e-4, (moved, gap)


def test_a_killed_cluster_restarted_resumes_from_the_chief_checkpoint(tmp_path):
    train_dir = str(tmp_path / "cluster")
    args = [*ARGS, "--max_steps=100000", "--checkpoint_every_steps=1"]
    workers = start_cluster(train_dir, args, tmp_path, "killed")
    try:
        end = time.time() + DEADLINE
        while (checkpoint_step(train_dir) or 0) < 2 and time.time() < end:
            assert all(p.poll() is None for p, _ in workers), \
                [tail(log) for _, log in workers]
            time.sleep(0.2)
        # Worker 1 dies; worker 0 would wait for it in the next collective (until the
        # coordination service's heartbeat timeout): stop it too, as a scheduler does.
        workers[1][0].send_signal(signal.SIGKILL)
        workers[1][0].wait(timeout=30)
    finally:
        stop(workers)
    killed_at = checkpoint_step(train_dir)
    assert killed_at is not None and killed_at >= 2, [tail(log) for _, log in workers]
    # The chief either died holding its lock (killed) or saw its peer's failure first and
    # released it on the way out: which one depends on timing, and both must resume.
    lock_left = os.path.exists(os.path.join(train_dir, "train.lock"))

    workers = start_cluster(train_dir, [*ARGS, f"--max_steps={killed_at + 2}"], tmp_path,
                            "resumed")
    try:
        codes = wait_all(workers)
    finally:
        stop(workers)
    logs = [tail(log, 10**6) for _, log in workers]
    assert codes == [0, 0], [log[-3000:] for log in logs]
    for log in logs:
        assert "Resuming from" in log and f"Step {killed_at} of {killed_at + 2}" in log, \
            log[-3000:]
        assert f"(step {killed_at + 2})" in log
    assert ("Taking over" in logs[0]) == lock_left, \
        "the chief takes over a lock left behind, and only then"
    assert checkpoint_step(train_dir) == killed_at + 2
