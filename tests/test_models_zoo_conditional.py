"""Conditional and ResNet model zoo: CGAN, SNGAN, BigGAN-lite networks, configs, and proof of conditioning."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.errors import ConfigError
from ganforge.models.biggan import BigGANDiscriminator, BigGANGenerator, OrthogonalRegularizer
from ganforge.models.cgan import CGANDiscriminator, CGANGenerator, sample_per_class
from ganforge.models.sngan import ClassBatchNorm2d, SNGANDiscriminator, SNGANGenerator
from ganforge.train import compose_config, train
from ganforge.utils import instantiate


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks on shared CPUs: thread hand-offs cost more than they save (5-20x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def logged(run_dir: Path) -> dict[str, list[float]]:
    with next(run_dir.glob("csv/version_*/metrics.csv")).open() as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows if r[k] != ""] for k in rows[0]}


def check_forward_backward(G: nn.Module, D: nn.Module, labels: torch.Tensor | None, shape: tuple) -> None:
    x = G(torch.randn(shape[0], G.z_dim), labels)
    assert x.shape == shape and torch.isfinite(x).all() and x.abs().max() <= 1.0
    logits = D(x, labels)
    assert logits.shape == (shape[0],) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    for net in (G, D):
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


# -- networks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditioning", ["projection", "concat"])
@pytest.mark.parametrize("resolution", [28, 32, 64, 128])
def test_cgan_shapes(resolution: int, conditioning: str) -> None:
    G = CGANGenerator(num_classes=3, z_dim=8, resolution=resolution, channels=1, embed_dim=4, base_channels=4)
    D = CGANDiscriminator(3, resolution, channels=1, conditioning=conditioning, embed_dim=2, base_channels=4)
    check_forward_backward(G, D, torch.tensor([0, 2, 1]), (3, 1, resolution, resolution))


def test_cgan_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match=r"data\.resolution"):
        CGANGenerator(num_classes=3, resolution=30)
    with pytest.raises(ConfigError, match="projection, concat"):
        CGANDiscriminator(3, 32, conditioning="film")
    for net in (CGANGenerator, CGANDiscriminator):
        with pytest.raises(ConfigError, match=r"data\.labels=true"):
            net(num_classes=0)


RESNETS = {"sngan": (SNGANGenerator, SNGANDiscriminator), "biggan": (BigGANGenerator, BigGANDiscriminator)}


def build(name: str, resolution: int, num_classes: int, **kw) -> tuple[nn.Module, nn.Module]:
    G, D = RESNETS[name]
    return (
        G(z_dim=12, resolution=resolution, channels=3, num_classes=num_classes, base_channels=4, **kw),
        D(resolution=resolution, channels=3, num_classes=num_classes, base_channels=4),
    )


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_resnet_shapes_conditional(name: str, resolution: int) -> None:
    G, D = build(name, resolution, num_classes=3)
    check_forward_backward(G, D, torch.tensor([0, 2, 1]), (3, 3, resolution, resolution))


@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_resnet_unconditional(name: str) -> None:
    G, D = build(name, 32, num_classes=0)
    check_forward_backward(G, D, None, (3, 3, 32, 32))
    assert not any(isinstance(m, nn.Embedding) for m in [*G.modules(), *D.modules()])


@pytest.mark.parametrize("resolution", [16, 28, 48, 256])
@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_resnet_rejects_unsupported_resolution(name: str, resolution: int) -> None:
    for net in RESNETS[name]:
        with pytest.raises(ConfigError, match=r"32, 64 or 128 px.*data\.resolution=32"):
            net(resolution=resolution)


def test_biggan_attention_placement() -> None:
    G, D = build("biggan", 64, 3)  # default: resolution / 2
    assert G.attention is not None and G.attention_after == 2  # after the 8 -> 16 -> 32 px block
    assert sum(type(m).__name__ == "SelfAttention" for m in D.modules()) == 1
    G, _ = build("biggan", 32, 3, attention_resolution=0)
    assert G.attention is None
    with pytest.raises(ConfigError, match=r"one of \[8, 16, 32\]"):
        BigGANGenerator(resolution=32, attention_resolution=64)
    with pytest.raises(ConfigError, match=r"one of \[8, 16\]"):
        BigGANDiscriminator(resolution=32, attention_resolution=32)


def test_spectral_norm_where_the_papers_put_it() -> None:
    def normalised(net: nn.Module) -> bool:
        layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        return all(hasattr(m, "parametrizations") for m in layers)

    G, D = build("sngan", 32, 3)
    assert normalised(D) and not normalised(G)
    G, D = build("biggan", 32, 3)
    assert normalised(D) and normalised(G)


# -- conditioning -----------------------------------------------------------------------------------
def projection_discriminators() -> dict[str, nn.Module]:
    return {
        "cgan": CGANDiscriminator(4, 32, channels=1, conditioning="projection", base_channels=4),
        "sngan": SNGANDiscriminator(32, channels=1, num_classes=4, base_channels=4),
        "biggan": BigGANDiscriminator(32, channels=1, num_classes=4, base_channels=4),
    }


@pytest.mark.parametrize("name", ["cgan", "sngan", "biggan"])
def test_projection_term_is_the_label_embedding_dot_features(name: str) -> None:
    D = projection_discriminators()[name].eval()  # eval: no power-iteration / BN-statistics updates
    x, y, y2 = torch.rand(5, 1, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 3])
    with torch.no_grad():
        if name == "cgan":
            phi, embed = D.features(x).sum((2, 3)), D.embed
        else:
            phi, embed = torch.relu(D.blocks(x)).sum((2, 3)), D.head.embed
        expected = ((embed(y) - embed(y2)) * phi).sum(1)
        diff = D(x, y) - D(x, y2)
    assert diff.abs().min() > 0  # the labels change every logit ...
    torch.testing.assert_close(diff, expected, rtol=1e-4, atol=1e-5)  # ... by exactly <e_y - e_y', phi(x)>


def test_concat_discriminator_and_generators_use_labels() -> None:
    x, y, y2 = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 0])
    D = CGANDiscriminator(4, 32, channels=1, conditioning="concat", base_channels=4).eval()
    assert not torch.allclose(D(x, y), D(x, y2))
    z = torch.randn(4, 12)
    for G in (
        CGANGenerator(4, z_dim=12, resolution=32, channels=1, base_channels=4),
        SNGANGenerator(12, 32, 1, num_classes=4, base_channels=4),
        BigGANGenerator(12, 32, 1, num_classes=4, base_channels=4),
    ):
        G.eval()
        for m in G.modules():  # SNGAN's class gains start equal (1) for all classes: as after training
            if isinstance(m, ClassBatchNorm2d):
                nn.init.normal_(m.gain.weight, 1.0, 0.1)
        assert (G(z, y) - G(z, y2)).abs().flatten(1).amax(1).min() > 0, type(G).__name__


# -- orthogonal regularisation ----------------------------------------------------------------------
def test_orthogonal_regularizer_matches_hand_computation() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(3, 5),  # tall: computed through the small Gram matrix W^T W
        nn.Conv2d(2, 4, 3),  # wide: 4 filters of 18 weights
        spectral_norm(nn.Linear(4, 2)),  # regularises the raw weight, not W / sigma
        nn.Embedding(7, 3),  # class embeddings are left out
        nn.BatchNorm2d(4),  # 1-D gains and biases too
    )
    raw = [net[0].weight, net[1].weight, net[2].parametrizations.weight.original]
    expected = 0.0
    for w in raw:
        rows = w.detach().flatten(1).double()
        expected += sum(
            float(rows[i] @ rows[j]) ** 2 for i in range(len(rows)) for j in range(len(rows)) if i != j
        )
    reg = OrthogonalRegularizer(weight=1e-4)
    assert reg.target == "g" and reg.scale() == pytest.approx(1e-4)
    value = reg.g_penalty(SimpleNamespace(G=net), torch.zeros(1), None)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert all(w.grad is not None for w in raw) and net[3].weight.grad is None
    # orthonormal rows cost nothing
    q = nn.Linear(6, 4, bias=False)
    nn.init.orthogonal_(q.weight)
    assert float(reg.g_penalty(SimpleNamespace(G=q), torch.zeros(1), None).detach()) < 1e-10


# -- training through the real configs --------------------------------------------------------------
SMALL = {
    "cgan": ["model.generator.base_channels=8", "model.discriminator.base_channels=8"],
    "sngan": ["data.resolution=32", "model.generator.base_channels=8", "model.discriminator.base_channels=8"],
    "biggan_lite": [
        "data.resolution=32",
        "model.generator.base_channels=8",
        "model.discriminator.base_channels=8",
        "model.generator.shared_dim=16",
    ],
}


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize(
    ("model", "loss", "extra"),
    [
        ("cgan", "hinge", ()),
        ("cgan", "nonsaturating", ("model.discriminator.conditioning=concat",)),
        ("sngan", "hinge", ()),
        ("sngan", "nonsaturating", ("model.generator.num_classes=10",)),  # conditional SNGAN
        ("biggan_lite", "hinge", ()),
        ("biggan_lite", "nonsaturating", ()),
    ],
)
def test_trains_through_hydra(compose_cfg, tmp_path, model: str, loss: str, extra: tuple[str, ...]) -> None:
    cfg = compose_cfg(f"model={model}", f"loss={loss}", "trainer.max_steps=3", *SMALL[model], *extra)
    result = train(cfg)
    assert result["trainer"].global_step == 3
    metrics = logged(tmp_path / "run")
    assert len(metrics["loss/d"]) == 3 and len(metrics["loss/g"]) == 3
    assert all(math.isfinite(v) for k in ("loss/d", "loss/g") for v in metrics[k])
    module = result["model"]
    if model != "sngan" or extra:
        assert module.num_classes == 10  # Fashion-MNIST's classes reached the model
    if model == "biggan_lite":
        assert all(v > 0 and math.isfinite(v) for v in metrics["loss/g_ortho"])
    assert all(torch.isfinite(p).all() for p in module.parameters())


@pytest.mark.usefixtures("fashion_mnist_available")
@pytest.mark.parametrize("model", ["sngan", "biggan_lite"])
def test_resnets_reject_the_default_28px_data_with_the_fix(compose_cfg, tmp_path, model: str) -> None:
    with pytest.raises(
        ConfigError, match=r"not 28 \(the default Fashion-MNIST is 28 px\): set data\.resolution=32"
    ):
        train(compose_cfg(f"model={model}"))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("experiment", "n_critic", "batch"),
    [("cifar10_sngan", 5, 64), ("cifar10_sngan_10min", 5, 64), ("cifar10_biggan_lite", 4, 50)],
)
def test_experiment_presets_build(compose_cfg, experiment: str, n_critic: int, batch: int) -> None:
    cfg = compose_cfg(f"experiment={experiment}")
    cfg.data_info.num_classes = 10
    assert cfg.data._target_.endswith("CIFAR10DataModule") and cfg.data.resolution == 32
    module = instantiate(cfg.model, loss=instantiate(cfg.loss))
    assert type(module.loss).__name__ == "HingeLoss" and module.n_critic == n_critic
    assert module.G(torch.randn(2, module.z_dim), torch.tensor([0, 9])).shape == (2, 3, 32, 32)
    module.configure_optimizers()
    assert compose_config([f"experiment={experiment}"]).data.batch_size == batch  # tiny runs replace it


@pytest.mark.parametrize("experiment", ["cifar10_sngan", "cifar10_sngan_10min"])
def test_sngan_presets_decay_the_learning_rates_to_zero_at_the_last_step(compose_cfg, experiment) -> None:
    cfg = compose_cfg(f"experiment={experiment}", "trainer.max_steps=40")
    cfg.data_info.num_classes = 10
    module = instantiate(cfg.model, loss=instantiate(cfg.loss))
    (opt_g, _), schedulers = module.configure_optimizers()
    sched_g, sched_d = (s["scheduler"] for s in schedulers)
    assert (sched_g.total_iters, sched_d.total_iters) == (8, 40)  # 40 D steps hold 8 G updates
    for _ in range(8):
        opt_g.step()
        sched_g.step()
    assert opt_g.param_groups[0]["lr"] == 0.0
    assert module.num_classes == (10 if experiment.endswith("10min") else 0)
    if experiment.endswith("10min"):  # stops at 10 minutes whatever the GPU manages
        preset = compose_config([f"experiment={experiment}"])
        assert preset.trainer.max_time == "00:00:10:00" and preset.trainer.max_steps == 70000


def write_images(folder: Path, count: int, low: int, high: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(low, high, (32, 32), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def test_conditional_model_refuses_unlabelled_data(compose_cfg, tmp_path) -> None:
    write_images(tmp_path / "flat", 16, 0, 256, seed=0)
    cfg = compose_cfg(
        "model=cgan",
        "data=image_folder",
        f"data.path={tmp_path / 'flat'}",
        "data.labels=false",
        "data.resolution=32",
        "data.channels=1",
    )
    with pytest.raises(
        ConfigError, match=r"class-conditional but the data has no class labels.*data\.labels=true"
    ):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cgan_learns_to_follow_the_label(compose_cfg, tmp_path) -> None:
    """Two classes told apart only by brightness: samples asked for ``bright`` must come out bright."""
    write_images(tmp_path / "data" / "dark", 64, 0, 40, seed=1)  # [-1, -0.69] in G's units
    write_images(tmp_path / "data" / "bright", 64, 216, 256, seed=2)  # [0.69, 1]
    cfg = compose_cfg(
        "model=cgan",
        "data=image_folder",
        f"data.path={tmp_path / 'data'}",
        "data.labels=true",
        "data.resolution=32",
        "data.channels=1",
        "trainer.max_steps=300",
        "trainer.log_every_n_steps=50",
        "callbacks.sample_grid.every_n_steps=1000",
        "callbacks.model_checkpoint.every_n_train_steps=1000",
        "model.generator.z_dim=16",
        "model.generator.embed_dim=8",
        "model.generator.base_channels=8",
        "model.discriminator.base_channels=8",
        "model.optimizer_g.lr=1e-3",
        "model.optimizer_d.lr=1e-3",
    )
    result = train(cfg)
    module, names = result["model"], result["datamodule"].class_names
    assert names == ["bright", "dark"]  # sorted folder names
    z = torch.randn(64, module.z_dim, generator=torch.Generator().manual_seed(0))
    bright = module.sample(z, torch.full((64,), names.index("bright"))).mean()
    dark = module.sample(z, torch.full((64,), names.index("dark"))).mean()
    assert bright > 0.3 and dark < -0.3 and bright - dark > 1.0, (float(bright), float(dark))
    # Same latents, label alone changed: grouped by class in order, each class keeps its brightness.
    images, labels = sample_per_class(module, 4, seed=3)
    assert images.shape == (8, 1, 32, 32) and labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (images[:4].mean((1, 2, 3)) > images[4:].mean((1, 2, 3))).all()
