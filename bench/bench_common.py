"""Helpers shared by the benchmark scripts: machine facts, peak FLOP/s, timing, tables, JSON.

Nothing here imports TensorFlow at module level, so `bench_memory.py` can measure a bare
interpreter too.
"""

import contextlib
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


MUSIC_FLAGFILE = os.path.join(REPO, "flags", "music_cpu.cfg")


def music_recipe_network(path=MUSIC_FLAGFILE):
    """(resolutions ((T, F), ...), channels (int, ...)) of the music recipe's flagfile."""
    values = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name in ("--resolutions", "--channels"):
                values[name] = value.split(",")
    resolutions = tuple(tuple(int(v) for v in r.lower().split("x"))
                        for r in values["--resolutions"])
    return resolutions, tuple(int(c) for c in values["--channels"])


def _lscpu():
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _lscpu_field(text, name):
    m = re.search(rf"^{re.escape(name)}:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else None


def cpu_model():
    model = _lscpu_field(_lscpu(), "Model name")
    return model or platform.processor() or platform.machine()


def cpu_ghz():
    """Clock in GHz: '@ x.xxGHz' in the model name, else lscpu's max MHz, else /proc/cpuinfo."""
    text = _lscpu()
    model = _lscpu_field(text, "Model name") or ""
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        return float(m.group(1)), "model name"
    mhz = _lscpu_field(text, "CPU max MHz")
    if mhz:
        return float(mhz) / 1000.0, "lscpu CPU max MHz"
    with contextlib.suppress(OSError):  # no /proc/cpuinfo outside Linux
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)
        if m:
            return float(m.group(1)) / 1000.0, "/proc/cpuinfo cpu MHz"
    return None, "unknown"


def cpu_flags():
    text = _lscpu()
    flags = _lscpu_field(text, "Flags")
    if not flags:
        try:
            with open("/proc/cpuinfo") as f:
                m = re.search(r"^flags\s*:\s*(.+)$", f.read(), re.M)
            flags = m.group(1) if m else ""
        except OSError:
            flags = ""
    return set(flags.split())


def peak_fp32_gflops():
    """Estimated fp32 peak of the whole machine: logical CPUs x GHz x FLOPs/cycle.

    FLOPs/cycle per core from the widest FMA in the flags, assuming TWO FMA units per core:
    AVX-512 (avx512f) 2 x 16 lanes x 2 = 64; AVX2 + FMA 2 x 8 x 2 = 32; AVX 16; else 8.
    Every logical CPU counts as a core (on a VM with hyper-threads this overstates the peak).
    """
    flags = cpu_flags()
    if "avx512f" in flags:
        per_cycle, isa = 64, "AVX-512 FMA"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 FMA"
    elif "avx" in flags:
        per_cycle, isa = 16, "AVX"
    else:
        per_cycle, isa = 8, "SSE"
    ghz, source = cpu_ghz()
    cores = os.cpu_count() or 1
    peak = cores * ghz * per_cycle if ghz else None
    return {"peak_gflops": peak, "cores": cores, "ghz": ghz, "ghz_source": source,
            "flops_per_cycle": per_cycle, "isa": isa,
            "assumption": f"{cores} logical CPUs x {ghz} GHz ({source}) x {per_cycle} fp32 "
                          f"FLOPs/cycle ({isa}: 2 FMA units assumed)"}


def machine_info():
    info = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu_model": cpu_model(), "logical_cpus": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}
    with contextlib.suppress(OSError):  # no load average on some platforms
        info["loadavg_start"] = os.getloadavg()
    return info


def tf_device_info(tf):
    """TF version and the device a plain op lands on (GPU when TF sees one)."""
    gpus = tf.config.list_physical_devices("GPU")
    with tf.device(None):
        probe = tf.constant([1.0]) * 2.0
    return {"tensorflow": tf.__version__, "gpus": [g.name for g in gpus],
            "device": probe.device or "CPU",
            "device_kind": "GPU" if gpus else "CPU"}


def finish(info):
    with contextlib.suppress(OSError):
        info["loadavg_end"] = os.getloadavg()
    return info


def timed(fn, repeats, warmup=1):
    """Median / min / all wall seconds of `fn()` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return summarize(times)


def summarize(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def markdown_table(headers, rows):
    """Rows of already formatted cells -> a Markdown table string."""
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def write_json(path, obj):
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    from gansynth_tf import cli  # pylint: disable=import-outside-toplevel

    cli.write_json(path, obj, indent=1, default=float)
    print("wrote", path)


def quiet_tf():
    """Silence TF's C++ info logs (call before importing TensorFlow)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --------------------------------------------------------------- one case per fresh process

RESULT_PREFIX = "RESULT "


def proc_status_mb(field):
    """A /proc/self/status size in MB ("VmRSS" now, "VmHWM" the peak); None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb():
    """This process's peak RSS: VmHWM, which exec resets (ru_maxrss keeps the forking
    parent's peak across it), else ru_maxrss."""
    hwm = proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource  # pylint: disable=import-outside-toplevel

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_result(obj):
    """What a case subprocess reports to :func:`run_case`: one JSON line on stdout."""
    print(RESULT_PREFIX + json.dumps(obj), flush=True)


def run_case(script, args, name):
    """Runs `script` with `args` in a fresh interpreter; returns its :func:`print_result`
    dict. Exits naming the case (`name`) and showing its stderr's tail if it failed."""
    import sys  # pylint: disable=import-outside-toplevel

    proc = subprocess.run([sys.executable, os.path.abspath(script), *args],
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode or not lines:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{name} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_PREFIX):])
