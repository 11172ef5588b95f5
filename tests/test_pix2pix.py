"""Pix2Pix end to end on a slice of the real emoji pairs: training, exact resume, the loss terms, the
sample grid, metrics, translate.py / generate.py / eval.py, and the errors for data of another kind."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from ganforge.checkpoint import load_checkpoint
from ganforge.errors import ConfigError
from ganforge.train import train
from ganforge.translate import translate

from .conftest import REPO_ROOT, SHARED_DATASETS
from .test_train import _assert_same_state, logged

EMOJI = SHARED_DATASETS / "emoji64-google-twitter.zip"
pytestmark = pytest.mark.skipif(
    not EMOJI.is_file(), reason=f"{EMOJI} is not there (../shared beside the repo)"
)

# U-Net-64 (6 levels) and a 70x70 PatchGAN, 8 channels wide: a step takes milliseconds.
PIX = (
    "model=pix2pix",
    "data=emoji_styles",
    f"data.path={EMOJI}",
    "data.max_samples=48",
    "data.batch_size=8",
    "model.generator.base_channels=8",
    "model.discriminator.base_channels=8",
    "model.num_fixed_samples=4",
)


def test_pix2pix_trains_logs_every_term_and_draws_input_output_target(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*PIX, "trainer.max_steps=4"))
    assert result["trainer"].global_step == 4
    metrics = logged(tmp_path / "run")
    for key in ("loss/d", "loss/g", "loss/g_l1", "d/real_logit", "grad_norm/g", "lr/g"):
        assert len(metrics[key]) == 4, key
    # L1 x 100 on [-1, 1] images: tens at the start, the weighted term is what is logged
    assert all(5 < v < 200 for v in metrics["loss/g_l1"])
    grid = Image.open(tmp_path / "run/samples/step_0000004.png")
    assert grid.size == (3 * 64 + 4 * 2, 4 * 64 + 5 * 2)  # 3 columns (input, output, target), 4 rows
    module = result["model"]
    assert module.fixed_input.shape == (4, 3, 64, 64) and module.fixed_input.dtype == torch.uint8
    assert "fixed_input" not in load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")["state_dict"]


def test_no_fixed_samples_means_no_grids(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*PIX, "model.num_fixed_samples=0", "trainer.max_steps=2"))
    assert not (tmp_path / "run/samples").exists() or not list((tmp_path / "run/samples").iterdir())


def test_pix2pix_resume_is_exact(compose_cfg, tmp_path) -> None:
    """Jitter (a function of the batch index), dropout and the LR decay all continue exactly."""

    def run(out: str, *overrides: str) -> dict:
        return train(compose_cfg(*PIX, *overrides, output_dir=tmp_path / out))

    straight = run("a", "trainer.max_steps=8", "callbacks.model_checkpoint.every_n_train_steps=4")
    ckpt = tmp_path / "a/checkpoints/step_0000004.ckpt"
    resumed = run("b", "trainer.max_steps=8", f"ckpt_path={ckpt}")
    assert resumed["trainer"].global_step == 8
    assert straight["trainer"].optimizers[0].param_groups[0]["lr"] < 2e-4  # decayed over the 2nd half
    _assert_same_state(straight, resumed)


def test_the_objectives_of_the_ablation(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*PIX, "trainer.max_steps=2", "model.adversarial_weight=0", output_dir=tmp_path / "l1"))
    l1_only = logged(tmp_path / "l1")
    assert set(l1_only["loss/g"]) == {0.0} and min(l1_only["loss/g_l1"]) > 0
    train(compose_cfg(*PIX, "trainer.max_steps=2", "~model.content.l1", output_dir=tmp_path / "cgan"))
    cgan = logged(tmp_path / "cgan")
    assert "loss/g_l1" not in cgan and min(cgan["loss/g"]) > 0
    with pytest.raises(ConfigError, match="nothing to learn from"):
        train(compose_cfg(*PIX, "model.adversarial_weight=0", "~model.content.l1"))


def test_data_of_the_wrong_kind_or_channels_fails_before_training(compose_cfg, tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"GANModule trains on images or points, but data emoji_styles gives pairs"
    ):
        train(compose_cfg("model=dcgan", "data=emoji_styles", f"data.path={EMOJI}", "data.max_samples=48"))
    with pytest.raises(
        ConfigError, match=r"model=pix2pix reads data\.input_channels, which data=fashion_mnist"
    ):
        train(compose_cfg("model=pix2pix"))
    with pytest.raises(ConfigError, match=r"maps 1 to 3 channels but the data gives 3-channel inputs"):
        train(compose_cfg(*PIX, "model.generator.in_channels=1"))
    with pytest.raises(ConfigError, match=r"drop topk=default"):
        train(compose_cfg(*PIX, "topk=default"))
    assert not (tmp_path / "run/checkpoints").exists()


def test_grey_inputs_to_colour_targets(compose_cfg, tmp_path) -> None:
    result = train(compose_cfg(*PIX, "data.input_channels=1", "trainer.max_steps=1"))
    assert result["model"].G.in_channels == 1 and result["model"].D.in_channels == 4
    assert result["model"].fixed_input.shape[1] == 1


def test_paired_metrics_in_the_callback_and_eval_py(compose_cfg, tmp_path) -> None:
    metrics = (
        "callbacks=metrics",
        "callbacks.metrics.extractor=tiny",
        "callbacks.metrics.metrics=[fid,kid,psnr,ssim,l1]",
        "callbacks.metrics.num_samples=20",
        "callbacks.metrics.every_n_steps=2",
        "callbacks.metrics.kid_subset_size=10",
    )
    result = train(compose_cfg(*PIX, *metrics, "trainer.max_steps=2"))
    values = result["metrics"]
    assert 0 < values["metrics/psnr"] < 40 and 0 < values["metrics/ssim"] < 1 and 0 < values["metrics/l1"] < 1
    assert values["metrics/fid"] > 0
    # pix2pix data has no scale: whole RGB images, the conventions logged beside the values
    assert values["metrics/protocol/crop_border"] == 0 and values["metrics/protocol/test_y_channel"] == 0
    last = tmp_path / "run/checkpoints/last.ckpt"
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval.py"), f"ckpt_path={last}", "extractor=tiny", "num_samples=20",
         "metrics=[psnr,ssim,l1,kid]", "kid_subset_size=10", f"output={out}", f"hydra.run.dir={tmp_path}/e"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["results"]["psnr"] == pytest.approx(values["metrics/psnr"])  # same G, same 20 test pairs
    assert report["protocol"]["num_samples"] == 20 and "G(test inputs)" in report["protocol"]["outputs"]
    assert report["protocol"]["crop_border"] == 0 and report["protocol"]["test_y_channel"] is False
    # metrics of paired data only are refused for a noise model, naming why
    with pytest.raises(ConfigError, match=r"psnr.*need paired data"):
        train(compose_cfg(*metrics, output_dir=tmp_path / "noise"))


def _cli(script: str, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_translate_py_writes_outputs_under_the_input_names(compose_cfg, tmp_path) -> None:
    train(compose_cfg(*PIX, "trainer.max_steps=1"))
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    names = ["1f600", "1f602", "1f60d"]
    inputs, targets = tmp_path / "in/sub", tmp_path / "targets/sub"
    inputs.mkdir(parents=True)
    targets.mkdir(parents=True)
    with zipfile.ZipFile(EMOJI) as z:
        for n in names:
            (inputs / f"{n}.png").write_bytes(z.read(f"google/{n}.png"))
            (targets / f"{n}.png").write_bytes(z.read(f"twitter/{n}.png"))
    packed = tmp_path / "in.zip"
    with zipfile.ZipFile(packed, "w") as z:
        for n in names:
            z.write(inputs / f"{n}.png", f"sub/{n}.png")
    out = tmp_path / "run"
    for source, folder in ((tmp_path / "in", "from_folder"), (packed, "from_zip")):
        proc = _cli(
            "translate.py",
            f"ckpt_path={ckpt}",
            f"input={source}",
            f"out={tmp_path / folder}",
            f"hydra.run.dir={out}",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        written = sorted(
            p.relative_to(tmp_path / folder).as_posix() for p in (tmp_path / folder).rglob("*.png")
        )
        assert written == [f"sub/{n}.png" for n in names]
        assert Image.open(tmp_path / folder / "sub/1f600.png").size == (64, 64)
    assert (tmp_path / "from_folder/sub/1f602.png").read_bytes() == (
        tmp_path / "from_zip/sub/1f602.png"
    ).read_bytes()

    grid_args = [f"input={tmp_path / 'in'}", f"target={tmp_path / 'targets'}", "grid=true"]
    proc = _cli(
        "translate.py", f"ckpt_path={ckpt}", *grid_args, f"out={tmp_path / 'grid'}", f"hydra.run.dir={out}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    grid = Image.open(tmp_path / "grid/sub/1f60d.png")
    assert grid.size == (3 * 64, 64)  # input | output | target
    right_third = np.array(grid.convert("RGB"))[:, 128:]
    assert (right_third == _over_white(targets / "1f60d.png")).all()  # the target itself, over white

    single = _cli(
        "translate.py",
        f"ckpt_path={ckpt}",
        f"input={inputs / '1f600.png'}",
        f"out={tmp_path / 'one'}",
        f"hydra.run.dir={out}",
    )
    assert single.returncode == 0 and (tmp_path / "one/1f600.png").is_file()

    # a size the U-Net cannot take is named, with the way out
    Image.new("RGB", (50, 40), "white").save(tmp_path / "odd.png")
    odd = _cli(
        "translate.py",
        f"ckpt_path={ckpt}",
        f"input={tmp_path / 'odd.png'}",
        f"out={tmp_path / 'o'}",
        f"hydra.run.dir={out}",
    )
    assert odd.returncode == 2 and "odd.png" in odd.stderr and "size=<pixels>" in odd.stderr
    sized = _cli(
        "translate.py",
        f"ckpt_path={ckpt}",
        f"input={tmp_path / 'odd.png'}",
        "size=64",
        f"out={tmp_path / 'o'}",
        f"hydra.run.dir={out}",
    )
    assert sized.returncode == 0, sized.stderr[-2000:]

    wrong = _cli("generate.py", f"ckpt_path={ckpt}", f"out={tmp_path / 'g.png'}", f"hydra.run.dir={out}")
    assert wrong.returncode == 2 and "use translate.py" in wrong.stderr and "Traceback" not in wrong.stderr

    _check_tiled_translation(ckpt, inputs, tmp_path)


def _check_tiled_translation(ckpt: Path, inputs: Path, tmp_path: Path) -> None:
    """A 128x192 mosaic of emoji on 128-pixel tiles (what the U-Net takes) with 32 pixels of context."""
    big = tmp_path / "big"
    big.mkdir()
    emoji = [np.array(_over_white(inputs / f"{n}.png")) for n in ["1f600", "1f602", "1f60d"]]
    Image.fromarray(np.concatenate([np.concatenate(emoji, 1), np.concatenate(emoji[::-1], 1)], 0)).save(
        big / "mosaic.png"
    )
    base = {
        "ckpt_path": str(ckpt), "input": str(big), "target": None, "grid": False, "size": None, "ema": True,
        "device": "cpu", "tile_overlap": 32,
    }  # fmt: skip
    for name, tile in [("whole", None), ("one_tile", 192), ("tiles", 128)]:
        translate(OmegaConf.create({**base, "tile": tile, "out": str(tmp_path / name)}))
    whole, one_tile, tiles = (
        np.array(Image.open(tmp_path / d / "mosaic.png")) for d in ("whole", "one_tile", "tiles")
    )
    assert whole.shape == tiles.shape == (128, 192, 3)
    assert (one_tile == whole).all()  # an image no larger than a tile is run whole
    assert not (tiles == whole).all()  # the U-Net sees the whole image: tiles change its output
    proc = _cli(
        "translate.py", f"ckpt_path={ckpt}", f"input={big}", "tile=128", "tile_overlap=32",
        f"out={tmp_path / 'cli'}", f"hydra.run.dir={tmp_path / 'cli_run'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (np.array(Image.open(tmp_path / "cli/mosaic.png")) == tiles).all()
    bad = _cli(
        "translate.py",
        f"ckpt_path={ckpt}",
        f"input={big}",
        "tile=64",
        "tile_overlap=32",
        f"hydra.run.dir={tmp_path / 'b'}",
    )
    assert bad.returncode == 2 and "raise tile above 64 or lower tile_overlap below 32" in bad.stderr


def _over_white(path: Path) -> np.ndarray:
    rgba = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.array(Image.alpha_composite(white, rgba).convert("RGB"))


@pytest.mark.usefixtures("fashion_mnist_available")
def test_translate_py_refuses_a_noise_checkpoint(compose_cfg, tmp_path) -> None:
    train(compose_cfg("model=mlp_gan", "trainer.max_steps=1"))
    Image.new("RGB", (28, 28)).save(tmp_path / "x.png")
    proc = _cli(
        "translate.py",
        f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}",
        f"input={tmp_path / 'x.png'}",
        f"hydra.run.dir={tmp_path / 'out'}",
    )
    assert proc.returncode == 2 and "use generate.py" in proc.stderr


def test_pix2pix_ddp_resume_continues_every_rank_exactly(tmp_path) -> None:
    """Two CPU processes: each rank jitters its own batches; a resumed run ends with the straight weights."""
    common = [
        *PIX,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.sync_batchnorm=false",
        "trainer.enable_progress_bar=false",
        "callbacks.sample_grid.every_n_steps=100",
        "~callbacks.model_summary",
    ]
    runs = {
        "straight": ["callbacks.model_checkpoint.every_n_train_steps=2"],  # its step-2 checkpoint: resumed
        "resumed": [f"ckpt_path={tmp_path}/straight/checkpoints/step_0000002.ckpt"],
    }
    for name, extra in runs.items():
        proc = _cli("train.py", *common, "trainer.max_steps=4", *extra, f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")["state_dict"]
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.ckpt")["state_dict"]
    assert straight.keys() == resumed.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
