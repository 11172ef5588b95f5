"""Super-resolution networks: shapes per scale, published parameter counts, init, discriminators, errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ganforge.errors import ConfigError
from ganforge.models import RRDBNet, SRResNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from ganforge.models.spectral import SpectralNormStep


def _params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _small(cls: type[nn.Module], **kw) -> nn.Module:
    small = {
        SRResNet: {"num_feat": 8, "num_block": 2},
        RRDBNet: {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
    }
    return cls(**{**small[cls], **kw})


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("cls", [SRResNet, RRDBNet])
def test_generators_upsample_by_scale(cls: type[nn.Module], scale: int) -> None:
    torch.manual_seed(0)
    G = _small(cls, scale=scale)
    assert (G.in_channels, G.out_channels, G.scale) == (3, 3, scale)
    assert G(torch.randn(2, 3, 12, 10)).shape == (2, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize("cls", [SRResNet, RRDBNet])
def test_grey_images(cls: type[nn.Module]) -> None:
    G = _small(cls, in_channels=1, out_channels=1, scale=2)
    assert (G.in_channels, G.out_channels) == (1, 1)
    assert G(torch.randn(2, 1, 12, 12)).shape == (2, 1, 24, 24)


def test_sizes_match_the_published_models() -> None:
    # BasicSR's MSRResNet_x4 and ESRGAN's RRDB_ESRGAN_x4, Real-ESRGAN's U-Net D
    assert _params(SRResNet()) == 1_517_571
    assert _params(RRDBNet()) == 16_697_987
    assert _params(UNetDiscriminatorSN()) == 4_376_897
    assert _params(VGGStyleDiscriminator()) == 14_499_401
    # BN in the blocks: +2 x 128 BN parameters, -2 x 64 conv biases per block
    assert _params(SRResNet(batch_norm=True)) == 1_517_571 + 16 * 128


@pytest.mark.parametrize("cls", [SRResNet, RRDBNet])
@pytest.mark.parametrize("scale", [1, 5, 16])
def test_bad_scale(cls: type[nn.Module], scale: int) -> None:
    with pytest.raises(ConfigError, match=r"2, 3, 4, 8"):
        cls(scale=scale)


def test_global_residual_needs_matching_channels() -> None:
    with pytest.raises(ConfigError, match="global_residual"):
        SRResNet(in_channels=1, out_channels=3)
    assert SRResNet(in_channels=1, out_channels=3, num_block=0, global_residual=False).out_channels == 3


@pytest.mark.parametrize("batch_norm", [False, True])
def test_untrained_srresnet_is_close_to_bilinear(batch_norm: bool) -> None:
    """Every conv starts at 0.1 x Kaiming, so the learned part is tiny next to the global residual."""
    torch.manual_seed(0)
    G = SRResNet(num_feat=32, num_block=4, batch_norm=batch_norm)
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    base = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert (G(x) - base).abs().max() < (1e-2 if batch_norm else 1e-3)
        G.global_residual = False
        assert G(x).abs().max() < 1e-2  # the learned part alone
    assert not any(isinstance(m, nn.Tanh) for m in G.modules())  # unbounded output, clamped by the caller


def test_dense_blocks_start_near_identity() -> None:
    """0.1 x Kaiming and the 0.2 residual scale: each dense block starts close to the identity, so an
    RRDB (``x + 0.2 * rdb3(rdb2(rdb1(x)))``) starts close to ``1.2 x``, as BasicSR's."""
    torch.manual_seed(0)
    G = RRDBNet(num_feat=16, num_block=2, num_grow_ch=8)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        for block in G.body:
            for rdb in block.rdbs:
                assert (rdb(x) - x).abs().mean() < 0.02 * x.abs().mean()
            assert (block(x) - 1.2 * x).abs().mean() < 0.02 * x.abs().mean()


@pytest.mark.parametrize("size", [128, 96])
def test_vgg_discriminator_logits(size: int) -> None:
    D = VGGStyleDiscriminator(base_channels=8, input_size=size)
    assert D.classifier[1].in_features == 64 * (size // 32) ** 2
    assert D(torch.randn(2, 3, size, size)).shape == (2,)


def test_vgg_discriminator_errors() -> None:
    for size in (16, 100):
        with pytest.raises(ConfigError, match="divisible by 32"):
            VGGStyleDiscriminator(input_size=size)
    D = VGGStyleDiscriminator(base_channels=8, input_size=96)
    with pytest.raises(ConfigError, match=r"data.patch_size=96 or model.discriminator.input_size"):
        D(torch.randn(2, 3, 128, 128))


def test_unet_discriminator_pixel_logits_and_spectral_norm() -> None:
    torch.manual_seed(0)
    D = UNetDiscriminatorSN(num_feat=8)
    assert D(torch.randn(2, 3, 32, 24)).shape == (2, 1, 32, 24)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [parametrize.is_parametrized(c) for c in convs] == [False] + [True] * 8 + [False]
    assert len(SpectralNormStep(D)) == 8
    with pytest.raises(ConfigError, match="divisible by 8"):
        D(torch.randn(2, 3, 32, 20))


def test_unet_discriminator_skips() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    D = UNetDiscriminatorSN(num_feat=8).eval()
    out = D(x)
    D.skip_connection = False
    assert not torch.allclose(out, D(x))


@pytest.mark.parametrize(
    "net",
    [
        lambda: _small(SRResNet, batch_norm=True),
        lambda: _small(RRDBNet, scale=3),
        lambda: VGGStyleDiscriminator(base_channels=4, input_size=32),
        lambda: UNetDiscriminatorSN(num_feat=4),
    ],
    ids=["srresnet", "rrdbnet", "vgg_d", "unet_d"],
)
def test_gradient_reaches_every_parameter(net) -> None:
    torch.manual_seed(0)
    model = net()
    x = torch.randn(2, 3, 32, 32) if isinstance(model, VGGStyleDiscriminator | UNetDiscriminatorSN) else None
    model(torch.randn(2, 3, 8, 8) if x is None else x).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
