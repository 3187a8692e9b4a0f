"""What the operators are, without torch: their names, formulas, parameters (how many, typical ranges, integers or
none) and kinds (point-wise, channel-mixing, morphological, attention maps). `operators` implements them and
imports these names from here (one source); the command line's parser, `bendlab operators` and the checks that
only need a name read them without importing torch.

Notebook: notebooks/01_operators.ipynb
"""

import math

# every operator, in the order `operators.OPERATORS` holds them, with its formula for the docs' operator table, the
# CLI help and the widgets
FORMULAS = {
    "add": "x + r", "multiply": "x * r", "threshold": "1 if x >= r else 0 (paper eq. 3)",
    "gate": "x if |x| >= r else 0 (authors' code)", "invert": "1/r - x, r != 0",
    "rotate1": "R1(r) . x, channels 1-2, r in radians", "rotate2": "R2(r) . x, channels 0-2",
    "rotate3": "R3(r) . x, channels 0-3", "rotate4": "R4(r) . x, channels 0-1",
    "reflect": "diag(.., -1 at channel r, ..) . x, r in 0..3",
    "erode": "erosion, r x r kernel of ones, r >= 1", "dilate": "dilation, r x r kernel of ones, r >= 1",
    "matrix": "M . x, any 4x4 M: 16 values, row by row",
    "rotate6": "R01(a0) R02(a1) .. R23(a5) . x, 6 angles",
    "hadamard": "H . x, H = hadamard(4) / 2 (H H = I)",
    "attn_rotate": "attn targets: token maps rotated by r radians",
    "attn_translate": "attn targets: token maps shifted by dx,dy of the side",
    "attn_flip": "attn targets: token maps flipped, r = 0 rows, 1 columns",
    "attn_blur": "attn targets: token maps blurred, sigma r pixels",
}
NAMES = tuple(FORMULAS)

# the kind of parameter each operator takes: (low, high) typical slider range
PARAM_RANGES = {
    "add": (-3.0, 3.0), "multiply": (-10.0, 10.0), "threshold": (-2.0, 2.0), "gate": (0.0, 2.0),
    "invert": (0.5, 1000.0), "rotate1": (0.0, 2 * math.pi), "rotate2": (0.0, 2 * math.pi),
    "rotate3": (0.0, 2 * math.pi), "rotate4": (0.0, 2 * math.pi), "reflect": (0, 3), "erode": (1, 8),
    "dilate": (1, 8), "matrix": (-2.0, 2.0), "rotate6": (0.0, 2 * math.pi), "hadamard": (0.0, 0.0),
    "attn_rotate": (-math.pi, math.pi), "attn_translate": (-0.5, 0.5), "attn_flip": (0, 1), "attn_blur": (0.0, 3.0),
}  # matrix, rotate6: the range of each of their values; hadamard: no parameter

# operators with several parameters: how many numbers each takes (every other operator takes one)
N_PARAMS = {"matrix": 16, "rotate6": 6, "attn_translate": 2}
# operators without a parameter (r is accepted and ignored, so every front door treats them alike)
NO_PARAM_OPERATORS = ("hadamard",)
# operators whose parameter is an integer (a channel, a kernel size); audio-driven values are rounded for them
INTEGER_OPERATORS = ("reflect", "erode", "dilate", "attn_flip")

# operators that act on each element alone (the only ones that apply to the text embedding)
POINTWISE_OPERATORS = ("add", "multiply", "threshold", "gate", "invert")
# operators that mix the 4 latent channels (only valid on the latent itself, not on other UNet activations)
CHANNEL_OPERATORS = {"rotate1", "rotate2", "rotate3", "rotate4", "reflect", "matrix", "rotate6", "hadamard"}
KERNEL_OPERATORS = ("erode", "dilate")
# AttentionBender's spatial transforms of a token's attention map (attention targets only)
ATTN_OPERATORS = ("attn_rotate", "attn_translate", "attn_flip", "attn_blur")

# the dimension `operators.mean_normalise` subtracts the mean along, by name
NORM_DIMS = {"channel": 1, "row": -1, "column": -2}
