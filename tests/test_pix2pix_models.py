"""Pix2Pix/CycleGAN networks: shapes, skip connections, dropout noise, receptive fields, init, errors."""

import pytest
import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models import PatchDiscriminator, ResnetGenerator, UNetGenerator
from ganforge.models.pix2pix import ResnetBlock, init_weights, norm_layer, receptive_field, unet_depth


def _unet(**kw) -> UNetGenerator:
    return UNetGenerator(**{"base_channels": 8, "max_channels": 32, **kw})


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_unet_shapes_follow_resolution(resolution: int) -> None:
    torch.manual_seed(0)
    G = _unet(resolution=resolution, depth=None)
    assert G.depth == unet_depth(resolution) == {64: 6, 128: 7, 256: 8}[resolution]
    assert (G.in_channels, G.out_channels, G.resolution) == (3, 3, resolution)
    y = G(torch.randn(2, 3, resolution, resolution) * 3)
    assert y.shape == (2, 3, resolution, resolution)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize(("c_in", "c_out"), [(1, 3), (3, 1)])
def test_unet_non_square_and_channel_changes(c_in: int, c_out: int) -> None:
    G = _unet(in_channels=c_in, out_channels=c_out, depth=6)
    assert G.resolution == 64  # default: the size whose bottleneck is 1x1
    y = G(torch.randn(2, c_in, 64, 128))
    assert y.shape == (2, c_out, 64, 128) and y.abs().max() <= 1.0


def test_unet_has_depth_levels_and_every_level_reaches_the_output() -> None:
    torch.manual_seed(0)
    G = _unet(depth=6).eval()
    convs = [m for m in G.modules() if type(m) is nn.Conv2d]
    ups = [m for m in G.modules() if type(m) is nn.ConvTranspose2d]
    assert len(convs) == len(ups) == 6
    # decoder levels below the top read [skip, upsampled] concatenated: twice the encoder width
    assert [u.in_channels for u in ups] == [2 * c.out_channels for c in convs[:-1]] + [convs[-1].out_channels]

    # through the innermost levels: the far corner of the output depends on the opposite input corner
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    G(x)[0, :, 63, 63].sum().backward()
    assert x.grad[0, :, 0, 0].abs().sum() > 0

    # through the skips alone: with the bottleneck cut, the output still depends on the input
    with torch.no_grad():
        convs[-1].weight.zero_()
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    G(x)[0, :, 10, 10].sum().backward()
    assert x.grad[0, :, 10, 10].abs().sum() > 0
    with torch.no_grad():  # the cut holds: the bottleneck is zero whatever the input
        assert G.down[-1](torch.randn(1, 32, 2, 2)).abs().max() == 0


def test_unet_dropout_is_noise_in_train_mode_only() -> None:
    torch.manual_seed(0)
    G = _unet(depth=6)
    assert sum(isinstance(m, nn.Dropout) for m in G.modules()) == 3
    x = torch.randn(2, 3, 64, 64)
    assert not torch.allclose(G(x), G(x))
    G.eval()
    torch.testing.assert_close(G(x), G(x), rtol=0, atol=0)
    G_plain = _unet(depth=6, dropout=0.0)  # the randomness comes from dropout, not from batch norm
    assert not any(isinstance(m, nn.Dropout) for m in G_plain.modules())
    torch.testing.assert_close(G_plain(x), G_plain(x), rtol=0, atol=0)


@pytest.mark.parametrize("n_blocks", [6, 9])
def test_resnet_generator_shapes(n_blocks: int) -> None:
    G = ResnetGenerator(base_channels=4, n_blocks=n_blocks)
    assert sum(isinstance(m, ResnetBlock) for m in G.modules()) == n_blocks
    for size in [(16, 16), (16, 24)]:
        y = G(torch.randn(2, 3, *size) * 3)
        assert y.shape == (2, 3, *size) and y.abs().max() <= 1.0
    grey_to_rgb = ResnetGenerator(1, 3, base_channels=4, n_blocks=1, padding="zero")
    assert grey_to_rgb(torch.randn(1, 1, 8, 12)).shape == (1, 3, 8, 12)


def test_resnet_generator_rejects_sides_not_divisible_by_4() -> None:
    G = ResnetGenerator(base_channels=4, n_blocks=1)
    with pytest.raises(ConfigError, match=r"divisible by 4, got 30x32"):
        G(torch.randn(1, 3, 30, 32))
    with pytest.raises(ConfigError, match="padding"):
        ResnetGenerator(padding="circular")


def _window(grad: torch.Tensor) -> tuple[int, int, bool]:
    """Height and width of the bounding box of the nonzero input gradient, and whether it is filled."""
    mask = grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return box.shape[0], box.shape[1], bool(box.all())


@pytest.mark.parametrize(("n_layers", "expected"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_is_measured_by_gradients(n_layers: int, expected: int) -> None:
    assert receptive_field(n_layers) == expected
    torch.manual_seed(0)
    D = PatchDiscriminator(in_channels=6, base_channels=4, n_layers=n_layers).eval()  # BN: no batch stats
    x = torch.randn(1, 6, 128, 128, requires_grad=True)
    logits = D(x)
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    assert _window(x.grad) == (expected, expected, True)


def test_patchgan_output_map_sizes() -> None:
    D = PatchDiscriminator(base_channels=4)
    assert D.receptive_field == 70
    assert D(torch.randn(2, 6, 256, 256)).shape == (2, 1, 30, 30)  # pix2pix's 30x30 patch map
    assert D(torch.randn(2, 6, 64, 128)).shape == (2, 1, 6, 14)
    with pytest.raises(ConfigError, match="16x16"):
        D(torch.randn(2, 6, 16, 16))


def test_pixelgan_judges_each_pixel_alone() -> None:
    assert receptive_field(0) == 1
    torch.manual_seed(0)
    D = PatchDiscriminator(in_channels=3, base_channels=4, n_layers=0).eval()
    x = torch.randn(2, 3, 12, 20, requires_grad=True)
    logits = D(x)
    assert logits.shape == (2, 1, 12, 20)
    logits[1, 0, 5, 7].backward()
    nonzero = (x.grad.abs().sum(dim=1) > 0).nonzero().tolist()
    assert nonzero == [[1, 5, 7]]


def test_normal_init() -> None:
    torch.manual_seed(0)
    nets = [
        PatchDiscriminator(base_channels=32),
        UNetGenerator(base_channels=16, max_channels=64, depth=6),
        ResnetGenerator(base_channels=16, n_blocks=2),
    ]
    for net in nets:
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        big = torch.cat([m.weight.flatten() for m in convs])
        assert big.std().item() == pytest.approx(0.02, rel=0.03)
        assert abs(big.mean().item()) < 1e-3
        assert all(m.bias is None or not m.bias.any() for m in convs)
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        if bns:
            scales = torch.cat([m.weight for m in bns])
            assert abs(scales.mean().item() - 1.0) < 5e-3 and 0.01 < scales.std().item() < 0.03
            assert not torch.cat([m.bias for m in bns]).any()
    lin = init_weights(nn.Sequential(nn.Linear(200, 200)), std=0.1)[0]
    assert lin.weight.std().item() == pytest.approx(0.1, rel=0.05)


def test_norms_and_conv_bias_follow_the_reference() -> None:
    inorm = norm_layer("instance", 8)
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not inorm.track_running_stats
    assert isinstance(norm_layer("batch", 8), nn.BatchNorm2d)
    assert isinstance(norm_layer("none", 8), nn.Identity)
    for norm, has_bias in [("batch", False), ("instance", True), ("none", True)]:
        D = PatchDiscriminator(base_channels=4, norm=norm)
        assert (D.net[2].bias is not None) == has_bias  # the second conv, followed by the norm


@pytest.mark.parametrize(
    "make",
    [
        lambda: norm_layer("group", 8),
        lambda: UNetGenerator(norm="layer"),
        lambda: ResnetGenerator(norm="batchnorm"),
        lambda: PatchDiscriminator(norm="spectral"),
    ],
)
def test_unknown_norm_is_a_config_error(make) -> None:
    with pytest.raises(ConfigError, match=r"unknown norm .*batch, instance, none"):
        make()


def test_unet_size_errors() -> None:
    G = _unet(depth=6)
    with pytest.raises(ConfigError, match=r"divisible by 64, got 96x64.*depth"):
        G(torch.randn(1, 3, 96, 64))
    assert unet_depth(256) == 8
    with pytest.raises(ConfigError, match="powers of two, got 96"):
        unet_depth(96)
    with pytest.raises(ConfigError, match="powers of two"):
        UNetGenerator(resolution=96, depth=None)
    with pytest.raises(ConfigError, match="resolution"):
        UNetGenerator(depth=None)
    with pytest.raises(ConfigError, match=r"divisible by 256, but resolution is 128"):
        UNetGenerator(resolution=128)  # depth 8 by default
    assert _unet(resolution=96, depth=5).resolution == 96
