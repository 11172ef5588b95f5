"""Datamodules on small fake trees in the real on-disk layouts, plus the real data available offline."""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from ganforge.data import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    InMemoryImages,
    MNISTDataModule,
)
from ganforge.data.image_folder import LazyImages
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError

REPO = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CIFAR_ZIP = REPO.parent / "shared/datasets/cifar10-jpeg.zip"


def batch_of(dm) -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup()
    return next(iter(dm.train_dataloader()))


# -- IDX (MNIST / Fashion-MNIST) ------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_idx(folder: Path, n_train: int = 40, n_test: int = 12, gz: bool = True) -> None:
    """Image ``i`` of a part is constant ``i`` (train) or ``100 + i`` (test); label ``i % 10``."""
    ext = ".gz" if gz else ""
    for part, n, offset in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = np.broadcast_to((offset + np.arange(n)).reshape(n, 1, 1), (n, 28, 28))
        write_idx(folder / f"{part}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte{ext}", np.arange(n) % 10)


@pytest.fixture
def no_system_fashion(monkeypatch, tmp_path):
    """Hide Debian's Fashion-MNIST so that 'not found' paths can be tested."""
    monkeypatch.setattr(FashionMNISTDataModule, "system_dirs", (str(tmp_path / "no-system-dir"),))


def test_idx_torchvision_layout_gz(tmp_path):
    make_idx(tmp_path / "FashionMNIST/raw")
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False, batch_size=8)
    dm.setup()
    assert isinstance(dm.dataset, InMemoryImages) and len(dm.dataset) == 40
    x, y = dm.dataset[13]
    assert x.dtype == torch.uint8 and x.shape == (1, 28, 28) and bool((x == 13).all())
    assert y.dtype == torch.int64 and int(y) == 3
    assert dm.num_classes == 10 and dm.class_names[0] == "T-shirt/top" and dm.class_names[9] == "Ankle boot"
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (8, 1, 28, 28) and xb.dtype == torch.uint8 and yb.shape == (8,)
    assert torch.equal(xb[:, 0, 0, 0].long() % 10, yb)  # images and labels stay paired after shuffling


@pytest.mark.parametrize(("split", "size", "first"), [("train", 40, 0), ("test", 12, 100), ("all", 52, 0)])
def test_idx_flat_raw_splits(tmp_path, split, size, first):
    make_idx(tmp_path, gz=False)
    dm = MNISTDataModule(root=str(tmp_path), download=False, split=split, batch_size=4)
    dm.setup()
    assert len(dm.dataset) == size and int(dm.dataset[0][0][0, 0, 0]) == first
    assert dm.class_names == [str(d) for d in range(10)]
    if split == "all":
        assert int(dm.dataset[40][0][0, 0, 0]) == 100  # test part follows the train part


def test_idx_resize_channels_max_samples(tmp_path):
    make_idx(tmp_path / "MNIST/raw")
    dm = MNISTDataModule(root=str(tmp_path), download=False, resolution=32, channels=3, max_samples=20)
    dm.batch_size = 16
    x, _ = batch_of(dm)
    assert len(dm.dataset) == 20 and x.shape == (16, 3, 32, 32)
    # Constant images stay exactly constant through the resize, and grey becomes 3 equal channels.
    assert torch.equal(x, x[:, :1, :1, :1].expand_as(x)) and int(x.max()) < 20


def test_idx_not_found_lists_paths(tmp_path, no_system_fashion):
    with pytest.raises(DatasetNotFoundError) as err:
        FashionMNISTDataModule(root=str(tmp_path), download=False).setup()
    msg = str(err.value)
    for looked in (tmp_path / "FashionMNIST/raw", tmp_path, tmp_path / "no-system-dir"):
        assert f"  {looked}\n" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=false" in msg
    assert "train-images-idx3-ubyte" in msg


def test_idx_download_failure_and_success(tmp_path, monkeypatch, no_system_fashion):
    from torchvision import datasets

    calls = []

    def offline(root, download):
        calls.append(root)
        raise RuntimeError("Name or service not known")

    monkeypatch.setattr(datasets, "FashionMNIST", offline)
    with pytest.raises(
        DatasetNotFoundError, match="Download failed: RuntimeError: Name or service not known"
    ):
        FashionMNISTDataModule(root=str(tmp_path), download=True).setup()
    assert calls == [str(tmp_path)]

    # download=False never calls the downloader.
    with pytest.raises(DatasetNotFoundError):
        FashionMNISTDataModule(root=str(tmp_path), download=False).setup()
    assert len(calls) == 1

    # After a successful download the files are picked up from torchvision's layout.
    monkeypatch.setattr(
        datasets, "FashionMNIST", lambda root, download: make_idx(Path(root) / "FashionMNIST/raw")
    )
    dm = FashionMNISTDataModule(root=str(tmp_path), download=True, batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert len(dm.dataset) == 40


def test_idx_corrupt_file(tmp_path):
    make_idx(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptImageError, match=r"train-images-idx3-ubyte\.gz"):
        MNISTDataModule(root=str(tmp_path), download=False).setup()


def test_batch_size_larger_than_dataset(tmp_path):
    make_idx(tmp_path)
    with pytest.raises(ConfigError, match="batch_size=64"):
        MNISTDataModule(root=str(tmp_path), download=False, batch_size=64).setup()


@pytest.mark.parametrize("bad", [-5, 0, 2.5])
def test_max_samples_must_be_a_positive_count(bad):
    with pytest.raises(ConfigError, match=rf"data\.max_samples={bad} .*positive whole number.*null"):
        MNISTDataModule(max_samples=bad)


def test_bad_options():
    with pytest.raises(ConfigError, match="split"):
        MNISTDataModule(split="val")
    with pytest.raises(ConfigError, match="cache"):
        ImageFolderDataModule(path="x", cache="disk")
    with pytest.raises(ConfigError, match="on_corrupt"):
        ImageFolderDataModule(path="x", on_corrupt="ignore")
    with pytest.raises(ConfigError, match="split"):
        CelebADataModule(split="validation")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
@pytest.mark.parametrize(("split", "size"), [("train", 60_000), ("test", 10_000)])
def test_real_fashion_mnist(tmp_path, split, size):
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False, split=split, batch_size=256)
    x, _ = batch_of(dm)
    assert len(dm.dataset) == size and x.shape == (256, 1, 28, 28) and x.dtype == torch.uint8
    labels = dm.dataset.labels
    assert torch.equal(torch.bincount(labels), torch.full((10,), size // 10))  # balanced classes
    images = dm.dataset.images
    assert int(images.max()) == 255 and int(images.min()) == 0 and 50 < images.float().mean() < 100


# -- CIFAR-10 ---------------------------------------------------------------------------------------


def make_cifar(folder: Path, per_batch: int = 4, n_test: int = 3, str_keys: bool = False) -> None:
    """Image ``i`` (counted over all batches) has planes R=i, G=50+i, B=200+i; label ``i % 10``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    names = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
    i = 0
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        idx = np.arange(i, i + n)
        planes = np.stack([idx, 50 + idx, 200 + idx], 1).astype(np.uint8)  # N x 3
        data = np.repeat(planes, 1024, axis=1)  # N x 3072, channel-major like the real files
        with open(folder / name, "wb") as f:
            pickle.dump({key("data"): data, key("labels"): [int(k) % 10 for k in idx]}, f)
        i += n
    classes = [
        c.encode() for c in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({key("label_names"): classes}, f)


@pytest.mark.parametrize(("split", "size"), [("train", 20), ("test", 3), ("all", 23)])
def test_cifar10_layout_and_splits(tmp_path, split, size):
    make_cifar(tmp_path / "cifar-10-batches-py")
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, split=split, batch_size=2)
    dm.setup()
    assert len(dm.dataset) == size
    x, y = dm.dataset[size - 1]
    i = size - 1 + (20 if split == "test" else 0)
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8
    assert [int(x[c, 5, 7]) for c in range(3)] == [i, 50 + i, 200 + i] and int(y) == i % 10
    assert dm.num_classes == 10 and dm.class_names[:2] == ["plane", "car"]


def test_cifar10_flat_str_keys_grey_resize(tmp_path):
    make_cifar(tmp_path, str_keys=True)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, resolution=16, channels=1, max_samples=8)
    dm.batch_size = 8
    x, _ = batch_of(dm)
    assert x.shape == (8, 1, 16, 16) and len(dm.dataset) == 8
    first = dm.dataset[3][0]
    assert bool((first == round(0.299 * 3 + 0.587 * 53 + 0.114 * 203)).all())


def test_cifar10_missing(tmp_path, monkeypatch):
    from torchvision import datasets

    calls = []
    monkeypatch.setattr(datasets, "CIFAR10", lambda *a, **k: calls.append(a) or 1 / 0)
    with pytest.raises(DatasetNotFoundError) as err:
        CIFAR10DataModule(root=str(tmp_path), download=False).setup()
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value) and "download=false" in str(err.value)
    assert not calls
    with pytest.raises(DatasetNotFoundError, match="Download failed: ZeroDivisionError"):
        CIFAR10DataModule(root=str(tmp_path), download=True).setup()
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("setting", "device", "pinned"),
    [
        ("auto", None, False),
        ("auto", "cpu", False),
        ("auto", "cuda", True),
        (False, "cuda", False),
        (True, "cpu", True),
    ],
)
def test_pin_memory_auto_pins_only_for_cuda_training(tmp_path, setting, device, pinned):
    from types import SimpleNamespace

    make_cifar(tmp_path / "cifar-10-batches-py")
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=2, pin_memory=setting)
    dm.setup()
    if device is not None:  # what the datamodule reads of a Trainer fitting on that device
        strategy = SimpleNamespace(root_device=torch.device(device))
        dm.trainer = SimpleNamespace(strategy=strategy, world_size=1, global_rank=0)
    assert dm.train_dataloader().pin_memory is pinned


def test_pin_memory_rejects_other_values(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.pin_memory='yes'.*auto, true or false"):
        CIFAR10DataModule(root=str(tmp_path), download=False, pin_memory="yes")


# -- image folders and zips -------------------------------------------------------------------------------


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def banded(w: int, h: int, center: tuple[int, int, int] = (0, 200, 0)) -> Image.Image:
    """``center`` colour on the centre square, red on the left and blue on the right of it."""
    a = np.zeros((h, w, 3), np.uint8)
    s = min(w, h)
    left = (w - s) // 2
    a[:, :left] = (255, 0, 0)
    a[:, left + s :] = (0, 0, 255)
    a[:, left : left + s] = center
    return Image.fromarray(a)


def class_files() -> dict[str, bytes]:
    """Two classes with assorted sizes, modes and extensions, plus files that must be ignored."""
    files = {}
    for i in range(6):
        files[f"cat/{i:04d}.png"] = png_bytes(banded(60 + 10 * i, 40, center=(0, 10 * i, 0)))
        files[f"dog/sub/{i:04d}.JPG"] = png_bytes(Image.new("L", (30, 30), 100 + i), "JPEG")
    files["dog/rgba.png"] = png_bytes(Image.new("RGBA", (16, 24), (10, 20, 30, 128)))
    files["dog/palette.bmp"] = png_bytes(Image.new("P", (16, 16), 3), "BMP")
    files["cat/notes.txt"] = b"not an image"
    files["cat/.hidden.png"] = b"editor debris"
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for folder in sorted({n.rsplit("/", 1)[0] + "/" for n in files if "/" in n}):
            z.writestr(folder, b"")  # directory entries, as zip tools write them
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture(params=["folder", "zip"])
def class_source(request, tmp_path) -> Path:
    if request.param == "folder":
        return write_tree(tmp_path / "imgs", class_files())
    return write_zip(tmp_path / "imgs.zip", class_files())


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_image_folder_labels_and_crop(class_source, cache):
    dm = ImageFolderDataModule(path=str(class_source), labels=True, cache=cache, resolution=20, batch_size=4)
    dm.setup()
    assert isinstance(dm.dataset, InMemoryImages if cache == "memory" else LazyImages)
    assert len(dm.dataset) == 14 and dm.class_names == ["cat", "dog"] and dm.num_classes == 2
    labels = [int(dm.dataset[i][1]) for i in range(14)]
    assert labels == [0] * 6 + [1] * 8  # cat/*, then dog/* sorted (sub/ files come after the loose ones)
    for i in range(6):  # the centre square was kept: no red/blue bands, exact green through the resize
        x = dm.dataset[i][0]
        assert x.shape == (3, 20, 20) and x.dtype == torch.uint8
        assert x[0].max() == 0 and x[2].max() == 0 and bool((x[1] == 10 * i).all())
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 20, 20) and x.dtype == torch.uint8 and y.dtype == torch.int64


def test_image_folder_memory_equals_lazy_and_grey(class_source):
    kw = {"path": str(class_source), "resolution": 12, "channels": 1, "batch_size": 2}
    mem, lazy = ImageFolderDataModule(cache="memory", **kw), ImageFolderDataModule(cache="none", **kw)
    mem.setup()
    lazy.setup()
    assert len(mem.dataset) == len(lazy.dataset) == 14
    for i in range(14):
        assert torch.equal(mem.dataset[i][0], lazy.dataset[i][0]) and int(mem.dataset[i][1]) == -1
        assert mem.dataset[i][0].shape == (1, 12, 12)
    assert abs(int(mem.dataset[8][0].float().mean()) - 100) <= 2  # grey JPEG, value 100 (+/- JPEG error)


def test_image_folder_stretch_and_crop_size(tmp_path):
    write_tree(tmp_path, {"a.png": png_bytes(banded(60, 20))})
    dm = ImageFolderDataModule(path=str(tmp_path), center_crop=False, resolution=6, batch_size=1)
    dm.setup()
    x = dm.dataset[0][0]
    assert x[:, :, 0].tolist() == [[255] * 6, [0] * 6, [0] * 6]  # stretched: red band on the left
    assert x[:, :, -1].tolist() == [[0] * 6, [0] * 6, [255] * 6]  # blue band on the right

    a = np.zeros((80, 100, 3), np.uint8)
    a[30:50, 40:60] = 255  # white 20x20 centre
    write_tree(tmp_path / "c", {"b.png": png_bytes(Image.fromarray(a))})
    dm = ImageFolderDataModule(path=str(tmp_path / "c"), crop_size=20, resolution=10, batch_size=1)
    dm.setup()
    assert bool((dm.dataset[0][0] == 255).all())


def test_image_folder_zip_subdir(tmp_path):
    files = {}
    for split, n in (("train", 3), ("test", 2)):
        for c in ("b_class", "a_class"):
            for i in range(n):
                files[f"{split}/{c}/{i:04d}.jpg"] = png_bytes(Image.new("RGB", (8, 8), (i, 0, 0)), "JPEG")
    path = write_zip(tmp_path / "data.zip", files)
    for split, n in (("train", 6), ("test", 4)):
        dm = ImageFolderDataModule(path=str(path), subdir=split, labels=True, resolution=8, batch_size=2)
        dm.setup()
        assert len(dm.dataset) == n and dm.class_names == ["a_class", "b_class"]
    with pytest.raises(DatasetNotFoundError, match="subdir='val'"):
        ImageFolderDataModule(path=str(path), subdir="val").setup()
    # Without subdir the split folders would become the classes; files at the root cannot be labelled.
    with pytest.raises(ConfigError, match="labels=false"):
        ImageFolderDataModule(path=str(tmp_path / "data.zip"), subdir="train/a_class", labels=True).setup()


def test_image_folder_lazy_zip_with_workers(tmp_path):
    files = {f"c{i % 3}/{i:03d}.png": png_bytes(Image.new("RGB", (10, 10), (i, i, i))) for i in range(24)}
    path = write_zip(tmp_path / "w.zip", files)
    dm = ImageFolderDataModule(
        path=str(path), labels=True, cache="none", resolution=10, batch_size=8, num_workers=2
    )
    dm.setup()
    seen = []
    for x, y in dm.train_dataloader():  # forked workers each open the zip themselves
        assert x.shape == (8, 3, 10, 10)
        seen += [(int(v), int(c)) for v, c in zip(x[:, 0, 0, 0], y, strict=True)]
    assert sorted(seen) == sorted((i, i % 3) for i in range(24))


def test_image_folder_cache_auto(tmp_path):
    write_tree(tmp_path, {f"{i}.png": png_bytes(Image.new("RGB", (8, 8))) for i in range(4)})
    small = ImageFolderDataModule(path=str(tmp_path), resolution=8, batch_size=1)
    small.setup()
    assert isinstance(small.dataset, InMemoryImages)
    big = ImageFolderDataModule(path=str(tmp_path), resolution=8, batch_size=1, memory_limit_mb=0.0001)
    big.setup()
    assert isinstance(big.dataset, LazyImages)


def test_image_folder_max_samples_spans_classes(class_source):
    dm = ImageFolderDataModule(path=str(class_source), labels=True, max_samples=4, resolution=8, batch_size=2)
    dm.setup()
    assert len(dm.dataset) == 4 and {int(dm.dataset[i][1]) for i in range(4)} == {0, 1}


def corrupt_tree(root: Path) -> Path:
    good = png_bytes(Image.new("RGB", (8, 8), (1, 2, 3)), "JPEG")
    files = {f"ok{i}.jpg": good for i in range(5)}
    files["bad_garbage.png"] = b"\x89PNG\r\n\x1a\n this is not a png"
    files["bad_truncated.jpg"] = png_bytes(banded(64, 64), "JPEG")[:300]
    files["bad_truncated.png"] = png_bytes(Image.fromarray(np.random.randint(0, 255, (32, 32, 3), np.uint8)))[
        :500
    ]
    return write_tree(root, files)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_corrupt_images(tmp_path, caplog, cache):
    root = corrupt_tree(tmp_path / "c")
    with pytest.raises(CorruptImageError, match=r"bad_garbage\.png") as err:
        ImageFolderDataModule(path=str(root), cache=cache, resolution=8, batch_size=1).setup()
    assert "on_corrupt=skip" in str(err.value) and "3 of 8" in str(err.value)

    dm = ImageFolderDataModule(path=str(root), cache=cache, on_corrupt="skip", resolution=8, batch_size=1)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert len(dm.dataset) == 5 and all(int(dm.dataset[i][0][2, 0, 0]) < 10 for i in range(5))
    assert "skipped 3 unreadable image(s) of 8" in caplog.text and "bad_truncated.jpg" in caplog.text


def test_decoded_images_are_reused_by_the_next_run_until_files_or_settings_change(
    class_source, tmp_path, monkeypatch, caplog
):
    from ganforge.data import image_folder

    cache = tmp_path / "decoded"

    def setup(**kwargs) -> ImageFolderDataModule:
        settings = {"path": str(class_source), "labels": True, "resolution": 16, "batch_size": 2}
        dm = ImageFolderDataModule(**{**settings, "decoded_cache": str(cache), **kwargs})
        dm.setup()
        return dm

    first = setup()
    assert len(list(cache.iterdir())) == 1
    decode = image_folder.decode_image
    monkeypatch.setattr(image_folder, "decode_image", lambda *a, **k: 1 / 0)  # nothing may be decoded
    with caplog.at_level(logging.INFO):
        again = setup()
    assert "decoded earlier" in caplog.text
    assert torch.equal(again.dataset.images, first.dataset.images)
    assert torch.equal(again.dataset.labels, first.dataset.labels) and again.num_classes == 2
    monkeypatch.setattr(image_folder, "decode_image", decode)

    setup(resolution=8)  # other settings or files: another cache file
    assert len(setup(max_samples=4).dataset) == 4 and len(list(cache.iterdir())) == 3
    if class_source.is_dir():  # one image edited: decoded afresh, the new pixels are used
        (class_source / "cat/0000.png").write_bytes(png_bytes(Image.new("RGB", (40, 40), (250, 250, 250))))
    else:
        write_zip(
            class_source, {**class_files(), "cat/0000.png": png_bytes(Image.new("RGB", (40, 40), "white"))}
        )
    changed = setup()
    assert int(changed.dataset.images[0].min()) >= 249 and len(list(cache.iterdir())) == 4


def test_decoded_cache_damage_means_decoding_again_and_skips_are_remembered(tmp_path, caplog):
    root, cache = corrupt_tree(tmp_path / "c"), tmp_path / "decoded"
    settings = {"path": str(root), "on_corrupt": "skip", "resolution": 8, "batch_size": 1}
    first = ImageFolderDataModule(**settings, decoded_cache=str(cache))
    first.setup()
    (file,) = cache.iterdir()
    with caplog.at_level(logging.WARNING):
        again = ImageFolderDataModule(**settings, decoded_cache=str(cache))
        again.setup()
    assert (
        len(again.dataset) == 5 and "skipped 3 unreadable image(s) of 8" in caplog.text
    )  # as the first time
    with pytest.raises(CorruptImageError, match="3 of 8"):  # on_corrupt=fail still fails on the cached run
        ImageFolderDataModule(**{**settings, "on_corrupt": "fail"}, decoded_cache=str(cache)).setup()

    file.write_bytes(file.read_bytes()[:100])  # truncated
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        repaired = ImageFolderDataModule(**settings, decoded_cache=str(cache))
        repaired.setup()
    assert "is unreadable" in caplog.text and "decoding again" in caplog.text
    assert torch.equal(repaired.dataset.images, first.dataset.images)
    assert file.stat().st_size > 100  # written again


def test_all_corrupt_is_an_error(tmp_path):
    write_tree(tmp_path, {"a.png": b"junk", "b.jpg": b"junk"})
    with pytest.raises(CorruptImageError, match="none of the 2 images"):
        ImageFolderDataModule(path=str(tmp_path), on_corrupt="skip", batch_size=1).setup()


def test_image_folder_missing_and_empty(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetNotFoundError, match=f"{missing} does not exist.*folder or .zip of images"):
        ImageFolderDataModule(path=str(missing)).setup()
    (tmp_path / "empty/sub").mkdir(parents=True)
    (tmp_path / "empty/readme.txt").write_text("no images here")
    with pytest.raises(DatasetNotFoundError, match=r"no images found in .*empty"):
        ImageFolderDataModule(path=str(tmp_path / "empty")).setup()


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason=f"{CIFAR_ZIP} not available")
def test_real_cifar10_jpeg_zip():
    dm = ImageFolderDataModule(
        path=str(CIFAR_ZIP),
        subdir="train",
        labels=True,
        cache="none",
        max_samples=500,
        resolution=32,
        batch_size=50,
    )
    x, _ = batch_of(dm)
    assert dm.num_classes == 10 and dm.class_names[0] == "airplane" and dm.class_names[-1] == "truck"
    counts = torch.bincount(dm.dataset.labels, minlength=10)
    assert len(dm.dataset) == 500 and int(counts.min()) >= 45  # evenly spread over the class folders
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and 40 < x.float().mean() < 200


# -- CelebA -----------------------------------------------------------------------------------------------


def face(i: int) -> bytes:
    """178x218 like aligned CelebA: a flat 140x140 centre (value 60 + 10 i) in a black frame."""
    a = np.zeros((218, 178, 3), np.uint8)
    a[39:179, 19:159] = 60 + 10 * i
    return png_bytes(Image.fromarray(a), "JPEG")


def make_celeba(root: Path, n: int = 10, partition: bool = True) -> None:
    base = root / "celeba"
    write_tree(base / "img_align_celeba", {f"{i + 1:06d}.jpg": face(i) for i in range(n)})
    if partition:  # 6 train, 2 valid, 2 test
        parts = [0] * 6 + [1] * 2 + [2] * 2
        (base / "list_eval_partition.txt").write_text(
            "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(parts))
        )


@pytest.mark.parametrize(
    ("split", "size", "first"), [("train", 6, 0), ("valid", 2, 6), ("test", 2, 8), ("all", 10, 0)]
)
def test_celeba_partition(tmp_path, split, size, first):
    make_celeba(tmp_path)
    dm = CelebADataModule(root=str(tmp_path), split=split, download=False, batch_size=2)
    x, y = batch_of(dm)
    assert len(dm.dataset) == size and x.shape == (2, 3, 64, 64) and bool((y == -1).all())
    img = dm.dataset[0][0].float()
    # The 140 px crop removed the black frame: flat centre colour everywhere, up to JPEG error.
    assert (img - (60 + 10 * first)).abs().max() <= 6


def test_celeba_without_partition_and_by_path(tmp_path):
    make_celeba(tmp_path, n=4, partition=False)
    with pytest.raises(DatasetNotFoundError, match=r"list_eval_partition\.txt"):
        CelebADataModule(root=str(tmp_path), download=False).setup()
    dm = CelebADataModule(root=str(tmp_path), split="all", download=False, batch_size=2, resolution=32)
    dm.setup()
    assert len(dm.dataset) == 4 and dm.dataset[0][0].shape == (3, 32, 32)

    faces = tmp_path / "celeba/img_align_celeba"
    archive = write_zip(tmp_path / "faces.zip", {f"img/{p.name}": p.read_bytes() for p in faces.iterdir()})
    for path in (faces, archive):
        dm = CelebADataModule(root=str(tmp_path / "unused"), path=str(path), cache="none", batch_size=2)
        dm.setup()
        assert len(dm.dataset) == 4 and (dm.dataset[3][0].float() - 90).abs().max() <= 6


def test_celeba_missing(tmp_path, monkeypatch):
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise RuntimeError("offline")

    monkeypatch.setattr(datasets, "CelebA", offline)
    for download, hint in ((False, "download=false"), (True, "Download failed: RuntimeError: offline")):
        with pytest.raises(DatasetNotFoundError) as err:
            CelebADataModule(root=str(tmp_path), download=download).setup()
        msg = str(err.value)
        assert str(tmp_path / "celeba/img_align_celeba") in msg and hint in msg and "data.path" in msg
        # torchvision's own hint (pip install gdown) needs network: the way without it is spelled out
        assert "With network access: `pip install gdown`" in msg
        offline = f"without network access: download them on a machine that has it, copy them to {tmp_path}"
        assert offline in msg


# -- Hydra configs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "shape"),
    [
        ("fashion_mnist", FashionMNISTDataModule, (1, 28, 28)),
        ("mnist", MNISTDataModule, (1, 28, 28)),
        ("cifar10", CIFAR10DataModule, (3, 32, 32)),
        ("celeba", CelebADataModule, (3, 64, 64)),
        ("image_folder", ImageFolderDataModule, (3, 64, 64)),
    ],
)
def test_hydra_configs_instantiate(tmp_path, name, cls, shape):
    data = OmegaConf.load(REPO / "conf/data" / f"{name}.yaml")
    paths = {"data_dir": str(tmp_path), "log_dir": str(tmp_path / "logs")}
    cfg = OmegaConf.create({"paths": paths, "seed": 7, "data": data})
    if name == "image_folder":
        cfg.data.path = str(tmp_path)
    dm = instantiate(cfg.data)
    assert type(dm) is cls and dm.image_shape == shape and dm.seed == 7
    assert getattr(dm, "root", tmp_path) == tmp_path
    assert getattr(dm, "decoded_cache", None) in (None, str(tmp_path / "logs/cache/decoded"))


def test_celeba64_dcgan_preset_trains_on_a_faces_folder(compose_cfg, tmp_path):
    from ganforge.train import train

    make_celeba(tmp_path, n=8, partition=False)
    faces = tmp_path / "celeba/img_align_celeba"
    cfg = compose_cfg(
        "experiment=celeba64_dcgan", f"data.path={faces}", "data.batch_size=4", "trainer.max_steps=2"
    )
    assert cfg.model.generator._target_.endswith("DCGANGenerator") and cfg.model.optimizer_g.lr == 2e-4
    result = train(cfg)
    assert result["trainer"].global_step == 2
    assert result["model"].sample().shape == (64, 3, 64, 64)
