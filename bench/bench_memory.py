"""Peak resident memory (RSS) of training steps and hi-res generation, one fresh process each.

Every case runs in its own subprocess (this script with --case=NAME; --repeats fresh
processes per case, min and max reported, since the peak varies from run to run with the
order in which TF's thread pools run independent ops), so a peak is never inherited from an
earlier case; the child reports `resource.getrusage(RUSAGE_SELF).ru_maxrss`
after importing TensorFlow + gansynth_tf (the floor every case pays) and at the end.

Cases (default: all but the slow hi-res training step):
  import                  import tensorflow, keras, gansynth_tf only
  train_quickstart_s0     quickstart_config(6), batch 16, stage 0: build, compile, 3 fit steps
  train_quickstart_s3     the same at the last stage (32x128)
  gen_hires_b1 / _b8      hires_config(10) generator + GANSynth IF inverse (mel, "magenta"),
                          batch 1 / 8, tf.function, 2 calls
  gen_hires_refined_b8    the same with mel_inversion="refined"
  train_hires             hires_config(10), batch 8, last stage, 1 fit step (~1 min on 2 CPUs)

Note: peak RSS is host memory. On a GPU the tensors live in device memory, which this does
not see (use tf.config.experimental.get_memory_info there).

    python bench/bench_memory.py --output_json=bench/results/memory.json
    python bench/bench_memory.py --cases=train_hires,gen_hires_b8
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags  # noqa: E402

import bench_common as bc  # noqa: E402

FLAGS = flags.FLAGS
CASES = ("import", "train_quickstart_s0", "train_quickstart_s3", "gen_hires_b1",
         "gen_hires_b8", "gen_hires_refined_b8", "train_hires")
flags.DEFINE_list("cases", [c for c in CASES if c != "train_hires"],
                  f"Cases to measure, from {', '.join(CASES)}.")
flags.DEFINE_string("case", None, "Internal: run this one case in this process and print it.")
flags.DEFINE_integer("train_steps", 3, "fit steps of the training cases.")
flags.DEFINE_integer("repeats", 2, "Fresh processes per case (peak RSS varies run to run with "
                     "TF's parallel op scheduling; min and max are reported).")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

DESCRIPTIONS = {
    "import": "import tensorflow + gansynth_tf",
    "train_quickstart_s0": "training, quickstart stage 0 (4x16), batch 16",
    "train_quickstart_s3": "training, quickstart stage 3 (32x128), batch 16",
    "gen_hires_b1": "hi-res generation + IF (magenta), batch 1",
    "gen_hires_b8": "hi-res generation + IF (magenta), batch 8",
    "gen_hires_refined_b8": "hi-res generation + IF (refined mel inverse), batch 8",
    "train_hires": "training, hi-res last stage (128x1024), batch 8",
}


def _maxrss_mb():
    # Linux reports kilobytes (macOS bytes).
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024.0 * 1024.0) if sys.platform == "darwin" else kb / 1024.0


def _train(cfg, stage, batch, steps):
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf.gan import build_gan  # pylint: disable=import-outside-toplevel
    keras.utils.set_random_seed(0)
    gan = build_gan(cfg, seed=0)
    gan.compile(mode_seeking_weight=1.0)
    gan.set_stage(stage, alpha=1.0)
    t, f = cfg.final_resolution
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 0.5, (batch, t, f, 2)), -1, 1).astype("float32")
    y = np.eye(cfg.num_genres, dtype="float32")[rng.integers(0, cfg.num_genres, batch)]
    gan.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), steps_per_epoch=steps, verbose=0,
            shuffle=False)


def _generate(batch, mel_inversion):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import networks  # pylint: disable=import-outside-toplevel
    from gansynth_tf.representation import Representation  # pylint: disable=import-outside-toplevel
    cfg = networks.hires_config(10)
    gen = networks.Generator(cfg)
    rep = Representation(mel=True, mel_inversion=mel_inversion)
    spec = [tf.TensorSpec([batch, cfg.latent_dim]), tf.TensorSpec([batch, cfg.num_genres])]

    @tf.function(input_signature=spec)
    def sample(z, g):
        return rep.features_to_waves(gen([z, g]), phase="if")

    z = tf.random.normal([batch, cfg.latent_dim])
    g = tf.one_hot(tf.range(batch) % cfg.num_genres, cfg.num_genres)
    for _ in range(2):
        sample(z, g).numpy()


def run_one(case):
    bc.quiet_tf()
    t0 = time.perf_counter()
    import keras  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    import gansynth_tf.gan  # noqa: F401 pylint: disable=import-outside-toplevel,unused-import
    from gansynth_tf import networks  # pylint: disable=import-outside-toplevel
    after_import = _maxrss_mb()
    if case == "train_quickstart_s0":
        _train(networks.quickstart_config(6), 0, 16, FLAGS.train_steps)
    elif case == "train_quickstart_s3":
        _train(networks.quickstart_config(6), 3, 16, FLAGS.train_steps)
    elif case == "gen_hires_b1":
        _generate(1, "magenta")
    elif case == "gen_hires_b8":
        _generate(8, "magenta")
    elif case == "gen_hires_refined_b8":
        _generate(8, "refined")
    elif case == "train_hires":
        _train(networks.hires_config(10), 6, 8, 1)
    elif case != "import":
        raise ValueError(f"unknown case {case!r}")
    out = {"case": case, "peak_rss_mb": _maxrss_mb(), "rss_after_import_mb": after_import,
           "seconds": time.perf_counter() - t0,
           "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}
    print("RESULT " + json.dumps(out), flush=True)


def main(argv):
    del argv
    if FLAGS.case:
        run_one(FLAGS.case)
        return
    info = bc.machine_info()
    unknown = set(FLAGS.cases) - set(CASES)
    if unknown:
        raise app.UsageError(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    results = {"machine": info, "cases": {}}
    rows = []
    for case in FLAGS.cases:
        print("running", case, flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), f"--case={case}",
               f"--train_steps={FLAGS.train_steps}"]
        runs, error = [], None
        for _ in range(FLAGS.repeats):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=bc.REPO)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                error = {"error": proc.stderr[-2000:], "rc": proc.returncode}
                print(f"  FAILED (rc {proc.returncode}): {proc.stderr[-800:]}")
                break
            runs.append(json.loads(line[-1][len("RESULT "):]))
            print(f"  peak RSS {runs[-1]['peak_rss_mb']:.0f} MB ({runs[-1]['seconds']:.1f} s)",
                  flush=True)
        if error:
            results["cases"][case] = error
            rows.append([case, DESCRIPTIONS[case], "FAILED", "-", "-", "-"])
            continue
        peaks = [r["peak_rss_mb"] for r in runs]
        above = [r["peak_rss_mb"] - r["rss_after_import_mb"] for r in runs]
        r = {"runs": runs, "peak_rss_mb_max": max(peaks), "peak_rss_mb_min": min(peaks),
             "above_import_mb_max": max(above), "device": runs[0]["device"]}
        results["cases"][case] = r
        rows.append([case, DESCRIPTIONS[case], f"{max(peaks):.0f}", f"{min(peaks):.0f}",
                     f"{max(above):.0f}",
                     f"{statistics.median(x['seconds'] for x in runs):.1f}"])
    info["device_kind"] = next((r.get("device") for r in results["cases"].values()
                                if "device" in r), None)
    print("\n## Peak RSS (fresh process per case)\n")
    print(f"CPU {info['cpu_model']}, {info['logical_cpus']} logical CPUs; device "
          f"{info['device_kind']}. {FLAGS.repeats} fresh process(es) per case; 'above import' "
          f"= peak minus the RSS right after importing TensorFlow + gansynth_tf in the same "
          f"process.\n")
    print(bc.markdown_table(["case", "what", "peak RSS MB (max)", "peak RSS MB (min)",
                             "above import MB (max)", "wall s"], rows))
    bc.finish(info)
    bc.write_json(FLAGS.output_json, results)


if __name__ == "__main__":
    app.run(main)
