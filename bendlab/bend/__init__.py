"""Bending (layer 2: imports the base modules, `models` and nothing above).

`operators` and `where` are what a bend does and where; `bends.Bend` is one bend; `fit` checks bends and settings
against a model before any work; `hooks` installs bends on a pipeline for one call (one installer per target
kind) and `attention` bends attention probabilities; `render` runs the stock pipeline (render, render_batch,
render_grid, image-to-image, the shared prefix); `insides` captures feature maps, latents and attention.
"""

from .attention import attention_call, AttentionCall, AttnBendProcessor
from .bends import as_bends, Bend, PATH_KINDS, TARGET_KINDS
from .fit import (attention_modules, check_attn_module, check_bends, check_pipe, check_settings, check_token_words,
                  check_vae_module, img2img_layers, OUTPUT_TYPES, VAE_DECODE_PARTS)
from .hooks import (BendCallback, bending, install_attention, install_latent, install_modules, install_text,
                    install_vae, INSTALLERS, NonFiniteLatentError, token_mask)
from .insides import (attention_probs, AttentionCapture, bent_probs, capturing_attention, check_attention_module,
                      check_feature_target, check_step, cross_attention, cross_attention_modules, FEATURE_KINDS,
                      feature_maps, latent_steps, token_labels)
from .operators import (add, attn_blur, attn_flip, ATTN_OPERATORS, attn_rotate, attn_translate, batch_of,
                        canonical_param, CHANNEL_OPERATORS, check_param, dilate, erode, F32_MAX, FORMULAS, gate, get,
                        HADAMARD, hadamard, INTEGER_OPERATORS, invert, KERNEL_OPERATORS, matrix, mean_normalise,
                        multiply, N_PARAMS, NO_PARAM_OPERATORS, NORM_DIMS, OPERATORS, Param, PARAM_RANGES,
                        POINTWISE_OPERATORS, reflect, reflection_matrix, rotate1, rotate2, rotate3, rotate4, rotate6,
                        rotation_matrix, six_plane_matrix, SIX_PLANES, slider_range, threshold)
from .render import (denoise, Embeddings, encode_prompts, initial_noise, latent_shape, load_image, render, render_batch,
                     render_grid, render_img2img, run_batch, shared_prefix)
from .where import KINDS, Where, WhereError
