"""The video method on a video transformer (issue 27): a Wan 2.x or LTX-Video diffusers folder as the model
(`VideoSpec(method="video", model=FOLDER)`, `bendlab video --method video --model FOLDER`). The tiny random
pipelines of `video.tiny` are saved here as safetensors folders and loaded as any model is; a song renders through
`make_video` in windows of 1 + r k frames blended over their overlaps (`video.clip.TransformerWindows`), each
mapping's curve given per latent frame (`video.latent_frames.per_latent_frame`); resume, and the one-line refusals
before the model loads. The engine's contract on these families (identity, a bend's reach, cleanup):
tests/video/test_dit_families.py."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import models
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.models.family import LTX, WAN
from bendlab.video import VideoSpec, make_video, render_frames, video_info
from bendlab.video.clip import TransformerWindows, clip_noise, render_clip
from bendlab.video.folder import frames_dir
from bendlab.video.latent_frames import frames_of, latent_frame_of
from bendlab.video.spec import Plan, resolve
from bendlab.video.tiny import tiny_ltx, tiny_wan

from conftest import same_frames, to_frame, write_clip

STEPS = 2
SIZE = 32  # px: a 4 x 4 latent on both (Wan: 2 x 2 patches of 2; LTX-Video: 32x spatial compression, 1 x 1)
N = 16  # frames of the 0.8 s song at 20 fps: rendered as 17 (1 + 4 k, 1 + 8 k), the 17th never written
# family, its maker, and windows of 9 frames: Wan (r 4) at 0, 4, 8 overlapping by 5; LTX-Video (r 8) at 0, 8 by 1
MAKERS = {"wan": (WAN, tiny_wan, 5, [(0, 9), (4, 13), (8, 17)]), "ltx": (LTX, tiny_ltx, 1, [(0, 9), (8, 17)])}


@pytest.fixture(scope="module", params=list(MAKERS))
def dit(request, tmp_path_factory):
    """(name, folder): a tiny random pipeline saved as a safetensors folder."""
    folder = tmp_path_factory.mktemp(request.param) / "model"
    MAKERS[request.param][1]().save_pretrained(folder, safe_serialization=True)
    return request.param, str(folder)


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wan") / "model"
    tiny_wan().save_pretrained(folder, safe_serialization=True)
    return str(folder)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """0.8 s: a note at 0.5 s; 16 frames at 20 fps."""
    return write_clip(tmp_path_factory.mktemp("song") / "song.wav", onset=0.5, seconds=0.8)


def dit_spec(song, folder, overlap=5, layer=STEPS, **kw):
    return VideoSpec(**{"audio": str(song), "method": "video", "model": folder, "steps": STEPS, "window": 9,
                        "overlap": overlap, "height": SIZE, "width": SIZE,
                        "mappings": [Mapping("rms", "multiply", layer, 1, 2)], **kw})


# ------------------------------------------------------------------------------------------------ loading
def test_a_saved_tiny_pipeline_reloads_with_its_own_tokenizer_and_scheduler(dit):
    name, folder = dit
    fam, make = MAKERS[name][:2]
    built, pipe = make(), models.load_pipeline(folder, "cpu")
    assert type(pipe) is type(built) and models.family_of(pipe) is fam
    assert type(pipe.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"  # kept: no DDIM on flow matching
    assert pipe.tokenizer.model_max_length == built.tokenizer.model_max_length == 16
    assert pipe.tokenizer("a floating orb").input_ids == built.tokenizer("a floating orb").input_ids
    for a, b in zip(built.transformer.state_dict().values(), pipe.transformer.state_dict().values()):
        assert torch.equal(a, b)
    m = models.Model.of(folder, video=True)
    assert m.family is fam and m.usual() == ((50, 5.0) if fam is WAN else (50, 3))  # the pipeline's own defaults
    assert type(m.shapes).__name__ == type(pipe).__name__  # the meta-device skeleton the checks run on


def test_the_fingerprint_covers_the_transformer(wan):
    pipe = models.load_pipeline(wan, "cpu")
    other = tiny_wan()
    before = models.weights_fingerprint(other)
    assert before == models.weights_fingerprint(pipe)
    with torch.no_grad():
        next(other.transformer.parameters()).view(-1)[0] += 1
    assert models.weights_fingerprint(other) != before


# ------------------------------------------------------------------------------------------------ a song
def test_a_song_renders_every_frame_into_an_mp4_with_audio(dit, song, tmp_path, monkeypatch):
    name, folder = dit
    fam, _, overlap, windows = MAKERS[name]
    rendered, latents = [], TransformerWindows.latents
    monkeypatch.setattr(TransformerWindows, "latents", lambda self, j: rendered.append(self.windows[j]) or
                        latents(self, j))
    out = make_video(dit_spec(song, folder, overlap), tmp_path / "v.mp4", device="cpu", upscale=1, progress=False)
    info = video_info(out)
    assert info["frames"] == N and info["video"] and info["audio"]
    assert rendered == windows
    assert sorted(f.name for f in frames_dir(out).glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(N)]


def _plan(song, folder, curve, overlap=1):
    spec = dit_spec(song, folder, overlap, window=17)
    return Plan(resolve(spec, spec.model_of()), None, np.asarray(curve, dtype=float)[None])


def test_one_window_is_the_stock_pipeline_call_bit_for_bit(dit, song):
    """A song no longer than the window, with the identity curve: the frames of the stock call from the same noise."""
    _, folder = dit
    pipe = models.load_pipeline(folder, "cpu")
    plan = _plan(song, folder, [1.0] * 17)
    frames = [f for _, f in TransformerWindows(plan, pipe).frames(range(17))]
    stock = pipe(prompt=plan.spec.prompts[0], num_frames=17, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                 guidance_scale=plan.spec.guidance, latents=clip_noise(pipe, plan.spec.seed, 17, SIZE, SIZE),
                 generator=torch.Generator().manual_seed(plan.spec.seed), output_type="pil",
                 max_sequence_length=16).frames[0]
    assert np.array_equal(to_frame(frames), to_frame(stock))


@pytest.mark.parametrize("k", [1, 6, 12])
def test_a_step_at_frame_k_changes_only_the_latent_frames_from_the_one_holding_k_on(dit, song, k):
    """At the last layer the final latent's rows before the latent frame that holds video frame k are exactly the
    unbent ones; that row and every later one change. (Wan's causal decoder then keeps every video frame before
    that latent frame's first exactly: tested on its decoded frames.)"""
    _, folder = dit
    pipe = models.load_pipeline(folder, "cpu")
    fam = models.family_of(pipe)
    r = fam.temporal_ratio_of(pipe)
    step = [1.0] * k + [2.0] * (17 - k)
    grid = fam.latent_grid(pipe, 17, SIZE, SIZE)
    rows, frames = [], []
    for curve in ([1.0] * 17, step):
        w = TransformerWindows(_plan(song, folder, curve), pipe)
        bends = w.bends(0, 17)
        latent = render_clip(pipe, bends, prompt=w.plan.spec.prompts[0], n_frames=17, height=SIZE, width=SIZE,
                             steps=STEPS, guidance=w.plan.spec.guidance, seed=w.plan.spec.seed, output_type="latent")
        rows.append(fam.layout.canonical(latent[None], grid))
        frames.append(w.latents(0)[0].permute(1, 0, 2, 3))  # (F, 3, H, W) decoded
    j = latent_frame_of(k, r)
    diff = (rows[1] - rows[0]).abs().flatten(1).amax(1)
    assert (diff[:j] == 0).all() and (diff[j:] > 0).all(), (j, diff)
    if fam is WAN:
        first = frames_of(j, r).start
        assert torch.equal(frames[1][:first], frames[0][:first])
        assert (frames[1][first:] != frames[0][first:]).flatten(1).any(1).all()


@pytest.mark.parametrize("name", list(MAKERS))
def test_shuffled_noise_holds_the_first_windows_draws_in_every_window(name, song, tmp_path):
    """--noise shuffle on a video transformer (FreeNoise's noise over latent frames, `clip.song_noise`): every window
    starts from the first window's latent draws in its own order (Wan: 3 latent frames a window, windows 1 apart;
    LTX-Video: 2, windows 1 apart), where "random" (the default there) gives each window the next draws; the first
    window is the same either way, so one window is the stock call still."""
    from bendlab.video import check_spec
    from bendlab.video.clip import song_noise
    fam, maker, overlap, windows = MAKERS[name]
    folder = tmp_path / "model"
    maker().save_pretrained(folder, safe_serialization=True)
    shuffled = check_spec(dit_spec(song, str(folder), overlap, noise="shuffle")).spec
    default = check_spec(dit_spec(song, str(folder), overlap)).spec
    assert (shuffled.noise, default.noise) == ("shuffle", "random")
    r = 8 if fam is LTX else 4
    n = (shuffled.window - 1) // r + 1
    noises = {k: song_noise(spec, (4, 2, 2), r) for k, spec in (("shuffle", shuffled), ("random", default))}
    draws = {k: [v.frames(s // r, s // r + n)[0].transpose(0, 1).flatten(1) for s, _ in windows]
             for k, v in noises.items()}  # per window: (latent frames, C h w)
    assert torch.equal(draws["shuffle"][0], draws["random"][0])
    first = {tuple(row.tolist()) for row in draws["shuffle"][0]}
    for later in draws["shuffle"][1:]:
        assert {tuple(row.tolist()) for row in later} == first and len(first) == n
    assert {tuple(row.tolist()) for row in draws["random"][1]} != first


def test_a_wan_song_with_shuffled_noise_renders_and_resumes_only_with_it(wan, song, tmp_path):
    """The noise is part of the render folder's settings on a video transformer too: the song renders with
    --noise shuffle, its frames differ from the default's after the first window, and a resume with the other
    noise is refused in one line."""
    from bendlab.video.folder import RenderFolderError
    out = tmp_path / "v.mp4"
    shuffled = render_frames(dit_spec(song, wan, 5, noise="shuffle"), out, device="cpu", progress=False)
    plain = render_frames(dit_spec(song, wan, 5), tmp_path / "p.mp4", device="cpu", progress=False)
    a, b = (np.stack([np.asarray(Image.open(d / f"frame_{i:05d}.png")) for i in range(N)]) for d in (shuffled, plain))
    assert np.array_equal(a[:4], b[:4]) and not np.array_equal(a[4:], b[4:])  # frames 0-3: window 0's alone
    with pytest.raises(RenderFolderError) as e:
        render_frames(dit_spec(song, wan, 5), out, device="cpu", progress=False)
    assert "noise" in str(e.value) and "\n" not in str(e.value)


def test_a_kill_mid_song_loses_only_the_window_in_flight(wan, song, tmp_path, monkeypatch):
    """Interrupted at frame 5 (window 1's), the render keeps frames 0..5 and window 0's overlap; the resumed render
    renders windows 1 and 2 only, and its frames and mp4 are byte-identical to an unbroken render's."""
    spec = dit_spec(song, wan, 5)
    full, part = tmp_path / "full.mp4", tmp_path / "part.mp4"
    make_video(spec, full, device="cpu", upscale=1, progress=False)

    def interrupt(i):
        if i == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_video(spec, part, device="cpu", upscale=1, progress=False, on_frame=interrupt)
    folder = frames_dir(part)
    assert len(list(folder.glob("frame_*.png"))) == 6
    assert [f.name for f in folder.glob("overlap_*.npy")] == ["overlap_00000.npy"]
    rendered, latents = [], TransformerWindows.latents
    monkeypatch.setattr(TransformerWindows, "latents", lambda self, j: rendered.append(j) or latents(self, j))
    written = []
    make_video(spec, part, device="cpu", upscale=1, progress=False, on_frame=written.append)
    assert rendered == [1, 2] and written == list(range(6, N))
    assert same_frames(frames_dir(full), folder, N)
    assert part.read_bytes() == full.read_bytes()


def test_cli_renders_a_song_on_a_wan_folder(wan, song, tmp_path):
    from bendlab.ui.cli import main
    out = tmp_path / "v.mp4"
    rc = main(["video", str(song), "--method", "video", "--model", wan, "--window", "9", "--overlap", "5",
               "--height", str(SIZE), "--width", str(SIZE), "--steps", str(STEPS), "--device", "cpu",
               "--op", "multiply", "--range", "1", "2", "--layer", str(STEPS), "--upscale", "1", "--out", str(out)])
    assert rc == 0
    info = video_info(out)
    assert info["frames"] == N and info["video"] and info["audio"]


# ------------------------------------------------------------------------------------------------ refusals
@pytest.fixture
def no_loading(monkeypatch):
    """Any weights loaded fail the test: the refusals come before."""
    def boom(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models.load, "_load", boom)


@pytest.mark.parametrize("kw, msg", [
    ({"window": 10}, "window 10: 10 video frames do not fill whole latent frames (the VAE compresses time 4x); "
                     "accepted: 1 + 4 k frames, e.g. 9 or 13"),
    ({"window": 85, "overlap": 1}, "window 85 is longer than Wan 2.x's 81 frames (its pipeline's clip length)"),
    ({"overlap": 4}, "overlap 4 with window 9 would start a window inside a latent frame (Wan 2.x's VAE compresses "
                     "time 4x: window - overlap must be a multiple of 4); accepted: overlap 1, 5"),
    ({"height": 40}, "height 40 is not a multiple of 16 (Wan 2.x's VAE, patches and pipeline); accepted: 32 or 48"),
    ({"motion_adapter": "the tiny adapter"}, "given with a Wan 2.x model"),
    ({"method": "txt2img", "window": None, "overlap": None, "height": None, "width": None},
     "is a video model (WanPipeline, Wan 2.x); accepted here: an image model"),
    ({"mappings": [Mapping("rms", "multiply", 1, 1, 2, target="vae:decoder")]}, "target 'vae:decoder'"),
])
def test_bad_input_is_refused_in_one_line_before_the_model_loads(wan, song, adapter, tmp_path, no_loading, kw, msg):
    kw = {"overlap": 5, **kw, **({"motion_adapter": adapter} if "motion_adapter" in kw else {})}
    with pytest.raises(BendlabValueError) as e:
        make_video(dit_spec(song, wan, **kw), tmp_path / "v.mp4", progress=False)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_an_image_model_without_a_motion_adapter_is_refused_before_it_loads(song, tmp_path, no_loading):
    """An SD folder other than the shipped one (which pairs with its own adapter): here a copy of the shipped one."""
    import shutil
    model = shutil.copytree(models.SHIPPED, tmp_path / "sd", ignore=shutil.ignore_patterns("*.safetensors"))
    for f in models.SHIPPED.rglob("*.safetensors"):  # links: the weights are never read before the refusal
        (model / f.relative_to(models.SHIPPED)).symlink_to(f)
    spec = VideoSpec(audio=str(song), method="video", steps=STEPS, model=str(model),
                     mappings=[Mapping("rms", "rotate1", 1, 0, math.pi)])
    assert spec.motion_adapter is None
    with pytest.raises(BendlabValueError) as e:
        make_video(spec, tmp_path / "v.mp4", progress=False)
    assert "method video needs a motion adapter with the SD v1.x / 2.x model" in str(e.value)
    assert "a Wan or LTX-Video diffusers folder as the model" in str(e.value) and "\n" not in str(e.value)


def test_a_size_with_animatediff_is_refused(song, adapter, tmp_path, no_loading):
    spec = VideoSpec(audio=str(song), method="video", motion_adapter=adapter, height=64, steps=STEPS)
    with pytest.raises(BendlabValueError, match="height 64 with a motion adapter: AnimateDiff renders at its model's "
                                                "size"):
        make_video(spec, tmp_path / "v.mp4", progress=False)


def test_image_commands_refuse_a_video_model_in_one_line(wan, no_loading):
    from bendlab.bend.render import render
    with pytest.raises(BendlabValueError) as e:
        render("a floating orb", model=wan, device="cpu")
    assert "is a video model (WanPipeline, Wan 2.x); accepted here: an image model" in str(e.value)
    assert "`bendlab video --method video --model FOLDER`" in str(e.value) and "\n" not in str(e.value)


def test_worker_processes_render_a_wan_songs_windows_as_one_process(wan, song, tmp_path):
    """`--workers 2` on a Wan folder: the worker computes windows' decoded frames (`clip.TransformerWindows`, as
    `video.processes` picks it by `clip.video_renderer`), this process blends and writes them in order: the frames are
    byte-identical to the in-process render's, padding never written."""
    from bendlab.video import ProcessSource
    from test_window_workers import PatientDriver, no_children
    spec = dit_spec(song, wan, 5)
    reference = render_frames(spec, tmp_path / "ref.mp4", device="cpu", progress=False)
    source = PatientDriver(2)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert isinstance(source, ProcessSource) and source.jobs == [0, 1, 2] and source.local_windows == 2
    assert same_frames(folder, reference, N) and not (folder / f"frame_{N:05d}.png").exists()
    assert no_children()


def test_ray_workers_render_a_wan_songs_windows_as_one_process(wan, song, tmp_path, ray_alone):
    """A Wan folder on Ray workers (`video.cluster.renderer_of` picks `clip.TransformerWindows` there, as
    `video.processes` does): the actors compute every window's decoded frames, this process blends and writes them
    in order, byte-identical to the in-process render's."""
    pytest.importorskip("ray", reason="ray is installed by `make install`")
    from bendlab.video import cluster
    from test_ray_windows import Recording
    spec = dit_spec(song, wan, 5)
    reference = render_frames(spec, tmp_path / "ref.mp4", device="cpu", progress=False)
    source = Recording(2, threads=1, overlap=False)
    try:
        folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    finally:
        cluster.shutdown()
    assert source.jobs == [0, 1, 2] and source.local_windows == 0
    assert same_frames(folder, reference, N) and not (folder / f"frame_{N:05d}.png").exists()
