"""Loss values against hand-computed numbers; gradient penalty on functions with known gradients."""

import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.losses import (
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    RelativisticAverageLoss,
    WassersteinGPLoss,
    gradient_penalty,
)

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 1.0])


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def close(a: torch.Tensor, b: float) -> bool:
    return abs(float(a) - b) < 1e-6


def test_minimax_d_and_saturating_g() -> None:
    loss = MinimaxLoss()
    d_expected = mean([-math.log(sigmoid(r)) for r in REAL.tolist()]) + mean(
        [-math.log(1 - sigmoid(f)) for f in FAKE.tolist()]
    )
    assert close(loss.d_loss(REAL, FAKE), d_expected)
    # G minimises E log(1 - D(G(z)))
    assert close(loss.g_loss(FAKE), mean([math.log(1 - sigmoid(f)) for f in FAKE.tolist()]))


def test_one_sided_label_smoothing_changes_only_real_targets() -> None:
    s = 0.1
    loss = MinimaxLoss(label_smoothing=s)
    real_term = mean(
        [-((1 - s) * math.log(sigmoid(r)) + s * math.log(1 - sigmoid(r))) for r in REAL.tolist()]
    )
    fake_term = mean([-math.log(1 - sigmoid(f)) for f in FAKE.tolist()])
    assert close(loss.d_loss(REAL, FAKE), real_term + fake_term)
    assert close(loss.g_loss(FAKE), MinimaxLoss().g_loss(FAKE).item())


def test_nonsaturating_g() -> None:
    loss = NonSaturatingLoss(label_smoothing=0.2)
    assert close(loss.g_loss(FAKE), mean([-math.log(sigmoid(f)) for f in FAKE.tolist()]))


def test_hinge() -> None:
    loss = HingeLoss()
    # relu(1 - [0, 2]) = [1, 0]; relu(1 + [-1, 1]) = [0, 2]
    assert close(loss.d_loss(REAL, FAKE), 0.5 + 1.0)
    assert close(loss.g_loss(FAKE), 0.0)
    assert close(loss.g_loss(torch.tensor([3.0, 5.0])), -4.0)


def test_lsgan() -> None:
    loss = LeastSquaresLoss()
    # 0.5 * (mean([1, 1]) + mean([1, 1]))
    assert close(loss.d_loss(REAL, FAKE), 1.0)
    # 0.5 * mean([4, 0])
    assert close(loss.g_loss(FAKE), 1.0)


def test_wasserstein_terms_and_drift() -> None:
    loss = WassersteinGPLoss(drift=0.001)
    assert close(loss.d_loss(REAL, FAKE), 0.0 - 1.0 + 0.001 * mean([0.0, 4.0]))
    assert close(loss.g_loss(FAKE), 0.0)
    assert loss.n_critic == 5


def test_gradient_penalty_of_linear_critic_is_exact() -> None:
    # D(x) = <w, x> has gradient w everywhere: GP = (||w|| - 1)^2 whatever the interpolation.
    w = torch.randn(3, 4, 4)
    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    gp = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    assert torch.allclose(gp, (w.norm() - 1).square(), rtol=1e-5)


def test_gradient_penalty_interpolates_and_backpropagates_to_critic() -> None:
    # D(x) = 0.5 * s * ||x||^2 has gradient s * x. With real == fake, x_hat == x exactly.
    x = torch.randn(5, 2)
    s = torch.tensor(0.7, requires_grad=True)
    gp = gradient_penalty(lambda v: 0.5 * s * v.square().sum(1), x, x.clone())
    norms = x.norm(dim=1)
    expected = ((0.7 * norms - 1) ** 2).mean()
    assert torch.allclose(gp, expected, rtol=1e-5)
    (ds,) = torch.autograd.grad(gp, s)
    assert torch.allclose(ds, (2 * (0.7 * norms - 1) * norms).mean(), rtol=1e-5)


def test_wgan_gp_penalty_is_weighted() -> None:
    w = torch.full((2,), 2.0)
    loss = WassersteinGPLoss(gp_weight=10.0)
    terms = loss.d_penalties(lambda x: x @ w, torch.randn(4, 2), torch.randn(4, 2))
    assert torch.allclose(terms["gp"], torch.tensor(10.0 * (math.sqrt(8) - 1) ** 2), rtol=1e-5)
    assert (
        WassersteinGPLoss(gp_weight=0.0).d_penalties(lambda x: x @ w, torch.ones(1, 2), torch.ones(1, 2))
        == {}
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: MinimaxLoss(label_smoothing=0.6),
        lambda: HingeLoss(n_critic=0),
        lambda: WassersteinGPLoss(gp_weight=-1),
    ],
)
def test_bad_loss_options_are_rejected(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_relativistic_pairing() -> None:
    from ganforge.losses import RelativisticPairingLoss

    loss = RelativisticPairingLoss()
    # pairs (0, -1) and (2, 1): D softplus(-(r - f)), G softplus(-(f - r))
    d_expected = mean(
        [math.log1p(math.exp(-(r - f))) for r, f in zip(REAL.tolist(), FAKE.tolist(), strict=True)]
    )
    g_expected = mean(
        [math.log1p(math.exp(-(f - r))) for r, f in zip(REAL.tolist(), FAKE.tolist(), strict=True)]
    )
    assert close(loss.d_loss(REAL, FAKE), d_expected)
    assert close(loss.g_loss(FAKE, REAL), g_expected)
    assert loss.g_needs_real
    with pytest.raises(ValueError, match="needs the logits of real data"):
        loss.g_loss(FAKE)


def test_wgan_weight_clipping() -> None:
    from ganforge.losses import WassersteinClipLoss

    loss = WassersteinClipLoss(clip=0.01)
    assert close(loss.d_loss(REAL, FAKE), -1.0)
    critic = torch.nn.Linear(4, 1)
    torch.nn.init.uniform_(critic.weight, -1, 1)
    loss.after_d_step(critic)
    assert critic.weight.abs().max() <= 0.01 and critic.bias.abs().max() <= 0.01
    with pytest.raises(ConfigError):
        WassersteinClipLoss(clip=0)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_relativistic_average_against_hand_computation() -> None:
    loss = RelativisticAverageLoss()
    # mean real = 1, mean fake = 0: real - mean fake = [0, 2], fake - mean real = [-2, 0]
    # BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l); each half weighted 0.5
    real_rel, fake_rel = [0.0, 2.0], [-2.0, 0.0]
    d_expected = 0.5 * (mean([softplus(-v) for v in real_rel]) + mean([softplus(v) for v in fake_rel]))
    g_expected = 0.5 * (mean([softplus(v) for v in real_rel]) + mean([softplus(-v) for v in fake_rel]))
    assert close(loss.d_loss(REAL, FAKE), d_expected)
    assert close(loss.g_loss(FAKE, REAL), g_expected)
    assert loss.g_needs_real and loss.n_critic == 1
    with pytest.raises(ValueError, match="needs the logits of real data"):
        loss.g_loss(FAKE)


def test_relativistic_average_means_over_the_whole_logit_tensor() -> None:
    # A patch D: [N, 1, H, W] logits; the averages run over samples and positions alike.
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    r, f = real.flatten().tolist(), fake.flatten().tolist()
    mr, mf = mean(r), mean(f)
    d_expected = 0.5 * (mean([softplus(-(x - mf)) for x in r]) + mean([softplus(x - mr) for x in f]))
    assert abs(float(RelativisticAverageLoss().d_loss(real, fake)) - d_expected) < 1e-5


def test_relativistic_average_d_prefers_real_above_fake() -> None:
    loss = RelativisticAverageLoss()
    high, low = torch.tensor([3.0, 2.0, 4.0]), torch.tensor([-3.0, -1.0, -2.0])
    assert loss.d_loss(high, low) < loss.d_loss(low, high)
    assert loss.g_loss(high, low) < loss.g_loss(low, high)  # G wins when its fakes look more real


def test_relativistic_average_g_gradients_reach_fake_and_real_logits() -> None:
    real = torch.tensor([0.5, 1.5, -0.5], requires_grad=True)
    fake = torch.tensor([-1.0, 0.0, 0.25], requires_grad=True)
    RelativisticAverageLoss().g_loss(fake, real).backward()
    assert real.grad is not None and fake.grad is not None
    # G lowers its loss by raising the fakes' logits and lowering the reals'
    assert (fake.grad < 0).all() and (real.grad > 0).all()
