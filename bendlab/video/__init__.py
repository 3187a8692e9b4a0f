"""Video from audio (layer 4): a frame's way reads spec -> renderer (or cluster) -> folder -> make -> mux.

`spec` holds a video's settings and its plan (the parameter curves); `renderer` computes frames on one pipeline
(`cluster` on Ray workers); `folder` is the resumable render folder; `coherence`, `motion` and `tween` keep an
image-to-image chain steady and fill in between frames; `quality` measures drift and flicker; `make` drives a
render and `mux` writes the mp4 with its audio.
"""

from .cluster import (ClusterError, MAX_FAILURES, PROBE_TIMEOUT, Pool, RaySource, START_TIMEOUT, WORKER_THREADS, Worker,
                      check_address, check_workers, connect, shutdown)
from .coherence import COHERENCE, match_colors, to_image, to_tensor
from .folder import IMAGE_SUFFIXES, LOCK, LOG, MANIFEST, RenderFolder, RenderFolderError, check_folder, frames_dir
from .make import check_spec, make_video, render_frames
from .motion import carry, optical_flow, warp
from .mux import DEFAULT_UPSCALE, MAX_UPSCALE, check_interpolate, check_upscale, mux, video_info
from .quality import Drift, SSIM_WINDOW, consecutive_diffs, drift, flicker, mp4_frames
from .renderer import (FrameRenderer, LocalSource, aligned_batches, device_entry, frame_bends, img2img_chain,
                       img2img_seed, noise_walk)
from .spec import (FIELD_RULES, MAX_BATCH, OPTIONAL, Plan, VideoSpec, WALKS, check_audio_or_session,
                   check_curves, parse_keyframe, plan, prompt_weights, resolve, session_plan, session_spec)
from .tween import DEFAULT_METHOD, latent_tweens, output_times, tween_name
