"""One short accelerator check: hi-res training images/s, generation speed, peak memory.

Run through `bash bench/device_check.sh` (at most 8 minutes on one GPU); `--tiny` runs the
same code at a toy size on the CPU in well under a minute (tests/test_device_check.py), so
the script keeps working where no GPU is lent.

Measures, at GANSynth's hi-res last stage (`networks.hires_config(10)`, 128x1024 mel-IF,
4 s at 16 kHz; random weights, one random batch repeated, so the input pipeline costs
nothing):

* training images/s of `fit` for every (mixed_precision, jit_compile) pair, at batch 8
  (flags/gansynth_hires.cfg) and at the largest batch that fits: powers of two from 16 up
  to `--max_batch`, searched once with float32 and no XLA until the first out-of-memory
  error; the other settings run at that batch (halved until it fits);
* one more case at batch 8: `--features_on_device`'s train step, fed waves and computing
  the features in the step (float32, no XLA);
* generation x real time at batch `--gen_batch` (64): the EMA-less generator plus the IF
  phase inversion, GANSynth's mel inverse ("magenta") and ours ("refined");
* peak GPU memory per case and overall (`tf.config.experimental.get_memory_info`), when a
  GPU exists; peak host RSS always.

Images/s = batch x steps / wall time of `--steps` steps run by one `fit` after a warm-up
`fit` (which traces and, with XLA, compiles); `fit` returns after the last step's logs are
read, so the time includes the device's work. A case that fails (out of memory, XLA)
records its error and the others go on. Past `--budget_s` the remaining cases are skipped
(and say so). The JSON is rewritten after every case, so a run cut short keeps its figures.

    bash bench/device_check.sh                 # GPU: bench/results/device_check_<host>_<date>.json
    bash bench/device_check.sh --tiny          # CPU smoke: ..._tiny.json
"""

import datetime
import functools
import json
import math
import os
import resource
import socket
import time

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import cli, datasets, networks  # noqa: E402
from gansynth_tf.gan import build_gan  # noqa: E402
from gansynth_tf.representation import Representation  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_boolean("tiny", False, "Toy size (4x32 spectrograms, batch 2, 2 steps): a CPU "
                     "smoke test of this script.")
flags.DEFINE_integer("batch", None, "The fixed batch (default 8; tiny 2).")
flags.DEFINE_integer("max_batch", None, "Largest batch tried (default 512; tiny 4).")
flags.DEFINE_integer("steps", None, "Timed steps per case (default 5; tiny 2).")
flags.DEFINE_integer("gen_batch", None, "Generation batch (default 64; tiny 2).")
flags.DEFINE_float("budget_s", 420.0, "Skip the cases still to run after this many seconds "
                   "(the .sh kills the run at 8 minutes).")
flags.DEFINE_string("output_json", None, "Where the JSON goes (default bench/results/"
                    "device_check_<host>_<date>[_tiny].json).")

STARTED = time.perf_counter()


def _sizes():
    tiny = FLAGS.tiny
    pick = lambda value, full, small: value if value is not None else (small if tiny else full)  # noqa: E731
    if tiny:
        # One stage: XLA's compile time on a CPU grows with the graph, not the sizes.
        cfg = networks.NetworkConfig(((4, 32),), (8,), (8,), 10, 8)
        rep = dict(sample_rate=8000, audio_length=128, spec_shape=(4, 32), overlap=0.5)
    else:
        cfg = networks.hires_config(10)
        rep = dict(sample_rate=16000, audio_length=64000, spec_shape=(128, 1024), overlap=0.75)
    return (cfg, rep, pick(FLAGS.batch, 8, 2), pick(FLAGS.max_batch, 512, 4),
            pick(FLAGS.steps, 5, 2), pick(FLAGS.gen_batch, 64, 2))


def _gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def _reset_peak():
    if _gpu():
        try:
            tf.config.experimental.reset_memory_stats("GPU:0")
        except (ValueError, RuntimeError):
            pass


def _peak_gpu_bytes():
    if not _gpu():
        return None
    try:
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except (ValueError, RuntimeError):
        return None


def _host_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _over_budget():
    return time.perf_counter() - STARTED > FLAGS.budget_s


def _is_oom(e):
    text = f"{type(e).__name__} {e}"
    return isinstance(e, tf.errors.ResourceExhaustedError) or "out of memory" in text.lower() \
        or "OOM" in text


def _data(cfg, rep, batch, waves):
    rng = np.random.default_rng(batch)
    y = np.eye(cfg.num_genres, dtype="float32")[rng.integers(0, cfg.num_genres, batch)]
    if waves:
        x = (0.3 * rng.standard_normal((batch, rep.audio_length))).astype("float32")
    else:
        t, f = cfg.final_resolution
        x = np.clip(rng.normal(0, 0.5, (batch, t, f, cfg.spec_channels)), -1, 1).astype("float32")
    return tf.data.Dataset.from_tensors((x, y)).repeat()


def _build(cfg, rep, mixed, xla, on_device):
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    gan = build_gan(cfg, seed=0)
    preprocess = (functools.partial(datasets.batch_features, rep.waves_to_features)
                  if on_device else None)
    gan.compile(jit_compile=bool(xla), preprocess_fn=preprocess)
    gan.set_stage(cfg.num_stages - 1, alpha=1.0)
    return gan


def _time_case(gan, cfg, rep, batch, steps, on_device=False):
    """(images/s, seconds of the warm-up fit) at `batch`; raises on failure (OOM...)."""
    ds = _data(cfg, rep, batch, on_device)
    t0 = time.perf_counter()
    gan.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    hist = gan.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False).history
    seconds = time.perf_counter() - t0
    finite = all(math.isfinite(float(v[-1])) for v in hist.values())
    return batch * steps / seconds, warmup, seconds / steps, finite


def _case(results, write, cfg, rep, mixed, xla, batch, steps, on_device=False, gan=None):
    entry = {"mixed_precision": mixed, "jit_compile": xla, "features_on_device": on_device,
             "batch": batch}
    if _over_budget():
        entry["skipped"] = f"past --budget_s={FLAGS.budget_s:g}"
        results["training"].append(entry)
        write()
        return entry, gan
    _reset_peak()
    try:
        gan = gan or _build(cfg, rep, mixed, xla, on_device)
        ips, warmup, step_s, finite = _time_case(gan, cfg, rep, batch, steps, on_device)
        entry.update(images_per_s=ips, step_s=step_s, warmup_s=warmup, finite_losses=finite,
                     steps=steps)
    except Exception as e:  # pylint: disable=broad-except
        entry.update(error=f"{type(e).__name__}: {str(e)[:500]}", oom=_is_oom(e))
    entry["peak_gpu_bytes"] = _peak_gpu_bytes()
    results["training"].append(entry)
    label = (f"mp={'on' if mixed else 'off'} xla={'on' if xla else 'off'}"
             f"{' features_on_device' if on_device else ''} batch {batch}")
    if "images_per_s" in entry:
        print(f"  {label}: {entry['images_per_s']:.2f} images/s (step {entry['step_s']:.3f} s, "
              f"warm-up {entry['warmup_s']:.1f} s)", flush=True)
    else:
        print(f"  {label}: FAILED {entry['error'][:200]}", flush=True)
    write()
    return entry, gan


def _largest_batch(results, write, cfg, rep, start, max_batch, steps):
    """Powers of two from 2 * start to max_batch, float32 without XLA, until the first OOM."""
    gan, best = None, start
    batch = start * 2
    while batch <= max_batch and not _over_budget():
        entry, gan = _case(results, write, cfg, rep, False, False, batch, steps, gan=gan)
        entry["search"] = True
        if "images_per_s" not in entry:
            break
        best = batch
        batch *= 2
    write()
    return best


def _generate_fn(gen, rep, spec):
    @tf.function(input_signature=spec)
    def generate(z, g):
        return rep.features_to_waves(gen([z, g]), phase="if")
    return generate


def _generation(cfg, rep_kwargs, batch, repeats):
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    gen = networks.Generator(cfg)
    gen.set_stage(cfg.num_stages - 1, 1.0)
    spec = [tf.TensorSpec([batch, cfg.latent_dim], tf.float32),
            tf.TensorSpec([batch, cfg.num_genres], tf.float32)]
    z = tf.random.stateless_normal([batch, cfg.latent_dim], [0, 1])
    g = tf.one_hot(tf.range(batch) % cfg.num_genres, cfg.num_genres)
    out = {"batch": batch, "clip_seconds": rep_kwargs["audio_length"] / rep_kwargs["sample_rate"]}
    for inversion in ("magenta", "refined"):
        if _over_budget():
            out[f"if_{inversion}"] = {"skipped": f"past --budget_s={FLAGS.budget_s:g}"}
            continue
        fn = _generate_fn(gen, Representation(mel=True, mel_inversion=inversion, **rep_kwargs),
                          spec)
        _reset_peak()
        try:
            t0 = time.perf_counter()
            fn(z, g).numpy()
            first = time.perf_counter() - t0
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn(z, g).numpy()
                times.append(time.perf_counter() - t0)
            sec = float(np.median(times))
            out[f"if_{inversion}"] = {"seconds_per_call": sec, "first_call_s": first,
                                      "x_real_time": batch * out["clip_seconds"] / sec,
                                      "peak_gpu_bytes": _peak_gpu_bytes()}
            print(f"  generation batch {batch}, IF, {inversion} mel inverse: "
                  f"{out[f'if_{inversion}']['x_real_time']:.1f}x real time "
                  f"({sec:.3f} s per call)", flush=True)
        except Exception as e:  # pylint: disable=broad-except
            out[f"if_{inversion}"] = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
            print(f"  generation {inversion}: FAILED {str(e)[:200]}", flush=True)
    return out


def _case_key(c):
    on = lambda v: "on" if v else "off"  # noqa: E731
    return (f"mp_{on(c['mixed_precision'])}_xla_{on(c['jit_compile'])}"
            f"{'_features_on_device' if c['features_on_device'] else ''}_batch{c['batch']}")


def default_output():
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    host = socket.gethostname().split(".")[0] or "host"
    return os.path.join(bc.REPO, "bench", "results",
                        f"device_check_{host}_{date}{'_tiny' if FLAGS.tiny else ''}.json")


def main(argv):
    del argv
    cfg, rep_kwargs, batch, max_batch, steps, gen_batch = _sizes()
    rep = Representation(mel=True, **rep_kwargs)
    info = bc.machine_info()
    info.update(bc.tf_device_info(tf))
    path = FLAGS.output_json or default_output()
    results = {"machine": info, "tiny": FLAGS.tiny,
               "size": {"resolution": list(cfg.final_resolution), "batch": batch,
                        "max_batch": max_batch, "steps": steps, **{
                            k: list(v) if isinstance(v, tuple) else v
                            for k, v in rep_kwargs.items()}},
               "training": []}

    def write(final=False):
        results["elapsed_s"] = time.perf_counter() - STARTED
        results["peak_host_rss_mb"] = _host_rss_mb()
        if final:
            bc.write_json(path, results)  # prints the path
        else:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            cli.write_json(path, results, indent=1, default=float)

    print(f"device: {info['device_kind']} ({', '.join(info['gpus']) or info['device']}); "
          f"{'tiny ' if FLAGS.tiny else ''}{cfg.final_resolution} batch {batch}, up to "
          f"{max_batch}", flush=True)
    largest = None
    for mixed in (False, True):
        for xla in (False, True):
            entry, gan = _case(results, write, cfg, rep, mixed, xla, batch, steps)
            if not mixed and not xla:
                largest = _largest_batch(results, write, cfg, rep, batch, max_batch, steps)
                results["largest_batch"] = largest
                continue
            # Tiny: the larger batch only without XLA (each XLA shape compiles for ~20 s on a
            # CPU, and the tiny run must stay under a minute).
            if largest and largest > batch and not (FLAGS.tiny and xla):
                b = largest
                while b > batch:
                    entry, gan = _case(results, write, cfg, rep, mixed, xla, b, steps, gan=gan)
                    if not entry.get("oom"):
                        break
                    b //= 2
    keras.mixed_precision.set_global_policy("float32")
    _case(results, write, cfg, rep, False, False, batch, steps, on_device=True)
    results["generation"] = _generation(cfg, rep_kwargs, gen_batch, 3 if FLAGS.tiny else 5)
    ok = [c for c in results["training"] if "images_per_s" in c]
    peaks = [c.get("peak_gpu_bytes") for c in ok] + [
        v.get("peak_gpu_bytes") for v in results["generation"].values() if isinstance(v, dict)]
    peaks = [p for p in peaks if p]
    results["peak_gpu_bytes"] = max(peaks) if peaks else None
    results["summary"] = {
        "train_images_per_s": {_case_key(c): c["images_per_s"] for c in ok
                               if not c.get("search") or c["batch"] == largest},
        "largest_batch": largest,
        "generation_x_real_time": {k: v.get("x_real_time") for k, v in
                                   results["generation"].items() if isinstance(v, dict)},
        "peak_gpu_gib": (results["peak_gpu_bytes"] / 2**30 if results["peak_gpu_bytes"]
                         else None),
    }
    bc.finish(info)
    write(final=True)
    print(json.dumps(results["summary"], indent=1))


if __name__ == "__main__":
    app.run(main)
