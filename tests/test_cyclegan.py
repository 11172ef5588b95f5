"""CycleGAN (model=cyclegan) end to end on a tiny in-test unpaired datamodule: training and its loss terms,
the history pools (their rule, their place in checkpoints, exact resume), the cycle sample grid, metrics in
the callback and eval.py, translate.py in both directions, and the errors for data of another kind. Then
experiment=emoji_cyclegan on a slice of the real emoji styles: a run scored by eval.py and translated back by
translate.py, and a 2-process DDP run resumed exactly (every rank's pools and pairing)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from PIL import Image
from torch.utils.data import Dataset

from ganforge.checkpoint import generator_from_checkpoint, load_checkpoint
from ganforge.data import GANDataModule
from ganforge.errors import ConfigError
from ganforge.eval import evaluate
from ganforge.metrics.evaluate import Unchanged, evaluate_on_data
from ganforge.metrics.extractors import build_extractor
from ganforge.tasks.unpaired import ImagePool
from ganforge.train import compose_config, train
from ganforge.translate import load_translator, translate

from .conftest import SHARED_DATASETS, run_script
from .test_train import _assert_same_state, logged


class _Unpaired(Dataset):
    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a[i], self.b[(5 * i + 3) % len(self.b)]


class FakeUnpaired(GANDataModule):
    """``ganforge.data.UnpairedDataModule``'s interface on random uint8 images (test A, B of other sizes)."""

    kind = "unpaired"

    def __init__(
        self,
        resolution: int = 16,
        channels: int = 3,
        input_channels: int = 3,
        n_train: int = 24,
        n_test_a: int = 6,
        n_test_b: int = 5,
        ground_truth: bool = True,
        name: str = "fake_unpaired",
        **kwargs: Any,
    ) -> None:
        super().__init__(resolution=resolution, channels=channels, **kwargs)
        self.input_channels, self.name, self.ground_truth = input_channels, name, ground_truth
        g = torch.Generator().manual_seed(0)

        def images(n: int, c: int) -> torch.Tensor:
            return torch.randint(0, 256, (n, c, resolution, resolution), generator=g, dtype=torch.uint8)

        self.train_a, self.train_b = images(n_train, input_channels), images(n_train + 3, channels)
        self.test_a, self.test_b = images(n_test_a, input_channels), images(n_test_b, channels)
        self.truth_b, self.truth_a = images(n_test_a, channels), images(n_test_b, input_channels)
        self.test_names_a = [f"a{i}.png" for i in range(n_test_a)]
        self.test_names_b = [f"b{i}.png" for i in range(n_test_b)]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_channels, self.resolution, self.resolution)

    def load_dataset(self) -> Dataset:
        return _Unpaired(self.train_a, self.train_b)

    def test_sets(self, max_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test_a[:max_n], self.test_b[:max_n]

    def test_ground_truth(self, max_n: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return (self.truth_b[:max_n], self.truth_a[:max_n]) if self.ground_truth else (None, None)

    def grid_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test_a[:n], self.test_b[:n]


class FakePairs(FakeUnpaired):
    kind = "pairs"

    def test_pairs(self, max_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test_a[:max_n], self.truth_b[:max_n]


# Two 1-block ResNet generators 4 channels wide and two 1-layer PatchGANs at 16 px: a step takes milliseconds.
TINY = (
    "model.generator.base_channels=4",
    "model.generator.n_blocks=1",
    "model.discriminator.base_channels=4",
    "model.discriminator.n_layers=1",
    "model.num_fixed_samples=2",
)


def cyclegan_cfg(compose_cfg, *overrides: str, data: dict | None = None, model: str = "cyclegan", **kw):
    """The real config of ``model`` (CycleGAN: LSGAN) with the fake datamodule as ``data``."""
    extra = (*TINY, "loss=lsgan") if model == "cyclegan" else ("model=pix2pix",)
    cfg = compose_cfg(f"model={model}", *extra, *overrides, **kw)
    with open_dict(cfg):
        cfg.data = OmegaConf.create(
            {
                "_target_": f"{__name__}.FakeUnpaired",
                "batch_size": 4,
                "num_workers": 0,
                "seed": 0,
                "resolution": 16,
                "channels": 3,
                "input_channels": 3,
                **(data or {}),
            }
        )
    return cfg


def test_cyclegan_trains_logs_every_term_keeps_its_pools_and_draws_the_cycles(compose_cfg, tmp_path) -> None:
    result = train(cyclegan_cfg(compose_cfg, "trainer.max_steps=4"))
    assert result["trainer"].global_step == 4
    metrics = logged(tmp_path / "run")
    for key in ("loss/d", "loss/g", "loss/g_cycle", "loss/g_identity", "d/loss_a", "d/loss_b", "lr/g"):
        assert len(metrics[key]) == 4, key
    # loss/d is the two halved D losses; the content terms are weighted (cycle x 10, identity x 5)
    assert metrics["loss/d"] == pytest.approx(
        [a + b for a, b in zip(metrics["d/loss_a"], metrics["d/loss_b"], strict=True)]
    )
    assert all(1 < v < 40 for v in metrics["loss/g_cycle"]) and all(
        0.5 < v < 20 for v in metrics["loss/g_identity"]
    )
    module = result["model"]
    assert set(module.G) == {"AB", "BA"} and set(module.D) == {"A", "B"} and set(module.G_ema) == {"AB", "BA"}
    assert len(result["trainer"].optimizers) == 2  # one over both generators, one over both discriminators
    assert len(result["trainer"].optimizers[0].param_groups[0]["params"]) == len(list(module.G.parameters()))
    # 4 batches of 4 fakes went into each pool of 50
    assert module.pool_a.count == module.pool_b.count == 16
    state = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["state_dict"]
    assert state["pool_b.images"].shape == (50, 3, 16, 16) and int(state["pool_a._extra_state"]) == 16
    assert torch.equal(state["pool_a.images"], module.pool_a.images)
    assert any(k.startswith("G_ema.BA.") for k in state) and "fixed_a" not in state
    # rows a | G_AB(a) | G_BA(G_AB(a)) for 2 test A images, then b | G_BA(b) | G_AB(G_BA(b)) for 2 of B
    grid = Image.open(tmp_path / "run/samples/step_0000004.png")
    assert grid.size == (3 * 16 + 4 * 2, 4 * 16 + 5 * 2)
    assert module.sample().shape == (12, 3, 16, 16)


def test_the_history_pool_fills_then_swaps_half_of_the_time() -> None:
    pool = ImagePool(4, (1, 2, 2))
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    assert torch.equal(pool.query(first), first) and pool.count == 4  # filling: the new images themselves
    torch.manual_seed(0)
    new = torch.arange(100.0, 400.0).view(300, 1, 1, 1).expand(300, 1, 2, 2)
    seen = set(range(4))
    old = 0
    for image in new:
        out = float(pool.query(image[None])[0, 0, 0, 0])
        if out != float(image[0, 0, 0]):
            assert out in seen  # an image stored earlier, taken out of the pool
            old += 1
        seen.add(float(image[0, 0, 0]))
    assert 0.4 < old / 300 < 0.6
    # the pool's state round-trips through a state_dict, and with the same draws it answers the same
    copy = ImagePool(4, (1, 2, 2))
    copy.load_state_dict(pool.state_dict())
    assert copy.count == 4 and torch.equal(copy.images, pool.images)
    x = torch.randn(8, 1, 2, 2)
    torch.manual_seed(1)
    a = pool.query(x)
    torch.manual_seed(1)
    assert torch.equal(copy.query(x), a)
    assert torch.equal(ImagePool(0, (1, 2, 2)).query(x), x)  # pool_size=0: this step's fakes only


def test_cyclegan_resume_is_exact_pools_included(compose_cfg, tmp_path) -> None:
    """A pool of 6 is full after 2 batches: the second half swaps images by the global RNG."""

    def run(out: str, *overrides: str) -> dict:
        return train(cyclegan_cfg(compose_cfg, "model.pool_size=6", *overrides, output_dir=tmp_path / out))

    straight = run("a", "trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=4")
    resumed = run("b", "trainer.max_steps=8", f"ckpt_path={tmp_path / 'a/checkpoints/step_0000004.ckpt'}")
    assert resumed["trainer"].global_step == 8
    assert straight["trainer"].optimizers[0].param_groups[0]["lr"] < 2e-4  # decayed over the 2nd half
    _assert_same_state(straight, resumed)  # every tensor: both Gs, both Ds, G_ema, both pools and counts
    assert resumed["model"].pool_a.count == 6


def test_identity_loss_needs_one_channel_count_and_grey_domains_train_without_it(
    compose_cfg, tmp_path
) -> None:
    grey_a = {"input_channels": 1}
    with pytest.raises(
        ConfigError,
        match=r"identity loss needs the same channel count in both domains \(A: 1, B: 3\): "
        r"set model\.identity_weight=0",
    ):
        train(cyclegan_cfg(compose_cfg, data=grey_a))
    result = train(cyclegan_cfg(compose_cfg, "model.identity_weight=0", "trainer.max_steps=2", data=grey_a))
    module = result["model"]
    assert (
        module.G["AB"].in_channels == 1
        and module.G["BA"].out_channels == 1
        and module.D["A"].in_channels == 1
    )
    assert "loss/g_identity" not in logged(tmp_path / "run")
    assert module.sample().shape == (12, 3, 16, 16)  # the grey domain shown in 3 equal channels


def test_data_of_the_wrong_kind_fails_before_training(compose_cfg, tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"PairedModule trains on pairs, but data fake_unpaired gives unpaired"
    ):
        train(cyclegan_cfg(compose_cfg, model="pix2pix"))
    cfg = cyclegan_cfg(compose_cfg, data={"_target_": f"{__name__}.FakePairs", "name": "fake_pairs"})
    with pytest.raises(
        ConfigError,
        match=r"CycleGANModule trains on unpaired, but data fake_pairs gives pairs.*model=pix2pix",
    ):
        train(cfg)
    with pytest.raises(ConfigError, match=r"model\.resolution=32"):
        train(cyclegan_cfg(compose_cfg, "model.resolution=32"))
    with pytest.raises(ConfigError, match=r"compare each output with its ground truth.*use fid and kid"):
        train(
            cyclegan_cfg(
                compose_cfg,
                "callbacks=metrics",
                "callbacks.metrics.extractor=tiny",
                "callbacks.metrics.metrics=[fid,psnr]",
                data={"ground_truth": False},
            )
        )
    assert not (tmp_path / "run/checkpoints").exists()


def test_unpaired_metrics_in_the_callback_eval_py_and_the_do_nothing_baseline(compose_cfg, tmp_path) -> None:
    metrics = (
        "callbacks=metrics",
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.metrics=[fid,kid,psnr,ssim,l1]",
        "callbacks.metrics.num_samples=100",
        "callbacks.metrics.every_n_steps=2",
        "callbacks.metrics.kid_subset_size=4",
    )
    result = train(cyclegan_cfg(compose_cfg, *metrics, "trainer.max_steps=2"))
    values = result["metrics"]
    for key in ("fid", "kid", "psnr", "ssim", "l1"):
        assert values[f"metrics/{key}"] == values[f"metrics/{key}_ab"], key
        assert f"metrics/{key}_ba" in values, key
    assert (
        values["metrics/fid_ab"] > 0 and values["metrics/fid_ba"] > 0 and 0 < values["metrics/psnr_ba"] < 40
    )
    cfg = compose_config(
        [
            f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}",
            "extractor=tiny",
            "num_samples=100",
            "metrics=[fid,kid,psnr,ssim,l1]",
            "kid_subset_size=4",
            "device=cpu",
            f"output={tmp_path / 'eval.json'}",
            f"paths.output_dir={tmp_path / 'e'}",
        ],
        config_name="eval",
    )
    report = evaluate(cfg)
    for key in (
        "fid_ab",
        "fid_ba",
        "psnr_ab",
        "psnr_ba",
        "l1_ba",
    ):  # the same EMA generators, the same test sets
        assert report["results"][key] == pytest.approx(values[f"metrics/{key}"]), key
    protocol = report["protocol"]
    assert protocol["num_samples"] == 6 and protocol["num_samples_b"] == 5
    assert "G_AB(test A) vs test B" in protocol["outputs"] and "G_BA(test B) vs test A" in protocol["outputs"]
    # the "do nothing" baseline: FID of test A against test B itself
    datamodule = result["datamodule"]
    baseline = evaluate_on_data(
        torch.nn.ModuleDict({"AB": Unchanged(), "BA": Unchanged()}),
        datamodule,
        build_extractor("tiny"),
        ["fid"],
        num_samples=100,
        num_real=None,
        cache_dir=tmp_path / "cache",
        reference={},
    )["results"]
    assert baseline["fid_ab"] > 0 and baseline["fid"] == baseline["fid_ab"]


def test_translate_either_way_and_btoa_only_for_cyclegan(compose_cfg, tmp_path) -> None:
    train(cyclegan_cfg(compose_cfg, "trainer.max_steps=1"))
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    inputs = tmp_path / "in"
    inputs.mkdir()
    x = torch.randint(0, 256, (16, 16, 3), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    Image.fromarray(x.numpy()).save(inputs / "x.png")
    base = {
        "ckpt_path": str(ckpt), "input": str(inputs), "target": None, "grid": False, "size": None,
        "ema": True, "device": "cpu", "tile": None, "tile_overlap": 16,
    }  # fmt: skip
    outputs = {}
    for direction in ("AtoB", "BtoA"):
        out = translate(OmegaConf.create({**base, "direction": direction, "out": str(tmp_path / direction)}))
        assert out["direction"] == direction
        outputs[direction] = torch.from_numpy(np.array(Image.open(tmp_path / direction / "x.png")))
    assert not torch.equal(outputs["AtoB"], outputs["BtoA"])
    G_ab, _ = load_translator(ckpt)
    G_ba, _ = load_translator(ckpt, direction="BtoA")
    state = load_checkpoint(ckpt)["state_dict"]
    for key, value in G_ba.state_dict().items():
        assert torch.equal(value, state[f"G_ema.BA.{key}"]), key
    assert not torch.equal(next(iter(G_ab.parameters())), next(iter(G_ba.parameters())))
    with pytest.raises(ConfigError, match=r"direction=sideways"):
        load_translator(ckpt, direction="sideways")
    # a one-generator checkpoint (pix2pix) has no BtoA
    unet = {"_target_": "ganforge.models.UNetGenerator", "base_channels": 4, "depth": 4, "resolution": 16}
    pix = _pix2pix_ckpt(unet)
    assert generator_from_checkpoint(pix, direction="AtoB").in_channels == 3
    with pytest.raises(ConfigError, match=r"only unpaired \(CycleGAN\) checkpoints have a BtoA generator"):
        generator_from_checkpoint(pix, direction="BtoA")


def _pix2pix_ckpt(generator_cfg: dict) -> dict:
    """A checkpoint as a pix2pix run writes it, as far as the generator loaders read it."""
    G = instantiate(generator_cfg)
    return {
        "state_dict": {f"G_ema.{k}": v for k, v in G.state_dict().items()},
        "ganforge": {
            "config": {"model": {"_target_": "ganforge.tasks.PairedModule", "generator": generator_cfg}}
        },
    }


def test_cyclegan_config_and_experiment_compose() -> None:
    cfg = compose_config(["model=cyclegan"])
    assert cfg.loss._target_ == "ganforge.losses.LeastSquaresLoss"  # the model config chooses LSGAN
    assert compose_config(["model=cyclegan", "loss=hinge"]).loss._target_ == "ganforge.losses.HingeLoss"
    assert cfg.model.generator.n_blocks == 9 and cfg.model.generator.norm == "instance"
    assert cfg.model.cycle_weight == 10 and cfg.model.identity_weight == 0.5 and cfg.model.pool_size == 50
    assert cfg.model.scheduler_g.start == 0.5 and list(cfg.model.optimizer_d.betas) == [0.5, 0.999]
    if not Path(__file__).resolve().parents[1].joinpath("conf/data/emoji_unpaired.yaml").is_file():
        pytest.skip("conf/data/emoji_unpaired.yaml (the unpaired data presets) is not in this tree yet")
    exp = compose_config(["experiment=emoji_cyclegan"])
    assert exp.model.generator.n_blocks == 6 and exp.loss._target_.endswith("LeastSquaresLoss")
    assert exp.model._target_ == "ganforge.tasks.CycleGANModule"
    # the CPU-budget preset: the emoji experiment with U-Net generators (the same jitter, 72 -> 64)
    unet = compose_config(["experiment=emoji_cyclegan_unet"])
    assert (
        unet.model.generator._target_ == "ganforge.models.UNetGenerator"
        and "n_blocks" not in unet.model.generator
    )
    assert unet.model.generator.max_channels == 128 and unet.data.load_size == exp.data.load_size == 72
    assert unet.trainer.max_steps == 6000
    assert unet.model.generator.base_channels == 32 and unet.model.generator.norm == "instance"


@pytest.mark.parametrize(
    ("overrides", "target", "blocks"),
    [
        (["model=cyclegan", "data=emoji_unpaired"], "ResnetGenerator", 9),
        (["model=cyclegan", "data=emoji_unpaired", "generator=resnet_6blocks"], "ResnetGenerator", 6),
        (["model=cyclegan", "data=emoji_unpaired", "generator=unet"], "UNetGenerator", None),
        (["model=pix2pix", "data=emoji_styles"], "UNetGenerator", None),
        (["model=pix2pix", "data=emoji_styles", "generator=resnet_9blocks"], "ResnetGenerator", 9),
        (["model=pix2pix", "data=emoji_styles", "generator=resnet_6blocks"], "ResnetGenerator", 6),
    ],
)
def test_the_generator_group_swaps_the_image_to_image_generator(overrides, target, blocks) -> None:
    """generator=unet | resnet_9blocks | resnet_6blocks (the reference's --netG) for both image -> image
    models; each model keeps its own norm, dropout and channels, and the choice builds."""
    cfg = compose_config(overrides)
    g = cfg.model.generator
    assert g._target_ == f"ganforge.models.{target}" and g.get("n_blocks") == blocks
    pix2pix = "model=pix2pix" in overrides
    assert (g.norm, g.dropout) == (("batch", 0.5) if pix2pix else ("instance", 0.0))
    built = instantiate(g) if pix2pix else instantiate(g)(in_channels=3, out_channels=3)
    size = cfg.data.resolution
    assert built(torch.zeros(1, 3, size, size)).shape == (1, 3, size, size)


EMOJI = SHARED_DATASETS / "emoji64-google-twitter.zip"
needs_emoji = pytest.mark.skipif(
    not EMOJI.is_file(), reason=f"{EMOJI} is not there (../shared beside the repo)"
)


def emoji_cyclegan(tmp_path: Path, *overrides: str) -> list[str]:
    """experiment=emoji_cyclegan on 8 emoji per side, with 4-channel 1-block networks (64 px, batch 1)."""
    return [
        "experiment=emoji_cyclegan",
        f"data.path={EMOJI}",
        "data.max_samples=8",
        "data.batch_size=1",
        *TINY,
        "model.discriminator.n_layers=1",
        f"paths.log_dir={tmp_path / 'logs'}",  # the decoded-image cache stays in the test's folder
        *overrides,
    ]


@needs_emoji
def test_emoji_cyclegan_trains_scores_and_translates_back(compose_cfg, tmp_path) -> None:
    """On real data: every loss term logged, the cycle grid of the test emoji, the metrics callback,
    eval.py's JSON (both directions, against the ground truth) and translate.py direction=BtoA."""
    metrics = (
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.num_samples=8",
        "callbacks.metrics.every_n_steps=4",
        "callbacks.metrics.kid_subset_size=4",
    )
    result = train(compose_cfg(*emoji_cyclegan(tmp_path, *metrics)))
    assert result["trainer"].global_step == 4
    logs = logged(tmp_path / "run")
    for key in ("loss/d", "loss/g", "loss/g_cycle", "loss/g_identity", "d/loss_a", "d/loss_b", "lr/g"):
        assert len(logs[key]) == 4, key
    assert 0 < result["metrics"]["metrics/psnr_ab"] < 40 and result["metrics"]["metrics/fid_ba"] > 0
    # rows a | G_AB(a) | G_BA(G_AB(a)) for 2 test Google emoji, then b | G_BA(b) | G_AB(G_BA(b)) for 2 Twitter
    grid = np.array(Image.open(tmp_path / "run/samples/step_0000004.png").convert("RGB"))
    assert grid.shape == (4 * 64 + 5 * 2, 3 * 64 + 4 * 2, 3)
    test_a, test_b = result["datamodule"].grid_pairs(2)
    for row, image in ((0, test_a[0]), (2, test_b[0])):
        top = 2 + row * 66
        assert (grid[top : top + 64, 2:66] == image.permute(1, 2, 0).numpy()).all(), row
    assert not (grid[2:66, 68:132] == test_a[0].permute(1, 2, 0).numpy()).all()  # G_AB changed it
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    cfg = compose_config(
        [f"ckpt_path={ckpt}", "extractor=tiny", "num_samples=8", "metrics=[fid,kid,psnr,ssim,l1]",
         "kid_subset_size=4", "device=cpu", f"output={tmp_path / 'eval.json'}",
         f"paths.output_dir={tmp_path / 'e'}", f"paths.log_dir={tmp_path / 'logs'}"],
        config_name="eval",
    )  # fmt: skip
    evaluate(cfg)
    report = json.loads((tmp_path / "eval.json").read_text())
    for key in ("fid_ab", "fid_ba", "psnr_ab", "psnr_ba", "ssim_ab", "l1_ba"):
        assert report["results"][key] == pytest.approx(result["metrics"][f"metrics/{key}"]), key
    assert report["protocol"]["num_samples"] == 8 and "ground truth" in report["protocol"]["outputs"]
    # translate.py direction=BtoA: Twitter emoji (RGBA) back to the Google style, under their own names
    inputs = tmp_path / "twitter"
    inputs.mkdir()
    with zipfile.ZipFile(EMOJI) as z:
        for name in ("1f600", "1f60d"):
            (inputs / f"{name}.png").write_bytes(z.read(f"twitter/{name}.png"))
    proc = run_script(
        "translate.py", f"ckpt_path={ckpt}", f"input={inputs}", "direction=BtoA", "device=cpu",
        f"out={tmp_path / 'google'}", f"hydra.run.dir={tmp_path / 't'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "google").iterdir()) == ["1f600.png", "1f60d.png"]
    assert Image.open(tmp_path / "google/1f600.png").size == (64, 64)


@needs_emoji
def test_emoji_cyclegan_ddp_resume_continues_every_rank_exactly(tmp_path) -> None:
    """Two CPU processes, each with its own history pools (of 2: full after 2 steps, then swapping) and its
    own (a, random b) pairing; a run resumed mid-epoch at step 2 ends with the straight run's weights and
    pools after an epoch boundary (6 images: 3 batches per rank)."""
    common = emoji_cyclegan(
        tmp_path,
        "data.max_samples=6",
        "model.pool_size=2",
        "callbacks=default",
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.sync_batchnorm=false",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks.sample_grid.every_n_steps=100",
        "~callbacks.model_summary",
    )
    runs = {
        "straight": ["callbacks.model_checkpoint.every_n_train_steps=2"],  # its step-2 checkpoint: resumed
        "resumed": [f"ckpt_path={tmp_path}/straight/checkpoints/step_0000002.ckpt"],
    }
    for name, extra in runs.items():
        proc = run_script(
            "train.py", *common, "trainer.max_steps=4", *extra, f"hydra.run.dir={tmp_path / name}"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")["state_dict"]
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.ckpt")["state_dict"]
    assert straight.keys() == resumed.keys() and int(straight["pool_a._extra_state"]) == 2
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
