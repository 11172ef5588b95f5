"""data=avatars: real python-avatars faces rendered by the real rsvg-convert (nothing mocked but failures)."""

from __future__ import annotations

import logging
import random
import shutil
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganforge.data import AvatarsDataModule
from ganforge.data import avatars as avatars_module
from ganforge.data.avatars import Parts, import_python_avatars, render_faces
from ganforge.errors import ConfigError, CorruptImageError

REPO = Path(__file__).resolve().parents[1]
WHITE = (255, 255, 255)

try:
    import python_avatars  # noqa: F401

    HAVE_PACKAGE = True
except ImportError:
    HAVE_PACKAGE = False
needs_package = pytest.mark.skipif(
    not HAVE_PACKAGE, reason='python-avatars not installed (pip install -e ".[dev]")'
)
needs_renderer = pytest.mark.skipif(
    not HAVE_PACKAGE or shutil.which("rsvg-convert") is None,
    reason="python-avatars or rsvg-convert missing (make setup data, or .ci/run, installs them)",
)


@pytest.fixture(scope="module")
def twelve() -> torch.Tensor:
    if not HAVE_PACKAGE or shutil.which("rsvg-convert") is None:
        pytest.skip("python-avatars or rsvg-convert missing")
    return render_faces(12, 64, seed=0, background=WHITE)


def module(tmp_path: Path | None, **kwargs) -> AvatarsDataModule:
    options = {"num_images": 12, "batch_size": 4, "cache_dir": tmp_path, **kwargs}
    return AvatarsDataModule(**options)


@needs_renderer
def test_faces_are_varied_uint8_images(twelve):
    assert twelve.dtype == torch.uint8 and twelve.shape == (12, 3, 64, 64)
    x = twelve.float()
    assert x.std() > 40  # drawn, not blank
    assert all(x[i].std() > 20 for i in range(12))
    assert all((x[i] < 250).float().mean() > 0.3 for i in range(12))  # a face fills much of the frame
    assert x[:, :, 0, 0].eq(255).all()  # the top-left corner shows the white background
    distinct = {bytes(twelve[i].flatten().tolist()) for i in range(12)}
    assert len(distinct) == 12
    assert (x[1:] - x[:-1]).abs().mean() > 10  # faces differ from each other, not just by a few pixels


@needs_renderer
def test_faces_depend_only_on_seed_and_index(twelve):
    state = random.getstate()
    assert torch.equal(render_faces(12, 64, seed=0, background=WHITE), twelve)  # bit for bit
    assert torch.equal(render_faces(8, 64, seed=0, background=WHITE), twelve[:8])  # a prefix of the set
    other = render_faces(12, 64, seed=1, background=WHITE)
    assert sum(not torch.equal(a, b) for a, b in zip(other, twelve, strict=True)) >= 11
    assert random.getstate() == state  # the global RNG (the training's) is untouched


@needs_package
def test_importing_python_avatars_leaves_the_global_rng_alone(monkeypatch):
    for name in [m for m in sys.modules if m == "python_avatars" or m.startswith("python_avatars.")]:
        monkeypatch.delitem(sys.modules, name)  # restored afterwards
    state = random.getstate()
    pa = import_python_avatars()  # a fresh import: python-avatars draws from `random` at import time
    assert "python_avatars" in sys.modules and random.getstate() == state
    a, b = Parts(pa).avatar(3, 5), Parts(pa).avatar(3, 5)
    assert str(a) == str(b) and pa.ClothingGraphic.CUSTOM_TEXT not in Parts(pa).graphics  # no fonts


@needs_renderer
def test_datamodule_yields_faces_and_no_labels(twelve):
    dm = module(None)
    dm.setup()
    assert torch.equal(dm.dataset.images, twelve)
    image, label = dm.dataset[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 64, 64) and label.item() == -1
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and y.dtype == torch.int64

    grey = module(None, num_images=4, channels=1)
    grey.setup()
    assert grey.dataset.images.shape == (4, 1, 64, 64) and grey.image_shape == (1, 64, 64)


@needs_renderer
def test_max_samples_renders_only_the_first_faces(tmp_path, twelve):
    dm = module(tmp_path, num_images=10000, max_samples=5)
    dm.setup()
    assert torch.equal(dm.dataset.images, twelve[:5])
    (cached,) = tmp_path.glob("avatars-*.pt")
    assert cached.name.startswith("avatars-5x64px-seed0-")


@needs_renderer
def test_the_set_is_rendered_once_then_read_from_the_cache(tmp_path, monkeypatch, twelve):
    module(tmp_path).setup()
    (cached,) = tmp_path.glob("avatars-*.pt")
    mtime = cached.stat().st_mtime_ns

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(avatars_module, "render_faces", no_rendering)
    dm = module(tmp_path)
    dm.setup()
    assert torch.equal(dm.dataset.images, twelve)
    assert cached.stat().st_mtime_ns == mtime and len(list(tmp_path.iterdir())) == 1  # no temporaries
    with pytest.raises(AssertionError, match="rendered again"):  # another set is another file
        module(tmp_path, face_seed=1).setup()


@needs_renderer
def test_a_damaged_cache_is_rendered_again(tmp_path, caplog, twelve):
    module(tmp_path).setup()
    (cached,) = tmp_path.glob("avatars-*.pt")
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated
    dm = module(tmp_path)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert "unreadable" in caplog.text and "rendering again" in caplog.text and str(cached) in caplog.text
    assert torch.equal(dm.dataset.images, twelve)
    assert torch.equal(torch.load(cached, weights_only=True)["images"], twelve)  # rewritten whole


@pytest.mark.parametrize("resolution", [32, 63, 257, 512])
def test_resolution_outside_64_to_256_is_refused(resolution):
    with pytest.raises(ConfigError, match=rf"data\.resolution={resolution} .*use 64 to 256 pixels"):
        AvatarsDataModule(resolution=resolution)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"num_images": 0}, r"data\.num_images=0 must be a positive"),
        ({"background": "not-a-colour"}, r"data\.background='not-a-colour' is not a colour"),
        ({"render_workers": 0}, r"data\.render_workers=0 must be at least 1"),
    ],
)
def test_bad_options_are_refused(option, message):
    with pytest.raises(ConfigError, match=message):
        AvatarsDataModule(**option)


@needs_package
def test_missing_rsvg_convert_says_how_to_install_it(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ConfigError, match="rsvg-convert, which is not on PATH") as e:
        module(tmp_path).setup()
    assert "sudo apt-get install librsvg2-bin" in str(e.value) and "brew install librsvg" in str(e.value)


def test_missing_python_avatars_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "python_avatars", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="python-avatars") as e:
        module(tmp_path).setup()
    assert "pip install python-avatars==1.4.1" in str(e.value) and 'pip install "ganforge[avatars]"' in str(
        e.value
    )


@needs_renderer
def test_a_face_that_fails_to_render_is_named_with_rsvg_converts_message(tmp_path, monkeypatch):
    svg = Parts.svg

    def broken_face_5(self, seed, index, resolution):
        text = svg(self, seed, index, resolution)
        return text[: len(text) // 2] if index == 5 else text  # cut off: not well-formed XML

    monkeypatch.setattr(Parts, "svg", broken_face_5)
    with pytest.raises(CorruptImageError, match=r"rsvg-convert failed on face 5 \(exit status 1\): .*XML"):
        module(tmp_path).setup()
    assert not list(tmp_path.glob("avatars-*.pt"))  # nothing half-made is cached


def test_hydra_config_instantiates(tmp_path):
    data = OmegaConf.load(REPO / "conf/data/avatars.yaml")
    paths = {"data_dir": str(tmp_path), "log_dir": str(tmp_path / "logs")}
    dm = instantiate(OmegaConf.create({"paths": paths, "seed": 7, "data": data}).data)
    assert type(dm) is AvatarsDataModule and dm.image_shape == (3, 64, 64)
    assert dm.seed == 7 and dm.face_seed == 0  # training seed: shuffle order only
    assert dm.num_images == 10000 and dm.background_rgb == WHITE
    assert dm.cache_dir == tmp_path / "logs/cache/avatars"


@needs_renderer
def test_dcgan_trains_on_avatars(compose_cfg, tmp_path):
    from ganforge.train import train

    cfg = compose_cfg(
        "model=dcgan", "data=avatars", "data.num_images=32", "data.batch_size=8", "trainer.max_steps=2"
    )
    result = train(cfg)
    assert result["trainer"].global_step == 2 and len(result["datamodule"].dataset) == 32
    run = tmp_path / "run"
    assert (run / "checkpoints/last.ckpt").is_file()
    assert len(list((run / "logs/cache/avatars").glob("avatars-32x64px-seed0-*.pt"))) == 1
    assert result["model"].sample().shape[1:] == (3, 64, 64)
