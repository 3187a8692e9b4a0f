"""The paper's settings (Dzwonczyk, Cella, Ban, DAFx 2024), in one place: everything else imports them.

The paper renders with DDIM, 50 steps, seed 46 and guidance 7.5, and bends its videos at layer 40 of 50.
`fit_layer` carries a layer given for those 50 steps to a render of another step count at the same relative
depth (layer 40 of 50 is layer 3 of 4, or 1 of 1).
"""

SEED = 46  # every render's default seed
STEPS = 50  # DDIM steps; a "layer" is a step index 0..STEPS
GUIDANCE = 7.5  # classifier-free guidance scale
LAYER = 40  # the layer of the paper's videos: a mapping's default
DEFAULT_PROMPT = "3D mesh geometry"  # the prompt of the paper's piano video: a video's and live's default


def fit_layer(layer: int, steps: int) -> int:
    """A layer given for the paper's 50 steps, mapped to a render of `steps` steps (same relative depth).

    Notebook: notebooks/06_discussion_experiments.ipynb
    """
    return layer if steps == STEPS else round(layer * steps / STEPS)
