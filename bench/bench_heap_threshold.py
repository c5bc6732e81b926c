r"""Training speed and peak RSS of the music recipe's last stage under glibc mmap thresholds.

gansynth_tf/heap.py fixes glibc's mmap threshold for training: requests at least that large
are mmapped and unmapped when freed, so the heap does not keep them resident. Too low a
threshold maps and unmaps every activation of every step, and each new mapping page-faults
in again. Each case here runs in a fresh subprocess (this script with --case=THRESHOLD):
it sets the threshold (bytes, or "dynamic" for glibc's own adjusting default), builds
flags/music_cpu.cfg's GAN at its last stage (128x256, the flagfile's channels, projection
critic, the penalty on a quarter of each batch, mode seeking) and fits --steps steps after 3 untimed
ones. With --data_dir the batches come from the recipe's live input pipeline (16 kHz,
2.048 s clips, mel IF, balanced, held-out tracks left out, nothing cached); without it, one
random batch is repeated. Cases run one after another, --rounds times in turn, so each
ratio against the first case is measured under the same load.

    python bench/bench_heap_threshold.py --data_dir=runs/real_corpus/genres \
        --output_json=bench/results/heap_threshold.json
"""

import statistics
import time

from absl import app, flags

import bench_common as bc

FLAGS = flags.FLAGS
flags.DEFINE_list("thresholds", ["1048576", "33554432", "dynamic"],
                  "mmap thresholds in bytes, or 'dynamic' (glibc's default); the first is the "
                  "baseline of the ratios.")
flags.DEFINE_string("case", None, "Internal: run this one threshold in this process.")
flags.DEFINE_string("data_dir", None, "A folder per genre of real tracks (else random data).")
flags.DEFINE_integer("batch", 8, "Batch size (the recipe's).")
flags.DEFINE_integer("steps", 20, "Timed steps per case.")
flags.DEFINE_integer("rounds", 1, "Times every case is run, in turn.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

RESOLUTIONS, CHANNELS = bc.music_recipe_network()


def _minor_faults():
    import resource  # pylint: disable=import-outside-toplevel

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_one(threshold):
    from gansynth_tf import heap  # pylint: disable=import-outside-toplevel

    applied = threshold == "dynamic" or heap.fix_mmap_threshold(int(threshold))
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import budget, datasets, networks  # pylint: disable=import-outside-toplevel
    from gansynth_tf import gan as gan_lib  # pylint: disable=import-outside-toplevel
    from gansynth_tf.losses import LossConfig  # pylint: disable=import-outside-toplevel
    from gansynth_tf.representation import Representation  # pylint: disable=import-outside-toplevel

    batch = FLAGS.batch
    if FLAGS.data_dir:
        rep = Representation(sample_rate=16000, audio_length=32768, spec_shape=(128, 256),
                             overlap=0.5, mel=True)
        cfg = datasets.DataConfig(dataset="folder", data_dir=FLAGS.data_dir, sample_rate=16000,
                                  audio_length=32768, cache=False, holdout_fraction=0.12,
                                  balanced=True, shuffle_buffer=1024)
        source = datasets.build_source(cfg, split="train")
        num_genres = len(source.genres)
        # Unnormalised features: the step's cost does not depend on their scale.
        data = datasets.make_train_dataset(source, batch, rep.waves_to_unnormalized)
    else:
        num_genres = 5
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch, *RESOLUTIONS[-1], 2)).astype(np.float32)
        y = np.eye(num_genres, dtype=np.float32)[np.arange(batch) % num_genres]
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
    config = networks.NetworkConfig(RESOLUTIONS, CHANNELS, CHANNELS, num_genres, 128,
                                    conditioning="projection")
    gan = gan_lib.build_gan(config, seed=0)
    gan.compile(loss=LossConfig(penalty_fraction=0.25, mode_seeking_weight=1.0))
    gan.set_stage(len(RESOLUTIONS) - 1, 1.0)
    gan.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    timer = budget.StepTimer()
    faults0, t0 = _minor_faults(), time.time()
    gan.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, callbacks=[timer])
    seconds = time.time() - t0
    step = statistics.median(timer.seconds)
    bc.print_result({"threshold": threshold, "applied": bool(applied),
                     "median_step_s": step, "images_per_second": batch / step,
                     "wall_images_per_second": FLAGS.steps * batch / seconds,
                     "minor_faults_per_step": (_minor_faults() - faults0) / FLAGS.steps,
                     "peak_rss_mb": bc.peak_rss_mb()})


def main(argv):
    del argv
    if FLAGS.case:
        bc.quiet_tf()
        run_one(FLAGS.case)
        return
    info = bc.machine_info()
    args = [f"--batch={FLAGS.batch}", f"--steps={FLAGS.steps}"]
    if FLAGS.data_dir:
        args.append(f"--data_dir={FLAGS.data_dir}")
    runs = {t: [] for t in FLAGS.thresholds}
    for _ in range(FLAGS.rounds):
        for threshold in FLAGS.thresholds:
            result = bc.run_case(__file__, [f"--case={threshold}", *args], f"case {threshold}")
            runs[threshold].append(result)
            print(f"  {threshold}: {result['images_per_second']:.2f} images/s, "
                  f"peak {result['peak_rss_mb']:.0f} MB", flush=True)
    base = statistics.median(r["images_per_second"] for r in runs[FLAGS.thresholds[0]])
    rows, cases = [], []
    for threshold, results in runs.items():
        speed = statistics.median(r["images_per_second"] for r in results)
        peak = max(r["peak_rss_mb"] for r in results)
        faults = statistics.median(r["minor_faults_per_step"] for r in results)
        cases.append({"threshold": threshold, "images_per_second": speed,
                      "ratio_to_baseline": speed / base, "peak_rss_mb": peak,
                      "minor_faults_per_step": faults, "runs": results})
        rows.append([threshold, f"{speed:.2f}", f"{speed / base:.2f}x", f"{faults:,.0f}",
                     f"{peak:.0f}"])
    print(bc.markdown_table(["mmap threshold", "images/s", f"vs {FLAGS.thresholds[0]}",
                             "minor faults/step", "peak RSS MB"], rows))
    if FLAGS.output_json:
        info.update(batch=FLAGS.batch, steps=FLAGS.steps, rounds=FLAGS.rounds,
                    data_dir=FLAGS.data_dir, cases=cases)
        bc.write_json(FLAGS.output_json, bc.finish(info))


if __name__ == "__main__":
    app.run(main)
