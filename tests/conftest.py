"""Shared fixtures and helpers. The network is blocked for every test (loopback excepted): nothing may be downloaded.

Tolerances, stated once here (see the audit in each helper's docstring):
- two renders of the *same* computation (same batch composition, same thread count, same code path) are compared
  exactly: `np.array_equal`, PNG or mp4 bytes;
- two renders computed differently (branching vs independent, shared prefix vs full, batched vs single) are compared
  as the 8-bit frames bendlab delivers, within `FRAME_LEVELS` (`assert_frames_close`);
- one latent operator applied to a whole batch vs to each item is compared within `LATENT_ATOL`
  (`assert_latents_close`).
"""

import math
import os
import socket

import numpy as np
import pytest
import soundfile as sf
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------------- tolerances
FRAME_LEVELS = 1
"""Largest difference, in 8-bit levels, between two frames of one picture computed with a different batch
composition or kernel order. Why it holds on any CPU: float32 GEMM and convolution kernels sum in an order that
depends on the batch size and on the CPU's vector width (AVX2, AVX-512, NEON), so such renders differ by rounding:
about 1e-7 relative per operation, grown through the denoising steps and the VAE to ~1e-5 in a [0, 1] image
(1.26e-5 measured on an AMD EPYC with AVX2, the largest seen). An 8-bit frame (diffusers' `numpy_to_pil`:
round(255 x)) changes by at most 1 level for any float difference below 1/255 = 3.9e-3, a margin of ~300x over
the worst seen. A defect (a bend at the wrong layer, a branch from the wrong step, other noise) moves pixels by
tens of levels. The product delivers these 8-bit frames (PNG, mp4), so 1 level is the finest difference a user
can see."""

LATENT_ATOL = 1e-5
"""Largest difference between one latent operator applied to a batch (a (B,) parameter tensor) and applied to each
item alone, on latents with |x| <= LATENT_MAGNITUDE. Why it holds on any CPU: a rotation or reflection contracts
the 4 channels with a matrix whose rows hold at most 2 non-zero entries of magnitude <= 1 (adding an exact zero
changes nothing), so each output element is c*a + s*b. Any kernel (mm or bmm, with or without FMA) gives it with
an error <= 2u(|a| + |b|), u = 2**-24; two kernels differ by <= 4u * 2 * LATENT_MAGNITUDE = 3.8e-6, and cos/sin of
a (B,) tensor vs of one number (vectorised vs scalar code) by 1 ulp, adding <= u * 2 * LATENT_MAGNITUDE = 9.5e-7.
The pointwise operators round once per element and min/max morphology not at all, the same on every kernel.
1e-5 is 2x that worst case; a wrong parameter per item (the defect this guards) differs by O(1)."""

LATENT_MAGNITUDE = 8.0
"""The input magnitude LATENT_ATOL assumes (checked by `assert_latents_close`): unit-variance latents stay below it
(8 sigma)."""


PINNED_LEVELS = 3
"""Largest difference, in 8-bit levels, between a render of the shipped model and the slice pinned in
tests/bend/test_pinned.py (generated once, on an AMD EPYC, torch 2.13.0 CPU, 1 thread). Why it holds on any CPU: the
same float rounding as FRAME_LEVELS (< 1 level), plus room for the kernel changes of a torch or diffusers patch
release; a change of numerics (scheduler, guidance, seeding, an operator's sign, a layer off by one) moves these
pixels by tens of levels."""


def to_frame(image) -> np.ndarray:
    """An image as the uint8 frame bendlab delivers: a PIL image or uint8 array as is; a float array in [0, 1]
    (output_type="np") rounded as diffusers' `numpy_to_pil` rounds it; a list (a grid) stacked."""
    if isinstance(image, (list, tuple)):
        return np.stack([to_frame(im) for im in image])
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    assert np.issubdtype(a.dtype, np.floating) and a.min() >= 0 and a.max() <= 1, (a.dtype, a.min(), a.max())
    return (a * 255).round().astype(np.uint8)


def assert_frames_close(a, b, levels: int = FRAME_LEVELS):
    """Two renders of one picture, computed differently, give 8-bit frames within `levels` (see FRAME_LEVELS)."""
    fa, fb = to_frame(a), to_frame(b)
    assert fa.shape == fb.shape, (fa.shape, fb.shape)
    diff = int(np.abs(fa.astype(int) - fb.astype(int)).max())
    assert diff <= levels, f"frames differ by {diff} levels (bound {levels})"


def assert_latents_close(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, atol: float = LATENT_ATOL):
    """One operator on a batch vs on each item, of the input latent x: within LATENT_ATOL (which assumes
    |x| <= LATENT_MAGNITUDE, checked here)."""
    assert float(x.abs().max()) <= LATENT_MAGNITUDE, "LATENT_ATOL assumes |x| <= LATENT_MAGNITUDE"
    torch.testing.assert_close(a, b, atol=atol, rtol=0)


def wait_until(condition, timeout: float, what: str, poll: float = 0.02) -> None:
    """Poll `condition()` until it is true; fail the test naming `what` after `timeout` seconds (every wait in a
    test has a deadline: a hang is a failure that says what never happened, not a CI run that never ends)."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(poll)


# ------------------------------------------------------------------------------------------------ audio and video
CLIP_STEPS = 4  # denoising steps of the test videos


def write_clip(path, note: int = 60, onset: float = 0.3, seconds: float = 0.6):
    """Silence, then a piano note at `onset` s, `seconds` long (0.6 s: 12 frames at 20 fps), at the default rate as
    16-bit PCM: every note gives a file of the same byte size."""
    from bendlab import audio
    sr = audio.DEFAULT_SR
    y = audio.synth_piano([(onset, note, 1.0, 0.2)], sr=sr, tail=0.1)[: int(seconds * sr)]
    sf.write(path, y, sr, subtype="PCM_16")
    return path


@pytest.fixture
def clip(tmp_path):
    """0.6 s: silence then a note at 0.3 s, 12 frames at 20 fps."""
    return write_clip(tmp_path / "clip.wav")


ADAPTER_FRAMES = 16  # the tiny motion adapter's window: at most 16 frames


def tiny_adapter(folder, safe: bool = True):
    """A random MotionAdapter for the shipped UNet (blocks 32, 64, 128, one layer each; a window of at most
    ADAPTER_FRAMES frames), seeded, saved as safetensors (or, safe=False, as a pickle .bin)."""
    from diffusers import MotionAdapter
    torch.manual_seed(0)
    a = MotionAdapter(block_out_channels=(32, 64, 128), motion_layers_per_block=1, motion_num_attention_heads=4,
                      motion_max_seq_length=ADAPTER_FRAMES)
    a.save_pretrained(folder, safe_serialization=safe)
    return str(folder)


@pytest.fixture(scope="session")
def adapter(tmp_path_factory):
    """`tiny_adapter`, saved once a session: a folder path that no test writes to."""
    return tiny_adapter(tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="session")
def animatediff(adapter):
    """AnimateDiff: the shipped model with `adapter`, loaded once a session and shared by the video tests. A test
    bends it only through bendlab's context managers (tests/video/test_frame_targets.py::test_nothing_is_left_installed
    checks that they leave no hook, processor or patch behind) or with hooks it removes in a `finally`; a test that
    must change it otherwise (its scheduler, its modules) loads its own."""
    from bendlab import models
    return models.load_pipeline(None, "cpu", motion_adapter=adapter)


def spec_for(clip, **kw):
    """A 4-step video of `clip` with one mapping, RMS -> rotate1 at layer 3 over 0..pi (not 2 pi: a full turn is the
    identity, which would hide the loudest frame); keywords override."""
    from bendlab.mapping import Mapping
    from bendlab.video import VideoSpec
    return VideoSpec(**{"audio": str(clip), "steps": CLIP_STEPS,
                        "mappings": [Mapping("rms", "rotate1", 3, 0, math.pi)], **kw})


def frame_path(folder, i: int):
    """Frame i of a render folder."""
    return folder / f"frame_{i:05d}.png"


def same_frames(a, b, n: int = 12) -> bool:
    """The first n frames of two render folders are byte-identical."""
    return all(frame_path(a, i).read_bytes() == frame_path(b, i).read_bytes() for i in range(n))


# ------------------------------------------------------------------------------------------------------- fixtures
class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Any attempt to open a connection fails the test that made it."""
    real = socket.socket.connect

    def guard(self, address):
        if self.family == socket.AF_UNIX or (self.family in (socket.AF_INET, socket.AF_INET6)
                                             and str(address[0]).startswith(("127.", "::1", "localhost"))):
            return real(self, address)  # local sockets and loopback (JupyterLab for the browser test) only
        raise NetworkBlocked(f"test tried to reach the network: {address}")

    socket.socket.connect = guard
    yield
    socket.socket.connect = real


@pytest.fixture(scope="session")
def pipe():
    """The shipped model (or BENDLAB_TEST_MODEL), loaded once, on the CPU in float32."""
    from bendlab import load_pipeline
    return load_pipeline(os.environ.get("BENDLAB_TEST_MODEL"), device="cpu")


# ------------------------------------------------------------------------------------------------ other families
def tiny_sd2(folder):
    """A tiny SD 2.x-style pipeline: the shipped VAE and text encoder, a random UNet with SD 2's options
    (linear projections, per-block head dims) and a v-prediction DDIM scheduler, saved as safetensors."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from bendlab import load_pipeline
    shipped = load_pipeline(device="cpu")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=96,
                                attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=16)
    scheduler = DDIMScheduler.from_config({**shipped.scheduler.config, "prediction_type": "v_prediction"})
    pipe = StableDiffusionPipeline(vae=shipped.vae, text_encoder=shipped.text_encoder, tokenizer=shipped.tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_sdxl(folder, scheduler_config=None):
    """A tiny SDXL pipeline saved as safetensors: the shipped VAE, text encoder and tokenizer, a random second
    text encoder with a projection (its pooled output conditions the UNet), and a random UNet with SDXL's
    "text_time" added conditioning (6 time ids x 8 + the 32-d pooled embedding) on both encoders' features."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    from bendlab import load_pipeline
    shipped = load_pipeline(device="cpu")
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=shipped.tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=32, max_position_embeddings=77))
    unet = diffusers.UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=shipped.text_encoder.config.hidden_size + 32, norm_num_groups=16)
    config = {**shipped.scheduler.config, **(scheduler_config or {})}
    scheduler = getattr(diffusers, config.pop("_class_name", "EulerDiscreteScheduler")).from_config(config)
    pipe = diffusers.StableDiffusionXLPipeline(vae=shipped.vae, text_encoder=shipped.text_encoder,
                                               text_encoder_2=text_encoder_2, tokenizer=shipped.tokenizer,
                                               tokenizer_2=shipped.tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def sd2_folder(tmp_path_factory):
    """`tiny_sd2`, saved once a session."""
    return tiny_sd2(tmp_path_factory.mktemp("sd2") / "tiny-sd2")


@pytest.fixture(scope="session")
def sdxl_folder(tmp_path_factory):
    """`tiny_sdxl`, saved once a session."""
    return tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")


@pytest.fixture(scope="module")
def ray_alone():
    """Held while a test module starts and stops Ray runtimes: pytest-xdist runs test files on several processes at
    once, and two local runtimes started side by side (each with a worker process per CPU on 2 cores) once took a
    test process down. An exclusive lock on a file every test process sees; released when the module is done."""
    import fcntl
    import tempfile
    with open(os.path.join(tempfile.gettempdir(), "bendlab-tests-ray.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
