"""End-to-end training through real Hydra composition on a small slice of real Fashion-MNIST."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from ganforge.checkpoint import load_checkpoint, load_generator
from ganforge.tasks import GANModule
from ganforge.train import train

MODELS = ["mlp_gan", "dcgan"]
LOSSES = ["bce", "nonsaturating", "hinge", "lsgan", "wgan_gp", "ragan"]

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")


def logged(run_dir: Path) -> dict[str, list[float]]:
    """Logged values per key from the CSV logger, skipping rows where the key was not logged."""
    with next(run_dir.glob("csv/version_*/metrics.csv")).open() as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r[k] != ""] for k in rows[0]}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_loss_trains_with_finite_losses(compose_cfg, tmp_path, model: str, loss: str) -> None:
    cfg = compose_cfg(f"model={model}", f"loss={loss}", "trainer.max_steps=10", "loss.n_critic=2")
    result = train(cfg)
    assert result["trainer"].global_step == 10
    metrics = logged(tmp_path / "run")
    d_losses, g_losses = metrics["loss/d"], metrics["loss/g"]
    assert len(d_losses) == 10 and len(g_losses) == 5  # one G update per n_critic=2 D updates
    assert all(math.isfinite(v) for v in [*d_losses, *g_losses])
    if loss == "wgan_gp":
        assert min(metrics["loss/d_gp"]) >= 0
    for p in result["model"].parameters():
        assert torch.isfinite(p).all()


def test_run_outputs(compose_cfg, tmp_path) -> None:
    cfg = compose_cfg("trainer.max_steps=5")
    train(cfg)
    run = tmp_path / "run"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    assert load_checkpoint(run / "checkpoints/last.ckpt")["global_step"] == 5  # final step, off-interval
    samples = sorted(p.name for p in (run / "samples").iterdir())
    assert samples == ["step_0000002.png", "step_0000004.png", "step_0000005.png"]
    assert "max_steps: 5" in (run / "config.yaml").read_text()
    assert "${" not in (run / "config.yaml").read_text()  # resolved
    G, stored = load_generator(run / "checkpoints/last.ckpt")
    assert stored.model.generator._target_ == "ganforge.models.DCGANGenerator"
    assert G(torch.randn(2, G.z_dim)).shape == (2, 1, 28, 28)


def test_fixed_latents_are_the_same_across_the_run(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg("trainer.max_steps=2"))
    first = result["model"].fixed_z.clone()
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    assert torch.equal(ckpt["state_dict"]["fixed_z"], first)
    # ... and they do not depend on the training seed, only on model.sample_seed
    other = train(compose_cfg("trainer.max_steps=1", "seed=7", output_dir=tmp_path / "other"))
    assert torch.equal(other["model"].fixed_z, first)


def _weights(model) -> dict[str, torch.Tensor]:
    """Every tensor of the state dict, cloned; other entries (a module's extra state) as they are."""
    return {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in model.state_dict().items()}


RESUME_OVERRIDES = (
    "loss=wgan_gp",
    "loss.n_critic=3",
    "data.max_samples=96",  # 6 batches per epoch: both resume points fall mid-epoch 2
    "model.scheduler_g={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:2,gamma:0.7}",
    "model.scheduler_d={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:3,gamma:0.9}",
)


def _assert_same_state(a, b) -> None:
    """Every tensor of the module (G, D, G_ema, augmentation state, fixed latents) and of both
    optimizers (moments and step counts) is bit-identical, and so are the learning rates."""
    wa, wb = _weights(a["model"]), _weights(b["model"])
    assert wa.keys() == wb.keys()
    for key in wa:
        same = torch.equal(wa[key], wb[key]) if torch.is_tensor(wa[key]) else wa[key] == wb[key]
        assert same, f"{key} differs after resume"
    names = "GD"[: len(a["trainer"].optimizers)]  # a D-less model (SRResNet) has G's alone
    for name, oa, ob in zip(names, a["trainer"].optimizers, b["trainer"].optimizers, strict=True):
        assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"]
        assert len(oa.state) == len(ob.state) > 0
        for i, (sa, sb) in enumerate(zip(oa.state.values(), ob.state.values(), strict=True)):
            assert sa.keys() == sb.keys()
            for key in sa:
                assert torch.equal(sa[key], sb[key]), f"optimizer {name} param {i} {key} differs after resume"


def test_resume_is_exact(compose_cfg, tmp_path) -> None:
    def run(out: str, *overrides: str) -> dict:
        return train(compose_cfg(*RESUME_OVERRIDES, *overrides, output_dir=tmp_path / out))

    # 14 straight steps, checkpointing at step 7 (written at the end of a training batch).
    straight = run("a", "trainer.max_steps=14", "callbacks.model_checkpoint.every_n_train_steps=7")
    # 7 steps with no checkpoint at 7: last.ckpt is written when fit ends.
    run("b", "trainer.max_steps=7", "callbacks.model_checkpoint.every_n_train_steps=5")
    for ckpt in (tmp_path / "b/checkpoints/last.ckpt", tmp_path / "a/checkpoints/step_0000007.ckpt"):
        resumed = run(f"resume_{ckpt.parent.parent.name}", "trainer.max_steps=14", f"ckpt_path={ckpt}")
        assert resumed["trainer"].global_step == 14
        _assert_same_state(straight, resumed)


def test_resume_is_exact_with_ada_while_p_returns_to_zero(compose_cfg, tmp_path) -> None:
    """ADA's p is 0.3 - 0.1 k: values float32 cannot hold. Resumed after the first adjustment (step 4),
    p must reach exactly 0 at step 12 and stop the augmentation's random draws in both runs; a resume
    that restored p rounded (0.2000000030 instead of 0.19999999999999998) kept drawing and diverged."""
    ada = (
        "augment=ada",
        "model.augment.p=0.3",
        "model.augment.kimg=0.64",  # 64 real D outputs (4 D steps of 16) per adjustment move p by 0.1
        "model.augment.target=1.0",  # r_t <= 1: p only falls
        "reg=r1",
        "topk=default",
        "model.top_k.every=2",
        "loss=hinge",
        "callbacks.model_checkpoint.every_n_train_steps=6",
    )

    def run(out: str, *overrides: str) -> dict:
        return train(compose_cfg(*ada, *overrides, output_dir=tmp_path / out))

    straight = run("a", "trainer.max_steps=16")
    ckpt = tmp_path / "a/checkpoints/step_0000006.ckpt"
    assert load_checkpoint(ckpt)["state_dict"]["augment.p"].item() == 0.3 - 0.1  # mid-way, not 0
    assert straight["model"].augment.p_host == 0.0
    resumed = run("b", "trainer.max_steps=16", f"ckpt_path={ckpt}")
    assert resumed["model"].augment.p_host == 0.0
    _assert_same_state(straight, resumed)


def test_gradient_clipping_bounds_the_update(compose_cfg, monkeypatch) -> None:
    # SGD with lr=1: the parameter change equals the (clipped) gradient, so its norm is <= the clip.
    before: dict[str, torch.Tensor] = {}

    def record_start(module, *_):
        before.update({n: p.detach().clone() for n, p in module.named_parameters() if n[:2] in ("D.", "G.")})

    monkeypatch.setattr(GANModule, "on_train_start", record_start)
    sgd = [f"model.{o}._target_=torch.optim.SGD" for o in ("optimizer_d", "optimizer_g")]
    sgd += [f"~model.{o}.betas" for o in ("optimizer_d", "optimizer_g")]
    sgd += ["model.optimizer_d.lr=1.0", "model.optimizer_g.lr=1.0", "trainer.max_steps=1", "loss.n_critic=1"]
    for clip, bounded in ((1e-3, True), (None, False)):
        clip_overrides = [f"model.grad_clip_d={clip or 'null'}", f"model.grad_clip_g={clip or 'null'}"]
        params = dict(train(compose_cfg(*sgd, *clip_overrides))["model"].named_parameters())
        for net in ("D.", "G."):
            delta = torch.cat([(params[n] - before[n]).flatten() for n in before if n.startswith(net)])
            assert bool(delta.norm() <= 1e-3 * 1.001) == bounded, (net, clip, float(delta.norm()))


def test_reseed_for_rank_gives_each_rank_its_own_reproducible_stream() -> None:
    from ganforge.rng import reseed_for_rank

    draws: dict[int, list[torch.Tensor]] = {}
    for rank in (0, 1, 0):
        torch.manual_seed(5)  # what seed_everything gives every rank
        reseed_for_rank(rank)
        draws.setdefault(rank, []).append(torch.randn(4))
    assert torch.equal(draws[0][0], draws[0][1]) and not torch.equal(draws[0][0], draws[1][0])


# -- standing statistics of the EMA generator -------------------------------------------------------
def test_standing_stats_are_the_average_batch_statistics() -> None:
    from ganforge.ema import standing_stats
    from ganforge.models.toy import ToyGenerator

    G = ToyGenerator(hidden=[8], init_std=None).eval()
    bn = G.net[1]
    batches = [(torch.randn(50, 2), None) for _ in range(3)]
    assert standing_stats(G, batches)
    h = [G.net[0](z) for z, _ in batches]  # what the batch norm saw in each batch
    torch.testing.assert_close(bn.running_mean, torch.stack([x.mean(0) for x in h]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([x.var(0) for x in h]).mean(0))
    assert bn.momentum == 0.1 and not G.training  # settings restored
    assert not standing_stats(torch.nn.Linear(2, 2), [])  # nothing to do without batch norm


def test_standing_stats_leave_training_untouched_and_reach_samples_and_checkpoints(
    compose_cfg, tmp_path
) -> None:
    common = ("experiment=grid25_pacgan", "trainer.max_steps=6", "data.num_samples=1024")
    plain = train(compose_cfg(*common, "model.standing_stats=0", output_dir=tmp_path / "plain"))["model"]
    run = train(compose_cfg(*common, "model.standing_stats=1000", "model.standing_stats_batch=500"))
    model = run["model"]
    # Same training (own random stream; samples every 2 steps recomputed the statistics in between).
    for (name, a), b in zip(plain.G.state_dict().items(), model.G.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    rng = torch.get_rng_state()
    model._ema_stats_stale = True
    model.sample()
    assert torch.equal(torch.get_rng_state(), rng)
    bn = model.G_ema.net[1]
    assert not torch.equal(bn.running_mean, model.G.net[1].running_mean)  # recomputed, not copied
    assert int(bn.num_batches_tracked) == 2  # 1000 latents in batches of 500
    saved = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["state_dict"]
    torch.testing.assert_close(saved["G_ema.net.1.running_mean"], bn.running_mean)
    G_loaded, _ = load_generator(tmp_path / "run/checkpoints/last.ckpt")  # what generate.py / eval.py use
    torch.testing.assert_close(G_loaded.net[1].running_var, bn.running_var)
