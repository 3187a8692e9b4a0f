"""Per-frame audio features aligned with video frames, smoothing, and scaling into an operator's range.

Frame i of a video at `fps` is shown from i/fps to (i+1)/fps; its features are computed on exactly that window
of audio (50 ms at 20 fps, the paper's setting), so a hit in the music and its visual change land on the same
frame. The last window is zero-padded; the number of frames is ceil(duration x fps), so the video lasts as long
as the audio to within one frame.

The paper's features are computed as the authors' code computes them: the track at 44.1 kHz, each frame's own
1/fps samples with a rectangular window (no taper), zero-padded to the next power of two, magnitude spectrum
|S_t(f)| over the bins f (Hz). With w_t(f) = |S_t(f)| / sum_f |S_t(f)|:

    rms          sqrt(mean(x^2)) of the frame's samples (linear amplitude)
    centroid     c_t = sum_f f w_t(f) (Hz)
    spread       s_t = sqrt(sum_f (f - c_t)^2 w_t(f)) (Hz)
    skewness     sum_f (f - c_t)^3 w_t(f) / s_t^3
    kurtosis     sum_f (f - c_t)^4 w_t(f) / s_t^4 (not excess: a Gaussian spectrum gives 3)
    flux         sum_f |S_t(f) - S_t-1(f)| (L1, both directions; 0 on frame 0)

Other features of the same frames:
    flux_rectified  L2 norm of the half-wave rectified change (bendlab's earlier flux: rises only, onset-like)
    onset           librosa onset strength (mean rectified log-mel difference)
    low, mid, high  energy below 250 Hz, 250-2000 Hz and above 2000 Hz
    beat, beat_phase, bar_phase, lfo:K     from librosa's beat tracker, see `bendlab.rhythm`
    pca:K           K-th principal component of the track's frame-wise log-mel spectrogram (fitted on this
                    track; sign chosen so it rises with rms): "whatever changes most in this music"
    embed16         16 values per frame: pca:1..16 together (components beyond the track's rank are 0), the
                    JAES paper's audio embedding computed from the track itself with no weights; it drives the
                    16 entries of the `matrix` operator (see `bendlab.mapping.Mapping`). The authors reduce
                    EnCodec features with t-SNE instead: that is encodec16.
    encodec16       16 values per frame from EnCodec, when its weights are on this machine: the folder of a
                    transformers `EncodecModel` (config.json and *.safetensors, e.g. facebook/encodec_24khz
                    downloaded beforehand) named by the environment variable BENDLAB_ENCODEC. Nothing is ever
                    downloaded: an unset variable, an absent folder or one without safetensors weights is refused
                    in one line before any analysis. The track is resampled to the model's sampling_rate, its
                    encoder (no quantiser; CPU, no grad, in 30 s blocks) gives D latent values at
                    sampling_rate / prod(upsampling_ratios) Hz (75 Hz at 24 kHz); frame i averages the latent
                    frames that start in [i/fps, (i+1)/fps) (the latent frame under i/fps when none does), and
                    D -> 16 by PCA fitted on this track, signed as pca:K (components beyond its rank are 0).
                    PCA, not the authors' t-SNE: deterministic (no random start, the same track gives the same
                    matrices) and linear, so a frame's value is a fixed projection of its own latent.
                    Like embed16 it drives `matrix`; `encodec16@percussive` or @STEM.wav encode that signal.
    midi_velocity, midi_pitch, midi_onset, midi_cc:N   from a MIDI file, see `bendlab.midi`
    keys:T=V,T=V,...  a drawn keyframe curve: value V at second T, linear in between (`np.interp`), held before
                    the first key and after the last; each frame takes the value at its start. Reads no audio

Features that need no track (`reads_track` is False): the MIDI features, keys:..., and the rhythm features on a
fixed tempo: with `bpm` given, beat, beat_phase, bar_phase and lfo:K follow a grid of beats at 0, 60/bpm, ... s
instead of the beats tracked in the audio. These can drive a soundtrack that does not exist yet (a video's
generated music, `video.soundtrack`).

Sources: `NAME@harmonic` and `NAME@percussive` read the harmonic or percussive part of the track (librosa's
HPSS); `NAME@path/to/stem.wav` reads a stem separated elsewhere, which must last as long as the track (within
one frame). E.g. `rms@percussive` follows the drums, `centroid@stems/vocals.wav` the voice.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import (BendlabValueError, MissingFileError, check_input_file)
from .embed import EMBEDDINGS, encodec_embedding, encodec_folder, principal_component, principal_components
from .signal import AUDIO_SUFFIXES, DEFAULT_SR, check_fps, frame_windows, load_audio
from .spectral import N_MELS, spectral_features

SPECTRAL = ("rms", "centroid", "spread", "skewness", "kurtosis", "flux", "flux_rectified", "onset", "low", "mid",
            "high")
RHYTHM = ("beat", "beat_phase", "bar_phase")
MIDI = ("midi_velocity", "midi_pitch", "midi_onset")
# every plain feature name; parametric ones: lfo:K, pca:K, midi_cc:N
FEATURES = SPECTRAL + RHYTHM + MIDI
PARAMETRIC = ("lfo:K", "pca:K", "midi_cc:N", "keys:T=V,...")
UNITS = {"rms": "amplitude", "centroid": "Hz", "spread": "Hz", "skewness": "", "kurtosis": "", "flux": "",
         "flux_rectified": "", "onset": "", "low": "energy", "mid": "energy", "high": "energy", "beat": "",
         "beat_phase": "0..1", "bar_phase": "0..1", "midi_velocity": "0..1", "midi_pitch": "MIDI note",
         "midi_onset": "0..1", "lfo": "0..1", "pca": "", "midi_cc": "0..1", "embed16": "", "encodec16": "",
         "keys": ""}
SOURCES = ("mix", "harmonic", "percussive")
@dataclass(frozen=True)
class FeatureRef:
    """A parsed feature name: NAME[:ARG][@SOURCE]."""

    name: str
    arg: float | None = None
    source: str = "mix"  # mix, harmonic, percussive, or a stem file's path
    keys: tuple[tuple[float, float], ...] | None = None  # keys:T=V,...: (seconds, value) pairs, times increasing

    def __str__(self) -> str:
        if self.keys is not None:
            return "keys:" + ",".join(f"{t:g}={v:g}" for t, v in self.keys)
        arg = "" if self.arg is None else f":{self.arg:g}"
        return self.name + arg + ("" if self.source == "mix" else f"@{self.source}")


def _parse_keys(text: str, arg: str) -> tuple[tuple[float, float], ...]:
    """'0=0,1.5=1,3=0' -> ((0, 0), (1.5, 1), (3, 0)): seconds >= 0, strictly increasing, finite values."""
    accepted = "accepted: keys:T=V,T=V,... with seconds T >= 0 increasing, e.g. keys:0=0,1.5=1,3=0"
    keys = []
    for pair in arg.split(","):
        t, sep, v = pair.partition("=")
        try:
            key = (float(t), float(v))
        except ValueError:
            key = None
        if not sep or key is None or not all(math.isfinite(x) for x in key):
            raise BendlabValueError(f"feature {text!r}: {pair.strip()!r} is not T=V (seconds=value); {accepted}")
        keys.append(key)
    times = [t for t, _ in keys]
    if times[0] < 0 or any(b <= a for a, b in zip(times, times[1:])):
        raise BendlabValueError(f"feature {text!r}: key times {times} are not increasing from >= 0 s; {accepted}")
    return tuple(keys)


def parse_feature(text: str) -> FeatureRef:
    """Read 'rms', 'lfo:0.25', 'pca:1', 'midi_cc:74', 'keys:0=0,2=1', 'rms@percussive', 'centroid@stems/vocals.wav'
    (one-line errors naming what is accepted). A stem's existence is checked when the features are computed."""
    if not isinstance(text, str):
        raise BendlabValueError(f"feature {text!r} is not a name; accepted: {', '.join(FEATURES + PARAMETRIC)}")
    body, _, source = text.partition("@")
    name, _, arg = body.partition(":")
    accepted = (f"accepted: {', '.join(FEATURES + PARAMETRIC + tuple(EMBEDDINGS))}, each optionally @harmonic, "
                "@percussive or @STEM.wav")
    if name == "keys":
        if "@" in text:
            raise BendlabValueError(f"feature {text!r}: a keyframe curve reads no audio; accepted: keys:T=V,... with "
                                    "no @source")
        return FeatureRef("keys", keys=_parse_keys(text, arg))
    if name not in FEATURES + ("lfo", "pca", "midi_cc") + tuple(EMBEDDINGS) or (arg and name not in ("lfo", "pca",
                                                                                                      "midi_cc")):
        raise BendlabValueError(f"unknown feature {text!r}; {accepted}")
    value = None
    if name in ("lfo", "pca", "midi_cc"):
        try:
            value = float(arg)
        except ValueError:
            raise BendlabValueError(f"feature {text!r} needs a number after '{name}:'; {accepted}") from None
        if not math.isfinite(value):
            raise BendlabValueError(f"feature {text!r} needs a finite number after '{name}:'; {accepted}")
        if name == "lfo" and not 0 < value <= 64:
            raise BendlabValueError(f"lfo:{arg} is outside (0, 64] cycles per beat; accepted: e.g. lfo:1 (once a "
                                    "beat), "
                                    "lfo:0.25 (once a bar of 4)")
        if name == "pca" and (value != int(value) or not 1 <= value <= N_MELS):
            raise BendlabValueError(f"pca:{arg} is not a component 1..{N_MELS}")
        if name == "midi_cc" and (value != int(value) or not 0 <= value <= 127):
            raise BendlabValueError(f"midi_cc:{arg} is not a controller number 0..127")
    if "@" in text:
        if not source:
            raise BendlabValueError(f"feature {text!r} names no source after '@'; accepted: @harmonic, @percussive or "
                                    "@path/to/stem.wav")
        if name.startswith("midi"):
            raise BendlabValueError(f"feature {text!r}: MIDI features come from the MIDI file, not an audio source")
        if source not in SOURCES and Path(source).suffix.lower() not in AUDIO_SUFFIXES:
            raise BendlabValueError(f"source {source!r} of {text!r} is not harmonic, percussive or an audio file "
                                    f"({', '.join(AUDIO_SUFFIXES)})")
    return FeatureRef(name, value, source or "mix")


def check_feature(name: str) -> str:
    parse_feature(name)
    return name


def reads_track(text: str, bpm: float | None = None) -> bool:
    """Whether a feature is computed from the audio track (its samples, the beats tracked in it, a stem): False for
    the MIDI features, a keyframe curve (keys:...) and, with a fixed tempo `bpm`, the rhythm features."""
    ref = parse_feature(text)
    if ref.name.startswith("midi") or ref.name == "keys":
        return False
    return not (bpm is not None and (ref.name in RHYTHM or ref.name == "lfo"))


def check_sources(features, midi=None) -> None:
    """Before any analysis: MIDI features need a MIDI file, and each stem a feature reads exists."""
    for text in features:
        ref = parse_feature(text)
        if ref.name.startswith("midi") and midi is None:
            raise BendlabValueError(f"feature {text!r} needs a MIDI file; accepted: midi=... (--midi FILE)")
        if ref.source not in SOURCES:
            if not Path(ref.source).is_file():
                raise MissingFileError(f"stem {ref.source!r} of feature {text!r} does not exist")
            check_input_file(f"stem of feature {text!r}", ref.source, AUDIO_SUFFIXES)
        if ref.name == "encodec16":
            encodec_folder(text)


@dataclass
class Features:
    """The per-frame features of one track, computed when first asked for and kept: `feats["rms"]`,
    `feats["lfo:0.25"]`, `feats["rms@percussive"]` each give one value per video frame.

    y: the track (mono, sr Hz); midi: a `bendlab.midi.Midi` for the midi_* features; bpm: a fixed tempo for the
    rhythm features (beats at 0, 60/bpm, ... s), None to track the beats in the audio.
    """

    y: np.ndarray = field(repr=False)
    sr: int
    fps: float
    midi: object | None = None
    bpm: float | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def duration(self) -> float:
        return len(self.y) / self.sr

    @property
    def n_frames(self) -> int:
        return math.ceil(len(self.y) * self.fps / self.sr - 1e-9)

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps

    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def signal(self, source: str) -> np.ndarray:
        """The mix, its harmonic or percussive part (librosa HPSS), or a stem file of the same duration."""
        if source == "mix":
            return self.y
        if source in ("harmonic", "percussive"):
            import librosa
            # a 2048-sample STFT with a 1024 hop (23 ms at 44.1 kHz, finer than a video frame): a third of the
            # time of librosa's default 512 hop, whose median filters dominate the analysis of a long track
            h, p = self._cached("hpss", lambda: librosa.effects.hpss(self.y, n_fft=2048, hop_length=1024))
            return h if source == "harmonic" else p
        return self._cached(("stem", source), lambda: self._stem(source))

    def _stem(self, path: str) -> np.ndarray:
        stem = load_audio(path, self.sr)
        if abs(len(stem) - len(self.y)) > self.sr / self.fps:
            raise BendlabValueError(f"stem {path!r} lasts {len(stem) / self.sr:.3f} s, the track {self.duration:.3f} "
                                    "s; "
                                    f"accepted: a stem of the track's duration within one frame ({1 / self.fps:.3f} s)")
        return np.pad(stem, (0, max(0, len(self.y) - len(stem))))[: len(self.y)]

    def spectral(self, source: str = "mix") -> dict[str, np.ndarray]:
        return self._cached(("spectral", source), lambda: spectral_features(self.signal(source), self.sr, self.fps))

    def beats(self, source: str = "mix"):
        """The beats tracked in the mix (or a source), or with `bpm` the fixed grid (whatever the source)."""
        from . import rhythm
        if self.bpm is not None:
            return rhythm.grid(self.bpm, self.duration)
        return self._cached(("beats", source), lambda: rhythm.track(self.signal(source), self.sr))

    @property
    def tempo(self) -> float:
        """Estimated tempo of the mix, beats per minute (0 when no beat was found)."""
        return self.beats().tempo

    def __getitem__(self, text: str) -> np.ndarray:
        ref = parse_feature(text)
        return self._cached(ref, lambda: self._compute(ref))

    def _compute(self, ref: FeatureRef) -> np.ndarray:
        from . import midi, rhythm
        n = self.n_frames
        if ref.name in SPECTRAL:
            return self.spectral(ref.source)[ref.name]
        if ref.name == "pca":
            return principal_component(self.spectral(ref.source)["_logmel"], int(ref.arg),
                                       self.spectral(ref.source)["rms"])
        if ref.name == "encodec16":
            return encodec_embedding(self.signal(ref.source), self.sr, self.fps, self.spectral(ref.source)["rms"])
        if ref.name in EMBEDDINGS:
            return principal_components(self.spectral(ref.source)["_logmel"], EMBEDDINGS[ref.name],
                                        self.spectral(ref.source)["rms"])
        if ref.name in RHYTHM or ref.name == "lfo":
            return rhythm.frame_feature(self.beats(ref.source), ref.name, ref.arg, n, self.fps)
        if ref.name == "keys":
            t, v = np.array(ref.keys, dtype=np.float64).T
            return np.interp(self.times, t, v)
        if self.midi is None:
            raise BendlabValueError(f"feature {ref} needs a MIDI file; accepted: --midi FILE (VideoSpec.midi)")
        return midi.frame_feature(self.midi, ref.name, ref.arg, n, self.fps)

    def default_names(self) -> tuple[list[str], list[str]]:
        """The names of the default table: every plain feature this track has, with lfo:1, lfo:0.25 and
        pca:1..3; and those left out because the track cannot have them (a principal component beyond its
        number of frames)."""
        names = [f for f in FEATURES if self.midi is not None or f not in MIDI] + ["lfo:1", "lfo:0.25"]
        pcs = [f"pca:{k}" for k in (1, 2, 3)]
        has = min(self.n_frames, N_MELS)
        return names + [p for k, p in enumerate(pcs, 1) if k <= has], [p for k, p in enumerate(pcs, 1) if k > has]

    def table(self, names=None) -> dict[str, np.ndarray]:
        """Several features by name (default: `default_names`), for a CSV or a plot; a feature with several
        values per frame (embed16) gives one column per value, NAME.1 .. NAME.K."""
        if names is None:
            names = self.default_names()[0]
        out = {}
        for name in names:
            x = self[name]
            out.update({name: x} if x.ndim == 1 else {f"{name}.{d + 1}": x[:, d] for d in range(x.shape[1])})
        return out


def compute_features(y: np.ndarray, sr: int, fps: float = 20.0, midi=None, bpm: float | None = None) -> Features:
    """The features of the signal y (mono, sr Hz) for a video at fps (computed when asked for); bpm: a fixed tempo
    for the rhythm features instead of the tracked beats."""
    fps = check_fps(fps)
    frame_windows(y[: math.ceil(sr / fps) + 1], sr, fps)  # one-line error for audio shorter than a frame
    return Features(np.asarray(y, dtype=np.float32), sr, fps, midi, bpm)


def audio_features(path: str | Path, fps: float = 20.0, sr: int = DEFAULT_SR, midi: str | Path | None = None,
                   bpm: float | None = None) -> Features:
    """Load an audio file (and a MIDI file) for per-frame features (see the module docstring).

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    from . import midi as midi_module
    check_fps(fps)
    return compute_features(load_audio(path, sr), sr, fps, None if midi is None else midi_module.read(midi), bpm)


def write_csv(feats: Features, path: str | Path, names=None) -> Path:
    """One row per video frame (its start time in s, then one column per feature), written atomically.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import csv
    import io

    from ..files import write_text_atomic
    table = feats.table(names)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["frame", "time_s", *table])
    for i in range(feats.n_frames):
        w.writerow([i, f"{i / feats.fps:.6f}", *(f"{table[k][i]:.6g}" for k in table)])
    write_text_atomic(Path(path), buf.getvalue())
    return Path(path)
