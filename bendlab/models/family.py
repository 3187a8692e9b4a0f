"""The family seam: one `Family` object per kind of pipeline says everything the engine needs of it.

A family names its diffusers pipeline classes (text-to-image, image-to-image), the component folders a saved
pipeline has, its text encoders and tokenizers, its denoiser (the pipeline attribute the UNet or transformer
lives at: module and attention bends are found there), the callback style its pipeline offers, and its latent
`Layout`: how the pipeline holds the latent and how to view it as the **canonical tensor** the operators act on,
(N, C, H, W), channels by grid. Images are that already; a video latent (B, C, F, H, W) is viewed per frame as
(B F, C, H, W); packed token sequences (Flux: (B, H/p W/p, C p p)) are unpacked to their grid and packed back, and
LTX-Video's packed video tokens (B, F H W / patches, C p_t p p) are unpacked to (B F, C, H, W), one row per latent
frame, and packed back; an audio latent (B, C, T), channels by time, is viewed as (B, C, 1, T): one row, time along
the columns.
The engine (`bend.hooks`, `bend.fit`) asks the family, never `if sdxl`: adding a family is one new `Family` here.
SD v1.x/2.x and SDXL are on it, and AnimateDiff (an SD v1.x model with a motion adapter, VIDEO layout: the
pipeline's latent is one clip, (1, C, F, H, W), so the canonical view has one row per frame), and Stable Audio (a
music model: DiT denoiser, Oobleck VAE, T5 text encoder; SEQUENCE layout, its channel operators acting on every
group of 4 of its latent channels); image transformer pipelines are refused (with why) until their families land.
The video transformers Wan 2.x (VIDEO layout) and LTX-Video (PACKED_VIDEO layout) are on it for the latent and
their transformer blocks (`frame_blocks`: a block's tokens are the clip's, latent frame by latent frame), with one
parameter per latent frame (their folders load where a video is asked for, `family(..., video=True)`: the video
method, `video.clip`); their VAEs compress time (r video frames per latent frame after the first:
`video.latent_frames`). The text, attention and VAE decoder targets are refused on them in one line with the reason
(`Family.check_targets`, `DIT_REFUSALS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..checks import BendlabValueError

if TYPE_CHECKING:  # only annotations: `models.folder` reads a model's family without torch
    import torch


@dataclass(frozen=True)
class Layout:
    """How a family's pipeline holds its latent, and its canonical view (N, C, H, W) for the operators.

    kind: "image" (B, C, H, W), the canonical view itself; "sequence" (B, C, T), an audio latent, viewed as
          (B, C, 1, T); "video" (B, C, F, H, W), viewed per frame as
          (B F, C, H, W) (frame-major within each item: row b F + f is item b's frame f); "packed" (B, H/p W/p,
          C p p), a transformer's patch tokens, unpacked to (B, C, H, W) (`patch` p) as diffusers' Flux pipeline
          packs them; "packed_video" (B, F/p_t H/p W/p, C p_t p p), a video transformer's patch tokens, unpacked to
          (B, C, F, H, W) as diffusers' LTX pipeline does (`LTXPipeline._unpack_latents`) and viewed per frame as
          "video" is, (B F, C, H, W).
    patch: the side of a packed patch (2 for Flux, 1 for LTX-Video 0.9); unused otherwise.
    patch_t: the frames of a packed video patch (1 for LTX-Video 0.9); unused otherwise.
    """

    kind: str = "image"
    patch: int = 2
    patch_t: int = 1

    def shape(self, batch: int, channels: int, grid: tuple[int, ...]) -> tuple[int, ...]:
        """The pipeline's latent shape for `batch` items of `channels` channels on `grid` latent cells ((H, W), (F, H,
        W) for the video kinds, (T,) for a sequence)."""
        if self.kind in ("image", "video", "sequence"):
            return (batch, channels, *grid)
        cells, q = math.prod(grid), self.patch_t if self.kind == "packed_video" else 1
        return batch, cells // (q * self.patch ** 2), channels * q * self.patch ** 2

    def canonical(self, x: torch.Tensor, grid: tuple[int, ...] | None = None) -> torch.Tensor:
        """The latent as (N, C, H, W). grid: (H, W) of a packed latent, (F, H, W) of a packed video latent, in
        latent cells (its token count alone does not say)."""
        if self.kind == "image":
            return x
        if self.kind == "video":
            B, C, F, H, W = x.shape
            return x.permute(0, 2, 1, 3, 4).reshape(B * F, C, H, W)
        if self.kind == "sequence":
            return x.unsqueeze(2)
        if self.kind == "packed_video":
            if grid is None or len(grid) != 3:
                raise BendlabValueError("a packed video latent needs its grid (F, H, W) to be unpacked; accepted: "
                                        "grid=(F, H, W)")
            (F, H, W), p, q = grid, self.patch, self.patch_t
            B, N, D = x.shape
            x = x.reshape(B, F // q, H // p, W // p, D // (q * p * p), q, p, p)  # as LTXPipeline._unpack_latents
            x = x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(B, -1, F, H, W)
            return VIDEO.canonical(x)
        if self.kind == "packed":
            if grid is None:
                raise BendlabValueError("a packed latent needs its grid (H, W) to be unpacked; accepted: grid=(H, W)")
            B, N, D = x.shape
            p, (H, W) = self.patch, grid
            C = D // (p * p)
            x = x.view(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)
            return x.reshape(B, C, H, W)
        raise BendlabValueError(f"latent layout {self.kind!r} is unknown; accepted: image, video, sequence, packed, "
                                "packed_video")

    def restore(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The canonical view `y` back in the pipeline's layout, the shape of `like` (the latent it came from)."""
        if self.kind == "image":
            return y
        if self.kind == "video":
            B, C, F, H, W = like.shape
            return y.reshape(B, F, C, H, W).permute(0, 2, 1, 3, 4)
        if self.kind == "sequence":
            return y.squeeze(2)
        if self.kind == "packed_video":
            B, (N, C, H, W), p, q = like.shape[0], y.shape, self.patch, self.patch_t
            F = N // B
            y = y.reshape(B, F // q, q, C, H // p, p, W // p, p)  # as LTXPipeline._pack_latents
            return y.permute(0, 1, 4, 6, 3, 2, 5, 7).reshape(like.shape)
        B, C, H, W = y.shape
        p = self.patch
        y = y.view(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
        return y.reshape(like.shape)


IMAGE = Layout("image")
VIDEO = Layout("video")
SEQUENCE = Layout("sequence")
PACKED = Layout("packed", 2)
PACKED_VIDEO = Layout("packed_video", 1, 1)  # LTX-Video 0.9's transformer: one token per latent cell


@dataclass(frozen=True)
class Family:
    """A family of pipelines bendlab bends: what the engine needs to know of it (see the module docstring)."""

    name: str
    txt2img: str            # the diffusers pipeline class for text-to-image
    img2img: str            # ... and for image-to-image (built from the same components, no extra memory)
    components: tuple       # the sub-folders a saved pipeline has
    text_encoders: tuple    # the text encoders whose weights make a render (`weights_fingerprint`)
    aliases: tuple = ()     # other pipeline classes saved with the same components (loaded as txt2img)
    tokenizers: tuple = ("tokenizer",)  # the tokenizers; the first finds a token:WORD's tokens
    denoiser: str = "unet"  # the pipeline attribute (and folder) of the denoiser (or "transformer")
    denoiser_class: str = "UNet2DConditionModel"  # its diffusers class (built on the meta device for the checks)
    callback: str = "on_step_end"  # "on_step_end": callback_on_step_end with tensor_inputs; "step": the per-step
    #                                callback(step, timestep, latents) of older pipelines
    layout: Layout = IMAGE  # how the pipeline holds its latent, and its canonical view
    channels: int = 4       # latent channels the channel operators (rotations, reflections, matrix) act on (a
    #                         latent with more acts on every group of this many: Stable Audio's 64 as 16 groups)
    branch: str = "offset"  # how a render starting at layer L > 0 cuts the schedule: "offset" keeps the scheduler's
    #                         arrays and begins at index L (as diffusers' image-to-image); "restart" cuts the
    #                         timesteps and sigmas to those from L on, a fresh schedule from that noise level (a
    #                         multistep solver counts its final lower-order steps from its schedule's end)
    extra_tokens: int = 0   # conditioning tokens after the prompt's in encoder_hidden_states (Stable Audio: its 2
    #                         duration tokens): text and cross-attention bends leave them alone
    medium: str = "image"   # what it makes: "image", "video" or "audio" (`bendlab render`/`video` take images,
    #                         `bendlab music` audio)
    spatial_ratio: str = "vae_scale_factor"  # the pipeline attribute holding its VAE's spatial compression
    temporal_ratio: str = ""  # ... and its temporal compression (video frames per latent frame after the first);
    #                           "": none, one latent frame per video frame (AnimateDiff)
    size_multiple: int = 1  # what height and width must be multiples of by the pipeline's own check (its
    #                         `check_inputs`), beyond its VAE and patches (LTX: 32)
    only_targets: tuple = ()  # the only target kinds checked on this family ((): every kind); the others are refused
    #                           in one line with the reason (`check_targets`, `DIT_REFUSALS`)
    frame_blocks: str = ""  # a video transformer's list of blocks (Wan: "blocks", LTX-Video: "transformer_blocks"):
    #                         their tokens are the clip's, (B, F' h w, D), latent frame by latent frame, so a module
    #                         bend there takes one parameter per latent frame (`bend.hooks`); other modules are
    #                         refused (`frame_target_error`)
    text_projection: str = ""  # ... and the module projecting the text encoder's output for the blocks'
    #                            cross-attention (prompts along the frames, `video.frame_prompts`)
    across_frames: str = ""  # a video denoiser's name for its temporal modules (AnimateDiff: "motion_modules"): inside
    #                          one, the batch is the pixels and the frames are the sequence, so a bend with one
    #                          parameter per frame cannot act there (`check_targets`); the module's output is per frame

    def denoiser_of(self, pipe) -> torch.nn.Module:
        """The denoiser of a pipeline of this family (a loaded one, or a `Skeleton`): module bends, attention bends
        and text bends act on it."""
        return getattr(pipe, self.denoiser)

    def tokenizer_of(self, pipe):
        """The tokenizer a token:WORD selection is found with."""
        return getattr(pipe, self.tokenizers[0])

    def latent_size(self, pipe) -> int:
        """The latent's native side (grid cells) of a pipeline of this family; for audio its length (frames)."""
        return self.denoiser_of(pipe).config.sample_size

    def temporal_ratio_of(self, pipe) -> int:
        """r: the video frames each latent frame after the first decodes into (1 where the VAE keeps time)."""
        return int(getattr(pipe, self.temporal_ratio)) if self.temporal_ratio else 1

    def latent_grid(self, pipe, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(F', H', W'): the latent cells of a clip of num_frames frames at height x width px on a pipeline of this
        family, as its `prepare_latents` counts them ((num_frames - 1) // r + 1 latent frames)."""
        r, s = self.temporal_ratio_of(pipe), int(getattr(pipe, self.spatial_ratio))
        return (num_frames - 1) // r + 1, height // s, width // s

    def unpack_grid(self, pipe, call: dict) -> tuple[int, int, int] | None:
        """The grid a packed video latent needs to be unpacked (`latent_grid`), from the arguments of the pipeline's
        `prepare_latents` (`call`: its num_frames, height and width); None for a layout whose shape says it. A
        transformer whose patches are not the layout's is refused in one line."""
        if self.layout.kind != "packed_video":
            return None
        cfg = self.denoiser_of(pipe).config
        if (cfg.patch_size, cfg.patch_size_t) != (self.layout.patch, self.layout.patch_t):
            raise BendlabValueError(f"{self.name}'s transformer has patches {cfg.patch_size_t}x{cfg.patch_size}x"
                                    f"{cfg.patch_size} (frames x height x width); accepted: {self.layout.patch_t}x"
                                    f"{self.layout.patch}x{self.layout.patch}, as LTX-Video 0.9's")
        return self.latent_grid(pipe, call["num_frames"], call["height"], call["width"])

    def patch_side(self, pipe) -> int:
        """The denoiser's spatial patch side (Wan: its patch_size (1, 2, 2) -> 2; LTX-Video: patch_size; 1 for a
        UNet): a transformer block's tokens of a latent frame are (h / p) x (w / p)."""
        p = getattr(self.denoiser_of(pipe).config, "patch_size", None) or 1
        return int(p[-1] if isinstance(p, (tuple, list)) else p)

    def check_targets(self, bends) -> None:
        """A one-line error for a bend whose target kind this family refuses (`only_targets`, with the reason from
        `DIT_REFUSALS`), or that cannot take one parameter per frame (`frame_target_error`)."""
        for b in bends:
            if self.only_targets and b.kind not in self.only_targets:
                why = ", ".join(DIT_REFUSALS.get(b.kind, ("it has not been tested as a bend target on this family",)))
                raise BendlabValueError(f"target {b.target!r} on {self.name}: {why}; accepted: "
                                        f"{', '.join(self.only_targets)} (unet:{self.frame_blocks}.K)")
            error = self.frame_target_error(b.target, b.op)
            if error:
                raise BendlabValueError(error)

    def refusals(self) -> list[tuple[str, str]]:
        """(target, why in brief) of each target kind this family refuses (not in `only_targets`), the target as a
        bend names it ("text", "attn:PATH", "vae:PATH"), the reason the start of what `check_targets` says
        (`DIT_REFUSALS`): `bendlab targets` prints them under what it lists."""
        return [(k if k == "text" else f"{k}:PATH", brief) for k, (brief, _) in DIT_REFUSALS.items()
                if self.only_targets and k not in self.only_targets]

    def frame_target_error(self, target: str | None, op: str | None = None) -> str | None:
        """Why `target` (bent by `op`) cannot take one parameter per frame on this family, or None. Inside a
        temporal module (AnimateDiff's `motion_modules.K`: its transformer blocks, proj_in) the batch rows are the
        latent's pixels and the frames run along the sequence, so a module bend there is refused; the module's own
        output is back to one row per frame. Its temporal attention is bent per query frame (each frame's row of
        probabilities over the frames, `bend.attention`), with point-wise operators only: its queries are frames,
        not an image for the attention-map operators."""
        if self.frame_blocks and target and target.startswith("unet:"):
            return self._block_error(target)
        if not self.across_frames or not target or ":" not in target:
            return None
        kind, path = target.split(":", 1)
        parts = path.split(".")
        if kind not in ("unet", "attn") or self.across_frames not in parts:
            return None
        k = parts.index(self.across_frames)
        module = ".".join(parts[: k + 2])
        if kind == "attn" and op and op.startswith("attn_"):  # the attention-map operators (bend.catalogue)
            return (f"operator {op!r} on the temporal attention {target!r}: it acts on a token's map over the image, "
                    f"and temporal attention's queries are the window's frames; accepted: a point-wise operator "
                    f"(add, multiply, threshold, invert) on it, or {op} on spatial attention (attentions.K)")
        if kind == "unet" and len(parts) > k + 2:
            return (f"target {target!r} is inside the temporal module {module} of {self.name}, where the frames are "
                    f"the sequence and the batch is the latent's pixels, so a parameter per frame cannot land on its "
                    f"frame; accepted: the module's output (unet:{module}), its temporal attention "
                    f"(attn:{module}.transformer_blocks.J.attn1), the UNet's other blocks, text, vae:decoder...")
        return None

    def _block_error(self, target: str) -> str | None:
        """Why a module target of a video transformer cannot take one parameter per latent frame, or None: only its
        blocks (`frame_blocks`.K) and the modules inside them hold the clip's tokens, frame by frame; a cross-
        attention's key and value side holds the prompt's tokens."""
        parts = target.split(":", 1)[1].split(".")
        accepted = f"accepted: unet:{self.frame_blocks}.K (K a block index) or a module inside one, or the latent"
        if parts[0] != self.frame_blocks or len(parts) < 2 or not parts[1].isdigit():
            return (f"target {target!r} on {self.name} is not one of its transformer blocks, the modules whose tokens "
                    f"are the clip's latent frames (embeddings, projections and the output head hold the text, the "
                    f"timestep or the whole clip); {accepted}")
        if "attn2" in parts and parts[-1] in KEY_VALUE_PARTS:
            return (f"target {target!r} is the key/value side of a cross-attention, whose rows are the prompt's "
                    f"tokens shared by every latent frame, not the clip's; {accepted}")
        return None

    def blocks(self, denoiser: torch.nn.Module) -> list[str]:
        """The names of the denoiser's top-level blocks a module bend usually takes (for the one-line errors)."""
        return [n for n, _ in denoiser.named_children() if "blocks" in n or n == "mid_block"]

    @staticmethod
    def attention_modules(denoiser: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
        """(path, module) of every diffusers `Attention` module of the denoiser, in `named_modules` order."""
        from diffusers.models.attention_processor import Attention
        return [(n, m) for n, m in denoiser.named_modules() if isinstance(m, Attention)]


SD = Family("SD v1.x / 2.x", "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
            ("unet", "vae", "text_encoder", "tokenizer", "scheduler"), ("text_encoder",),
            ("LatentConsistencyModelPipeline", "LatentConsistencyModelImg2ImgPipeline"))  # LCM models
SDXL = Family("SDXL", "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
              ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
              ("text_encoder", "text_encoder_2"), tokenizers=("tokenizer", "tokenizer_2"))
FAMILIES = (SD, SDXL)  # image families: a model folder's model_index.json names one of them
# video families: AnimateDiff is built from an image family's folder plus a motion module (`models.adapter`), never
# found from a folder's model_index.json; the video method (`video.joint`) renders on it
ANIMATEDIFF = Family("AnimateDiff (SD v1.x + motion adapter)", "AnimateDiffPipeline", "AnimateDiffVideoToVideoPipeline",
                     SD.components, ("text_encoder",), denoiser_class="UNetMotionModel", layout=VIDEO,
                     across_frames="motion_modules")
# video transformers: a diffusers folder's model_index.json names their pipeline (`family(..., video=True)` finds
# them: the video method renders a song on one, `video.clip`; image commands refuse them); the latent and the
# transformer blocks are targets, per latent frame. `channels` stays 4, the group the channel operators act on (as
# for Stable Audio's 64): Wan's 16 latent channels (Wan 2.2 5B: 48) are 4 (12) groups, LTX-Video's 128 are 32. Their
# img2img classes are the video-to-video pipelines built from the same components (not called by bendlab yet).
_VIDEO_DIT = dict(denoiser="transformer", callback="on_step_end", medium="video", only_targets=("latent", "unet"))
WAN = Family("Wan 2.x", "WanPipeline", "WanVideoToVideoPipeline",
             ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"), ("text_encoder",),
             denoiser_class="WanTransformer3DModel", layout=VIDEO, size_multiple=16,
             spatial_ratio="vae_scale_factor_spatial", temporal_ratio="vae_scale_factor_temporal",
             frame_blocks="blocks", text_projection="condition_embedder.text_embedder", **_VIDEO_DIT)
LTX = Family("LTX-Video", "LTXPipeline", "LTXConditionPipeline",
             ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"), ("text_encoder",),
             denoiser_class="LTXVideoTransformer3DModel", layout=PACKED_VIDEO, size_multiple=32,
             spatial_ratio="vae_spatial_compression_ratio", temporal_ratio="vae_temporal_compression_ratio",
             frame_blocks="transformer_blocks", text_projection="caption_projection", **_VIDEO_DIT)
# why the video transformers refuse a target kind per latent frame (`Family.check_targets`): the reason in brief
# (what `bendlab targets` prints, `Family.refusals`), then the rest of it (the one-line error says both, joined by ", ")
DIT_REFUSALS = {
    "text": ("the prompt embedding is one (tokens, dim) tensor per call that every latent frame attends to",
             "so one parameter per latent frame has no row of its own there (several prompts along the frames "
             "condition each latent frame on its own mix: prompts with keyframes)"),
    "attn": ("its attention runs in the model's own processor (rotary, fused kernels) with no explicit probabilities",
             "and a self-attention's rows run over every latent frame's tokens (Wan 2.1 at 480x832, 81 frames: 32760 "
             "tokens, 4 GiB of probabilities per head in float32)"),
    "vae": ("the 3D VAE decoder mixes neighbouring latent frames in its temporal convolutions",
            "so a parameter per latent frame has no frame of its own there (Wan's causal one carries every frame "
            "into the later ones through its cache, LTX-Video's reaches both ways)"),
}
KEY_VALUE_PARTS = ("to_k", "to_v", "to_kv", "norm_k", "add_k_proj", "add_v_proj", "norm_added_k", "to_added_kv")
VIDEO_TRANSFORMERS = (WAN, LTX)
VIDEO_FAMILIES = (ANIMATEDIFF, *VIDEO_TRANSFORMERS)
# audio families: a music model's folder names StableAudioPipeline; `bendlab music` / `music.render` render on them.
# Audio-to-audio is the same pipeline started part-way from the encoded recording (`music.render`), as bendlab's
# image-to-image is for images, so txt2img and img2img name the one class.
STABLE_AUDIO = Family("Stable Audio", "StableAudioPipeline", "StableAudioPipeline",
                      ("transformer", "projection_model", "vae", "text_encoder", "tokenizer", "scheduler"),
                      ("text_encoder", "projection_model"), denoiser="transformer",
                      denoiser_class="StableAudioDiTModel", callback="step", layout=SEQUENCE, branch="restart",
                      extra_tokens=2, medium="audio")
AUDIO_FAMILIES = (STABLE_AUDIO,)
SUPPORTED = ", ".join(f"{f.txt2img} ({f.name})" for f in FAMILIES)
# pipelines whose denoiser is a transformer on a 16-channel latent: refused, with the reason
TRANSFORMER_PIPELINES = ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "FluxPipeline",
                         "FluxImg2ImgPipeline", "SanaPipeline", "AuraFlowPipeline")


def family(class_name: str, model: str = "", video: bool = False) -> Family:
    """The family of a pipeline class named in a model_index.json; a one-line error for any other class. video:
    where a video is asked for (the video method, `load_pipeline`), the video transformers (`VIDEO_TRANSFORMERS`)
    are accepted too; elsewhere (image commands) they are refused in one line."""
    for f in FAMILIES + (VIDEO_TRANSFORMERS if video else ()):
        if class_name in (f.txt2img, f.img2img, *f.aliases):
            return f
    where = f"model {model!r}" if model else "model"
    if class_name == STABLE_AUDIO.txt2img:
        raise BendlabValueError(f"{where} is a music model ({class_name}); accepted here: an image model "
                                f"({SUPPORTED}); bend music with `bendlab music` or bendlab.music.render_music")
    dit = next((f for f in VIDEO_TRANSFORMERS if class_name in (f.txt2img, f.img2img)), None)
    if dit is not None:
        raise BendlabValueError(f"{where} is a video model ({class_name}, {dit.name}); accepted here: an image model "
                                f"({SUPPORTED}); render a video with it: `bendlab video --method video --model "
                                "FOLDER` (VideoSpec(method=\"video\", model=FOLDER))")
    if class_name in TRANSFORMER_PIPELINES:
        raise BendlabValueError(f"{where} holds a {class_name}, a 16-channel-latent transformer model; accepted: "
                                f"4-channel-latent UNet pipelines ({SUPPORTED}), since the channel operators "
                                f"(rotations, "
                                "reflections) are defined on 4 latent channels")
    raise BendlabValueError(f"{where} holds a {class_name or 'unknown'} pipeline; accepted: {SUPPORTED}")


def family_of(pipe) -> Family:
    """The family of a loaded pipeline (its class, or an alias's) or of a `Skeleton` (which names its own)."""
    own = getattr(pipe, "family", None)
    if isinstance(own, Family):
        return own
    name = type(pipe).__name__
    for f in FAMILIES + VIDEO_FAMILIES + AUDIO_FAMILIES:
        if name in (f.txt2img, f.img2img, *f.aliases):
            return f
    return SDXL if getattr(pipe, "text_encoder_2", None) is not None else SD  # a subclass of one of them


