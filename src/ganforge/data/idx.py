"""MNIST and Fashion-MNIST from their IDX files (``.gz`` or raw), decoded straight into memory.

Own reader rather than torchvision's dataset classes, so that files found outside torchvision's layout
(a flat folder, Debian's ``dataset-fashion-mnist`` package) work too; torchvision is only used to download.
"""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ganforge.data.base import (
    InMemoryImages,
    LocalDataModule,
    convert_channels,
    find_or_download,
    resize_uint8,
    torchvision_download,
)
from ganforge.errors import CorruptImageError, DatasetNotFoundError

log = logging.getLogger(__name__)

SPLITS = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (``.gz`` or raw) into a ``uint8`` tensor of its shape."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise CorruptImageError(f"cannot read {path} ({e}); delete it and get it again") from e
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or ndim == 0:
        raise CorruptImageError(f"{path} is not an IDX file of unsigned bytes; delete it and get it again")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise CorruptImageError(
            f"{path} holds {body.size} bytes of data, its header says shape {shape}; "
            "the file is truncated or damaged: delete it and get it again"
        )
    return torch.from_numpy(body.reshape(shape).copy())


def _find_file(folder: Path, stem: str) -> Path | None:
    """``train-images-idx3-ubyte`` (or ``train-images.idx3-ubyte``), raw preferred over ``.gz``."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


class _IDXDataModule(LocalDataModule):
    """Shared reader of the MNIST family. Subclasses set the class attributes.

    Args:
        root: data directory; searched as ``root/<folder>/raw`` (torchvision's layout), then ``root``.
        download: when the files are nowhere, try torchvision's downloader into ``root``.
        split: ``train`` (60k), ``test`` (10k) or ``all``.
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...).
    """

    folder = ""  # torchvision's folder name under root
    splits = SPLITS
    pretty = ""
    classes: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()  # OS packages that ship the files
    install_hint = ""

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        split: str = "train",
        resolution: int = 28,
        channels: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, download, split, resolution=resolution, channels=channels, **kwargs)

    def search_dirs(self) -> list[Path]:
        return [self.root / self.folder / "raw", self.root, *map(Path, self.system_dirs)]

    def _find(self) -> dict[str, tuple[Path, Path]] | None:
        """First folder holding images+labels of every part of the split."""
        for folder in self.search_dirs():
            found = {}
            for part in SPLITS[self.split]:
                images = _find_file(folder, f"{part}-images-idx3-ubyte")
                labels = _find_file(folder, f"{part}-labels-idx1-ubyte")
                if images is None or labels is None:
                    break
                found[part] = (images, labels)
            else:
                return found
        return None

    def _locate(self) -> dict[str, tuple[Path, Path]]:
        download = torchvision_download(self.folder, self.root) if self.download else None
        found, tried = find_or_download(self._find, download)
        if found is not None:
            return found
        parts = SPLITS[self.split]
        files = ", ".join(
            f"{p}-{k}-idx{n}-ubyte[.gz]" for p in parts for k, n in (("images", 3), ("labels", 1))
        )
        looked = "\n  ".join(str(d) for d in self.search_dirs())
        raise DatasetNotFoundError(
            f"{self.pretty} ({self.split} split) not found: no folder holds {files}. Looked in:\n  {looked}\n"
            f"{tried}To get it: {self.install_hint}run with data.download=true where there is network "
            f"access, or put the IDX files (.gz or raw) in {self.root / self.folder / 'raw'}"
        )

    def prepare_data(self) -> None:
        self._locate()  # download once (rank 0) before the processes read it

    def load_dataset(self) -> Dataset:
        images, labels = [], []
        for part, (image_file, label_file) in self._locate().items():
            x, y = read_idx(image_file), read_idx(label_file)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise CorruptImageError(
                    f"{image_file} (shape {tuple(x.shape)}) and {label_file} (shape {tuple(y.shape)}) "
                    f"do not form a {part} set of images and labels; delete them and get them again"
                )
            images.append(x)
            labels.append(y)
            log.info("%s: %d images from %s", self.pretty, len(x), image_file)
        x = torch.cat(images)[: self.max_samples].unsqueeze(1)  # decode only what is kept
        y = torch.cat(labels)[: self.max_samples].long()
        self.class_names = list(self.classes)
        self.num_classes = len(self.classes)
        if len(y) and int(y.max()) >= self.num_classes:
            raise CorruptImageError(f"{self.pretty} labels go up to {int(y.max())}, expected < 10")
        return InMemoryImages(convert_channels(resize_uint8(x, self.resolution), self.channels), y)


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST: 70k grey 28x28 images of 10 clothing classes."""

    name = "fashion_mnist"
    folder = "FashionMNIST"
    pretty = "Fashion-MNIST"
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    install_hint = "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "


class MNISTDataModule(_IDXDataModule):
    """MNIST: 70k grey 28x28 handwritten digits."""

    name = "mnist"
    folder = "MNIST"
    pretty = "MNIST"
    classes = tuple(str(d) for d in range(10))
