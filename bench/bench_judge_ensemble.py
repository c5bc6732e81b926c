"""How steady is the neural judge with k members: every k-member vote of a pool, fixed clips.

`evaluate --classifier_members=k` judges by the mean vote of k classifiers trained from
consecutive seeds. This pools the members of judges already trained (each --judges folder
is one `evaluate` classifier folder, e.g. from bench_judge_spread.py), scores ONE fixed set
of clips (the held-out real clips of the first run's split, and each run's generated
clips for one latent seed) with every member once, and then forms every k-member vote from
the pool for each --sizes value: the spread of its real ceiling, generated accuracy and
ratio over those votes is the spread a k-member judge trained anew would give, with the
clips held fixed. For two or more runs it also counts in how many votes each run scores
above the first, so a comparison between runs can be read against the judge's spread.

    J=bench/results/judge_ensemble_s21
    python bench/bench_judge_ensemble.py --runs=ms1=runs/music_s20,ms0=runs/music_s21_ms0 \
        --judges=$J/judges/n150_s0_m5,$J/judges/n150_s5_m5 --sizes=1,3,5,10 --output_dir=$J

Writes <output_dir>/ensemble.json and ensemble.md.
"""

import itertools
import json
import os
import sys

import numpy as np

import bench_common as bc  # noqa: E402

bc.quiet_tf()

from absl import app, flags  # noqa: E402

from gansynth_tf import classifier, evaluate, generate, split  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", None, "NAME=TRAIN_DIR pairs (latest checkpoint of each); the first "
                  "one's split gives the real clips.")
flags.DEFINE_list("judges", None, "evaluate classifier folders whose members are pooled.")
flags.DEFINE_list("sizes", ["1", "3", "5"], "Members per vote.")
flags.DEFINE_integer("num_real", 100, "Held-out real clips per genre.")
flags.DEFINE_integer("num_generated_per_genre", 60, "Generated clips per genre.")
flags.DEFINE_integer("seed", 0, "Seed of the generated latents.")
flags.DEFINE_integer("max_votes", 300, "At most this many k-member votes per size "
                     "(drawn at random when there are more combinations).")
flags.DEFINE_string("output_dir", None, "Where ensemble.json and ensemble.md go.")
flags.mark_flags_as_required(["runs", "judges", "output_dir"])


def pooled_members(folders):
    """Every member GenreClassifier of the given ensemble folders, with its origin."""
    out = []
    for folder in folders:
        ensemble = classifier.ClassifierEnsemble.load(folder)
        seed = int(ensemble.meta.get("seed", 0))
        out += [(f"{os.path.basename(os.path.normpath(folder))}#{seed + i}", m)
                for i, m in enumerate(ensemble.members)]
    return out


def votes(pool_size, k, max_votes, rng):
    combos = list(itertools.combinations(range(pool_size), k))
    if len(combos) > max_votes:
        combos = [combos[i] for i in sorted(rng.choice(len(combos), max_votes, replace=False))]
    return combos


def accuracy(probs, labels):
    return float(np.mean(np.argmax(probs, axis=-1) == labels))


def stats(values):
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "max": float(v.max()), "count": int(len(v))}


def main(argv):
    del argv
    runs = [r.split("=", 1) for r in FLAGS.runs]
    first_dir = runs[0][1]
    samplers = {name: generate.load_sampler(d) for name, d in runs}
    first = samplers[runs[0][0]]
    rep = first.trained.representation
    cfg = evaluate.data_config(first_dir, rep)
    held_split, track_split, _ = evaluate.heldout_split(first_dir, cfg)
    for name, d in runs[1:]:
        if split.load(d) != split.load(first_dir):
            raise SystemExit(f"{d} holds out other tracks than {first_dir}: runs compared "
                             "here must share one split")
    source = evaluate.real_source(cfg, held_split, track_split, FLAGS.num_real)
    real, real_y = evaluate.collect_clips(source, first.genres, FLAGS.num_real)
    fake = {name: evaluate.generate_clips(s, FLAGS.num_generated_per_genre, FLAGS.seed, 16)
            for name, s in samplers.items()}
    pool = pooled_members(FLAGS.judges)
    for _, m in pool:
        if not m.matches(first.genres, rep.sample_rate, rep.audio_length):
            raise SystemExit("a pooled classifier judges other genres or clips than the runs")
    real_p = np.stack([m.predict(real)[0] for _, m in pool])
    fake_p = {name: np.stack([m.predict(w)[0] for _, m in pool]) for name, (w, _) in fake.items()}
    rng = np.random.default_rng(0)
    result = {"runs": dict(runs), "judges": FLAGS.judges, "members": [n for n, _ in pool],
              "num_real": int(len(real)), "seed": FLAGS.seed,
              "num_generated_per_genre": FLAGS.num_generated_per_genre,
              "images_seen": {n: int(s.trained.images_seen.numpy())
                              for n, s in samplers.items()},
              "sizes": {}}
    for k in (int(s) for s in FLAGS.sizes):
        if k > len(pool):
            raise SystemExit(f"--sizes {k} is larger than the pool ({len(pool)} members)")
        entry = {"votes": 0, "real": None, "generated": {}, "ratio": {}, "above_first": {}}
        chosen = votes(len(pool), k, FLAGS.max_votes, rng)
        ceil = [accuracy(real_p[list(c)].mean(0), real_y) for c in chosen]
        entry["votes"], entry["real"] = len(chosen), stats(ceil)
        gen = {}
        for name, (_, labels) in fake.items():
            gen[name] = [accuracy(fake_p[name][list(c)].mean(0), labels) for c in chosen]
            entry["generated"][name] = stats(gen[name])
            entry["ratio"][name] = stats(np.asarray(gen[name]) / np.asarray(ceil))
        base = runs[0][0]
        for name in list(gen)[1:]:
            diff = np.asarray(gen[name]) - np.asarray(gen[base])
            entry["above_first"][name] = {"fraction": float(np.mean(diff > 0)),
                                          "ties": float(np.mean(diff == 0)),
                                          "difference": stats(diff)}
        # Votes drawn from one pool share members, so their spread understates that of
        # k-member judges trained anew: for a mean of k of N draws by sqrt((N-1)/(N-k)).
        entry["pool_correction"] = (float(np.sqrt((len(pool) - 1) / (len(pool) - k)))
                                    if k < len(pool) else None)
        result["sizes"][str(k)] = entry
        print(f"k={k}: {len(chosen)} votes, ceiling {stats(ceil)['mean']:.3f} "
              + ", ".join(f"{n} {entry['generated'][n]['mean']:.3f} "
                          f"(sd {entry['generated'][n]['std']:.3f})" for n in gen), flush=True)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "ensemble.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    text = report(result)
    with open(os.path.join(FLAGS.output_dir, "ensemble.md"), "w", encoding="utf-8") as f:
        f.write(f"command: python bench/bench_judge_ensemble.py {' '.join(sys.argv[1:])}\n\n"
                + text)
    print(text)


def _ms(s):
    return f"{s['mean']:.3f} (sd {s['std']:.3f}, {s['min']:.3f}-{s['max']:.3f})"


def report(result):
    names = list(result["runs"])
    lines = [f"Pool of {len(result['members'])} classifiers ({', '.join(result['members'])}); "
             f"{result['num_real']} held-out real clips, "
             f"{result['num_generated_per_genre']} generated clips per genre (latent seed "
             f"{result['seed']}) of each run; images seen "
             + ", ".join(f"{n} {result['images_seen'][n]:,}" for n in names) + ".", "",
             "| members per vote | votes | real ceiling | "
             + " | ".join(f"{n}: generated | {n}: generated / ceiling" for n in names)
             + (" | " + " | ".join(f"votes with {n} above {names[0]}" for n in names[1:])
                if len(names) > 1 else "") + " |",
             "|" + "---|" * (3 + 2 * len(names) + len(names) - 1)]
    for k, e in result["sizes"].items():
        row = [k, str(e["votes"]), _ms(e["real"])]
        for n in names:
            row += [_ms(e["generated"][n]), _ms(e["ratio"][n])]
        row += [f"{e['above_first'][n]['fraction']:.2f}" for n in names[1:]]
        lines.append("| " + " | ".join(row) + " |")
    corrections = {k: e["pool_correction"] for k, e in result["sizes"].items()
                   if e["pool_correction"] and k != "1"}
    if corrections:
        lines += ["", "Votes of more than one member share members from the pool, so their "
                  "spread understates that of judges trained anew: multiply the sd by about "
                  + ", ".join(f"{v:.2f} for {k}" for k, v in corrections.items())
                  + " (sqrt((N-1)/(N-k)), N the pool). Single members are independent."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    app.run(main)
