"""The resolution schedule both progressive networks are built from, and its presets.

A :class:`NetworkConfig` is plain data (JSON via ``to_dict`` / ``from_dict``, saved as a
run's network.json): the (time, freq) resolution of every stage, each an integer multiple
of the previous one, per-stage channel counts, and the conditioning. The presets are
GANSynth's "hi-res" schedule (:func:`hires_config`) and a small CPU one
(:func:`quickstart_config`). The networks themselves are in :mod:`gansynth_tf.networks`.
"""
import dataclasses
from typing import Tuple

CONDITIONING_MODES = ("acgan", "projection")
SKIP_UPSAMPLING_MODES = ("nearest", "bilinear")
TIME_PADDING_MODES = ("zeros", "reflect")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Resolution schedule and sizes shared by the generator and the discriminator.

    Attributes:
      resolutions: ``[(time, freq), ...]`` per stage, low to high; each is an integer
        multiple (per axis) of the previous one.
      gen_channels: generator feature channels per stage (same length as resolutions).
      disc_channels: discriminator channels per stage; the block at stage ``b`` maps
        ``disc_channels[b]`` to ``disc_channels[b - 1]`` while halving the resolution.
      num_genres: number of genre classes (one-hot conditioning width).
      latent_dim: size of the Gaussian latent vector z.
      spec_channels: channels of the output spectrogram (2: log-magnitude and IF).
      mbstd_group_size: group size of the discriminator's minibatch-stddev layer.
      conditioning: ``'acgan'`` (auxiliary genre classifier head) or ``'projection'``
        (the classifier head plus a projection term ``<embed(genre), features>`` added to
        the real/fake score).
      genre_bias: the generator adds a learned per-genre bias to every conv output (see
        :class:`~gansynth_tf.layers.GenreBias`), besides reading the genre with z.
      modulation: the generator's blocks use StyleGAN2's modulated convolutions
        (:class:`~gansynth_tf.layers.ModulatedConv2D`) driven by a style from a two-layer
        mapping of ``(z, genre)``, with demodulation in place of pixel norm: the latent and
        the genre act on every block, not only on the input.
      skip_outputs: the generator's output is the sum of every stage's to-spectrogram
        output, each upsampled to the current resolution, before the tanh (StyleGAN2's
        "skip" generator), instead of the last stage's alone: later stages add detail to
        what the earlier ones drew.
      skip_upsampling: how the skip path brings the running sum up a stage, one of
        ``SKIP_UPSAMPLING_MODES``: ``'nearest'`` (each coarse cell a block) or
        ``'bilinear'`` (StyleGAN2's choice: the coarse stages give a smooth base).
        Anything but nearest needs ``skip_outputs``; the plain generator's fade-in
        is nearest.
      gen_time_padding: how the generator's 3x3 convs pad the time axis, one of
        ``TIME_PADDING_MODES``: ``'zeros'`` (GANSynth's 'same' padding) or ``'reflect'``
        (the frequency axis keeps zeros). Needs every stage at least 2 frames long.
    """

    resolutions: Tuple[Tuple[int, int], ...]
    gen_channels: Tuple[int, ...]
    disc_channels: Tuple[int, ...]
    num_genres: int
    latent_dim: int = 256
    spec_channels: int = 2
    mbstd_group_size: int = 4
    conditioning: str = "acgan"
    genre_bias: bool = False
    modulation: bool = False
    skip_outputs: bool = False
    skip_upsampling: str = "nearest"
    gen_time_padding: str = "zeros"

    def __post_init__(self):
        # Normalise JSON-decoded lists to tuples so configs compare equal after a round trip.
        object.__setattr__(
            self, "resolutions", tuple(tuple(int(v) for v in r) for r in self.resolutions)
        )
        object.__setattr__(self, "gen_channels", tuple(int(c) for c in self.gen_channels))
        object.__setattr__(self, "disc_channels", tuple(int(c) for c in self.disc_channels))
        object.__setattr__(self, "genre_bias", bool(self.genre_bias))
        object.__setattr__(self, "modulation", bool(self.modulation))
        object.__setattr__(self, "skip_outputs", bool(self.skip_outputs))
        n = len(self.resolutions)
        if n < 1:
            raise ValueError("resolutions must contain at least one stage")
        if any(len(r) != 2 or min(r) < 1 for r in self.resolutions):
            raise ValueError(
                f"resolutions must be positive (time, freq) pairs, got {self.resolutions}"
            )
        if len(self.gen_channels) != n or len(self.disc_channels) != n:
            raise ValueError(
                f"need one channel count per stage ({n}); got gen {len(self.gen_channels)}, "
                f"disc {len(self.disc_channels)}"
            )
        for prev, cur in zip(self.resolutions[:-1], self.resolutions[1:]):
            if cur[0] % prev[0] or cur[1] % prev[1] or cur == prev:
                raise ValueError(f"resolution {cur} is not a larger integer multiple of {prev}")
        if self.conditioning not in CONDITIONING_MODES:
            raise ValueError(
                f"conditioning must be one of {CONDITIONING_MODES}, got {self.conditioning!r}"
            )
        if self.skip_upsampling not in SKIP_UPSAMPLING_MODES:
            raise ValueError(f"skip_upsampling must be one of {SKIP_UPSAMPLING_MODES}, "
                             f"got {self.skip_upsampling!r}")
        if self.skip_upsampling != "nearest" and not self.skip_outputs:
            # Saved in network.json: a config must not name an interpolation nothing uses.
            raise ValueError(f"skip_upsampling={self.skip_upsampling!r} needs skip_outputs "
                             "(the plain generator's fade-in is nearest)")
        if self.gen_time_padding not in TIME_PADDING_MODES:
            raise ValueError(f"gen_time_padding must be one of {TIME_PADDING_MODES}, "
                             f"got {self.gen_time_padding!r}")
        if self.gen_time_padding == "reflect" and self.resolutions[0][0] < 2:
            raise ValueError("gen_time_padding='reflect' needs at least 2 frames at every "
                             f"stage; the first is {self.resolutions[0]}")
        if self.num_genres < 1 or self.latent_dim < 1 or self.spec_channels < 1:
            raise ValueError("num_genres, latent_dim and spec_channels must be positive")

    @property
    def num_stages(self):
        return len(self.resolutions)

    @property
    def final_resolution(self):
        return self.resolutions[-1]

    def stage_factor(self, stage):
        """(time, freq) up-sampling factor from stage ``stage - 1`` to ``stage``."""
        (t0, f0), (t1, f1) = self.resolutions[stage - 1], self.resolutions[stage]
        return (t1 // t0, f1 // f0)

    def output_shape(self, stage=None):
        """Spectrogram shape ``(time, freq, spec_channels)`` at ``stage`` (default final)."""
        t, f = self.resolutions[self.num_stages - 1 if stage is None else stage]
        return (t, f, self.spec_channels)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["resolutions"] = [list(r) for r in self.resolutions]
        d["gen_channels"] = list(self.gen_channels)
        d["disc_channels"] = list(self.disc_channels)
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def gansynth_channels(num_stages, fmap_base=4096, fmap_max=256):
    """GANSynth's channel rule min(fmap_base / 2^b, fmap_max) for blocks b = 1..num_stages."""
    return tuple(min(fmap_base // 2**b, fmap_max) for b in range(1, num_stages + 1))


def hires_config(num_genres, latent_dim=256, conditioning="acgan"):
    """GANSynth's best ("hi-res") schedule: 2x16 doubled 6 times to 128x1024, 7 stages.

    Channels (256, 256, 256, 256, 128, 64, 32) for both networks.
    """
    resolutions = tuple((2 * 2**s, 16 * 2**s) for s in range(7))
    channels = gansynth_channels(7)
    return NetworkConfig(
        resolutions=resolutions,
        gen_channels=channels,
        disc_channels=channels,
        num_genres=num_genres,
        latent_dim=latent_dim,
        conditioning=conditioning,
    )


def quickstart_config(num_genres, latent_dim=64, conditioning="acgan"):
    """Small CPU schedule: 4x16 -> 8x32 -> 16x64 -> 32x128 (4 stages).

    32x128 with overlap 0.5 is 0.5 s of 8 kHz audio (flags/quickstart.cfg): long enough to
    hear a genre's timbre and a beat. Channels (64, 48, 32, 16) shrink as the area grows so
    that every stage costs about the same; one step at 32x128 with batch 16 takes ~0.3 s on
    two CPU cores.
    """
    return NetworkConfig(
        resolutions=((4, 16), (8, 32), (16, 64), (32, 128)),
        gen_channels=(64, 48, 32, 16),
        disc_channels=(64, 48, 32, 16),
        num_genres=num_genres,
        latent_dim=latent_dim,
        conditioning=conditioning,
    )
