"""Music models: the word-level T5 tokenizer bendlab's music models use (built locally with the `tokenizers`
library: nothing downloaded), and a tiny random Stable Audio pipeline built in code for tests and quick checks.

A Stable Audio pipeline's latent is (B, C, T): C channels (64 for Stable Audio Open) by T latent frames, one frame
per `vae.hop_length` samples at `vae.sampling_rate` Hz (2048 at 44.1 kHz: 21.5 frames a second). The latent always
spans the model's longest output (`transformer.config.sample_size` frames); a shorter request is cropped after
decoding, so second s of the output is latent frame s x sampling_rate / hop_length.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks import BendlabValueError, MissingFileError

if TYPE_CHECKING:  # annotations only: reading a config (the command line) needs no torch
    import torch

SPECIAL = ("<pad>", "</s>", "<unk>")  # T5's ids 0, 1, 2


def word_tokenizer(words, max_length: int = 32):
    """A word-level tokenizer over a fixed word list, with T5's special ids (<pad> 0, </s> 1, <unk> 2; "</s>"
    appended, prompts lower-cased and split on whitespace and punctuation, unknown words -> <unk>): what a small
    music model trained on a caption vocabulary needs. Built with the `tokenizers` library (nothing downloaded) as
    a `PreTrainedTokenizerFast`, which saves and reloads its tokenizer.json as it is (T5's own class rebuilds a
    Unigram model on load and would drop the word-level model and the lower-casing)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    for w in words:
        vocab.setdefault(w.lower(), len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   model_max_length=max_length)


TINY_WORDS = ("a slow fast high low piano note phrase chord bell bass drone drum loop sustained pad in "
              "a b c d e f g major minor").split()


def tiny_random_pipeline(seed: int = 0, sampling_rate: int = 4000, seconds: float = 2.048):
    """A Stable Audio pipeline with tiny random components (the shapes of diffusers' own fast tests, a little
    larger): 8 latent channels, hop 8 at `sampling_rate` Hz, the latent long enough for `seconds`, a 2-layer DiT,
    a 2-layer T5 encoder over `TINY_WORDS`; CosineDPMSolverMultistepScheduler as Stable Audio Open's. Built in
    code, nothing downloaded: for tests of the engine on the audio family."""
    from diffusers import (AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel,
                           StableAudioPipeline, StableAudioProjectionModel)
    from transformers import T5Config, T5EncoderModel
    tok = word_tokenizer(TINY_WORDS, 16)
    hop = 8
    frames = int(round(seconds * sampling_rate / hop))
    import torch
    torch.manual_seed(seed)
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   decoder_start_token_id=0))
    dit = StableAudioDiTModel(sample_size=frames, in_channels=8, num_layers=2, attention_head_dim=8,
                              num_attention_heads=4, num_key_value_attention_heads=2, out_channels=8,
                              cross_attention_dim=32, time_proj_dim=16, global_states_input_dim=64,
                              cross_attention_input_dim=32)
    vae = AutoencoderOobleck(encoder_hidden_size=16, downsampling_ratios=[2, 4], decoder_channels=8,
                             decoder_input_channels=8, audio_channels=1, channel_multiples=[1, 2],
                             sampling_rate=sampling_rate)
    projection = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=32, min_value=0,
                                            max_value=int(seconds) + 1)
    scheduler = CosineDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                                                  sigma_schedule="exponential")
    pipe = StableAudioPipeline(transformer=dit, scheduler=scheduler, vae=vae, text_encoder=text, tokenizer=tok,
                               projection_model=projection)
    pipe.set_progress_bar_config(disable=True)
    return pipe.eval() if hasattr(pipe, "eval") else pipe


# ------------------------------------------------------------------------------------------ loading
SHIPPED_MUSIC = Path(__file__).resolve().parent.parent / "weights" / "bendlab-tiny-music"
DEFAULT_MUSIC_MODEL = "bendlab-tiny-music"


@dataclass(frozen=True)
class MusicConfig:
    """What a render needs to know of a music model before its weights load (read from its folder's configs).

    sampling_rate: Hz of the waveform; hop: samples per latent frame; channels: latent channels (a multiple of 4
    for the channel operators); frames: latent frames (the longest output, `max_seconds` = frames x hop / rate).
    """

    sampling_rate: int
    hop: int
    channels: int
    frames: int

    @property
    def rate(self) -> float:
        """Latent frames per second."""
        return self.sampling_rate / self.hop

    @property
    def max_seconds(self) -> float:
        return self.frames * self.hop / self.sampling_rate

    @classmethod
    def of(cls, pipe) -> "MusicConfig":
        """The config of a loaded Stable Audio pipeline."""
        return cls(int(pipe.vae.sampling_rate), int(pipe.vae.hop_length), int(pipe.transformer.config.in_channels),
                   int(pipe.transformer.config.sample_size))

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "MusicConfig":
        """The config of a saved Stable Audio folder (its transformer's and VAE's config.json), no weights."""
        p = Path(folder)
        dit = json.loads((p / "transformer" / "config.json").read_text())
        vae = json.loads((p / "vae" / "config.json").read_text())
        return cls(int(vae["sampling_rate"]), int(math.prod(vae["downsampling_ratios"])), int(dit["in_channels"]),
                   int(dit["sample_size"]))


def resolve_music(model: str | os.PathLike | None) -> str:
    """The folder or hub id of a music model: None or "bendlab-tiny-music" (the shipped model), a local diffusers
    folder of a StableAudioPipeline (checked: its class, its components, safetensors weights), or a hub id such as
    "stabilityai/stable-audio-open-1.0" (the user's choice, loaded by diffusers). One-line errors otherwise."""
    from ..models.family import STABLE_AUDIO
    accepted = (f"accepted: a diffusers folder of a StableAudioPipeline, a hub id like "
                f"'stabilityai/stable-audio-open-1.0', or {DEFAULT_MUSIC_MODEL!r} (the shipped music model)")
    if model is None or str(model) == DEFAULT_MUSIC_MODEL:
        if not (SHIPPED_MUSIC / "model_index.json").is_file():
            raise MissingFileError(f"the shipped music model is not in {SHIPPED_MUSIC} (make music-model trains it); "
                                   f"{accepted}")
        model = SHIPPED_MUSIC
    if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
        raise BendlabValueError(f"music model {model!r} is not a folder or hub id; {accepted}")
    s, p = str(model), Path(str(model)).expanduser()
    if not p.exists() and re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", s) and not s.startswith((".", "/", "~")):
        return s
    if not (p / "model_index.json").is_file():
        raise MissingFileError(f"music model {s!r} is not a diffusers folder (no model_index.json); {accepted}")
    try:
        name = json.loads((p / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        name = None
    if name != STABLE_AUDIO.txt2img:
        raise BendlabValueError(f"music model {s!r} holds a {name or 'unreadable'} pipeline; {accepted}")
    missing = [c for c in STABLE_AUDIO.components if not (p / c).is_dir()]
    if missing:
        raise BendlabValueError(f"music model {s!r} is missing {', '.join(missing)}; accepted: a folder written by "
                                "StableAudioPipeline.save_pretrained")
    for c in ("transformer", "vae", "projection_model", "text_encoder"):
        if not any((p / c).glob("*.safetensors")):
            raise BendlabValueError(f"music model {s!r} has no .safetensors weights in {c}; accepted: weights saved "
                                    "as safetensors (pickle files are not loaded)")
    return str(p)


def music_config(model) -> MusicConfig:
    """A music model's config, checked and resolved as `resolve_music` does: read from a folder's configs (no
    weights); a hub id is loaded to read it."""
    path = resolve_music(model)
    if Path(path).is_dir():
        return MusicConfig.read(path)
    return MusicConfig.of(load_music_pipeline(path))


def music_fingerprint(model) -> str:
    """What a render folder records of a music model: for a folder, a short SHA-256 of every file in it (its path
    and content), so another or a retrained model is another soundtrack; a hub id as it is (diffusers' cache
    decides which revision loads). Hashing reads the weights once (cached while the files' sizes and times stay
    the same)."""
    path = resolve_music(model)
    p = Path(path)
    if not p.is_dir():
        return path
    files = sorted(f for f in p.rglob("*") if f.is_file())
    return _folder_sha(tuple((str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in files),
                       str(p))


@functools.lru_cache(maxsize=8)
def _folder_sha(stats: tuple, root: str) -> str:
    import hashlib
    from ..files import file_sha256
    h = hashlib.sha256()
    for name, _, _ in stats:
        h.update(f"{name}\0{file_sha256(Path(root) / name)}\n".encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, dtype: torch.dtype):
    from diffusers import StableAudioPipeline
    from ..models.load import quiet_loading
    with quiet_loading(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*")  # Oobleck's weight norm: torch's notice
        try:
            pipe = StableAudioPipeline.from_pretrained(path, dtype=dtype, use_safetensors=True)
        except OSError as e:
            raise OSError(f"could not load music model {path!r}: {str(e).splitlines()[0]}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_music_pipeline(model: str | os.PathLike | None = None, device: str | None = None,
                        dtype: torch.dtype | None = None):
    """The music model's StableAudioPipeline, cached per (model, device, dtype).

    model:  None or "bendlab-tiny-music" (the shipped model), a local folder, or a hub id such as
            "stabilityai/stable-audio-open-1.0" (downloaded by diffusers only if you ask)
    device: "cuda" when available, else "cpu"; dtype: float16 on CUDA, float32 on CPU
    """
    from ..models.device import check_device
    path = resolve_music(model)
    device = check_device(device)
    import torch
    dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
    return _load(path, device, dtype)
