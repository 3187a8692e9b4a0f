"""What a video is: `VideoSpec`, a plain value (constructing one reads no file and no model config), and the one
step that turns it into work: `plan` resolves every None against the model (steps, guidance, a mapping's
layer, the video method's window), checks the files it names (init image, MIDI, stems, a motion adapter) and
computes the audio features and the parameter curves; `frame_bends` turns the curves into the bends of any set of
frames. Everything after (the frame renderer, the render folder, the mux) takes the resolved spec.

A video with `music` (a prompt) has no audio file: its audio is that music, generated first into the render
folder with its own bend driven by the first mapping's curve (`video.soundtrack`); `plan` then reads the WAV.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import audio, models, session
from ..bend import catalogue
from ..checks import BendlabValueError, check_choice, check_int, check_number, check_numbers, check_str, check_strings
from .coherence import COHERENCE
from ..bend.fit import STRENGTH, check_bends, check_settings, img2img_layers
from ..files import file_sha256
from ..mapping import Mapping
from ..audio.signal import DEFAULT_SR
from ..music.curve import MusicBend
from ..paper import DEFAULT_PROMPT, LAYER, SEED, fit_layer

if TYPE_CHECKING:  # annotations: VideoSpec's fields are read without torch (the command line's help)
    from ..bend.bends import Bend

METHODS = ("txt2img", "img2img", "video")  # video: windows of frames denoised jointly (`video.joint`)
NOISES = ("shuffle", "random")  # the video method's initial noise (`video.joint.ClipNoise`)
MIN_WINDOW = 8  # frames: fewer give the motion modules (trained on 16-frame clips) too little to move
TRAINED_WINDOW = 16  # frames: the clips AnimateDiff's adapters (and the shipped one) were trained on: the default
#                      window (their temporal position embeddings go to 32, positions past 16 unseen in training)
WALKS = ("sincos", "authors", "none")
MAX_BATCH = 1024


def _path(name: str, v) -> str:
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        raise BendlabValueError(f"{name} {v!r:.60} is not a path")
    return str(v)


def _mappings(v) -> list[Mapping]:
    if isinstance(v, dict) or not isinstance(v, (list, tuple)) or not v or \
            not all(isinstance(m, (Mapping, dict)) for m in v):
        raise BendlabValueError(f"mappings {v!r:.60}: accepted: a list of one or more Mapping or dicts of its fields")
    return [m if isinstance(m, Mapping) else Mapping(**m) for m in v]


def _music_bend(v) -> MusicBend:
    if isinstance(v, MusicBend):
        return v
    if not isinstance(v, dict):
        raise BendlabValueError(f"music_bend {v!r:.60}: accepted: a MusicBend, or a dict of its fields (op, layer, "
                                "low, high, where)")
    try:
        return MusicBend(**v)
    except TypeError:
        raise BendlabValueError(f"music_bend {v!r:.60} has keys other than op, layer, low, high, where") from None


def _check_keyframes(k, prompts) -> None:
    if k is None:
        return
    if len(k) != len(prompts):
        raise BendlabValueError(f"{len(k)} keyframe times for {len(prompts)} prompts; accepted: one per prompt")
    if any(b <= a for a, b in zip(k, k[1:])) or k[0] < 0:
        raise BendlabValueError(f"keyframe times {k} are not increasing from >= 0 s")


# one check per field, each returning the value as stored; steps, guidance, seed and strength are checked together
# by `bend.fit.check_settings` (strength against steps); OPTIONAL fields also accept None
FIELD_RULES = {
    "prompts": lambda v: check_strings("prompts", v),
    "keyframes": lambda v: check_numbers("keyframes", v),
    "method": lambda v: check_choice("method", v, METHODS),
    "walk": lambda v: check_choice("noise walk", v, WALKS),
    "fps": audio.check_fps,
    "img2img_prompt": lambda v: check_str("img2img_prompt", v),
    "color_coherence": lambda v: check_choice("color coherence", v, COHERENCE),
    "img2img_noise": lambda v: check_number("img2img noise", v, 0, 1, accepted="a standard deviation in 0..1 "
                                            "(pixel values 0..1; 0 = none)"),
    "flow": lambda v: check_number("flow", v, 0, 2, accepted="the fraction of the last two frames' motion carried "
                                   "into the next seed, 0..2 (0 = none, 1 = the same motion again)"),
    "init_image": lambda v: _path("init_image", v),
    "model": lambda v: _path("model", v),
    "sr": audio.check_sr,
    "batch": lambda v: check_int("batch", v, 1, MAX_BATCH, accepted="frames rendered together"),
    "midi": lambda v: _path("midi", v),
    "session": lambda v: _path("session", v),
    "motion_adapter": lambda v: _path("motion_adapter", v),
    "bpm": lambda v: check_number("bpm", v, 1, 999, accepted="beats per minute 1..999"),
    "music": lambda v: check_str("music", v, empty=False),
    "music_model": lambda v: _path("music_model", v),
    "music_seconds": lambda v: check_number("music_seconds", v, 0, low_open=True,
                                            accepted="seconds of music > 0, up to the music model's longest output"),
    "music_steps": lambda v: check_int("music_steps", v, 1, accepted="denoising steps of the music"),
    "music_bend": _music_bend,
    "window": lambda v: check_int("window", v, MIN_WINDOW, accepted=f"frames a window of the video method holds, "
                                  f"at least {MIN_WINDOW} (at most the motion adapter's, or the video model's)"),
    "height": lambda v: check_int("height", v, 1, 8192, accepted="pixels (a multiple of the video model's VAE and "
                                  "patches)"),
    "width": lambda v: check_int("width", v, 1, 8192, accepted="pixels (a multiple of the video model's VAE and "
                                 "patches)"),
    "noise": lambda v: check_choice("video noise", v, NOISES),
    "overlap": lambda v: check_int("overlap", v, 0, accepted="frames two neighbouring windows share, 0 (a cut) to "
                                   "the window - 1"),
}
IMG2IMG_ONLY = ("strength", "img2img_prompt", "color_coherence", "img2img_noise", "flow", "init_image")
TXT2IMG_ONLY = ("walk", "batch")  # the video method: one noise per frame, windows of frames denoised jointly
VIDEO_ONLY = ("motion_adapter", "window", "overlap", "noise", "height", "width")
SIZE = ("height", "width")  # read only on a video transformer (AnimateDiff renders at its model's size)
MUSIC_ONLY = ("music_model", "music_seconds", "music_steps", "music_bend")  # read only when music is generated
OPTIONAL = {"keyframes", "init_image", "midi", "session", *VIDEO_ONLY, "bpm", "music", *MUSIC_ONLY}


def check_audio_or_session(audio_path, session_dir, music=None) -> str | None:
    """The one rule for what a video's audio is: an audio file, a recorded session's audio.wav (a session folder
    given instead of the audio), or music generated from a prompt (None: its WAV is made in the render folder,
    `video.soundtrack`); returns the audio path. Two of them together are refused."""
    if music is not None:
        other = ("audio", audio_path) if audio_path is not None else ("session", session_dir)
        if other[1] is not None:
            raise BendlabValueError(f"music {music!r:.40} given with {other[0]} {str(other[1])!r:.60}; accepted: "
                                    "one of them (the generated music is the video's audio)")
        return None
    if session_dir is None:
        if audio_path is None:
            raise BendlabValueError("no audio; accepted: an audio file (wav, flac, ogg, mp3), a session folder "
                                    "(session=DIR, bendlab video --session DIR) whose recorded audio.wav it plays, "
                                    "or music=PROMPT (--music) to generate it")
        return _path("audio", audio_path)
    own = str(Path(_path("session", session_dir)) / session.AUDIO)
    if audio_path is not None and str(audio_path) != own:
        raise BendlabValueError(f"audio {str(audio_path)!r:.60} given with session {str(session_dir)!r:.60}; accepted: "
                                "one of them (a session re-renders with its recorded audio.wav)")
    return own


@dataclass
class VideoSpec:
    """Everything that determines the frames (its `identity()` is the render folder's manifest). A value: the
    constructor checks types and ranges only; `plan` reads the files and the model's configs.

    steps, guidance: None -> the model's usual ones (`models.Model.usual`: 50 and 7.5 with DDIM, as the paper);
    method: "txt2img", "img2img" or "video" (the clip's frames denoised jointly in windows of `window` frames
    overlapping by `overlap`: by AnimateDiff, the model with `motion_adapter`, `video.joint`; or by a video
    transformer, `model` a Wan 2.x or LTX-Video diffusers folder, at height x width, `video.clip`);
    batch: txt2img frames rendered together (frames are computed in batches aligned to multiples of it, so it
    changes pixels at the float-rounding level and is part of the identity; 8 is ~2.4x faster than 1 on a CPU).
    music: a prompt instead of an audio file: the music is generated first (`music_model`, `music_seconds`,
    `music_steps`, the video's seed) with its own bend `music_bend` driven by the first mapping's curve, and is
    the video's audio (`video.soundtrack`); bpm: a fixed tempo for the rhythm features (what an LFO follows when
    the music does not exist yet).
    """

    audio: str | None = None  # None: a session's audio.wav (`session`)
    prompts: list[str] = field(default_factory=lambda: [DEFAULT_PROMPT])
    keyframes: list[float] | None = None  # seconds, one per prompt; None: prompts spread from first to last frame
    mappings: list[Mapping] = field(default_factory=lambda: [Mapping()])
    method: str = "txt2img"
    walk: str = "sincos"  # txt2img noise: A sin + B cos; "authors": seed noise + 0.3 (A sin + B cos); "none": fixed
    fps: float = 20.0
    steps: int | None = None  # None: the model's usual count (50 with DDIM, as the paper)
    guidance: float | None = None  # None: the model's usual guidance (7.5, the paper's; Turbo models 0)
    seed: int = SEED
    strength: float = STRENGTH  # img2img
    img2img_prompt: str = ""  # img2img frames after the first: the paper uses an empty prompt; the prompt keeps it
    color_coherence: str = "none"  # img2img: each frame's colours matched to frame 0's (coherence.COHERENCE)
    img2img_noise: float = 0.0  # img2img: std of fresh Gaussian noise added to the previous frame (0..1 pixel units)
    flow: float = 0.0  # img2img: the previous frame warped on by this fraction of the last two frames' optical flow
    init_image: str | None = None  # img2img: first frame; else the first frame is text-to-image
    model: str = models.DEFAULT_MODEL
    sr: int = DEFAULT_SR  # (the class's `audio` field hides the module here)
    batch: int = 8
    midi: str | None = None  # a .mid file for the midi_* features
    session: str | None = None  # a recorded live session: its automation drives the frames (`session_spec`)
    motion_adapter: str | None = None  # video method: a diffusers MotionAdapter folder (the model then AnimateDiff);
    #                                    None: the shipped model's bendlab-tiny-motion (`models.default_motion_adapter`)
    window: int | None = None  # video method: frames a window holds; None: 16 (the adapter's if shorter) or
    #                            the video transformer pipeline's clip length (Wan 81, LTX-Video 161)
    overlap: int | None = None  # video method: frames neighbouring windows share, cross-faded; None: window // 4
    #                             (on a video transformer: the nearest 1 + r k, r its VAE's temporal compression)
    noise: str | None = None  # video method: "shuffle", every window starts from the same draws in another order
    #                           (FreeNoise's), or "random", one draw per (latent) frame; None: "shuffle" on
    #                           AnimateDiff, "random" on Wan / LTX-Video (shuffle not measured there: no weights)
    height: int | None = None  # video method on a video transformer: px; None: its pipeline's (Wan 480, LTX 512)
    width: int | None = None  # ... and px; None: its pipeline's (Wan 832, LTX 704)
    bpm: float | None = None  # beat, beat_phase, bar_phase, lfo:K on a fixed tempo; None: the tracked beats
    music: str | None = None  # a prompt: the video's audio is this music, generated first (`video.soundtrack`)
    music_model: str | None = None  # None: the shipped music model (`music.model.resolve_music`)
    music_seconds: float | None = None  # None: the music model's longest output
    music_steps: int | None = None  # None: the music's usual steps (`music.defaults.STEPS`)
    music_bend: MusicBend | None = None  # the music's own bend, driven by the first mapping's curve

    def __post_init__(self):
        """Types and ranges, field by field (`FIELD_RULES`), then the rules that join fields; no file is read."""
        self.audio = check_audio_or_session(self.audio, self.session, self.music)
        self.mappings = _mappings(self.mappings)
        for name, rule in FIELD_RULES.items():
            value = getattr(self, name)
            if value is not None or name not in OPTIONAL:
                setattr(self, name, rule(value))
        check_settings(50 if self.steps is None else self.steps, 0.0 if self.guidance is None else self.guidance,
                       self.seed, self.strength if self.method == "img2img" else None)
        if self.method == "video" and self.motion_adapter is None:  # the shipped model's own, if it is the model
            self.motion_adapter = models.default_motion_adapter(self.model)
        _check_keyframes(self.keyframes, self.prompts)
        if self.method != "img2img":
            fields_ = self.__dataclass_fields__
            given = [n for n in IMG2IMG_ONLY if getattr(self, n) != fields_[n].default]
            if given:
                shown = ", ".join(f"{n} {getattr(self, n)!r}" for n in given)
                raise BendlabValueError(f"{shown}: only the img2img method reads {'it' if len(given) == 1 else 'them'} "
                                        f"(each frame from the previous one); accepted: method img2img (--method "
                                        f"img2img), or leave {'it' if len(given) == 1 else 'them'} out")
        check_video_method(self)
        check_music_fields(self)
        if self.session is not None:
            for name, bad in (("keyframes", self.keyframes is not None), ("midi", self.midi is not None),
                              ("method img2img", self.method == "img2img")):
                if bad:
                    raise BendlabValueError(f"{name} given with session {self.session!r:.60}; accepted: the "
                                            "session's recorded prompts and parameters, text-to-image frames")
        for m in self.mappings:
            if self.steps is not None and m.layer is not None and m.layer > self.n_layers:
                raise BendlabValueError(f"layer {m.layer} is outside 0..{self.n_layers} (the {self.method} frames "
                                        f"run {self.n_layers} steps)")
            if audio.parse_feature(m.feature).name.startswith("midi") and self.midi is None and \
                    self.session is None:  # a session's recorded mappings read no feature
                raise BendlabValueError(f"feature {m.feature!r} needs a MIDI file; accepted: midi=... (--midi FILE)")

    @property
    def stems(self) -> list[str]:
        """The stem files the mappings read."""
        if self.session is not None:  # the recorded automation drives the frames, not features
            return []
        return sorted({r.source for r in (audio.parse_feature(m.feature) for m in self.mappings)
                       if r.source not in audio.SOURCES})

    @property
    def n_layers(self) -> int:
        """Layers of one frame: steps (txt2img) or the steps image-to-image actually runs (steps resolved)."""
        return img2img_layers(self.steps, self.strength) if self.method == "img2img" else self.steps

    def identity(self, audio: str | None = None) -> dict:
        """What the frames depend on, as recorded in the render folder: the resolved settings, with the audio,
        init image, MIDI and stems by content hash rather than by path (a renamed song resumes; a same-size
        other song does not). audio: the file the frames were planned on (`Plan.audio`: the generated music's
        WAV for a spec with music), by default the spec's."""
        d = asdict(self)
        d["audio"] = {"sha256": file_sha256(audio or self.audio)}
        d["init_image"] = self.init_image and {"sha256": file_sha256(self.init_image)}
        d["midi"] = self.midi and {"sha256": file_sha256(self.midi)}
        d["stems"] = {s: file_sha256(s) for s in self.stems}
        if self.session is None:
            del d["session"]  # recorded as before sessions existed (their folders resume)
        else:
            d["session"] = {name: file_sha256(Path(self.session) / name) for name in (session.META,
                                                                                        session.AUTOMATION)}
        for m in d["mappings"]:
            if m["target"] is None:  # a latent mapping: recorded as before targets existed (its folders resume)
                del m["target"]
        if self.method == "img2img":
            del d["batch"]  # frames are rendered one by one
        if self.method == "video":  # window and overlap stay: they change pixels
            del d["batch"], d["walk"], d["motion_adapter"]  # the adapter's weights are in the fingerprint
            for name in SIZE:
                if d[name] is None:  # AnimateDiff: recorded as before sizes existed (its folders resume)
                    del d[name]
            if d["noise"] in (None, "random"):  # recorded as before the noise was a choice (its folders resume)
                del d["noise"]
        else:
            for name in VIDEO_ONLY:  # recorded as before the video method existed (its folders resume)
                del d[name]
        for name in MUSIC_ONLY:  # folded into "music" (or, without music, recorded as before music existed)
            del d[name]
        if self.music is None:
            del d["music"]
        else:
            d["music"] = self.music_identity()
        if self.bpm is None:
            del d["bpm"]
        return d

    def music_identity(self) -> dict:
        """What the generated music depends on (the spec resolved): its prompt, the music model's files by content
        (`music.model.music_fingerprint`), seconds, steps, guidance, the seed and the music bend. Recorded under
        "music" in the render folder's manifest before the music is made: music.wav is reused only while it
        matches."""
        from ..music.defaults import GUIDANCE
        from ..music.model import music_fingerprint
        return {"prompt": self.music, "model": music_fingerprint(self.music_model), "seconds": self.music_seconds,
                "steps": self.music_steps, "guidance": GUIDANCE, "seed": self.seed,
                "bend": None if self.music_bend is None else asdict(self.music_bend)}

    def model_of(self) -> models.Model:
        """The `models.Model` the spec names: its model, with its motion adapter for the video method (which also
        accepts a Wan or LTX-Video folder)."""
        return models.Model.of(self.model, motion_adapter=self.motion_adapter, video=self.method == "video")


def check_video_method(spec: VideoSpec) -> None:
    """One-line errors for what the video method (`video.joint`, `video.clip`) does not read, or not yet: a motion
    adapter, window, overlap, height or width without it, an overlap as long as the window, the txt2img-only walk
    and batch, a mapping on a target other than the latent, several prompts, a session (types only: the model,
    whether it needs an adapter, the adapter's files and the window are checked by `resolve`)."""
    if spec.method != "video":
        for name in VIDEO_ONLY:
            if getattr(spec, name) is not None:
                raise BendlabValueError(f"{name} {getattr(spec, name)!r:.60}: only the video method reads it; "
                                        "accepted: method video (--method video), or leave it out")
        return
    defaults = spec.__dataclass_fields__
    given = [n for n in TXT2IMG_ONLY if getattr(spec, n) != defaults[n].default]
    if given:
        raise BendlabValueError(f"{', '.join(f'{n} {getattr(spec, n)!r}' for n in given)}: the video method denoises "
                                "a window's frames jointly from one noise tensor; accepted: leave it out")
    for m in spec.mappings:  # every target takes one parameter per frame, but inside a motion module
        error = models.ANIMATEDIFF.frame_target_error(m.target, m.op)
        if error:
            raise BendlabValueError(error)
    if spec.session is not None:
        raise BendlabValueError("session with method video is not yet implemented; accepted: method txt2img")
    if spec.window is not None and spec.overlap is not None:
        check_overlap(spec.overlap, spec.window)


def check_music_fields(spec: VideoSpec) -> None:
    """One-line errors for the music settings: any of them without music, and a music bend with no curve to follow:
    the first mapping drives it, so its feature must exist before the music does (`audio.reads_track`: MIDI,
    keys:..., rhythm features with bpm)."""
    if spec.music is None:
        given = [n for n in MUSIC_ONLY if getattr(spec, n) is not None]
        if given:
            raise BendlabValueError(f"{', '.join(given)} without music: only a generated soundtrack reads "
                                    f"{'it' if len(given) == 1 else 'them'}; accepted: music=PROMPT (--music), or "
                                    "leave them out")
        return
    if spec.music_bend is not None:
        feature = spec.mappings[0].feature
        if audio.reads_track(feature, spec.bpm):
            raise BendlabValueError(f"the music bend follows mapping 1's curve, and its feature {feature!r} is read "
                                    "from the music, which does not exist until the bend has made it; accepted: a "
                                    "first mapping whose feature needs no track: midi_* (with a MIDI file), "
                                    "keys:T=V,..., or lfo:K / beat / beat_phase / bar_phase with bpm (--bpm)")


def check_overlap(overlap: int, window: int) -> int:
    """The overlap, once it is shorter than the window (a window must bring a frame of its own)."""
    if overlap >= window:
        raise BendlabValueError(f"overlap {overlap} is not shorter than the window ({window} frames); accepted: "
                                f"0..{window - 1} frames shared by neighbouring windows (default window // 4)")
    return overlap


def video_settings(spec: VideoSpec, model: models.Model) -> dict:
    """The video method's window and overlap (`check_window`, AnimateDiff's) or, on a video transformer, its
    window, overlap, height and width (`check_transformer_window`), with one-line errors for an image model
    without a motion adapter and a size given to AnimateDiff. Reads configs only."""
    if spec.motion_adapter is None and not model.is_transformer_video:
        raise BendlabValueError(f"method video needs a motion adapter with the {model.family.name} model "
                                f"{model.path or spec.model!r}; accepted: motion_adapter=FOLDER (--motion-adapter "
                                "PATH), a diffusers MotionAdapter folder fitting the SD v1.x model, the shipped model "
                                "(its own adapter), or a Wan or LTX-Video diffusers folder as the model")
    if spec.motion_adapter is not None:
        given = [f"{n} {getattr(spec, n)}" for n in SIZE if getattr(spec, n) is not None]
        if given:
            raise BendlabValueError(f"{', '.join(given)} with a motion adapter: AnimateDiff renders at its model's "
                                    "size; accepted: leave them out (--height, --width are read by a Wan or "
                                    "LTX-Video model)")
        window, overlap = check_window(spec)
        return {"window": window, "overlap": overlap, "noise": spec.noise or "shuffle"}
    if model.shapes is None:
        raise BendlabValueError(f"model {model.path!r} is a video transformer named by a hub id; accepted: a local "
                                "folder (its pipeline's save_pretrained), checked before its weights load")
    return {**check_transformer_window(spec, model.shapes), "noise": spec.noise or "random"}


def check_transformer_window(spec: VideoSpec, pipe) -> dict:
    """A video transformer's window, overlap, height and width, each None decided: the window its pipeline's clip
    length (`models.call_default`: Wan 81, LTX-Video 161 frames), the overlap the 1 + r k nearest window // 4, the
    size its pipeline's; one-line errors for a window that is not 1 + r k frames (r: the VAE's temporal
    compression, `video.latent_frames`) or longer than the pipeline's, and an overlap that would start a window
    inside a latent frame (window - overlap not a multiple of r). `pipe`: the model's pipeline or its skeleton."""
    from .latent_frames import check_frames
    fam = models.family_of(pipe)
    r, top = fam.temporal_ratio_of(pipe), models.call_default(fam, "num_frames")
    window = top if spec.window is None else spec.window
    try:
        check_frames(window, r)
    except BendlabValueError as e:
        raise BendlabValueError(f"window {window}: {e}") from None
    if window > top:
        raise BendlabValueError(f"window {window} is longer than {fam.name}'s {top} frames (its pipeline's clip "
                                f"length); accepted: window {r + 1}..{top}, 1 + {r} k frames (--window N), or leave "
                                "it out; a longer song is rendered in overlapping windows")
    default = min(1 + r * round((window // 4 - 1) / r), window - r)
    overlap = check_overlap(default if spec.overlap is None else spec.overlap, window)
    if (window - overlap) % r:
        fits = [o for o in range(1, window, r)]
        raise BendlabValueError(f"overlap {overlap} with window {window} would start a window inside a latent frame "
                                f"({fam.name}'s VAE compresses time {r}x: window - overlap must be a multiple of {r}); "
                                f"accepted: overlap {', '.join(map(str, fits[:4]))}{', ...' if len(fits) > 4 else ''} "
                                f"(1 + {r} k, below the window)")
    return {"window": window, "overlap": overlap, "height": spec.height or models.call_default(fam, "height"),
            "width": spec.width or models.call_default(fam, "width")}


def check_window(spec: VideoSpec) -> tuple[int, int]:
    """The video method's (window, overlap), each None decided (TRAINED_WINDOW, or the adapter's window
    `models.max_frames` if shorter; window // 4), with one-line errors for a window longer than the adapter's,
    where its temporal position embeddings end, and an overlap as long as the window. A song of any length is
    then cut into windows (`video.joint.plan_windows`); a clip shorter than the window is one window. Reads the
    adapter's config."""
    top = models.max_frames(spec.motion_adapter)
    window = min(TRAINED_WINDOW, top) if spec.window is None else spec.window
    if window > top:
        raise BendlabValueError(f"window {window} is longer than the motion adapter's {top} frames (its temporal "
                                f"position embeddings, motion_max_seq_length); accepted: window {MIN_WINDOW}..{top} "
                                "(--window N), or leave it out for the adapter's window; a longer song is rendered "
                                "in overlapping windows")
    return window, check_overlap(window // 4 if spec.overlap is None else spec.overlap, window)


# ------------------------------------------------------------------------------------------ keyframes
def parse_keyframe(s: str) -> tuple[float, str]:
    """'0:30 a gorgeous landscape' or '12.5 a floating orb' -> (seconds, prompt)."""
    m = re.fullmatch(r"\s*(?:(\d+):)?(\d+(?:\.\d*)?)\s+(.+)", s)
    if not m:
        raise BendlabValueError(f"keyframe {s!r} is not 'M:SS prompt' or 'SECONDS prompt'")
    return int(m.group(1) or 0) * 60 + float(m.group(2)), m.group(3).strip()


def prompt_weights(spec: VideoSpec, n_frames: int) -> np.ndarray:
    """(n_frames, n_prompts) linear interpolation weights of the prompts for every frame: prompt j's weight is
    1 at its keyframe and falls linearly to 0 at its neighbours' (before the first keyframe: the first prompt,
    after the last: the last). Without keyframes the prompts are spread from the first frame to the last."""
    P = len(spec.prompts)
    if P == 1:
        return np.ones((n_frames, 1))
    t = np.arange(n_frames) / spec.fps
    keys = np.asarray(spec.keyframes if spec.keyframes is not None
                      else np.linspace(0, (n_frames - 1) / spec.fps, P))
    return np.stack([np.interp(t, keys, row) for row in np.eye(P)], axis=1)


# ------------------------------------------------------------------------------------------ the plan
@dataclass
class Plan:
    """A video ready to render: the resolved spec (no None left), its features and the (n_mappings, n_frames)
    parameter curves; `vectors` holds, for each mapping whose operator takes several parameters (embed16 ->
    matrix), its (n_frames, K) parameter sets (its row of `curves` is then a one-number summary, see
    `Mapping.params`)."""

    spec: VideoSpec
    feats: audio.Features | None  # None where only the curves travel (to a Ray worker)
    curves: np.ndarray
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # mapping index -> (n_frames, K)
    weights: np.ndarray | None = None  # (n_frames, n_prompts) prompt weights per frame; None: `prompt_weights`
    layers: np.ndarray | None = None  # (n_mappings, n_frames) each mapping's layer per frame; None: its `layer`
    audio: str | None = None  # the file the features were read from and the mp4 plays; None: the spec's audio

    def __post_init__(self):
        self.audio = self.audio or self.spec.audio

    @property
    def n_frames(self) -> int:
        return self.curves.shape[1]


def resolve(spec: VideoSpec, model: models.Model | None = None) -> VideoSpec:
    """The spec with every None decided by the model (steps, guidance, each mapping's layer: the paper's 40 of
    50 at the same depth of the frames' steps; the video method's window and overlap, `check_window`) and the
    files it names checked (the init image decodes, the MIDI file parses, the stems exist, the motion adapter fits
    the model): milliseconds, no weights."""
    if not isinstance(spec, VideoSpec):
        raise BendlabValueError(f"spec {spec!r:.60} is not a VideoSpec")
    steps, guidance = (model or spec.model_of()).usual(spec.steps, spec.guidance)
    n = img2img_layers(steps, spec.strength) if spec.method == "img2img" else steps
    mappings = [m if m.layer is not None else replace(m, layer=fit_layer(LAYER, n)) for m in spec.mappings]
    spec = replace(spec, steps=steps, guidance=guidance, mappings=mappings, **_music_settings(spec))
    if spec.init_image is not None:
        from ..bend.render import load_image
        load_image(spec.init_image)  # exists and decodes, before any model work
    if spec.motion_adapter is not None:  # a MotionAdapter folder in safetensors, fitting the model
        models.check_motion_adapter(spec.motion_adapter, models.resolve(spec.model, video=True))
    if spec.method == "video":
        spec = replace(spec, **video_settings(spec, model or spec.model_of()))
    if spec.midi is not None:
        from ..audio import midi
        midi.read(spec.midi)  # exists and parses
    if spec.session is None:  # a session's mappings read no feature
        audio.check_sources([m.feature for m in spec.mappings], spec.midi)
    return spec


def _music_settings(spec: VideoSpec) -> dict:
    """The music settings resolved (none without music): seconds (the music model's longest output, read from its
    folder's configs), steps, and the music bend's layer (the paper's 40 of 50 at the same depth)."""
    if spec.music is None:
        return {}
    from ..music.defaults import STEPS as MUSIC_STEPS
    from ..music.model import music_config
    seconds = spec.music_seconds if spec.music_seconds is not None else music_config(spec.music_model).max_seconds
    steps = spec.music_steps if spec.music_steps is not None else MUSIC_STEPS
    bend = spec.music_bend
    if bend is not None and bend.layer is None:
        bend = replace(bend, layer=fit_layer(LAYER, steps))
    return {"music_seconds": seconds, "music_steps": steps, "music_bend": bend}


def plan(spec: VideoSpec, model: models.Model | None = None, audio_path: str | None = None) -> Plan:
    """`resolve` the spec, then compute its features and parameter curves: cheap, no model weights. audio_path:
    the file to read instead of the spec's audio (a spec with music: the generated WAV)."""
    spec = resolve(spec, model)
    audio_path = audio_path or spec.audio
    if audio_path is None:
        raise BendlabValueError(f"music {spec.music!r:.40} has no audio file until it is made; accepted: make_video "
                                "or render_frames (they make it), or audio_path= its WAV")
    feats = audio.audio_features(audio_path, spec.fps, spec.sr, spec.midi, spec.bpm)
    if spec.session is not None:
        return session_plan(spec, feats)
    if spec.keyframes is not None and spec.keyframes[-1] > feats.duration:
        raise BendlabValueError(f"keyframe at {spec.keyframes[-1]:g} s is beyond the audio "
                                f"({feats.duration:.2f} s)")
    vectors = {j: v for j, v in enumerate(m.vectors(feats) for m in spec.mappings) if v is not None}
    return Plan(spec, feats, np.stack([m.params(feats) for m in spec.mappings]), vectors, audio=str(audio_path))


def range_plan(spec: VideoSpec) -> Plan:
    """A plan whose curves are each mapping's range ends (low, high), no features: what `check_curves` checks of
    a spec (resolved) before its track exists (a video's music is generated after every check)."""
    curves = np.array([[m.low, m.high] for m in spec.mappings], dtype=np.float64)
    for j, m in enumerate(spec.mappings):
        if m.op in catalogue.INTEGER_OPERATORS:
            curves[j] = np.round(curves[j])
    vectors = {j: np.eye(4).reshape(1, 16) + curves[j][:, None] for j, m in enumerate(spec.mappings)
               if m.dims is not None}
    return Plan(spec, None, curves, vectors)


def check_curves(p: Plan, shapes) -> None:
    """The mappings' bends at both ends of their curves (at every layer a session recorded) against a model's
    shapes (row/column/channel indices, kernel sizes): `shapes` is a loaded pipeline or a `models.Skeleton` read
    from the model's configs."""
    from ..bend.render import latent_shape
    shape = latent_shape(shapes, 1)
    for j, m in enumerate(p.spec.mappings):
        if j in p.vectors:  # a matrix: only its layer and where depend on the model
            check_bends(shapes, [m.bend(p.vectors[j][0].tolist())], p.spec.n_layers, shape)
            continue
        ends = (float(p.curves[j].min()), float(p.curves[j].max()))
        layers = [None] if p.layers is None else sorted(set(p.layers[j].tolist()))
        check_bends(shapes, [m.bend(v, layer) for layer in layers for v in ends], p.spec.n_layers, shape)


def frame_bends(spec: VideoSpec, curves: np.ndarray, idx, vectors: dict | None = None,
                layers: tuple[int, ...] | None = None) -> list[Bend]:
    """The mappings' bends for the frames `idx`, with one parameter value per frame (one set of K per frame for
    the mappings in `vectors`, `Plan.vectors`), at each mapping's layer or at `layers` (one per mapping, shared
    by these frames: `Plan.layers`)."""
    import torch
    vectors = vectors or {}
    return [m.bend(torch.tensor(vectors[j][idx] if j in vectors else curves[j, idx], dtype=torch.float64),
                   None if layers is None else layers[j])
            for j, m in enumerate(spec.mappings)]


# ------------------------------------------------------------------------------------------ live sessions
def session_spec(folder, **settings) -> VideoSpec:
    """The VideoSpec that re-renders a recorded live session (`bendlab video --session DIR`; the folder:
    `bendlab.session`). The settings given win; the rest are the session's (session.json): prompts, mappings,
    model, seed, fps, sr, and walk "none" (live frames start from the seed's fixed noise; a "walk" key in
    session.json says otherwise). Steps and guidance are the session's with its model, the other model's usual
    ones with another (`model=`). Each mapping's layer is carried to the re-render's steps at the same relative
    depth, as every recorded layer is (`session.fit_layers`). Reads session.json (and, for another model with no
    steps given, its scheduler config): no weights, no audio.

    Notebook: notebooks/08_live.ipynb
    """
    check_audio_or_session(settings.get("audio"), folder)
    if "mappings" in settings:
        raise BendlabValueError(f"mappings given with session {str(folder)!r:.60}; accepted: the session's recorded "
                                "mappings (its automation holds their parameters)")
    meta = session.read_meta(folder)
    given = settings.get("prompts")
    if given is not None and len(given) != len(meta["prompts"]):
        raise BendlabValueError(f"{len(given)} prompt(s) given for a session that recorded {len(meta['prompts'])}; "
                                "accepted: as many prompts (each replaces the recorded one of its index), or none")
    base = {k: meta[k] for k in ("prompts", "model", "seed", "fps", "sr", "walk") if meta.get(k) is not None}
    base.setdefault("walk", "none")
    if settings.get("model", base.get("model")) == base.get("model"):  # the session's model: its steps, guidance
        base.update({k: meta[k] for k in ("steps", "guidance") if meta.get(k) is not None})
    kw = {**base, **settings}
    steps = kw.get("steps")
    if steps is None:
        model = models.Model.of(kw.get("model", models.DEFAULT_MODEL))
        steps = model.usual(None, kw.get("guidance"))[0]
    try:
        recorded = [Mapping(**m) for m in meta["mappings"]]
    except (TypeError, ValueError) as e:
        raise BendlabValueError(f"session {str(folder)!r:.60}: a recorded mapping is not a Mapping ({e})") from None
    mappings = [m if m.layer is None else replace(m, layer=int(session.fit_layers(m.layer, meta["steps"], steps)))
                for m in recorded]
    return VideoSpec(**kw, session=str(folder), mappings=mappings)


def session_plan(spec: VideoSpec, feats: audio.Features) -> Plan:
    """The plan of a session re-render (`plan` of a spec with `session`): frame k (shown from k/fps s) takes the
    automation at k/fps on the audio clock (`session.Session.at`: the parameters interpolated, the prompt and
    the layers as they were), the live frames that analysed the window starting there (a row's time is the start
    of its window); the layers carried to the re-render's steps; one-hot prompt weights. The audio is loaded for
    its duration (ceil(duration x fps) frames); no feature is computed."""
    s = session.read_session(spec.session)
    recorded = s.meta["mappings"]
    if len(recorded) != len(spec.mappings):
        raise BendlabValueError(f"{len(spec.mappings)} mappings for a session that recorded {len(recorded)}; accepted: "
                                "the session's mappings (videospec.session_spec)")
    for j, (m, d) in enumerate(zip(spec.mappings, recorded)):
        theirs = (d.get("op"), d.get("where", "all"), d.get("norm"), d.get("target"))
        if (m.op, m.where, m.norm, m.target) != theirs:
            raise BendlabValueError(f"mapping {j} bends {m.op} at {m.where}, the session's {theirs[0]} at {theirs[1]}; "
                                    "accepted: the session's mappings (videospec.session_spec)")
        if m.op in catalogue.N_PARAMS:
            raise BendlabValueError(f"mapping {j}: {m.op} takes {catalogue.N_PARAMS[m.op]} parameters a frame; a "
                                    "session records one")
    params, prompt, layers = s.at(feats.times)
    if not np.isfinite(params).all():
        raise BendlabValueError(f"session {spec.session!r:.60}: automation.csv holds a parameter that is not finite")
    if prompt.min() < 0 or prompt.max() >= len(spec.prompts):
        raise BendlabValueError(f"session {spec.session!r:.60} shows prompt {int(prompt.max())} of {len(spec.prompts)} "
                                "prompts; accepted: prompt indices 0.. the number of prompts - 1")
    for j, m in enumerate(spec.mappings):
        if m.op in catalogue.INTEGER_OPERATORS:
            params[j] = np.round(params[j])
    layers = session.fit_layers(layers, s.meta["steps"], spec.n_layers)
    return Plan(spec, feats, params, {}, np.eye(len(spec.prompts))[prompt], layers)
