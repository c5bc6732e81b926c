"""The disk cache of decoded audio survives a run killed while filling it."""
import glob
import os
import subprocess
import sys

import numpy as np
import soundfile

from gansynth_tf import datasets
from gansynth_tf.datasets import cache

SR, L = 16000, 8000


def _folder(root):
    t = np.arange(SR) / SR
    for i, genre in enumerate(["rock", "jazz"]):
        os.makedirs(root / genre)
        for j in range(2):
            wave = (0.4 * np.sin(2 * np.pi * (300 + 100 * i + 30 * j) * t)).astype(np.float32)
            soundfile.write(str(root / genre / f"{j}.wav"), wave, SR)
    return root


def _source(data_dir, cache_dir):
    cfg = datasets.DataConfig(dataset="folder", data_dir=str(data_dir), sample_rate=SR,
                              audio_length=L, cache=True, cache_dir=str(cache_dir),
                              audio_backend="soundfile", holdout_fraction=0.0)
    return datasets.build_source(cfg)


def _clips(source):
    return sum(1 for _ in source.waves_dataset(training=False))


def test_a_fill_left_by_a_killed_run_is_removed_and_filled_again(tmp_path):
    data, cache_dir = _folder(tmp_path / "data"), tmp_path / "cache"
    source = _source(data, cache_dir)
    prefix = source.cache_mode
    assert prefix.startswith(str(cache_dir))
    cache.release_disk_caches()  # as if this process had ended
    # What Dataset.cache leaves when its process is killed mid-fill.
    with open(f"{prefix}_0.lockfile", "w") as f:
        f.write("Created at: 1796301750")
    with open(f"{prefix}_0.data-00000-of-00001.tempstate42", "wb") as f:
        f.write(b"\0" * 64)
    source = _source(data, cache_dir)
    assert source.cache_mode == prefix
    assert not glob.glob(prefix + "_0*")
    assert _clips(source) == 8            # 4 one-second tracks, 2 windows each
    assert glob.glob(prefix + ".index")   # the fill finished this time
    assert _clips(source) == 8            # and is read back
    cache.release_disk_caches()


def test_a_live_fill_elsewhere_means_no_cache_here_not_a_crash(tmp_path):
    data, cache_dir = _folder(tmp_path / "data"), tmp_path / "cache"
    prefix = _source(data, cache_dir).cache_mode
    cache.release_disk_caches()
    # Another live process holds the claim while the cache is unfinished.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({prefix + '.claim'!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with open(f"{prefix}_0.lockfile", "w") as f:
            f.write("Created at: 1796301750")
        source = _source(data, cache_dir)
        assert source.cache_mode is None
        assert _clips(source) == 8
        assert os.path.exists(f"{prefix}_0.lockfile")   # not ours to remove
    finally:
        holder.kill()
        holder.wait()
    cache.release_disk_caches()
