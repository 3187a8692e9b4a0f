"""The shipped UNet's pooled-text embedding (addition_embed_type "text") kept inside AnimateDiff
(`models.text_embedding`): with the motion modules at zero, AnimateDiff's UNet is the image UNet frame by frame,
each frame on its own prompt."""

import pytest
import torch

from bendlab.models.folder import SHIPPED


@pytest.fixture(scope="module")
def pair(adapter):
    """(the shipped image UNet, a UNetMotionModel loaded by bendlab from it and `adapter` with every motion module's
    output projection at zero: the image model exactly, as AnimateDiff's training starts)."""
    from diffusers import UNet2DConditionModel
    from bendlab.models.load import _load
    unet2d = UNet2DConditionModel.from_pretrained(SHIPPED, subfolder="unet", use_safetensors=True).eval()
    return unet2d, _zero_motion(_load(str(SHIPPED), "cpu", torch.float32, adapter).unet)  # its own copy


def _zero_motion(unet):
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
    for m in unet.modules():
        if isinstance(m, AnimateDiffTransformer3D):
            torch.nn.init.zeros_(m.proj_out.weight)
            torch.nn.init.zeros_(m.proj_out.bias)
    return unet.eval()


def _inputs(unet2d, frames=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, frames, 16, 16, generator=g)
    width = unet2d.config.cross_attention_dim
    return x, torch.randn(frames, 77, width, generator=g)  # each frame its own prompt embedding


@torch.no_grad()
def test_each_frame_is_the_image_unet_on_its_own_prompt(pair):
    unet2d, motion = pair
    x, text = _inputs(unet2d)
    video = motion(x, torch.tensor(500), encoder_hidden_states=text).sample[0].transpose(0, 1)
    image = unet2d(x[0].transpose(0, 1), torch.tensor(500), encoder_hidden_states=text).sample
    assert (video - image).abs().max() < 1e-4  # 2e-6 measured: float32 summation order


@torch.no_grad()
def test_without_it_the_unet_is_not_the_image_model(pair, adapter):
    """What diffusers' UNetMotionModel.from_unet2d gives alone: the same inputs, the pooled prompt missing."""
    from diffusers import MotionAdapter, UNetMotionModel
    unet2d, _ = pair
    stock = _zero_motion(UNetMotionModel.from_unet2d(unet2d, MotionAdapter.from_pretrained(adapter)))
    x, text = _inputs(unet2d)
    video = stock(x, torch.tensor(500), encoder_hidden_states=text).sample[0].transpose(0, 1)
    image = unet2d(x[0].transpose(0, 1), torch.tensor(500), encoder_hidden_states=text).sample
    assert (video - image).abs().max() > 0.1  # 1.17 measured


def test_installed_once_and_counted_in_the_fingerprint(pair, animatediff):
    from bendlab.models.text_embedding import keep_text_embedding
    unet2d, motion = pair
    assert not keep_text_embedding(motion, unet2d)  # already there: nothing added twice
    assert any(k.startswith("add_embedding.") for k in animatediff.unet.state_dict())  # weights_fingerprint reads it


def test_a_unet_without_a_text_embedding_is_left_alone(pair):
    from diffusers import UNet2DConditionModel, UNetMotionModel
    from bendlab.models.text_embedding import keep_text_embedding
    plain = UNet2DConditionModel(block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                                 cross_attention_dim=32, norm_num_groups=32, sample_size=16)
    motion = UNetMotionModel.from_unet2d(plain)
    forward = motion.forward
    assert not keep_text_embedding(motion, plain)
    assert motion.forward == forward and getattr(motion, "add_embedding", None) is None
