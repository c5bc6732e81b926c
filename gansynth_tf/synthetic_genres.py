"""How each synthetic genre sounds: the instrument primitives and one recipe per genre.

A recipe ``f(rng, sample_rate, num_samples, noise) -> float64 [num_samples]`` draws
everything it varies from ``rng`` (tempo, key, mode, patterns, instrument parameters), so
two clips of one genre differ audibly while the genres stay separable on coarse
spectrograms. The primitives (oscillators, envelopes, frequency-domain filters, a noise
room, drums, metallic and additive tones) are private to the recipes. :data:`RECIPES` maps
each genre name to its recipe; the dataset API and the command that write clips are
:mod:`gansynth_tf.synthetic`.
"""

import numpy as np
import scipy.signal

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_DORIAN = (0, 2, 3, 5, 7, 9, 10)
_MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
_HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


# ----------------------------------------------------------------------------- primitives


def _hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, np.float64) - 69.0) / 12.0)


def _scale_note(root, scale, degree):
    """MIDI note of scale degree `degree` (any integer; wraps into octaves)."""
    octave, step = divmod(int(degree), len(scale))
    return root + 12 * octave + scale[step]


def _chord(root, scale, degree, size=3):
    """Stacked thirds on a scale degree: MIDI notes [size]."""
    return [_scale_note(root, scale, degree + 2 * k) for k in range(size)]


def _place(buf, sig, start):
    """Adds `sig` into `buf` from sample `start`, cropping at the end."""
    s = int(round(start))
    if s >= len(buf) or s + len(sig) <= 0:
        return
    a = max(0, -s)
    e = min(len(buf), s + len(sig))
    buf[s + a:e] += sig[a:e - s]


def _phase(freq, n, sr):
    """Phase in cycles for a constant or per-sample frequency."""
    if np.ndim(freq) == 0:
        return freq * np.arange(n) / sr
    return np.cumsum(freq) / sr


def _osc(shape, phase, duty=0.5):
    frac = phase % 1.0
    if shape == "sine":
        return np.sin(2 * np.pi * phase)
    if shape == "saw":
        return 2.0 * frac - 1.0
    if shape == "square":
        return np.where(frac < duty, 1.0, -1.0)
    if shape == "tri":
        return 4.0 * np.abs(frac - 0.5) - 1.0
    raise ValueError(shape)


def _env(n, sr, attack, decay, sustain, gate, release):
    """Attack-decay-sustain-release envelope [n]; `gate` in seconds."""
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    after = t > attack
    env[after] = sustain + (1.0 - sustain) * np.exp(-(t[after] - attack) / max(decay, 1e-4))
    off = t > gate
    env[off] *= np.exp(-(t[off] - gate) / max(release, 1e-4))
    return env


def _spectral_filter(x, sr, low=None, high=None, order=2):
    """Zero-phase Butterworth-shaped band filter applied in the frequency domain."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    gain = np.ones_like(f)
    if high is not None:
        gain /= np.sqrt(1.0 + (f / high) ** (2 * order))
    if low is not None:
        gain /= np.sqrt(1.0 + (low / np.maximum(f, 1e-3)) ** (2 * order))
    return np.fft.irfft(spec * gain, len(x))


def _reverb(x, sr, rng, t60, wet):
    """Exponentially decaying noise as a room; t60 in seconds."""
    length = int(min(t60, 2.0) * sr)
    t = np.arange(length) / sr
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / t60)
    ir = _spectral_filter(ir, sr, high=rng.uniform(2500, 5000), order=1)
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-9
    tail = scipy.signal.fftconvolve(x, ir)[:len(x)]
    return (1.0 - wet) * x + wet * tail * (np.std(x) / (np.std(tail) + 1e-9))


def _kick(sr, rng, f_hi, f_lo, decay):
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    freq = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.05))
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / decay)


def _noise_hit(noise, sr, decay, low=None, high=None, length=0.5):
    n = int(length * sr)
    burst = _spectral_filter(noise[:n], sr, low=low, high=high)
    return burst * np.exp(-np.arange(n) / (decay * sr))


def _snare(sr, rng, noise):
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    tone = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * np.exp(-t / 0.04)
    return 0.6 * tone + _noise_hit(noise, sr, rng.uniform(0.06, 0.15), low=1200, length=0.4)


def _metal(sr, rng, decay, length, partials=6, base=None):
    """Inharmonic metallic partials (ride / bell / cymbal)."""
    n = int(length * sr)
    t = np.arange(n) / sr
    base = base if base is not None else rng.uniform(350, 600)
    ratios = np.array([1.0, 1.48, 2.12, 2.79, 3.41, 4.07, 5.2, 6.3])[:partials]
    ratios = ratios * rng.uniform(0.98, 1.02, size=len(ratios))
    freqs = np.minimum(base * ratios, 0.45 * sr)
    sig = np.sin(2 * np.pi * np.outer(t, freqs) + rng.uniform(0, 6.3, len(freqs))).sum(1)
    return sig * np.exp(-t / decay) / len(freqs)


def _additive(freq, n, sr, amps, decays, inharm=0.0):
    """Sum of harmonics k=1.. with amplitude amps[k] and decay time decays[k] (s)."""
    t = np.arange(n) / sr
    out = np.zeros(n)
    for k, (a, d) in enumerate(zip(amps, decays), start=1):
        fk = freq * k * np.sqrt(1.0 + inharm * k * k)
        if fk >= 0.45 * sr:
            break
        out += a * np.sin(2 * np.pi * fk * t) * np.exp(-t / d)
    return out


# ----------------------------------------------------------------------------- genres


def _techno(rng, sr, n, noise):
    tempo = rng.uniform(118, 142)
    beat = 60.0 / tempo * sr
    step = beat / 4
    out = np.zeros(n)
    kick = _kick(sr, rng, rng.uniform(110, 190), rng.uniform(40, 58), rng.uniform(0.15, 0.4))
    hat_closed = _noise_hit(noise, sr, rng.uniform(0.01, 0.03), low=6000 * sr / 16000, length=0.1)
    hat_open = _noise_hit(noise[1000:], sr, rng.uniform(0.06, 0.15), low=5000 * sr / 16000,
                          length=0.3)
    clap = _noise_hit(noise[3000:], sr, 0.05, low=900, high=3000, length=0.25)
    steps = int(n / step) + 1
    hat_density = rng.uniform(0.3, 1.0)
    use_open = rng.random() < 0.8
    use_clap = rng.random() < 0.6
    # Bass: a 16-step pattern over a minor-key root, filtered saw.
    root = int(rng.integers(31, 43))
    bass_notes = root + np.array([0, 0, 12, 7, 3, 10, -2 + 12])
    pattern = rng.random(16) < rng.uniform(0.35, 0.8)
    pattern_notes = rng.choice(bass_notes, 16)
    gate = rng.uniform(0.4, 0.9) * step / sr
    bass_cut = rng.uniform(250, 1400)
    bass = np.zeros(n)
    stab_on = rng.random() < 0.5
    stab = np.zeros(n)
    stab_chord = root + 24 + np.array([0, 3, 7, rng.choice([10, 12])])
    stab_steps = set(rng.choice([2, 6, 10, 14, 3, 11], int(rng.integers(1, 4)), replace=False))
    for s in range(steps):
        pos = s * step
        if s % 4 == 0:
            _place(out, kick, pos)
        if rng.random() < hat_density:
            _place(out, 0.25 * hat_closed, pos)
        if use_open and s % 4 == 2:
            _place(out, 0.3 * hat_open, pos)
        if use_clap and s % 8 == 4:
            _place(out, 0.5 * clap, pos)
        if pattern[s % 16]:
            ln = int((gate + 0.05) * sr)
            ph = _phase(_hz(pattern_notes[s % 16]), ln, sr)
            _place(bass, _osc("saw", ph) * _env(ln, sr, 0.003, 0.1, 0.6, gate, 0.02), pos)
        if stab_on and (s % 16) in stab_steps:
            ln = int(0.25 * sr)
            ph = np.outer(_phase(1.0, ln, sr), _hz(stab_chord) * rng.uniform(0.998, 1.002, 4))
            _place(stab, _osc("saw", ph).sum(1) * _env(ln, sr, 0.002, 0.08, 0.0, 0.1, 0.05), pos)
    # Sidechain-style ducking after each kick: the genre's pumping envelope.
    duck = 1.0 - 0.6 * np.exp(-((np.arange(n) % beat) / sr) / 0.08)
    out += 0.5 * _spectral_filter(bass, sr, high=bass_cut, order=2) * duck
    if stab_on:
        out += 0.15 * _spectral_filter(stab, sr, high=rng.uniform(1500, 4000)) * duck
    return out


def _jazz(rng, sr, n, noise):
    tempo = rng.uniform(100, 220)
    beat = 60.0 / tempo * sr
    swing = rng.uniform(0.6, 0.7)
    root = int(rng.integers(0, 12))
    scale = _MAJOR if rng.random() < 0.6 else _DORIAN
    out = np.zeros(n)
    ride = _metal(sr, rng, rng.uniform(0.3, 0.8), 1.0, partials=8, base=rng.uniform(420, 700))
    ride += _noise_hit(noise, sr, 0.25, low=4000 * sr / 16000, length=1.0) * 0.4
    brushes = rng.random() < 0.3
    chick = _noise_hit(noise[500:], sr, 0.02, low=3000, length=0.1)
    beats = int(n / beat) + 2
    # ii-V-I-vi in the key, one chord per bar (two at fast tempi).
    progression = [1, 4, 0, 5] if rng.random() < 0.7 else [0, 5, 1, 4]
    bar_beats = 4 if tempo < 170 else 8
    bass_prev = 36 + root
    for b in range(beats):
        pos = b * beat
        chord_deg = progression[(b // bar_beats) % len(progression)]
        # Ride: "ding, ding-da" with the swung upbeat on 2 and 4.
        if brushes:
            _place(out, 0.25 * _noise_hit(noise[(b * 97) % 4000:], sr, 0.12, low=2000,
                                          high=6000 * sr / 16000, length=0.3), pos)
        else:
            _place(out, 0.35 * ride, pos)
            if b % 2 == 1:
                _place(out, 0.25 * ride, pos + swing * beat)
        if b % 2 == 1:
            _place(out, 0.2 * chick, pos)
        # Walking bass: chord tones on strong beats, passing/approach notes between.
        chord = _chord(root + 36, scale, chord_deg, 4)
        if b % 4 == 0:
            target = chord[0]
        else:
            target = bass_prev + int(rng.choice([-2, -1, 1, 2, 3, 4, -3]))
            if rng.random() < 0.5:
                target = int(rng.choice(chord))
        while target < 31:
            target += 12
        while target > 55:
            target -= 12
        bass_prev = target
        ln = int(min(beat / sr * 1.2, 0.9) * sr)
        note = _additive(_hz(target), ln, sr, [1.0, 0.5, 0.2, 0.1], [0.5, 0.25, 0.12, 0.08])
        _place(out, 0.7 * note * _env(ln, sr, 0.005, 1.0, 1.0, beat / sr * 0.95, 0.05), pos)
        # Piano comping: syncopated 7th-chord stabs (rootless-ish voicing, mid register).
        if rng.random() < 0.55:
            off = rng.choice([0.0, swing, 1.0 + swing * 0.0, swing - 1.0 + 1.0]) * beat
            voicing = [m + 60 - 12 * (m - root + 60 > 76) for m in _chord(root, scale,
                                                                             chord_deg, 4)]
            ln = int(rng.uniform(0.25, 0.8) * sr)
            vel = rng.uniform(0.15, 0.35)
            for m in voicing:
                _place(out, vel * _additive(_hz(m), ln, sr, [1.0, 0.4, 0.25, 0.1, 0.05],
                                            [0.6, 0.4, 0.3, 0.2, 0.1], inharm=1e-4), pos + off)
    return _reverb(out, sr, rng, rng.uniform(0.4, 1.0), rng.uniform(0.1, 0.3))


def _rock(rng, sr, n, noise):
    tempo = rng.uniform(90, 160)
    beat = 60.0 / tempo * sr
    eighth = beat / 2
    root = int(rng.integers(40, 52))
    scale = _MINOR if rng.random() < 0.5 else _MIXOLYDIAN
    prog = rng.choice([[0, 5, 3, 4], [0, 3, 4, 3], [0, 6, 5, 6], [0, 4, 5, 3]])
    out = np.zeros(n)
    kick = _kick(sr, rng, rng.uniform(90, 140), rng.uniform(45, 60), rng.uniform(0.12, 0.25))
    snare = _snare(sr, rng, noise)
    hat = _noise_hit(noise[2000:], sr, rng.uniform(0.02, 0.05), low=5000 * sr / 16000,
                     length=0.15)
    crash = _noise_hit(noise[5000:], sr, 0.8, low=3000, length=1.5) + \
        0.5 * _metal(sr, rng, 0.8, 1.5, partials=8, base=rng.uniform(500, 900))
    chug = rng.random() < 0.5
    gain = rng.uniform(4.0, 20.0)
    detune = rng.uniform(1.002, 1.008)
    guitar = np.zeros(n)
    bass = np.zeros(n)
    extra_kicks = rng.random(8) < rng.uniform(0.0, 0.35)
    eighths = int(n / eighth) + 1
    for e in range(eighths):
        pos = e * eighth
        if e % 4 == 0 or extra_kicks[e % 8]:
            _place(out, kick, pos)
        if e % 4 == 2:
            _place(out, 0.8 * snare, pos)
        _place(out, 0.15 * hat, pos)
        if e % 16 == 0 and rng.random() < 0.5:
            _place(out, 0.3 * crash, pos)
        bar = e // 8
        chord_root = _scale_note(root, scale, prog[bar % 4])
        if chug or e % 8 == 0:
            dur = eighth / sr * (0.6 if chug else 7.8)
            ln = int((dur + 0.1) * sr)
            power = [chord_root, chord_root + 7, chord_root + 12]
            ph = np.outer(_phase(1.0, ln, sr), _hz(power))
            tone = _osc("saw", ph).sum(1) + _osc("saw", ph * detune).sum(1)
            _place(guitar, tone * _env(ln, sr, 0.003, 0.3, 0.7, dur, 0.05), pos)
        ln = int(eighth * 0.9)
        ph = _phase(_hz(chord_root - 12), ln, sr)
        _place(bass, _osc("saw", ph) * _env(ln, sr, 0.005, 0.1, 0.7, 0.8 * ln / sr, 0.02), pos)
    guitar = np.tanh(gain * guitar / (np.max(np.abs(guitar)) + 1e-9))
    guitar = _spectral_filter(guitar, sr, low=90, high=rng.uniform(2500, 5000), order=2)
    out = 0.6 * out + 0.45 * guitar + 0.3 * _spectral_filter(bass, sr, high=500)
    return _reverb(out, sr, rng, rng.uniform(0.3, 0.8), rng.uniform(0.05, 0.2))


def _ambient(rng, sr, n, noise):
    root = int(rng.integers(36, 50))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    out = np.zeros(n)
    changes = int(rng.integers(1, 3))
    seg = n // changes
    shape = rng.choice(["saw", "sine", "tri"])
    cut = rng.uniform(350, 1600)
    for c in range(changes):
        chord = _chord(root + 12, scale, int(rng.integers(0, 7)), int(rng.integers(3, 6)))
        chord = chord + [root + int(rng.choice([0, 7, 12]))]
        ln = seg + int(1.5 * sr)
        attack = rng.uniform(0.4, 1.8)
        env = _env(ln, sr, attack, 1.0, 1.0, seg / sr, rng.uniform(0.8, 2.0))
        base = _phase(1.0, ln, sr)
        pad = np.zeros(ln)
        for m in chord:
            for d in (0.996, 1.0, 1.004):     # detuned unison: slow beating
                pad += _osc(shape, base * _hz(m) * d + rng.random())
        _place(out, pad * env, c * seg)
    lfo_rate = rng.uniform(0.1, 0.6)
    out *= 1.0 - rng.uniform(0.1, 0.5) * (0.5 + 0.5 * np.sin(
        2 * np.pi * lfo_rate * np.arange(n) / sr + rng.uniform(0, 6.3)))
    out = _spectral_filter(out, sr, high=cut, order=2)
    out /= np.max(np.abs(out)) + 1e-9
    for _ in range(int(rng.integers(0, 4))):   # sparse FM-ish bells
        m = _scale_note(root + 36, scale, int(rng.integers(0, 8)))
        ln = int(2.5 * sr)
        t = np.arange(ln) / sr
        mod = np.sin(2 * np.pi * _hz(m) * 3.5 * t) * 2.0 * np.exp(-t / 0.6)
        bell = np.sin(2 * np.pi * _hz(m) * t + mod) * np.exp(-t / rng.uniform(0.6, 1.5))
        _place(out, rng.uniform(0.1, 0.3) * bell, rng.uniform(0, max(n - 0.3 * sr, 1.0)))
    if rng.random() < 0.5:   # wind
        out += rng.uniform(0.05, 0.2) * _spectral_filter(noise[:n], sr, low=200, high=900) / (
            np.std(noise) * 2)
    return _reverb(out, sr, rng, rng.uniform(2.0, 4.0), rng.uniform(0.4, 0.7))


def _chiptune(rng, sr, n, noise):
    tempo = rng.uniform(120, 200)
    beat = 60.0 / tempo * sr
    six = beat / 4
    root = int(rng.integers(57, 69))
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    prog = rng.choice([[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 0, 4]])
    duty = float(rng.choice([0.125, 0.25, 0.5]))
    arp_rate = rng.uniform(14.0, 30.0)            # chord notes per second in the arpeggio
    out = np.zeros(n)
    steps = int(n / six) + 1
    lfsr = np.sign(noise)                          # 1-bit noise, as a noise channel
    melody_deg = int(rng.integers(0, 7))
    melody_on = rng.random(16) < rng.uniform(0.4, 0.9)
    for s in range(steps):
        pos = s * six
        bar = s // 16
        deg = int(prog[bar % 4])
        chord = _chord(root, scale, deg, 3)
        if s % 4 == 0:
            # Arpeggio over one beat: the frequency steps through the chord tones.
            ln = int(beat)
            idx = (np.arange(ln) / sr * arp_rate).astype(int) % 3
            freq = _hz(np.array(chord) - 12)[idx]
            _place(out, 0.18 * _osc("square", np.cumsum(freq) / sr, duty), pos)
            # Triangle bass, 4-bit stepped like a console's triangle channel.
            bln = int(beat * 0.9)
            bf = _hz(chord[0] - 24 + 12 * ((s // 4) % 2))
            tri = np.round(_osc("tri", _phase(bf, bln, sr)) * 7.5) / 7.5
            _place(out, 0.3 * tri, pos)
            _place(out, 0.25 * lfsr[:int(0.05 * sr)] * np.linspace(1, 0, int(0.05 * sr)), pos)
        if s % 8 == 4:
            ln = int(0.12 * sr)
            _place(out, 0.22 * lfsr[1000:1000 + ln] * np.linspace(1, 0, ln), pos)
        if melody_on[s % 16] and s % 2 == 0:
            melody_deg = int(np.clip(melody_deg + rng.integers(-2, 3), -2, 10))
            m = _scale_note(root + 12, scale, melody_deg)
            ln = int(six * 2 * 0.85)
            env = np.floor(_env(ln, sr, 0.001, 0.15, 0.5, ln / sr, 0.01) * 15) / 15
            _place(out, 0.16 * _osc("square", _phase(_hz(m), ln, sr), 0.5 if duty < 0.5 else 0.25)
                   * env, pos)
    return out


def _classical(rng, sr, n, noise):
    del noise
    tempo = rng.uniform(60, 120)
    beat = 60.0 / tempo * sr
    root = int(rng.integers(55, 67))
    scale = _MAJOR if rng.random() < 0.55 else _HARMONIC_MINOR
    vib_rate = rng.uniform(4.8, 6.5)
    vib_depth = rng.uniform(0.003, 0.008)
    cut = rng.uniform(2200, 4000)
    voices = int(rng.integers(1, 4))
    out = np.zeros(n)

    def line(base_midi, deg, durations, level):
        pos = 0.0
        buf = np.zeros(n)
        while pos < n:
            dur = float(rng.choice(durations)) * beat
            deg = int(np.clip(deg + rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]), -3, 11))
            m = _scale_note(base_midi, scale, deg)
            ln = int(dur + 0.15 * sr)
            t = np.arange(ln) / sr
            # Delayed vibrato, as a bowed string settles into the note.
            vib = 1.0 + vib_depth * np.minimum(1.0, t / 0.3) * np.sin(2 * np.pi * vib_rate * t)
            ph = np.cumsum(_hz(m) * vib) / sr
            tone = _osc("saw", ph) + 0.5 * _osc("saw", ph * 1.003)
            env = _env(ln, sr, rng.uniform(0.04, 0.15), 0.3, 0.85, dur / sr, 0.12)
            _place(buf, tone * env * level * rng.uniform(0.7, 1.0), pos)
            pos += dur
        return buf

    out += line(root + 12, int(rng.integers(0, 5)), [0.5, 1.0, 1.0, 2.0, 0.25], 1.0)
    if voices >= 2:
        out += line(root - 12, 0, [1.0, 2.0, 2.0], 0.8)
    if voices >= 3:
        out += line(root, 2, [1.0, 2.0], 0.6)
    out = _spectral_filter(out, sr, low=70, high=cut, order=2)
    # Phrase dynamics: a crescendo or diminuendo across the clip.
    out *= np.linspace(*rng.uniform(0.5, 1.0, 2), n)
    return _reverb(out, sr, rng, rng.uniform(1.2, 2.5), rng.uniform(0.25, 0.45))


RECIPES = {"ambient": _ambient, "chiptune": _chiptune, "classical": _classical,
           "jazz": _jazz, "rock": _rock, "techno": _techno}
