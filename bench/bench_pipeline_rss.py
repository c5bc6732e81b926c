"""Resident memory of the music recipe's training pipeline over time, with the training's
heap settings (gansynth_tf/heap.py: mmap threshold, a trim every 20 batches).

Each case runs in its own subprocess (this script with --case=NAME), all at once: only
their memory is compared, not their speed. A case reads --batches batches of
flags/music_cpu.cfg's pipeline (16 kHz, 2.048 s clips, 128x256 mel IF, batch 16, nothing
cached, balanced, held-out tracks left out) and reports its RSS every --every batches.

Cases:
  windows_copied  the pipeline as it is (each training window copied out of its track)
  windows_views   the same with plain tf.slice windows, which are views into their track
                  when the start is 64-byte aligned (the pipeline before session 10)

    python bench/bench_pipeline_rss.py --data_dir=runs/real_corpus/genres \
        --output_json=bench/results/pipeline_rss.json
"""

import json
import subprocess
import sys
import time

from absl import app, flags

import bench_common as bc  # noqa: E402

FLAGS = flags.FLAGS
CASES = ("windows_copied", "windows_views")
flags.DEFINE_list("cases", list(CASES), f"Cases, from {', '.join(CASES)}.")
flags.DEFINE_string("case", None, "Internal: run this one case in this process.")
flags.DEFINE_string("data_dir", None, "A folder per genre of real tracks.")
flags.DEFINE_integer("batches", 400, "Batches read.")
flags.DEFINE_integer("every", 50, "Report the RSS every this many batches.")
flags.DEFINE_integer("shuffle_buffer", 1024, "Clip shuffle buffer (the recipe's default).")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")


def _run_case(name):
    bc.quiet_tf()
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import datasets, heap, spectral  # pylint: disable=import-outside-toplevel
    from gansynth_tf.datasets import sources  # pylint: disable=import-outside-toplevel
    from gansynth_tf.representation import Representation  # pylint: disable=import-outside-toplevel

    heap.fix_mmap_threshold()
    if name == "windows_views":
        sources._window = lambda wave, length, start: tf.cond(  # noqa: E731
            tf.shape(wave)[0] <= length,
            lambda: spectral.crop_or_pad(wave[None, :, None], length, 1)[0, :, 0],
            lambda: tf.slice(wave, [start], [length]))
    rep = Representation(sample_rate=16000, audio_length=32768, spec_shape=(128, 256),
                         overlap=0.5, mel=True)
    cfg = datasets.DataConfig(dataset="folder", data_dir=FLAGS.data_dir, sample_rate=16000,
                              audio_length=32768, cache=False, holdout_fraction=0.12,
                              balanced=True, shuffle_buffer=FLAGS.shuffle_buffer)
    source = datasets.build_source(cfg, split="train")
    ds = datasets.make_train_dataset(source, 16, rep.waves_to_unnormalized)
    series, t0 = [], time.time()
    start_mib = bc.proc_status_mb("VmRSS")
    for i, _ in enumerate(ds.take(FLAGS.batches + 1)):
        if i % 20 == 0:
            heap.release_free_memory()
        if i % FLAGS.every == 0:
            series.append({"batch": i, "rss_mib": round(bc.proc_status_mb("VmRSS"), 1),
                           "seconds": round(time.time() - t0, 1)})
    return {"case": name, "rss_after_setup_mib": round(start_mib, 1), "series": series,
            "peak_rss_mib": round(bc.peak_rss_mb(), 1)}


def main(argv):
    del argv
    if FLAGS.case:
        bc.print_result(_run_case(FLAGS.case))
        return
    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir: a folder per genre of real tracks is required "
                             "(bench/real_corpus.sh builds one).")
    args = [f"--data_dir={FLAGS.data_dir}", f"--batches={FLAGS.batches}",
            f"--every={FLAGS.every}", f"--shuffle_buffer={FLAGS.shuffle_buffer}"]
    procs = {name: subprocess.Popen([sys.executable, __file__, f"--case={name}", *args],
                                    stdout=subprocess.PIPE, text=True)
             for name in FLAGS.cases}
    results = []
    for name, proc in procs.items():
        out, _ = proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith(bc.RESULT_PREFIX)]
        if proc.returncode or not lines:
            raise RuntimeError(f"case {name} failed (exit {proc.returncode})")
        results.append(json.loads(lines[-1][len(bc.RESULT_PREFIX):]))
    for r in results:
        trail = ", ".join(f"{p['batch']}: {p['rss_mib']:.0f}" for p in r["series"])
        print(f"{r['case']:15s} peak {r['peak_rss_mib']:.0f} MiB; RSS by batch: {trail}")
    payload = {"machine": bc.machine_info(), "batches": FLAGS.batches,
               "shuffle_buffer": FLAGS.shuffle_buffer, "cases": results}
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(payload, f, indent=2)


if __name__ == "__main__":
    app.run(main)
