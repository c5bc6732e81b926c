"""Spectrogram sheet of real held-out clips beside generated ones, and a few example WAVs.

One row per genre: --real_per_genre clips from the run's held-out tracks (split.json), then
--generated_per_genre clips of the run's EMA generator (latents from --seed). One generated
WAV per genre goes to --wav_dir (the corpus's own audio is never written out).

    python bench/music_samples.py --train_dir=runs/music_cpu \
        --output_png=docs/real_music/samples_ms1.png --wav_dir=docs/real_music/ms1
"""

import os

import bench_common as bc  # noqa: E402

bc.quiet_tf()

from absl import app, flags  # noqa: E402

from gansynth_tf import evaluate, generate  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "The run.")
flags.DEFINE_string("checkpoint", None, "A checkpoint of the run (default the latest).")
flags.DEFINE_integer("real_per_genre", 3, "Held-out real clips per genre.")
flags.DEFINE_integer("generated_per_genre", 3, "Generated clips per genre.")
flags.DEFINE_float("truncation", 1.0, "Latent scale of the generated clips.")
flags.DEFINE_integer("seed", 0, "Latent seed.")
flags.DEFINE_string("output_png", None, "The sheet.")
flags.DEFINE_string("wav_dir", None, "Where one generated WAV per genre goes.")


def main(argv):
    del argv
    sampler = generate.load_sampler(FLAGS.train_dir, checkpoint=FLAGS.checkpoint,
                                    truncation=FLAGS.truncation)
    rep, genres = sampler.trained.representation, list(sampler.genres)
    cfg = evaluate.data_config(FLAGS.train_dir, rep)
    split_name, track_split, _ = evaluate.heldout_split(FLAGS.train_dir, cfg)
    source = evaluate.real_source(cfg, split_name, track_split, 4 * FLAGS.real_per_genre)
    real, real_y = evaluate.collect_clips(source, genres, FLAGS.real_per_genre)
    fake, fake_y = evaluate.generate_clips(sampler, FLAGS.generated_per_genre, FLAGS.seed, 16)
    clips, titles = [], []
    for g, name in enumerate(genres):
        for k, clip in enumerate(real[real_y == g]):
            clips.append(clip)
            titles.append(f"{name}: real {k}")
        for k, clip in enumerate(fake[fake_y == g]):
            clips.append(clip)
            titles.append(f"{name}: generated {k}")
    ncols = FLAGS.real_per_genre + FLAGS.generated_per_genre
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output_png)), exist_ok=True)
    generate.spectrogram_sheet(
        FLAGS.output_png, clips, titles, rep.sample_rate, ncols=ncols,
        suptitle=f"{FLAGS.train_dir}: held-out real clips | generated "
                 f"({int(sampler.trained.images_seen.numpy())} images, psi {FLAGS.truncation:g})")
    if FLAGS.wav_dir:
        os.makedirs(FLAGS.wav_dir, exist_ok=True)
        stems = generate.safe_names(genres)
        for g, name in enumerate(genres):
            generate.write_wav(os.path.join(FLAGS.wav_dir, f"{stems[name]}_generated.wav"),
                               fake[fake_y == g][0], rep.sample_rate, "limit")
    print("wrote", FLAGS.output_png, FLAGS.wav_dir or "")


if __name__ == "__main__":
    app.run(main)
