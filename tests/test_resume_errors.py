"""Checkpoints that cannot be resumed, and resumes that would train nothing or lose a record, fail or
say so before the first step."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from ganforge.callbacks.checkpoint import remove_stale_temporaries
from ganforge.checkpoint import CheckpointError, load_checkpoint
from ganforge.errors import ConfigError
from ganforge.train import train

from .conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")

FAST = ("model=mlp_gan", "callbacks.sample_grid.every_n_steps=1000")


def _junk_files(folder: Path) -> dict[str, Path]:
    """Files that are not checkpoints, each of a kind that once reached the unpickler."""
    files = {
        "text": b"these are my notes, not a checkpoint\n",
        "binary": bytes(range(256)) * 8,
        "empty": b"",
        "pickle": pickle.dumps({"state_dict": {}}),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.ckpt"
        paths[name].write_bytes(content)
    paths["zip"] = folder / "zip.ckpt"  # a zip archive, but not one torch.save wrote
    with zipfile.ZipFile(paths["zip"], "w") as z:
        z.writestr("data.txt", "hello")
    return paths


def test_every_unreadable_file_is_a_checkpoint_error(tmp_path) -> None:
    for name, path in _junk_files(tmp_path).items():
        with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
            load_checkpoint(path)
        assert str(path) in str(err.value), name


@pytest.mark.parametrize("script", ["train.py", "eval.py", "generate.py"])
def test_cli_rejects_a_junk_checkpoint_with_a_clear_error(tmp_path, script: str) -> None:
    junk = tmp_path / "notes.ckpt"
    junk.write_text("a text file passed as a checkpoint by mistake\n")
    out = tmp_path / "out"
    args = [f"ckpt_path={junk}", f"hydra.run.dir={out}", f"paths.output_dir={out}"]
    if script == "train.py":
        args += ["trainer=cpu", "data.max_samples=64", "data.batch_size=16", "~callbacks.model_summary"]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"ganforge: error: checkpoint {junk} is not a PyTorch checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr and "Unpickl" not in proc.stderr
    assert not (out / "checkpoints").exists()


def test_max_steps_zero_is_an_error(compose_cfg, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"trainer.max_steps=0 trains nothing"):
        train(compose_cfg(*FAST, "trainer.max_steps=0"))
    assert not (tmp_path / "run/checkpoints").exists()


def test_resume_of_a_finished_run_says_nothing_is_left_to_train(compose_cfg, tmp_path, caplog) -> None:
    train(compose_cfg(*FAST, "trainer.max_steps=4"))
    last = tmp_path / "run/checkpoints/last.ckpt"
    again = tmp_path / "again"
    result = train(compose_cfg(*FAST, "trainer.max_steps=3", f"ckpt_path={last}", output_dir=again))
    assert not result["preempted"] and result["trainer"].global_step == 0  # fit never started
    assert (
        f"Nothing to train: checkpoint {last} is at step 4 and trainer.max_steps=3 is reached. "
        "To train further, raise trainer.max_steps above 4"
    ) in caplog.text
    assert not again.exists()


def test_resume_with_another_model_names_the_differences(compose_cfg, tmp_path) -> None:
    train(compose_cfg("model=dcgan", "trainer.max_steps=2"))
    last = tmp_path / "run/checkpoints/last.ckpt"
    with pytest.raises(CheckpointError) as err:
        train(compose_cfg(*FAST, "trainer.max_steps=4", f"ckpt_path={last}", output_dir=tmp_path / "r"))
    message = str(err.value)
    assert f"checkpoint {last} holds another model than this command builds" in message
    assert (
        "model.generator._target_: 'ganforge.models.DCGANGenerator' in the checkpoint, "
        "'ganforge.models.MLPGenerator' here"
    ) in message
    assert f"trained with ({tmp_path / 'run/config.yaml'})" in message
    assert not (tmp_path / "r/checkpoints").exists()

    # The same model with another width: the shapes are named.
    with pytest.raises(CheckpointError, match=r"tensor\(s\) of other shapes .*base_channels: 64 in"):
        train(compose_cfg("model.generator.base_channels=32", f"ckpt_path={last}", output_dir=tmp_path / "w"))


def test_resume_into_its_own_folder_keeps_the_record_of_what_ran(compose_cfg, tmp_path) -> None:
    run = tmp_path / "run"
    train(compose_cfg(*FAST, "trainer.max_steps=2"))
    original = (run / "config.yaml").read_text()
    last = run / "checkpoints/last.ckpt"
    # Same options (only ckpt_path differs): one record.
    train(compose_cfg(*FAST, "trainer.max_steps=2", f"ckpt_path={last}"))
    assert sorted(p.name for p in run.glob("config*.yaml")) == ["config.yaml"]
    # More steps and another learning rate: the first record stays, the second says where it starts.
    train(compose_cfg(*FAST, "trainer.max_steps=4", "model.optimizer_g.lr=1e-4", f"ckpt_path={last}"))
    assert (run / "config.yaml").read_text() == original
    resumed = (run / "config_from_step_0000002.yaml").read_text()
    assert "max_steps: 4" in resumed and "lr: 0.0001" in resumed and f"ckpt_path: {last}" in resumed


def test_stale_temporaries_of_killed_saves_are_removed_at_start(compose_cfg, tmp_path) -> None:
    ckpts = tmp_path / "run/checkpoints"
    ckpts.mkdir(parents=True)
    stale = [ckpts / ".step_0000002.ckpt.x7k2q.tmp", ckpts / ".last.ckpt.ab12cd.tmp"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 half a checkpoint")
    keep = ckpts / "notes.tmp"  # not a checkpoint temporary: left alone
    keep.write_text("mine")
    train(compose_cfg(*FAST, "trainer.max_steps=2"))
    assert not any(p.exists() for p in stale) and keep.exists()
    assert remove_stale_temporaries(str(ckpts)) == []


def test_resume_into_a_new_folder_warns_nothing_about_the_old_one(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*FAST, "trainer.max_steps=2"))
    last = tmp_path / "run/checkpoints/last.ckpt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compose_cfg(*FAST, "trainer.max_steps=3", f"ckpt_path={last}", output_dir=tmp_path / "r"))
    assert load_checkpoint(tmp_path / "r/checkpoints/last.ckpt")["global_step"] == 3
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    assert torch.load(last, weights_only=False)["global_step"] == 2
