"""Input-pipeline throughput: tf.data pipeline vs a plain librosa.load + STFT loop.

Both sides read the same files and produce the same number of 4 s clips with a
2048-point STFT (hop 512, GANSynth's 128x1024 setting) as log-magnitude + phase.
One extra pipeline row uses the spectral core's full GANSynth features (log-magnitude
+ instantaneous frequency), which cost more than the STFT itself. Without --data_dir a
GTZAN-like set is written first: 30 s stereo 22.05 kHz 16-bit WAVs of the synthetic
genres.

    python bench/bench_data.py --output_json=/tmp/bench_data.json
    python bench/bench_data.py --data_dir=/data/gtzan --max_files=60
"""

import json
import os
import platform
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from gansynth_tf import audio_io, datasets, spectral, synthetic

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Genre-folder dataset; default: write a synthetic one.")
flags.DEFINE_integer("num_files", 24, "Files to write when --data_dir is not given.")
flags.DEFINE_float("track_seconds", 30.0, "Length of each written track.")
flags.DEFINE_integer("max_files", 0, "Use at most this many files (0 = all).")
flags.DEFINE_integer("clips_per_file", 7, "4 s clips taken from each file, both sides.")
flags.DEFINE_integer("batch_size", 8, "Pipeline batch size.")
flags.DEFINE_integer("epochs", 12, "Pipeline epochs, read from one endless iterator as training "
                     "does (the first fills the cache; the median of the rest is reported).")
flags.DEFINE_integer("baseline_repeats", 3, "Runs of each librosa loop; the median is reported.")
flags.DEFINE_list("backends", ["tfio", "soundfile"], "Pipeline decoders to measure.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

SR, LENGTH, NFFT, HOP = 16000, 64000, 2048, 512


def _write_tracks(folder, num_files, seconds):
    rate = 22050
    for i in range(num_files):
        genre = synthetic.GENRES[i % len(synthetic.GENRES)]
        os.makedirs(os.path.join(folder, genre), exist_ok=True)
        mono = synthetic.synthesize_clip(genre, i, 0, rate, int(seconds * rate))
        stereo = np.stack([mono, 0.8 * np.roll(mono, 40)], 1)
        import soundfile  # pylint: disable=import-outside-toplevel
        soundfile.write(os.path.join(folder, genre, f"{genre}.{i:05d}.wav"), stereo, rate,
                        subtype="PCM_16")


def _librosa_loop(paths, clips_per_file):
    """The baseline: per file librosa.load (resample to 16 kHz, mono), cut, STFT."""
    import librosa  # pylint: disable=import-outside-toplevel
    librosa.load(paths[0], sr=SR, duration=1.0)      # warm up lazy imports / caches
    clips = 0
    t0 = time.perf_counter()
    for path in paths:
        y, _ = librosa.load(path, sr=SR, mono=True)
        offsets = np.round(np.linspace(0, max(len(y) - LENGTH, 0), clips_per_file)).astype(int)
        for o in offsets:
            clip = y[o:o + LENGTH]
            clip = np.pad(clip, (0, LENGTH - len(clip)))
            stft = librosa.stft(clip, n_fft=NFFT, hop_length=HOP)
            np.log(np.abs(stft) + 1e-6), np.angle(stft)
            clips += 1
    return clips, time.perf_counter() - t0


def _librosa_per_clip(paths, clips_per_file):
    """The usual Dataset.__getitem__: one librosa.load (offset + duration) per clip."""
    import librosa  # pylint: disable=import-outside-toplevel
    import soundfile  # pylint: disable=import-outside-toplevel
    clips = 0
    t0 = time.perf_counter()
    for path in paths:
        seconds = soundfile.info(path).duration
        span = max(seconds - LENGTH / SR, 0.0)
        for o in np.linspace(0.0, span, clips_per_file):
            clip, _ = librosa.load(path, sr=SR, mono=True, offset=float(o),
                                   duration=LENGTH / SR)
            clip = np.pad(clip[:LENGTH], (0, max(0, LENGTH - len(clip))))
            stft = librosa.stft(clip, n_fft=NFFT, hop_length=HOP)
            np.log(np.abs(stft) + 1e-6), np.angle(stft)
            clips += 1
    return clips, time.perf_counter() - t0


def _median_run(loop, paths, clips_per_file):
    runs = [loop(paths, clips_per_file) for _ in range(max(1, FLAGS.baseline_repeats))]
    return runs[0][0], float(np.median([seconds for _, seconds in runs]))


def _stft_features(waves):
    """Same work as the librosa loop: log |STFT| and phase, [b, frames, bins, 2]."""
    stft = tf.signal.stft(waves[:, :, 0], NFFT, HOP, window_fn=tf.signal.hann_window)
    # atan2(imag, real), not tf.math.angle: the latter is ~20x slower on CPU in TF 2.17.
    phase = tf.math.atan2(tf.math.imag(stft), tf.math.real(stft))
    return spectral.stack_channels([tf.math.log(spectral.magnitude(stft) + 1e-6), phase])


def _pipeline(data_dir, backend, cache, paths_limit, epochs, features):
    cfg = datasets.DataConfig(dataset="folder", data_dir=data_dir, audio_backend=backend,
                              sample_rate=SR, audio_length=LENGTH,
                              clips_per_file=FLAGS.clips_per_file, cache=cache,
                              cache_max_mb=8192)
    src = datasets.build_source(cfg)
    if paths_limit:
        keep = slice(0, paths_limit)
        src.paths, src.kinds = src.paths[keep], src.kinds[keep]
        src.rate_index, src.labels = src.rate_index[keep], src.labels[keep]
    if features == "stft":
        to_features = _stft_features
    else:
        helper = spectral.SpecgramsHelper(LENGTH, (128, NFFT // 2), overlap=0.75,
                                          sample_rate=SR)
        to_features = helper.waves_to_specgrams
    # As training consumes it: one endless iterator (repeat), never restarted per epoch.
    ds = datasets.make_train_dataset(src, FLAGS.batch_size, to_features, training=True,
                                     repeat=True)
    per_epoch = src.num_clips // FLAGS.batch_size
    iterator = iter(ds)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for _ in range(per_epoch):
            next(iterator)
        times.append(time.perf_counter() - t0)
    return per_epoch * FLAGS.batch_size, times


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    tmp = None
    data_dir = FLAGS.data_dir
    if not data_dir:
        tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
        data_dir = tmp.name
        _write_tracks(data_dir, FLAGS.num_files, FLAGS.track_seconds)
    entries, _ = datasets.folder_entries(data_dir)
    paths = [p for p, _ in entries if _usable(p)]
    if FLAGS.max_files:
        paths = paths[:FLAGS.max_files]
    results = {"files": len(paths), "clips_per_file": FLAGS.clips_per_file,
               "clip_samples": LENGTH, "sample_rate": SR, "nfft": NFFT, "hop": HOP,
               "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    # Median of a few runs on both sides: the machine may be shared and one run is short.
    clips, secs = _median_run(_librosa_loop, paths, FLAGS.clips_per_file)
    results["librosa"] = {"clips": clips, "seconds": secs, "clips_per_s": clips / secs}
    rows = [("librosa loop, one load per file", clips, secs, clips / secs, 1.0)]
    base = clips / secs
    # A second, common baseline: one load per clip, as a map-style Dataset does it. Ratios
    # below stay against the (faster) per-file loop; this row shows what it is against.
    pc_clips, pc_secs = _median_run(_librosa_per_clip, paths, FLAGS.clips_per_file)
    results["librosa_per_clip"] = {"clips": pc_clips, "seconds": pc_secs,
                                   "clips_per_s": pc_clips / pc_secs}
    rows.append(("librosa loop, one load per clip", pc_clips, pc_secs, pc_clips / pc_secs,
                 pc_clips / pc_secs / base))
    runs = [(b, c, "stft") for b in FLAGS.backends for c in (True, False)]
    runs.append((FLAGS.backends[0], True, "specgrams"))
    for backend, cache, features in runs:
        if backend == "tfio" and not audio_io.tfio_available():
            continue
        n, times = _pipeline(data_dir, backend, cache, FLAGS.max_files, FLAGS.epochs,
                             features)
        key = f"pipeline_{backend}_{'cache' if cache else 'nocache'}_{features}"
        # Median of the later epochs: the machine may be shared, single epochs are short.
        steady = float(np.median(times[1:])) if len(times) > 1 else times[0]
        results[key] = {"clips": n, "epoch_seconds": times,
                        "first_epoch_clips_per_s": n / times[0],
                        "steady_clips_per_s": n / steady,
                        "ratio_first_epoch": n / times[0] / base,
                        "ratio_steady": n / steady / base}
        label = (f"tf.data {backend}, {'cached' if cache else 'no cache'}"
                 f"{', +IF specgrams' if features == 'specgrams' else ''}")
        rows.append((label + ", epoch 1", n, times[0], n / times[0], n / times[0] / base))
        rows.append((label + ", later", n, steady, n / steady, n / steady / base))
    print(f"\n{len(paths)} files, {FLAGS.clips_per_file} clips/file, {os.cpu_count()} CPU(s)")
    per_clip = pc_clips / pc_secs
    print(f"| {'method':<44} | clips | seconds | clips/s | vs per-file loop | vs per-clip loop |")
    print("|---|---|---|---|---|---|")
    for name, n, s, cps, ratio in rows:
        print(f"| {name:<44} | {n:>5d} | {s:>7.2f} | {cps:>7.1f} | {ratio:>5.2f}x | "
              f"{cps / per_clip:>5.2f}x |")
    for key, value in results.items():
        if key.startswith("pipeline_"):
            value["ratio_steady_vs_per_clip"] = value["steady_clips_per_s"] / per_clip
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(results, f, indent=1)
        print("wrote", FLAGS.output_json)
    if tmp is not None:
        tmp.cleanup()


def _usable(path):
    try:
        audio_io.probe_audio(path)
        return True
    except audio_io.AudioProbeError:
        return False


if __name__ == "__main__":
    app.run(main)
