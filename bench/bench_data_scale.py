"""The input pipeline at GTZAN's size: decode throughput, feature throughput, peak RSS.

A GTZAN-size corpus (default 1,000 tracks of 30 s, mono 16-bit at 22.05 kHz, a folder per
synthetic genre (6); `--tracks` shrinks it) is synthesised once into `--corpus_dir`
(outside the repo; reused by later runs with the same size and format). Each track is a
different random concatenation of 3 s clips of the project's synthetic genres (a shared
pool), with its own gains and a little noise, so no two files are equal and FLAC cannot
collapse them.

Then, in one run:

  decode     the first epoch's work: every track decoded to mono float32 at 16 kHz (the
             hi-res sample rate), once with a plain `librosa.load(path, sr=16000)` loop (the
             baseline) and once with the project's parallel decoder (`FileSource`'s tf.data
             map, num_parallel_calls=AUTOTUNE, tensorflow-io and soundfile backends), both
             in order and unordered (`deterministic=False`, what training uses). Header
             probing (`build_source`) is timed apart. Files are in the page cache for both
             (just written, or read once before timing).
  features   steady-state clips/s of hi-res features (128x1024 mel-IF, 64000 samples,
             overlap 0.75, GANSynth's prespecified normaliser) for `--feature_tracks`
             tracks cached in memory: on the host (the tf.data map of
             `make_train_dataset`) and "on the device" (the pipeline yields waves and the
             same `Representation.waves_to_features` runs in a tf.function per batch, as
             `--features_on_device` does; the device here is whatever TF uses: the CPU on
             a machine without GPU).
  memory     peak RSS (ru_maxrss of a fresh subprocess, TF import included) of one full
             training epoch plus `--rss_extra_batches` batches of the waves pipeline
             (decode, cut, shuffle, batch: the features are left out, they cost the same in
             every mode) with the decoded audio cached in memory, on disk and not at all.

    nice -n 19 python bench/bench_data_scale.py --tracks=200 \
        --output_json=bench/results/data_scale.json
    python bench/bench_data_scale.py              # full GTZAN size (1000 tracks, ~1.3 GB)
"""

import functools
import os
import resource
import shutil
import tempfile
import time

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("tracks", 1000, "Tracks in the corpus (GTZAN: 1000).")
flags.DEFINE_float("track_seconds", 30.0, "Seconds per track (GTZAN: 30).")
flags.DEFINE_integer("corpus_rate", 22050, "Sample rate of the written files (GTZAN: 22050).")
flags.DEFINE_enum("format", "wav", ["wav", "flac"], "File format (16-bit PCM).")
flags.DEFINE_string("corpus_dir", os.path.join(tempfile.gettempdir(), "gansynth_scale_corpus"),
                    "Where the corpus is written (once) and read from.")
flags.DEFINE_integer("decode_rounds", 2, "Interleaved rounds of the decode cases (median).")
flags.DEFINE_list("backends", ["tfio", "soundfile"], "Project decoders to time.")
flags.DEFINE_integer("feature_tracks", 40, "Tracks (cached in memory) for the feature "
                     "throughput cases.")
flags.DEFINE_integer("feature_batches", 20, "Timed batches per feature case (after 3 "
                     "warm-up batches).")
flags.DEFINE_integer("batch_size", 8, "Batch size of the feature and memory cases.")
flags.DEFINE_list("rss_modes", ["memory", "disk", "none"], "Cache modes whose peak RSS is "
                  "measured (each in a fresh subprocess).")
flags.DEFINE_integer("rss_extra_batches", 50, "Batches read after one full epoch in the "
                     "memory cases (a second epoch reads the cache).")
flags.DEFINE_list("sections", ["decode", "features", "memory"], "What to measure.")
flags.DEFINE_string("case", None, "Internal: run one memory case (memory/disk/none).")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

SR, LENGTH, SPEC, OVERLAP = 16000, 64000, (128, 1024), 0.75
POOL_SECONDS = 3.0
POOL_PER_GENRE = 4


# ----------------------------------------------------------------------------- corpus


def _corpus_root():
    return os.path.join(FLAGS.corpus_dir, f"{FLAGS.tracks}x{FLAGS.track_seconds:g}s_"
                        f"{FLAGS.corpus_rate}_{FLAGS.format}")


def write_corpus():
    """Writes the corpus unless a complete one is there; returns (root, seconds spent)."""
    import soundfile  # pylint: disable=import-outside-toplevel

    from gansynth_tf import synthetic  # pylint: disable=import-outside-toplevel

    root = _corpus_root()
    done = os.path.join(root, "COMPLETE")
    if os.path.exists(done):
        return root, 0.0
    t0 = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    rate, genres = FLAGS.corpus_rate, synthetic.GENRES
    clip = int(POOL_SECONDS * rate)
    pool = {g: [synthetic.synthesize_clip(g, i, 0, rate, clip) for i in range(POOL_PER_GENRE)]
            for g in genres}
    n = int(FLAGS.track_seconds * rate)
    pieces = -(-n // clip)
    for t in range(FLAGS.tracks):
        genre = genres[t % len(genres)]
        rng = np.random.default_rng([7, t])
        parts = [pool[genre][k] * rng.uniform(0.4, 1.0)
                 for k in rng.integers(0, POOL_PER_GENRE, pieces)]
        x = np.concatenate(parts)[:n]
        x = np.roll(x, int(rng.integers(0, clip))) + 0.003 * rng.standard_normal(n)
        x = (0.9 * x / max(1e-6, float(np.max(np.abs(x))))).astype(np.float32)
        folder = os.path.join(root, genre)
        os.makedirs(folder, exist_ok=True)
        soundfile.write(os.path.join(folder, f"{genre}.{t:05d}.{FLAGS.format}"), x, rate,
                        subtype="PCM_16")
    with open(done, "w") as f:
        f.write(f"{FLAGS.tracks} tracks\n")
    return root, time.perf_counter() - t0


def _du_mb(root):
    total = 0
    for d, _, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    return total / 2**20


def _read_all_bytes(paths):
    """Reads every file once (puts the corpus in the page cache for both sides)."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


# ----------------------------------------------------------------------------- decode


def _config(root, backend="tfio", cache=False, cache_dir=None, **kw):
    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel

    return datasets.DataConfig(dataset="folder", data_dir=root, audio_backend=backend,
                               sample_rate=SR, audio_length=LENGTH, holdout_fraction=0.0,
                               cache=cache, cache_dir=cache_dir, cache_max_mb=1 << 20, **kw)


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn):
    """(result, wall seconds, CPU seconds of this process) of fn()."""
    c0, t0 = _cpu_s(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, _cpu_s() - c0


def decode_section(root):
    import librosa  # pylint: disable=import-outside-toplevel

    from gansynth_tf import audio_io, datasets  # pylint: disable=import-outside-toplevel

    entries, _ = datasets.folder_entries(root)
    paths = [p for p, _ in entries]
    _read_all_bytes(paths)
    audio_s = len(paths) * FLAGS.track_seconds
    out = {"tracks": len(paths), "audio_seconds": audio_s, "rounds": FLAGS.decode_rounds}

    def librosa_loop():
        samples = 0
        for p in paths:
            y, _ = librosa.load(p, sr=SR, mono=True)
            samples += len(y)
        return len(paths), samples

    def project(src, ordered):
        ds = src._decode(src._files(), ordered)  # pylint: disable=protected-access
        n = samples = 0
        for wave, _ in ds.as_numpy_iterator():
            n += 1
            samples += len(wave)
        return n, samples

    librosa.load(paths[0], sr=SR, mono=True, duration=1.0)  # lazy imports, soxr set-up
    sources = {}
    for backend in FLAGS.backends:
        if backend == "tfio" and not audio_io.tfio_available():
            continue
        src, probe_s, _ = _timed(lambda b=backend: datasets.build_source(_config(root, b)))
        sources[backend] = (src, probe_s)
    cases = [("librosa", None, None)] + [(f"project_{b}_{'ordered' if o else 'unordered'}", b, o)
                                         for b in sources for o in (True, False)]
    runs = {key: [] for key, _, _ in cases}
    # Interleaved rounds: a changing background load hits every case alike.
    for r in range(FLAGS.decode_rounds):
        for key, backend, ordered in cases:
            fn = librosa_loop if backend is None else functools.partial(
                project, sources[backend][0], ordered)
            (n, samples), wall, cpu = _timed(fn)
            runs[key].append({"seconds": wall, "cpu_seconds": cpu, "tracks": n,
                              "samples": samples})
            print(f"  round {r}: {key}: {n} tracks in {wall:.1f} s ({cpu:.1f} CPU s) = "
                  f"{n / wall:.1f} tracks/s", flush=True)
    base = float(np.median([x["seconds"] for x in runs["librosa"]]))
    base_cpu = float(np.median([x["cpu_seconds"] for x in runs["librosa"]]))
    for key, backend, _ in cases:
        secs = float(np.median([x["seconds"] for x in runs[key]]))
        cpu = float(np.median([x["cpu_seconds"] for x in runs[key]]))
        n = runs[key][0]["tracks"]
        entry = {"seconds": secs, "cpu_seconds": cpu, "tracks": n,
                 "samples": runs[key][0]["samples"], "tracks_per_s": n / secs,
                 "x_real_time": audio_s / secs, "vs_librosa": base / secs,
                 "cpu_vs_librosa": base_cpu / cpu, "runs": runs[key]}
        if backend is not None:
            entry["probe_seconds"] = sources[backend][1]
            entry["vs_librosa_with_probe"] = base / (secs + sources[backend][1])
        out[key] = entry
        print(f"  {key}: median {secs:.1f} s = {n / secs:.1f} tracks/s, {base / secs:.2f}x "
              f"librosa (CPU time {base_cpu / cpu:.2f}x)", flush=True)
    return out


# ----------------------------------------------------------------------------- features


def _representation():
    from gansynth_tf.representation import Representation  # pylint: disable=import-outside-toplevel

    return Representation(sample_rate=SR, audio_length=LENGTH, spec_shape=SPEC,
                          overlap=OVERLAP, mel=True)


def _subset_root(root, k):
    """A folder of symlinks to the first k tracks (round-robin over genres)."""
    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel

    entries, _ = datasets.folder_entries(root)
    by_genre = {}
    for p, g in entries:
        by_genre.setdefault(g, []).append(p)
    sub = tempfile.mkdtemp(prefix="scale_subset_")
    i = 0
    while i < k:
        for g, ps in by_genre.items():
            if i // len(by_genre) < len(ps) and i < k:
                os.makedirs(os.path.join(sub, g), exist_ok=True)
                p = ps[i // len(by_genre)]
                os.symlink(p, os.path.join(sub, g, os.path.basename(p)))
            i += 1
    return sub


def features_section(root):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel

    sub = _subset_root(root, FLAGS.feature_tracks)
    rep = _representation()
    src = datasets.build_source(_config(sub, cache=True))
    b = FLAGS.batch_size
    out = {"tracks": len(src.paths), "batch": b, "spec_shape": list(SPEC),
           "audio_length": LENGTH, "overlap": OVERLAP}
    # Fill the in-memory cache once, outside the timings.
    for _ in src.decoded_dataset().as_numpy_iterator():
        pass

    def run(it, step):
        for _ in range(3):
            step(next(it))
        t0 = time.perf_counter()
        for _ in range(FLAGS.feature_batches):
            step(next(it))
        return FLAGS.feature_batches * b / (time.perf_counter() - t0)

    host = datasets.make_train_dataset(src, b, rep.waves_to_features)
    out["host_clips_per_s"] = run(iter(host), lambda x: x[0].numpy())
    on_device = tf.function(functools.partial(datasets.batch_features, rep.waves_to_features))
    waves = datasets.make_train_dataset(src, b, None)
    out["device_clips_per_s"] = run(iter(waves), lambda x: on_device(x[0]).numpy())
    out["waves_only_clips_per_s"] = run(iter(datasets.make_train_dataset(src, b, None)),
                                        lambda x: x[0].numpy())
    out["device"] = bc.tf_device_info(tf)["device_kind"]
    print(f"  features: host {out['host_clips_per_s']:.1f} clips/s, on {out['device']} in a "
          f"tf.function {out['device_clips_per_s']:.1f} clips/s (waves alone "
          f"{out['waves_only_clips_per_s']:.1f})", flush=True)
    shutil.rmtree(sub, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- memory


def memory_case(root, mode):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  # noqa: F401

    from gansynth_tf import datasets  # pylint: disable=import-outside-toplevel

    floor = bc.peak_rss_mb()
    cache_dir = tempfile.mkdtemp(prefix="scale_cache_") if mode == "disk" else None
    src = datasets.build_source(_config(root, cache=mode != "none", cache_dir=cache_dir))
    b = FLAGS.batch_size
    batches = -(-src.num_clips // b) + FLAGS.rss_extra_batches
    it = iter(datasets.make_train_dataset(src, b, None))
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    secs = time.perf_counter() - t0
    out = {"mode": mode, "cache_mode": src.cache_mode, "import_rss_mb": floor,
           "decoded_mb": src.decoded_bytes / 2**20, "tracks": len(src.paths),
           "clips_per_epoch": src.num_clips, "batches": batches, "seconds": secs,
           "clips_per_s": batches * b / secs, "peak_rss_mb": bc.peak_rss_mb()}
    if cache_dir:
        out["disk_cache_mb"] = _du_mb(cache_dir)
        shutil.rmtree(cache_dir, ignore_errors=True)
    bc.print_result(out)


def memory_section():
    rows = []
    for mode in FLAGS.rss_modes:
        args = [f"--case={mode}", f"--tracks={FLAGS.tracks}",
                f"--track_seconds={FLAGS.track_seconds}", f"--corpus_rate={FLAGS.corpus_rate}",
                f"--format={FLAGS.format}",
                f"--corpus_dir={FLAGS.corpus_dir}", f"--batch_size={FLAGS.batch_size}",
                f"--rss_extra_batches={FLAGS.rss_extra_batches}"]
        row = bc.run_case(__file__, args, f"memory case {mode}")
        rows.append(row)
        print(f"  cache {mode:6s}: peak RSS {row['peak_rss_mb']:6.0f} MB (import "
              f"{row['import_rss_mb']:.0f}, decoded audio {row['decoded_mb']:.0f} MB), "
              f"{row['batches']} batches at {row['clips_per_s']:.1f} clips/s", flush=True)
    return rows


# ----------------------------------------------------------------------------- main


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    root, synth_s = write_corpus()
    if FLAGS.case:
        memory_case(root, FLAGS.case)
        return
    info = bc.machine_info()
    results = {"machine": info, "corpus": {
        "root": root, "tracks": FLAGS.tracks, "track_seconds": FLAGS.track_seconds,
        "rate": FLAGS.corpus_rate, "format": FLAGS.format, "mb": _du_mb(root),
        "written_in_s": synth_s}}
    print(f"corpus: {root} ({FLAGS.tracks} tracks, {results['corpus']['mb']:.0f} MB"
          f"{f', written in {synth_s:.0f} s' if synth_s else ', reused'}); "
          f"{info['logical_cpus']} CPUs, {info['cpu_model']}", flush=True)
    if "decode" in FLAGS.sections:
        results["decode"] = decode_section(root)
    if "features" in FLAGS.sections:
        results["features"] = features_section(root)
    if "memory" in FLAGS.sections:
        results["memory"] = memory_section()
    bc.finish(info)
    bc.write_json(FLAGS.output_json, results)


if __name__ == "__main__":
    app.run(main)
