"""A web demo: pick a genre (or a blend of two), a seed, the truncation and a length; hear,
see and download the piece.

    python -m gansynth_tf.demo --model=quickstart [--host=127.0.0.1] [--port=7860]
    python -m gansynth_tf.demo --export_dir=RUN/export
    python -m gansynth_tf.demo --train_dir=RUN

Needs the `demo` extra (`pip install -e .[demo]`: Gradio, see requirements-demo.txt). The
page (Gradio Blocks) has a genre, an optional second genre with a blend slider, the seed,
the truncation psi and the duration; Generate shows an audio player, the spectrogram and a
link to the WAV. docs/demo.md says more.

Every piece is made like `generate --duration`: clips along a slerp latent walk joined by
equal-power crossfades (gansynth_tf/longform.py), from the model's clip generator loaded by
generate.load_sampler, so a train_dir, an export and a shipped model all work, the latents
can be truncated (z' = psi * z) and the genre condition can be any mix of two genres. With
psi 1 and no blend it is the SavedModel's `generate_long(genre, seed, seconds)` piece.
`render` does the work without a browser; `build_app` wraps it in the page.
"""

import copy
import functools
import os
import tempfile
import time

import numpy as np
from absl import flags

from gansynth_tf import cli, export, generate, longform, models, summaries

DEFAULT_PORT = 7860
# Longest piece the page offers: a minute of 8 kHz audio takes ~2 s on 2 CPU cores.
MAX_SECONDS = 60.0
DEFAULT_SECONDS = 5.0
# Truncation slider range: psi 0 is the mean latent (one sound per genre), above 1 samples
# beyond the training distribution.
MAX_TRUNCATION = 1.5
# The second-genre dropdown's "no blend" entry.
NO_SECOND_GENRE = "(none)"


# ----------------------------------------------------------------------------- rendering


def genre_mix(sampler, genre, genre2=None, blend=0.0):
    """The genre condition float32 [num_genres]: (1 - blend) one_hot(genre) + blend
    one_hot(genre2); genre alone (one-hot) when genre2 is None, "" or NO_SECOND_GENRE.

    Raises:
      ValueError: an unknown genre (listing the model's genres) or blend outside [0, 1].
    """
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must be in [0, 1] (0: {genre} alone, 1: the second genre "
                         f"alone), got {blend}")
    eye = np.eye(sampler.num_genres, dtype=np.float32)
    (first,) = sampler.genre_ids([genre], flag="genre")
    if genre2 in (None, "", NO_SECOND_GENRE):
        return eye[first]
    (second,) = sampler.genre_ids([genre2], flag="second genre")
    return ((1.0 - blend) * eye[first] + blend * eye[second]).astype(np.float32)


def mix_parts(genres, condition):
    """[(genre, share)] of a condition [num_genres], largest share first, zeros left out."""
    order = sorted(np.flatnonzero(condition), key=lambda g: (-condition[g], g))
    return [(genres[g], float(condition[g])) for g in order]


def describe(genres, condition):
    """'jazz' or 'jazz 70% + rock 30%': what a piece's genre condition is."""
    parts = mix_parts(genres, condition)
    if len(parts) == 1:
        return parts[0][0]
    return " + ".join(f"{name} {100 * share:.0f}%" for name, share in parts)


@functools.lru_cache(maxsize=1)
def _default_output_dir():
    return tempfile.mkdtemp(prefix="gansynth-demo-")


def render(model, genre, genre2=None, blend=0.0, seed=0, truncation=1.0,
           seconds=DEFAULT_SECONDS, output_dir=None, max_seconds=MAX_SECONDS):
    """Makes one piece and writes its WAV and spectrogram PNG.

    Args:
      model: a generate.Sampler (generate.load_sampler: a shipped model, export or run).
      genre: a genre name of the model; genre2: a second one to blend in, or None.
      blend: 0..1, the second genre's share of the condition (0: genre alone).
      seed: int, the latent walk's seed (the same settings give the same piece).
      truncation: psi >= 0, every latent is scaled by it (see generate.Sampler).
      seconds: length, in (0, max_seconds].
      output_dir: where the files go (default: a temporary folder for this process); the
        names hold the settings, so asking again for one piece rewrites its files.
    Returns:
      (sample_rate int, audio float32 [round(seconds * sample_rate)] peaking at -1 dBFS,
      PNG path, WAV path (16-bit PCM of that audio)).
    Raises:
      ValueError: a bad setting, the message saying which and what is allowed.
    """
    if seed is None or not float(seed).is_integer():
        raise ValueError(f"seed must be a whole number, got {seed}")
    seed = int(seed)
    if not 0.0 <= truncation:
        raise ValueError(f"truncation must be >= 0, got {truncation}")
    if not 0.0 < seconds <= max_seconds:
        raise ValueError(f"duration must be in (0, {max_seconds:g}] seconds, got {seconds}")
    condition = genre_mix(model, genre, genre2, blend)
    # A copy, so that one request's truncation is not another's (the loaded graph is shared).
    sampler = copy.copy(model)
    sampler.truncation = float(truncation)
    raw, info = longform.long_form(sampler, seconds, None, seed, condition=condition)
    audio = generate.to_pcm_range(raw, "peak").astype(np.float32)

    output_dir = cli.make_writable_dir(output_dir or _default_output_dir(), "--output_dir")
    stems = generate.safe_names(model.genres)
    parts = mix_parts(model.genres, condition)
    mix = stems[parts[0][0]] if len(parts) == 1 else "-".join(
        f"{stems[name]}{100 * share:.0f}" for name, share in parts)
    stem = f"{mix}_seed{seed}_psi{truncation:g}_{seconds:g}s"
    # Already at -1 dBFS: "clip" writes it as it is.
    wav_path = generate.write_wav(os.path.join(output_dir, f"{stem}.wav"), audio,
                                  model.sample_rate, normalize="clip")
    title = (f"{describe(model.genres, condition)}  \u2014  seed {seed}, \u03c8 "
             f"{truncation:g}, {seconds:g} s ({info['clips']} clips)")
    png_path = os.path.join(output_dir, f"{stem}.png")
    summaries.audio_spectrogram_figure(audio, model.sample_rate, title).savefig(png_path)
    return model.sample_rate, audio, png_path, wav_path


# ----------------------------------------------------------------------------- the page


def model_summary(sampler, source):
    """Markdown: where the model is from, its genres, sample rate and clip length."""
    clip = sampler.audio_length / sampler.sample_rate
    return (f"**Model** `{source}`: {sampler.num_genres} genres "
            f"({', '.join(sampler.genres)}), {sampler.sample_rate} Hz, clips of "
            f"{sampler.audio_length} samples ({clip:.3f} s), latent size {sampler.latent_dim}, "
            f"phase `{sampler.phase}`. A piece of any length is made of clips along a smooth "
            f"latent walk, joined by crossfades.")


def build_app(sampler, source, output_dir=None, max_seconds=MAX_SECONDS):
    """The Gradio Blocks page around `render` (not launched). Needs gradio installed."""
    # Before gradio's import: it reads this at import time and would otherwise phone home.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr  # pylint: disable=import-outside-toplevel

    def on_generate(genre, genre2, blend, seed, truncation, seconds):
        start = time.perf_counter()
        try:
            sample_rate, audio, png, wav = render(sampler, genre, genre2, blend, seed,
                                                  truncation, seconds, output_dir,
                                                  max_seconds)
        except ValueError as e:
            raise gr.Error(str(e)) from None
        mix = describe(sampler.genres, genre_mix(sampler, genre, genre2, blend))
        status = (f"{mix}, seed {int(seed)}, \u03c8 "
                  f"{truncation:g}: {len(audio) / sample_rate:g} s at {sample_rate} Hz "
                  f"({len(audio)} samples), made in {time.perf_counter() - start:.1f} s.")
        return wav, png, wav, status

    # delete_cache: Gradio's copies of the served files older than an hour go, hourly.
    with gr.Blocks(title="GANSynth genre demo", delete_cache=(3600, 3600)) as app:
        gr.Markdown("# GANSynth: music by genre\n"
                    "Pick a genre, or blend two, and a seed; **Generate** makes a piece of "
                    "the length you ask for. The same settings always give the same piece.")
        gr.Markdown(model_summary(sampler, source))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                genre = gr.Dropdown(list(sampler.genres), value=sampler.genres[0],
                                    label="Genre", elem_id="genre")
                genre2 = gr.Dropdown([NO_SECOND_GENRE, *sampler.genres],
                                     value=NO_SECOND_GENRE, label="Blend with (optional)",
                                     elem_id="genre2")
                blend = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Blend",
                                  info="Share of the second genre: 0 is the first genre "
                                       "alone, 1 the second.", elem_id="blend")
                seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                truncation = gr.Slider(0.0, MAX_TRUNCATION, value=1.0, step=0.05,
                                       label="Truncation \u03c8",
                                       info="Scales every latent: below 1 more typical of "
                                            "the genre, less varied; 1 as trained.",
                                       elem_id="truncation")
                seconds = gr.Slider(0.5, max_seconds, value=min(DEFAULT_SECONDS, max_seconds),
                                    step=0.5, label="Duration (s)", elem_id="seconds")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=2):
                status = gr.Markdown("Press **Generate**.", elem_id="status")
                # The browser's own player: an <audio> whose src is the WAV itself.
                player = gr.Audio(label="Piece", type="filepath", format="wav",
                                  interactive=False, elem_id="audio", buttons=["download"],
                                  waveform_options=gr.WaveformOptions(
                                      show_recording_waveform=False))
                # The figure has its own title: a floating label would cover it.
                spectrogram = gr.Image(label="Spectrogram", show_label=False, type="filepath",
                                       interactive=False, elem_id="spectrogram",
                                       buttons=["download", "fullscreen"])
                download = gr.File(label="WAV file", interactive=False, elem_id="download")
        button.click(on_generate, [genre, genre2, blend, seed, truncation, seconds],
                     [player, spectrogram, download, status])
    return app


def launch_kwargs(host, port, output_dir):
    """gradio's launch() settings: no share link (it would tunnel out), no server-side
    rendering (it needs Node), and the render folder served."""
    import gradio as gr  # pylint: disable=import-outside-toplevel

    # The Soft theme in the system's sans-serif: its own Montserrat draws "jazz" with
    # barred z's, hard to read at the controls' size.
    theme = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                           font_mono=["ui-monospace", "monospace"])
    return {"server_name": host, "server_port": port, "share": False, "ssr_mode": False,
            "allowed_paths": [output_dir], "theme": theme, "footer_links": ["gradio"]}


# ----------------------------------------------------------------------------- CLI


def make_flags():
    fv = flags.FlagValues()
    flags.DEFINE_string("model", None, "Name of a model shipped with the package (shipped: "
                        f"{', '.join(models.available()) or 'none'}). Give this, "
                        "--export_dir or --train_dir.", flag_values=fv)
    flags.DEFINE_string("export_dir", None, "SavedModel written by gansynth_tf.export to "
                        "serve.", flag_values=fv)
    flags.DEFINE_string("train_dir", None, "Training run to serve (the EMA generator of its "
                        "latest checkpoint).", flag_values=fv)
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every "
                        "interface, to reach the page from other machines).", flag_values=fv)
    flags.DEFINE_integer("port", DEFAULT_PORT, "Port to listen on.", lower_bound=1,
                         upper_bound=65535, flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Folder for the WAVs and spectrograms made "
                        "(default: a new temporary folder).", flag_values=fv)
    flags.DEFINE_float("max_seconds", MAX_SECONDS, "Longest duration the page offers.",
                       lower_bound=1.0, upper_bound=export.LONG_MAX_SECONDS,
                       flag_values=fv)
    return fv


def load(fv):
    """The Sampler and a name for its source, from exactly one of the three flags.

    Raises:
      ValueError / FileNotFoundError: a message naming the flag at fault.
    """
    for flag in ("export_dir", "train_dir"):
        path = getattr(fv, flag)
        if path and not os.path.isdir(path):
            raise FileNotFoundError(f"--{flag}={path}: no such folder")
    try:
        sampler = generate.load_sampler(train_dir=fv.train_dir, export_dir=fv.export_dir,
                                        model=fv.model)
    except (ValueError, FileNotFoundError) as e:
        # A run's own messages (no genres.json, no checkpoint) name files, not the flag.
        if fv.train_dir and "--train_dir" not in str(e):
            raise type(e)(f"--train_dir={fv.train_dir}: {e}") from None
        raise
    return sampler, fv.train_dir or fv.export_dir or f"model:{fv.model}"


def main(argv=None):
    fv = make_flags()
    cli.parse_flags(fv, argv, "demo", __doc__)
    try:
        sampler, source = load(fv)
        output_dir = cli.make_writable_dir(fv.output_dir or _default_output_dir(),
                                           "--output_dir")
        app = build_app(sampler, source, output_dir, fv.max_seconds)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"demo: {e}") from None
    except ImportError as e:
        raise SystemExit(f"demo: {e.name or 'gradio'} is not installed: the demo needs the "
                         f"`demo` extra (pip install -e '.[demo]', or pip install -r "
                         f"requirements-demo.txt)") from None
    print(f"demo: serving {source} at http://{fv.host}:{fv.port} (Ctrl-C stops it)",
          flush=True)
    try:
        app.launch(**launch_kwargs(fv.host, fv.port, output_dir))
    except OSError as e:  # the port is taken, or the host is not this machine's
        raise SystemExit(f"demo: cannot serve at --host={fv.host} --port={fv.port}: "
                         f"{e}") from None
    return None


if __name__ == "__main__":
    main()
