"""Long-form generation: speed (x real time) and how much the joins stand out.

For a run (--train_dir) or export (--export_dir): one --seconds piece per genre and one genre
morph, each timed (wall seconds from latents to the joined audio; the model's phase and mel
inverse), then `longform.seam_report` on every piece: the level step and the spectral flux
at each join against the same inside the clips (z-score and percentile). Writes a JSON and
the spectrogram sheets of a --sheet_seconds piece and of the morph.

    python bench/bench_longform.py --train_dir=runs/music_cpu --seconds=60 \
        --output_json=bench/results/longform.json --sheet_dir=docs/real_music
"""

import os
import time

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from gansynth_tf import generate, longform  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "A run (its latest checkpoint).")
flags.DEFINE_string("export_dir", None, "Or an export.")
flags.DEFINE_float("seconds", 60.0, "Length of each timed piece.")
flags.DEFINE_float("sheet_seconds", 30.0, "Length of the pieces drawn in the sheets.")
flags.DEFINE_float("wander", longform.DEFAULT_WANDER, "Latent walk speed.")
flags.DEFINE_integer("seed", 0, "Latent seed.")
flags.DEFINE_string("output_json", None, "Where the figures go.")
flags.DEFINE_string("sheet_dir", None, "Where long_piece.png and long_morph.png go.")


def main(argv):
    del argv
    sampler = generate.load_sampler(FLAGS.train_dir, FLAGS.export_dir)
    genres, sr = list(sampler.genres), sampler.sample_rate
    longform.long_form(sampler, 3.0, [(0.0, 0)])      # trace / warm up once
    rows, sheet, stems = [], [], generate.safe_names(genres)
    morph = [(0.0, 0)] + [((i + 1) * FLAGS.seconds / len(genres), g)
                          for i, g in enumerate(range(1, len(genres)))]
    jobs = [(g, [(0.0, i)]) for i, g in enumerate(genres)] + [("morph", morph)]
    for name, path in jobs:
        t0 = time.perf_counter()
        audio, info = longform.long_form(sampler, FLAGS.seconds, path, FLAGS.seed,
                                         FLAGS.wander)
        wall = time.perf_counter() - t0
        seams = longform.seam_report(audio, sr, info["joins"])
        rows.append({"piece": name, "seconds": FLAGS.seconds, "wall_s": wall,
                     "x_real_time": FLAGS.seconds / wall, "clips": info["clips"],
                     "peak": float(np.max(np.abs(audio))), "seams": seams})
        print(f"{name:>12}: {FLAGS.seconds / wall:6.1f}x real time ({wall:.1f} s), "
              f"{info['clips']} clips; joins: level-step z max "
              f"{seams['level_step_db']['max_join_z']:.2f} (mean pct "
              f"{seams['level_step_db']['mean_join_percentile']:.0f}), flux z max "
              f"{seams['flux']['max_join_z']:.2f} (mean pct "
              f"{seams['flux']['mean_join_percentile']:.0f})", flush=True)
        if name == "morph" or name == genres[0]:
            n = int(FLAGS.sheet_seconds * sr)
            marks = [(t, genres[g]) for t, g in path if t < FLAGS.sheet_seconds] \
                if name == "morph" else []
            sheet.append((name, stems.get(name, name), audio[:n],
                          [j for j in info["joins"] if j < FLAGS.sheet_seconds], marks))
    if FLAGS.sheet_dir:
        os.makedirs(FLAGS.sheet_dir, exist_ok=True)
        for name, stem, audio, joins, marks in sheet:
            out = os.path.join(FLAGS.sheet_dir, "long_morph.png" if name == "morph"
                               else "long_piece.png")
            what = "morph " + " -> ".join(m[1] for m in marks) if marks else "of " + name
            title = (f"{FLAGS.sheet_seconds:g} s {what}"
                     f" (seed {FLAGS.seed}, wander {FLAGS.wander:g})")
            longform.render_pieces(out, [(title, audio, joins, marks)], sr)
            print("wrote", out)
    summary = {"x_real_time_median": float(np.median([r["x_real_time"] for r in rows])),
               "max_join_z_level": float(max(r["seams"]["level_step_db"]["max_join_z"]
                                             for r in rows)),
               "max_join_z_flux": float(max(r["seams"]["flux"]["max_join_z"] for r in rows))}
    print(summary)
    if FLAGS.output_json:
        bc.write_json(FLAGS.output_json, bc.finish({
            "machine": bc.machine_info(), "source": FLAGS.train_dir or FLAGS.export_dir,
            "sample_rate": sr, "clip_samples": sampler.audio_length, "wander": FLAGS.wander,
            "pieces": rows, "summary": summary}))


if __name__ == "__main__":
    app.run(main)
