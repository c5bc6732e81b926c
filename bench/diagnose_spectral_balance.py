"""Where a genre's spectral balance is lost: in the generator's magnitudes or in synthesis.

The generated clips of some genres (orchestral on the real corpus) are bright and broadband
where the real ones are dark. This measures, per genre, the balance of held-out real clips
and of the run's generated clips at each point of the chain:

    real            held-out real audio (the judges' reference)
    real_train      real audio of the training tracks (the generator's reference)
    real_roundtrip  real audio -> the run's features -> audio (IF phase): the
                    representation's own share
    gen_features    the generator's log-mel magnitudes, before any synthesis
    gen_if          generated audio, GANSynth's IF phase (what evaluate scores)
    gen_gl          generated audio from the same magnitudes, Griffin-Lim phase

For audio: RMS level (dBFS), power-weighted spectral centroid (Hz), the share of power
above --split_hz and in each octave band (dB), and the mean spectral flatness of its frames
(0 for a pure tone, 1 for white noise), the spread over time of the frames' level (dB:
onsets and silences raise it) and the spectral contrast (dB, peak minus valley within
sub-bands: harmonic lines raise it, a noise floor between them lowers it). For the
features (the real clips' and gen_features): the mean log-mel power of the mel bands
above --split_hz minus that of the bands below 1 kHz (dB; no synthesis). If gen_features
already has the wrong tilt, the generator learnt it; if only gen_if has, synthesis adds it.

    python bench/diagnose_spectral_balance.py --train_dir=runs/music_s22_gb \
        --output_dir=bench/results/spectral_balance_s22
"""

import json
import os

import numpy as np

import bench_common as bc  # noqa: E402

bc.quiet_tf()

import librosa  # noqa: E402
from absl import app, flags  # noqa: E402
from scipy import signal  # noqa: E402

from gansynth_tf import evaluate, generate, normalizers, spectral  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "The run.")
flags.DEFINE_string("checkpoint", None, "A checkpoint of the run (default the latest).")
flags.DEFINE_integer("num_per_genre", 40, "Held-out real and generated clips per genre.")
flags.DEFINE_integer("seed", 0, "Latent seed.")
flags.DEFINE_float("split_hz", 4000.0, "High band: above this frequency.")
flags.DEFINE_string("output_dir", "bench/results/spectral_balance", "Where the results go.")

DB_PER_LOG_POWER = 10.0 / np.log(10.0)   # the features' magnitude channel is ln(mel power)
SETS = ("real", "real_train", "real_roundtrip", "gen_if", "gen_gl")
SHORT_SETS = ("real", "real_train", "gen_if", "gen_gl")
OCTAVES = ((0, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000),
           (8000, 16000), (16000, 24000))


def audio_balance(waves, sample_rate, split_hz):
    """waves `[n, L]` -> per clip (RMS dBFS, centroid Hz, dB of power above split_hz)."""
    freqs, power = signal.welch(waves, fs=sample_rate, nperseg=1024, axis=-1)
    total = power.sum(axis=-1) + 1e-20
    rms = np.sqrt(np.mean(np.square(waves), axis=-1))
    # Flatness frame by frame (an average spectrum hides whether each frame is tonal):
    # geometric over arithmetic mean of the power, 0 for a pure tone, 1 for white noise.
    _, _, frames = signal.stft(waves, fs=sample_rate, nperseg=1024, axis=-1)
    frame_power = np.abs(frames) ** 2 + 1e-12                  # [n, bins, frames]
    flatness = np.exp(np.mean(np.log(frame_power), axis=1)) / np.mean(frame_power, axis=1)
    loud = frame_power.sum(axis=1) > 1e-8 * frame_power.sum(axis=(1, 2))[:, None]
    # Onsets and silences: the spread over time of the frames' level (dB, floored 80 dB
    # under the clip's loudest frame). Harmonic lines: librosa's spectral contrast, peak
    # minus valley within each sub-band (dB), averaged over bands and frames.
    frame_db = 10 * np.log10(frame_power.sum(axis=1))
    frame_db = np.maximum(frame_db, frame_db.max(axis=-1, keepdims=True) - 80.0)
    contrast = np.stack([librosa.feature.spectral_contrast(
        S=np.sqrt(p), sr=sample_rate, n_fft=1024, n_bands=5).mean() for p in frame_power])
    values = {"rms_dbfs": 20 * np.log10(rms + 1e-10),
              "level_spread_db": frame_db.std(axis=-1),
              "spectral_contrast_db": contrast,
              "centroid_hz": (power * freqs).sum(axis=-1) / total,
              "high_share_db": 10 * np.log10(power[:, freqs > split_hz].sum(axis=-1) / total
                                             + 1e-20),
              "flatness": np.sum(flatness * loud, axis=-1) / np.maximum(loud.sum(axis=-1), 1)}
    for lo, hi in OCTAVES:
        if lo < sample_rate / 2:
            band = (freqs >= lo) & (freqs < hi)
            values[f"band_{lo}_{hi}_db"] = 10 * np.log10(power[:, band].sum(axis=-1) / total
                                                         + 1e-20)
    return values


def feature_tilt(features, rep, split_hz):
    """Normalised features `[n, T, F, 2]` -> per clip, mean dB of the mel bands above
    split_hz minus that of the bands below 1 kHz (the magnitudes as the network sees them,
    denormalised)."""
    normalizer = normalizers.from_config(rep.normalizer)
    logmel = np.asarray(normalizer.denormalize(features))[..., 0]
    num_bins = logmel.shape[-1]
    edges = np.linspace(0.0, spectral.hertz_to_mel(rep.sample_rate / 2.0), num_bins + 2)
    centres = spectral.mel_to_hertz(edges[1:-1])
    band = logmel.mean(axis=1)                           # [n, F]: mean over time
    high, low = band[:, centres > split_hz], band[:, centres < 1000.0]
    return {"tilt_db": DB_PER_LOG_POWER * (high.mean(axis=-1) - low.mean(axis=-1))}


def summarise(values, labels, genres):
    return {name: {k: float(np.mean(v[labels == g])) for k, v in values.items()}
            for g, name in enumerate(genres)}


def main(argv):
    del argv
    sampler = generate.load_sampler(FLAGS.train_dir, checkpoint=FLAGS.checkpoint)
    trained, rep = sampler.trained, sampler.trained.representation
    genres, sr, n = list(sampler.genres), rep.sample_rate, FLAGS.num_per_genre
    cfg = evaluate.data_config(FLAGS.train_dir, rep)
    split_name, track_split, _ = evaluate.heldout_split(FLAGS.train_dir, cfg)
    source = evaluate.real_source(cfg, split_name, track_split, 4 * n)
    real, real_y = evaluate.collect_clips(source, genres, n)
    # The generator learnt the training tracks: their clips are its own reference (the
    # held-out tracks are few per genre and may differ from them).
    train_source = evaluate.real_source(cfg, "train" if split_name == "heldout" else "all",
                                        track_split, 4 * n)
    real_train, real_train_y = evaluate.collect_clips(train_source, genres, n)

    def to_features(waves):
        return np.concatenate([np.asarray(rep.waves_to_features(waves[i:i + 16, :, None]))
                               for i in range(0, len(waves), 16)])

    real_features = to_features(real)
    fake_y = np.repeat(np.arange(len(genres), dtype=np.int32), n)
    z = generate.latents(FLAGS.seed, len(fake_y), trained.latent_dim)
    fake_features = np.concatenate([np.asarray(trained.features(fake_y[i:i + 16],
                                                                z[i:i + 16]))
                                    for i in range(0, len(z), 16)])

    def synthesise(features, phase):
        return np.concatenate([np.asarray(rep.features_to_waves(features[i:i + 16], phase))
                               for i in range(0, len(features), 16)])

    audio = {"real": (real, real_y), "real_train": (real_train, real_train_y),
             "real_roundtrip": (synthesise(real_features, "if"), real_y),
             "gen_if": (synthesise(fake_features, "if"), fake_y),
             "gen_gl": (synthesise(fake_features, "griffin_lim"), fake_y)}
    result = {"train_dir": FLAGS.train_dir, "checkpoint": trained.checkpoint,
              "images_seen": int(trained.images_seen.numpy()), "num_per_genre": n,
              "split_hz": FLAGS.split_hz, "genres": genres, "audio": {}, "features": {}}
    for name, (waves, labels) in audio.items():
        result["audio"][name] = summarise(audio_balance(waves, sr, FLAGS.split_hz), labels,
                                          genres)
    result["features"]["real"] = summarise(
        feature_tilt(real_features, rep, FLAGS.split_hz), real_y, genres)
    result["features"]["real_train"] = summarise(
        feature_tilt(to_features(real_train), rep, FLAGS.split_hz), real_train_y, genres)
    result["features"]["gen_features"] = summarise(
        feature_tilt(fake_features, rep, FLAGS.split_hz), fake_y, genres)

    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "spectral_balance.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = [f"Run `{FLAGS.train_dir}` at {result['images_seen']:,} images; {n} held-out real "
             f"and {n} generated clips per genre (latent seed {FLAGS.seed}).", "",
             f"| genre | tilt of the features, dB (>{FLAGS.split_hz / 1000:g} kHz minus "
             f"<1 kHz): real / real_train / generated | " + " | ".join(
                 f"{s}: RMS dBFS / centroid Hz / >{FLAGS.split_hz / 1000:g} kHz dB"
                 for s in SETS) + " |",
             "|---|---:|" + "---:|" * len(SETS)]
    for g in genres:
        row = [g, " / ".join(f"{result['features'][s][g]['tilt_db']:.1f}"
                             for s in ("real", "real_train", "gen_features"))]
        for s in SETS:
            a = result["audio"][s][g]
            row.append(f"{a['rms_dbfs']:.1f} / {a['centroid_hz']:.0f} / "
                       f"{a['high_share_db']:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    bands = [k for k in result["audio"]["real"][genres[0]] if k.startswith("band_")]
    lines += ["", "Real / real_train / gen_if / gen_gl: the share of the power in each band "
              "(dB of the total), mean frame flatness (0 tonal, 1 white noise), level "
              "spread over time and spectral contrast:", "",
              "| genre | " + " | ".join(k[5:-3].replace("_", "-") + " Hz" for k in bands)
              + " | flatness | level spread over time, dB | spectral contrast, dB |",
              "|---|" + "---:|" * (len(bands) + 3)]
    for g in genres:
        cells = [" / ".join(f"{result['audio'][s][g][k]:.1f}" for s in SHORT_SETS)
                 for k in bands]
        for key, fmt in (("flatness", ".3f"), ("level_spread_db", ".1f"),
                         ("spectral_contrast_db", ".1f")):
            cells.append(" / ".join(f"{result['audio'][s][g][key]:{fmt}}"
                                    for s in SHORT_SETS))
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    with open(os.path.join(FLAGS.output_dir, "spectral_balance.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    flags.mark_flag_as_required("train_dir")
    app.run(main)
