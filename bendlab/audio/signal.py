"""Decoding a track and cutting it into frames: frame i of a video at `fps` is shown from i/fps to (i+1)/fps,
and its window is exactly that audio (the last zero-padded); also the shipped example's piano synthesiser.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..checks import (BendlabValueError, check_input_file, check_int, check_number)

MIN_SR, MAX_SR = 8000, 192000  # sample rates to analyse at, Hz
DEFAULT_SR = 44100  # the authors' rate
MAX_FPS = 240
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
def check_fps(fps) -> float:
    """Frames per second in (0, MAX_FPS]: the one rule for every entry point (video, features, Python)."""
    try:
        return check_number("fps", fps, 0, MAX_FPS, low_open=True)
    except BendlabValueError:
        raise BendlabValueError(f"fps {fps!r} is outside (0, {MAX_FPS}]; accepted: frames per second, e.g. 20 "
                                "(the paper) or 24") from None


def check_sr(sr) -> int:
    """A sample rate to analyse at, MIN_SR..MAX_SR Hz (the one rule for video, features and Python)."""
    return check_int("sample rate", sr, MIN_SR, MAX_SR, accepted="e.g. 22050 or 44100 Hz")


def load_audio(path: str | Path, sr: int = DEFAULT_SR) -> np.ndarray:
    """Mono float32 samples at `sr` Hz from a wav, flac, ogg or mp3 file (one-line errors if unusable)."""
    import librosa
    p = check_input_file("audio file", path, AUDIO_SUFFIXES)
    sr = check_sr(sr)
    try:
        with warnings.catch_warnings():  # librosa's fallback to audioread warns before we give our own error
            warnings.simplefilter("ignore", (UserWarning, FutureWarning))
            y, _ = librosa.load(p, sr=sr, mono=True)
    except Exception as e:  # soundfile / audioread raise many types for corrupt input
        raise BendlabValueError(f"audio file {str(p)!r} could not be decoded ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else 'unreadable'})") from None
    if y.size == 0 or not np.isfinite(y).all():
        raise BendlabValueError(f"audio file {str(p)!r} holds no usable samples")
    return y.astype(np.float32)


def frame_windows(y: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """(n_frames, L) windows: row i holds the samples played while frame i is shown, [i/fps, (i+1)/fps)."""
    fps = check_fps(fps)
    n = math.ceil(len(y) * fps / sr - 1e-9)
    L = math.ceil(sr / fps)
    if len(y) < sr / fps:
        raise BendlabValueError(f"audio of {len(y) / sr * 1000:.1f} ms is shorter than one frame ({1000 / fps:.1f} ms "
                                f"at {fps:g} fps); accepted: at least one frame of audio")
    starts = np.round(np.arange(n) * sr / fps).astype(int)
    padded = np.concatenate([y, np.zeros(L + 1, y.dtype)])
    return np.stack([padded[s:s + L] for s in starts])


# ------------------------------------------------------------------------------------------ example audio
# the shipped clip's notes (onset s, MIDI pitch, velocity 0..1, length s): a slow two-bar phrase, quiet gaps
# included, so RMS rises and falls with each note; `audio.midi.write_notes(PIANO_NOTES, "piano.mid")` gives its MIDI
PIANO_NOTES = [(0.0, 60, 0.9, 1.2), (0.0, 64, 0.6, 1.2), (1.0, 67, 0.8, 0.8), (1.8, 72, 1.0, 1.5),
               (3.2, 71, 0.5, 0.6), (3.8, 67, 0.7, 0.6), (4.4, 64, 0.9, 1.0), (4.4, 55, 0.6, 1.5),
               (6.0, 60, 1.0, 1.8), (6.0, 48, 0.8, 2.0)]


def synth_piano(notes=None, sr: int = 22050, tail: float = 1.0) -> np.ndarray:
    """A piano-like phrase by additive synthesis: each note (onset s, MIDI pitch, velocity 0..1, length s) is
    8 inharmonic partials with a 5 ms attack and an exponential decay. Used for the shipped example clip."""
    if notes is None:
        notes = PIANO_NOTES
    dur = max(t + length for t, _, _, length in notes) + tail
    y = np.zeros(int(dur * sr))
    for t0, pitch, vel, length in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        n = int((length + tail) * sr)
        t = np.arange(n) / sr
        env = np.minimum(t / 0.005, 1) * np.exp(-t * (3.0 / length))
        tone = sum((0.6 ** k) * np.sin(2 * np.pi * f0 * (k + 1) * math.sqrt(1 + 1e-4 * (k + 1) ** 2) * t)
                   for k in range(8) if f0 * (k + 1) < sr / 2)
        i0 = int(t0 * sr)
        seg = y[i0:i0 + n]
        seg += (vel * env * tone)[: len(seg)]
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


