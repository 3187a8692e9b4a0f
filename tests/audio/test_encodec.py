"""Feature encodec16: the JAES paper's 16-value embedding from EnCodec's encoder (a tiny random EncodecModel
saved as safetensors stands in for facebook/encodec_24khz), reduced to 16 by PCA; it drives `matrix`; an
unset $BENDLAB_ENCODEC, an absent folder and one without safetensors are refused in one line, before any
analysis."""

import numpy as np
import pytest

from bendlab import audio
from bendlab.video import spec as videospec
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec

PIANO = "bendlab/data/piano.ogg"


@pytest.fixture(scope="module")
def encodec_dir(tmp_path_factory):
    import torch
    from transformers import EncodecConfig, EncodecModel
    torch.manual_seed(0)
    config = EncodecConfig(sampling_rate=8000, audio_channels=1, hidden_size=24, num_filters=4,
                           upsampling_ratios=[4, 4], num_lstm_layers=1, codebook_size=16, target_bandwidths=[1.0])
    folder = tmp_path_factory.mktemp("encodec")
    EncodecModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture
def feats():
    return audio.audio_features(PIANO, fps=20, sr=22050)


def test_encodec16_gives_16_finite_values_a_frame(encodec_dir, feats, monkeypatch):
    monkeypatch.setenv(audio.ENCODEC_ENV, str(encodec_dir))
    x = feats["encodec16"]
    assert x.shape == (feats.n_frames, 16) == (len(feats["rms"]), 16)
    assert np.isfinite(x).all() and x.std(axis=0)[0] > 0
    assert np.array_equal(x, audio.encodec_embedding(feats.y, feats.sr, feats.fps, feats["rms"]))  # deterministic
    assert np.corrcoef(x[:, 0], feats["rms"])[0, 1] >= 0  # signed as pca:K
    assert feats.table(["encodec16"]).keys() == {f"encodec16.{d}" for d in range(1, 17)}


def test_encodec16_drives_the_matrix_in_a_video_plan(encodec_dir, monkeypatch):
    monkeypatch.setenv(audio.ENCODEC_ENV, str(encodec_dir))
    m = Mapping(feature="encodec16", op="matrix", low=-0.3, high=0.3)
    assert m.dims == 16
    plan = videospec.plan(VideoSpec(PIANO, fps=20, steps=4, mappings=[m]))
    n = plan.feats.n_frames
    assert plan.vectors[0].shape == (n, 16) and plan.curves.shape == (1, n)
    offsets = plan.vectors[0] - np.eye(4).reshape(1, 16)
    assert np.isfinite(offsets).all() and offsets.min() >= -0.3 - 1e-9 and offsets.max() <= 0.3 + 1e-9


def test_latent_frames_are_averaged_over_each_video_frame(monkeypatch):
    lat = np.arange(40, dtype=float)[:, None] * np.ones((1, 3))  # 40 latent frames at 100 Hz, D = 3
    monkeypatch.setattr(audio.embed, "encodec_folder", lambda *a: None)
    monkeypatch.setattr(audio.embed, "load_encodec", lambda folder: None)
    monkeypatch.setattr(audio.embed, "encodec_latents", lambda model, y, sr: (lat, 100.0))
    seen = []
    monkeypatch.setattr(audio.embed, "principal_components", lambda X, n, rms: seen.append(X.T[:, 0]) or X.T)
    audio.encodec_embedding(np.zeros(1), 1, 20.0, np.zeros(8), n=16)  # frames of 50 ms: 5 latents each
    audio.encodec_embedding(np.zeros(1), 1, 200.0, np.zeros(8), n=16)  # 5 ms frames: the latent under each
    assert np.allclose(seen[0], [2, 7, 12, 17, 22, 27, 32, 37])
    assert np.allclose(seen[1], [0, 0, 1, 1, 2, 2, 3, 3])


def one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_missing_weights_are_refused_in_one_line_before_the_analysis(tmp_path, monkeypatch):
    def no_analysis(*a, **k):
        raise AssertionError("the audio was analysed before the folder was checked")
    monkeypatch.delenv(audio.ENCODEC_ENV, raising=False)
    with pytest.raises(BendlabValueError) as e:
        audio.check_sources(["encodec16"])
    assert "BENDLAB_ENCODEC is not set" in one_line(e)
    absent = tmp_path / "nowhere"
    monkeypatch.setenv(audio.ENCODEC_ENV, str(absent))
    monkeypatch.setattr(audio, "audio_features", no_analysis)
    with pytest.raises(BendlabValueError) as e:
        videospec.plan(VideoSpec(PIANO, mappings=[Mapping(feature="encodec16", op="matrix", low=-0.3, high=0.3)]))
    assert f"EnCodec folder {str(absent)!r}" in one_line(e) and "does not exist" in one_line(e)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")  # weights, but not safetensors
    monkeypatch.setenv(audio.ENCODEC_ENV, str(tmp_path))
    with pytest.raises(BendlabValueError) as e:
        audio.check_sources(["encodec16@percussive"])
    assert f"EnCodec folder {str(tmp_path)!r}" in one_line(e) and "has no safetensors weights" in one_line(e)


def test_a_folder_that_is_not_an_encodec_model_is_refused_in_one_line(tmp_path, monkeypatch, feats):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    monkeypatch.setenv(audio.ENCODEC_ENV, str(tmp_path))
    with pytest.raises(BendlabValueError) as e:
        feats["encodec16"]
    assert "could not be loaded as an EncodecModel" in one_line(e)
