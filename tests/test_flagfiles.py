"""Every flagfile in flags/ parses with the trainer's flags and passes its start-up checks.

No test trains from a flagfile, so a renamed flag or a channel list that no longer matches
its resolutions would otherwise surface only when a user runs the recipe.
"""
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh process: absl's FLAGS are global, and each flagfile is parsed from the
# defaults.
_PARSE = r"""
import json, sys
from gansynth_tf import train
FLAGS = train.FLAGS
out = {}
for path in sys.argv[1:]:
    FLAGS.unparse_flags()
    FLAGS(["run_training.py", "--flagfile=" + path, "--data_dir=/data/any folder"])
    train.check_flags()
    rep = train.representation_from_flags()
    net = train.network_config_from_flags(num_genres=5)
    loss = train.loss_config_from_flags()
    out[path] = {"sample_rate": rep.sample_rate, "audio_length": rep.audio_length,
                 "spec_shape": list(rep.spec_shape),
                 "final_resolution": list(net.final_resolution),
                 "gen_channels": list(net.gen_channels), "dataset": FLAGS.dataset,
                 "gen_time_padding": net.gen_time_padding,
                 "time_budget_minutes": FLAGS.time_budget_minutes,
                 "holdout_fraction": FLAGS.holdout_fraction, "balanced": FLAGS.balanced,
                 "loss": loss.kind, "mode_seeking_weight": loss.mode_seeking_weight,
                 "train_dir": FLAGS.train_dir}
print(json.dumps(out))
"""


def _parsed():
    paths = sorted(glob.glob(os.path.join("flags", "*.cfg")), key=str)
    result = subprocess.run([sys.executable, "-c", _PARSE, *paths], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_flagfile_parses_and_its_network_ends_at_its_spectrogram_shape():
    parsed = _parsed()
    assert {os.path.basename(p) for p in parsed} >= {
        "quickstart.cfg", "music_cpu.cfg", "gtzan.cfg", "gansynth_hires.cfg"}
    for path, p in parsed.items():
        assert p["final_resolution"] == p["spec_shape"], path
        assert p["train_dir"].startswith("runs/"), path

    music = parsed[os.path.join("flags", "music_cpu.cfg")]
    # The contract for the real-music recipe: >= 2 s at >= 16 kHz, within 90 min,
    # held-out tracks and balanced genres.
    assert music["sample_rate"] >= 16000
    assert music["audio_length"] / music["sample_rate"] >= 2.0
    assert 0 < music["time_budget_minutes"] <= 90
    assert music["dataset"] == "folder" and music["balanced"]
    assert 0 < music["holdout_fraction"] < 0.5
    assert music["spec_shape"] == [128, 256] and music["gen_channels"][-1] == 32
    assert music["mode_seeking_weight"] > 0
    # Without it most generated clips burst at both ends (bench/README.md, "Session 26").
    assert music["gen_time_padding"] == "reflect"

    gtzan = parsed[os.path.join("flags", "gtzan.cfg")]
    # GANSynth's 4 s hi-res setting.
    assert (gtzan["sample_rate"], gtzan["audio_length"], gtzan["spec_shape"]) == (
        16000, 64000, [128, 1024])
    assert gtzan["gen_time_padding"] == "zeros"
