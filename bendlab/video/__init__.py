"""Video from audio (layer 4): a frame's way reads spec -> renderer (or cluster) -> folder -> make -> mux.

`spec` holds a video's settings and its plan (the parameter curves); `soundtrack` makes a video's music when it
has no audio file (its own bend driven by the same curve); `renderer` computes frames on one pipeline (`processes`
on worker processes, `cluster` on Ray workers; `joint` the video method's windows, `clip` on Wan and LTX-Video with
`latent_frames` and `frame_prompts`); `folder` is the resumable render folder; `coherence`, `motion` and `tween` keep
an image-to-image chain steady and fill in between frames; `quality` measures drift, flicker and seams (`compare` the
three methods on one song); `make` drives a render and `mux` writes the mp4 with its audio.
"""

from ..lazy import exports

# the names the sub-package offers, by the module that defines each: imported on first use (`bendlab.lazy`)
__all__ = exports(__name__, {
    "cluster": ("check_address", "check_decoder", "check_workers", "ClusterError", "connect", "MAX_FAILURES", "Pool",
                "PROBE_TIMEOUT", "RaySource", "renderer_of", "shutdown", "START_TIMEOUT", "windows_in_order", "Worker",
                "WORKER_THREADS"),
    "coherence": ("COHERENCE", "match_colors", "to_image", "to_tensor"),
    "compare": ("compare_methods", "METHODS", "MethodRun"),
    "folder": ("check_folder", "frames_dir", "IMAGE_SUFFIXES", "LOCK", "LOG", "MANIFEST", "RenderFolder",
               "RenderFolderError"),
    "joint": ("blend_weights", "ClipNoise", "plan_windows", "render_clip", "WindowRenderer"),
    "make": ("check_spec", "make_video", "render_frames"),
    "motion": ("carry", "optical_flow", "warp"),
    "mux": ("check_interpolate", "check_upscale", "DEFAULT_INTERPOLATION", "DEFAULT_UPSCALE", "INTERPOLATIONS",
            "MAX_UPSCALE", "mux", "video_info"),
    "processes": ("ProcessSource",),
    "quality": ("consecutive_diffs", "Drift", "drift", "flicker", "max_frame_difference", "mp4_frames",
                "neighbour_ssim", "Seams", "seams", "SSIM_WINDOW"),
    "renderer": ("aligned_batches", "device_entry", "frame_bends", "FrameRenderer", "img2img_chain", "img2img_seed",
                 "LocalSource", "noise_walk"),
    "spec": ("check_audio_or_session", "check_curves", "check_music_fields", "FIELD_RULES", "MAX_BATCH", "MUSIC_ONLY",
             "OPTIONAL", "parse_keyframe", "Plan", "plan", "prompt_weights", "range_plan", "resolve", "session_plan",
             "session_spec", "VideoSpec", "WALKS"),
    "soundtrack": ("MUSIC_WAV", "music_mapping", "prepare", "Soundtrack"),
    "tween": ("latent_tweens", "output_times", "tween_name"),
})
