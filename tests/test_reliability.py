"""Runs at scale: preemption (SIGTERM), diverged runs (NaN/Inf) and checkpoints that survive failed saves."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganforge.callbacks.checkpoint import AtomicCheckpointIO
from ganforge.callbacks.guards import NonFiniteError
from ganforge.checkpoint import CheckpointError, load_checkpoint
from ganforge.losses.adversarial import NonSaturatingLoss
from ganforge.train import EXIT_PREEMPTED, train

from .conftest import REPO_ROOT, tiny_overrides

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")

FAST = ("model=mlp_gan", "callbacks.sample_grid.every_n_steps=1000")


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    assert any(k.startswith("G_ema.") for k in sa)
    for key in sa:  # G, D, G_ema, fixed latents
        assert torch.equal(sa[key], sb[key]), f"{key} differs"


# -- SIGTERM / preemption ---------------------------------------------------------------------------
def preempt(overrides: list[str], run: Path, group: bool) -> tuple[int, str]:
    """Start ``train.py``, wait for a few logged steps, send SIGTERM; (exit status, output).

    ``group``: to every process of the job (data workers, DDP ranks), as SLURM sends it.
    """
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "train.py"), *overrides],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=group,
    )
    try:
        deadline = time.monotonic() + 180
        metrics = run / "csv/version_0/metrics.csv"
        # A few logged steps (one CSV row each), then preempt.
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 5):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None and group:
            os.killpg(proc.pid, signal.SIGKILL)
        elif proc.poll() is None:
            proc.kill()
    return proc.returncode, output


@pytest.mark.parametrize(
    ("workers", "group"),
    [(0, False), (2, True)],
    ids=["main-process", "process-group-with-dataloader-workers"],
)
def test_sigterm_saves_last_ckpt_and_resume_is_exact(
    compose_cfg, tmp_path, workers: int, group: bool
) -> None:
    """``group``: SIGTERM goes to every process of the job, data workers included, as SLURM sends it."""
    run = tmp_path / "preempted"
    overrides = [*tiny_overrides(run), *FAST, "trainer.max_steps=100000", f"hydra.run.dir={run}"]
    overrides += ["callbacks.model_checkpoint.every_n_train_steps=1000"]  # last.ckpt comes from SIGTERM only
    overrides += [f"data.num_workers={workers}"]
    returncode, output = preempt(overrides, run, group)
    assert returncode == EXIT_PREEMPTED, output[-3000:]
    assert "Received SIGTERM: stopped after step" in output
    last = run / "checkpoints/last.ckpt"
    stopped_at = load_checkpoint(last)["global_step"]
    assert 5 <= stopped_at < 100000
    assert not list(run.glob("checkpoints/*.tmp")) and not list(run.glob("checkpoints/.*"))

    total = stopped_at + 3
    straight = tmp_path / "straight"
    train(compose_cfg(*FAST, f"trainer.max_steps={total}", output_dir=straight))
    resumed = tmp_path / "resumed"
    result = train(compose_cfg(*FAST, f"trainer.max_steps={total}", f"ckpt_path={last}", output_dir=resumed))
    assert result["trainer"].global_step == total and not result["preempted"]
    _assert_same_weights(straight / "checkpoints/last.ckpt", resumed / "checkpoints/last.ckpt")


# -- NaN / Inf --------------------------------------------------------------------------------------
@pytest.fixture
def nan_at_step(monkeypatch):
    """``nan_at_step(k)``: the D loss of the k-th training step (and so its gradients) becomes NaN."""

    def _inject(k: int) -> None:
        calls = {"n": 0}
        d_loss = NonSaturatingLoss.d_loss

        def poisoned(self, real_logits, fake_logits):
            calls["n"] += 1
            loss = d_loss(self, real_logits, fake_logits)
            return loss * float("nan") if calls["n"] == k else loss

        monkeypatch.setattr(NonSaturatingLoss, "d_loss", poisoned)

    return _inject


def test_nan_loss_stops_with_step_and_last_good_checkpoint(compose_cfg, tmp_path, nan_at_step) -> None:
    nan_at_step(5)
    with pytest.raises(NonFiniteError) as err:
        train(compose_cfg(*FAST, "trainer.max_steps=8"))  # checkpoints every 2 steps
    ckpts = tmp_path / "run/checkpoints"
    message = str(err.value)
    assert "non-finite loss/d=nan" in message and "at step 5" in message
    assert f"last good checkpoint: {ckpts / 'last.ckpt'}" in message
    # The diverged state was never written: the good checkpoint of step 4 survives and loads.
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    good = load_checkpoint(ckpts / "last.ckpt")
    assert good["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values() if v.is_floating_point())


def test_nan_check_read_back_later_still_names_the_first_bad_step(compose_cfg, tmp_path, nan_at_step) -> None:
    """every_n_steps=100: no GPU sync between checkpoints, yet the step-6 checkpoint is never written."""
    nan_at_step(5)
    with pytest.raises(NonFiniteError, match=r"loss/d=nan.* at step 5 \(found at step 6\)"):
        train(compose_cfg(*FAST, "trainer.max_steps=8", "callbacks.non_finite_guard.every_n_steps=100"))
    ckpts = tmp_path / "run/checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    assert load_checkpoint(ckpts / "last.ckpt")["global_step"] == 4


def test_nan_message_names_every_non_finite_value(compose_cfg, nan_at_step) -> None:
    # Step 5's NaN D loss gives NaN gradients, so D's weights and then G's loss and weights follow.
    nan_at_step(5)
    with pytest.raises(NonFiniteError, match=r"loss/d=nan, loss/g=nan, weights of G, weights of D at step 5"):
        train(compose_cfg(*FAST, "trainer.max_steps=8", "callbacks.non_finite_guard.check_weights=true"))


def test_nan_rollback_restores_last_good_checkpoint_and_continues(
    compose_cfg, tmp_path, nan_at_step, caplog
) -> None:
    nan_at_step(5)
    result = train(compose_cfg(*FAST, "trainer.max_steps=8", "callbacks.non_finite_guard.action=rollback"))
    assert result["trainer"].global_step == 8
    guard = next(c for c in result["trainer"].callbacks if type(c).__name__ == "NonFiniteGuard")
    assert guard.rollbacks == 1
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    assert f"at step 5: rolled back the weights and optimizer states to {ckpt} (step 4)" in caplog.text
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())
    final = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    assert final["global_step"] == 8

    # With no rollbacks left it stops like action=stop.
    nan_at_step(5)
    with pytest.raises(NonFiniteError, match="0 rollbacks done"):
        train(
            compose_cfg(
                *FAST,
                "trainer.max_steps=8",
                "callbacks.non_finite_guard.action=rollback",
                "callbacks.non_finite_guard.max_rollbacks=0",
                output_dir=tmp_path / "no_retries",
            )
        )


def test_nan_found_at_an_epoch_end_is_never_written_as_last_ckpt(compose_cfg, tmp_path, nan_at_step) -> None:
    """Lightning writes last.ckpt at every epoch end (256 samples / 16 = 16 steps): the deferred check
    is read back before it, so the NaN of step 15 stops the run there instead of being saved."""
    nan_at_step(15)
    rare = (
        "callbacks.non_finite_guard.every_n_steps=100",
        "callbacks.model_checkpoint.every_n_train_steps=100",
    )
    with pytest.raises(NonFiniteError, match=r"at step 15 \(found at step 16\); no checkpoint was written"):
        train(compose_cfg(*FAST, *rare, "trainer.max_steps=40"))
    assert not (tmp_path / "run/checkpoints/last.ckpt").exists()


def test_max_time_ends_the_run_with_last_ckpt_at_its_final_step(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*FAST, "trainer.max_steps=1000000", "trainer.max_time=00:00:00:02"))
    step = result["trainer"].global_step
    assert 0 < step < 1000000
    assert load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["global_step"] == step


def test_max_time_counts_the_time_before_a_resume(compose_cfg, tmp_path) -> None:
    """A run split over two jobs (preemption, a device call's time limit) stops at max_time in all."""
    budget = "trainer.max_time=00:00:10:00"
    train(compose_cfg(*FAST, "trainer.max_steps=3", budget))
    last = tmp_path / "run/checkpoints/last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["callbacks"]["Timer"]["time_elapsed"]["train"] > 0
    ckpt["callbacks"]["Timer"]["time_elapsed"]["train"] = 600.0  # the first job used it all
    torch.save(ckpt, last)
    result = train(
        compose_cfg(*FAST, "trainer.max_steps=100", budget, f"ckpt_path={last}", output_dir=tmp_path / "r")
    )
    timer = next(c for c in result["trainer"].callbacks if type(c).__name__ == "Timer")
    assert timer.time_elapsed("train") >= 600
    assert result["trainer"].global_step == 3  # the budget was spent: no further step


def test_a_failure_after_the_last_step_still_writes_last_ckpt_of_that_step(
    compose_cfg, tmp_path, monkeypatch, caplog
) -> None:
    """Lightning runs checkpoint hooks after all others: an end-of-run evaluation or upload that fails
    in on_train_end must not take the final steps with it (found on the H100: a 42k-step run kept 40k)."""
    from ganforge.callbacks.samples import SampleGrid

    def upload_fails(self, trainer, pl_module) -> None:
        raise RuntimeError("upload failed")

    monkeypatch.setattr(SampleGrid, "on_train_end", upload_fails)
    with pytest.raises(RuntimeError, match="upload failed"):
        train(compose_cfg(*FAST, "trainer.max_steps=5"))  # checkpoints every 2 steps
    ckpts = tmp_path / "run/checkpoints"
    assert load_checkpoint(ckpts / "last.ckpt")["global_step"] == 5
    assert "training finished at step 5, then RuntimeError: upload failed; writing last.ckpt" in caplog.text


def test_a_divergence_found_after_the_last_step_is_never_written(compose_cfg, tmp_path, nan_at_step) -> None:
    nan_at_step(5)  # the last step; the guard reads it back only in on_train_end
    with pytest.raises(NonFiniteError, match=r"at step 5"):
        train(compose_cfg(*FAST, "trainer.max_steps=5", "callbacks.non_finite_guard.every_n_steps=100"))
    assert load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["global_step"] == 4


# -- atomic checkpoint writes -----------------------------------------------------------------------
def test_failed_save_keeps_previous_checkpoint(compose_cfg, tmp_path, monkeypatch) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def disk_full_on_third_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # step 4's step_0000004.ckpt (step 2 wrote step_0000002.ckpt and last.ckpt)
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_on_third_save)
    with pytest.raises(OSError, match="previous file there is unchanged") as err:
        train(compose_cfg(*FAST, "trainer.max_steps=6"))
    assert err.value.errno == errno.ENOSPC
    ckpts = tmp_path / "run/checkpoints"
    assert sorted(os.listdir(ckpts)) == ["last.ckpt", "step_0000002.ckpt"]  # no temporary files left
    assert load_checkpoint(ckpts / "last.ckpt")["global_step"] == 2


def test_atomic_checkpoint_io_is_the_default_and_replaces_in_place(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*FAST, "trainer.max_steps=2"))
    assert isinstance(result["trainer"].strategy.checkpoint_io, AtomicCheckpointIO)
    last = tmp_path / "run/checkpoints/last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"replaced": True}, last)
    assert torch.load(last, weights_only=True) == {"replaced": True}
    assert sorted(os.listdir(last.parent)) == ["last.ckpt", "step_0000002.ckpt"]


def test_truncated_checkpoint_fails_clearly_before_training(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*FAST, "trainer.max_steps=2"))
    last = tmp_path / "run/checkpoints/last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train(compose_cfg(*FAST, "trainer.max_steps=4", f"ckpt_path={truncated}", output_dir=tmp_path / "r"))


def test_sigterm_under_ddp_saves_a_checkpoint_every_rank_resumes_from(tmp_path) -> None:
    """SIGTERM to the whole 2-process job: both ranks stop after the same step, rank 0 writes last.ckpt
    holding both ranks' random states, and the job exits with 143."""
    run = tmp_path / "ddp"
    overrides = [
        *tiny_overrides(run),
        *FAST,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.sync_batchnorm=false",
        "trainer.max_steps=100000",
        "callbacks.model_checkpoint.every_n_train_steps=1000",
        f"hydra.run.dir={run}",
    ]
    returncode, output = preempt(overrides, run, group=True)
    assert returncode == EXIT_PREEMPTED, output[-3000:]
    ckpt = load_checkpoint(run / "checkpoints/last.ckpt")
    assert ckpt["global_step"] >= 5
    assert len(ckpt["ganforge"]["rng_per_rank"]) == 2


def test_nan_guard_copies_nothing_from_host_to_device_between_read_backs() -> None:
    """A host-to-device copy blocks until the CUDA queue drains; the per-step check must not make one.

    Shown on the meta device (any non-CPU device is alike here): a D-only step (no ``loss/g``), with
    the weight check on, dispatches no copy from a CPU tensor.
    """
    from types import SimpleNamespace

    from torch.utils._python_dispatch import TorchDispatchMode

    from ganforge.callbacks.guards import NonFiniteGuard

    class HostCopies(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.copies: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            inputs = [a for a in args if isinstance(a, torch.Tensor)]
            outputs = out if isinstance(out, (tuple, list)) else [out]
            if any(a.device.type == "cpu" for a in inputs) and any(
                isinstance(o, torch.Tensor) and o.device.type != "cpu" for o in outputs
            ):
                self.copies.append(str(func))
            return out

    meta = torch.device("meta")
    module = SimpleNamespace(
        device=meta,
        step_losses={"loss/d": torch.zeros((), device=meta)},  # between G updates: no loss/g
        G=torch.nn.Linear(3, 3, device=meta),
        D=torch.nn.Linear(3, 1, device=meta),
    )
    trainer = SimpleNamespace(
        global_step=3, callbacks=[], world_size=1, received_sigterm=False, max_steps=100
    )
    guard = NonFiniteGuard(every_n_steps=100)
    guard.on_fit_start(trainer, module)
    with HostCopies() as mode:
        for step in (3, 4):
            trainer.global_step = step
            assert guard._bad_values(trainer, module) == (step, [])  # not read back yet
    pending = guard._pending
    assert pending.names == ["loss/d", "loss/g", "weights of G", "weights of D"]
    assert pending.first_values.device == meta and mode.copies == []
