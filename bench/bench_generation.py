"""Generation speed at GANSynth's hi-res size: generator alone and with each phase inversion.

One run compares, per batch size (default 1 and 8), on random weights of
`networks.hires_config(10)` (128x1024 mel/linear spectrograms = 4 s at 16 kHz):

  a  generator forward alone
  b  generator + GANSynth's IF phase inversion (mel, mel_inversion="magenta")
  c  generator + IF + our refined mel inverse (mel_inversion="refined": NNLS + 64 GL iters)
  d  generator magnitudes (read as a LINEAR log-magnitude) + our fast Griffin-Lim, 32 iters
  e  the same magnitudes + librosa.griffinlim, 32 iters (center=False, hann, n_fft 2048,
     hop 512, momentum 0.99, init=None: zero phase, as ours)

and, on the phase step alone, our Griffin-Lim against librosa's on identical magnitudes
(speed ratio and spectral convergence, which should agree). TF paths are tf.functions with
fixed input shapes, warmed up before timing; the methods are timed in interleaved rounds
(round r times every method once) and the median is reported, so a changing background load
hits every method alike. The generator's FLOPs are counted analytically from the conv /
dense shapes (cross-checked with the TF profiler) and set against an estimated machine peak.

    python bench/bench_generation.py --output_json=bench/results/generation.json
    python bench/bench_generation.py --batch_sizes=1,8,32 --repeats=7
"""

import time

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from gansynth_tf import griffin_lim as gl  # noqa: E402
from gansynth_tf import networks, synthetic  # noqa: E402
from gansynth_tf.representation import Representation  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("batch_sizes", ["1", "8"], "Batch sizes to time.")
flags.DEFINE_integer("repeats", 5, "Timed rounds per batch size (median reported).")
flags.DEFINE_integer("warmup", 1, "Untimed calls per method after tracing.")
flags.DEFINE_integer("gl_iterations", 32, "Griffin-Lim iterations for (d), (e) and the "
                     "phase-only comparison.")
flags.DEFINE_list("methods", ["a", "b", "c", "d", "e"], "Which of the methods a-e to time.")
flags.DEFINE_integer("num_genres", 10, "Genres of the hi-res config.")
flags.DEFINE_bool("profile_flops", True, "Cross-check the analytic FLOP count with the TF "
                  "profiler on the frozen forward graph.")
flags.DEFINE_integer("seed", 0, "Weights / latent seed.")
flags.DEFINE_string("output_json", None, "Where to write the figures as JSON.")

NFFT, HOP = 2048, 512
METHOD_NAMES = {
    "a": "generator forward only",
    "b": "generator + IF, GANSynth mel inverse",
    "c": "generator + IF, refined mel inverse",
    "d": "generator + our Griffin-Lim",
    "e": "generator + librosa.griffinlim",
}


# ----------------------------------------------------------------------------- FLOPs

def generator_flops(cfg, stage=None):
    """Multiply-adds x 2 of the generator's conv and dense layers for ONE sample.

    Elementwise work (bias, leaky ReLU, pixel norm, tanh, upsampling, fade) is not counted.
    Returns (total, per-layer list).
    """
    stage = cfg.num_stages - 1 if stage is None else stage
    ch, res = cfg.gen_channels, cfg.resolutions
    t0, f0 = res[0]
    layers = [("initial_dense", 2 * (cfg.latent_dim + cfg.num_genres) * t0 * f0 * ch[0]),
              ("initial_conv", 2 * 9 * ch[0] * ch[0] * t0 * f0)]
    for s in range(1, stage + 1):
        t, f = res[s]
        layers.append((f"block_{s}/conv0", 2 * 9 * ch[s - 1] * ch[s] * t * f))
        layers.append((f"block_{s}/conv1", 2 * 9 * ch[s] * ch[s] * t * f))
    t, f = res[stage]
    layers.append((f"to_spec_{stage}", 2 * ch[stage] * cfg.spec_channels * t * f))
    if stage > 0:
        t, f = res[stage - 1]
        layers.append((f"to_spec_{stage - 1}", 2 * ch[stage - 1] * cfg.spec_channels * t * f))
    return sum(v for _, v in layers), layers


def profiler_flops(concrete_fn):
    """FLOPs the TF profiler counts on the frozen graph of `concrete_fn` (None on failure)."""
    try:
        # pylint: disable-next=import-outside-toplevel
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )
        frozen = convert_variables_to_constants_v2(concrete_fn)
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        info = tf.compat.v1.profiler.profile(graph=frozen.graph, options=opts)
        return int(info.total_float_ops)
    except Exception as e:  # pylint: disable=broad-except
        print("profiler FLOP count failed:", repr(e)[:200])
        return None


# ----------------------------------------------------------------------------- helpers

def full_magnitudes(rep, features):
    """Normalised features -> linear magnitudes [b, frames, nfft/2 + 1] (DC bin zero), the
    exact input `SpecgramsHelper.specgrams_to_waves_griffin_lim` hands to Griffin-Lim."""
    specgrams = rep._normalizer.denormalize(features)  # pylint: disable=protected-access
    mag = tf.exp(specgrams[..., 0])
    return tf.pad(mag, [[0, 0], [0, 0], [1, 0]])


def librosa_gl(mags_np, iterations):
    import librosa  # pylint: disable=import-outside-toplevel
    # librosa wants [..., freq, frames].
    return librosa.griffinlim(np.swapaxes(mags_np, -1, -2), n_iter=iterations,
                              hop_length=HOP, win_length=NFFT, n_fft=NFFT, window="hann",
                              center=False, momentum=0.99, init=None)


def spectral_convergence(mags, waves):
    return gl.spectral_convergence(tf.constant(mags), tf.constant(waves, tf.float32),
                                   NFFT, HOP).numpy()


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


# ----------------------------------------------------------------------------- main

def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)  # the v1 profiler's deprecation notices
    tf.get_logger().setLevel("ERROR")
    info = bc.machine_info()
    info.update(bc.tf_device_info(tf))
    peak = bc.peak_fp32_gflops()
    print(f"device: {info['device']} ({info['device_kind']}), CPU: {info['cpu_model']}, "
          f"{info['logical_cpus']} logical CPUs, TF {info['tensorflow']}")
    tf.random.set_seed(FLAGS.seed)
    import keras  # pylint: disable=import-outside-toplevel
    keras.utils.set_random_seed(FLAGS.seed)

    cfg = networks.hires_config(num_genres=FLAGS.num_genres)
    gen = networks.Generator(cfg)
    rep_magenta = Representation(mel=True, mel_inversion="magenta")
    rep_refined = Representation(mel=True, mel_inversion="refined")
    rep_linear = Representation(mel=False)
    seconds = rep_magenta.duration_seconds
    frames, bins = cfg.final_resolution
    assert (frames, bins) == rep_magenta.spec_shape, (cfg.final_resolution, rep_magenta.spec_shape)
    flops, flop_layers = generator_flops(cfg)
    iters = FLAGS.gl_iterations

    results = {"machine": info, "peak": peak, "config": {
        "network": "hires_config", "num_genres": FLAGS.num_genres,
        "spec_shape": [frames, bins], "sample_rate": rep_magenta.sample_rate,
        "audio_length": rep_magenta.audio_length, "clip_seconds": seconds,
        "gl_iterations": iters,
        "refined_nnls_iterations": rep_refined.helper.refine_magnitude_iterations,
        "refined_gl_iterations": rep_refined.helper.refine_phase_iterations,
        "repeats": FLAGS.repeats, "methods": {m: METHOD_NAMES[m] for m in FLAGS.methods}},
        "generator_flops_per_sample": flops,
        "generator_flop_layers": dict(flop_layers), "batches": {}}

    rows, phase_rows = [], []
    for batch in [int(b) for b in FLAGS.batch_sizes]:
        z = tf.random.stateless_normal([batch, cfg.latent_dim], [FLAGS.seed, 1])
        genre = tf.one_hot(tf.range(batch) % FLAGS.num_genres, FLAGS.num_genres)
        spec = [tf.TensorSpec([batch, cfg.latent_dim], tf.float32),
                tf.TensorSpec([batch, FLAGS.num_genres], tf.float32)]

        @tf.function(input_signature=spec)
        def fwd(z, g):
            return gen([z, g])

        @tf.function(input_signature=spec)
        def gen_if_magenta(z, g):
            return rep_magenta.features_to_waves(gen([z, g]), phase="if")

        @tf.function(input_signature=spec)
        def gen_if_refined(z, g):
            return rep_refined.features_to_waves(gen([z, g]), phase="if")

        @tf.function(input_signature=spec)
        def gen_gl(z, g):
            return rep_linear.features_to_waves(gen([z, g]), phase="griffin_lim",
                                                griffin_lim_iterations=iters)

        @tf.function(input_signature=spec)
        def gen_mags(z, g):
            return full_magnitudes(rep_linear, gen([z, g]))

        def gen_librosa():
            return librosa_gl(gen_mags(z, genre).numpy(), iters)

        fns = {"a": lambda: fwd(z, genre).numpy(),
               "b": lambda: gen_if_magenta(z, genre).numpy(),
               "c": lambda: gen_if_refined(z, genre).numpy(),
               "d": lambda: gen_gl(z, genre).numpy(),
               "e": gen_librosa}
        fns = {m: fns[m] for m in FLAGS.methods}

        # Phase step alone, on the same magnitudes.
        mags = gen_mags(z, genre).numpy()
        mag_spec = tf.TensorSpec(mags.shape, tf.float32)

        # Like for like: floor=0 is the exact least-squares inverse that librosa uses. The
        # default floor (griffin_lim.WSS_FLOOR) only rescales the outermost samples and
        # costs nothing; its SC is reported beside.
        @tf.function(input_signature=[mag_spec])
        def ours_gl(m):
            return gl.griffin_lim(m, NFFT, HOP, iterations=iters, momentum=0.99, floor=0.0)

        mags_t = tf.constant(mags)
        phase_fns = {"ours": lambda: ours_gl(mags_t).numpy(),
                     "librosa": lambda: librosa_gl(mags, iters)}

        t_trace = time.perf_counter()
        for fn in list(fns.values()) + list(phase_fns.values()):
            for _ in range(max(1, FLAGS.warmup)):
                fn()
        trace_s = time.perf_counter() - t_trace

        times = {k: [] for k in list(fns) + ["phase_" + k for k in phase_fns]}
        for _ in range(FLAGS.repeats):
            for k, fn in list(fns.items()) + [("phase_" + k, f) for k, f in phase_fns.items()]:
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        stats = {k: bc.summarize(v) for k, v in times.items()}

        # Quality: our GL vs librosa's on the same (generated) magnitudes.
        w_ours, w_lib = phase_fns["ours"](), phase_fns["librosa"]()
        sc_ours, sc_lib = spectral_convergence(mags, w_ours), spectral_convergence(mags, w_lib)
        sc_floored = spectral_convergence(mags, gl.griffin_lim(mags_t, NFFT, HOP, iterations=iters,
                                                               momentum=0.99).numpy())
        wave_rel_diff = float(np.linalg.norm(w_ours - w_lib) / (np.linalg.norm(w_lib) + 1e-20))

        entry = {"warmup_and_trace_s": trace_s, "methods": {}, "phase_only": {}}
        base = stats["a"]["median_s"] if "a" in stats else None
        for m in fns:
            med = stats[m]["median_s"]
            e = {**stats[m], "name": METHOD_NAMES[m], "seconds_per_clip": med / batch,
                 "real_time_factor": batch * seconds / med,
                 "vs_forward": med / base if base else None}
            if m == "a":
                e["achieved_gflops"] = flops * batch / med / 1e9
                e["fraction_of_peak"] = (e["achieved_gflops"] / peak["peak_gflops"]
                                         if peak["peak_gflops"] else None)
            entry["methods"][m] = e
            rows.append([batch, f"({m}) {METHOD_NAMES[m]}", fmt(med), fmt(med / batch),
                         f"{batch * seconds / med:.2f}x",
                         f"{med / base:.2f}" if base else "-"])
        po, pl = stats["phase_ours"]["median_s"], stats["phase_librosa"]["median_s"]
        entry["phase_only"] = {
            "ours": {**stats["phase_ours"], "spectral_convergence": sc_ours.tolist(),
                     "spectral_convergence_default_floor": sc_floored.tolist()},
            "librosa": {**stats["phase_librosa"], "spectral_convergence": sc_lib.tolist()},
            "speedup_ours_vs_librosa": pl / po,
            "waveform_relative_difference": wave_rel_diff}
        phase_rows.append([batch, fmt(po), fmt(pl), f"{pl / po:.2f}x",
                           f"{float(np.mean(sc_ours)):.4f}", f"{float(np.mean(sc_lib)):.4f}",
                           f"{float(np.mean(sc_floored)):.4f}", f"{wave_rel_diff:.1e}"])
        results["batches"][str(batch)] = entry

    # Quality on a real signal: magnitudes of a synthetic-genre clip (a consistent
    # spectrogram, so a good Griffin-Lim gets close to 0).
    clip = synthetic.synthesize_clip("jazz", 0, 0, 16000, rep_linear.audio_length)
    helper = rep_linear.helper
    real_mags = tf.abs(helper._full_spectrum(  # pylint: disable=protected-access
        helper.waves_to_stfts(tf.constant(clip[None, :, None]))[..., 0])).numpy()
    real_sc_ours = spectral_convergence(real_mags, gl.griffin_lim(
        tf.constant(real_mags), NFFT, HOP, iterations=iters, floor=0.0).numpy())
    real_sc_lib = spectral_convergence(real_mags, librosa_gl(real_mags, iters))
    results["synthetic_clip_quality"] = {"clip": "synthetic jazz #0, 16 kHz, 4 s",
                                         "sc_ours": float(real_sc_ours[0]),
                                         "sc_librosa": float(real_sc_lib[0])}

    prof = None
    if FLAGS.profile_flops:
        concrete = tf.function(lambda z, g: gen([z, g])).get_concrete_function(
            tf.TensorSpec([1, cfg.latent_dim], tf.float32),
            tf.TensorSpec([1, FLAGS.num_genres], tf.float32))
        prof = profiler_flops(concrete)
    results["generator_flops_profiler_batch1"] = prof

    # ---------------------------------------------------------------- report
    print(f"\n## Hi-res generation ({frames}x{bins}, {seconds:.0f} s clips at "
          f"{rep_magenta.sample_rate} Hz), median of {FLAGS.repeats} interleaved rounds\n")
    print(f"Device: {info['device_kind']} ({info['device']}); CPU {info['cpu_model']}, "
          f"{info['logical_cpus']} logical CPUs.\n")
    print(bc.markdown_table(["batch", "method", "s / call", "s / clip", "x real time",
                             "time vs (a)"], rows))
    print(f"\n## Phase step alone: our Griffin-Lim vs librosa.griffinlim, {iters} iterations, "
          f"same magnitudes\n")
    print(bc.markdown_table(["batch", "ours s", "librosa s", "ours speed-up",
                             "SC ours", "SC librosa", "SC ours, default floor",
                             "wave rel. diff"], phase_rows))
    q = results["synthetic_clip_quality"]
    print(f"\nSpectral convergence on a synthetic jazz clip's true magnitudes ({iters} iters): "
          f"ours {q['sc_ours']:.4f}, librosa {q['sc_librosa']:.4f}")
    print(f"\n## Generator FLOPs\n\nanalytic (conv + dense): {flops / 1e9:.2f} GFLOP per clip; "
          f"TF profiler (batch 1 graph): "
          f"{'-' if prof is None else f'{prof / 1e9:.2f} GFLOP'}")
    print(f"peak estimate: {fmt(peak['peak_gflops'], 1)} GFLOP/s = {peak['assumption']}")
    for b, entry in results["batches"].items():
        a = entry["methods"].get("a")
        if a:
            print(f"batch {b}: forward achieves {a['achieved_gflops']:.1f} GFLOP/s = "
                  f"{100 * a['fraction_of_peak']:.1f}% of the estimated peak")

    # ---------------------------------------------------------------- targets
    targets = {}
    b8 = results["batches"].get("8")
    if b8 and "b" in b8["methods"]:
        rtf = b8["methods"]["b"]["real_time_factor"]
        targets["if_generation_10x_realtime_batch8"] = {"value": rtf, "target": 10.0,
                                                         "met": rtf >= 10.0}
    for b, entry in results["batches"].items():
        p = entry["phase_only"]
        sc_o = float(np.mean(p["ours"]["spectral_convergence"]))
        sc_l = float(np.mean(p["librosa"]["spectral_convergence"]))
        same = abs(sc_o - sc_l) <= 0.01 * max(sc_l, 1e-6) + 1e-4
        targets[f"griffin_lim_2x_librosa_batch{b}"] = {
            "value": p["speedup_ours_vs_librosa"], "target": 2.0,
            "same_quality": same, "met": p["speedup_ours_vs_librosa"] >= 2.0 and same}
    results["targets"] = targets
    print("\n## Targets\n")
    print(bc.markdown_table(["target", "measured", "goal", "met"], [
        [k, f"{v['value']:.2f}x", f">= {v['target']:.0f}x" + (" + same SC" if "same_quality" in v
                                                              else ""),
         "yes" if v["met"] else "NO"] for k, v in targets.items()]))
    bc.finish(info)
    bc.write_json(FLAGS.output_json, results)


if __name__ == "__main__":
    app.run(main)
