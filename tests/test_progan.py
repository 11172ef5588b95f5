"""ProGAN: growing networks, the growth schedule, step-sized batches, exact resume anywhere, metrics while
growing, and the errors for bad input."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.callbacks.progress import Throughput, gan_metrics
from ganforge.checkpoint import CheckpointError, load_checkpoint
from ganforge.data.sampler import ScheduledBatchSampler
from ganforge.errors import ConfigError
from ganforge.models.equalized import EqualConv2d
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator, at_level, num_levels
from ganforge.tasks.progressive import GrowthSchedule
from ganforge.train import train

from .conftest import run_script, tiny_overrides
from .test_train import _assert_same_state, logged

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")

TINY = {"channel_base": 128, "channel_max": 16}


def tiny_nets(resolution: int = 16) -> tuple[ProGANGenerator, ProGANDiscriminator]:
    torch.manual_seed(0)
    return ProGANGenerator(resolution, 3, z_dim=8, **TINY), ProGANDiscriminator(resolution, 3, **TINY)


# -- networks ---------------------------------------------------------------------------------------
def test_images_keep_the_full_size_and_show_the_current_resolution() -> None:
    g, _ = tiny_nets(16)
    z = torch.randn(4, 8)
    for level, size in enumerate((4, 8, 16)):
        g.set_growth(level)
        x = g(z)
        assert x.shape == (4, 3, 16, 16) and g.current_resolution == size
        block = 16 // size  # nearest up-sampling: constant blocks of block x block pixels
        assert torch.equal(
            x, x[..., ::block, ::block].repeat_interleave(block, 2).repeat_interleave(block, 3)
        )


def test_a_level_fades_in_from_exactly_the_level_below() -> None:
    g, d = tiny_nets(16)
    z, x = torch.randn(4, 8), torch.randn(4, 3, 16, 16)
    for level in (1, 2):
        g.set_growth(level - 1, 1.0)
        d.set_growth(level - 1, 1.0)
        below_g, below_d = g(z), d(x)
        g.set_growth(level, 0.0)
        d.set_growth(level, 0.0)
        assert torch.equal(g(z), below_g)  # alpha 0: the new block is not seen yet
        torch.testing.assert_close(d(x), below_d)  # pooling by 2 then 2 vs by 4: rounding only
        g.set_growth(level, 0.5)
        d.set_growth(level, 0.5)
        half = g(z)
        g.set_growth(level, 1.0)
        full = g(z)
        # the output moves linearly from the level below's to the new block's
        torch.testing.assert_close(half, (below_g + full) / 2)


def test_growth_state_is_kept_in_the_state_dict() -> None:
    g, _ = tiny_nets(16)
    g.set_growth(1, 0.25)
    other, _ = tiny_nets(16)
    assert other.level == 2 and other.alpha == 1.0  # fully grown unless told otherwise
    other.load_state_dict(g.state_dict())
    assert (other.level, other.alpha) == (1, 0.25)
    with pytest.raises(ValueError, match="level 3 must be in"):
        g.set_growth(3)


def test_equalised_learning_rate_scales_weights_at_run_time() -> None:
    conv = EqualConv2d(64, 32, 3)
    assert abs(float(conv.weight.detach().std()) - 1.0) < 0.05  # stored ~ N(0, 1)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))  # He's constant (with lrelu's sqrt 2)


def test_real_images_are_seen_at_the_level_and_faded_like_the_fakes() -> None:
    x = torch.rand(2, 3, 16, 16)
    four = at_level(x, 0, 1.0, 2)
    assert torch.allclose(
        four[..., :4, :4], x[..., :4, :4].mean(dim=(-1, -2), keepdim=True).expand(2, 3, 4, 4)
    )
    eight = at_level(x, 1, 1.0, 2)
    torch.testing.assert_close(at_level(x, 1, 0.0, 2), four)
    torch.testing.assert_close(at_level(x, 1, 0.25, 2), 0.75 * four + 0.25 * eight)
    assert torch.equal(at_level(x, 2, 1.0, 2), x)


@pytest.mark.parametrize("resolution", [3, 4, 48, 100])
def test_target_resolution_must_be_4_times_a_power_of_2(resolution: int) -> None:
    with pytest.raises(ConfigError, match=rf"4 \* 2\^k px .* not {resolution}; set data.resolution"):
        num_levels(resolution)


# -- schedule -----------------------------------------------------------------------------------------
def test_schedule_phases_batch_sizes_and_alpha() -> None:
    s = GrowthSchedule(16, stable_images=32, fade_images=32, batch_sizes={4: 16, 8: 8, 16: 4})
    phases = [(p.level, p.fading, p.start_step, p.steps, p.batch_size) for p in s.phases]
    assert phases == [
        (0, False, 0, 2, 16),
        (1, True, 2, 4, 8),
        (1, False, 6, 4, 8),
        (2, True, 10, 8, 4),
        (2, False, 18, None, 4),
    ]
    assert s.final_step == 18
    assert [s.at(k).alpha for k in range(2, 6)] == [0.0, 0.25, 0.5, 0.75]
    assert s.at(6).alpha == 1.0 and s.at(10).alpha == 0.0 and s.at(1000).level == 2
    assert [s.images_before(k) for k in (0, 2, 6, 10, 18, 19)] == [0, 32, 64, 96, 128, 132]
    assert s.batch_size(9) == 8 and s.batch_size(10) == 4
    uneven = GrowthSchedule(8, stable_images=10, fade_images=10, batch_sizes=4)
    assert [p.steps for p in uneven.phases] == [3, 3, None]  # ceil(10 / 4): a phase ends on a whole batch


def test_schedule_errors_say_what_to_change() -> None:
    with pytest.raises(ConfigError, match=r"every resolution \[4, 8, 16\]: missing \[16\]"):
        GrowthSchedule(16, 32, 32, {4: 16, 8: 8})
    with pytest.raises(ConfigError, match=r"\[32\] are not resolutions of this run"):
        GrowthSchedule(16, 32, 32, {4: 16, 8: 8, 16: 4, 32: 2})
    with pytest.raises(ConfigError, match=r"stable_images=8 is shorter than one step of a stage"):
        GrowthSchedule(16, 8, 32, {4: 16, 8: 8, 16: 4})
    with pytest.raises(ConfigError, match=r"batch size must be >= 1"):
        GrowthSchedule(16, 32, 32, 0)


# -- data -----------------------------------------------------------------------------------------------
def test_step_sized_batches_continue_exactly_after_any_number_of_batches() -> None:
    s = GrowthSchedule(16, stable_images=32, fade_images=32, batch_sizes={4: 16, 8: 8, 16: 4})

    def batches(consumed: int, rank: int = 0, world: int = 1, n: int = 30) -> list[list[int]]:
        sampler = ScheduledBatchSampler(
            50, s.batch_size, s.images_before, lambda: consumed, 3, True, world, rank
        )
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    straight = batches(0)
    assert [len(b) for b in straight[:12]] == [16, 16, 8, 8, 8, 8, 8, 8, 8, 8, 4, 4]
    stream = [i for b in straight for i in b]
    assert sorted(stream[:50]) == list(range(50)) and sorted(stream[50:100]) == list(range(50))  # epochs
    for k in (1, 2, 5, 6, 10, 13):  # mid-stage, batch-size change, stage boundary, across an epoch end
        assert batches(k, n=30 - k) == straight[k:]
    ranks = [set(batches(0, r, 2, 1)[0]) for r in (0, 1)]  # 16 of each rank's 25 per epoch
    assert not ranks[0] & ranks[1]  # data-parallel ranks share the data without overlap


# -- training -------------------------------------------------------------------------------------------
PROGAN = (
    "model=progan",
    "data.resolution=16",
    "data.channels=3",
    "data.max_samples=48",  # the data stream crosses epochs during the run
    "model.generator.z_dim=8",
    *(f"model.{net}.{k}={v}" for net in ("generator", "discriminator") for k, v in TINY.items()),
    "model.growth.stable_images=32",
    "model.growth.fade_images=32",
    "model.growth.batch_sizes={4:16,8:8,16:4}",
    "model.growth.reset_optimizers=true",
)


def test_progan_trains_through_every_stage_and_logs_its_growth(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*PROGAN, "trainer.max_steps=20"))
    module = result["model"]
    assert module.G.current_resolution == module.G_ema.current_resolution == 16 and module.D.level == 2
    values = logged(tmp_path / "run")
    assert values["growth/resolution"][:3] == [4.0, 4.0, 8.0]  # after steps 1, 2, 3
    assert values["growth/alpha"][2:6] == [0.0, 0.25, 0.5, 0.75]
    assert values["growth/kimg"][-1] == pytest.approx(0.136)  # 32 + 8 * 8 + 8 * 4 + 2 * 4 images in 20 steps
    assert all(math.isfinite(v) for v in values["loss/d"] + values["loss/g"])
    assert type(module.loss).__name__ == "WassersteinGPLoss" and module.loss.drift == 0.001
    assert module.n_critic == 1
    shown = gan_metrics(result["trainer"], Throughput())  # what the progress bar prints
    assert shown["res"] == "16px" and "fade" not in shown
    module.grow_to(14)
    assert module.progress_status() == {"res": "16px", "fade": "50%"}


def test_progan_resumes_exactly_mid_fade_at_a_stage_boundary_and_across_a_batch_size_change(
    compose_cfg, tmp_path
) -> None:
    def run(out: str, *overrides: str) -> dict:
        return train(compose_cfg(*PROGAN, "trainer.max_steps=20", *overrides, output_dir=tmp_path / out))

    straight = run("a", "callbacks.model_checkpoint.every_n_train_steps=2")
    # step 4: mid-fade (alpha 0.5); 6: fade -> stable at 8 px; 10: a new level, batch 8 -> 4, Adam reset
    for step in (4, 6, 10):
        resumed = run(f"from{step}", f"ckpt_path={tmp_path / f'a/checkpoints/step_{step:07d}.ckpt'}")
        assert resumed["trainer"].global_step == 20
        _assert_same_state(straight, resumed)


def test_metrics_say_the_resolution_they_scored_and_only_the_final_one_competes(
    compose_cfg, tmp_path
) -> None:
    cfg = compose_cfg(
        *PROGAN,
        "trainer.max_steps=20",
        "callbacks=metrics",
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.metrics=[fid]",
        "callbacks.metrics.num_samples=48",
        "callbacks.metrics.every_n_steps=5",
        "callbacks.metrics.batch_size=16",
        f"callbacks.metrics.cache_dir={tmp_path / 'cache'}",
    )
    result = train(cfg)
    history = result["trainer"].callbacks
    metrics = next(c for c in history if type(c).__name__ == "GenerativeMetrics")
    assert [(h["step"], h["resolution"]) for h in metrics.history] == [(5, 8), (10, 8), (15, 16), (20, 16)]
    values = logged(tmp_path / "run")
    assert len(values["metrics/fid_8px"]) == 2 and len(values["metrics/fid_16px"]) == 1  # step 15: fading
    assert len(values["metrics/fid"]) == 1 and values["metrics/fid_best"] == values["metrics/fid"]  # step 20
    best = list((tmp_path / "run/checkpoints").glob("best_fid_*.ckpt"))
    assert [p.name for p in best] == ["best_fid_step_0000020.ckpt"]
    # real features at 8 px and at 16 px are cached apart
    assert len(list((tmp_path / "cache").rglob("*.pt"))) >= 2


def test_progan_bad_input_fails_before_training(compose_cfg, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"ends before the run reaches 16 px \(step 18\)"):
        train(compose_cfg(*PROGAN, "trainer.max_steps=10"))
    with pytest.raises(ConfigError, match=r"4 \* 2\^k px .* not 28"):
        train(compose_cfg(*PROGAN, "data.resolution=28"))
    with pytest.raises(ConfigError, match=r"every resolution \[4, 8, 16\]: \[32\] are not resolutions"):
        train(compose_cfg(*PROGAN, "trainer.max_steps=20", "+model.growth.batch_sizes.32=2"))
    with pytest.raises(ConfigError, match=r"\{8: 6\} cannot be split into minibatch-std groups of .*=4"):
        train(compose_cfg(*PROGAN, "trainer.max_steps=20", "model.growth.batch_sizes={4:16,8:6,16:4}"))
    with pytest.raises(ConfigError, match=r"model.compile is not supported by ProGAN"):
        train(compose_cfg(*PROGAN, "trainer.max_steps=20", "model.compile=true"))
    with pytest.raises(ConfigError, match=r"batches of 64 but the data has only 48 images"):
        train(compose_cfg(*PROGAN, "model.growth.batch_sizes=64", "model.growth.stable_images=64",
                          "model.growth.fade_images=64"))  # fmt: skip
    dcgan = train(compose_cfg("data.resolution=16", "trainer.max_steps=2", output_dir=tmp_path / "dcgan"))
    assert dcgan["trainer"].global_step == 2
    with pytest.raises(CheckpointError, match=r"holds another model than this command builds"):
        train(
            compose_cfg(
                *PROGAN, "trainer.max_steps=20", f"ckpt_path={tmp_path / 'dcgan/checkpoints/last.ckpt'}"
            )
        )


def test_progan_ddp_resume_across_a_new_level_continues_every_rank_exactly(tmp_path) -> None:
    """Two CPU processes, each drawing its share of the step-sized batches; a run resumed at step 10 (a new
    level fades in, the batch size drops from 8 to 4, the Adam states are cleared) ends with the straight
    run's weights."""
    ddp = [
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.sync_batchnorm=false",
        "data.max_samples=96",  # 48 per rank: both cross an epoch end
        "trainer.max_steps=20",
    ]
    runs = {
        "straight": ["callbacks.model_checkpoint.every_n_train_steps=10"],
        "resumed": [f"ckpt_path={tmp_path}/straight/checkpoints/step_0000010.ckpt"],
    }
    for name, extra in runs.items():
        out = tmp_path / name
        args = [*tiny_overrides(out), *PROGAN, *ddp, *extra, f"hydra.run.dir={out}"]
        proc = run_script("train.py", *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")["state_dict"]
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.ckpt")["state_dict"]
    assert straight.keys() == resumed.keys() and straight["G._extra_state"] == {"level": 2, "alpha": 1.0}
    for key, value in straight.items():
        same = torch.equal(value, resumed[key]) if torch.is_tensor(value) else value == resumed[key]
        assert same, key


def test_model_progan_alone_runs_long_enough_to_grow_to_the_data_resolution() -> None:
    from ganforge.train import compose_config

    cfg = compose_config(["model=progan", "data=avatars"])  # the paper's 600k + 600k at batch 128
    schedule = GrowthSchedule(64, 600_000, 600_000, 128)
    assert cfg.trainer.max_steps == schedule.final_step + math.ceil(600_000 / 128) == 42_192
    assert cfg.loss.drift == 0.001 and cfg.loss.n_critic == 1
    assert compose_config(["model=progan", "data=avatars", "trainer.max_steps=9"]).trainer.max_steps == 9
    assert compose_config(["model=progan", "loss=hinge"]).loss._target_ == "ganforge.losses.HingeLoss"
    assert compose_config(["model=dcgan"]).trainer.max_steps == 3000
