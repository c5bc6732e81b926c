"""The training command: a tiny run end to end, resume after a kill, and bad flags."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from gansynth_tf import rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--dataset=synthetic", "--synthetic_clips_per_genre=4", "--sample_rate=8000",
    "--audio_length=512", "--spec_shape=8,64", "--overlap=0.5", "--model=custom",
    "--resolutions=2x16,4x32,8x64", "--channels=16,12,8", "--latent_dim=8",
    "--batch_size=4", "--stable_images=8", "--transition_images=8",
    "--normalizer_examples=8", "--steps_per_epoch=2", "--summary_every_steps=1",
    "--audio_summary_every_steps=3", "--audio_summary_seconds=0.2", "--verbose=2",
    "--export_at_end=false",
]


def run_training(args, timeout=240, **popen):
    # TensorFlow's log level as a user gets it (the package's default), not conftest's.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, os.path.join(ROOT, "run_training.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
                          **popen)


def checkpoint_step(train_dir):
    path = tf.train.latest_checkpoint(os.path.join(train_dir, "checkpoints"))
    return None if path is None else int(path.rsplit("-", 1)[1])


def read_scalars(train_dir):
    tags = set()
    for name in os.listdir(train_dir):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(train_dir, name)):
                for value in event.summary.value:
                    tags.add(value.tag)
    return tags


def read_tensors(train_dir):
    """{tag: [event, ...]} of the tensor summaries (images, audio) in train_dir."""
    acc = event_accumulator.EventAccumulator(train_dir,
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {tag: acc.Tensors(tag) for tag in acc.Tags()["tensors"]}


def test_tiny_run_goes_through_every_stage_and_writes_the_run_dir(tmp_path):
    train_dir = str(tmp_path / "run")
    result = run_training([f"--train_dir={train_dir}", "--max_steps=20", "--total_images=48",
                           *TINY])
    assert result.returncode == 0, result.stderr[-3000:]
    # Keras warned that fit() ignores shuffle=True for a dataset; TensorFlow's start-up
    # printed CUDA factory errors on a CPU machine.
    noise = [line for line in (result.stdout + result.stderr).splitlines()
             if "shuffle" in line or "Unable to register" in line or "cuda" in line.lower()]
    assert not noise, noise
    for name in ("flags.txt", "genres.json", "representation.json", "network.json",
                 "schedule.json"):
        assert os.path.exists(os.path.join(train_dir, name)), name
    genres = json.load(open(os.path.join(train_dir, "genres.json")))["genres"]
    assert len(genres) >= 6 and genres == sorted(genres)
    assert "--mode_seeking_weight=1.0" in open(os.path.join(train_dir, "flags.txt")).read()
    # 5 phases of 8 images at batch 4 = 10 steps reach the final stage (8x64); training
    # goes on there up to --total_images (12 steps), before --max_steps.
    assert checkpoint_step(train_dir) == 12
    assert "48/48 images (100%)  stage 3/3 (8x64)" in result.stdout
    tags = read_scalars(train_dir)
    for tag in ("train/d_loss", "train/g_loss", "train/gp", "train/ms_term", "train/acc_real",
                "train/acc_fake", "progress/alpha", "progress/stage",
                "progress/images_per_second", "progress/rss_mb", "progress/peak_rss_mb"):
        assert tag in tags, (tag, sorted(tags))
    # Per genre a labelled image and one track: 0.2 s of 64 ms clips with 16 ms crossfades
    # takes 4 clips, 3 * (512 - 128) + 512 samples.
    summaries = read_tensors(train_dir)
    for genre in genres:
        images = summaries[f"spectrogram/{genre}"]
        assert [e.step for e in images] == [3, 6, 9, 12, 12]  # and once more at the end
        png = tf.io.decode_png(tf.make_ndarray(images[-1].tensor_proto)[2]).numpy()
        assert png.shape[:2] == (300, 900)
        (wav, _label), = tf.make_ndarray(summaries[f"audio/{genre}"][-1].tensor_proto)
        audio, rate = tf.audio.decode_wav(wav)
        assert int(rate) == 8000 and audio.shape == (1664, 1)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    train_dir = str(tmp_path / "run")
    args = [f"--train_dir={train_dir}", "--checkpoint_every_steps=2", *TINY,
            "--stable_images=40", "--transition_images=40", "--audio_summary_every_steps=0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "run_training.py"), *args,
                             "--max_steps=100000"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while (checkpoint_step(train_dir) or 0) < 6 and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
    finally:
        proc.wait(timeout=30)
    killed_at = checkpoint_step(train_dir)
    assert killed_at is not None and killed_at >= 6
    ckpt = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(train_dir, "checkpoints")))
    images = int(ckpt.get_tensor("images_seen/.ATTRIBUTES/VARIABLE_VALUE"))
    assert images == 4 * killed_at

    result = run_training([*args, f"--max_steps={killed_at + 4}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stderr
    assert "Taking over" in result.stderr and f"pid {proc.pid} " in result.stderr
    assert not os.path.exists(os.path.join(train_dir, "train.lock")), "released at the end"
    assert f"Step {killed_at} of {killed_at + 4}" in result.stderr
    assert checkpoint_step(train_dir) == killed_at + 4
    ckpt = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(train_dir, "checkpoints")))
    assert int(ckpt.get_tensor("images_seen/.ATTRIBUTES/VARIABLE_VALUE")) == 4 * (killed_at + 4)
    assert np.isfinite(ckpt.get_tensor("alpha/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.parametrize("args,message", [
    ([], "--train_dir is required"),
    (["--train_dir={d}", "--model=custom"], "--model=custom needs --resolutions"),
    (["--train_dir={d}", "--dataset=folder"], "--dataset=folder needs --data_dir"),
    (["--train_dir={d}", "--dataset=folder", "--data_dir={d}/missing"], "missing"),
    (["--train_dir={d}", "--batch_size=5"], "must be even"),
    (["--train_dir={d}", "--spec_shape=64,128"],
     "must equal the model's final resolution"),
    (["--train_dir={d}", "--spec_shape=32,100"], "power of two"),
])
def test_bad_flags_fail_with_a_clear_message(tmp_path, args, message):
    result = run_training([a.format(d=tmp_path) for a in args], timeout=120)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def _unusable_train_dir(tmp_path, kind):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    if kind == "file":
        return str(blocker), "is a file"
    if kind == "under_a_file":
        return str(blocker / "run"), "cannot create"
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    return str(read_only), "is not writable"


@pytest.mark.parametrize("kind", ["file", "under_a_file", "read_only"])
def test_an_unusable_train_dir_is_named_with_its_flag(tmp_path, kind):
    if kind == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes into a 0o555 folder; under_a_file covers the failure path")
    train_dir, expected = _unusable_train_dir(tmp_path, kind)
    result = run_training([f"--train_dir={train_dir}", *TINY], timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"--train_dir={train_dir}" in result.stderr and expected in result.stderr


def test_a_second_run_on_a_train_dir_in_use_exits_at_once(tmp_path):
    from gansynth_tf import runlock
    train_dir = tmp_path / "run"
    train_dir.mkdir()
    with runlock.acquire(str(train_dir)):
        result = run_training([f"--train_dir={train_dir}", *TINY], timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, lines
    assert f"pid {os.getpid()}" in lines[0] and socket.gethostname() in lines[0]
    assert sorted(os.listdir(train_dir)) == [], "the refused run wrote nothing"


def test_resuming_with_a_changed_setting_stops_naming_it(tmp_path):
    train_dir = str(tmp_path / "run")
    args = [f"--train_dir={train_dir}", *TINY, "--max_steps=2", "--audio_summary_every_steps=0"]
    result = run_training(args)
    assert result.returncode == 0, result.stderr[-3000:]
    flags_txt = os.path.join(train_dir, "flags.txt")
    with open(flags_txt) as f:
        saved_flags = f.read()
    with open(os.path.join(train_dir, "loss.json")) as f:
        assert json.load(f)["mode_seeking_weight"] == 1.0
    # The data it trained on, as evaluate reads it (not from flags.txt).
    data_config = rundir.load_data_config(train_dir)
    assert (data_config.dataset, data_config.synthetic_clips_per_genre,
            data_config.sample_rate, data_config.audio_length) == ("synthetic", 4, 8000, 512)
    # The case: the quickstart rerun at 16 kHz resumed on 8 kHz features.
    # The network's preset is saved beside its config, not read back from flags.txt.
    assert rundir.load_network_preset(train_dir) == "custom"
    for flag, saved, new in (("sample_rate", "8000", "16000"),
                             ("mode_seeking_weight", "1.0", "0.5"),
                             ("skip_outputs", "false", "true"),
                             ("modulation", "false", "true"),
                             ("gen_time_padding", "zeros", "reflect")):
        result = run_training([*args, f"--{flag}={new}"], timeout=120)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert f"--{flag}={saved}" in line and f"--{flag}={new}" in line, line
        assert "--train_dir" in line
        with open(flags_txt) as f:
            assert f.read() == saved_flags, "flags.txt is rewritten only once checks pass"
    # An interpolation for a skip path the network does not have is refused, not ignored.
    result = run_training([*args, "--skip_upsampling=bilinear"], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "--skip_upsampling=bilinear" in line and "--skip_outputs" in line, line
    # Reflection needs two frames to mirror: a one-frame first stage is refused by name.
    result = run_training([f"--train_dir={tmp_path / 'one_frame'}", *TINY,
                           "--resolutions=1x16,2x32,8x64", "--gen_time_padding=reflect"],
                          timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "--gen_time_padding=reflect" in line and "1x16" in line, line
    # A run from before loss.json existed has no loss settings to compare.
    os.remove(os.path.join(train_dir, "loss.json"))
    result = run_training([*args, "--mode_seeking_weight=0.5"], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def _network_weights(train_dir):
    """{name: array} of the networks' variables in the run's latest checkpoint."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(train_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.split("/")[0] in ("generator", "ema_generator", "discriminator")}


def test_deterministic_runs_with_one_seed_end_with_the_same_weights(tmp_path):
    # The case: two uninterrupted runs with one --seed gave different models.
    weights = []
    for name in ("a", "b"):
        train_dir = str(tmp_path / name)
        result = run_training([f"--train_dir={train_dir}", *TINY, "--max_steps=6",
                               "--audio_summary_every_steps=0", "--seed=3",
                               "--deterministic"])
        assert result.returncode == 0, result.stderr[-3000:]
        weights.append(_network_weights(train_dir))
    a, b = weights
    assert sorted(a) == sorted(b) and any(n.startswith("generator/") for n in a)
    differing = [n for n in a if not np.array_equal(a[n], b[n])]
    assert not differing, differing


def progress_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("[")]


def test_progress_counts_the_whole_run_across_max_steps_and_a_resume(tmp_path):
    train_dir = str(tmp_path / "run")
    args = [f"--train_dir={train_dir}", *TINY, "--total_images=48", "--verbose=1",
            "--audio_summary_every_steps=0"]
    # The case: with --max_steps Keras' bar counted to the epochs' end and jumped.
    result = run_training([*args, "--max_steps=5"])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = progress_lines(result.stdout)
    assert [line.split("  ")[0].split("] ")[1] for line in lines] == [
        "8/20 images (40%)", "16/20 images (80%)", "20/20 images (100%)"], lines
    assert "stage 2/3 (4x32) alpha 0.50" in lines[1] and "images/s  ETA " in lines[1]
    assert "Stage 2/3 (4x32) begins at 8 images, fading in over 8 images" in result.stderr
    assert "Stage 3/3 (8x64) begins at 24 images" not in result.stderr
    summary = result.stderr[result.stderr.index("Done: "):]
    assert summary.startswith("Done: 20 of 20 images seen (step 5), stage 2/3 (4x32)")
    assert "stopped at --max_steps=5, 7 steps before the end of --total_images" in summary
    assert "no export (--export_at_end=false)" in summary
    for command in (f"gansynth_tf.generate --train_dir={train_dir} ",
                    f"gansynth_tf.evaluate --train_dir={train_dir}",
                    f"tensorboard --logdir {train_dir}"):
        assert command in summary, summary

    # After a resume Keras' bar restarted at 1; the count goes on from the checkpoint.
    result = run_training([*args, "--max_steps=8", "--verbose=2"])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = progress_lines(result.stdout)
    assert [line.split("  ")[0].split("] ")[1] for line in lines] == [
        "24/32 images (75%)", "32/32 images (100%)"], lines
    assert "d_loss " in lines[-1] and "g_loss " in lines[-1], "verbose 2 adds the losses"
    assert "Stage 3/3 (8x64) begins at 24 images" in result.stderr
    assert "Done: 32 of 32 images seen (step 8), stage 3/3 (8x64); this session 12 images" \
        in result.stderr

    # --verbose=0: no progress lines, the summary still closes the log.
    result = run_training([*args, "--max_steps=9", "--verbose=0"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert not progress_lines(result.stdout) and "Done: 36 of 36 images" in result.stderr


@pytest.mark.parametrize("args,message", [
    # The case: a flag only the data config checks, once the folder was made.
    (["--sample_rate=0"], "must be positive"),
    # Fails only when the data is read, after the run folder is created and locked.
    (["--dataset=folder", "--data_dir={tmp}/no_such_data"], "no_such_data"),
])
def test_a_run_that_fails_before_writing_leaves_no_empty_run_folder(tmp_path, args, message):
    train_dir = tmp_path / "runs" / "new"
    result = run_training([f"--train_dir={train_dir}",
                           *[a.format(tmp=tmp_path) for a in args]], timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists(), list(tmp_path.rglob("*"))


def test_resident_memory_is_read_from_proc_status(tmp_path):
    from gansynth_tf.train_callbacks import resident_memory_mb
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t 3145728 kB\nVmRSS:\t 1048576 kB\nThreads:\t9\n")
    assert resident_memory_mb(str(status)) == {"rss_mb": 1024.0, "peak_rss_mb": 3072.0}
    assert resident_memory_mb(str(tmp_path / "missing")) == {}
    live = resident_memory_mb()
    assert 0 < live["rss_mb"] <= live["peak_rss_mb"]
