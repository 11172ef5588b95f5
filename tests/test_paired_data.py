"""PairedDataModule: the layouts on small fake trees, the per-batch jitter, and the offline presets."""

from __future__ import annotations

import io
import logging
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from ganforge.data import PairedDataModule, paired
from ganforge.data.base import resize_uint8
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from ganforge.train import compose_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
EMOJI_ZIP = SHARED / "emoji64-google-twitter.zip"
OPENMOJI_TGZ = SHARED / "openmoji-17.0.0.tgz"


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def flat(h: int, w: int, colour: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, len(colour))).copy()


def side_by_side(i: int, w: int = 32, h: int = 16) -> bytes:
    """Left half A = (i, 50, 100), right half B = (200, 10 * i, 0)."""
    return png(np.concatenate([flat(h, w // 2, (i, 50, 100)), flat(h, w - w // 2, (200, 10 * i, 0))], 1))


def write(root: Path, files: dict[str, bytes]) -> Path:
    if root.suffix == ".zip":
        with zipfile.ZipFile(root, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return root
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def setup(**kwargs) -> PairedDataModule:
    dm = PairedDataModule(**{"batch_size": 1, **kwargs})
    dm.setup("fit")
    return dm


# -- aligned layout ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "zip"])
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_aligned_layout_and_direction(tmp_path, kind, direction):
    files = {"train/1.png": side_by_side(1), "train/2.png": side_by_side(2), "test/7.png": side_by_side(7)}
    root = write(tmp_path / ("data.zip" if kind == "zip" else "data"), files)
    dm = setup(
        path=str(root), layout="aligned", direction=direction, resolution=16, load_size=20, batch_size=2
    )
    assert len(dm.dataset) == 2 and dm.train_names == ["1", "2"]
    left, right = (0, 1) if direction == "AtoB" else (1, 0)
    for i, (a, b) in zip((1, 2), (dm.dataset[0], dm.dataset[1]), strict=True):
        assert a.dtype == b.dtype == torch.uint8 and a.shape == b.shape == (3, 20, 20)
        halves = (torch.tensor([i, 50, 100]), torch.tensor([200, 10 * i, 0]))
        assert torch.equal(a[:, 5, 5].long(), halves[left]) and bool((a == a[:, :1, :1]).all())
        assert torch.equal(b[:, 5, 5].long(), halves[right]) and bool((b == b[:, :1, :1]).all())
    ta, tb = dm.test_pairs()
    assert ta.shape == tb.shape == (1, 3, 16, 16) and dm.test_names == ["7"]
    assert int(ta[0, 0, 0, 0]) == (7 if direction == "AtoB" else 200)
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == b.shape == (2, 3, 20, 20)
    a, b = dm.on_after_batch_transfer((a, b), 0)
    assert a.shape == b.shape == (2, 3, 16, 16)


def test_aligned_odd_width_names_the_file(tmp_path):
    root = write(tmp_path / "d", {"train/ok.png": side_by_side(1), "train/odd.png": side_by_side(2, w=33)})
    with pytest.raises(ConfigError, match=r"odd\.png is 33x16: an odd width"):
        setup(path=str(root), resolution=16)


def test_aligned_test_split_falls_back_to_val_and_native_size(tmp_path, caplog):
    files = {
        "train/1.png": side_by_side(1),
        "val/3.png": side_by_side(3, 40, 20),
        "val/4.png": side_by_side(4, 40, 20),
    }
    root = write(tmp_path / "d", files)
    dm = PairedDataModule(path=str(root), resolution=16, test_size=None)
    with caplog.at_level(logging.INFO):
        a, b = dm.test_pairs()
    assert "no test/" in caplog.text and "using val/ as the test split" in caplog.text
    assert dm.test_names == ["3", "4"] and a.shape == b.shape == (2, 3, 20, 20)  # the stored 20x20 halves
    assert [int(x) for x in a[:, 0, 0, 0]] == [3, 4] and [int(x) for x in b[:, 1, 0, 0]] == [30, 40]
    assert dm.test_pairs(max_n=1)[0].shape == (1, 3, 20, 20)


# -- folders layout ---------------------------------------------------------------------------------------


def folder_pairs(n: int = 20, size: int = 12) -> dict[str, bytes]:
    """``A/nXX.png`` of value XX, ``B/nXX.bmp`` of value 100 + XX (lossless, another extension)."""
    files = {}
    for i in range(n):
        files[f"A/n{i:02d}.png"] = png(flat(size, size, (i, i, i)))
        files[f"B/n{i:02d}.bmp"] = png(flat(size, size, (100 + i, 0, 0)), "BMP")
    return files


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_folders_pair_by_name_and_hold_out_every_10th(tmp_path, kind):
    root = write(tmp_path / ("d.zip" if kind == "zip" else "d"), folder_pairs())
    dm = setup(path=str(root), layout="folders", resolution=8, load_size=10, holdout_every=10)
    assert dm.test_names == ["n09", "n19"]  # the 10th and 20th of the sorted names
    assert len(dm.train_names) == 18 and not set(dm.train_names) & set(dm.test_names)
    for name, (a, b) in zip(dm.train_names, dm.dataset, strict=True):
        i = int(name[1:])
        assert a.shape == b.shape == (3, 10, 10) and int(a.max()) == int(a.min()) == i
        assert int(b[0].min()) == 100 + i and int(b[1:].max()) == 0
    ta, tb = dm.test_pairs()
    assert [int(x) for x in ta[:, 0, 0, 0]] == [9, 19] and [int(x) for x in tb[:, 0, 0, 0]] == [109, 119]


def test_folders_explicit_test_path_and_max_samples(tmp_path):
    root, test = write(tmp_path / "train", folder_pairs()), write(tmp_path / "test", folder_pairs(3))
    dm = setup(path=str(root), test_path=str(test), layout="folders", resolution=8, max_samples=5)
    assert dm.train_names == ["n00", "n05", "n10", "n14", "n19"]  # evenly spaced; only these decoded
    assert dm.test_names == ["n00", "n01", "n02"] and dm.test_pairs()[0].shape == (3, 3, 8, 8)


def test_folders_unpaired_names_are_listed(tmp_path):
    files = folder_pairs(4)
    files |= {"A/only_a1.png": files["A/n00.png"], "A/only_a2.png": files["A/n00.png"]}
    files["B/only_b.png"] = files["A/n00.png"]
    root = write(tmp_path / "d", files)
    with pytest.raises(ConfigError) as err:
        setup(path=str(root), layout="folders", resolution=8)
    msg = str(err.value)
    assert "2 of the 6 in" in msg and "only_a1, only_a2" in msg and "1 of the 5 in" in msg and "only_b" in msg


def test_folders_different_sizes_name_the_file(tmp_path):
    files = folder_pairs(3)
    files["B/n01.bmp"] = png(flat(12, 14, (1, 2, 3)), "BMP")
    with pytest.raises(ConfigError, match=r"n01: .*n01\.png is 12x12 but .*n01\.bmp is 14x12"):
        setup(path=str(write(tmp_path / "d", files)), layout="folders", resolution=8)


def test_unreadable_pairs_fail_or_are_left_out(tmp_path):
    files = folder_pairs()
    files["B/n03.bmp"] = files["A/n09.png"] = b"not an image"  # n09 is in the test split
    root = write(tmp_path / "d", files)
    with pytest.raises(CorruptImageError, match=r"n03\.bmp.*data\.on_corrupt=skip"):
        setup(path=str(root), layout="folders", resolution=8)
    dm = setup(path=str(root), layout="folders", resolution=8, on_corrupt="skip")
    assert len(dm.dataset) == 17 and "n03" not in dm.train_names
    assert dm.test_pairs()[0].shape[0] == 1 and dm.test_names == ["n19"]
    lazy = setup(path=str(root), layout="folders", resolution=8, on_corrupt="skip", cache="none")
    assert isinstance(lazy.dataset, paired.LazyPairs) and lazy.train_names == dm.train_names
    assert all(
        torch.equal(x, y)
        for p, q in zip(lazy.dataset, dm.dataset, strict=True)
        for x, y in zip(p, q, strict=True)
    )


def test_decoded_pairs_are_reused_by_the_next_run(tmp_path, monkeypatch):
    root = write(tmp_path / "d", folder_pairs())
    settings = {"path": str(root), "layout": "folders", "resolution": 8, "decoded_cache": str(tmp_path / "c")}
    first = setup(**settings)
    monkeypatch.setattr(paired, "decode_rgb", lambda *a, **k: 1 / 0)  # nothing may be decoded
    again = setup(**settings)
    assert torch.equal(again.dataset.ab, first.dataset.ab) and again.train_names == first.train_names
    with pytest.raises(CorruptImageError):  # other settings: another file, decoded afresh
        setup(**settings, direction="BtoA")


# -- pixels: transparency and channels --------------------------------------------------------------------


def test_rgba_over_white_and_grey_input_rgb_target(tmp_path):
    rgba = flat(8, 8, (255, 0, 0, 128))
    rgba[:, 4:] = (0, 0, 0, 0)  # right half fully transparent (black underneath)
    files = {"A/x.png": png(rgba), "B/x.png": png(rgba)}
    dm = setup(
        path=str(write(tmp_path / "d", files)), layout="folders", resolution=8, load_size=8, input_channels=1
    )
    a, b = dm.dataset[0]
    assert dm.input_shape == (1, 8, 8) and dm.image_shape == (3, 8, 8) and a.shape == (1, 8, 8)
    assert b[:, 0, 0].tolist() == [255, 127, 127] and b[:, 0, 7].tolist() == [255, 255, 255]
    assert int(a[0, 0, 7]) == 255 and int(a[0, 0, 0]) == round(0.299 * 255 + 0.587 * 127 + 0.114 * 127)


# -- the per-batch jitter ---------------------------------------------------------------------------------


def coordinates(n: int = 16, size: int = 12) -> torch.Tensor:
    """``[n, 3, size, size]``: channel 0 = row, 1 = column, 2 = sample index."""
    rows = torch.arange(size).view(1, size, 1).expand(n, size, size)
    cols = torch.arange(size).view(1, 1, size).expand(n, size, size)
    index = torch.arange(n).view(n, 1, 1).expand(n, size, size)
    return torch.stack([rows, cols, index], 1).to(torch.uint8)


def jittered(dm: PairedDataModule, batches: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` batches through the hook; b = a's (column, row) channels."""
    x = coordinates()
    return [dm.on_after_batch_transfer((x, x[:, :2].flip(1)), 0) for _ in range(batches)]


def test_jitter_crops_and_flips_a_and_b_identically():
    dm = PairedDataModule(path=None, resolution=8, load_size=12)
    (a, b), (a2, _) = jittered(dm, 2)
    assert a.shape == (16, 3, 8, 8) and b.shape == (16, 2, 8, 8) and torch.equal(a[:, :2].flip(1), b)
    assert torch.equal(a[:, 2], coordinates(16, 8)[:, 2])  # samples stay in order
    steps = (a[:, 1, :, 1:].long() - a[:, 1, :, :-1].long()).unique(dim=-1)
    assert set(steps.flatten().tolist()) == {-1, 1}  # whole crops, some flipped, some not
    assert (a[:, 0, 1:].long() - a[:, 0, :-1].long()).eq(1).all()  # rows: a window, never flipped
    assert len({(int(x[0, 0, 0]), int(x[1, 0, 0])) for x in a}) > 4  # offsets differ per sample
    assert not torch.equal(a, a2) and dm.consumed_batches == 2  # another batch, another jitter
    cols = jittered(PairedDataModule(path=None, resolution=8, load_size=12, flip=False))[0][0][:, 1]
    assert (cols[..., 1:].long() - cols[..., :-1].long()).eq(1).all()  # flip=false: never flipped


def test_jitter_is_a_function_of_seed_batch_and_rank_only():
    dm = PairedDataModule(path=None, resolution=8, load_size=12, seed=3)
    state = torch.get_rng_state()
    straight = jittered(dm, 5)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    x = coordinates()
    assert torch.equal(straight[0][0], dm.jitter(x, x, 0)[0])  # drawn before the batch is counted
    resumed = PairedDataModule(path=None, resolution=8, load_size=12, seed=3)
    resumed.load_state_dict({"consumed_batches": 3})
    torch.manual_seed(1234)  # whatever the global RNG holds
    assert all(torch.equal(x, y) for x, y in zip(jittered(resumed, 2)[1], straight[4], strict=True))
    other_seed = PairedDataModule(path=None, resolution=8, load_size=12, seed=4)
    assert not torch.equal(jittered(other_seed)[0][0], straight[0][0])
    rank1 = PairedDataModule(path=None, resolution=8, load_size=12, seed=3)
    rank1.trainer = SimpleNamespace(world_size=2, global_rank=1)
    assert not torch.equal(jittered(rank1)[0][0], straight[0][0])


def test_bad_options():
    with pytest.raises(ConfigError, match="crop is larger than the image"):
        PairedDataModule(path=None, resolution=64, load_size=60)
    assert PairedDataModule(path=None, resolution=256).load_size == 286
    for bad in ({"layout": "side"}, {"direction": "AB"}, {"input_channels": 4}, {"test_size": 2}):
        with pytest.raises(ConfigError):
            PairedDataModule(path=None, **bad)


# -- SVG in a tar (what npm pack gives) -------------------------------------------------------------------


def svg(colour: str) -> bytes:
    """Left half ``colour``, right half transparent."""
    rect = f'<rect x="0" y="0" width="5" height="10" fill="{colour}"/>'
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">{rect}</svg>'.encode()


def write_tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_svg_pairs_from_a_tgz_are_rendered_at_load_size(tmp_path, monkeypatch):
    files = {
        f"package/{side}/svg/{i}.svg": svg(c)
        for i in range(4)
        for side, c in (("black", "#000"), ("color", "#f00"))
    }
    tgz = write_tgz(tmp_path / "pkg.tgz", {**files, "package/README.md": b"hi"})
    settings = {
        "path": str(tgz),
        "layout": "folders",
        "a_dir": "package/black/svg",
        "b_dir": "package/color/svg",
    }
    dm = setup(**settings, resolution=8, load_size=12, holdout_every=2)
    a, b = dm.dataset[0]
    assert dm.train_names == ["0", "2"] and dm.test_names == ["1", "3"] and a.shape == (3, 12, 12)
    assert a[:, 0, 0].tolist() == [0, 0, 0] and b[:, 0, 0].tolist() == [255, 0, 0]
    assert a[:, 0, 11].tolist() == b[:, 0, 11].tolist() == [255, 255, 255]  # transparent -> white
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # not installed
    with pytest.raises(ConfigError, match=r'pip install "ganforge\[svg\]"'):
        setup(**settings, resolution=8)


# -- the presets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "direction", "batch", "shape", "load"),
    [
        ("paired", "AtoB", 1, (3, 256, 256), 286),
        ("facades", "BtoA", 1, (3, 256, 256), 286),
        ("maps", "AtoB", 1, (3, 256, 256), 286),
        ("edges2shoes", "AtoB", 4, (3, 256, 256), 286),
        ("emoji_styles", "AtoB", 16, (3, 64, 64), 72),
        ("openmoji", "AtoB", 16, (3, 64, 64), 72),
    ],
)
def test_presets_compose(tmp_path, name, direction, batch, shape, load):
    cfg = compose_config(
        [f"data={name}", f"paths.data_dir={tmp_path}", "seed=7"] + ["data.path=x"] * (name == "paired")
    )
    dm = instantiate(cfg.data)
    assert type(dm) is PairedDataModule and dm.direction == direction and dm.batch_size == batch
    assert dm.image_shape == shape and dm.load_size == load and dm.seed == 7
    assert dm.test_split == ("val" if name in ("maps", "edges2shoes") else "test")
    assert name == "paired" or dm.path.startswith(str(tmp_path))


def test_emoji_styles_missing_says_how_to_make_it(tmp_path):
    cfg = compose_config(["data=emoji_styles", f"paths.data_dir={tmp_path}"])
    with pytest.raises(DatasetNotFoundError) as err:
        instantiate(cfg.data).setup("fit")
    msg = str(err.value)
    assert f"looked for the file {tmp_path}/emoji64-google-twitter.zip" in msg
    assert "npm pack emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0" in msg
    assert f"move emoji64-google-twitter.zip to {tmp_path}/emoji64-google-twitter.zip" in msg


def facades_cfg(tmp_path: Path, *overrides: str):
    """``data=facades`` with ``tmp_path/data`` as the data folder."""
    return compose_config(
        ["data=facades", f"paths.data_dir={tmp_path}/data", f"paths.log_dir={tmp_path}/logs", *overrides]
    )


def test_facades_missing_and_offline_says_where_it_looked_and_what_failed(tmp_path, monkeypatch):
    calls = []

    def offline(url, filename):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        instantiate(facades_cfg(tmp_path).data).setup("fit")
    msg = str(err.value)
    assert (
        str(tmp_path / "data/facades/train") in msg
        and "Download failed: URLError" in msg
        and "no network" in msg
    )
    assert (
        calls == ["http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"] and "by hand" in msg
    )
    assert not list((tmp_path / "data").iterdir())  # no half download left behind
    with pytest.raises(DatasetNotFoundError, match="download=false"):
        instantiate(facades_cfg(tmp_path, "data.download=false").data).setup("fit")
    assert len(calls) == 1


def test_facades_download_is_unpacked_into_data_dir(tmp_path, monkeypatch):
    src = write(
        tmp_path / "src/facades",
        {f"{s}/{i}.png": side_by_side(i, 40, 20) for s in ("train", "test") for i in (1, 2)},
    )
    with tarfile.open(tmp_path / "facades.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="facades")
    monkeypatch.setattr(
        urllib.request, "urlretrieve", lambda url, to: shutil.copy(tmp_path / "facades.tar.gz", to)
    )
    data = tmp_path / "data"
    dm = instantiate(facades_cfg(tmp_path, "data.resolution=16", "data.load_size=18").data)
    dm.setup("fit")
    a, b = dm.dataset[0]
    assert (data / "facades/test/2.png").is_file() and [p.name for p in data.iterdir()] == ["facades"]
    assert a[:, 0, 0].tolist() == [200, 10, 0] and b[:, 0, 0].tolist() == [
        1,
        50,
        100,
    ]  # BtoA: labels -> photo


# -- the real offline data (../shared/datasets beside the repository) -------------------------------------


def reference(z: zipfile.ZipFile, name: str, size: int) -> torch.Tensor:
    """RGBA composited over white by hand, then resized like the datamodule."""
    x = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("RGBA"), np.float64)
    rgb = x[..., :3] * x[..., 3:] / 255 + 255 * (1 - x[..., 3:] / 255)
    t = torch.from_numpy(rgb.round().astype(np.uint8)).permute(2, 0, 1)[None]
    return resize_uint8(t, size)[0]


@pytest.mark.skipif(not EMOJI_ZIP.is_file(), reason=f"{EMOJI_ZIP} not available")
def test_real_emoji_styles(tmp_path):
    cfg = compose_config(
        ["data=emoji_styles", f"data.path={EMOJI_ZIP}", f"paths.log_dir={tmp_path}", "data.max_samples=64"]
    )
    dm = instantiate(cfg.data)
    dm.setup("fit")
    assert len(dm.dataset) == 64 and len(dm.test_names) == 3786 // 10
    assert not set(dm.train_names) & set(dm.test_names)
    with zipfile.ZipFile(EMOJI_ZIP) as z:
        for i in (0, 40):
            a, b = dm.dataset[i]
            name = dm.train_names[i]
            assert a.shape == b.shape == (3, 72, 72)
            assert (a.int() - reference(z, f"google/{name}.png", 72).int()).abs().max() <= 1
            assert (b.int() - reference(z, f"twitter/{name}.png", 72).int()).abs().max() <= 1
            other = reference(z, f"twitter/{dm.train_names[i + 1]}.png", 72)
            assert (b.float() - other.float()).abs().mean() > 5  # not some other emoji
    a, b = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert a.shape == b.shape == (16, 3, 64, 64) and a.dtype == torch.uint8
    ta, tb = dm.test_pairs(max_n=10)
    assert ta.shape == tb.shape == (10, 3, 64, 64) and int(ta[:, :, 0, 0].min()) == 255  # white corners


@pytest.mark.skipif(not OPENMOJI_TGZ.is_file(), reason=f"{OPENMOJI_TGZ} not available")
def test_real_openmoji_renders_only_what_is_used_and_caches_it(tmp_path, monkeypatch):
    overrides = ["data=openmoji", f"data.path={OPENMOJI_TGZ}", f"paths.log_dir={tmp_path}"]
    cfg = compose_config([*overrides, "data.max_samples=8", "data.batch_size=4", "data.resolution=32"])
    rendered = []
    render = paired.render_svg
    monkeypatch.setattr(paired, "render_svg", lambda data, size: rendered.append(size) or render(data, size))
    first = instantiate(cfg.data)
    first.setup("fit")
    assert len(first.dataset) == 8 and rendered == [36] * 16  # 32 * 286 / 256, 8 pairs, nothing else
    a, b = first.dataset[3]
    assert a.shape == b.shape == (3, 36, 36) and int(a.min()) < 60 and int(b[:, 0, 0].min()) == 255
    spread = lambda x: (x.float().max(0).values - x.float().min(0).values).mean()  # noqa: E731
    assert spread(a) < 2 < 10 < spread(b)  # black line art, coloured target
    assert len(first.test_names) == 4495 // 10

    monkeypatch.setattr(paired, "render_svg", lambda data, size: 1 / 0)  # the second run renders nothing
    again = instantiate(cfg.data)
    again.setup("fit")
    assert torch.equal(again.dataset.ab, first.dataset.ab) and again.train_names == first.train_names
    monkeypatch.setattr(paired, "render_svg", render)
    ta, tb = again.test_pairs(max_n=4)
    assert ta.shape == tb.shape == (4, 3, 32, 32)


def test_a_resumed_fit_sees_the_same_jittered_batches(tmp_path):
    import lightning as L

    noise = [np.random.RandomState(i).randint(0, 256, (12, 12, 3), dtype=np.uint8) for i in range(12)]
    root = write(tmp_path / "d", {f"{s}/{i}.png": png(x) for s in "AB" for i, x in enumerate(noise)})

    class Record(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w, self.seen = torch.nn.Parameter(torch.zeros(1)), []

        def training_step(self, batch, batch_idx):
            a, b = batch
            assert a.shape == b.shape == (4, 3, 8, 8) and torch.equal(a, b)
            self.seen.append(a.clone())
            return self.w * a.float().mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def fit(steps: int, ckpt: Path | None = None) -> tuple[Record, L.Trainer]:
        dm = PairedDataModule(path=str(root), layout="folders", holdout_every=0, resolution=8, batch_size=4)
        model = Record()
        trainer = L.Trainer(
            max_steps=steps,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
        return model, trainer

    straight = fit(7)[0].seen
    first, trainer = fit(4)
    trainer.save_checkpoint(tmp_path / "step4.ckpt")
    resumed = fit(7, tmp_path / "step4.ckpt")[0].seen
    assert len(resumed) == 3 and not torch.equal(straight[0], straight[3])  # (epochs of 3 batches)
    assert all(torch.equal(x, y) for x, y in zip(straight, first.seen + resumed, strict=True))
