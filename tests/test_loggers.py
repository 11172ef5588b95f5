"""Loggers receive the losses and sample grids: W&B offline (no prompt, no network) and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganforge.errors import ConfigError
from ganforge.loggers import has_wandb_credentials, wandb_logger
from ganforge.train import train

from .wandb_records import history, records, wait_for_exit_record

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")


@pytest.fixture
def no_wandb_credentials(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))


def test_wandb_mode_auto_goes_offline_without_credentials(
    no_wandb_credentials, monkeypatch, tmp_path
) -> None:
    assert not has_wandb_credentials()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert has_wandb_credentials()
    with pytest.raises(ConfigError, match="auto, online or offline"):
        wandb_logger(mode="sometimes", save_dir=str(tmp_path))


def test_wandb_offline_run_holds_logged_keys_and_images(no_wandb_credentials, compose_cfg, tmp_path) -> None:
    train(compose_cfg("logger=wandb", "trainer.max_steps=4"))
    runs = list((tmp_path / "run/wandb").glob("offline-run-*"))
    assert len(runs) == 1, "expected exactly one offline W&B run"
    (run_file,) = runs[0].glob("run-*.wandb")  # what `wandb sync` uploads later
    rows = history(wait_for_exit_record(run_file))
    (run,) = [r.run for r in records(run_file) if r.WhichOneof("record_type") == "run"]
    assert run.run_group == ""  # a single run is not grouped (multirun jobs are: tests/test_sweeps.py)
    losses = [r for r in rows if "loss/d" in r]
    assert [r["trainer/global_step"] for r in losses] == [1, 2, 3, 4]
    for key in ("loss/g", "d/real_logit", "d/fake_logit", "lr/g", "lr/d", "grad_norm/d", "grad_norm/g"):
        assert all(key in r for r in losses), key
    assert any(r.get("d/real_logits/_type") == "histogram" for r in rows)
    grids = [r for r in rows if "samples/filenames" in r]
    assert [r["trainer/global_step"] for r in grids] == [2, 4]
    for r in grids:
        (name,) = r["samples/filenames"]
        assert (runs[0] / "files" / name).is_file()


def test_wandb_logs_each_checkpoint_as_an_artifact(no_wandb_credentials, compose_cfg, tmp_path) -> None:
    train(compose_cfg("logger=wandb", "logger.wandb.log_model=all", "trainer.max_steps=4"))
    (run_file,) = (tmp_path / "run/wandb").glob("offline-run-*/run-*.wandb")
    artifacts = [r.artifact for r in records(wait_for_exit_record(run_file)) if r.HasField("artifact")]
    assert artifacts and {a.type for a in artifacts} == {"model"}
    names = {json.loads(a.metadata)["original_filename"] for a in artifacts}
    assert {"step_0000002.ckpt", "step_0000004.ckpt"} <= names  # each checkpoint, as it was written
    (entry,) = artifacts[-1].manifest.contents
    assert entry.path == "model.ckpt" and entry.size > 0


def test_tensorboard_gets_scalars_and_images(compose_cfg, tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(compose_cfg("logger=tensorboard", "trainer.max_steps=4"))
    (event_dir,) = {p.parent for p in Path(tmp_path / "run/tensorboard").rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(event_dir), size_guidance={"images": 0, "scalars": 0, "histograms": 0})
    acc.Reload()
    assert {"loss/d", "loss/g"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/d")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Images("samples")] == [2, 4]
    assert [e.step for e in acc.Scalars("grad_norm/d")] == [1, 2, 3, 4]
    assert all(e.value > 0 for e in acc.Scalars("grad_norm/g"))
    for name in ("d/real_logits", "d/fake_logits"):  # D score distributions on real and fake data
        (first, *_) = acc.Histograms(name)
        assert first.step == 1 and first.histogram_value.num == 16  # one value per sample of the batch
