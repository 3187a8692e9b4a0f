"""Video from audio (layer 4): a frame's way reads spec -> renderer (or cluster) -> folder -> make -> mux.

`spec` holds a video's settings and its plan (the parameter curves); `renderer` computes frames on one pipeline
(`cluster` on Ray workers; `joint` the video method's windows); `folder` is the resumable render folder;
`coherence`, `motion` and `tween` keep an image-to-image chain steady and fill in between frames; `quality`
measures drift, flicker and seams; `make` drives a render and `mux` writes the mp4 with its audio.
"""

from .cluster import (check_address, check_workers, ClusterError, connect, MAX_FAILURES, Pool, PROBE_TIMEOUT, RaySource,
                      shutdown, START_TIMEOUT, Worker, WORKER_THREADS)
from .coherence import COHERENCE, match_colors, to_image, to_tensor
from .folder import check_folder, frames_dir, IMAGE_SUFFIXES, LOCK, LOG, MANIFEST, RenderFolder, RenderFolderError
from .joint import blend_weights, ClipNoise, plan_windows, render_clip, WindowRenderer
from .make import check_spec, make_video, render_frames
from .motion import carry, optical_flow, warp
from .mux import check_interpolate, check_upscale, DEFAULT_UPSCALE, MAX_UPSCALE, mux, video_info
from .processes import ProcessSource
from .quality import (consecutive_diffs, Drift, drift, flicker, max_frame_difference, mp4_frames, Seams, seams,
                      SSIM_WINDOW)
from .renderer import (aligned_batches, device_entry, frame_bends, FrameRenderer, img2img_chain, img2img_seed,
                       LocalSource, noise_walk)
from .spec import (check_audio_or_session, check_curves, FIELD_RULES, MAX_BATCH, OPTIONAL, parse_keyframe, Plan, plan,
                   prompt_weights, resolve, session_plan, session_spec, VideoSpec, WALKS)
from .tween import DEFAULT_METHOD, latent_tweens, output_times, tween_name
