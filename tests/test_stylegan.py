"""StyleGAN2-lite: modulated convolution against a per-sample reference, mapping/truncation/mixing,
minibatch std, path length and R1 regularisation, and a short real training run with checkpoint."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ganforge.checkpoint import load_generator
from ganforge.errors import ConfigError
from ganforge.models.stylegan import (
    MinibatchStd,
    PathLengthRegularizer,
    StyleGANDiscriminator,
    StyleGANGenerator,
    modulate,
    modulated_conv2d,
)
from ganforge.regularizers import grad_norm_sq
from ganforge.train import train

TINY = {"channel_base": 1024, "channel_max": 8}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions are pure overhead on several threads (40 ms instead of 0.1 ms on busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_g(resolution: int = 32, **kwargs) -> StyleGANGenerator:
    return StyleGANGenerator(
        z_dim=16, w_dim=16, resolution=resolution, channels=3, mapping_layers=2, **TINY, **kwargs
    )


def tiny_d(resolution: int = 32, **kwargs) -> StyleGANDiscriminator:
    return StyleGANDiscriminator(resolution=resolution, channels=3, **TINY, **kwargs)


@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_modulated_conv_matches_per_sample_reference(demodulate: bool) -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(5, 6, 9, 9), torch.randn(4, 6, 3, 3), torch.randn(5, 6)
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate)
    for i in range(5):
        w = weight * styles[i].view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        expected = F.conv2d(x[i : i + 1], w, padding=1)
        torch.testing.assert_close(out[i : i + 1], expected, atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_norm_filters_and_preserves_variance() -> None:
    torch.manual_seed(0)
    weight, styles = torch.randn(16, 64, 3, 3), torch.randn(4, 64).exp()  # styles of very different scales
    w = modulate(weight, styles)
    torch.testing.assert_close(w.square().sum(dim=(2, 3, 4)), torch.ones(4, 16))
    # Unit-variance iid input -> unit-variance output (interior pixels, away from the zero padding).
    out = modulated_conv2d(torch.randn(4, 64, 34, 34), weight, styles)[:, :, 1:-1, 1:-1]
    assert out.var().item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_shapes(resolution: int) -> None:
    G, D = tiny_g(resolution), tiny_d(resolution)
    assert G.num_ws == 2 * int(math.log2(resolution)) - 2
    x = G(torch.randn(2, 16))
    assert x.shape == (2, 3, resolution, resolution)
    assert D(x).shape == (2,)
    assert G.eval()(torch.randn(2, 16)).abs().max() <= 1.0  # clamped outside training


def test_conditional_models_use_labels() -> None:
    torch.manual_seed(0)
    G, D = tiny_g(num_classes=3).eval(), tiny_d(num_classes=3)
    z = torch.randn(1, 16).repeat(2, 1)
    x = G(z, torch.tensor([0, 2]))
    assert not torch.allclose(x[0], x[1])
    assert D(x, torch.tensor([0, 2])).shape == (2,)
    with pytest.raises(ValueError, match="labels"):
        G(z)


@pytest.mark.parametrize("resolution", [28, 48, 512])
def test_rejects_unsupported_resolution(resolution: int) -> None:
    with pytest.raises(ConfigError, match=r"data\.resolution=32"):
        tiny_g(resolution)
    with pytest.raises(ConfigError, match=r"data\.resolution=32"):
        tiny_d(resolution)


def test_truncation_psi_zero_gives_the_image_of_w_avg() -> None:
    torch.manual_seed(0)
    G = tiny_g().eval()
    G.mapping.w_avg.normal_()
    images = G(torch.randn(4, 16), truncation_psi=0.0)
    expected = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1)).clamp(-1, 1)
    torch.testing.assert_close(images, expected.expand_as(images))
    # A cutoff truncates the first layers only: different z then give different images.
    cut = G(torch.randn(4, 16), truncation_psi=0.0, truncation_cutoff=2)
    assert not torch.allclose(cut[0], cut[1])


def test_w_avg_tracks_w_in_training_only() -> None:
    torch.manual_seed(0)
    G = tiny_g(mixing_prob=0.0)
    G.eval()(torch.randn(8, 16))
    assert torch.count_nonzero(G.mapping.w_avg) == 0
    G.train()(torch.randn(8, 16))
    assert torch.count_nonzero(G.mapping.w_avg) > 0


def test_style_mixing_only_in_training_mode() -> None:
    torch.manual_seed(0)
    G, z = tiny_g(mixing_prob=1.0), torch.randn(3, 16)
    with torch.no_grad():
        G.synthesis.blocks[0].conv1.noise_strength.fill_(0.5)
        mixed = [G(z, noise_mode="const") for _ in range(2)]  # a fresh second latent each call
        assert not torch.allclose(mixed[0], mixed[1])
        G.eval()
        assert torch.equal(G(z), G(z))  # no mixing, const noise: deterministic given z
        G.train()
        G.mixing_prob = 0.0
        assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
        assert not torch.equal(G(z), G(z))  # random noise while training


def test_minibatch_std_matches_hand_computation() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 6, 3, 3)
    out = MinibatchStd(group_size=4, num_channels=2)(x)
    assert out.shape == (8, 8, 3, 3)
    torch.testing.assert_close(out[:, :6], x)
    n_groups = 2  # 8 samples in groups of 4: sample i is grouped with i % 2
    for i in range(8):
        members = x[i % n_groups :: n_groups]  # [4, 6, 3, 3]
        for f in range(2):
            part = members[:, 3 * f : 3 * (f + 1)]
            std = ((part - part.mean(0)).square().mean(0) + 1e-8).sqrt().mean()
            torch.testing.assert_close(out[i, 6 + f], std.expand(3, 3))
    with pytest.raises(ConfigError, match="multiple"):
        MinibatchStd(group_size=4)(torch.randn(6, 2, 2, 2))


def test_path_length_regularizer_is_finite_and_tracks_pl_mean() -> None:
    torch.manual_seed(0)
    G = tiny_g()
    reg = PathLengthRegularizer(weight=2.0, interval=4)
    module = SimpleNamespace(G=G, global_step=0)
    penalty = reg.g_penalty(module, torch.randn(8, 16), None)
    assert torch.isfinite(penalty) and penalty >= 0
    first = float(reg.pl_mean)
    assert first > 0 and "pl_mean" in reg.state_dict()
    penalty.backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    reg.g_penalty(module, torch.randn(8, 16), None)
    assert float(reg.pl_mean) != first
    with pytest.raises(ConfigError, match="stylegan_lite"):
        reg.g_penalty(SimpleNamespace(G=torch.nn.Linear(2, 2)), torch.randn(2, 2), None)


def test_r1_with_stylegan_discriminator_gives_finite_gradients() -> None:
    torch.manual_seed(0)
    D = tiny_d()
    penalty = grad_norm_sq(lambda x: D(x, None), torch.randn(4, 3, 32, 32))
    penalty.backward()
    assert torch.isfinite(penalty) and penalty > 0
    no_grad = {name for name, p in D.named_parameters() if p.grad is None}
    assert no_grad == {"out.bias"}  # the only parameter dD/dx does not depend on
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)


TINY_RUN = (
    "model=stylegan_lite",
    "data.resolution=32",
    "trainer.max_steps=4",
    "model.generator.z_dim=16",
    "model.generator.w_dim=16",
    "model.generator.mapping_layers=2",
    *(f"model.{net}.{k}={v}" for net in ("generator", "discriminator") for k, v in TINY.items()),
)
CONDITIONAL = tuple(
    f"model.{net}.num_classes=${{data_info.num_classes}}" for net in ("generator", "discriminator")
)


def test_stylegan_lite_trains_and_checkpoint_restores_w_avg(
    compose_cfg, tmp_path, fashion_mnist_available
) -> None:
    cfg = compose_cfg(*TINY_RUN)
    assert set(cfg.model.regularizers) == {"r1", "pl"}
    result = train(cfg)
    module = result["model"]
    assert result["trainer"].global_step == 4
    assert all(torch.isfinite(p).all() for p in module.parameters())
    with next((tmp_path / "run").glob("csv/version_*/metrics.csv")).open() as f:
        rows = list(csv.DictReader(f))
    for key in ("loss/d", "loss/g", "loss/d_r1", "loss/g_pl"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and all(math.isfinite(v) for v in values), key
    assert float(module.regularizers["pl"].pl_mean) > 0  # the path length term ran (G step 0)

    G, _ = load_generator(tmp_path / "run/checkpoints/last.ckpt")
    w_avg = module.G_ema.mapping.w_avg
    assert torch.count_nonzero(w_avg) > 0
    torch.testing.assert_close(G.mapping.w_avg, w_avg.cpu(), rtol=0, atol=0)
    z = torch.randn(2, 16)
    torch.testing.assert_close(G(z, truncation_psi=0.5), module.G_ema(z, truncation_psi=0.5))


def test_default_resolution_error_tells_to_resize(compose_cfg, fashion_mnist_available) -> None:
    with pytest.raises(ConfigError, match=r"data\.resolution=32"):
        train(compose_cfg("model=stylegan_lite", "trainer.max_steps=1"))


def test_conditional_stylegan_lite_resumes_exactly(compose_cfg, tmp_path, fashion_mnist_available) -> None:
    """Style mixing, noise and the path length term draw random numbers; resume must replay them."""

    def run(out: str, *overrides: str) -> dict:
        return train(
            compose_cfg(*TINY_RUN, *CONDITIONAL, "model.pack=2", *overrides, output_dir=tmp_path / out)
        )

    straight = run("a", "trainer.max_steps=4")
    run("b", "trainer.max_steps=2")
    resumed = run("resumed", "trainer.max_steps=4", f"ckpt_path={tmp_path / 'b/checkpoints/last.ckpt'}")
    assert straight["model"].num_classes == 10
    a, b = straight["model"].state_dict(), resumed["model"].state_dict()
    assert a.keys() == b.keys() and "regularizers.pl.pl_mean" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
