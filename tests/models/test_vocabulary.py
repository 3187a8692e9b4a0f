"""The shipped model's known words are the words of its training captions, and a prompt with others is noted."""

import re
import sys
from pathlib import Path

from bendlab.models import KNOWN_WORDS, unknown_words_note
from bendlab.paper import DEFAULT_PROMPT
from bendlab.ui.figures import FIGURES, HOMOGRAPHS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))


def test_the_known_words_are_the_training_captions_words():
    import scenes
    _, captions, kinds = scenes.make_dataset(3000, seed=0)
    assert set(kinds) == set(scenes.KINDS)  # every scene kind drawn: every caption template seen
    words = {w for caps in captions for c in caps for w in re.findall(r"[a-z0-9']+", c.lower())}
    assert words == KNOWN_WORDS


def test_a_prompt_the_model_does_not_know_is_noted_by_name():
    note = unknown_words_note(None, ["a red car"])
    assert "'car'" in note and "'red'" not in note and "--model" in note
    note = unknown_words_note("bendlab-tiny-sd", ["a portrait of a woman"])
    assert "'portrait', 'woman'" in note
    assert unknown_words_note(None, ["a floating orb", "3D mesh geometry"]) is None
    assert unknown_words_note("CompVis/stable-diffusion-v1-4", ["a red car"]) is None  # real SD knows every word


def test_the_projects_own_prompts_are_known():
    """The default prompt and the paper figures' prompts draw what they say on the shipped model."""
    prompts = {DEFAULT_PROMPT, *HOMOGRAPHS}
    for f in FIGURES.values():
        prompts |= {p.prompt for p in getattr(f, "panels", [])} | {s.prompt for s in getattr(f, "sweeps", [])}
    assert unknown_words_note(None, sorted(prompts)) is None


def test_the_command_line_notes_unknown_words(tmp_path, capsys, monkeypatch):
    from bendlab.ui.cli import main

    def no_model(*a, **k):
        raise RuntimeError("stop before the model")
    monkeypatch.setattr("bendlab.models.Model.load", no_model)
    try:
        main(["render", "a red car", "--steps", "2", "--out", str(tmp_path / "o.png")])
    except RuntimeError:
        pass
    assert "not trained on 'car'" in capsys.readouterr().out
