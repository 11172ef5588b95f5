"""Checkpoints written by earlier versions of ganforge keep loading, resuming and sampling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import load_checkpoint, load_generator
from ganforge.train import train

FIXTURES = Path(__file__).parent / "fixtures"
# A 3-step DCGAN on Fashion-MNIST written by ganforge at commit af4205b, before the task-family base:
#   python train.py trainer=cpu trainer.max_steps=3 data.max_samples=64 data.batch_size=8
#     model.generator.base_channels=4 model.generator.max_channels=8 model.discriminator.base_channels=4
#     model.discriminator.max_channels=8 model.generator.z_dim=8 model.num_fixed_samples=8
DCGAN_AF4205B = FIXTURES / "dcgan_tiny_af4205b.ckpt"
DCGAN_AF4205B_OPTIONS = (
    "data.batch_size=8",
    "model.generator.base_channels=4",
    "model.generator.max_channels=8",
    "model.discriminator.base_channels=4",
    "model.discriminator.max_channels=8",
    "model.generator.z_dim=8",
    "model.num_fixed_samples=8",
)


def test_old_checkpoint_samples() -> None:
    G, cfg = load_generator(DCGAN_AF4205B)
    assert cfg.model._target_ == "ganforge.module.GANModule"
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    images = G(z)
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    # The EMA generator's weights are the stored ones, bit for bit.
    stored = load_checkpoint(DCGAN_AF4205B)["state_dict"]
    for name, value in G.state_dict().items():
        assert torch.equal(value, stored[f"G_ema.{name}"])


@pytest.mark.usefixtures("fashion_mnist_available")
def test_old_checkpoint_resumes(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*DCGAN_AF4205B_OPTIONS, "trainer.max_steps=5", f"ckpt_path={DCGAN_AF4205B}"))
    assert result["trainer"].global_step == 5
    last = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    stored = load_checkpoint(DCGAN_AF4205B)["state_dict"]
    assert not torch.equal(last["state_dict"]["G.net.0.weight"], stored["G.net.0.weight"])  # it trained on
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
