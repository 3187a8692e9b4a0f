"""Captioned musical phrases for training the shipped music model, and the prompt checks it is measured by.

The phrases come from bendlab's own synthesiser (`bendlab.audio.synth`, numpy, seeded; nothing downloaded): one
instrument or a two-instrument mix per clip, each with several caption templates (one drawn per training step).
Every clip is `SECONDS` long at `SR` Hz; a quarter of them hold a shorter phrase followed by silence, and the
clip's `seconds_end` says where the sound stops (Stable Audio's timing conditioning).

`PROMPT_CHECKS` are the measurable things the model must do with its prompts (spectral centroid, onset rate,
pitch class); `training/train_music.py` measures them after training and the model card and
`tests/music/test_music_model.py` report and assert what was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bendlab.audio import synth

SR = synth.DEFAULT_SR  # Hz
HOP = 128  # audio samples per latent frame (the VAE's downsampling)
FRAMES = 128  # latent frames per clip: the DiT's sample_size
SAMPLES = HOP * FRAMES  # 16,384 samples per clip
SECONDS = SAMPLES / SR  # 2.048 s per clip
SHORT_FRACTION = 0.25  # clips holding a shorter phrase, then silence
MAX_TOKENS = 16  # tokenizer max_length: the longest caption is 12 words plus </s>

# how often each kind is drawn (the checks' instruments weighted up a little)
KIND_WEIGHTS = {"piano_note": 2.0, "piano_chord": 1.0, "piano_phrase": 1.0, "bass_line": 1.0, "bass_drone": 1.0,
                "drum_loop": 1.5, "pad": 1.0, "bell": 1.5, "drums_and_bass": 0.6, "piano_and_pad": 0.6}

_TEMPO_NUMBERS = sorted({str(b) for v in synth.TEMPOS.values() for b in v})
VOCABULARY = tuple(dict.fromkeys(  # every caption word once ("a" is the article and the note)
    "a an the with over and in at bpm note notes chord phrase melody loop beat drone sustained pad bell bells "
    "piano bass line drum drums high low slow medium fast major minor".split()
    + [n.lower() for n in synth.NOTE_NAMES] + _TEMPO_NUMBERS))


def captions(p: synth.Phrase) -> list[str]:
    """Caption templates for one phrase: the canonical caption first, then shorter and reworded ones, each true of
    the audio (a "high bell" is never captioned "low"; an unstated attribute is left out, not guessed)."""
    a = p.attributes
    kind, key, mode = a["kind"], a.get("key"), a.get("mode")
    reg = a.get("register") or ""
    tw, bpm = a.get("tempo"), a.get("bpm")
    km = f"{key} {mode}" if mode else key
    if kind == "piano_note":
        c = [f"a {reg} piano note in {key}", f"a piano note in {key}", f"a {reg} piano note", "a piano note",
             f"piano {key} note"]
    elif kind == "piano_chord":
        c = [f"a {reg} piano chord in {km}", f"a piano chord in {km}", f"a {km} piano chord", "a piano chord",
             f"a {reg} piano chord"]
    elif kind == "piano_phrase":
        c = [f"a {tw} piano phrase in {km}", f"a piano phrase in {km}", f"a {tw} piano melody", "a piano phrase",
             f"a {tw} piano phrase at {bpm} bpm"]
    elif kind == "bass_line":
        c = [f"a {tw} bass line in {km}", f"a bass line in {km}", f"a {tw} bass line", "a bass line",
             f"a bass line at {bpm} bpm"]
    elif kind == "bass_drone":
        c = [f"a low bass drone in {key}", "a low bass drone", f"a bass drone in {key}", "a bass drone",
             "a sustained low drone"]
    elif kind == "drum_loop":
        c = [f"a {tw} drum loop at {bpm} bpm", f"a {tw} drum loop", f"drums at {bpm} bpm", "a drum loop",
             f"a {tw} beat"]
    elif kind == "pad":
        c = [f"a sustained pad in {km}", "a sustained pad", f"a pad in {km}", "a pad", f"a sustained {km} chord"]
    elif kind == "bell":
        c = [f"a {reg} bell in {key}", f"a {reg} bell", f"a bell note in {key}", "a bell", f"a {reg} bell note"]
    elif kind == "drums_and_bass":
        c = [f"a {tw} drum loop with a bass line in {km}", f"drums and bass in {km}", f"a {tw} drum loop with bass",
             "drums and bass", f"drums and bass at {bpm} bpm"]
    else:  # piano_and_pad
        c = [f"a {tw} piano phrase over a pad in {km}", f"piano over a pad in {km}", "a piano phrase over a pad",
             "piano and pad", f"a {tw} piano melody over a sustained pad"]
    out = []
    for s in c:
        s = " ".join(s.split())
        if s not in out:
            out.append(s)
    return out


@dataclass
class Dataset:
    """`n` clips: audio (n, SAMPLES) float32 at SR Hz, caption templates per clip, the phrase attributes, and
    seconds_end (s) per clip (SECONDS, or where a short phrase stops)."""
    audio: np.ndarray
    captions: list[list[str]]
    attributes: list[dict]
    seconds_end: np.ndarray


def make_dataset(n: int, seed: int = 0) -> Dataset:
    """`n` captioned clips drawn from `seed` (kinds by KIND_WEIGHTS; SHORT_FRACTION of them shorter, 0.5 s to
    SECONDS, with a 10 ms fade and silence after)."""
    rng = np.random.default_rng(seed)
    kinds = list(KIND_WEIGHTS)
    w = np.array([KIND_WEIGHTS[k] for k in kinds])
    audio = np.zeros((n, SAMPLES), np.float32)
    caps, attrs, ends = [], [], np.full(n, SECONDS)
    for i in range(n):
        kind = kinds[rng.choice(len(kinds), p=w / w.sum())]
        dur = SECONDS if rng.random() >= SHORT_FRACTION else float(rng.uniform(0.5, SECONDS))
        m = int(round(dur * SR))
        p = synth.captioned_phrase(kind, rng, seconds=m / SR, sr=SR, peak=float(rng.uniform(0.35, 0.6)))
        y = p.audio[:m].copy()
        if m < SAMPLES:
            f = int(0.01 * SR)
            y[-f:] *= np.linspace(1, 0, f, dtype=np.float32)
        audio[i, :m] = y
        caps.append(captions(p))
        attrs.append(p.attributes)
        ends[i] = m / SR
    return Dataset(audio, caps, attrs, ends)


# ---------------------------------------------------------------------------------------- measuring the audio
def spectral_centroid(y: np.ndarray, sr: int = SR) -> float:
    """Power-weighted mean frequency (Hz) of the whole clip's spectrum (silence counts for nothing)."""
    spec = np.abs(np.fft.rfft(np.asarray(y, np.float64) * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float((f * spec).sum() / (spec.sum() + 1e-20))


def onset_rate(y: np.ndarray, sr: int = SR) -> float:
    """Onsets per second: librosa's spectral-flux onsets (512-sample FFT, hop 64), un-normalised with an absolute
    threshold (delta 1.0 on the dB-mel flux) so a steady sound shows no onsets, after 0.1 s of leading silence so
    an onset at time 0 counts; 50 ms at least between onsets."""
    import librosa
    y = np.concatenate([np.zeros(int(0.1 * sr), np.float32), np.asarray(y, np.float32)])
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=64, n_fft=512)
    on = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=64, normalize=False, delta=1.0,
                                    wait=int(0.05 * sr / 64))
    return len(on) / (len(y) / sr - 0.1)


def median_pitch(y: np.ndarray, sr: int = SR, fmin: float = 50.0, fmax: float = 2000.0) -> float:
    """Median f0 (MIDI note number, fractional) of the voiced frames by librosa.pyin; nan if none is voiced."""
    import librosa
    f0, voiced, _ = librosa.pyin(np.asarray(y, np.float32), fmin=fmin, fmax=fmax, sr=sr, frame_length=1024,
                                 hop_length=256)
    f0 = f0[voiced & np.isfinite(f0)]
    return float(librosa.hz_to_midi(np.median(f0))) if len(f0) else math.nan


def pitch_class_error(y: np.ndarray, key: str, sr: int = SR, fmin: float = 50.0) -> float:
    """Distance in semitones (0..6) from the clip's median pitch class (pyin from `fmin` Hz) to `key`'s (nan if
    unvoiced)."""
    m = median_pitch(y, sr, fmin=fmin)
    if math.isnan(m):
        return math.nan
    d = (m - synth.PITCH_CLASS[key]) % 12
    return float(min(d, 12 - d))


# pitch checks look for a piano note's pitch from here up: below the lowest piano note of the captions (C3, 131 Hz)
# and above the shipped VAE's frame rate (8000 / 128 = 62.5 Hz), whose buzz pyin otherwise takes for the pitch
PIANO_FMIN = 100.0  # Hz


@dataclass(frozen=True)
class PromptCheck:
    """`prompt` measured by `feature` must be at least `ratio` x `other` measured the same way, `other` counted as
    at least `floor` (so a silent `other` passes nothing) (ratio checks); or `prompt`'s pitch class must be `key`
    within `semitones`, its pitch sought from `fmin` Hz up (pitch checks)."""
    name: str
    prompt: str
    feature: str  # "centroid", "onset_rate" or "pitch_class"
    other: str = ""
    ratio: float = 2.0
    floor: float = 0.0
    key: str = ""
    semitones: float = 1.0
    fmin: float = PIANO_FMIN

    def passes(self, value: float, other: float = math.nan) -> bool:
        """Whether a measurement passes: value >= ratio x max(other, floor) for a ratio check; for a pitch check
        `value` is the pitch-class error in semitones (nan, unvoiced, fails)."""
        if self.feature == "pitch_class":
            return bool(value <= self.semitones)
        return bool(value >= self.ratio * max(other, self.floor))


PROMPT_CHECKS = (
    PromptCheck("bell above drone", "a high bell", "centroid", other="a low bass drone", ratio=2.0, floor=50.0),
    PromptCheck("drums busier than pad", "a fast drum loop", "onset_rate", other="a sustained pad", ratio=2.0,
                floor=0.5),
    PromptCheck("fast drums busier than slow", "a fast drum loop", "onset_rate", other="a slow drum loop",
                ratio=1.3, floor=0.5),
    PromptCheck("piano note in A", "a piano note in A", "pitch_class", key="A"),
    PromptCheck("piano note in E", "a piano note in E", "pitch_class", key="E"),
    # added after training, when a sweep over the seven keys found a C partial (262 Hz) in the model's C notes
    PromptCheck("piano note in C", "a piano note in C", "pitch_class", key="C"),
)

FEATURES = {"centroid": spectral_centroid, "onset_rate": onset_rate}
