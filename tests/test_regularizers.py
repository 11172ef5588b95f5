"""Regularisers on functions with known gradients, lazy scheduling, PacGAN packing, use in training."""

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.regularizers import R1, R2, GradientPenalty
from ganforge.tasks.noise import pack_samples
from ganforge.train import train


def test_r1_and_r2_of_a_linear_critic() -> None:
    # D(x) = <w, x>: grad = w, so E||grad||^2 = ||w||^2 on real (R1) and fake (R2) alike.
    w = torch.randn(3, 2, 2)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    assert torch.allclose(R1(weight=1).d_penalty(critic, real, fake), w.square().sum())
    assert torch.allclose(R2(weight=1).d_penalty(critic, real, fake), w.square().sum())


def test_r1_evaluates_real_and_r2_fake() -> None:
    # D(x) = 0.5 * ||x||^2: grad = x, so R1 = E||real||^2 and R2 = E||fake||^2.
    critic = lambda x: 0.5 * x.square().flatten(1).sum(1)  # noqa: E731
    real, fake = torch.full((4, 3), 2.0), torch.full((4, 3), 3.0)
    assert torch.allclose(R1(weight=1).d_penalty(critic, real, fake), torch.tensor(12.0))
    assert torch.allclose(R2(weight=1).d_penalty(critic, real, fake), torch.tensor(27.0))


def test_penalty_backpropagates_to_critic_parameters() -> None:
    s = torch.tensor(2.0, requires_grad=True)
    critic = lambda x: s * x.sum(1)  # noqa: E731 - grad = s: R1 = d * s^2, dR1/ds = 2 d s
    value = R1(weight=1).d_penalty(critic, torch.randn(6, 3), torch.randn(6, 3))
    (grad,) = torch.autograd.grad(value, s)
    assert torch.allclose(value, torch.tensor(12.0)) and torch.allclose(grad, torch.tensor(12.0))


def test_lazy_interval_scales_weight_and_skips_steps() -> None:
    r1 = R1(weight=0.5, interval=16)
    assert [step for step in range(40) if r1.due(step)] == [0, 16, 32]
    assert r1.scale() == 8.0
    assert not R1(weight=0.0).due(0)  # weight 0 never runs
    with pytest.raises(ConfigError):
        R1(weight=1, interval=0)
    with pytest.raises(ConfigError):
        GradientPenalty(weight=-1)


@pytest.mark.usefixtures("fashion_mnist_available")
def test_decaying_weight_follows_a_cosine_into_training(compose_cfg, tmp_path, monkeypatch) -> None:
    from .test_train import logged

    cosine = [1.0, 0.8682, 0.55, 0.2318, 0.1, 0.1]  # 1 -> 0.1 over 4 steps, then constant
    r1 = R1(weight=1.0, final_weight=0.1, decay_steps=4)
    assert [r1.weight_at(step) for step in range(6)] == pytest.approx(cosine, abs=1e-4)
    with pytest.raises(ConfigError, match="both final_weight and decay_steps"):
        R1(weight=1.0, final_weight=0.1)
    # A penalty of exactly 1 makes the logged term the weight the trainer used at each step.
    monkeypatch.setattr(R1, "d_penalty", lambda self, critic, real, fake: torch.tensor(1.0))
    decay = ["final_weight=0.1", "decay_steps=4", "weight=1.0", "interval=1"]
    train(compose_cfg("reg=r1", *(f"model.regularizers.r1.{o}" for o in decay), "trainer.max_steps=6"))
    assert logged(tmp_path / "run")["loss/d_r1"] == pytest.approx(cosine, abs=1e-4)


def test_pack_concatenates_consecutive_samples_on_channels() -> None:
    x = torch.arange(4 * 2 * 3 * 3, dtype=torch.float).view(4, 2, 3, 3)
    labels = torch.tensor([7, 8, 9, 10])
    packed, packed_labels = pack_samples(x, labels, 2)
    assert packed.shape == (2, 4, 3, 3)
    assert torch.equal(packed[1, 2:], x[3]) and torch.equal(packed[0, :2], x[0])
    assert packed_labels.tolist() == [7, 9]
    with pytest.raises(ConfigError, match="packs"):
        pack_samples(torch.zeros(5, 2), None, 2)


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize("reg", ["r1", "r1_r2", "gp"])
def test_regularizers_compose_with_any_loss(compose_cfg, tmp_path, reg: str) -> None:
    from .test_train import logged

    # r1 lazily every 3 steps (steps 0, 3, 6), logging every 2 (after steps 1, 3, 5, 7): only step 3's
    # value falls on a logging step, yet every logging step reports the last value
    lazy = ["model.regularizers.r1.interval=3", "trainer.log_every_n_steps=2"] if reg == "r1" else []
    cfg = compose_cfg(f"reg={reg}", "loss=hinge", "trainer.max_steps=8", *lazy)
    train(cfg)
    metrics = logged(tmp_path / "run")
    names = {"r1": ["r1"], "r1_r2": ["r1", "r2"], "gp": ["gp"]}[reg]
    for name in names:
        values = metrics[f"loss/d_{name}"]
        assert values and all(v >= 0 for v in values)
    if reg == "r1":
        values = metrics["loss/d_r1"]
        assert len(values) == 4 and values[1] == values[2] != values[0]  # steps 0, 3, 3, 6


@pytest.mark.usefixtures("fashion_mnist_available")
def test_pacgan_packing_trains_and_checks_batch(compose_cfg) -> None:
    result = train(compose_cfg("model.pack=4", "trainer.max_steps=2"))
    assert result["model"].D.channels == 4  # 1 channel x 4 packed samples
    with pytest.raises(ConfigError, match=r"multiple of model\.pack=3"):
        train(compose_cfg("model.pack=3"))
