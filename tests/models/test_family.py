"""The family seam (bendlab.models.family): each family says where its denoiser and tokenizer live and how its
latent is viewed as the canonical (N, C, H, W) tensor the operators act on. Images are that already; a video
latent is viewed per frame; packed transformer tokens are unpacked as diffusers' Flux pipeline unpacks them."""

import pytest
import torch

from bendlab import Bend
from bendlab.bend.hooks import BendCallback
from bendlab.models import IMAGE, PACKED, SD, SDXL, VIDEO, family_of, skeleton


def test_an_image_latent_is_its_own_canonical_view():
    x = torch.randn(2, 4, 8, 8)
    assert IMAGE.canonical(x) is x and IMAGE.restore(x, x) is x


def test_a_video_latent_is_viewed_frame_by_frame_and_put_back_exactly():
    x = torch.randn(2, 4, 3, 8, 6)  # (B, C, F, H, W)
    y = VIDEO.canonical(x)
    assert y.shape == (6, 4, 8, 6)
    for b in range(2):
        for f in range(3):
            assert torch.equal(y[b * 3 + f], x[b, :, f])  # row b F + f is item b's frame f
    assert torch.equal(VIDEO.restore(y, x), x)


def test_packed_tokens_unpack_and_pack_as_diffusers_flux_does():
    from diffusers import FluxPipeline
    grid = torch.randn(2, 16, 8, 6)
    packed = FluxPipeline._pack_latents(grid, 2, 16, 8, 6)
    assert torch.equal(PACKED.canonical(packed, grid=(8, 6)), grid)
    assert torch.equal(PACKED.canonical(packed, grid=(8, 6)),
                       FluxPipeline._unpack_latents(packed, 8 * 8, 6 * 8, 8))  # the pipeline's own unpacking
    assert torch.equal(PACKED.restore(grid, packed), packed)


def test_a_packed_latent_without_its_grid_is_one_line():
    with pytest.raises(ValueError, match="needs its grid") as e:
        PACKED.canonical(torch.zeros(1, 12, 64))
    assert "\n" not in str(e.value)


def test_a_latent_bend_on_a_video_latent_acts_on_every_frame():
    """The engine's latent callback bends the canonical view: row 0 of every frame, one parameter per frame."""
    x = torch.randn(1, 4, 3, 8, 8)
    cb = BendCallback([Bend("multiply", torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 5, "row:0")],
                      layout=VIDEO)
    y = cb.at(5, x.clone())
    assert y.shape == x.shape
    for f, p in enumerate((0.0, 1.0, 2.0)):
        torch.testing.assert_close(y[0, :, f, 0], p * x[0, :, f, 0])  # row 0 of frame f scaled by its parameter
        assert torch.equal(y[0, :, f, 1:], x[0, :, f, 1:])  # the other rows untouched


def test_families_name_their_parts(pipe):
    assert family_of(pipe) is SD and SD.denoiser_of(pipe) is pipe.unet and SD.tokenizer_of(pipe) is pipe.tokenizer
    assert SD.latent_size(pipe) == pipe.unet.config.sample_size
    assert SDXL.tokenizers == ("tokenizer", "tokenizer_2") and SDXL.text_encoders == ("text_encoder", "text_encoder_2")
    names = [n for n, _ in SD.attention_modules(pipe.unet)]
    assert names and all(n.endswith(("attn1", "attn2")) for n in names)
    assert "mid_block" in SD.blocks(pipe.unet)


def test_a_skeleton_knows_its_family(sdxl_folder):
    assert family_of(skeleton()) is SD
    assert family_of(skeleton(sdxl_folder)) is SDXL
