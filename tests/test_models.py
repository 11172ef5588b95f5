"""Network shapes at every supported resolution, and the EMA arithmetic."""

import pytest
import torch

from ganforge.ema import ema_beta, make_ema, update_ema
from ganforge.errors import ConfigError
from ganforge.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("resolution", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(resolution: int, channels: int) -> None:
    G = DCGANGenerator(z_dim=16, resolution=resolution, channels=channels, base_channels=8)
    D = DCGANDiscriminator(resolution=resolution, channels=channels, base_channels=8)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, channels, resolution, resolution)
    assert x.abs().max() <= 1.0
    assert D(x).shape == (3,)


@pytest.mark.parametrize("resolution", [30, 48, 100])
def test_dcgan_rejects_unsupported_resolution(resolution: int) -> None:
    with pytest.raises(ConfigError, match=r"data\.resolution"):
        DCGANGenerator(resolution=resolution)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_dcgan_projection_is_the_transposed_conv_from_1x1(layout: torch.memory_format) -> None:
    """The matmul form (a torch.compile workaround) gives the conv's result with the conv's weights."""
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=16, resolution=32, base_channels=8).to(memory_format=layout)
    project = G.net[0]
    assert isinstance(project, torch.nn.ConvTranspose2d) and project.weight.shape == (16, 32, 4, 4)
    z = torch.randn(5, 16)
    ref = torch.nn.functional.conv_transpose2d(z[:, :, None, None], project.weight)
    torch.testing.assert_close(project(z), ref)
    assert set(G.state_dict()) >= {"net.0.weight"} and "net.0.bias" not in G.state_dict()


def test_mlp_shapes() -> None:
    G = MLPGenerator(z_dim=8, resolution=28, channels=1, hidden=(32,))
    D = MLPDiscriminator(resolution=28, channels=1, hidden=(32,), dropout=0.1)
    x = G(torch.randn(4, 8))
    assert x.shape == (4, 1, 28, 28)
    assert D(x).shape == (4,)


def test_ema_update_is_lerp_and_copies_buffers() -> None:
    G = DCGANGenerator(z_dim=4, resolution=28, channels=1, base_channels=4)
    ema = make_ema(G)
    assert not any(p.requires_grad for p in ema.parameters())
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        for b in G.buffers():
            b.add_(3)
    update_ema(ema, G, beta=0.9)
    for p_ema, p0, p in zip(ema.parameters(), before, G.parameters(), strict=True):
        assert torch.allclose(p_ema, 0.9 * p0 + 0.1 * p, atol=1e-6)
    for b_ema, b in zip(ema.buffers(), G.buffers(), strict=True):
        assert torch.equal(b_ema, b)


def test_ema_rampup_starts_as_copy_and_reaches_beta() -> None:
    assert ema_beta(0.999, 0, 0.05) < 1e-5  # half-life of 0.05 steps: essentially a copy
    assert ema_beta(0.999, 1_000_000, 0.05) == pytest.approx(0.999)
    assert ema_beta(0.999, 10, None) == 0.999
    assert ema_beta(0.999, 100, 0.05) < ema_beta(0.999, 1000, 0.05) < 0.999 + 1e-12


def test_batched_power_iteration_matches_torchs_layer_by_layer() -> None:
    """``SpectralNormStep`` (all layers' normalisations in foreach kernels) updates u and v as torch's
    own ``_power_method`` does, for convs and linears of several shapes and iteration counts."""
    import copy

    from torch import nn
    from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

    from ganforge.models.spectral import SpectralNormStep

    torch.manual_seed(0)
    net = nn.Sequential(
        spectral_norm(nn.Conv2d(3, 16, 3)),
        spectral_norm(nn.Conv2d(16, 8, 1), n_power_iterations=2),
        spectral_norm(nn.Linear(8, 5)),
        spectral_norm(nn.ConvTranspose2d(5, 4, 4), dim=1),
    )
    reference = copy.deepcopy(net)
    step = SpectralNormStep(net)
    assert len(step) == 4
    for _ in range(3):
        step()
        for module in reference:
            (sn,) = [p for p in module.parametrizations.weight if isinstance(p, _SpectralNorm)]
            sn._power_method(sn._reshape_weight_to_matrix(module.parametrizations.weight.original),
                             sn.n_power_iterations)  # fmt: skip
    for ours, theirs in zip(net, reference, strict=True):
        a, b = ours.parametrizations.weight[0], theirs.parametrizations.weight[0]
        torch.testing.assert_close(a._u, b._u, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a._v, b._v, rtol=1e-5, atol=1e-6)
        assert not a.training  # forwards only read u and v

    # Launches: one matrix-vector product per layer and direction, plus a few multi-tensor kernels
    # (torch's way dispatches about eight operations per layer: 88 for SNGAN-32's D against 28).
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.count += func._schema.name not in (
                "aten::view",
                "aten::t",
                "aten::permute",
                "aten::transpose",
            )
            return func(*args, **(kwargs or {}))

    for module in net:
        module.parametrizations.weight[0].n_power_iterations = 1
    with Ops() as ops:
        step()
    assert ops.count <= 2 * len(step) + 8, ops.count
