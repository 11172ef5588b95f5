"""Stabilisers against known answers: augmentation ops, ADA's controller, minibatch layers, the
Gaussian-mixture data, the mode-collapse metrics on hand-made points, and short real training runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganforge.augment import ADA, ADA_OPS, DIFFAUGMENT_OPS, DiffAugment, shift
from ganforge.benchmarks.mode_collapse import (
    format_table,
    main,
    mode_stats,
    rescore,
    run_benchmark,
    summarize_rescored,
)
from ganforge.benchmarks.stats import mean_sem
from ganforge.callbacks.samples import scatter_image
from ganforge.data.gaussians import GaussianMixture2DDataModule
from ganforge.errors import ConfigError
from ganforge.losses import NonSaturatingLoss
from ganforge.models import DCGANDiscriminator, MLPDiscriminator
from ganforge.models.layers import MinibatchDiscrimination, MinibatchStd
from ganforge.models.toy import ToyDiscriminator, ToyGenerator
from ganforge.topk import TopK
from ganforge.train import train


def images(n: int = 8, c: int = 3, size: int = 16, grad: bool = False) -> torch.Tensor:
    x = torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return x.requires_grad_(grad)


def logged(run_dir: Path) -> dict[str, list[float]]:
    with next(run_dir.glob("csv/version_*/metrics.csv")).open() as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r[k] != ""] for k in rows[0]}


# -- augmentation ------------------------------------------------------------------------------------
def test_diffaugment_is_differentiable_and_changes_images() -> None:
    torch.manual_seed(0)
    x = images(grad=True)
    y = DiffAugment()(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("op", [*DIFFAUGMENT_OPS, *ADA_OPS])
def test_each_op_is_identity_at_p0_and_acts_at_p1(op: str) -> None:
    torch.manual_seed(0)
    x = images()
    augment = DiffAugment if op in DIFFAUGMENT_OPS else ADA
    kwargs = {"policy": op} if op in DIFFAUGMENT_OPS else {"ops": op}
    assert torch.equal(augment(p=0.0, **kwargs)(x), x)
    assert not torch.allclose(augment(p=1.0, **kwargs)(x), x)


def test_shift_moves_whole_pixels_with_zero_or_mirror_padding() -> None:
    row = torch.arange(5.0).view(1, 1, 1, 5)
    no_move = torch.tensor([0])
    assert shift(row, torch.tensor([2]), no_move).flatten().tolist() == [0, 0, 0, 1, 2]
    assert shift(row, torch.tensor([2]), no_move, reflect=True).flatten().tolist() == [2, 1, 0, 1, 2]
    assert shift(row, torch.tensor([-1]), no_move, reflect=True).flatten().tolist() == [1, 2, 3, 4, 3]


def test_ada_probability_moves_in_the_right_direction_on_overfitting_d_outputs() -> None:
    ada = ADA(interval=4, kimg=1.0)  # 1,000 D outputs take p from 0 to 1
    for _ in range(8):  # two adjustments of 4 x 32 outputs: +0.128 each
        ada.update(torch.full((32,), 2.0))  # D sure that all reals are real: r_t = 1 > 0.6
    assert float(ada.p) == pytest.approx(0.256)
    assert float(ada.rt) == 1.0
    for _ in range(4):
        ada.update(-torch.ones(32))  # r_t = -1 < 0.6: augment less
    assert float(ada.p) == pytest.approx(0.128)
    for _ in range(3):
        ada.update(torch.ones(32))  # no adjustment before `interval` updates
    assert float(ada.p) == pytest.approx(0.128)


def test_ada_probability_clamps_to_unit_interval_and_is_restored_from_state() -> None:
    ada = ADA(interval=1, kimg=0.01)  # every step moves p by the full range
    ada.update(-torch.ones(100))
    assert float(ada.p) == 0.0
    for _ in range(3):
        ada.update(torch.ones(100))
    assert float(ada.p) == 1.0
    restored = ADA()
    restored.load_state_dict(ada.state_dict())
    assert float(restored.p) == 1.0 and restored.p_host == 1.0  # host copy used by forward, no GPU read

    # Mid-interval state: 3 of 4 updates done; the restored copy adjusts after exactly one more.
    ada = ADA(interval=4, kimg=1.0)
    for _ in range(3):
        ada.update(torch.ones(32))
    restored = ADA(interval=4, kimg=1.0)
    restored.load_state_dict(ada.state_dict())
    restored.update(torch.ones(32))
    assert restored.p_host == pytest.approx(0.128) and float(restored.p) == pytest.approx(0.128)


def test_ada_state_restores_the_exact_probability_of_the_coin_flips() -> None:
    """The saved p is the p the draws use, bit for bit, also for values float32 cannot hold, and the
    restored copy reaches exactly 0 (no more random draws) on the same update as the original."""
    ada = ADA(p=0.3, interval=1, kimg=0.1)  # 10 outputs per update move p by 0.1
    ada.update(-torch.ones(10))
    assert ada.p_host == 0.3 - 0.1 != float(torch.tensor(0.3 - 0.1, dtype=torch.float32))
    restored = ADA(interval=1, kimg=0.1)
    restored.load_state_dict(ada.state_dict())
    assert restored.p_host == ada.p_host and float(restored.p) == ada.p_host
    for _ in range(2):
        ada.update(-torch.ones(10))
        restored.update(-torch.ones(10))
    assert restored.p_host == ada.p_host == 0.0 and float(restored.p) == 0.0

    # Checkpoints written before p was float64 still load (as the float32 value they hold).
    old = {k: v.float() if k == "p" else v for k, v in ada.state_dict().items()}
    old["p"] = torch.tensor(0.25, dtype=torch.float32)
    restored.load_state_dict(old)
    assert restored.p_host == 0.25 and restored.p.dtype == torch.float64


def test_augmentation_rejects_points_and_bad_options() -> None:
    with pytest.raises(ConfigError, match="augment=none"):
        ADA(p=0.5)(torch.zeros(4, 2))
    with pytest.raises(ConfigError, match="choose from"):
        DiffAugment(policy="color,blur")
    with pytest.raises(ConfigError):
        ADA(p=2.0)


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize("augment", ["ada", "diffaugment"])
def test_training_with_augmentation_logs_p(compose_cfg, tmp_path, augment: str) -> None:
    # ADA adjusting every step by 16 / 50 of the range
    fast = ["model.augment.kimg=0.05", "model.augment.interval=1"] if augment == "ada" else []
    train(compose_cfg("model=mlp_gan", f"augment={augment}", *fast))
    metrics = logged(tmp_path / "run")
    assert len(metrics["augment/p"]) == 4 and all(math.isfinite(v) for v in metrics["loss/d"])
    if augment == "ada":
        assert all(0.0 <= p <= 1.0 for p in metrics["augment/p"])
    else:
        assert metrics["augment/p"] == [1.0] * 4


# -- minibatch layers ----------------------------------------------------------------------------------
def test_minibatch_std_by_hand() -> None:
    # channel 0: groups (samples i and i + 2) {1, 5} -> std 2 and {2, 10} -> std 4; channel 1 constant
    x = torch.tensor([[1.0, 7.0], [2.0, 7.0], [5.0, 7.0], [10.0, 7.0]]).view(4, 2, 1, 1)
    out = MinibatchStd(group_size=2)(x)
    assert out.shape == (4, 3, 1, 1) and torch.equal(out[:, :2], x)
    assert out[:, 2].flatten().tolist() == pytest.approx([1.0, 2.0, 1.0, 2.0], abs=1e-3)  # mean over C
    with pytest.raises(ConfigError, match="multiple of the group size"):
        MinibatchStd(group_size=3)(x)


def test_minibatch_discrimination_by_hand() -> None:
    layer = MinibatchDiscrimination(in_features=2, num_kernels=1, kernel_dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))  # M_i = x_i
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # L1 distances: d01 = 1, d02 = 2, d12 = 3
    e = math.exp
    expected = [e(-1) + e(-2), e(-1) + e(-3), e(-2) + e(-3)]
    out = layer(x)
    assert torch.equal(out[:, :2], x)
    assert out[:, 2].tolist() == pytest.approx(expected)


def test_discriminator_options_keep_defaults_and_add_features() -> None:
    plain = DCGANDiscriminator(resolution=28, channels=1, base_channels=8)
    assert plain.state_dict().keys() == DCGANDiscriminator(28, 1, 8, minibatch_std=0).state_dict().keys()
    D = DCGANDiscriminator(resolution=28, channels=1, base_channels=8, minibatch_std=4)
    assert D(torch.randn(8, 1, 28, 28)).shape == (8,)
    M = MLPDiscriminator(resolution=28, channels=1, hidden=(32,), minibatch_discrimination=8)
    x = torch.randn(6, 1, 28, 28, requires_grad=True)
    M(x).sum().backward()
    assert M.net[-1].in_features == 32 + 8 and x.grad.abs().sum() > 0


def test_toy_networks_follow_the_protocol() -> None:
    G, D = ToyGenerator(), ToyDiscriminator(in_features=8)  # PacGAN4: 4 points of 2 coordinates
    assert G(torch.randn(10, 2)).shape == (10, 2)
    assert D(torch.randn(10, 8)).shape == (10,)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == 4
    assert [m.linear.out_features for m in D.net[:3]] == [1000, 1000, 1000]  # 200 units x 5 pieces
    with pytest.raises(ConfigError, match=r"2 \* model.pack"):
        D(torch.randn(10, 2))


# -- data and metrics ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mixture", "modes", "std"), [("grid", 25, 0.05), ("ring", 8, 0.01)])
def test_gaussian_mixture_geometry_and_spread(mixture: str, modes: int, std: float) -> None:
    dm = GaussianMixture2DDataModule(mixture=mixture, num_samples=20_000, batch_size=100)
    dm.setup()
    assert dm.image_shape == (2,) and dm.num_classes == modes and len(dm.dataset) == 20_000
    means = dm.means
    if mixture == "grid":
        assert sorted({round(v) for v in means.flatten().tolist()}) == [-4, -2, 0, 2, 4]
        assert len({tuple(m) for m in means.tolist()}) == 25
    else:
        assert means.norm(dim=1).tolist() == pytest.approx([1.0] * 8)
        angles = torch.atan2(means[:, 1], means[:, 0]).remainder(2 * math.pi)
        assert angles.tolist() == pytest.approx([i * math.pi / 4 for i in range(8)], abs=1e-6)
    points, labels = dm.dataset.tensors
    assert points.dtype == torch.float32 and labels.dtype == torch.int64
    offsets = points - means[labels]
    assert offsets.std(dim=0).tolist() == pytest.approx([std, std], rel=0.05)
    assert torch.bincount(labels).min() > 20_000 / modes * 0.8
    again = GaussianMixture2DDataModule(mixture=mixture, num_samples=20_000)
    again.setup()
    assert torch.equal(again.dataset.tensors[0], points)  # the same point set in every run
    batch, _ = next(iter(dm.train_dataloader()))
    assert batch.shape == (100, 2)


def test_metrics_on_hand_made_points() -> None:
    means = GaussianMixture2DDataModule(mixture="grid").means
    perfect = mode_stats(means.repeat(100, 1), means, std=0.05)
    assert (perfect.modes, perfect.high_quality) == (25, 100.0)
    assert perfect.reverse_kl == pytest.approx(0.0, abs=1e-12)

    # only 3 modes, with 2:1:1 samples: KL = sum p log(25 p)
    three = torch.cat([means[0:1].repeat(200, 1), means[1:2].repeat(100, 1), means[2:3].repeat(100, 1)])
    stats = mode_stats(three, means, std=0.05)
    expected_kl = 0.5 * math.log(12.5) + 2 * 0.25 * math.log(6.25)
    assert (stats.modes, stats.high_quality) == (3, 100.0)
    assert stats.reverse_kl == pytest.approx(expected_kl)
    assert stats.counts[:3] == [200, 100, 100] and sum(stats.counts) == 400

    # points 0.14 from a mode are high quality (< 3 std = 0.15), 0.16 and 1.0 are not
    off = means[:3] + torch.tensor([[0.14, 0.0], [0.16, 0.0], [1.0, 1.0]])
    stats = mode_stats(off, means, std=0.05)
    assert (stats.modes, stats.high_quality, stats.reverse_kl) == (
        1,
        pytest.approx(100 / 3),
        pytest.approx(math.log(25)),
    )

    nowhere = mode_stats(torch.full((10, 2), 100.0), means, std=0.05)
    assert (nowhere.modes, nowhere.high_quality, nowhere.reverse_kl) == (0, 0.0, math.inf)
    assert mean_sem([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1 / math.sqrt(3)))


def test_scatter_plot_marks_the_points() -> None:
    img = scatter_image(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), extent=2.0, size=101)
    assert img.size == (101, 101)
    assert img.getpixel((75, 25)) != (255, 255, 255)  # (1, 1): right and up
    assert img.getpixel((25, 75)) != (255, 255, 255)
    assert img.getpixel((75, 75)) == (255, 255, 255)


# -- training ------------------------------------------------------------------------------------------
def test_pacgan4_trains_on_grid25_and_draws_scatter_plots(compose_cfg, tmp_path) -> None:
    cfg = compose_cfg(
        "experiment=grid25_pacgan", "model.pack=4", "trainer.max_steps=6", "data.num_samples=4096"
    )
    assert cfg.model.discriminator.in_features == 8 and cfg.data.batch_size == 16
    result = train(cfg)
    metrics = logged(tmp_path / "run")
    assert len(metrics["loss/d"]) == 6 and all(
        math.isfinite(v) for v in metrics["loss/d"] + metrics["loss/g"]
    )
    png = tmp_path / "run/samples/step_0000006.png"
    with Image.open(png) as img:
        assert img.mode == "RGB" and img.size == (512, 512)
        assert img.convert("L").getextrema()[0] < 128  # some points drawn
    assert result["model"].sample().shape == (64, 2)


def test_benchmark_runs_scores_and_writes_json(tmp_path, capsys) -> None:
    quick = [
        "trainer.max_steps=3",
        "data.num_samples=2000",
        "callbacks.sample_grid.every_n_steps=0",
        "trainer.log_every_n_steps=1",
    ]
    results = run_benchmark(["ring8"], {"pacgan2": ["model.pack=2"]}, [0, 1], tmp_path / "a", quick)
    res = results["ring8"]["pacgan2"]
    assert [r["seed"] for r in res["runs"]] == [0, 1] and all(r["steps"] == 3 for r in res["runs"])
    assert 0 <= res["summary"]["modes"]["mean"] <= 8
    assert "| ring8 | pacgan2 | 2 |" in format_table(results)
    assert (tmp_path / "a/ring8/pacgan2/seed1/eval_points.png").is_file()

    out = tmp_path / "cli"
    args = ["--data", "grid25", "--pack", "3", "--first-seed", "4", "--seeds", "1", "--steps", "2"]
    assert main([*args, "--out", str(out), *quick[1:]]) == 0
    report = json.loads((out / "results.json").read_text())
    run = report["results"]["grid25"]["pacgan3"]["runs"][0]
    assert report["num_samples"] == 2500 and run["steps"] == 2 and sum(run["counts"]) <= 2500
    assert run["seed"] == 4  # --first-seed: a study can be extended by more seeds later

    # --rescore: the saved checkpoint scores as the run did (it holds the standing statistics)
    (row,) = rescore([out], standing=25000)
    assert row["seed"] == 4 and row["steps"] == 2
    for key in ("modes", "high_quality", "reverse_kl", "counts"):
        assert row["saved"][key] == row["standing"][key] == run[key], key
    assert (row["data"], row["setting"]) == ("grid25", "pacgan3")

    # over seeds: grouped by (data, setting, steps) across folders, as the benchmark summarised them
    ring, grid = summarize_rescored(rescore([tmp_path / "a", out], standing=25000))
    assert (ring["data"], ring["setting"], ring["steps"], ring["seeds"]) == ("ring8", "pacgan2", 3, [0, 1])
    assert (grid["data"], grid["setting"], grid["steps"], grid["seeds"]) == ("grid25", "pacgan3", 2, [4])
    for key in ("modes", "high_quality", "reverse_kl"):
        want = res["summary"][key]
        assert ring["saved"][key] == pytest.approx(want, nan_ok=True), key
        assert grid["saved"][key] == {"mean": pytest.approx(run[key]), "sem": 0.0}, key
    assert main(["--rescore", str(tmp_path / "a"), str(out)]) == 0
    table = capsys.readouterr().out
    assert "| ring8 | pacgan2 | 3 | 0, 1 | " in table and "| grid25 | pacgan3 | 2 | 4 | " in table
    assert main(["--rescore", str(tmp_path / "a" / "nothing")]) == 2


# -- top-k G updates -------------------------------------------------------------------------------
def test_top_k_schedule_and_selection() -> None:
    top_k = TopK(min_fraction=0.5, decay=0.5, every=2)
    assert [top_k.fraction(s) for s in (0, 2, 4)] == [1.0, 0.5, 0.5]
    assert top_k.k(10, 0) == 10 and top_k.k(10, 1) == 8 and top_k.k(10, 10) == 5  # ceil(10 / sqrt 2)
    fake, real = torch.tensor([0.25, -2.0, 1.5, 0.125]), torch.tensor([10.0, 20.0, 30.0, 40.0])
    kept_fake, kept_real = top_k.select(fake, real, g_step=2)
    assert sorted(kept_fake.tolist()) == [0.25, 1.5]
    assert sorted(kept_real.tolist()) == [10.0, 30.0]  # relativistic losses keep their pairs
    assert top_k.select(fake, None, g_step=0)[0] is fake  # k = n: nothing dropped
    for bad in ({"min_fraction": 0.0}, {"decay": 1.5}, {"every": 0}):
        with pytest.raises(ConfigError, match=r"model\.top_k"):
            TopK(**bad)


def test_top_k_gradient_comes_from_the_kept_fakes_only() -> None:
    z = torch.randn(6, 3, requires_grad=True)
    logits = z.sum(1)
    kept, _ = TopK(min_fraction=0.5, decay=0.01, every=1).select(logits, None, g_step=5)
    NonSaturatingLoss().g_loss(kept).backward()
    has_grad = z.grad.abs().sum(1) > 0
    assert set(torch.nonzero(has_grad).flatten().tolist()) == set(logits.topk(3).indices.tolist())


def test_training_with_top_k_feeds_g_the_best_fakes_and_logs_the_share(
    compose_cfg, tmp_path, monkeypatch
) -> None:
    seen: list[int] = []
    original = NonSaturatingLoss.g_loss

    def recording(self, fake_logits, real_logits=None):
        seen.append(fake_logits.shape[0])
        return original(self, fake_logits, real_logits)

    monkeypatch.setattr(NonSaturatingLoss, "g_loss", recording)
    cfg = compose_cfg(
        "experiment=grid25_pacgan",
        "topk=default",
        "model.top_k.decay=0.5",
        "model.top_k.every=1",
        "trainer.max_steps=4",
        "data.batch_size=8",
        "data.num_samples=512",
    )
    train(cfg)
    assert seen == [8, 4, 4, 4]  # full batch at the first G update, then min_fraction 0.5 of 8
    assert logged(tmp_path / "run")["top_k/fraction"] == [1.0, 0.5, 0.5, 0.5]


def test_rot90_turns_each_sample_by_a_multiple_of_90_degrees() -> None:
    from ganforge.augment import rot90

    torch.manual_seed(0)
    for shape in ((64, 3, 8, 8), (64, 3, 6, 8)):
        x = torch.randn(shape)
        out = rot90(x)
        turns = (0, 1, 2, 3) if shape[-1] == shape[-2] else (0, 2)  # non-square: shape kept
        seen = set()
        for sample, result in zip(x, out, strict=True):
            match = [t for t in turns if torch.equal(torch.rot90(sample, t, dims=(1, 2)), result)]
            assert match, "not a rotation of its input"
            seen.add(match[0])
        assert seen == set(turns)  # 64 samples: every allowed turn occurs
