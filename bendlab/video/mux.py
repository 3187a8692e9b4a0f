"""The last stop of a frame's way: the finished frames and the audio joined into an H.264 + AAC mp4 by ffmpeg
(through moviepy), and what an mp4 holds read back.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..checks import BendlabValueError, check_int, check_number
from ..files import temp_name

DEFAULT_UPSCALE = 4  # the shipped model's 64x64 frames shown 256x256
MAX_UPSCALE = 16
# how `--interpolate` makes the frames in between: ffmpeg's motion-compensated filter while muxing (`mux`), or the
# model's VAE (`tween.latent_tweens`); the default chosen from the `interpolate` benchmark line (docs/benchmarks.md)
INTERPOLATIONS = ("minterpolate", "latent")
DEFAULT_INTERPOLATION = "minterpolate"


def check_upscale(upscale) -> int:
    return check_int("upscale", upscale, 1, MAX_UPSCALE,
                     accepted=f"1 (the model's size) to {MAX_UPSCALE}")


def check_interpolate(interpolate, fps: float) -> float | None:
    """None (the mp4 at the frames' rate) or an output rate above `fps`, up to MAX_FPS."""
    from ..audio.signal import MAX_FPS
    if interpolate is None:
        return None
    return check_number("interpolate", interpolate, fps, MAX_FPS, low_open=True,
                        accepted=f"an output frame rate above the video's {fps:g} fps, up to {MAX_FPS:g}")


def mux(frames: list[Path], audio_path: str | Path, out: str | Path, fps: float, upscale: int = 1,
        interpolate: float | None = None) -> Path:
    """Join the frames (in order) and the audio into an H.264 + AAC mp4, each frame shown 1/fps s, upscaled
    `upscale` times by ffmpeg's nearest-neighbour scale filter while encoding. `interpolate`: an output rate
    above fps, the frames in between made by ffmpeg's motion-compensated `minterpolate` filter (no model
    weights) in the same encoding call, on the model-size frames before the upscale; the rendered frame k stays
    at k/fps s, so the audio stays in sync. Written to a per-process
    temporary name and renamed: no partial mp4 ever stands under `out`; moviepy's temporary audio file lives in
    a temporary folder removed afterwards, so a kill leaves nothing in the output folder but that name."""
    from moviepy import AudioFileClip, ImageSequenceClip
    if not frames:
        raise BendlabValueError("no frames to mux")
    out = Path(out)
    # with_duration: moviepy sums 1/fps per frame and drops the last one to float rounding otherwise
    clip = ImageSequenceClip([str(f) for f in frames], fps=fps).with_duration(len(frames) / fps)
    sound = AudioFileClip(str(audio_path))
    sound = sound.subclipped(0, min(sound.duration, clip.duration))
    tmp = temp_name(out)
    # minterpolate stops one interval short of its input: clone the last frame twice (tpad), then trim to n/fps
    filters = ([f"tpad=stop_mode=clone:stop=2,minterpolate=fps={interpolate:g}:mi_mode=mci:mc_mode=aobmc:"
                f"me_mode=bidir,trim=duration={len(frames) / fps:.6f}"] if interpolate else []) + \
        ([f"scale=iw*{upscale}:ih*{upscale}:flags=neighbor"] if upscale > 1 else [])
    params = ["-vf", ",".join(filters)] if filters else None
    try:
        with tempfile.TemporaryDirectory(prefix="bendlab-mux-") as scratch:
            clip.with_audio(sound).write_videofile(str(tmp), fps=fps, codec="libx264", audio_codec="aac",
                                                   audio_fps=44100, logger=None, pixel_format="yuv420p",
                                                   ffmpeg_params=params, temp_audiofile_path=scratch)
        os.replace(tmp, out)
    finally:
        sound.close()
        clip.close()
        tmp.unlink(missing_ok=True)
    return out


def video_info(path: str | Path) -> dict:
    """Streams and durations of an mp4, read by ffprobe-free means (imageio-ffmpeg's ffmpeg -i)."""
    import subprocess

    import imageio_ffmpeg
    r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                       text=True)
    text = r.stderr
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    info = {"video": "Video: h264" in text, "audio": "Audio: aac" in text,
            "duration": int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None}
    nf = imageio_ffmpeg.count_frames_and_secs(str(path))
    info["frames"], info["video_duration"] = nf
    return info
