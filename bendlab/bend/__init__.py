"""Bending (layer 2: imports the base modules, `models` and nothing above).

`operators` and `where` are what a bend does and where; `bends.Bend` is one bend; `fit` checks bends and settings
against a model before any work; `hooks` installs bends on a pipeline for one call (one installer per target
kind) and `attention` bends attention probabilities; `render` runs the stock pipeline (render, render_batch,
render_grid, image-to-image, the shared prefix); `insides` captures feature maps, latents and attention.
"""

from ..lazy import exports

# the names the sub-package offers, by the module that defines each: imported on first use (`bendlab.lazy`); the
# operators' names, formulas and kinds from `catalogue`, without torch
__all__ = exports(__name__, {
    "attention": ("attention_call", "AttentionCall", "AttnBendProcessor"),
    "bends": ("as_bends", "Bend", "PATH_KINDS", "TARGET_KINDS"),
    "fit": ("attention_modules", "check_attn_module", "check_bends", "check_pipe", "check_settings",
            "check_token_words", "check_vae_module", "img2img_layers", "OUTPUT_TYPES", "VAE_DECODE_PARTS"),
    "hooks": ("BendCallback", "bending", "install_attention", "install_latent", "install_modules", "install_text",
              "install_vae", "INSTALLERS", "NonFiniteLatentError", "token_mask"),
    "insides": ("attention_probs", "AttentionCapture", "bent_probs", "capturing_attention", "check_attention_module",
                "check_feature_target", "check_step", "cross_attention", "cross_attention_modules", "FEATURE_KINDS",
                "feature_maps", "latent_steps", "token_labels"),
    "catalogue": ("ATTN_OPERATORS", "CHANNEL_OPERATORS", "FORMULAS", "INTEGER_OPERATORS", "KERNEL_OPERATORS",
                  "N_PARAMS", "NO_PARAM_OPERATORS", "NORM_DIMS", "PARAM_RANGES", "POINTWISE_OPERATORS"),
    "operators": ("add", "attn_blur", "attn_flip", "attn_rotate", "attn_translate", "batch_of", "canonical_param",
                  "check_param", "dilate", "erode", "F32_MAX", "gate", "get", "HADAMARD", "hadamard", "invert",
                  "matrix", "mean_normalise", "multiply", "OPERATORS", "Param", "reflect", "reflection_matrix",
                  "rotate1", "rotate2", "rotate3", "rotate4", "rotate6", "rotation_matrix", "six_plane_matrix",
                  "SIX_PLANES", "slider_range", "threshold"),
    "render": ("denoise", "Embeddings", "encode_prompts", "initial_noise", "latent_shape", "load_image", "render",
               "render_batch", "render_grid", "render_img2img", "run_batch", "shared_prefix"),
    "where": ("KINDS", "Where", "WhereError"),
})
