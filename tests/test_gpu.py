"""What only a CUDA GPU can show: TF32/exact switching, bf16 + CUDA graphs, cuDNN paths.

Skipped without a GPU (``tests/run_if.py``); on a GPU machine: ``pytest -m gpu``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.benchmarks import throughput
from ganforge.metrics.extractors import build_extractor
from ganforge.precision import exact_fp32

from .run_if import RunIf

CUDA = torch.device("cuda")
TINY = ["trainer=gpu", "data.resolution=16", "data.channels=3", "model.ema_rampup=null"]
WIDTH = ["model.generator.base_channels=8", "model.discriminator.base_channels=8"]


@RunIf(min_gpus=1)
def test_plain_loop_and_ganforge_make_the_same_updates_on_cuda(tmp_path: Path) -> None:
    """The CPU equivalence test again where cuDNN and device batches are real.

    Both loops run the same convolution algorithms in IEEE fp32: torch allows TF32 for cuDNN
    convolutions by default, and ``trainer=gpu`` autotunes (picks algorithms by timing). The plain
    loop runs twice: whatever differs between its own two runs is run-to-run noise (a kernel that is
    not deterministic, amplified by Adam where gradients are near zero), and ganforge may differ from
    it by no more than that.
    """
    cfg = throughput.compose_config([*TINY, *WIDTH, "tf32=false", "trainer.benchmark=false"], tmp_path)
    batches = throughput.DeviceBatches((3, 16, 16), 8, CUDA)
    module = throughput.build_module(cfg)
    flags = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with exact_fp32(CUDA):
            plain, again = (
                throughput.run_plain(cfg, batches, 0, 4, CUDA, fast=False, init=module, seed=7)[1]
                for _ in range(2)
            )
            _, ours = throughput.run_ganforge(cfg, batches, 0, 4, module=module, seed=7)
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
    mismatched = []  # every tensor that differs by more than the noise, with sizes
    for name in ("G", "D", "G_ema"):
        trained, repeat = getattr(ours, name).state_dict(), again[name].state_dict()
        for key, value in plain[name].state_dict().items():
            if not value.is_floating_point():
                assert torch.equal(value, trained[key].to(value.device)), f"{name}.{key}"
                continue
            diff = (value - trained[key]).abs().max().item()
            noise = (value - repeat[key]).abs().max().item()
            if not torch.allclose(value, trained[key], rtol=1e-4, atol=1e-5) and diff > 4 * noise:
                scale = value.abs().max().item()
                mismatched.append(
                    f"{name}.{key}: max |diff| {diff:.3g}, plain vs plain {noise:.3g}, |value| {scale:.3g}"
                )
    assert not mismatched, "\n".join(mismatched)


@RunIf(min_gpus=1, bf16=True)
@pytest.mark.parametrize(
    "model",
    [["model=dcgan"], ["model=sngan", "loss=hinge", "loss.n_critic=2", "data.resolution=32"]],
    ids=["dcgan", "sngan"],
)
def test_speed_fast_with_cuda_graphs_trains(tmp_path: Path, model: list[str]) -> None:
    """``speed=fast model.compile={mode: reduce-overhead}``: bf16, NHWC, fused Adam, CUDA graphs.

    DCGAN's D has batch norm (buffers updated inside the graph, real and fake scored apart); SNGAN's
    scores both in one call and steps its spectral norm eagerly between graph replays.
    """
    overrides = [*TINY, *WIDTH, *model, "speed=fast", "model.compile={mode: reduce-overhead}"]
    cfg = throughput.compose_config(overrides, tmp_path, plain=False)
    size = int(cfg.data.resolution)
    batches = throughput.DeviceBatches((3, size, size), 16, CUDA)
    module = throughput.build_module(cfg)
    init = {k: v.clone() for k, v in module.state_dict().items()}
    _, trained = throughput.run_ganforge(cfg, batches, 2, 6, module=module)
    state = trained.state_dict()
    assert trained._joint_d == (model[0] == "model=sngan")
    for key in ("G", "D", "G_ema"):
        moved = [k for k in state if k.startswith(f"{key}.") and not torch.equal(state[k], init[k])]
        assert moved, f"{key} did not train"
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@RunIf(min_gpus=1)
def test_extractor_precision_on_cuda() -> None:
    """Exact features on CUDA equal the CPU's; TF32 ones stay close; global TF32 flags are restored."""
    x = torch.randint(0, 256, (64, 3, 48, 48), dtype=torch.uint8)
    cpu = build_extractor("tiny")(x)["features"]
    before = torch.backends.cudnn.conv.fp32_precision, torch.get_float32_matmul_precision()
    exact = build_extractor("tiny", device=CUDA)(x)["features"].cpu()
    fast = build_extractor("tiny", device=CUDA, precision="tf32")(x)["features"].cpu()
    torch.testing.assert_close(exact, cpu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, cpu, rtol=2e-2, atol=2e-3)
    assert (torch.backends.cudnn.conv.fp32_precision, torch.get_float32_matmul_precision()) == before
