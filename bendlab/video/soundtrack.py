"""A video's generated music: one curve drives both the sound and the picture (the audio-visual generation of the
paper's title).

A `VideoSpec` with `music` (a prompt) and no audio file gets its audio made first. The first mapping's curve (its
feature, smoothing and scaling; a feature that needs no track: an LFO on a fixed tempo, a MIDI file, a drawn
keyframe curve) is scaled into the music bend's own range (`music_mapping`) and bends the music's latent frame by
frame (`music.curve.curve_bends`), while the mappings bend the frames as usual. The music is rendered into the
render folder as music.wav (written atomically) and is then the video's audio: the features are read from it, so
a mapping of rms or centroid follows the music just made, and it is muxed into the mp4.

    track = prepare(spec, model)          # every check, no weights: the music's and the frames' (their ranges)
    with RenderFolder(frames_dir(out)) as folder:
        wav = track.write(folder)         # music.wav reused while the manifest's "music" settings match

The manifest records the music's settings under "music" (`VideoSpec.music_identity`: the prompt, the music
model's files by content, seconds, steps, guidance, seed, bend) before the music is made, and the WAV's hash as
the video's audio once the frames are planned on it. music.wav is reused when its settings match and its bytes
still hash to the recorded audio; it is deleted with the frames when the settings change (overwrite) or the folder
has no manifest, as a frame is.

Notebook: notebooks/11_bending_music.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import audio, models
from ..bend.bends import Bend
from ..bend.fit import check_token_words
from ..checks import BendlabValueError
from ..files import file_sha256
from ..mapping import Mapping
from ..music.curve import curve_bends
from ..music.model import MusicConfig, music_config
from .folder import RenderFolder
from .spec import VideoSpec, check_curves, range_plan, resolve

MUSIC_WAV = "music.wav"  # the generated music, in the render folder


def music_mapping(spec: VideoSpec) -> Mapping:
    """The first mapping with the music bend's operator, range and layer: the same feature, smoothing and scaling,
    so the music's parameter curve is the picture's curve in another range (spec resolved, with a music bend)."""
    b = spec.music_bend
    return replace(spec.mappings[0], op=b.op, low=b.low, high=b.high, layer=b.layer, where="all", norm=None,
                   target=None)


def silence(spec: VideoSpec, config: MusicConfig) -> audio.Features:
    """The features of a track as long as the music will be once written and read back (the pipeline keeps
    int(seconds x rate) samples; loading resamples them to `spec.sr` as librosa does, ceil(n x sr / rate)), all
    zeros: what the curves that need no track (MIDI, keys:..., rhythm with bpm) are computed on before the
    music exists, frame for frame as they will be on the WAV."""
    n = int(spec.music_seconds * config.sampling_rate)
    length = math.ceil(n * spec.sr / config.sampling_rate)
    return audio.compute_features(np.zeros(length, np.float32), spec.sr, spec.fps,
                                  None if spec.midi is None else audio.midi.read(spec.midi), spec.bpm)


@dataclass
class Soundtrack:
    """A video's music, checked and ready to render: the resolved spec, the music model's config, the music
    bend's parameter per video frame (None without a music bend) and the bends it makes."""

    spec: VideoSpec
    config: MusicConfig
    curve: np.ndarray | None
    bends: list[Bend]

    def write(self, folder: RenderFolder, overwrite: bool = False, progress: bool = False, device=None) -> Path:
        """music.wav in the locked render folder: reused while the manifest's "music" settings match and its
        bytes hash to the recorded audio (if recorded), else rendered (the music model loads here) and written
        atomically. Returns its path."""
        from ..music.render import render_music
        from ..music.model import load_music_pipeline
        spec, wav = self.spec, folder.path / MUSIC_WAV
        if folder.open({"music": spec.music_identity()}, overwrite):
            wav.unlink(missing_ok=True)  # from other settings, or from a folder nothing vouches for
        recorded = (folder.read_manifest() or {}).get("audio")
        if wav.is_file() and (recorded is None or recorded.get("sha256") == file_sha256(wav)):
            _say(progress, f"music: {wav} reused ({spec.music!r}, {spec.music_seconds:g} s)")
            return wav
        _say(progress, f"music: {spec.music!r}, {spec.music_seconds:g} s, {spec.music_steps} steps, "
                       f"{len(self.bends)} bend(s) -> {wav}")
        pipe = load_music_pipeline(spec.music_model, device)
        sound = render_music(spec.music, self.bends, seconds=spec.music_seconds, steps=spec.music_steps,
                             seed=spec.seed, pipe=pipe)
        sound.write(wav)
        return wav


def _say(progress: bool, text: str) -> None:
    if progress:
        from tqdm.auto import tqdm
        tqdm.write(text)


def prepare(spec: VideoSpec, model: models.Model | None = None) -> Soundtrack:
    """Every check of a spec with music that needs no weights and no track, before the music model loads: the
    spec resolved (the music's seconds, steps and bend layer too; the video method's window), the keyframes
    against the music's length, each mapping's bends at both ends of its range against the model's shapes, and
    the music bend's bends (from the first mapping's curve, computed on a silent track of the music's length)
    against the music model (`music.render.check_music`: seconds within its longest output, layer, where)."""
    from ..music.render import check_music
    from ..music.defaults import GUIDANCE
    if not isinstance(spec, VideoSpec) or spec.music is None:
        raise BendlabValueError(f"spec {spec!r:.60} is not a VideoSpec with music")
    model = model or spec.model_of()
    spec = resolve(spec, model)
    config = music_config(spec.music_model)
    check_music(config, [], seconds=spec.music_seconds, steps=spec.music_steps, guidance=GUIDANCE, seed=spec.seed)
    feats = silence(spec, config)
    if spec.keyframes is not None and spec.keyframes[-1] > feats.duration:
        raise BendlabValueError(f"keyframe at {spec.keyframes[-1]:g} s is beyond the music ({feats.duration:.2f} s)")
    if model.shapes is not None:
        check_curves(range_plan(spec), model.shapes)
    check_token_words(model, [m.bend(m._example(m.low), m.layer or 0) for m in spec.mappings
                              if m.where.startswith("token")], spec.prompts)
    curve, bends = None, []
    if spec.music_bend is not None:
        b = spec.music_bend
        check_music(config, [Bend(b.op, v, b.layer, b.where) for v in (b.low, b.high)], seconds=spec.music_seconds,
                    steps=spec.music_steps, guidance=GUIDANCE, seed=spec.seed)  # its layer, its span in the output
        curve = music_mapping(spec).params(feats)
        bends = curve_bends(curve, spec.fps, spec.music_bend, spec.music_bend.layer, config, spec.music_seconds)
        check_music(config, bends, seconds=spec.music_seconds, steps=spec.music_steps, guidance=GUIDANCE,
                    seed=spec.seed)
    return Soundtrack(spec, config, curve, bends)
