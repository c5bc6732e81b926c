r"""Training images/s per stage of candidate real-music networks (flags/music_cpu.cfg).

Each candidate is a resolution schedule and channels per stage; every stage is timed with a
fresh GAN compiled as flags/music_cpu.cfg trains it (WGAN-GP on a quarter of the batch,
projection critic, mode seeking), fitting one random batch repeated by tf.data (no input
pipeline cost). The stage's fade-in alpha is 1. Used to design the recipe for its budget.

    python bench/bench_music_stages.py --candidates=music \
        --output_json=bench/results/music_stages.json
    python bench/bench_music_stages.py --policies=float32,mixed_bfloat16

--policies times each stage under each Keras dtype policy in turn, side by side, so their
ratio is measured under the same load.
"""

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import budget, networks  # noqa: E402
from gansynth_tf.gan import build_gan, make_optimizers  # noqa: E402

FLAGS = flags.FLAGS
CANDIDATES = {
    # name: (resolutions, channels)
    "music": (((4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256)),
              (128, 128, 96, 64, 32, 16)),
    "music_wide": (((4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256)),
                   (128, 128, 96, 64, 48, 24)),
    "music_last32": (((4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256)),
                     (128, 128, 96, 64, 32, 32)),
}
flags.DEFINE_list("candidates", ["music"], f"Schedules to time: {sorted(CANDIDATES)}.")
flags.DEFINE_list("stages", None, "Stages to time (default all).")
flags.DEFINE_integer("batch", 16, "Batch size.")
flags.DEFINE_list("policies", ["float32"], "Keras dtype policies to time each stage under.")
flags.DEFINE_integer("steps", 6, "Timed steps per stage (after 2 untimed).")
flags.DEFINE_integer("num_genres", 5, "Genres (one-hot width).")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")


def time_stage(name, stage, policy):
    keras.mixed_precision.set_global_policy(policy)
    resolutions, channels = CANDIDATES[name]
    config = networks.NetworkConfig(resolutions, channels, channels, FLAGS.num_genres,
                                    latent_dim=128, conditioning="projection")
    gan = build_gan(config, seed=0)
    d_opt, g_opt = make_optimizers()
    gan.compile(d_optimizer=d_opt, g_optimizer=g_opt, penalty_fraction=0.25,
                mode_seeking_weight=1.0)
    gan.set_stage(stage, 1.0)
    t, f = resolutions[-1]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (FLAGS.batch, t, f, 2)).astype(np.float32)
    y = np.eye(FLAGS.num_genres, dtype=np.float32)[rng.integers(0, FLAGS.num_genres, FLAGS.batch)]
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    gan.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    timer = budget.StepTimer()
    gan.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, callbacks=[timer])
    med = float(np.median(timer.seconds))
    return {"candidate": name, "stage": stage, "policy": policy,
            "resolution": "x".join(map(str, resolutions[stage])),
            "channels": channels[stage], "batch": FLAGS.batch,
            "median_step_s": med, "images_per_s": FLAGS.batch / med,
            "params_g": int(sum(np.prod(v.shape) for v in gan.generator.weights))}


def main(argv):
    del argv
    rows = []
    for name in FLAGS.candidates:
        n = len(CANDIDATES[name][0])
        for stage in [int(s) for s in (FLAGS.stages or range(n))]:
            for policy in FLAGS.policies:
                r = time_stage(name, stage, policy)
                rows.append(r)
                print(f"{name} stage {stage} {r['resolution']:>8} ch {r['channels']:4d} "
                      f"{policy}: {r['images_per_s']:7.1f} img/s "
                      f"({r['median_step_s']:.3f} s/step)", flush=True)
    if FLAGS.output_json:
        bc.write_json(FLAGS.output_json, bc.finish({"machine": bc.machine_info(), "stages": rows}))


if __name__ == "__main__":
    app.run(main)
