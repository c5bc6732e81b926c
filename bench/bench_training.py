"""Training throughput (images/s) per stage, with and without XLA and the mode-seeking term,
and per adversarial loss / gradient-penalty fraction.

Each case builds a fresh `gan.build_gan`, compiles it (GANSynth Adam, `jit_compile` on or off,
`mode_seeking_weight` 0 or 1), sets the stage (alpha 1) and runs `fit` on one random batch of
full-resolution spectrograms repeated by `tf.data` (no input pipeline cost). A first `fit`
of `--*_warmup_steps` traces (and, with XLA, compiles) the train step; its wall time is
reported as "warm-up s". All cases of one size and stage are built and warmed up first (plus
one more untimed step each once all exist), then timed in interleaved rounds (round r runs
`--qs_steps_per_round` steps of every case in turn) so that a changing background load hits
them alike. Every step is timed by a callback (which reads a loss value, so it waits for the
step also on a GPU); images/s = batch / median step; the min step is shown as well, since on
a shared machine it is the least disturbed figure.

Loss variants (`--loss_variants`, quickstart only, XLA off, mode seeking 1): `LOSS:FRACTION`
pairs for `compile(loss=..., penalty_fraction=...)`, e.g. `wgan_gp:0.25` (the gradient
penalty on a quarter of each batch) or `nonsaturating:0.25` (logistic loss, R1 on a quarter).

Activation (`--compare_activation`, quickstart only): one more case, XLA off, mode seeking 0,
with the leaky ReLU written as `tf.maximum(x, 0.2 x)` (this project's form until session 3)
instead of `networks.lrelu` (LeakyRelu kernel, one-select gradient): the ratio of the two is
the speed-up of that change, measured side by side.

Sizes: quickstart (`networks.quickstart_config(6)`, batch 16, stages 0 and 3 by default) and
hi-res (`networks.hires_config(10)`, batch 8, last stage 128x1024; ~tens of s per step on
two CPU cores, so by default one case with one timed step: no XLA, mode seeking on, which is
flags/gansynth_hires.cfg).

    python bench/bench_training.py --output_json=bench/results/training.json
    python bench/bench_training.py --qs_stages=0,1,2,3 --qs_rounds=5 \
        --hires_xla=false,true --hires_mode_seeking=0,1 --hires_steps=3
    python bench/bench_training.py --nohires
"""

import time

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import networks  # noqa: E402
from gansynth_tf.gan import build_gan  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("qs_stages", ["0", "-1"], "Quickstart stages to time (-1 = last).")
flags.DEFINE_integer("qs_batch", 16, "Quickstart batch size.")
flags.DEFINE_integer("qs_warmup_steps", 1, "Untimed quickstart steps (the first traces).")
flags.DEFINE_integer("qs_rounds", 5, "Interleaved timing rounds per quickstart stage.")
flags.DEFINE_integer("qs_steps_per_round", 3, "Timed quickstart steps per case and round.")
flags.DEFINE_list("xla", ["false", "true"], "jit_compile settings for the quickstart cases.")
flags.DEFINE_list("mode_seeking", ["0", "1"], "mode_seeking_weight values (quickstart).")
flags.DEFINE_list("loss_variants", ["wgan_gp:0.25", "nonsaturating:0.25"], "Extra quickstart "
                  "cases LOSS:PENALTY_FRACTION (XLA off, mode seeking 1); empty for none.")
flags.DEFINE_bool("compare_activation", True, "Also time the quickstart with the plain "
                  "tf.maximum leaky ReLU (the form before networks.lrelu).")
flags.DEFINE_bool("hires", True, "Also time the hi-res last stage (slow on CPU).")
flags.DEFINE_integer("hires_batch", 8, "Hi-res batch size.")
flags.DEFINE_integer("hires_warmup_steps", 1, "Untimed hi-res steps (the first traces).")
flags.DEFINE_integer("hires_steps", 1, "Timed hi-res steps per case (one per round).")
flags.DEFINE_list("hires_xla", ["false"], "jit_compile settings for the hi-res cases.")
flags.DEFINE_list("hires_mode_seeking", ["1"], "mode_seeking_weight values (hi-res).")
flags.DEFINE_integer("seed", 0, "Weights / data seed.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")


def _bool(s):
    return str(s).lower() in ("1", "true", "yes", "on")


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self._t0 = [], None

    def on_train_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs:  # reading a value waits for the step (asynchronous devices)
            float(np.asarray(next(iter(logs.values()))))
        self.times.append(time.perf_counter() - self._t0)


def _maximum_lrelu(x):
    return tf.maximum(x, networks.LEAKY_SLOPE * x)


def _build(cfg, stage, batch, xla, ms_weight, seed, loss="wgan_gp", penalty_fraction=1.0):
    keras.utils.set_random_seed(seed)
    gan = build_gan(cfg, seed=seed)
    gan.compile(mode_seeking_weight=float(ms_weight), jit_compile=bool(xla), loss=loss,
                penalty_fraction=float(penalty_fraction))
    gan.set_stage(stage, alpha=1.0)
    t, f = cfg.final_resolution
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0, 0.5, (batch, t, f, cfg.spec_channels)), -1, 1).astype("float32")
    y = np.eye(cfg.num_genres, dtype="float32")[rng.integers(0, cfg.num_genres, batch)]
    return gan, tf.data.Dataset.from_tensors((x, y)).repeat()


def run_group(size, cfg, stage, batch, settings, warmup_steps, rounds, steps_per_round, seed):
    """Times every (xla, ms_weight[, loss, penalty_fraction]) in `settings` at one stage.

    All models are built and warmed up first; then `rounds` rounds each run
    `steps_per_round` timed steps of every model in turn, so a changing background load
    affects the settings alike (their ratios are what is comparable on a shared machine).
    """
    keras.backend.clear_session()
    models, out = [], []
    for setting in settings:
        xla, ms = setting[:2]
        loss, fraction = setting[2:4] if len(setting) > 2 else ("wgan_gp", 1.0)
        activation = setting[4] if len(setting) > 4 else "lrelu"
        entry = {"size": size, "stage": stage, "resolution": list(cfg.resolutions[stage]),
                 "batch": batch, "xla": bool(xla), "mode_seeking_weight": float(ms),
                 "loss": loss, "penalty_fraction": float(fraction), "activation": activation}
        print(f"  building + warming up {size} stage {stage} xla={xla} ms={ms:g} "
              f"{_loss_label(entry)}", flush=True)
        try:
            # The networks look the activation up when the train step is traced (warm-up).
            networks._lrelu = _maximum_lrelu if activation == "maximum" else networks.lrelu
            gan, ds = _build(cfg, stage, batch, xla, ms, seed, loss, fraction)
            t0 = time.perf_counter()
            gan.fit(ds, steps_per_epoch=warmup_steps, epochs=1, verbose=0,
                    shuffle=False)
            entry.update(warmup_steps=warmup_steps, warmup_s=time.perf_counter() - t0,
                         step_times_s=[], finite_losses=True)
            models.append((entry, gan, ds))
        except Exception as e:  # pylint: disable=broad-except
            # An XLA or device failure of one case should not lose the other figures.
            print(f"  FAILED: {type(e).__name__}: {str(e)[:300]}")
            entry["error"] = f"{type(e).__name__}: {str(e)[:1000]}"
        finally:
            networks._lrelu = networks.lrelu
        out.append(entry)
    if len(models) > 1:
        # One more untimed step each once all are built: the first step of a model after
        # others were built and run is slow (allocator / primitive caches), not its speed.
        for _, gan, ds in models:
            gan.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    for _ in range(rounds):
        for entry, gan, ds in models:
            timer = _StepTimer()
            hist = gan.fit(ds, steps_per_epoch=steps_per_round, epochs=1, verbose=0,
                           shuffle=False, callbacks=[timer]).history
            entry["step_times_s"] += timer.times
            entry["finite_losses"] &= all(bool(np.isfinite(v[-1])) for v in hist.values())
    for entry, _, _ in models:
        med = float(np.median(entry["step_times_s"]))
        entry.update(steps=len(entry["step_times_s"]), median_step_s=med,
                     min_step_s=float(np.min(entry["step_times_s"])), images_per_s=batch / med,
                     images_per_s_best=batch / float(np.min(entry["step_times_s"])))
        print(f"  xla={entry['xla']} ms={entry['mode_seeking_weight']:g} {_loss_label(entry)}: "
              f"{entry['images_per_s']:.2f} images/s (median step {med:.3f} s, "
              f"warm-up {entry['warmup_s']:.1f} s)", flush=True)
    return out


def _loss_label(c):
    label = f"{c['loss']} penalty x{c['penalty_fraction']:g}"
    return label + (" maximum-lrelu" if c.get("activation") == "maximum" else "")


def _loss_variants():
    out = []
    for spec in FLAGS.loss_variants:
        loss, _, fraction = spec.partition(":")
        out.append((loss, float(fraction or 1.0)))
    return out


def main(argv):
    del argv
    info = bc.machine_info()
    info.update(bc.tf_device_info(tf))
    print(f"device: {info['device']} ({info['device_kind']}), CPU: {info['cpu_model']}, "
          f"{info['logical_cpus']} logical CPUs, TF {info['tensorflow']}")
    results = {"machine": info, "cases": []}
    qs = networks.quickstart_config(6)
    qs_settings = [(_bool(x), float(m)) for x in FLAGS.xla for m in FLAGS.mode_seeking]
    qs_settings += [(False, 1.0, loss, fraction) for loss, fraction in _loss_variants()]
    if FLAGS.compare_activation:
        qs_settings.append((False, 0.0, "wgan_gp", 1.0, "maximum"))
    for s in FLAGS.qs_stages:
        stage = int(s) % qs.num_stages
        print(f"quickstart stage {stage} {qs.resolutions[stage]} batch {FLAGS.qs_batch}",
              flush=True)
        results["cases"] += run_group("quickstart", qs, stage, FLAGS.qs_batch, qs_settings,
                                      FLAGS.qs_warmup_steps, FLAGS.qs_rounds,
                                      FLAGS.qs_steps_per_round, FLAGS.seed)
    if FLAGS.hires:
        hr = networks.hires_config(10)
        stage = hr.num_stages - 1
        print(f"hires stage {stage} {hr.resolutions[stage]} batch {FLAGS.hires_batch}",
              flush=True)
        settings = [(_bool(x), float(m)) for x in FLAGS.hires_xla
                    for m in FLAGS.hires_mode_seeking]
        results["cases"] += run_group("hires", hr, stage, FLAGS.hires_batch, settings,
                                      FLAGS.hires_warmup_steps, FLAGS.hires_steps, 1,
                                      FLAGS.seed)

    # Ratios against the no-XLA, no-mode-seeking case of the same size and stage.
    ok = [c for c in results["cases"] if "error" not in c]
    base = {(c["size"], c["stage"]): c for c in ok
            if not c["xla"] and c["mode_seeking_weight"] == 0 and c["loss"] == "wgan_gp"
            and c["penalty_fraction"] == 1.0 and c.get("activation") != "maximum"}
    rows = []
    for c in results["cases"]:
        if "error" in c:
            rows.append([c["size"], c["stage"], "-", c["batch"], "on" if c["xla"] else "off",
                         f"{c['mode_seeking_weight']:g}", _loss_label(c), "FAILED", "-", "-", "-",
                         "-"])
            continue
        b = base.get((c["size"], c["stage"]))
        c["speed_vs_base"] = c["images_per_s"] / b["images_per_s"] if b else None
        rows.append([c["size"], c["stage"], "x".join(map(str, c["resolution"])), c["batch"],
                     "on" if c["xla"] else "off", f"{c['mode_seeking_weight']:g}",
                     _loss_label(c), f"{c['images_per_s']:.2f}", f"{c['median_step_s']:.3f}",
                     f"{c['min_step_s']:.3f}",
                     f"{c['warmup_s']:.1f}",
                     "-" if c["speed_vs_base"] is None else f"{c['speed_vs_base']:.2f}x"])
    print("\n## Training throughput\n")
    print(f"Device: {info['device_kind']} ({info['device']}); CPU {info['cpu_model']}, "
          f"{info['logical_cpus']} logical CPUs. Speed vs = images/s relative to XLA off, "
          f"mode seeking 0, WGAN-GP on the whole batch at the same size and stage.\n")
    print(bc.markdown_table(["size", "stage", "res", "batch", "XLA", "MS weight", "loss",
                             "images/s",
                             "median step s", "min step s", "warm-up s", "speed vs"],
                            rows))
    bc.finish(info)
    bc.write_json(FLAGS.output_json, results)


if __name__ == "__main__":
    app.run(main)
