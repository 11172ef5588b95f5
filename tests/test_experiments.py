"""Every experiment preset composes and instantiates: data, loss, model, callbacks, optimizers."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from ganforge.train import CONFIG_DIR, compose_config
from ganforge.utils import instantiate, instantiate_dict

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_the_presets_are_found() -> None:
    assert {"fashion_mnist_dcgan", "cifar10_sngan", "emoji_pix2pix", "facades_pix2pix"} <= set(EXPERIMENTS)
    sr = {"sr_photos_srresnet", "sr_photos_rrdbnet", "sr_photos_srgan", "sr_photos_esrgan"}
    assert sr <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_instantiates(experiment: str, tmp_path) -> None:
    cfg = compose_config([f"experiment={experiment}", "trainer=cpu", f"paths.output_dir={tmp_path}"])
    with open_dict(cfg):
        cfg.data_info.num_classes = 10  # what setup() reads from labelled data; unused by the others
    datamodule = instantiate(cfg.data)  # finds nothing yet: setup() reads the files
    model = instantiate(cfg.model, loss=instantiate(cfg.loss))
    optimizers, schedulers = model.configure_optimizers()
    assert len(optimizers) == (1 if model.D is None else 2)  # SRResNet / RRDBNet-PSNR: G alone
    assert all(s["scheduler"] is not None for s in schedulers)
    assert instantiate_dict(cfg.callbacks, "callback")
    assert type(model).data_kinds and getattr(datamodule, "kind", "images") in type(model).data_kinds
    assert cfg.trainer.max_steps > 0
