"""`bendlab video`: an audio-reactive video (`video.make.make_video`), its spec from the flags, then the recipe,
then the library's defaults; or the re-render of a recorded live session (--session)."""

from __future__ import annotations

from ... import paper
from ...paper import DEFAULT_PROMPT
from ...video.cluster import WORKER_THREADS
from ..recipe import merge, read_video
from .common import (MAPPING_FLAGS, CLIError, add_mapping_args, add_model_args, given, mapping_from_args,
                     note_prompt_words, prompts_from_args, setup_device)

SPEC_FLAGS = ("method", "walk", "fps", "steps", "guidance", "seed", "strength", "img2img_prompt", "color_coherence",
              "img2img_noise", "flow", "init_image", "model", "batch", "midi", "motion_adapter", "window", "overlap",
              "noise", "height", "width", "bpm", "music", "music_model", "music_seconds", "music_steps")
MUSIC_BEND_FLAGS = ("music_op", "music_layer", "music_range", "music_where")


def add_parser(sub) -> None:
    from ...video.coherence import COHERENCE
    from ...video.mux import DEFAULT_INTERPOLATION, DEFAULT_UPSCALE, INTERPOLATIONS, MAX_UPSCALE
    from ...video.spec import MAX_BATCH, METHODS, MIN_WINDOW, NOISES, WALKS, VideoSpec
    v_ = VideoSpec.__dataclass_fields__
    v = sub.add_parser("video", help="render an audio-reactive video", description="Audio features of each "
                       "frame's window of audio drive a bend's parameter; frames are written as they finish into "
                       "<out>.frames/ (run again to resume) and muxed with the audio into an H.264 + AAC mp4. "
                       "A flag given here overrides the recipe, which overrides the default.")
    v.add_argument("audio", nargs="?", help="wav, flac, ogg or mp3 file (none with --session or --music)")
    v.add_argument("--session", metavar="DIR", help="re-render a performance recorded by `bendlab live --record "
                   "DIR`: its recorded parameters, prompts and layers (interpolated on the audio clock, not "
                   "re-analysed) and its audio.wav; the session's model, steps, seed and fps unless given (another "
                   "--steps carries the layers to the same relative depth)")
    v.add_argument("--prompt", help=f"text prompt (default \"{DEFAULT_PROMPT}\")")
    v.add_argument("--prompts", nargs="+", help="two or more prompts interpolated in text-embedding space from the "
                   "first frame to the last")
    v.add_argument("--keyframe", action="append", metavar="'M:SS PROMPT'",
                   help="a prompt at a time, repeatable (e.g. '0:00 a floating orb' '0:05 a gorgeous landscape'); "
                   "prompts are interpolated between keyframes")
    g = v.add_argument_group("mapping (one; use --recipe with [[mapping]] tables for several)")
    add_mapping_args(g)
    g.add_argument("--recipe", help="TOML/YAML with [[mapping]] tables (keys of bendlab.mapping.Mapping) and any "
                   "VideoSpec setting (flags given here override the recipe)")
    f = v.add_argument_group("frames")
    f.add_argument("--method", choices=METHODS, help="txt2img: sin/cos noise walk; img2img: each frame from the "
                   "previous one; video: the clip's frames denoised jointly in overlapping windows by AnimateDiff (an "
                   "SD v1.x --model with --motion-adapter, or the shipped model with its own; every target bent per "
                   "frame) or by a video transformer (--model a Wan 2.x or LTX-Video diffusers folder; the latent bent "
                   "per latent frame, by the mean of the curve over the 4 or 8 frames it holds) (default "
                   f"{v_['method'].default})")
    f.add_argument("--motion-adapter", metavar="PATH", help="method video: a diffusers MotionAdapter folder "
                   "(safetensors) fitting the SD v1.x --model (default with the shipped model: its own "
                   "bendlab-tiny-motion; none with a Wan or LTX-Video --model)")
    f.add_argument("--window", type=int, metavar="N", help=f"method video: frames denoised together, {MIN_WINDOW}.. "
                   "the adapter's window (default 16: the clips adapters are trained on) or, on Wan / LTX-Video, "
                   "1 + 4k / 1 + 8k frames up to its pipeline's clip length (default: that length, 81 / 161); a "
                   "longer song is rendered in overlapping windows; part of the render folder's settings")
    f.add_argument("--overlap", type=int, metavar="N", help="method video: frames neighbouring windows share, "
                   "cross-faded, 0..window - 1 (default window // 4; on Wan / LTX-Video 1 + 4k / 1 + 8k, so windows "
                   "start on latent frames); part of the render folder's settings")
    f.add_argument("--noise", choices=NOISES, help="method video: each frame's (Wan / LTX-Video: latent frame's) "
                   "initial noise; shuffle: the first window's draws, shuffled in blocks along the song (FreeNoise's), "
                   "so every window starts from the same draws and draws the same scene; random: one draw per frame, "
                   "the scene free to change from window to window (default shuffle on AnimateDiff, random on Wan / "
                   "LTX-Video); part of the render folder's settings")
    f.add_argument("--height", type=int, metavar="PX", help="method video on Wan / LTX-Video: frame height "
                   "(default: its pipeline's, 480 / 512); part of the render folder's settings")
    f.add_argument("--width", type=int, metavar="PX", help="method video on Wan / LTX-Video: frame width "
                   "(default: its pipeline's, 832 / 704); part of the render folder's settings")
    f.add_argument("--walk", choices=WALKS, help="txt2img noise: A sin + B cos (paper), or authors: seed noise + "
                   f"0.3 x the walk (default {v_['walk'].default})")
    f.add_argument("--strength", type=float, help=f"img2img strength, 0 < s < 1 (default {v_['strength'].default})")
    f.add_argument("--img2img-prompt", help="img2img prompt after the first frame (default empty, as the paper; "
                   "give the prompt to keep the conditioning)")
    f.add_argument("--color-coherence", choices=COHERENCE, help="img2img: match each frame's colours (mean and "
                   "spread per channel) to the first frame's in LAB, RGB or HSV, as Deforum (default "
                   f"{v_['color_coherence'].default}, as the "
                   "paper); the drift against frame 0 is printed at the end")
    f.add_argument("--img2img-noise", type=float, help="img2img: std of fresh Gaussian noise added to the previous "
                   f"frame before it seeds the next, 0..1 (default {v_['img2img_noise'].default:g})")
    f.add_argument("--flow", type=float, help="img2img: warp the previous frame on by this fraction of the last two "
                   f"frames' motion (OpenCV's DIS optical flow) before it seeds the next, 0..2 (default "
                   f"{v_['flow'].default:g}: none, as "
                   "the paper; 1: the motion goes on as it went)")
    f.add_argument("--init-image", help="img2img: the first frame, each next one made from the previous "
                   "(default: the first frame is text-to-image)")
    f.add_argument("--midi", help="a .mid file for the midi_* features (midi_velocity, midi_pitch, midi_onset, "
                   "midi_cc:N)")
    f.add_argument("--bpm", type=float, help="a fixed tempo for beat, beat_phase, bar_phase and lfo:K (beats at 0, "
                   "60/BPM, ... s) instead of the beats tracked in the audio")
    f.add_argument("--fps", type=float, help=f"frames per second, 0 < fps <= 240 (default {v_['fps'].default:g})")
    f.add_argument("--batch", type=int, help=f"txt2img frames per batch, 1..{MAX_BATCH} (default "
                   f"{v_['batch'].default}); "
                   "part of the render folder's settings")
    f.add_argument("--upscale", type=int, help=f"nearest-neighbour upscale in the mp4, 1..{MAX_UPSCALE} "
                   f"(default {DEFAULT_UPSCALE})")
    f.add_argument("--interpolate", type=float, metavar="FPS", help="write the mp4 at FPS (above --fps), with "
                   "frames in between the rendered ones (see --interpolate-method); no UNet runs")
    f.add_argument("--interpolate-method", choices=INTERPOLATIONS, help="how --interpolate makes the frames in "
                   "between: minterpolate (ffmpeg's motion-compensated interpolation while encoding) or latent "
                   "(the model's VAE decodes blends of the rendered frames' latents; one decode per extra frame) "
                   f"(default {DEFAULT_INTERPOLATION})")
    f.add_argument("--preview", type=float, help="only the first SECONDS, to <out>-preview.mp4")
    f.add_argument("--overwrite", action="store_true", help="discard frames made with other settings")
    from ...music import defaults as music
    from ...music.curve import MusicBend
    b_ = MusicBend.__dataclass_fields__
    s = v.add_argument_group("generated music: one curve drives the sound and the picture (see docs/music.md)")
    s.add_argument("--music", metavar="PROMPT", help="generate the video's audio from this prompt instead of "
                   "reading a file (into <out>.frames/music.wav, reused on resume; seeded by --seed), with its own "
                   "bend (--music-op) driven by the first mapping's curve; features such as rms then read the music "
                   "just made")
    s.add_argument("--music-model", metavar="M", help="music model: a diffusers StableAudioPipeline folder or hub "
                   "id (default: the shipped bendlab-tiny-music)")
    s.add_argument("--seconds", dest="music_seconds", type=float, metavar="S", help="length of the music, s "
                   "(default: the music model's longest output; longer is refused)")
    s.add_argument("--music-steps", type=int, metavar="N", help=f"denoising steps of the music (default {music.STEPS})")
    s.add_argument("--music-op", metavar="OP", help="the music's own operator, driven by the first mapping's "
                   "curve (its feature, smoothing and scaling) scaled into --music-range; the feature must need no "
                   "track: midi_* (--midi), keys:T=V,... or lfo:K with --bpm")
    s.add_argument("--music-layer", type=int, metavar="L", help="the music bend's layer 0..--music-steps (default: "
                   f"the paper's {paper.LAYER} of {paper.STEPS} at the same depth)")
    s.add_argument("--music-range", nargs=2, type=float, metavar=("LOW", "HIGH"), help="the music bend's "
                   f"parameter range (default {b_['low'].default:g} {b_['high'].default:.6g})")
    s.add_argument("--music-where", metavar="W", help=f"the music bend's span: all or time:A-B, seconds (default "
                   f"{b_['where'].default})")
    c = v.add_argument_group("rendering on several workers (see docs/cluster.md)")
    c.add_argument("--workers", type=int, help="render on N local workers (one CPU and "
                   f"{WORKER_THREADS} torch thread each, or one GPU each where there are GPUs): on a CPU this process "
                   "is the first, the other N - 1 are worker processes it starts; on GPUs, Ray actors in a new "
                   "runtime on 127.0.0.1; N = the CPUs for the fastest render")
    c.add_argument("--ray-address", help="join a running Ray cluster: auto, or HOST:PORT of the head started with "
                   "`ray start --head`; one worker per GPU (or CPU) unless --workers says otherwise")
    add_model_args(v)
    v.add_argument("--out", required=True, help="output .mp4 (its folder must exist)")
    v.set_defaults(func=run)


def video_spec_from_args(a):
    """A VideoSpec from the flags given, then the recipe ([[mapping]] tables and settings), then the defaults;
    with --session, the flags given, then the recipe's settings, then the session's (`video.spec.session_spec`)."""
    from ...video.spec import VideoSpec, parse_keyframe, session_spec
    recipe = read_video(a.recipe) if a.recipe else {}
    if a.session is not None:  # the mappings and the prompt at each moment are the session's
        stray = [n for n in MAPPING_FLAGS + ("range", "keyframe") if getattr(a, n) is not None]
        if stray or recipe.pop("mappings", None):
            raise CLIError(f"{', '.join('--' + n for n in sorted(stray)) or '[[mapping]] in --recipe'} given with "
                           "--session; accepted: the session's recorded mappings and prompt changes (settings "
                           "such as --steps, --model, --fps, --prompts with as many prompts)")
        prompts = prompts_from_args(a)
        return session_spec(a.session, **merge(recipe, {**given(a, SPEC_FLAGS), "audio": a.audio,
                                                        "prompts": prompts or None}))
    mappings = recipe.pop("mappings", [])
    m = mapping_from_args(a)
    if m is not None:
        mappings.append(m)
    if not mappings:
        raise CLIError("no mapping: give --op (with --feature, --range, --layer) or [[mapping]] in --recipe")
    flags = given(a, SPEC_FLAGS)
    bend = music_bend_from_args(a)
    if bend is not None:
        flags["music_bend"] = bend
    if a.keyframe and (a.prompt is not None or a.prompts):
        raise CLIError("--keyframe gives the prompts (one at each time), so --prompt / --prompts would be dropped; "
                       "accepted: --keyframe 'M:SS PROMPT' for every prompt, or --prompt / --prompts without "
                       "--keyframe")
    if a.prompt is not None or a.prompts:
        flags["prompts"] = prompts_from_args(a)
    if a.keyframe:
        pairs = [parse_keyframe(k) for k in a.keyframe]
        flags["keyframes"], flags["prompts"] = [t for t, _ in pairs], [p for _, p in pairs]
    if "prompts" in flags and "keyframes" not in flags:
        recipe.pop("keyframes", None)  # the recipe's times belong to the recipe's prompts
    return VideoSpec(audio=a.audio, **merge(recipe, {**flags, "mappings": mappings}))


def music_bend_from_args(a):
    """The music bend of --music-op and its flags (a dict of `music.curve.MusicBend`'s fields), or None; its flags
    without --music-op are refused (they would be dropped)."""
    if a.music_op is None:
        stray = [n for n in MUSIC_BEND_FLAGS if getattr(a, n) is not None]
        if stray:
            raise CLIError(f"{', '.join('--' + n.replace('_', '-') for n in stray)} given without --music-op; "
                           "accepted: --music-op OP with them, or music_bend in --recipe")
        return None
    d = {"op": a.music_op, "layer": a.music_layer, "where": a.music_where}
    if a.music_range:
        d["low"], d["high"] = a.music_range
    return {k: v for k, v in d.items() if v is not None}


def _gpu(device: str | None) -> bool:
    """Whether local workers would compute on GPUs: --device cuda, or no --device where CUDA is available."""
    if device is not None:
        return device == "cuda"
    import torch
    return torch.cuda.is_available()


def run(a) -> None:
    from ...video.make import make_video
    from ...video.mux import video_info
    spec = video_spec_from_args(a)
    ray = a.workers is not None or a.ray_address is not None
    processes = a.ray_address is None and a.workers is not None and not _gpu(a.device)
    ray = ray and not processes
    if not ray:
        setup_device(a)
    if a.interpolate_method is not None and a.interpolate is None:
        raise CLIError(f"--interpolate-method {a.interpolate_method} without --interpolate: no frame would be made in "
                       "between; accepted: --interpolate FPS with it, or leave it out")
    kw = given(a, ("preview", "upscale", "interpolate", "interpolate_method"))
    if processes:  # local CPU workers: plain processes (video/processes.py says why not Ray here)
        from ...video.processes import ProcessSource
        kw["source"] = ProcessSource(a.workers, a.threads)
    elif ray:
        from ...video.cluster import RaySource
        kw["source"] = RaySource(a.workers, a.ray_address, a.threads, a.device, stop=True)
    else:
        kw["device"] = a.device
    note_prompt_words(spec.model, list(spec.prompts) + ([spec.img2img_prompt] if spec.img2img_prompt else []))
    try:
        out = make_video(spec, a.out, overwrite=a.overwrite, **kw)
    finally:
        if ray:  # begun once the frames were done (RaySource stop): left to the exit, it takes seconds longer
            from ...video.cluster import shutdown
            shutdown()
    info = video_info(out)
    streams = f"{'h264' if info['video'] else 'no video'} + {'aac' if info['audio'] else 'no audio'}"
    print(f"wrote {out}: {info['frames']} frames, video {info['video_duration']:.2f} s, "
          f"file {info['duration']:.2f} s{' (preview)' if a.preview is not None else ''}, streams: {streams}")
