"""`bendlab music` on a tiny random Stable Audio folder: one WAV, a sweep (a WAV per value and their
spectrograms), audio-to-audio from a file, and one-line refusals before the model loads."""

import pytest
import soundfile as sf

from bendlab.music import model as music_model
from bendlab.music.model import tiny_random_pipeline
from bendlab.ui.cli import main

ARGS = ["--steps", "4", "--seconds", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("music") / "tiny"
    tiny_random_pipeline().save_pretrained(path, safe_serialization=True)
    return str(path)


def test_one_bent_wav(folder, tmp_path, capsys):
    out = tmp_path / "bent.wav"
    assert main(["music", "a high bell", "--model", folder, "--op", "rotate1", "--param", "3.14", "--layer", "2",
                 "--where", "time:0.25-0.75", "--out", str(out), *ARGS]) == 0
    data, sr = sf.read(out)
    assert sr == 4000 and len(data) == 4000
    assert capsys.readouterr().out.startswith(f"wrote {out} (1.00 s at 4000 Hz; 1 bend(s)")


def test_a_sweep_writes_a_wav_per_value_and_their_spectrograms(folder, tmp_path, capsys):
    out = tmp_path / "sweep.wav"
    assert main(["music", "a high bell", "--model", folder, "--op", "rotate1", "--sweep", "0,1.57,3.14", "--layer",
                 "2", "--out", str(out), *ARGS]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep-1.wav", "sweep-2.wav", "sweep-3.wav", "sweep.png"]
    a, b = sf.read(tmp_path / "sweep-1.wav")[0], sf.read(tmp_path / "sweep-3.wav")[0]
    assert abs(a - b).max() > 1e-3


def test_audio_to_audio_from_a_file(folder, tmp_path):
    from pathlib import Path

    import bendlab
    piano = Path(bendlab.__file__).parent / "data" / "piano.ogg"  # the shipped recording, 22.05 kHz
    out = tmp_path / "piano.wav"
    assert main(["music", "a slow piano phrase", "--model", folder, "--audio", str(piano), "--strength", "0.5",
                 "--op", "add", "--param", "1", "--layer", "1", "--out", str(out), *ARGS]) == 0
    assert sf.info(out).duration == pytest.approx(1.0)


@pytest.mark.parametrize("extra,msg", [
    (["--op", "rotate1", "--param", "1", "--where", "time:0.5-3"], "ends after the 1 s output"),
    (["--op", "rotate1", "--param", "1", "--where", "group:2"], "group 2 is out of range for 8 channels"),
    (["--op", "attn_flip", "--param", "1"], "attn_flip transforms a token's attention map"),
    (["--param", "1"], "--param and --sweep need --op"),
    (["--strength", "0.5"], "--strength needs --audio"),
])
def test_bad_input_is_one_line_before_the_model_loads(folder, tmp_path, capsys, monkeypatch, extra, msg):
    monkeypatch.setattr(music_model, "_load", lambda *a, **k: pytest.fail("the model was loaded"))
    code = main(["music", "a high bell", "--model", folder, "--out", str(tmp_path / "x.wav"), *ARGS, *extra])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_targets_lists_what_a_music_bend_accepts(folder, capsys):
    """Every target `bendlab targets --music` lists is accepted by the music render's checks against the model."""
    from bendlab.bend.bends import Bend
    from bendlab.music.model import MusicConfig, load_music_pipeline
    from bendlab.music.render import check_music, check_music_modules
    from bendlab.music.targets import music_targets
    pipe = load_music_pipeline(folder)
    found = music_targets(folder)
    names = [t.name for t in found]
    assert names[:2] == ["latent", "text"] and "attn:transformer_blocks.1.attn2" in names
    assert "vae:decoder.block.1" in names and "unet:transformer_blocks.0" in names
    shapes = {t.name: t.shape for t in found}
    assert shapes["latent"] == (8, 1024) and shapes["vae:decoder.block.1"] == (8, 8192)
    for t in found:
        layer = None if t.name.startswith("vae:") else 1
        b = Bend("multiply", 1.0, layer, target=None if t.name == "latent" else t.name)
        check_music(MusicConfig.of(pipe), [b], seconds=1.0, steps=4, guidance=7.0, seed=0)
        check_music_modules(pipe, [b])
    assert main(["targets", "--music", folder]) == 0
    out = capsys.readouterr().out
    assert "attn:transformer_blocks.0.attn1" in out and "1025x1025" in out and "vae:decoder.block.0" in out
