"""Peak resident memory (RSS) of decoding and of the training input pipeline on real tracks.

Every case runs in a fresh subprocess (this script with --case=NAME), which reports
`ru_maxrss` after importing TensorFlow + gansynth_tf and at the end, so no peak is inherited.

Cases:
  decode_long_tfio_whole  a 20-minute 48 kHz stereo FLAC decoded to 16 kHz mono by
                     tensorflow-io, whole (what every decodable file got before session 8)
  decode_long_streamed    the same file as it is decoded now: streamed by soundfile in blocks
  resample           one 5-minute 48 kHz track resampled to 16 kHz by resample_tf (libsoxr in
                     the graph; until session 8 a polyphase matmul of our own, whose figures
                     are kept in bench/README.md)
  pipeline_memory    --data_dir through the training pipeline of flags/music_cpu.cfg
                     (16 kHz, 2.048 s clips, 128x256 mel IF, batch 16), decoded audio cached
                     in memory: --batches batches after the cache is full
  pipeline_disk      the same with the decoded audio cached on disk (--cache_dir)
  pipeline_none      the same, nothing cached (every epoch decodes again)
  corpus_soundfile   every training track of --data_dir decoded once to 16 kHz mono, in
                     parallel as the training pipeline does, by soundfile (the default)
  corpus_tfio        the same by tensorflow-io (--audio_backend=tfio)

The disk and no-cache pipelines are what a corpus larger than memory uses: their peak should
not grow with the corpus (the shuffle buffer of decoded tracks is bounded in bytes,
datasets.config.TRACK_SHUFFLE_MB), while the memory cache grows by ~230 MB per hour of audio.

    python bench/bench_data_memory.py --data_dir=runs/real_corpus/genres \
        --output_json=bench/results/data_memory.json
"""

import os
import tempfile
import time

from absl import app, flags  # noqa: E402

import bench_common as bc  # noqa: E402

FLAGS = flags.FLAGS
CASES = ("resample", "decode_long_tfio_whole", "decode_long_streamed", "pipeline_memory",
         "pipeline_disk", "pipeline_none", "corpus_soundfile", "corpus_tfio")
flags.DEFINE_list("cases", list(CASES), f"Cases, from {', '.join(CASES)}.")
flags.DEFINE_string("case", None, "Internal: run this one case in this process.")
flags.DEFINE_string("data_dir", None, "A folder per genre of real tracks (pipeline cases).")
flags.DEFINE_integer("batches", 200, "Batches read after the first (pipeline cases).")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")


def _pipeline(cache):
    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel
    from gansynth_tf.representation import Representation  # pylint: disable=import-outside-toplevel

    rep = Representation(sample_rate=16000, audio_length=32768, spec_shape=(128, 256),
                         overlap=0.5, mel=True)
    tmp = tempfile.mkdtemp(prefix="bench_cache_")
    cfg = datasets.DataConfig(dataset="folder", data_dir=FLAGS.data_dir, sample_rate=16000,
                              audio_length=32768, cache=cache != "none",
                              cache_dir=tmp if cache == "disk" else None, cache_max_mb=4096)
    source = datasets.build_source(cfg, split="train")
    ds = datasets.make_train_dataset(source, 16, rep.waves_to_unnormalized)
    it = iter(ds)
    t0 = time.time()
    next(it)
    first = time.time() - t0
    t0 = time.time()
    for _ in range(FLAGS.batches):
        next(it)
    steady = time.time() - t0
    return {"decoded_mb": source.decoded_bytes / 2**20, "tracks": len(source.paths),
            "first_batch_s": first, "clips_per_s": 16 * FLAGS.batches / steady,
            "cache_mode": {"memory": "in memory", "disk": "on disk", "none": "none"}[cache]}


def _decode_corpus(backend):
    """Decodes every training track once (the first epoch of an uncached pipeline)."""
    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel

    cfg = datasets.DataConfig(dataset="folder", data_dir=FLAGS.data_dir, sample_rate=16000,
                              audio_length=32768, cache=False, audio_backend=backend)
    source = datasets.build_source(cfg, split="train")
    t0, tracks, samples = time.time(), 0, 0
    for wave, _ in source.decoded_dataset():
        tracks += 1
        samples += int(wave.shape[0])
    return {"seconds": time.time() - t0, "tracks": tracks, "decoded_mb": samples * 4 / 2**20,
            "backend": source.backend}


LONG_TRACK = os.path.join(tempfile.gettempdir(), "gansynth_bench_long_20min_48k_stereo.flac")


def _long_track():
    """A 20-minute 48 kHz stereo 16-bit FLAC (written once, in its own process)."""
    if not os.path.exists(LONG_TRACK):
        import numpy as np  # pylint: disable=import-outside-toplevel
        import soundfile  # pylint: disable=import-outside-toplevel

        rng = np.random.default_rng(0)
        with soundfile.SoundFile(LONG_TRACK + ".part", "w", 48000, 2, "PCM_16",
                                 format="FLAC") as f:
            for _ in range(20):  # a minute at a time
                t = np.arange(48000 * 60) / 48000
                tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
                f.write(np.stack([tone, 0.5 * tone], 1) + 0.01 * rng.standard_normal(
                    (len(t), 2)))
        os.replace(LONG_TRACK + ".part", LONG_TRACK)
    return LONG_TRACK


def _decode_long(tf, audio_io, whole):
    """Decode the long track to 16 kHz mono: tensorflow-io whole, or soundfile streamed."""
    path = LONG_TRACK
    if whole:  # what tfio did for every file it can decode, before long files streamed
        audio_io.STREAM_ABOVE_MB = float("inf")
    info = audio_io.probe_audio(path)
    kind = audio_io.decoder_kind(info, "tfio", 16000)
    t0 = time.time()
    wave = audio_io.read_wave(path, 16000, backend="tfio")
    return {"seconds": time.time() - t0, "decoder": "soundfile streamed"
            if kind == audio_io.KIND_SOUNDFILE else "tensorflow-io whole",
            "track_minutes": info.seconds / 60, "output_mb": wave.nbytes / 2**20}


def run_one(case):
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import audio_io  # pylint: disable=import-outside-toplevel
    floor = bc.peak_rss_mb()
    out = {"case": case, "import_rss_mb": floor}
    if case.startswith("resample"):
        wave = tf.constant(np.random.default_rng(0).standard_normal(48000 * 300)
                           .astype(np.float32))
        fn = tf.function(lambda w: audio_io.resample_tf(w, 48000, 16000))
        t0 = time.time()
        y = fn(wave).numpy()
        out.update({"seconds": time.time() - t0, "output_samples": int(len(y)),
                    "input_mb": wave.shape[0] * 4 / 2**20})
    elif case.startswith("decode_long"):
        out.update(_decode_long(tf, audio_io, whole=case.endswith("_whole")))
    elif case.startswith("corpus"):
        out.update(_decode_corpus(case.split("_", 1)[1]))
    else:
        out.update(_pipeline(case.split("_", 1)[1]))
    out["peak_rss_mb"] = bc.peak_rss_mb()
    bc.print_result(out)


def main(argv):
    del argv
    if FLAGS.case:
        bc.quiet_tf()
        run_one(FLAGS.case)
        return
    rows = []
    if any(case.startswith("decode_long") for case in FLAGS.cases):
        _long_track()
    for case in FLAGS.cases:
        if case.startswith(("pipeline", "corpus")) and not FLAGS.data_dir:
            raise SystemExit(f"--data_dir is needed for {case}")
        args = [f"--case={case}", f"--batches={FLAGS.batches}"] + (
            [f"--data_dir={FLAGS.data_dir}"] if FLAGS.data_dir else [])
        row = bc.run_case(__file__, args, f"case {case}")
        rows.append(row)
        print(f"{case:18s} peak RSS {row['peak_rss_mb']:7.0f} MB "
              f"(import {row['import_rss_mb']:.0f})"
              + (f", {row['clips_per_s']:.1f} clips/s, decoded {row['decoded_mb']:.0f} MB"
                 if "clips_per_s" in row else f", {row['seconds']:.2f} s"), flush=True)
    if FLAGS.output_json:
        bc.write_json(FLAGS.output_json, bc.finish({"machine": bc.machine_info(),
                                                    "batches": FLAGS.batches, "cases": rows}))


if __name__ == "__main__":
    app.run(main)
