"""Bending (layer 2: imports the base modules, `models` and nothing above).

`operators` and `where` are what a bend does and where; `bends.Bend` is one bend; `fit` checks bends and settings
against a model before any work; `hooks` installs bends on a pipeline for one call (one installer per target
kind) and `attention` bends attention probabilities; `render` runs the stock pipeline (render, render_batch,
render_grid, image-to-image, the shared prefix); `insides` captures feature maps, latents and attention.
"""

from .attention import AttnBendProcessor
from .bends import Bend, PATH_KINDS, TARGET_KINDS, as_bends
from .fit import (OUTPUT_TYPES, VAE_DECODE_PARTS, attention_modules, check_attn_module, check_bends, check_pipe,
                  check_settings, check_token_words, check_vae_module, img2img_layers)
from .hooks import BendCallback, NonFiniteLatentError, bending, token_mask
from .insides import (AttentionCapture, FEATURE_KINDS, attention_probs, bent_probs, capturing_attention,
                      check_attention_module, check_feature_target, check_step, cross_attention,
                      cross_attention_modules, feature_maps, latent_steps, token_labels)
from .operators import (ATTN_OPERATORS, CHANNEL_OPERATORS, F32_MAX, FORMULAS, HADAMARD, INTEGER_OPERATORS,
                        KERNEL_OPERATORS, NORM_DIMS, NO_PARAM_OPERATORS, N_PARAMS, OPERATORS, PARAM_RANGES,
                        POINTWISE_OPERATORS, Param, SIX_PLANES, add, attn_blur, attn_flip, attn_rotate, attn_translate,
                        batch_of, canonical_param, check_param, dilate, erode, gate, get, hadamard, invert, matrix,
                        mean_normalise, multiply, reflect, reflection_matrix, rotate1, rotate2, rotate3, rotate4,
                        rotate6, rotation_matrix, six_plane_matrix, slider_range, threshold)
from .render import (Embeddings, denoise, encode_prompts, initial_noise, latent_shape, load_image, render, render_batch,
                     render_grid, render_img2img)
from .where import KINDS, Where, WhereError
