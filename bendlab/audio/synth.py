"""A small seeded synthesiser: the captioned musical phrases bendlab's music model is trained on (numpy only).

Every function returns float32 mono samples at `sr` Hz. Pitches are MIDI note numbers (60 = C4 = 261.6 Hz,
69 = A4 = 440 Hz), keys are the seven natural notes C..B with a mode ("major" or "minor"), tempos are in beats
per minute (one beat = a quarter note), durations in seconds. Randomness comes only from the `rng`
(`numpy.random.Generator`) handed in, so a seed gives the same audio on any machine.

    instruments  piano_note, piano_chord, piano_phrase, bass_line, bass_drone, drum_pattern, pad, bell
    captions     captioned_phrase(kind, rng): one instrument (or a mix) with its canonical caption and attributes

Timbres are chosen to be told apart by simple features: bells are inharmonic and high (spectral centroid above
1 kHz), bass is below 250 Hz, pads and drones have a slow attack and no onsets, drums are noise bursts on an
eighth-note grid (onset rate = 2 x tempo / 60 per second).

Notebook: notebooks/11_bending_music.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_choice, check_int, check_number

DEFAULT_SR = 8000  # Hz: the shipped music model's rate
NOTE_NAMES = ("C", "D", "E", "F", "G", "A", "B")  # the natural notes (keys and note names of the captions)
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}  # semitones above C
MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}  # scale steps, semitones
TEMPOS = {"slow": (70, 80, 90), "medium": (100, 110, 120), "fast": (140, 150, 160)}  # named tempos, BPM
REGISTERS = {  # octave of each instrument's notes: (low, default, high); C4 = middle C
    "piano": (3, 4, 5), "bass": (1, 2, 2), "pad": (3, 3, 4), "bell": (4, 5, 6)}
KINDS = ("piano_note", "piano_chord", "piano_phrase", "bass_line", "bass_drone", "drum_loop", "pad", "bell",
         "drums_and_bass", "piano_and_pad")  # what captioned_phrase draws


def check_sr(sr) -> int:
    """A synthesis rate, 4000..48000 Hz."""
    return check_int("sample rate", sr, 4000, 48000, accepted="e.g. 8000 Hz")


def check_key(key) -> str:
    """One of the natural notes C..B (upper case)."""
    return check_choice("key", key, NOTE_NAMES)


def check_mode(mode) -> str:
    """"major" or "minor"."""
    return check_choice("mode", mode, tuple(MODES))


def midi_hz(pitch: float) -> float:
    """Frequency in Hz of a MIDI note number (69 = A4 = 440 Hz; fractional numbers are detuned)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def note_pitch(name: str, octave: int) -> int:
    """MIDI note number of a natural note name in an octave (scientific pitch: C4 = 60, A4 = 69)."""
    return 12 * (check_int("octave", octave, 0, 8) + 1) + PITCH_CLASS[check_key(name)]


def scale_pitches(key: str, mode: str, octave: int) -> list[int]:
    """The 7 MIDI notes of `key` `mode` from the tonic in `octave` upwards."""
    tonic = note_pitch(key, octave)
    return [tonic + s for s in MODES[check_mode(mode)]]


def triad(key: str, mode: str, octave: int) -> list[int]:
    """Root, third and fifth (MIDI) of the tonic chord of `key` `mode` in `octave`."""
    s = scale_pitches(key, mode, octave)
    return [s[0], s[2], s[4]]


def _samples(seconds: float, sr: int) -> int:
    return int(round(check_number("seconds", seconds, 0, 60, low_open=True) * sr))


def _partials(f0: float, ratios, amps, decays, n: int, sr: int, phase_rng=None) -> np.ndarray:
    """Sum of sinusoids f0 x ratio with amplitude amp and exponential decay rate (1/s); partials at or above
    0.45 sr are left out (no aliasing)."""
    t = np.arange(n) / sr
    y = np.zeros(n)
    for r, a, d in zip(ratios, amps, decays):
        f = f0 * r
        if f >= 0.45 * sr:
            continue
        ph = 0.0 if phase_rng is None else phase_rng.uniform(0, 2 * np.pi)
        y += a * np.exp(-d * t) * np.sin(2 * np.pi * f * t + ph)
    return y


def _attack_release(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Linear attack (s) from 0, flat, linear release (s) to 0 at the end."""
    env = np.ones(n)
    a, r = max(1, int(attack * sr)), max(1, int(release * sr))
    env[:a] = np.linspace(0, 1, a, endpoint=False)[: n]
    env[-r:] *= np.linspace(1, 0, r)[-min(r, n):]
    return env


def _place(y: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add x into y from sample `start` (cut at y's end)."""
    if start >= len(y):
        return
    m = min(len(x), len(y) - start)
    y[start:start + m] += x[:m]


def piano_note(pitch: float, seconds: float = 1.0, sr: int = DEFAULT_SR, velocity: float = 0.8) -> np.ndarray:
    """One piano-like note of `seconds` (s) at MIDI `pitch`: 8 slightly stretched harmonics (amplitude 0.6^k),
    a 4 ms attack, higher partials decaying faster (1.5 + 0.8 k per s), a 30 ms release at the end.
    velocity: peak level 0..1."""
    sr = check_sr(sr)
    n = _samples(seconds, sr)
    k = np.arange(8)
    ratios = (k + 1) * np.sqrt(1 + 2e-4 * (k + 1) ** 2)
    y = _partials(midi_hz(pitch), ratios, 0.6 ** k, 1.5 + 0.8 * k, n, sr)
    y *= _attack_release(n, sr, 0.004, 0.03)
    return (check_number("velocity", velocity, 0, 1) * y / 2.2).astype(np.float32)


def piano_chord(key: str, mode: str, seconds: float = 2.0, sr: int = DEFAULT_SR, octave: int = 4) -> np.ndarray:
    """The tonic triad of `key` `mode` in `octave` struck together on the piano, lasting `seconds` (s)."""
    notes = [piano_note(p, seconds, sr, 0.6) for p in triad(key, mode, octave)]
    return np.sum(notes, axis=0).astype(np.float32)


def piano_phrase(key: str, mode: str, bpm: float, seconds: float = 2.0, sr: int = DEFAULT_SR, *,
                 rng: np.random.Generator, octave: int = 4) -> np.ndarray:
    """A melody in `key` `mode`: eighth notes at `bpm` (an eighth lasts 30 / bpm s), a random walk on the scale
    (steps of -2..2 degrees) starting on the tonic in `octave`, each note held for its eighth plus a little."""
    sr = check_sr(sr)
    bpm = check_number("tempo", bpm, 30, 300, accepted="beats per minute")
    n = _samples(seconds, sr)
    y = np.zeros(n)
    scale = scale_pitches(key, mode, octave) + [note_pitch(key, octave) + 12]
    step = 30.0 / bpm
    degree, t = 0, 0.0
    while t < seconds:
        p = scale[degree]
        _place(y, piano_note(p, min(step * 1.5, seconds), sr, rng.uniform(0.55, 0.85)), int(t * sr))
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
        t += step
    return y.astype(np.float32)


def _bass_tone(pitch: float, n: int, sr: int) -> np.ndarray:
    """A low saw-like tone: harmonics k = 1..12 at 1/k, rolled off above 300 Hz (a soft low-pass)."""
    f0 = midi_hz(pitch)
    k = np.arange(1, 13)
    amps = (1.0 / k) / (1 + (f0 * k / 300.0) ** 2)
    return _partials(f0, k, amps, np.zeros(len(k)), n, sr)


def bass_line(key: str, mode: str, bpm: float, seconds: float = 2.0, sr: int = DEFAULT_SR, *,
              rng: np.random.Generator, octave: int = 2) -> np.ndarray:
    """A plucked bass line in `key` `mode`: one note per beat at `bpm` (60 / bpm s), the root most often, else
    the fifth, the octave or the third, in `octave` (2: 65-123 Hz); each note decays at 4 per s."""
    sr = check_sr(sr)
    bpm = check_number("tempo", bpm, 30, 300, accepted="beats per minute")
    n = _samples(seconds, sr)
    y = np.zeros(n)
    s = scale_pitches(key, mode, octave)
    choices = [s[0], s[0], s[4], s[0] + 12, s[2]]
    beat = 60.0 / bpm
    m = int(beat * sr)
    t = np.arange(m) / sr
    env = np.exp(-4 * t) * _attack_release(m, sr, 0.005, 0.02)
    for i in range(int(math.ceil(seconds / beat))):
        p = s[0] if i == 0 else choices[rng.integers(len(choices))]
        _place(y, _bass_tone(p, m, sr) * env, int(i * beat * sr))
    return (0.9 * y).astype(np.float32)


def bass_drone(key: str, seconds: float = 2.0, sr: int = DEFAULT_SR, octave: int = 2) -> np.ndarray:
    """A sustained bass note on `key` in `octave` (2: 65-123 Hz): the saw-like bass tone with a 0.3 s attack,
    steady, a 0.1 s release; no onsets after the first."""
    sr = check_sr(sr)
    n = _samples(seconds, sr)
    y = _bass_tone(note_pitch(key, octave), n, sr) * _attack_release(n, sr, 0.3, 0.1)
    return (0.9 * y).astype(np.float32)


def _kick(sr: int) -> np.ndarray:
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    f = 45 + 90 * np.exp(-t / 0.03)  # pitch sweep 135 -> 45 Hz
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.06) * _attack_release(n, sr, 0.001, 0.1)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.18 * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n) * np.exp(-t / 0.05)
    return (0.5 * noise + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.04)) * _attack_release(n, sr, 0.001, 0.08)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.05 * sr)
    t = np.arange(n) / sr
    noise = np.diff(rng.standard_normal(n + 1))  # first difference: a high-passed noise
    return 0.35 * noise * np.exp(-t / 0.012) * _attack_release(n, sr, 0.001, 0.02)


def drum_pattern(bpm: float, seconds: float = 2.0, sr: int = DEFAULT_SR, *, rng: np.random.Generator) -> np.ndarray:
    """A drum loop at `bpm`: a closed hi-hat on every eighth note (30 / bpm s apart), a kick on beats 1 and 3
    (sometimes also on the "and" of 3), a snare on beats 2 and 4; so 2 x bpm / 60 onsets a second."""
    sr = check_sr(sr)
    bpm = check_number("tempo", bpm, 30, 300, accepted="beats per minute")
    n = _samples(seconds, sr)
    y = np.zeros(n)
    eighth = 30.0 / bpm
    extra_kick = rng.random() < 0.5
    for i in range(int(math.ceil(seconds / eighth))):
        at = int(round(i * eighth * sr))
        _place(y, _hat(sr, rng) * rng.uniform(0.7, 1.0), at)
        pos = i % 8  # eighth within a 4/4 bar
        if pos in (0, 4) or (extra_kick and pos == 5):
            _place(y, _kick(sr), at)
        if pos in (2, 6):
            _place(y, _snare(sr, rng), at)
    return (0.8 * y).astype(np.float32)


def pad(key: str, mode: str, seconds: float = 2.0, sr: int = DEFAULT_SR, octave: int = 3) -> np.ndarray:
    """A sustained pad: the tonic triad of `key` `mode` in `octave`, each note two detuned (+-6 cents) soft saw
    voices (harmonics to 1.5 kHz at 1/k^1.5), a 0.5 s attack, steady, a 0.2 s release: no onsets."""
    sr = check_sr(sr)
    n = _samples(seconds, sr)
    y = np.zeros(n)
    k = np.arange(1, 16)
    for p in triad(key, mode, octave):
        for detune in (-0.06, 0.06):
            f0 = midi_hz(p + detune)
            amps = (1.0 / k ** 1.5) / (1 + (f0 * k / 1500.0) ** 4)
            y += _partials(f0, k, amps, np.zeros(len(k)), n, sr)
    y *= _attack_release(n, sr, 0.5, 0.2)
    return (0.3 * y).astype(np.float32)


BELL_RATIOS = (1.0, 2.0, 2.76, 3.0, 4.07, 5.4)  # partials of a bell relative to its nominal pitch (inharmonic)


def bell(pitch: float, seconds: float = 2.0, sr: int = DEFAULT_SR) -> np.ndarray:
    """A struck bell at MIDI `pitch`: inharmonic partials (BELL_RATIOS) with a 2 ms attack and long decays (the
    fundamental 1.2 per s, higher partials faster), partials at or above 0.45 sr left out."""
    sr = check_sr(sr)
    n = _samples(seconds, sr)
    amps = (1.0, 0.6, 0.5, 0.3, 0.25, 0.15)
    decays = (1.2, 1.6, 2.2, 2.6, 3.5, 4.5)
    y = _partials(midi_hz(pitch), BELL_RATIOS, amps, decays, n, sr)
    y *= _attack_release(n, sr, 0.002, 0.03)
    return (0.5 * y).astype(np.float32)


@dataclass
class Phrase:
    """One synthesised phrase: `audio` (float32 mono at `sr` Hz), its canonical `caption`, and the attributes
    it was drawn with (kind, key, mode, octave, register word, bpm, tempo word: whichever apply)."""
    audio: np.ndarray
    sr: int
    caption: str
    attributes: dict = field(default_factory=dict)


def _register(rng: np.random.Generator, instrument: str) -> tuple[str, int]:
    low, mid, high = REGISTERS[instrument]
    word = ("low", "", "high")[rng.integers(3)]
    return word, {"low": low, "": mid, "high": high}[word]


def _tempo(rng: np.random.Generator) -> tuple[str, int]:
    word = ("slow", "medium", "fast")[rng.integers(3)]
    return word, int(rng.choice(TEMPOS[word]))


def _key(rng: np.random.Generator) -> tuple[str, str]:
    return NOTE_NAMES[rng.integers(7)], ("major", "minor")[rng.integers(2)]


def captioned_phrase(kind: str, rng: np.random.Generator, seconds: float = 2.048, sr: int = DEFAULT_SR,
                     peak: float = 0.5) -> Phrase:
    """One phrase of `kind` (one of KINDS) lasting `seconds` (s), its attributes drawn from `rng`, normalised
    to `peak` (absolute maximum); its caption names every attribute, e.g. "a high piano note in A",
    "a fast drum loop at 150 bpm", "a sustained pad in D minor", "a low bass drone in E"."""
    kind = check_choice("phrase kind", kind, KINDS)
    sr = check_sr(sr)
    key, mode = _key(rng)
    at: dict = {"kind": kind}
    if kind == "piano_note":
        word, octave = _register(rng, "piano")
        pitch = note_pitch(key, octave)
        y = piano_note(pitch, seconds, sr, rng.uniform(0.6, 0.9))
        at.update(key=key, octave=octave, register=word, pitch=pitch)
        cap = f"a {word} piano note in {key}"
    elif kind == "piano_chord":
        word, octave = _register(rng, "piano")
        y = piano_chord(key, mode, seconds, sr, octave)
        at.update(key=key, mode=mode, octave=octave, register=word)
        cap = f"a {word} piano chord in {key} {mode}"
    elif kind == "piano_phrase":
        tw, bpm = _tempo(rng)
        y = piano_phrase(key, mode, bpm, seconds, sr, rng=rng)
        at.update(key=key, mode=mode, tempo=tw, bpm=bpm)
        cap = f"a {tw} piano phrase in {key} {mode}"
    elif kind == "bass_line":
        tw, bpm = _tempo(rng)
        y = bass_line(key, mode, bpm, seconds, sr, rng=rng)
        at.update(key=key, mode=mode, tempo=tw, bpm=bpm)
        cap = f"a {tw} bass line in {key} {mode}"
    elif kind == "bass_drone":
        octave = REGISTERS["bass"][rng.integers(2)]
        y = bass_drone(key, seconds, sr, octave)
        at.update(key=key, octave=octave, register="low")
        cap = f"a low bass drone in {key}"
    elif kind == "drum_loop":
        tw, bpm = _tempo(rng)
        y = drum_pattern(bpm, seconds, sr, rng=rng)
        at.update(tempo=tw, bpm=bpm)
        cap = f"a {tw} drum loop at {bpm} bpm"
    elif kind == "pad":
        y = pad(key, mode, seconds, sr)
        at.update(key=key, mode=mode, octave=REGISTERS["pad"][1])
        cap = f"a sustained pad in {key} {mode}"
    elif kind == "bell":
        word, octave = _register(rng, "bell")
        pitch = note_pitch(key, octave)
        y = bell(pitch, seconds, sr)
        at.update(key=key, octave=octave, register=word, pitch=pitch)
        cap = f"a {word} bell in {key}"
    elif kind == "drums_and_bass":
        tw, bpm = _tempo(rng)
        d = drum_pattern(bpm, seconds, sr, rng=rng)
        b = bass_line(key, mode, bpm, seconds, sr, rng=rng)
        y = d / (np.abs(d).max() + 1e-9) + 0.8 * b / (np.abs(b).max() + 1e-9)
        at.update(key=key, mode=mode, tempo=tw, bpm=bpm)
        cap = f"a {tw} drum loop with a bass line in {key} {mode}"
    else:  # piano_and_pad
        tw, bpm = _tempo(rng)
        p = piano_phrase(key, mode, bpm, seconds, sr, rng=rng, octave=5)
        q = pad(key, mode, seconds, sr)
        y = p / (np.abs(p).max() + 1e-9) + 0.6 * q / (np.abs(q).max() + 1e-9)
        at.update(key=key, mode=mode, tempo=tw, bpm=bpm)
        cap = f"a {tw} piano phrase over a pad in {key} {mode}"
    y = np.asarray(y, np.float64)
    y = peak * y / (np.abs(y).max() + 1e-9)
    return Phrase(y.astype(np.float32), sr, " ".join(cap.split()), at)


__all__ = ["BELL_RATIOS", "DEFAULT_SR", "KINDS", "MODES", "NOTE_NAMES", "PITCH_CLASS",
           "Phrase", "REGISTERS", "TEMPOS", "bass_drone", "bass_line", "bell", "captioned_phrase",
           "drum_pattern", "midi_hz", "note_pitch", "pad", "piano_chord", "piano_note", "piano_phrase",
           "scale_pitches", "triad"]
