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

Sources: `NAME@harmonic` and `NAME@percussive` read the harmonic or percussive part of the track (librosa's
HPSS); `NAME@path/to/stem.wav` reads a stem separated elsewhere, which must last as long as the track (within
one frame). E.g. `rms@percussive` follows the drums, `centroid@stems/vocals.wav` the voice.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import (BendlabValueError, MissingFileError, check_choice, check_input_file, check_int, check_number,
                     is_int)

DEFAULT_SR = 44100  # the authors' rate
MIN_SR, MAX_SR = 8000, 192000  # sample rates to analyse at, Hz
MAX_FPS = 240
SPECTRAL = ("rms", "centroid", "spread", "skewness", "kurtosis", "flux", "flux_rectified", "onset", "low", "mid",
            "high")
RHYTHM = ("beat", "beat_phase", "bar_phase")
MIDI = ("midi_velocity", "midi_pitch", "midi_onset")
# every plain feature name; parametric ones: lfo:K, pca:K, midi_cc:N
FEATURES = SPECTRAL + RHYTHM + MIDI
PARAMETRIC = ("lfo:K", "pca:K", "midi_cc:N")
# features with several values per frame: name -> how many (they are not in FEATURES: a CSV or a plot shows
# them as NAME.1 .. NAME.K, see `Features.table`)
EMBEDDINGS = {"embed16": 16, "encodec16": 16}
ENCODEC_ENV = "BENDLAB_ENCODEC"  # the EnCodec model folder of feature encodec16
ENCODEC_BLOCK_S = 30.0  # seconds of audio per encoder pass (bounds the memory of a long track)
UNITS = {"rms": "amplitude", "centroid": "Hz", "spread": "Hz", "skewness": "", "kurtosis": "", "flux": "",
         "flux_rectified": "", "onset": "", "low": "energy", "mid": "energy", "high": "energy", "beat": "",
         "beat_phase": "0..1", "bar_phase": "0..1", "midi_velocity": "0..1", "midi_pitch": "MIDI note",
         "midi_onset": "0..1", "lfo": "0..1", "pca": "", "midi_cc": "0..1", "embed16": "", "encodec16": ""}
BANDS = {"low": (0.0, 250.0), "mid": (250.0, 2000.0), "high": (2000.0, math.inf)}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
SOURCES = ("mix", "harmonic", "percussive")
SCALINGS = ("minmax", "percentile")  # how a feature is normalised over the track (`scale`)
N_MELS = 64


@dataclass(frozen=True)
class FeatureRef:
    """A parsed feature name: NAME[:ARG][@SOURCE]."""

    name: str
    arg: float | None = None
    source: str = "mix"  # mix, harmonic, percussive, or a stem file's path

    def __str__(self) -> str:
        arg = "" if self.arg is None else f":{self.arg:g}"
        return self.name + arg + ("" if self.source == "mix" else f"@{self.source}")


def parse_feature(text: str) -> FeatureRef:
    """Read 'rms', 'lfo:0.25', 'pca:1', 'midi_cc:74', 'rms@percussive', 'centroid@stems/vocals.wav' (one-line
    errors naming what is accepted). A stem's existence is checked when the features are computed."""
    if not isinstance(text, str):
        raise BendlabValueError(f"feature {text!r} is not a name; accepted: {', '.join(FEATURES + PARAMETRIC)}")
    body, _, source = text.partition("@")
    name, _, arg = body.partition(":")
    accepted = (f"accepted: {', '.join(FEATURES + PARAMETRIC + tuple(EMBEDDINGS))}, each optionally @harmonic, "
                "@percussive or @STEM.wav")
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


MAX_MEDIAN = 10_001  # frames of a running median: over 8 minutes at 20 fps


def check_median(median, n_frames: int | None = None) -> int:
    """An odd running-median window of 1.. frames, no longer than the track's `n_frames` when known."""
    if not is_int(median) or median < 1 or median % 2 == 0:
        raise BendlabValueError(f"median {median!r} is not an odd number of frames >= 1; accepted: 1, 3, 5, ... up "
                                f"to {MAX_MEDIAN}")
    check_int("median", median, 1, MAX_MEDIAN, accepted=f"an odd number of frames 1..{MAX_MEDIAN}")
    longest = max(1, n_frames if n_frames % 2 else n_frames - 1) if n_frames is not None else None
    if longest is not None and median > longest:
        raise BendlabValueError(f"median {median} is longer than the track's {n_frames} frames; accepted: an odd "
                                f"number of frames 1..{longest}")
    return median


def check_range(low, high, curve=1.0) -> tuple[float, float]:
    """The one rule for a parameter range and its exponent: finite low != high, curve > 0 (Mapping and `scale`)."""
    for name, v in (("low", low), ("high", high), ("curve", curve)):
        check_number(f"range {name}" if name != "curve" else name, v)
    if low == high:
        raise BendlabValueError(f"range low = high = {low:g} maps every frame to one value (range {low:g}..{high:g} "
                                "is empty); accepted: low != high")
    if curve <= 0:
        raise BendlabValueError(f"curve {curve!r} is not > 0; accepted: an exponent > 0 (1 = linear)")
    return float(low), float(high)


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


def spectral_moments(mag: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Magnitude-weighted centroid, spread (std), skewness and kurtosis of spectra mag (n_bins, n_frames).

    A silent frame (no energy) gets centroid 0, spread 0, skewness 0 and kurtosis 0.
    """
    total = mag.sum(axis=0)
    w = np.divide(mag, total, out=np.zeros_like(mag), where=total > 0)
    f = freqs[:, None]
    c = (w * f).sum(axis=0)
    d = f - c
    var = (w * d ** 2).sum(axis=0)
    s = np.sqrt(var)
    safe = s > 0
    skew = np.where(safe, (w * d ** 3).sum(axis=0) / np.where(safe, s ** 3, 1), 0.0)
    kurt = np.where(safe, (w * d ** 4).sum(axis=0) / np.where(safe, s ** 4, 1), 0.0)
    return c, s, skew, kurt


def spectral_features(y: np.ndarray, sr: int, fps: float) -> dict[str, np.ndarray]:
    """The SPECTRAL features of every frame of y (definitions in the module docstring), and "_logmel", the
    (N_MELS, frames) log-mel spectrogram of the same frames."""
    return window_features(frame_windows(y, sr, fps), sr)


def window_features(win: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """The SPECTRAL features (and "_logmel") of consecutive windows win (n, L) of sr Hz audio: row i's flux
    and onset compare it with row i-1 (0 on row 0). The live analysis calls it on the newest two windows."""
    import librosa
    win = np.asarray(win, dtype=np.float64)
    L = win.shape[1]
    n_fft = 1 << max(8, (L - 1).bit_length())  # the next power of two (at least 256)
    mag = np.abs(np.fft.rfft(win, n=n_fft, axis=1)).T  # (bins, frames); rectangular window, as the authors
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    v = {"rms": np.sqrt((win ** 2).mean(axis=1))}
    v["centroid"], v["spread"], v["skewness"], v["kurtosis"] = spectral_moments(mag, freqs)
    diff = np.diff(mag, axis=1, prepend=mag[:, :1])
    v["flux"] = np.abs(diff).sum(axis=0)
    v["flux_rectified"] = np.sqrt((np.maximum(diff, 0) ** 2).sum(axis=0))
    power = mag ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft, n_mels=N_MELS)
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)  # absolute floor: same live
    v["onset"] = librosa.onset.onset_strength(S=logmel, sr=sr, lag=1, center=False)[: win.shape[0]]
    for name, (lo, hi) in BANDS.items():
        v[name] = power[(freqs >= lo) & (freqs < hi)].sum(axis=0) / n_fft
    v = {k: np.nan_to_num(np.asarray(a, dtype=np.float64)[: win.shape[0]]) for k, a in v.items()}
    v["_logmel"] = logmel
    return v


def principal_component(logmel: np.ndarray, k: int, rms: np.ndarray) -> np.ndarray:
    """Scores of the k-th principal component (1-based) of the frames' log-mel vectors, the sign chosen so they
    correlate positively with rms (a component has no sign of its own). Deterministic: an SVD, no sampling."""
    X = logmel.T - logmel.T.mean(axis=0)  # (frames, mels), centred
    if k > min(X.shape):
        raise BendlabValueError(f"pca:{k} asks for component {k} of a {X.shape[0]}-frame track; accepted: "
                                f"1..{min(X.shape)}")
    return principal_components(logmel, k, rms)[:, k - 1]


def principal_components(logmel: np.ndarray, n: int, rms: np.ndarray) -> np.ndarray:
    """(frames, n) scores of the first n principal components of the frames' log-mel vectors, each signed as
    `principal_component` signs it; components beyond the track's min(frames, mels) are 0 (feature embed16)."""
    X = logmel.T - logmel.T.mean(axis=0)  # (frames, mels), centred
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    m = min(n, len(S))
    scores = np.zeros((X.shape[0], n))
    scores[:, :m] = U[:, :m] * S[:m]
    for k in range(m):
        score = scores[:, k]
        if score.std() > 0 and rms.std() > 0 and np.corrcoef(score, rms)[0, 1] < 0:
            scores[:, k] = -score
    return scores


def encodec_folder(feature: str = "encodec16") -> Path:
    """The EnCodec model folder named by $BENDLAB_ENCODEC, checked without loading it: it exists and holds
    config.json and safetensors weights (one-line errors; nothing is downloaded)."""
    import os
    folder = os.environ.get(ENCODEC_ENV, "")
    accepted = (f"accepted: {ENCODEC_ENV}=DIR, a transformers EncodecModel folder (config.json and *.safetensors, "
                "e.g. facebook/encodec_24khz downloaded beforehand; bendlab never downloads it), or feature embed16")
    if not folder:
        raise BendlabValueError(f"feature {feature!r} needs EnCodec weights on this machine and {ENCODEC_ENV} is not "
                                f"set; {accepted}")
    p = Path(folder).expanduser()
    if not p.is_dir():
        raise MissingFileError(f"EnCodec folder {folder!r} ({ENCODEC_ENV}, feature {feature!r}) does not exist; "
                               f"{accepted}")
    if not (p / "config.json").is_file() or not any(p.glob("*.safetensors")):
        missing = "config.json" if not (p / "config.json").is_file() else "safetensors weights"
        raise BendlabValueError(f"EnCodec folder {folder!r} ({ENCODEC_ENV}, feature {feature!r}) has no {missing}; "
                                f"{accepted}")
    return p


def load_encodec(folder: Path):
    """transformers' EncodecModel from a local folder (safetensors only, never a download), in eval mode."""
    try:
        from transformers import EncodecModel
        from transformers.utils import logging as tlog
        level, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
        tlog.set_verbosity_error()
        tlog.disable_progress_bar()  # no "Loading weights" bar in a CLI run (restored below)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = EncodecModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
        finally:
            tlog.set_verbosity(level)
            if bars:
                tlog.enable_progress_bar()
    except Exception as e:  # a foreign config, truncated weights, a transformers without EnCodec
        first = str(e).splitlines()[0] if str(e) else "unreadable"
        raise BendlabValueError(f"EnCodec folder {str(folder)!r} ({ENCODEC_ENV}) could not be loaded as an "
                                f"EncodecModel ({type(e).__name__}: {first})") from None
    return model.eval()


def encodec_latents(model, y: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
    """(T', D) encoder latents of the mono track y (sr Hz) and their frame rate (Hz): the track resampled to
    the model's rate, copied to each of its channels, RMS-normalised when the config says so, encoded in
    ENCODEC_BLOCK_S blocks (a multiple of the hop, so the latent frames stay on the hop grid)."""
    import librosa
    import torch
    cfg = model.config
    hop = int(np.prod(cfg.upsampling_ratios))
    x = librosa.resample(np.asarray(y, dtype=np.float32), orig_sr=sr, target_sr=cfg.sampling_rate)
    if cfg.normalize:
        x = x / (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-8)
    block = max(hop, int(ENCODEC_BLOCK_S * cfg.sampling_rate) // hop * hop)
    out = []
    with torch.no_grad():
        for s in range(0, len(x), block):
            chunk = torch.from_numpy(np.ascontiguousarray(x[s:s + block], dtype=np.float32))
            chunk = chunk.reshape(1, 1, -1).expand(1, cfg.audio_channels, -1).contiguous()
            out.append(model.encoder(chunk)[0].T.double().numpy())  # (frames, D)
    return np.concatenate(out), cfg.sampling_rate / hop


def encodec_embedding(y: np.ndarray, sr: int, fps: float, rms: np.ndarray, n: int = 16) -> np.ndarray:
    """(frames, n) feature encodec16 of the track y (sr Hz) for a video at fps (see the module docstring):
    EnCodec latents averaged over each frame's window, then PCA to n dims signed to rise with rms."""
    lat, rate = encodec_latents(load_encodec(encodec_folder()), y, sr)
    n_frames = len(rms)
    owner = np.floor(np.arange(len(lat)) / rate * fps + 1e-9).astype(int)  # the video frame each latent starts in
    keep = owner < n_frames
    sums = np.zeros((n_frames, lat.shape[1]))
    np.add.at(sums, owner[keep], lat[keep])
    counts = np.bincount(owner[keep], minlength=n_frames)[:, None]
    under = np.minimum(np.floor(np.arange(n_frames) / fps * rate + 1e-9).astype(int), len(lat) - 1)
    frames = np.where(counts > 0, sums / np.maximum(counts, 1), lat[under])
    return np.nan_to_num(principal_components(frames.T, n, rms))


@dataclass
class Features:
    """The per-frame features of one track, computed when first asked for and kept: `feats["rms"]`,
    `feats["lfo:0.25"]`, `feats["rms@percussive"]` each give one value per video frame.

    y: the track (mono, sr Hz); midi: a `bendlab.midi.Midi` for the midi_* features.
    """

    y: np.ndarray = field(repr=False)
    sr: int
    fps: float
    midi: object | None = None
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
        from . import rhythm
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


def compute_features(y: np.ndarray, sr: int, fps: float = 20.0, midi=None) -> Features:
    """The features of the signal y (mono, sr Hz) for a video at fps (computed when asked for)."""
    fps = check_fps(fps)
    frame_windows(y[: math.ceil(sr / fps) + 1], sr, fps)  # one-line error for audio shorter than a frame
    return Features(np.asarray(y, dtype=np.float32), sr, fps, midi)


def audio_features(path: str | Path, fps: float = 20.0, sr: int = DEFAULT_SR, midi: str | Path | None = None
                   ) -> Features:
    """Load an audio file (and a MIDI file) for per-frame features (see the module docstring).

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    from . import midi as midi_module
    check_fps(fps)
    return compute_features(load_audio(path, sr), sr, fps, None if midi is None else midi_module.read(midi))


# ------------------------------------------------------------------------------------------ shaping
def smooth(x: np.ndarray, fps: float, attack: float = 0.0, release: float = 0.0, median: int = 1) -> np.ndarray:
    """Envelope follower: rises with time constant `attack` and falls with `release` (seconds; 0 = follow
    instantly), after an optional running median over `median` frames (odd)."""
    x = np.asarray(x, dtype=np.float64)
    check_median(median, len(x))
    for name, t in (("attack", attack), ("release", release)):
        check_number(name, t, 0, accepted="a time >= 0 in seconds")
    if median > 1:
        from scipy.signal import medfilt
        x = medfilt(x, median)
    if attack == 0 and release == 0:
        return x
    a_up = math.exp(-1.0 / (fps * attack)) if attack > 0 else 0.0
    a_dn = math.exp(-1.0 / (fps * release)) if release > 0 else 0.0
    out = np.empty_like(x)
    env = x[0]
    for i, v in enumerate(x):
        a = a_up if v > env else a_dn
        env = a * env + (1 - a) * v
        out[i] = env
    return out


def scale(x: np.ndarray, low: float, high: float, mode: str = "minmax", percentiles=(5.0, 95.0),
          curve: float = 1.0, gate: float = 0.0, threshold: float = 1.0, ratio: float = 1.0) -> np.ndarray:
    """Map x into [low, high]: normalise over the track to u in 0..1 (min-max, or between two percentiles,
    clipping what lies outside), then shape the dynamics and map:

        gate       u < gate -> 0 (silences what is below a level)
        threshold, ratio   a compressor: above `threshold` u rises 1/ratio as fast, then is scaled back so the
                   loudest frame still reaches 1 (make-up gain): loud passages squeezed, quiet ones lifted
        curve      u ** curve (> 1 favours peaks, < 1 lifts quiet passages)

    A constant or silent track maps to `low` (never NaN). "RMS scaled to 0..2*pi" is
    ``scale(feats["rms"], 0, 2 * np.pi)``.
    """
    check_range(low, high, curve)
    check_choice("scaling", mode, SCALINGS)
    x = np.asarray(x, dtype=np.float64)
    lo, hi = (x.min(), x.max()) if mode == "minmax" else np.percentile(x, percentiles)
    return shape(normalise(x, lo, hi), low, high, curve, gate, threshold, ratio)


def normalise(x, lo: float, hi: float) -> np.ndarray:
    """x mapped from lo..hi to 0..1, clipped; a range of (numerically) zero width gives 0."""
    x = np.asarray(x, dtype=np.float64)
    span = hi - lo
    return np.clip((x - lo) / span, 0, 1) if span > 1e-12 * max(1.0, abs(hi)) else np.zeros_like(x)


def shape(u, low: float, high: float, curve: float = 1.0, gate: float = 0.0, threshold: float = 1.0,
          ratio: float = 1.0) -> np.ndarray:
    """A normalised feature u in 0..1 through the gate, the compressor and the curve into low..high (see
    `scale`); the live analysis (`bendlab.causal`) normalises causally and shapes with this same function."""
    u = np.asarray(u, dtype=np.float64)
    u = np.where(u < gate, 0.0, u)
    if ratio != 1 and threshold < 1:
        u = np.where(u > threshold, threshold + (u - threshold) / ratio, u) / (threshold + (1 - threshold) / ratio)
    return low + (high - low) * u ** curve


# ------------------------------------------------------------------------------------------ example audio
# the shipped clip's notes (onset s, MIDI pitch, velocity 0..1, length s): a slow two-bar phrase, quiet gaps
# included, so RMS rises and falls with each note; `midi.write_notes(PIANO_NOTES, "piano.mid")` gives its MIDI
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


def write_csv(feats: Features, path: str | Path, names=None) -> Path:
    """One row per video frame (its start time in s, then one column per feature), written atomically.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    import csv
    import io

    from .files import write_text_atomic
    table = feats.table(names)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["frame", "time_s", *table])
    for i in range(feats.n_frames):
        w.writerow([i, f"{i / feats.fps:.6f}", *(f"{table[k][i]:.6g}" for k in table)])
    write_text_atomic(Path(path), buf.getvalue())
    return Path(path)
