"""Bad input fails before the first training step with a message saying what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from PIL import Image

from ganforge.checkpoint import CheckpointError
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from ganforge.train import train

from .conftest import REPO_ROOT


def no_training_happened(run_dir: Path) -> bool:
    return not (run_dir / "checkpoints").exists() and not (run_dir / "samples").exists()


@pytest.mark.parametrize(("group", "valid"), [("model", "dcgan, mlp_gan"), ("loss", "bce, hinge, lsgan")])
def test_unknown_group_option_lists_valid_ones(compose_cfg, group: str, valid: str) -> None:
    with pytest.raises(MissingConfigException) as e:
        compose_cfg(f"{group}=nope")
    message = str(e.value)
    assert f"Could not find '{group}/nope'" in message
    for option in valid.split(", "):
        assert option in message


def test_missing_image_folder_says_where_it_looked(compose_cfg, tmp_path) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetNotFoundError, match="no_such_folder"):
        train(compose_cfg("data=image_folder", f"data.path={missing}"))
    assert no_training_happened(tmp_path / "run")


def test_missing_mnist_without_download_says_how_to_get_it(compose_cfg, tmp_path) -> None:
    with pytest.raises(DatasetNotFoundError) as e:
        train(compose_cfg("data=mnist", "data.download=false", f"data.root={tmp_path / 'empty'}"))
    assert str(tmp_path / "empty") in str(e.value)
    assert "download" in str(e.value)


@pytest.mark.usefixtures("fashion_mnist_available")
def test_model_resolution_incompatible_with_data(compose_cfg, tmp_path) -> None:
    cfg = compose_cfg("model.generator.resolution=32", "model.discriminator.resolution=32")
    expected = r"generator makes samples of shape \(1, 32, 32\).*data gives \(1, 28, 28\)"
    with pytest.raises(ConfigError, match=expected):
        train(cfg)
    assert no_training_happened(tmp_path / "run")


@pytest.mark.usefixtures("fashion_mnist_available")
def test_unsupported_resolution(compose_cfg) -> None:
    with pytest.raises(ConfigError, match="supported resolutions"):
        train(compose_cfg("data.resolution=30"))


@pytest.mark.usefixtures("fashion_mnist_available")
def test_batch_size_larger_than_dataset(compose_cfg, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"batch_size=16 .* larger than the 8 images"):
        train(compose_cfg("data.max_samples=8"))
    assert no_training_happened(tmp_path / "run")


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.optimizer_g.lr=-1e-4", r"model\.optimizer_g\.lr=-0\.0001: .*must be > 0"),
        ("model.optimizer_d.lr=0", r"model\.optimizer_d\.lr=0: .*must be > 0"),  # torch accepts 0
        ("model.optimizer_g.betas=[1.5,0.999]", r"model\.optimizer_g \(Adam\): Invalid beta parameter"),
        ("+model.optimizer_d.momentum=0.9", r"model\.optimizer_d \(Adam\): .*'momentum'"),
    ],
)
def test_invalid_optimizer_arguments_name_the_optimizer(compose_cfg, tmp_path, override, expected) -> None:
    with pytest.raises(ConfigError, match=expected):
        train(compose_cfg(override))
    assert no_training_happened(tmp_path / "run")


def test_image_model_on_point_data_says_it_needs_image_data(compose_cfg, tmp_path) -> None:
    expected = (
        r"model=mlp_gan reads data\.resolution, which data=grid25 lacks: the model needs data that sets it "
        r"\(data=avatars, celeba, cifar10, fashion_mnist, image_folder, mnist\).*model=pacgan_mlp"
    )
    with pytest.raises(ConfigError, match=expected):
        train(compose_cfg("model=mlp_gan", "data=grid25"))
    assert no_training_happened(tmp_path / "run")


@pytest.mark.usefixtures("fashion_mnist_available")
def test_point_model_on_image_data_says_so(compose_cfg, tmp_path) -> None:
    expected = r"shape \(2,\) but the data gives \(1, 28, 28\): .*point model .*data=grid25"
    with pytest.raises(ConfigError, match=expected):
        train(compose_cfg("model=pacgan_mlp"))
    assert no_training_happened(tmp_path / "run")


def _image_folder(root: Path, n: int = 40) -> Path:
    for i in range(n):
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 36), (i * 5, 100, 200 - i)).save(folder / f"{i:03d}.png")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return root


def test_corrupt_image_fails_with_file_name(compose_cfg, tmp_path) -> None:
    folder = _image_folder(tmp_path / "images")
    cfg = compose_cfg("data=image_folder", f"data.path={folder}", "data.resolution=32", "data.num_workers=0")
    with pytest.raises(CorruptImageError, match=r"broken\.png.*on_corrupt=skip"):
        train(cfg)
    assert no_training_happened(tmp_path / "run")


def test_corrupt_image_skipped_when_configured(compose_cfg, tmp_path) -> None:
    folder = _image_folder(tmp_path / "images")
    cfg = compose_cfg(
        "data=image_folder",
        f"data.path={folder}",
        "data.resolution=32",
        "data.num_workers=0",
        "data.on_corrupt=skip",
        "trainer.max_steps=2",
    )
    result = train(cfg)
    assert len(result["datamodule"].dataset) == 40
    assert result["trainer"].global_step == 2


@pytest.mark.usefixtures("fashion_mnist_available")
def test_corrupt_checkpoint_fails_before_training(compose_cfg, tmp_path) -> None:
    train(compose_cfg("trainer.max_steps=2", output_dir=tmp_path / "first"))
    ckpt = tmp_path / "first/checkpoints/last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(compose_cfg(f"ckpt_path={truncated}"))
    with pytest.raises(CheckpointError, match="does not exist"):
        train(compose_cfg(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    assert no_training_happened(tmp_path / "run")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_cli_reports_errors_cleanly(tmp_path) -> None:
    out = f"hydra.run.dir={tmp_path}/run"
    bad_option = _cli("data=nope", out)
    assert bad_option.returncode != 0
    assert "Available options in 'data'" in bad_option.stderr
    assert "fashion_mnist" in bad_option.stderr and "image_folder" in bad_option.stderr

    missing = _cli("data=image_folder", f"data.path={tmp_path}/nowhere", out)
    assert missing.returncode == 2
    assert f"ganforge: error: data.path={tmp_path}/nowhere does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.optimizer_g.lr=-1e-4"], "model.optimizer_g.lr=-0.0001: "),
        (["model=dcgan", "data=grid25"], "model=dcgan reads data.resolution, which data=grid25 lacks"),
        (["logger=wandb", "logger.wandb.mode=sometimes"], "logger.wandb.mode='sometimes': use auto, online"),
    ],
)
def test_cli_config_errors_exit_2_before_training(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # W&B must neither prompt nor go online
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
    run = tmp_path / "run"
    proc = _cli(*args, "data.max_samples=256", f"paths.log_dir={tmp_path}/logs", f"hydra.run.dir={run}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"ganforge: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert no_training_happened(run) and not (run / "wandb").exists()


def test_sweep_metric_that_was_never_logged() -> None:
    from omegaconf import OmegaConf

    from ganforge.errors import GanforgeError
    from ganforge.train import optimized_value

    cfg = OmegaConf.create({"optimized_metric": "metrics/fid_best"})
    assert optimized_value(cfg, {"metrics/fid_best": 3.5, "loss/d": 1.0}) == 3.5
    assert optimized_value(OmegaConf.create({"optimized_metric": None}), {}) is None
    with pytest.raises(GanforgeError, match=r"it logged: loss/d.*callbacks=metrics"):
        optimized_value(cfg, {"loss/d": 1.0})
