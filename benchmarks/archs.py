"""Random-weight pipelines with the exact architectures of real Stable Diffusion models, for benchmarks that need
no weights: the component configs below are the published config.json values of CompVis/stable-diffusion-v1-4
and stabilityai/stable-diffusion-xl-base-1.0 (unet, vae, text encoders, scheduler). The tokenizer is the shipped
model's CLIP tokenizer (the same 49408-token BPE vocabulary). Speed and memory depend on the architecture, not on
the weights' values, so these pipelines time exactly what the real ones would.

The video models (`VIDEO_ARCHS`, at the end): AnimateDiff on SD v1.5 with the v1.5-2 motion adapter, Wan 2.1 T2V
1.3B and LTX-Video 0.9, each with its published denoiser and VAE configs and the window `bench.py --arch` renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_VAE = dict(act_fn="silu", block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4, in_channels=3, out_channels=3, latent_channels=4,
            layers_per_block=2, norm_num_groups=32)
_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000)
_CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
               num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)

ARCHS = {
    "sd14": dict(
        pipeline="StableDiffusionPipeline", size=512, unet_params=859_520_964,
        unet=dict(act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
                  cross_attention_dim=768, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                  up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, in_channels=4, out_channels=4,
                  layers_per_block=2, norm_num_groups=32, sample_size=64, downsample_padding=1,
                  flip_sin_to_cos=True, freq_shift=0, mid_block_scale_factor=1, norm_eps=1e-5),
        vae={**_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        text_encoders=[("CLIPTextModel", _CLIP_L)],
        scheduler=_SCHEDULER),
    "sdxl": dict(
        pipeline="StableDiffusionXLPipeline", size=1024, unet_params=2_567_463_684,
        unet=dict(act_fn="silu", addition_embed_type="text_time", addition_time_embed_dim=256,
                  attention_head_dim=[5, 10, 20], block_out_channels=[320, 640, 1280], cross_attention_dim=2048,
                  down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                  up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], in_channels=4,
                  out_channels=4, layers_per_block=2, norm_num_groups=32, sample_size=128,
                  projection_class_embeddings_input_dim=2816, transformer_layers_per_block=[1, 2, 10],
                  use_linear_projection=True, flip_sin_to_cos=True, freq_shift=0, norm_eps=1e-5),
        vae={**_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        text_encoders=[("CLIPTextModel", {**_CLIP_L, "projection_dim": 768}),
                       ("CLIPTextModelWithProjection",
                        dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                             num_hidden_layers=32, max_position_embeddings=77, hidden_act="gelu",
                             projection_dim=1280))],
        scheduler={**_SCHEDULER, "timestep_spacing": "leading"}),
}


def unet_meta(arch: str):
    """The UNet of `arch` on the meta device: shapes and FLOPs without memory or weights."""
    from diffusers import UNet2DConditionModel
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(ARCHS[arch]["unet"])


def unet_flops(arch: str, size: int, batch: int = 2) -> float:
    """FLOPs of one UNet evaluation of `batch` latents for size x size images (batch 2: one image with
    classifier-free guidance), counted by torch's FlopCounterMode on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode
    spec, unet = ARCHS[arch], unet_meta(arch)
    side = size // 8
    with torch.device("meta"):
        x = torch.empty(batch, 4, side, side)
        text = torch.empty(batch, 77, spec["unet"]["cross_attention_dim"])
        extra = {}
        if spec["unet"].get("addition_embed_type") == "text_time":
            extra = dict(added_cond_kwargs={"text_embeds": torch.empty(batch, 1280), "time_ids": torch.empty(batch, 6)})
        with FlopCounterMode(display=False) as counter:
            unet(x, torch.full((batch,), 500), encoder_hidden_states=text, **extra)
    return float(counter.get_total_flops())


def build(arch: str, device: str, dtype: torch.dtype, tokenizer):
    """A pipeline of `arch` with random weights (seeded), created on `device` in `dtype`, DDIM as bendlab uses."""
    import diffusers
    import transformers
    spec = ARCHS[arch]
    torch.manual_seed(0)
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel.from_config(spec["unet"]).to(dtype)
        vae = diffusers.AutoencoderKL.from_config(spec["vae"]).to(dtype)
        encoders = [getattr(transformers, cls)(transformers.CLIPTextConfig(**cfg)).to(dtype)
                    for cls, cfg in spec["text_encoders"]]
    scheduler = diffusers.DDIMScheduler.from_config(spec["scheduler"])
    if arch == "sdxl":
        pipe = diffusers.StableDiffusionXLPipeline(vae=vae, text_encoder=encoders[0], text_encoder_2=encoders[1],
                                                   tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                                   scheduler=scheduler, add_watermarker=False)
    else:
        pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=encoders[0], tokenizer=tokenizer, unet=unet,
                                                 scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                                 requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# dense float16 tensor-core peak of common cards (datasheets, TFLOP/s, no sparsity): the physical limit
PEAK_TFLOPS = {"H200": 989, "H100 SXM": 989, "H100 80GB HBM3": 989, "H100 PCIe": 756, "H100": 756, "A100": 312,
               "L40S": 362, "L40": 181, "L4": 121, "A10G": 70, "A10": 125, "RTX 4090": 165, "RTX 3090": 71,
               "V100": 125, "T4": 65}


def card_peak(name: str) -> float | None:
    """The card's dense float16 peak in FLOP/s, from its name (the first table entry it contains)."""
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


# Stable Audio Open 1.0 (stabilityai/stable-audio-open-1.0) as diffusers' StableAudioPipeline holds it: a 24-layer DiT
# on 64 latent channels x 1024 frames (47.55 s at 44.1 kHz, hop 2048), the Oobleck VAE (stereo), T5-base, the
# seconds-conditioning projection, and the cosine DPM-Solver++ sampler.
STABLE_AUDIO_OPEN = dict(
    transformer=dict(sample_size=1024, in_channels=64, num_layers=24, attention_head_dim=64, num_attention_heads=24,
                     num_key_value_attention_heads=12, out_channels=64, cross_attention_dim=768, time_proj_dim=256,
                     global_states_input_dim=1536, cross_attention_input_dim=768),
    vae=dict(encoder_hidden_size=128, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 2, 4, 8, 16],
             decoder_channels=128, decoder_input_channels=64, audio_channels=2, sampling_rate=44100),
    projection=dict(text_encoder_dim=768, conditioning_dim=768, min_value=0, max_value=512),
    text_encoder=dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                      relative_attention_num_buckets=32, feed_forward_proj="relu"),
    scheduler=dict(solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_min=0.3, sigma_max=500,
                   sigma_schedule="exponential"),
    transformer_params=1_057_000_000)  # about 1.06 B (the DiT of the published checkpoint)


def build_stable_audio(device: str, dtype: torch.dtype):
    """A StableAudioPipeline with Stable Audio Open's architecture and random weights (seeded), on `device` in
    `dtype`; its tokenizer is a word-level one (the prompt's tokens do not change the cost: T5 pads to 128)."""
    import diffusers
    import transformers
    from bendlab.music.model import word_tokenizer
    spec = STABLE_AUDIO_OPEN
    torch.manual_seed(0)
    with torch.device(device):
        dit = diffusers.StableAudioDiTModel(**spec["transformer"]).to(dtype)
        vae = diffusers.AutoencoderOobleck(**spec["vae"]).to(dtype)
        projection = diffusers.StableAudioProjectionModel(**spec["projection"]).to(dtype)
        text = transformers.T5EncoderModel(transformers.T5Config(**spec["text_encoder"])).to(dtype)
    tok = word_tokenizer("a slow piano phrase high bell low bass drone fast drum loop".split(), 128)
    pipe = diffusers.StableAudioPipeline(transformer=dit, scheduler=diffusers.CosineDPMSolverMultistepScheduler(
        **spec["scheduler"]), vae=vae, text_encoder=text, tokenizer=tok, projection_model=projection)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------------ video models
# The published config.json values (diffusers format) of each model's parts, and the published parameter count of
# the part that makes it a video model, read from its checkpoint's size (float32 safetensors: 4 bytes a parameter):
#   guoyww/animatediff-motion-adapter-v1-5-2    config.json; diffusion_pytorch_model.safetensors 1.82 GB -> 453 M
#                                               (v1-5 and v1-4, without the mid-block motion module: 1.67 GB, 417 M)
#   Wan-AI/Wan2.1-T2V-1.3B-Diffusers            transformer/config.json, 5.68 GB in two shards -> 1.42 B;
#                                               vae/config.json (AutoencoderKLWan's defaults), 508 MB -> 127 M
#   Lightricks/LTX-Video 0.9 (diffusers/LTX-Video-0.9.0)  transformer/config.json, 7.69 GB in two shards -> 1.92 B;
#                                               vae/config.json, 1.68 GB -> 419 M
# The text encoders of Wan (UMT5-xxl) and LTX-Video (T5-v1.1-xxl), about 5 B parameters each, are stood in for by
# ONE random layer of their shape (d_model 4096, the width the transformers read; 64 heads; gated-GELU 10240): a
# prompt is encoded once per clip, outside the frame timing, so only the output's width and length matter. The
# prompt is padded to the pipelines' max_sequence_length (Wan 512 tokens, LTX-Video 128), as with the real
# tokenizers, so the cross-attention sees the real token counts.
_T5_XXL_LAYER = dict(d_model=4096, d_kv=64, d_ff=10240, num_heads=64, num_layers=1, feed_forward_proj="gated-gelu",
                     relative_attention_num_buckets=32, relative_attention_max_distance=128, decoder_start_token_id=0)


@dataclass(frozen=True)
class VideoArch:
    """A video model as `bench.py --arch NAME` renders it: its parts' published configs (`configs`), the published
    parameter count `params` of the part `counted` (the motion modules, or the transformer), and the window a GPU
    renders (frames at height x width, `steps`, `dtype`; `vae_dtype` where the model's own docs decode in another).
    `tiny_frames`: the CPU smoke's clip (two latent frames, 1 + the VAE's temporal compression; AnimateDiff's VAE
    decodes frame by frame: 4 frames)."""

    name: str
    title: str
    configs: dict
    counted: str
    params: int
    frames: int
    height: int
    width: int
    steps: int
    dtype: torch.dtype
    tiny_frames: int
    vae_dtype: torch.dtype | None = None

    def meta(self, part: str | None = None):
        """The model `part` (default: `counted`) on the meta device: its shapes and parameter count, no memory."""
        part = part or self.counted
        with torch.device("meta"):
            return _MAKERS[self.name][part](self.configs[part])


ANIMATEDIFF_SD15 = VideoArch(
    name="animatediff-sd15", title="AnimateDiff (SD v1.5 + motion adapter v1.5-2)",
    # SD v1.5's unet, vae and text encoder have SD v1.4's architecture (the same config.json values)
    # the adapter's config.json also holds motion_activation_fn "geglu", motion_attention_bias false and
    # motion_cross_attention_dim null: diffusers 0.42 no longer reads them, as they are its fixed choices
    configs=dict(unet=ARCHS["sd14"]["unet"], vae=ARCHS["sd14"]["vae"], text_encoder=_CLIP_L,
                 motion_adapter=dict(block_out_channels=[320, 640, 1280, 1280], motion_layers_per_block=2,
                                     motion_mid_block_layers_per_block=1, motion_num_attention_heads=8,
                                     motion_norm_num_groups=32, motion_max_seq_length=32, use_motion_mid_block=True),
                 # DDIM, as bendlab samples, with the linear betas of diffusers' AnimateDiff docs
                 scheduler={**_SCHEDULER, "beta_schedule": "linear", "timestep_spacing": "linspace"}),
    counted="motion_adapter", params=453_209_280, frames=16, height=512, width=512, steps=50, dtype=torch.float16,
    tiny_frames=4)

WAN_13B = VideoArch(
    name="wan-1.3b", title="Wan 2.1 T2V 1.3B",
    configs=dict(transformer=dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=128, in_channels=16,
                                  out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30,
                                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None,
                                  added_kv_proj_dim=None, rope_max_seq_len=1024),
                 vae=dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                          temperal_downsample=[False, True, True], dropout=0.0),
                 text_encoder=_T5_XXL_LAYER, tokens=512,
                 scheduler=dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                num_train_timesteps=1000, solver_order=2, solver_type="bh2", predict_x0=True,
                                lower_order_final=True, final_sigmas_type="zero", timestep_spacing="linspace")),
    # 33 frames (9 latent frames) at 480p, 25 steps: the 81-frame window (21 latent frames, 3.9x the FLOPs a step)
    # or 50 steps would not fit a GPU step's time box twice (plain and bent); the seconds per step scale either
    counted="transformer", params=1_418_996_800, frames=33, height=480, width=832, steps=25, dtype=torch.bfloat16,
    tiny_frames=5, vae_dtype=torch.float32)  # diffusers' Wan docs load the VAE in float32

LTX_09 = VideoArch(
    name="ltx-video", title="LTX-Video 0.9",
    configs=dict(transformer=dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1,
                                  num_attention_heads=32, attention_head_dim=64, cross_attention_dim=2048,
                                  num_layers=28, activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads",
                                  norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096,
                                  attention_bias=True, attention_out_bias=True),
                 vae=dict(in_channels=3, out_channels=3, latent_channels=128, block_out_channels=[128, 256, 512, 512],
                          layers_per_block=[4, 3, 3, 3, 4], spatio_temporal_scaling=[True, True, True, False],
                          patch_size=4, patch_size_t=1, resnet_norm_eps=1e-6, scaling_factor=1.0,
                          encoder_causal=True, decoder_causal=False),
                 text_encoder=_T5_XXL_LAYER, tokens=128,
                 scheduler=dict(base_image_seq_len=1024, base_shift=0.95, max_image_seq_len=4096, max_shift=2.05,
                                num_train_timesteps=1000, shift=1.0, shift_terminal=0.1, use_dynamic_shifting=True)),
    counted="transformer", params=1_923_385_472, frames=121, height=512, width=768, steps=50, dtype=torch.bfloat16,
    tiny_frames=9)

VIDEO_ARCHS = {a.name: a for a in (ANIMATEDIFF_SD15, WAN_13B, LTX_09)}


def _diffusers(cls: str):
    def make(config: dict):
        import diffusers
        return getattr(diffusers, cls).from_config(config)
    return make


def _transformers(cls: str, config_cls: str):
    def make(config: dict):
        import transformers
        return getattr(transformers, cls)(getattr(transformers, config_cls)(**config))
    return make


_MAKERS = {
    "animatediff-sd15": dict(unet=_diffusers("UNet2DConditionModel"), motion_adapter=_diffusers("MotionAdapter"),
                             vae=_diffusers("AutoencoderKL"), text_encoder=_transformers("CLIPTextModel",
                                                                                         "CLIPTextConfig")),
    "wan-1.3b": dict(transformer=_diffusers("WanTransformer3DModel"), vae=_diffusers("AutoencoderKLWan"),
                     text_encoder=_transformers("UMT5EncoderModel", "UMT5Config")),
    "ltx-video": dict(transformer=_diffusers("LTXVideoTransformer3DModel"), vae=_diffusers("AutoencoderKLLTXVideo"),
                      text_encoder=_transformers("T5EncoderModel", "T5Config")),
}


def motion_unet(arch: VideoArch):
    """SD's UNet with the adapter's motion modules (`UNetMotionModel`), as `AnimateDiffPipeline` assembles it
    (`from_unet2d`), made with its own random weights on the current default device (nothing to copy)."""
    from diffusers import UNetMotionModel
    return UNetMotionModel.from_unet2d(arch.meta("unet"), arch.meta("motion_adapter"), load_weights=False)


def build_video(arch: VideoArch, device: str, dtype: torch.dtype, tokenizer=None):
    """A pipeline of `arch` with random weights (seeded), created on `device` in `dtype` (the VAE in
    `arch.vae_dtype` where it has one), in evaluation mode: diffusers' AnimateDiffPipeline (`tokenizer`: a CLIP
    tokenizer, the shipped model's), WanPipeline or LTXPipeline (a word-level tokenizer built here, padding to the
    pipeline's max_sequence_length; the text encoder a one-layer stand-in, see above)."""
    import diffusers
    from bendlab.music.model import word_tokenizer
    from bendlab.video.tiny import WORDS
    make, cfg = _MAKERS[arch.name], arch.configs
    torch.manual_seed(0)
    with torch.device(device):
        if arch is ANIMATEDIFF_SD15:
            if tokenizer is None:
                raise ValueError("AnimateDiff needs a CLIP tokenizer (the shipped model's)")
            denoiser = motion_unet(arch).to(dtype)
            text = make["text_encoder"](cfg["text_encoder"])
        else:
            tokenizer = word_tokenizer(WORDS, cfg["tokens"])
            denoiser = make["transformer"](cfg["transformer"]).to(dtype)
            text = make["text_encoder"]({**cfg["text_encoder"], "vocab_size": len(tokenizer)})
        vae = make["vae"](cfg["vae"]).to(arch.vae_dtype or dtype)
        text = text.to(dtype)
    if arch is ANIMATEDIFF_SD15:
        pipe = diffusers.AnimateDiffPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=denoiser,
                                             motion_adapter=None, scheduler=diffusers.DDIMScheduler.from_config(
                                                 cfg["scheduler"]))
    elif arch is WAN_13B:
        pipe = diffusers.WanPipeline(tokenizer=tokenizer, text_encoder=text, vae=vae, transformer=denoiser,
                                     scheduler=diffusers.UniPCMultistepScheduler.from_config(cfg["scheduler"]))
    else:
        pipe = diffusers.LTXPipeline(tokenizer=tokenizer, text_encoder=text, vae=vae, transformer=denoiser,
                                     scheduler=diffusers.FlowMatchEulerDiscreteScheduler.from_config(cfg["scheduler"]))
    for part in (denoiser, vae, text):
        part.eval()  # as from_pretrained leaves them (T5's dropout would make every call differ)
    pipe.set_progress_bar_config(disable=True)
    return pipe
