"""bench/device_check.sh --tiny: the GPU check runs end to end at a toy size on the CPU."""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_tiny_device_check_writes_positive_finite_figures(tmp_path):
    out = str(tmp_path / "device_check.json")
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(["bash", os.path.join(ROOT, "bench", "device_check.sh"), "--tiny",
                             f"--output_json={out}"], capture_output=True, text=True,
                            timeout=240, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as f:
        data = json.load(f)
    assert data["tiny"] is True
    cases = [c for c in data["training"] if "images_per_s" in c]
    assert not [c for c in data["training"] if "error" in c or "skipped" in c]
    settings = {(c["mixed_precision"], c["jit_compile"], c["features_on_device"])
                for c in cases}
    assert settings == {(m, x, False) for m in (False, True) for x in (False, True)} | {
        (False, False, True)}
    for c in cases:
        assert _positive(c["images_per_s"]) and _positive(c["step_s"]), c
        assert c["finite_losses"], c
    summary = data["summary"]
    assert summary["largest_batch"] >= data["size"]["batch"]
    assert len(summary["train_images_per_s"]) >= 5
    assert all(_positive(v) for v in summary["train_images_per_s"].values())
    assert set(summary["generation_x_real_time"]) == {"if_magenta", "if_refined"}
    assert all(_positive(v) for v in summary["generation_x_real_time"].values())
    assert _positive(data["peak_host_rss_mb"]) and _positive(data["elapsed_s"])
    # Peak GPU memory where TensorFlow sees a GPU, null where it does not.
    gpu = bool(data["machine"]["gpus"])
    assert (_positive(data["peak_gpu_bytes"]) if gpu else data["peak_gpu_bytes"] is None)
