"""Embeddings of a track, one vector per frame: principal components of its log-mel spectrogram (pca:K,
embed16) and EnCodec's encoder latents reduced to 16 by PCA (encodec16, from local weights only).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..checks import (BendlabValueError, MissingFileError)

# features with several values per frame: name -> how many (they are not in FEATURES: a CSV or a plot shows
# them as NAME.1 .. NAME.K, see `Features.table`)
EMBEDDINGS = {"embed16": 16, "encodec16": 16}
ENCODEC_ENV = "BENDLAB_ENCODEC"  # the EnCodec model folder of feature encodec16
ENCODEC_BLOCK_S = 30.0  # seconds of audio per encoder pass (bounds the memory of a long track)
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


