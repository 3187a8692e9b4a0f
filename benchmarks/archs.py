"""Random-weight pipelines with the exact architectures of real Stable Diffusion models, for benchmarks that need
no weights: the component configs below are the published config.json values of CompVis/stable-diffusion-v1-4
and stabilityai/stable-diffusion-xl-base-1.0 (unet, vae, text encoders, scheduler). The tokenizer is the shipped
model's CLIP tokenizer (the same 49408-token BPE vocabulary). Speed and memory depend on the architecture, not on
the weights' values, so these pipelines time exactly what the real ones would.
"""

from __future__ import annotations

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
