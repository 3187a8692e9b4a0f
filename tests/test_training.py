"""The training pipeline runs end to end for a few steps (the full run is `make model`)."""

import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))


def test_scenes_cover_every_paper_prompt():
    import numpy as np
    import scenes
    rng = np.random.default_rng(0)
    caps = set()
    for kind in scenes.KINDS:
        img, c, k = scenes.draw(rng, kind)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and k == kind
        caps |= set(c)
    for p in ("a floating orb", "a gorgeous landscape", "3D mesh geometry", "mice", "a photo of a crane", "bass",
              "cricket", "a match"):
        assert p in caps, p
    # both meanings of each homograph share the ambiguous caption
    for a, b, word in (("construction_crane", "crane_bird", "a photo of a crane"), ("bass_fish", "bass_guitar", "bass"),
                       ("cricket_insect", "cricket_sport", "cricket"), ("matchstick", "match_game", "a match")):
        assert word in scenes.KINDS[a][0](rng)[1] and word in scenes.KINDS[b][0](rng)[1]


def test_tokenizer_from_the_shipped_files_matches_clip():
    from transformers import CLIPTokenizer
    root = Path(__file__).resolve().parent.parent
    tok = CLIPTokenizer.from_pretrained(root / "bendlab/weights/bendlab-tiny-sd/tokenizer")
    assert tok("a floating orb").input_ids == [49406, 320, 12619, 36958, 49407]
    assert len(tok) == 49408 and tok.model_max_length == 77


def test_training_smoke(tmp_path):
    """A few steps on a handful of scenes, reusing the shipped tokenizer; the result loads and renders."""
    import numpy as np
    import train

    from bendlab import load_pipeline, render
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "m"
    train.main(["--smoke", "--threads", "1", "--out", str(out),
                "--tokenizer", str(root / "bendlab/weights/bendlab-tiny-sd/tokenizer")])
    stats = json.loads((out / "training_stats.json").read_text())
    assert stats["unet_steps"] == 3 and np.isfinite(stats["unet_final_loss"])
    assert not list(out.rglob("*.bin")) and list(out.rglob("*.safetensors"))
    img = render("a floating orb", pipe=load_pipeline(out, device="cpu"), steps=2)
    assert img.size == (64, 64)
