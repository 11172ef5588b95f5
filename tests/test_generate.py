"""generate.py on tiny checkpoints (grids, per-image files, interpolation, classes, errors) and the
progress bar's throughput arithmetic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Callback, ProgressBar
from PIL import Image

from ganforge.callbacks.progress import (
    GANRichProgressBar,
    LogProgressBar,
    Throughput,
    batch_size_of,
    gan_metrics,
    images_per_second,
    progress_bar,
)
from ganforge.checkpoint import load_generator
from ganforge.errors import ConfigError
from ganforge.generate import find_ffmpeg, generate, generator_kwargs, interpolation_latents
from ganforge.models.stylegan import StyleGANGenerator
from ganforge.train import compose_config, train

from .conftest import FASHION_MNIST_DIR, REPO_ROOT, tiny_overrides

# stylegan_lite at its smallest: 2 training steps in about 3 s on a CPU
TINY_STYLEGAN = [
    "model=stylegan_lite",
    "data.resolution=32",
    "model.generator.z_dim=16",
    "model.generator.w_dim=16",
    "model.generator.mapping_layers=2",
    "model.generator.channel_base=128",
    "model.generator.channel_max=16",
    "model.discriminator.channel_base=128",
    "model.discriminator.channel_max=16",
]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """A 2-step DCGAN and a 2-step CGAN checkpoint, trained once for the whole module."""
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed (.ci/run installs it)")
    root = tmp_path_factory.mktemp("generate")
    out = {}
    for name, extra in (("dcgan", []), ("cgan", ["model=cgan"]), ("stylegan", TINY_STYLEGAN)):
        run = root / name
        train(compose_config([*tiny_overrides(run), "trainer.max_steps=2", *extra]))
        out[name] = run / "checkpoints/last.ckpt"
    return out


def _generate(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "generate.py"), *args, f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _cfg(tmp_path: Path, *overrides: str):
    return compose_config(
        config_name="generate", overrides=[*overrides, f"hydra.run.dir={tmp_path / 'hydra'}"]
    )


def test_grid_per_image_interpolation_and_determinism(ckpts, tmp_path) -> None:
    grid = tmp_path / "a/grid.png"
    common = [f"ckpt_path={ckpts['dcgan']}", "n=10"]
    proc = _generate(tmp_path, *common, f"out={grid}", "per_image=true", "interpolate=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 10 images of 28 px, ceil(sqrt(10)) = 4 per row -> 4 x 3 cells of 28 + 2 px padding, + 2
    assert Image.open(grid).size == (4 * 30 + 2, 3 * 30 + 2)
    files = sorted((tmp_path / "a/grid_images").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(10)]
    assert Image.open(files[0]).size == (28, 28)  # no padding around single images
    frames = sorted((tmp_path / "a/grid_interp").glob("frame_*.png"))
    assert len(frames) == 4 * 3  # 4 keyframes (closed loop) x 3 steps
    gif = Image.open(tmp_path / "a/grid_interp.gif")
    assert gif.n_frames == 12 and gif.size == (4 * 30 + 2, 32)  # 4 parallel walks per frame
    mp4 = tmp_path / "a/grid_interp.mp4"
    if find_ffmpeg() is None:
        assert "MP4 skipped" in proc.stdout + proc.stderr and not mp4.exists()
    else:  # the dev extra installs ganforge[video]: decode what was written
        import imageio_ffmpeg

        assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 12
        reader = imageio_ffmpeg.read_frames(str(mp4))
        meta = next(reader)
        assert meta["size"] == (4 * 30 + 2, 32) and meta["codec"] == "h264"
        reader.close()

    same = _generate(tmp_path, *common, f"out={tmp_path / 'b.png'}")
    other = _generate(tmp_path, *common, f"out={tmp_path / 'c.png'}", "seed=1")
    assert same.returncode == 0 and other.returncode == 0, same.stderr[-2000:] + other.stderr[-2000:]
    pixels = {p: Image.open(p).tobytes() for p in (grid, tmp_path / "b.png", tmp_path / "c.png")}
    assert pixels[grid] == pixels[tmp_path / "b.png"]  # same seed, same images
    assert pixels[grid] != pixels[tmp_path / "c.png"]


def test_conditional_grids_one_row_per_class(ckpts, tmp_path) -> None:
    proc = _generate(tmp_path, f"ckpt_path={ckpts['cgan']}", f"out={tmp_path / 'all.png'}", "n=30")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(tmp_path / "all.png").size == (3 * 30 + 2, 10 * 30 + 2)  # 10 classes x 3 each

    c3 = [f"ckpt_path={ckpts['cgan']}", f"out={tmp_path / 'c3.png'}", "n=4", "class=3", "per_image=true"]
    written = generate(_cfg(tmp_path, *c3))
    assert written["count"] == 4 and written["nrow"] == 2
    names = sorted(p.name for p in Path(written["per_image_dir"]).iterdir())
    assert names == [f"{i:06d}_class3.png" for i in range(4)]


def test_clear_errors(ckpts, tmp_path) -> None:
    proc = _generate(tmp_path, f"ckpt_path={ckpts['cgan']}", "class=10", f"out={tmp_path / 'x.png'}")
    assert proc.returncode == 2
    assert "ganforge: error: class=10 is not a class index of this model: use 0..9" in proc.stderr
    missing = _generate(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    dcgan = [f"ckpt_path={ckpts['dcgan']}", f"out={tmp_path / 'x.png'}"]
    with pytest.raises(ConfigError, match="unconditional"):
        generate(_cfg(tmp_path, *dcgan, "class=1"))
    with pytest.raises(ConfigError, match="no truncation trick"):
        generate(_cfg(tmp_path, *dcgan, "truncation=0.7"))
    with pytest.raises(ConfigError, match="n=0"):
        generate(_cfg(tmp_path, *dcgan, "n=0"))
    with pytest.raises(ConfigError, match="choose slerp or lerp"):
        generate(_cfg(tmp_path, *dcgan, "interpolate=2", "interpolation=cubic"))
    assert not (tmp_path / "x.png").exists()  # options are checked before anything is written


def test_truncation_on_a_stylegan_checkpoint(ckpts, tmp_path) -> None:
    args = [f"ckpt_path={ckpts['stylegan']}", "n=3", "per_image=true"]
    proc = _generate(tmp_path, *args, "truncation=0.0", f"out={tmp_path / 'psi0/grid.png'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted((tmp_path / "psi0/grid_images").glob("*.png"))
    assert len(files) == 3 and Image.open(files[0]).size == (32, 32)
    images = [Image.open(f).tobytes() for f in files]
    assert images[0] == images[1] == images[2]  # psi = 0: every latent maps to the average style
    plain = generate(_cfg(tmp_path, *args, f"out={tmp_path / 'psi1/grid.png'}"))
    assert plain["g_kwargs"] == {}
    assert len({Image.open(f).tobytes() for f in Path(plain["per_image_dir"]).iterdir()}) == 3


def test_truncation_goes_to_stylegan_only() -> None:
    G = StyleGANGenerator(z_dim=8, w_dim=8, resolution=32, channels=1, mapping_layers=1, channel_base=64)
    assert generator_kwargs(G, 0.5) == {"truncation_psi": 0.5}
    assert generator_kwargs(G, None) == {}
    G.eval()
    z = torch.randn(3, 8)
    assert G(z, None, **generator_kwargs(G, 0.0)).std(0).max() < 1e-5  # psi=0: every sample is w_avg's


def test_interpolation_frames_pass_through_keyframes() -> None:
    keys = torch.randn(3, 2, 5)
    frames = interpolation_latents(keys, 4)
    assert len(frames) == 12
    for k in range(3):
        torch.testing.assert_close(frames[4 * k], keys[k])
    with pytest.raises(ConfigError, match="slerp or lerp"):
        interpolation_latents(keys, 2, "cubic")


# -- progress bar ----------------------------------------------------------------------------------
def test_images_per_second_from_batch_size_and_step_time() -> None:
    assert images_per_second(64, 0.5) == 128.0
    assert images_per_second(64, 0.5, world_size=4) == 512.0
    assert images_per_second(64, 0.0) == 0.0
    meter = Throughput(smoothing=1.0)
    meter.reset(now=10.0)
    assert meter.update(32, now=10.25) == 128.0
    assert meter.update(32, now=10.75) == 64.0
    smooth = Throughput(smoothing=0.5)
    assert smooth.update(32, now=0.0) is None  # first call starts the clock
    assert smooth.update(32, now=1.0) == 32.0
    assert smooth.update(32, now=1.5) == 48.0  # halfway between 32 and 64
    assert batch_size_of((torch.zeros(16, 1, 28, 28), torch.zeros(16))) == 16
    assert batch_size_of({"x": torch.zeros(5, 2)}) == 5


def test_progress_bar_metrics_and_factory() -> None:
    meter = Throughput(smoothing=1.0)
    meter.reset(now=0.0)
    meter.update(100, now=0.5)
    metrics = {"loss/d": torch.tensor(0.4123), "loss/g": torch.tensor(1.8734), "metrics/fid": 54.123}
    trainer = SimpleNamespace(global_step=500, max_steps=3000, callback_metrics=metrics)
    expected = {"step": "500", "img/s": "200.0", "D": "0.412", "G": "1.873", "FID": "54.12"}
    assert gan_metrics(trainer, meter) == expected
    bar = LogProgressBar()
    bar.throughput = meter
    assert bar.format_line(trainer) == "step 500/3000 | 200.0 img/s | D 0.412 | G 1.873 | FID 54.12"
    trainer.callback_metrics = {"loss/d": torch.tensor(1.0)}  # no G update or FID yet
    assert bar.format_line(trainer) == "step 500/3000 | 200.0 img/s | D 1.000"

    off = progress_bar(enabled=False)
    assert isinstance(off, Callback) and not isinstance(off, ProgressBar)  # trainer.enable_progress_bar=false
    assert isinstance(progress_bar(mode="rich"), GANRichProgressBar)
    assert isinstance(progress_bar(mode="log"), LogProgressBar)
    with pytest.raises(ConfigError, match="auto, rich or log"):
        progress_bar(mode="fancy")


def test_rich_bar_reads_losses_only_at_logging_steps() -> None:
    """Reading a CUDA loss is a GPU sync: the bar refreshes every step but reads losses every N."""
    bar = GANRichProgressBar(every_n_steps=10)
    trainer = SimpleNamespace(global_step=10, max_steps=100, callback_metrics={"loss/d": torch.tensor(0.5)})
    assert bar.get_metrics(trainer, None) == {"step": "10", "D": "0.500"}
    trainer.global_step, trainer.callback_metrics = 11, {"loss/d": torch.tensor(0.7)}
    assert bar.get_metrics(trainer, None) == {"step": "11", "D": "0.500"}  # not read again
    trainer.global_step = 20
    assert bar.get_metrics(trainer, None) == {"step": "20", "D": "0.700"}


@pytest.mark.usefixtures("fashion_mnist_available")
def test_progress_lines_in_a_real_run(compose_cfg, caplog, tmp_path) -> None:
    # Non-terminal output (CI): one plain line per log interval; the trainer uses no other progress bar.
    cfg = compose_cfg(
        "trainer.enable_progress_bar=true", "callbacks.progress_bar.mode=log", "trainer.max_steps=2"
    )
    with caplog.at_level("INFO", logger="ganforge"):
        result = train(cfg)
    bars = [c for c in result["trainer"].callbacks if isinstance(c, ProgressBar)]
    assert len(bars) == 1 and isinstance(bars[0], LogProgressBar)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines[0].startswith("step 1/2 | ") and " D " in lines[0]  # log_every_n_steps=1 in tests
    assert lines[-1].startswith("step 2/2 | ") and " img/s | D " in lines[-1]
    # trainer.enable_progress_bar=false (every other test) makes the entry a no-op callback
    off = train(compose_cfg("trainer.max_steps=1", output_dir=tmp_path / "off"))["trainer"]
    assert not [c for c in off.callbacks if isinstance(c, ProgressBar)]


def test_slim_checkpoint_samples_like_the_full_one(ckpts, tmp_path: Path) -> None:
    """scripts/slim_checkpoint.py: only G_ema (float16) and the run config, read by load_generator."""
    slim = tmp_path / "slim.ckpt"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/slim_checkpoint.py"), str(ckpts["dcgan"]), str(slim)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = torch.load(slim, map_location="cpu", weights_only=False)["state_dict"]
    assert state and all(k.startswith("G_ema.") for k in state)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert slim.stat().st_size < ckpts["dcgan"].stat().st_size / 4
    full, _ = load_generator(ckpts["dcgan"])
    small, _ = load_generator(slim)
    z = torch.randn(4, full.z_dim)
    torch.testing.assert_close(small(z), full(z), atol=2e-2, rtol=0)  # float16 weights
    assert next(small.parameters()).dtype == torch.float32
