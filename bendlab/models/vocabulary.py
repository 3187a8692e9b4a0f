"""The words the shipped teaching model was trained on, and a one-line note when a prompt uses others.

The shipped model (`bendlab-tiny-sd`, 64 px) learnt a handful of scenes from procedurally drawn, captioned
images (training/scenes.py): any other word reaches its text encoder as a word it never saw, and the picture
falls back to whatever scene the rest of the prompt is closest to ("a red car" draws a coloured blob, "a
portrait of a woman" a landscape). `render`, `video`, `live` and the explorer say so in one line
(`unknown_words_note`); real Stable Diffusion (`--model CompVis/stable-diffusion-v1-4`) knows every word.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .folder import SHIPPED, resolve

# every word of every caption training/scenes.py draws (tests/models/test_vocabulary.py keeps this list equal)
KNOWN_WORDS = frozenset((
    "3d", "a", "air", "an", "and", "at", "bass", "bat", "beautiful", "bird", "black", "blue", "building",
    "burning", "clouds", "construction", "crane", "cricket", "cube", "cyan", "desert", "drawing", "dunes",
    "electric", "field", "fish", "floating", "floor", "football", "game", "geometry", "glowing", "gold",
    "gorgeous", "grass", "green", "grey", "guitar", "hills", "in", "insect", "kitchen", "lake", "landscape",
    "largemouth", "lit", "match", "matchstick", "mesh", "mice", "mountains", "mouse", "nature", "night",
    "ocean", "of", "on", "orange", "orb", "over", "photo", "pink", "plane", "player", "players", "purple",
    "red", "rolling", "sand", "scenic", "sea", "site", "sky", "small", "sphere", "sports", "square", "standing",
    "star", "starry", "stars", "tall", "the", "three", "torus", "triangle", "two", "underwater", "view",
    "white", "wireframe", "with", "wood", "wooden", "yellow"
))
SCENES = ("floating orbs and spheres, landscapes (hills, sea, desert, a starry night), wireframe meshes and 3D "
          "shapes, mice on a floor, and the paper's homographs: crane, bass, cricket, match")


def prompt_words(prompt: str) -> list[str]:
    """The words of a prompt as the captions spell them: lower case, letters, digits and apostrophes."""
    return re.findall(r"[a-z0-9']+", prompt.lower())


def unknown_words_note(model: str | os.PathLike | None, prompts) -> str | None:
    """One line naming the words of `prompts` the shipped model was not trained on, what it knows and how to
    get real Stable Diffusion; None for another model, or when every word is known."""
    try:
        if Path(resolve(model)).resolve() != SHIPPED.resolve():
            return None
    except (ValueError, OSError):  # a model that does not resolve is reported by the command's own checks
        return None
    unknown = list(dict.fromkeys(w for p in prompts for w in prompt_words(str(p)) if w not in KNOWN_WORDS))
    if not unknown:
        return None
    return (f"note: the shipped 64 px model was not trained on {', '.join(repr(w) for w in unknown[:6])}"
            f"{' ...' if len(unknown) > 6 else ''}; it knows {SCENES}. For any prompt, give --model with real "
            "Stable Diffusion (e.g. CompVis/stable-diffusion-v1-4)")
