"""Builds a folder of the awkward real-music cases from any genre folder, to train on.

From the first --genres genre folders of --source (a GTZAN-style folder: one sub-folder per
genre, e.g. the one bench/real_corpus.sh builds), it writes --tracks tracks per genre, each
the first --seconds of a source track, as stereo files that cycle through FLAC at 48 kHz,
WAV at 44.1 kHz, OGG at 22.05 kHz and MP3 at 48 kHz, under names with spaces and a
non-ASCII dash, in genre folders whose names have spaces; plus one corrupt MP3 that the
training must skip and count. Then

    python bench/mixed_formats.py --source=runs/real_corpus/genres --output=/tmp/mixed
    /usr/bin/time -v python run_training.py --flagfile=flags/music_cpu.cfg \\
        --dataset=folder --data_dir=/tmp/mixed --train_dir="/tmp/mixed run" \\
        --time_budget_minutes=8

checks the recipe end to end on them (bench/README.md, "Session 13").
"""

import os

import librosa
import numpy as np
import soundfile
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "A folder with one sub-folder of audio per genre.")
flags.DEFINE_string("output", None, "Where the mixed folder is written (must not exist).")
flags.DEFINE_integer("genres", 3, "How many of the source's genres (sorted by name).")
flags.DEFINE_integer("tracks", 4, "Tracks per genre.")
flags.DEFINE_float("seconds", 90.0, "Seconds of each source track.")
flags.mark_flags_as_required(["source", "output"])

# (soundfile format, extension, sample rate): what a user's collection mixes.
FORMATS = (("FLAC", "flac", 48000), ("WAV", "wav", 44100), ("OGG", "ogg", 22050),
           ("MP3", "mp3", 48000))
AUDIO_EXTENSIONS = (".ogg", ".mp3", ".flac", ".wav")


def main(argv):
    del argv
    if os.path.exists(FLAGS.output):
        raise SystemExit(f"--output={FLAGS.output} exists: name a new folder")
    genres = sorted(d for d in os.listdir(FLAGS.source)
                    if os.path.isdir(os.path.join(FLAGS.source, d)))[:FLAGS.genres]
    if not genres:
        raise SystemExit(f"--source={FLAGS.source} has no genre sub-folders")
    for genre in genres:
        folder = os.path.join(FLAGS.source, genre)
        tracks = sorted(f for f in os.listdir(folder)
                        if f.lower().endswith(AUDIO_EXTENSIONS))[:FLAGS.tracks]
        out_dir = os.path.join(FLAGS.output, f"{genre} music")
        os.makedirs(out_dir)
        for i, name in enumerate(tracks):
            fmt, ext, rate = FORMATS[i % len(FORMATS)]
            audio, _ = librosa.load(os.path.join(folder, name), sr=rate, mono=False,
                                    duration=FLAGS.seconds)
            if audio.ndim == 1:  # a mono source: a stereo pair with unequal channels
                audio = np.stack([audio, 0.9 * audio])
            stem = os.path.splitext(name)[0]
            path = os.path.join(out_dir, f"track {i} \u2013 {stem}.{ext}")
            soundfile.write(path, audio.T, rate, format=fmt)
            print(f"{path}: {fmt} {rate} Hz, {audio.shape[1] / rate:.0f} s")
    broken = os.path.join(FLAGS.output, f"{genres[0]} music", "broken file.mp3")
    with open(broken, "wb") as f:
        f.write(b"ID3" + np.random.default_rng(0).bytes(2000))
    print(f"{broken}: not audio (the training skips and counts it)")


if __name__ == "__main__":
    app.run(main)
