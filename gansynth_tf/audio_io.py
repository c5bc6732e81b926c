"""Audio decoding and resampling, in the tf.data graph and in numpy.

Two backends give the same samples:

* ``tfio``: the file is read with ``tf.io.read_file`` and decoded in the graph by
  tensorflow-io's ``decode_wav`` / ``decode_flac`` / ``decode_vorbis`` / ``decode_mp3``
  (integer PCM is scaled to [-1, 1]).
* ``soundfile``: the file is decoded by libsndfile in a ``tf.numpy_function`` and
  resampled in numpy, streamed in blocks; long files take this path under either backend.

Both resample with libsoxr at its high quality (:func:`resample_np`, what
``librosa.load`` uses by default), so the two backends agree to float32 rounding.

A start-up probe (:func:`probe_audio`) reads each file's header once; it decides
which decoder a file gets (``decoder_kind``) and rejects files that are not audio,
empty or truncated. Formats tensorflow-io cannot decode (8-bit, 32-bit integer and
64-bit WAV -- it takes any 32-bit WAV for float --, WAVE_FORMAT_EXTENSIBLE, Opus,
AIFF, ...) fall back to soundfile per file.

Waves are mono float32: stereo (or more channels) is averaged.
"""

import dataclasses
import functools
import io
import math
import os
import struct

import numpy as np
import soundfile
import soxr
import tensorflow as tf
from absl import logging

# Extensions the sources consider audio; anything else in a data folder is ignored.
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                    ".aifc", ".au", ".snd", ".w64", ".rf64", ".caf")
# Audio containers and codecs neither libsndfile nor tensorflow-io decodes: a folder's files
# of these kinds are named at start-up instead of being passed over in silence.
UNDECODABLE_AUDIO_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".ape",
                                ".wv", ".tta", ".mka", ".webm", ".ac3", ".amr", ".mpc")

BACKENDS = ("tfio", "soundfile")

# Decoder kinds: which branch of the graph decoder reads a file.
KIND_SOUNDFILE = 0   # libsndfile in a numpy_function; returns audio already resampled
KIND_WAV_INT16 = 1
KIND_WAV_INT32 = 2   # 24-bit PCM, left-justified into int32 by tensorflow-io
KIND_WAV_FLOAT = 3
KIND_FLAC_INT16 = 4
KIND_FLAC_INT32 = 5
KIND_VORBIS = 6
KIND_MP3 = 7
NUM_KINDS = 8

# (soundfile format, subtype) -> tensorflow-io decoder kind. Anything else: soundfile.
_TFIO_KINDS = {
    ("WAV", "PCM_16"): KIND_WAV_INT16,
    ("WAV", "PCM_24"): KIND_WAV_INT32,
    ("WAV", "FLOAT"): KIND_WAV_FLOAT,
    ("FLAC", "PCM_16"): KIND_FLAC_INT16,
    ("FLAC", "PCM_24"): KIND_FLAC_INT32,
    ("OGG", "VORBIS"): KIND_VORBIS,
    ("MP3", "MPEG_LAYER_III"): KIND_MP3,
}



class AudioProbeError(Exception):
    """A file that cannot be used; the message is the reason, for the skip summary."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Header facts about one audio file, from :func:`probe_audio`."""
    path: str
    format: str        # soundfile major format, e.g. "WAV", "FLAC", "OGG", "MP3"
    subtype: str       # e.g. "PCM_16", "PCM_24", "FLOAT", "VORBIS", "MPEG_LAYER_III"
    sample_rate: int
    frames: int
    channels: int

    @property
    def seconds(self):
        return self.frames / float(self.sample_rate)


def is_audio_path(path):
    """True for a visible file whose extension is a known audio one."""
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS)


# ----------------------------------------------------------------------------- tensorflow-io


@functools.lru_cache(maxsize=None)
def _load_tfio():
    """Imports tensorflow_io and runs one decode op; None (with the reason logged) if not."""
    try:
        import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel
        # Importing can succeed while the ops fail to load (TF/tfio version mismatch),
        # so decode a tiny WAV now rather than fail inside the input pipeline.
        buf = io.BytesIO()
        soundfile.write(buf, np.zeros(8, np.int16), 16000, format="WAV", subtype="PCM_16")
        tfio.audio.decode_wav(tf.constant(buf.getvalue()), dtype=tf.int16)
        return tfio
    except Exception as e:  # pylint: disable=broad-except
        logging.warning("tensorflow-io is not usable (%s: %s); decoding audio with "
                        "soundfile instead (--audio_backend=soundfile).", type(e).__name__, e)
        return None


def tfio_available():
    """Whether the tensorflow-io backend can be used in this process."""
    return _load_tfio() is not None


def resolve_backend(backend):
    """Returns the backend actually used: 'tfio' falls back to 'soundfile' if unusable."""
    if backend not in BACKENDS:
        raise ValueError(f"--audio_backend={backend!r}: expected one of {BACKENDS}.")
    if backend == "tfio" and not tfio_available():
        return "soundfile"
    return backend


# ----------------------------------------------------------------------------- probing


def _check_wav_truncation(path, info):
    """Raises AudioProbeError if a RIFF/WAVE file's data chunk runs past the end of file.

    libsndfile silently shortens such files, tensorflow-io fails on them; either way
    the recording is damaged, so it is skipped (the spec treats truncated as bad).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mark "size unknown" (streamed writers); not truncation.
                if chunk_size in (0, 0xFFFFFFFF):
                    return
                available = size - (pos + 8)
                if chunk_size > available:
                    frame_bytes = max(1, info.channels * _bytes_per_sample(info.subtype))
                    raise AudioProbeError(
                        f"truncated WAV: header declares {chunk_size // frame_bytes} frames, "
                        f"file holds {available // frame_bytes}")
                return
            pos += 8 + chunk_size + (chunk_size & 1)


def _bytes_per_sample(subtype):
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
            "FLOAT": 4, "DOUBLE": 8}.get(subtype, 2)


def probe_audio(path):
    """Reads one file's header. Returns AudioInfo; raises AudioProbeError(reason) if bad."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise AudioProbeError(f"unreadable: {e.strerror or e}") from e
    if size == 0:
        raise AudioProbeError("empty file (0 bytes)")
    try:
        sf_info = soundfile.info(path)
    except Exception as e:  # pylint: disable=broad-except
        msg = str(e).split(":")[-1].strip() or type(e).__name__
        if "does not exist" in msg:
            # libsndfile's words when no decoder recognises the bytes; the file is there
            # (its size was read above), so they would send the user looking for it.
            msg = "no decoder recognises its contents: corrupt, or not the format its name says"
        raise AudioProbeError(f"not readable as audio ({msg})") from e
    info = AudioInfo(path=path, format=sf_info.format, subtype=sf_info.subtype,
                     sample_rate=int(sf_info.samplerate), frames=int(sf_info.frames),
                     channels=int(sf_info.channels))
    if info.frames <= 0:
        raise AudioProbeError("holds no audio (0 frames)")
    if info.sample_rate <= 0 or info.channels <= 0:
        raise AudioProbeError(f"invalid header (rate {info.sample_rate}, "
                              f"{info.channels} channels)")
    if info.format == "WAV":
        _check_wav_truncation(path, info)
    return info


def decoder_kind(info, backend, target_rate):
    """Which decoder reads a file under `backend`; KIND_SOUNDFILE is the per-file fallback.

    Files whose whole decoded audio (float32, every channel, at the file's rate) would pass
    STREAM_ABOVE_MB go to soundfile, which streams them (:func:`load_audio_np`):
    tensorflow-io decodes a file whole, and a long stereo track at 48 kHz is gigabytes.
    """
    del target_rate  # every pair of rates resamples the same way
    if backend != "tfio":
        return KIND_SOUNDFILE
    if info.frames * info.channels * 4 > STREAM_ABOVE_MB * 2**20:
        return KIND_SOUNDFILE
    return _TFIO_KINDS.get((info.format, info.subtype), KIND_SOUNDFILE)


# Files decoding to more than this (float32, all channels, native rate) are streamed by
# soundfile rather than decoded whole by tensorflow-io.
STREAM_ABOVE_MB = 64
STREAM_BLOCK_FRAMES = 1 << 16

# ----------------------------------------------------------------------------- resampling


def resampling_factors(rate_in, rate_out):
    """(up, down): the reduced ratio rate_out / rate_in."""
    g = math.gcd(int(rate_in), int(rate_out))
    return int(rate_out) // g, int(rate_in) // g


def resampled_length(n, rate_in, rate_out):
    """Samples after resampling n samples: n * rate_out / rate_in rounded (as soxr does)."""
    up, down = resampling_factors(rate_in, rate_out)
    return (2 * int(n) * up + down) // (2 * down)


def resample_np(wave, rate_in, rate_out):
    """Resamples mono float32 [n] with libsoxr at its high quality (librosa's default).

    soxr's HQ recipe: 20-bit precision, linear phase. It releases the GIL, so tf.data's
    parallel map resamples on every core.
    """
    wave = np.asarray(wave, np.float32)
    if int(rate_in) == int(rate_out):
        return wave
    return soxr.resample(wave, int(rate_in), int(rate_out), quality="HQ").astype(np.float32)


def resample_tf(wave, rate_in, rate_out):
    """:func:`resample_np` on a mono float32 tensor [n], inside a graph (tf.data maps)."""
    wave = tf.convert_to_tensor(wave, tf.float32)
    if int(rate_in) == int(rate_out):
        return wave
    out = tf.numpy_function(lambda w: resample_np(w, rate_in, rate_out), [wave], tf.float32,
                            stateful=False)
    return tf.ensure_shape(out, [None])


# ----------------------------------------------------------------------------- decoding


class _GrowingBuffer:
    """Appends float32 pieces into one preallocated array.

    Sized from the header's frame count, the output is written in place as it is decoded,
    so a track is never held twice (pieces + their concatenation). A header that
    undercounts (some MP3s) grows the array by half again.
    """

    def __init__(self, capacity):
        self.array = np.empty(max(0, int(capacity)), np.float32)
        self.size = 0

    def append(self, piece):
        end = self.size + len(piece)
        if end > len(self.array):
            grown = np.empty(max(end, len(self.array) * 3 // 2), np.float32)
            grown[:self.size] = self.array[:self.size]
            self.array = grown
        self.array[self.size:end] = piece
        self.size = end

    def result(self):
        """The samples appended, ``[size]``; a copy only when the header overcounted."""
        if self.size == len(self.array):
            return self.array
        return self.array[:self.size].copy()


# A header frame count above this is taken as unknown (libsndfile reports SF_COUNT_MAX
# for some streams): the output then starts empty and grows.
_TRUSTED_FRAMES = 1 << 33


def load_audio_np(path, sample_rate):
    """Decodes any libsndfile-readable file to mono float32 [n] at `sample_rate`.

    Streams: blocks of STREAM_BLOCK_FRAMES are down-mixed and resampled as they are read
    into the output array, so beside the output only one block is held, however long the
    file. The samples equal those of decoding the whole file and calling
    :func:`resample_np` (libsoxr's stream and one-shot calls agree exactly; tested).
    """
    sample_rate = int(sample_rate)
    with soundfile.SoundFile(path) as f:
        rate = int(f.samplerate)
        frames = int(f.frames) if 0 < f.frames < _TRUSTED_FRAMES else 0
        out = _GrowingBuffer(resampled_length(frames, rate, sample_rate))
        stream = (None if rate == sample_rate else
                  soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ"))
        for block in f.blocks(blocksize=STREAM_BLOCK_FRAMES, dtype="float32",
                              always_2d=True):
            mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            out.append(mono if stream is None else stream.resample_chunk(mono))
        if stream is not None:
            out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    return out.result()


def _soundfile_branch(path, sample_rate):
    def read(p):
        p = p.decode("utf-8") if isinstance(p, bytes) else str(p)
        try:
            return load_audio_np(p, sample_rate)
        except Exception as e:  # pylint: disable=broad-except
            # The message reaches tf.data's ignore_errors log: name the file.
            raise ValueError(f"cannot decode {p!r}: {e}") from e
    out = tf.numpy_function(read, [path], tf.float32, stateful=False)
    return tf.ensure_shape(out, [None])


def _tfio_decode(path, kind):
    """Graph decode of one file by tensorflow-io; float32 [n, channels] in [-1, 1]."""
    tfio = _load_tfio()
    contents = tf.io.read_file(path)
    if kind == KIND_WAV_INT16:
        return tf.cast(tfio.audio.decode_wav(contents, dtype=tf.int16), tf.float32) / 32768.0
    if kind == KIND_WAV_INT32:
        return tf.cast(tfio.audio.decode_wav(contents, dtype=tf.int32), tf.float32) / 2.0**31
    if kind == KIND_WAV_FLOAT:
        return tfio.audio.decode_wav(contents, dtype=tf.float32)
    if kind == KIND_FLAC_INT16:
        return tf.cast(tfio.audio.decode_flac(contents, dtype=tf.int16), tf.float32) / 32768.0
    if kind == KIND_FLAC_INT32:
        return tf.cast(tfio.audio.decode_flac(contents, dtype=tf.int32), tf.float32) / 2.0**31
    if kind == KIND_VORBIS:
        return tf.cast(tfio.audio.decode_vorbis(contents), tf.float32)
    if kind == KIND_MP3:
        return tf.cast(tfio.audio.decode_mp3(contents), tf.float32)
    raise ValueError(f"no tensorflow-io decoder for kind {kind}")


class GraphDecoder:
    """Decodes (path, kind, rate_index) to mono float32 [n] at `sample_rate`, in a graph.

    Args:
      sample_rate: output rate in Hz.
      source_rates: the distinct native rates of files decoded by tensorflow-io;
        `rate_index` i >= 1 selects source_rates[i - 1], 0 means "no resampling"
        (used for KIND_SOUNDFILE, which resamples in numpy, and native-rate files).
      kinds: the decoder kinds that occur (only their branches are built).
    """

    def __init__(self, sample_rate, source_rates=(), kinds=(KIND_SOUNDFILE,)):
        self.sample_rate = int(sample_rate)
        self.source_rates = [int(r) for r in source_rates]
        self.kinds = sorted(set(int(k) for k in kinds))
        if any(k != KIND_SOUNDFILE for k in self.kinds) and not tfio_available():
            raise RuntimeError("tensorflow-io decoders requested but tensorflow-io is not "
                               "usable; use --audio_backend=soundfile.")

    def rate_index(self, kind, rate):
        """The rate_index to store for a file of `kind` at native `rate`."""
        if kind == KIND_SOUNDFILE or int(rate) == self.sample_rate:
            return 0
        return self.source_rates.index(int(rate)) + 1

    def __call__(self, path, kind, rate_index):
        branches = {}
        for k in self.kinds:
            if k == KIND_SOUNDFILE:
                branches[k] = functools.partial(_soundfile_branch, path, self.sample_rate)
            else:
                branches[k] = functools.partial(self._tfio_mono, path, k)
        if len(branches) == 1:
            wave = next(iter(branches.values()))()
        else:
            # switch_case wants branch indices 0..m-1: map the kinds that occur onto them.
            slot = np.zeros(NUM_KINDS, np.int32)
            slot[self.kinds] = np.arange(len(self.kinds))
            index = tf.gather(tf.constant(slot), tf.cast(kind, tf.int32))
            wave = tf.switch_case(index, [branches[k] for k in self.kinds])
        wave = tf.ensure_shape(wave, [None])
        if not self.source_rates:
            return wave
        rate_branches = [lambda: wave] + [
            functools.partial(resample_tf, wave, r, self.sample_rate)
            for r in self.source_rates]
        out = tf.switch_case(tf.cast(rate_index, tf.int32), rate_branches)
        return tf.ensure_shape(out, [None])

    @staticmethod
    def _tfio_mono(path, kind):
        audio = _tfio_decode(path, kind)
        return tf.reduce_mean(audio, axis=1)


def read_wave(path, sample_rate=16000, backend="soundfile"):
    """Eagerly decodes one file to mono float32 numpy [n] at `sample_rate`.

    With backend 'tfio' the file goes through the same graph decoder the pipeline
    uses (falling back to soundfile for formats tensorflow-io cannot read).
    """
    backend = resolve_backend(backend)
    info = probe_audio(path)
    kind = decoder_kind(info, backend, sample_rate)
    if kind == KIND_SOUNDFILE:
        return load_audio_np(path, sample_rate)
    rates = [] if info.sample_rate == sample_rate else [info.sample_rate]
    decoder = GraphDecoder(sample_rate, rates, [kind])
    return decoder(tf.constant(path), tf.constant(kind),
                   tf.constant(decoder.rate_index(kind, info.sample_rate))).numpy()
