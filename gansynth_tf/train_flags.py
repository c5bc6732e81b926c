"""The training command's flags, defined once on absl's FLAGS when this module is imported.

Grouped as run, data (``datasets.define_data_flags``), representation, model, optimisation,
performance and scale. The loss flags take their defaults from ``losses.LossConfig``.
"""

from absl import flags

from gansynth_tf import (
    augment,
    datasets,
    distribution,
    losses,
    networks,
    normalizers,
    precision,
)

FLAGS = flags.FLAGS

# ---- run
# The loss flags' defaults are LossConfig's: one place for them.
_LOSS_DEFAULTS = losses.LossConfig()

flags.DEFINE_string("train_dir", None, "Directory for checkpoints, TensorBoard logs, the "
                    "resolved flags, genre map and export. Rerunning with the same "
                    "--train_dir resumes from its last checkpoint.")
flags.DEFINE_integer("seed", 0, "Seed for weights, latents and data order.")
flags.DEFINE_boolean("deterministic", False, "Reproducible runs: TensorFlow's op determinism "
                     "and a data pipeline that keeps its order, so two runs with the same "
                     "--seed end with the same weights; slower (see README.md).")
flags.DEFINE_integer("max_steps", None, "Stop after this many training steps in total "
                     "(counting steps before a resume); for smoke runs. Default: train to "
                     "--total_images.")
flags.DEFINE_integer("total_images", None, "Images (clips) to train on in total. Default: "
                     "the end of the progressive schedule (all stages' stable and transition "
                     "phases). GANSynth: 11M.")
flags.DEFINE_float("time_budget_minutes", 0.0, "Wall-clock budget of the whole run, start "
                   "to export, on this machine (0: none). Before the first step each stage's "
                   "cost is measured; if the schedule would not fit, every phase and "
                   "--total_images are scaled down by one factor, and the final stage stops "
                   "when the budget is spent. The plan is kept in <train_dir>/budget.json.",
                   lower_bound=0.0)
flags.DEFINE_integer("steps_per_epoch", 100, "Steps per Keras epoch (one progress line).")
flags.DEFINE_integer("checkpoint_every_steps", 200, "Save a checkpoint every N steps (and at "
                     "every stage change and at the end).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep (oldest deleted first).")
flags.DEFINE_integer("summary_every_steps", 20, "Write TensorBoard scalars every N steps.")
flags.DEFINE_integer("audio_summary_every_steps", 500, "Write generated audio and "
                     "spectrogram images per genre to TensorBoard every N steps (0: never); "
                     "see docs/tensorboard.md.")
flags.DEFINE_integer("audio_summary_samples", 2, "Clips per genre drawn in each spectrogram "
                     "image: the first clips of the genre's audio track (which holds at "
                     "least this many), from fixed latents so progress is seen and heard on "
                     "the same seeds.", lower_bound=1)
flags.DEFINE_float("audio_summary_seconds", 5.0, "Length of each genre's audio summary: clips "
                   "from different fixed latents joined by short crossfades until the track "
                   "is at least this long (0: --audio_summary_samples clips).",
                   lower_bound=0.0)
flags.DEFINE_boolean("export_at_end", True, "Write a SavedModel to <train_dir>/export when "
                     "training finishes.")
flags.DEFINE_integer("verbose", 1, "Progress over the whole run (images seen of the "
                     "target, stage, alpha, images/s, ETA) every --steps_per_epoch steps: 0 "
                     "none, 1 progress lines, 2 progress lines with the losses.")

# ---- data (names match datasets.DataConfig)
datasets.define_data_flags(flags.FLAGS)
# Representation defaults match the default (quickstart) model; flags/gansynth_hires.cfg
# sets GANSynth's 16 kHz / 64000 / 128x1024 / 0.75.
flags.DEFINE_integer("sample_rate", 8000, "Model sample rate in Hz; audio is resampled.")
flags.DEFINE_integer("audio_length", 4096, "Samples per training clip (GANSynth: 64000 = 4 s "
                     "at 16 kHz); long tracks are cut into windows of this length.")

# ---- representation
flags.DEFINE_list("spec_shape", ["32", "128"], "Spectrogram (frames, bins) at full "
                  "resolution; bins a power of two, nfft = 2 * bins. Must equal the last "
                  "--resolutions entry.")
flags.DEFINE_float("overlap", 0.5, "STFT frame overlap (hop = nfft * (1 - overlap)); "
                   "GANSynth: 0.75.")
flags.DEFINE_enum("spectrogram", "mel", ["mel", "linear"], "Log-magnitude + IF on a mel "
                  "(GANSynth's best) or linear frequency axis.")
flags.DEFINE_enum("mel_inversion", "refined", ["refined", "magenta"], "Mel-to-audio inverse "
                  "for summaries, generation and export: ours (NNLS + Griffin-Lim) or "
                  "GANSynth's exact (fast, lossy).")
flags.DEFINE_enum("normalizer", "minmax", list(normalizers.NORMALIZERS), "Feature "
                  "normaliser: min/max over --normalizer_examples clips per channel "
                  "(minmax) or per channel and bin (minmax_freq), GANSynth's constants "
                  "(prespecified), or none.")
flags.DEFINE_integer("normalizer_examples", 512, "Clips used to fit a min/max normaliser.")

# ---- model
flags.DEFINE_enum("model", "quickstart", ["quickstart", "hires", "custom"], "Network size: "
                  "GANSynth's hi-res (2x16 -> 128x1024), the small CPU quickstart, or custom "
                  "(--resolutions and --channels).")
flags.DEFINE_list("resolutions", None, "Custom schedule as TxF entries, low to high, e.g. "
                  "4x16,8x32,16x64,32x128 (--model=custom).")
flags.DEFINE_list("channels", None, "Custom channels per stage for both networks "
                  "(--model=custom), e.g. 128,96,64,32.")
flags.DEFINE_integer("latent_dim", None, "Latent size (default: 256 hires, 64 quickstart).")
flags.DEFINE_boolean("genre_bias", False, "Generator: add a learned per-genre bias to every "
                     "conv output (genre information in every block, not only at the input).")
flags.DEFINE_boolean("modulation", False, "Generator: StyleGAN2's modulated, demodulated "
                     "convolutions in every block, their style a two-layer mapping of the "
                     "latent and the genre (instead of pixel norm).")
flags.DEFINE_boolean("skip_outputs", False, "Generator: output the sum of every stage's "
                     "to-spectrogram output, upsampled (StyleGAN2's skip generator), instead "
                     "of the last stage's alone.")
flags.DEFINE_enum("skip_upsampling", "nearest", list(networks.SKIP_UPSAMPLING_MODES),
                  "With --skip_outputs: how the skip path's sum is upsampled between stages "
                  "(bilinear gives the later stages a smooth base instead of blocks).")
flags.DEFINE_enum("gen_time_padding", "zeros", list(networks.TIME_PADDING_MODES),
                  "Generator: how its 3x3 convs pad the time axis. zeros is GANSynth's; "
                  "reflect mirrors the edge frames, so the first and last frames are drawn "
                  "like the rest (zero padding leaves loud broadband edges on generated "
                  "clips).")
flags.DEFINE_enum("conditioning", "acgan", list(networks.CONDITIONING_MODES), "Genre "
                  "conditioning of the discriminator: auxiliary classifier (AC-GAN) or "
                  "projection (plus the classifier head).")

# ---- optimisation
flags.DEFINE_integer("batch_size", 16, "Global batch size (split across replicas).")
flags.DEFINE_float("g_learning_rate", 8e-4, "Generator Adam learning rate (GANSynth: 8e-4).")
flags.DEFINE_float("d_learning_rate", 8e-4, "Discriminator Adam learning rate.")
flags.DEFINE_float("adam_beta1", 0.0, "Adam beta1 (GANSynth: 0).")
flags.DEFINE_float("adam_beta2", 0.99, "Adam beta2 (GANSynth: 0.99).")
flags.DEFINE_enum("loss", _LOSS_DEFAULTS.kind, list(losses.ADVERSARIAL_LOSSES),
                  "Adversarial loss: GANSynth's "
                  "WGAN-GP (--gp_weight, --drift_weight) or the non-saturating logistic loss "
                  "with the R1 penalty on reals (--r1_gamma).")
flags.DEFINE_float("r1_gamma", _LOSS_DEFAULTS.r1_gamma,
                   "R1 weight gamma (loss += gamma / 2 * ||grad D(real)||^2) "
                   "with --loss=nonsaturating.", lower_bound=0.0)
flags.DEFINE_float("penalty_fraction", _LOSS_DEFAULTS.penalty_fraction,
                   "Fraction of each batch the gradient penalty "
                   "(GP or R1) is computed on, weighted up to the whole batch: the double "
                   "backprop is the costliest part of a step.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("consistency_weight", _LOSS_DEFAULTS.consistency_weight,
                   "Weight of the phase-consistency term: at the "
                   "final stage the generator also pays the mean |log-magnitude of the audio "
                   "its own IF gives - the log-magnitude it drew| (normalised units); 0 = off.",
                   lower_bound=0.0)
flags.DEFINE_float("dynamics_weight", _LOSS_DEFAULTS.dynamics_weight,
                   "Weight of the temporal-dynamics term: the "
                   "generator also pays the squared gap between its clips' and the same "
                   "genre's real clips' contrast and flux over time of the band-averaged "
                   "log-magnitude (gan.dynamics); 0 = off.", lower_bound=0.0)
flags.DEFINE_float("gp_weight", _LOSS_DEFAULTS.gp_weight,
                   "WGAN-GP gradient penalty weight.")
flags.DEFINE_float("drift_weight", _LOSS_DEFAULTS.drift_weight,
                   "Weight of E[D(real)^2].")
flags.DEFINE_float("ac_weight", _LOSS_DEFAULTS.ac_weight,
                   "Weight of the genre classifier cross-entropy "
                   "(GANSynth's best: 10).")
flags.DEFINE_float("mode_seeking_weight", _LOSS_DEFAULTS.mode_seeking_weight,
                   "Weight of the MSGAN mode-seeking term "
                   "1 / (mean|G(z1,c)-G(z2,c)| / mean|z1-z2| + 1e-5); 0 turns it off.")
flags.DEFINE_list("augment", list(_LOSS_DEFAULTS.augment),
                  "Differentiable augmentations of every critic input, real and generated "
                  "(DiffAugment, for small datasets), applied in the order given: "
                  f"{', '.join(sorted(augment.AUGMENTATIONS))}; empty = none.")
flags.DEFINE_float("ema_decay", 0.999, "Decay of the generator weights' moving average "
                   "(what sampling and export use).")
flags.DEFINE_float("ema_rampup", 0.05, "Cap the moving average's half-life at this fraction "
                   "of the images seen so far (StyleGAN2's ramp-up), so that short runs do "
                   "not sample a stale average; 0 = plain --ema_decay.", lower_bound=0.0)
flags.DEFINE_integer("stable_images", 800_000, "Images per stable phase (GANSynth: 800k).")
flags.DEFINE_integer("transition_images", 800_000, "Images per fade-in phase (GANSynth: "
                     "800k).")

# ---- performance and scale
flags.DEFINE_boolean("jit_compile", False, "Compile the train step with XLA.")
flags.DEFINE_boolean("mixed_precision", False, "Same as --precision=mixed_float16 (float16 "
                     "compute with loss scaling, for GPUs).")
flags.DEFINE_enum("precision", "float32", list(precision.PRECISIONS), "Compute precision "
                  "(variables stay float32): mixed_bfloat16 halves activation memory and is "
                  "faster on CPUs with native bfloat16 (AVX512_BF16, AMX); auto = that on "
                  "such a CPU without a GPU, float32 otherwise.")
flags.DEFINE_enum("distribution", "none", list(distribution.KINDS), "tf.distribute "
                  "strategy: one device, MirroredStrategy over local GPUs, or "
                  "MultiWorkerMirroredStrategy over machines (TF_CONFIG).")
flags.DEFINE_boolean("features_on_device", None, "Compute the spectral features (STFT, "
                     "mel, IF, normalisation) inside the train step on the accelerator; the "
                     "input pipeline then only decodes and cuts waves on the host. A "
                     "placement choice: the features are the same, and a run may resume "
                     "with either value. Default: on when TensorFlow sees a GPU.")
