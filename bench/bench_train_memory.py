"""Peak RSS of the training step alone: flags/music_cpu.cfg's network on a random batch.

Each case runs in a fresh subprocess (this script with --case=B:STAGES). It builds the
recipe's GAN (6 stages 4x8 -> 128x256, --channels per stage, projection critic,
the penalty on a quarter of each batch, mode seeking), then for each stage in STAGES fits
3 steps at alpha 0.5 and 3 at alpha 1 on one repeated random batch (no input pipeline),
and reports VmRSS / VmHWM after each. So it separates what the step costs from what the
data costs (bench_data_memory.py), and shows whether the traces of earlier stages stay.

    python bench/bench_train_memory.py --output_json=bench/results/train_memory.json
    python bench/bench_train_memory.py --cases=16:0,1,2,3,4,5 --cases=16:5
    python bench/bench_train_memory.py --cases=16:5 --cases=16:5:mixed_bfloat16

A case is BATCH:STAGES[:POLICY]; POLICY is a Keras dtype policy (default float32). Each
phase also records its seconds, so the last stage's images/s sits beside its memory.
"""

import time

from absl import app, flags

import bench_common as bc

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("cases", ["4:5", "16:5", "32:5", "16:0,1,2,3,4,5"],
                          "BATCH:STAGES[:POLICY] cases (stages 0-based, in the order run; "
                          "POLICY a Keras dtype policy, default float32).")
flags.DEFINE_string("case", None, "Internal: run this one case in this process.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")
RESOLUTIONS, RECIPE_CHANNELS = bc.music_recipe_network()
flags.DEFINE_list("channels", [str(c) for c in RECIPE_CHANNELS], "Channels per stage "
                  "(flags/music_cpu.cfg's by default).")


def run_one(case):
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import gan as gan_lib  # pylint: disable=import-outside-toplevel
    from gansynth_tf import networks  # pylint: disable=import-outside-toplevel
    from gansynth_tf.losses import LossConfig  # pylint: disable=import-outside-toplevel

    batch, stages, *policy = case.split(":")
    batch, stages = int(batch), [int(s) for s in stages.split(",")]
    policy = policy[0] if policy else "float32"
    keras.mixed_precision.set_global_policy(policy)
    out = {"case": case, "batch": batch, "policy": policy,
           "import_rss_mb": bc.proc_status_mb("VmRSS"), "phases": []}
    channels = tuple(int(c) for c in FLAGS.channels)
    out["channels"] = list(channels)
    config = networks.NetworkConfig(RESOLUTIONS, channels, channels, 5, 128,
                                    conditioning="projection")
    gan = gan_lib.build_gan(config, seed=0)
    gan.compile(loss=LossConfig(penalty_fraction=0.25, mode_seeking_weight=1.0))
    out["built_rss_mb"] = bc.proc_status_mb("VmRSS")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *RESOLUTIONS[-1], 2)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[np.arange(batch) % 5]
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    for stage in stages:
        for alpha in (0.5, 1.0):
            gan.set_stage(stage, alpha)
            t0 = time.time()
            gan.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
            t1 = time.time()
            # Three more steps, traced already: their time is the step's, not the trace's.
            gan.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
            seconds = time.time() - t1
            out["phases"].append({"stage": stage, "alpha": alpha, "seconds": t1 - t0,
                                  "images_per_second": 3 * batch / seconds,
                                  "rss_mb": bc.proc_status_mb("VmRSS"),
                                  "hwm_mb": bc.peak_rss_mb()})
    out["peak_rss_mb"] = bc.peak_rss_mb()
    bc.print_result(out)


def main(argv):
    del argv
    if FLAGS.case:
        bc.quiet_tf()
        run_one(FLAGS.case)
        return
    info, rows = bc.machine_info(), []
    results = []
    for case in FLAGS.cases:
        result = bc.run_case(__file__, [f"--case={case}",
                                        f"--channels={','.join(FLAGS.channels)}"],
                             f"case {case}")
        results.append(result)
        last = result["phases"][-1]
        rows.append([case, f"{result['import_rss_mb']:.0f}", f"{result['built_rss_mb']:.0f}",
                     f"{last['rss_mb']:.0f}", f"{result['peak_rss_mb']:.0f}",
                     f"{last['images_per_second']:.1f}"])
        print(f"  {case}: peak {result['peak_rss_mb']:.0f} MB", flush=True)
    print(bc.markdown_table(["batch:stages", "import MB", "built MB", "after last MB",
                             "peak MB", "last images/s"], rows))
    if FLAGS.output_json:
        info["cases"] = results
        bc.write_json(FLAGS.output_json, bc.finish(info))


if __name__ == "__main__":
    app.run(main)
