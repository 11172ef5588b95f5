"""CIFAR-10 from torchvision's on-disk layout (``cifar-10-batches-py`` pickles), decoded into memory.

Own reader: torchvision's ``CIFAR10`` md5-checks every file, which rejects re-packed or test copies;
torchvision is only used to download. Like torchvision, this unpickles the files: only use trusted copies.
"""

from __future__ import annotations

import logging
import pickle
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

FOLDER = "cifar-10-batches-py"
SPLITS = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
    "all": (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _unpickle(path: Path) -> dict[Any, Any]:
    """Load one CIFAR pickle; keys are bytes (Python 2 pickles) or str (re-saved ones)."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # truncated or not a pickle
        raise CorruptImageError(
            f"cannot read {path} ({type(e).__name__}: {e}); delete it and get it again"
        ) from e
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


class CIFAR10DataModule(LocalDataModule):
    """CIFAR-10: 60k RGB 32x32 images of 10 classes.

    Args:
        root: data directory; searched as ``root/cifar-10-batches-py`` (torchvision's layout), then ``root``.
        download: when the files are nowhere, try torchvision's downloader into ``root``.
        split: ``train`` (50k), ``test`` (10k) or ``all``.
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...).
    """

    name = "cifar10"
    splits = SPLITS

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        split: str = "train",
        resolution: int = 32,
        channels: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, download, split, resolution=resolution, channels=channels, **kwargs)

    def search_dirs(self) -> list[Path]:
        return [self.root / FOLDER, self.root]

    def _find(self) -> Path | None:
        for folder in self.search_dirs():
            if all((folder / f).is_file() for f in SPLITS[self.split]):
                return folder
        return None

    def _locate(self) -> Path:
        download = torchvision_download("CIFAR10", self.root) if self.download else None
        found, tried = find_or_download(self._find, download)
        if found is not None:
            return found
        looked = "\n  ".join(str(d) for d in self.search_dirs())
        raise DatasetNotFoundError(
            f"CIFAR-10 ({self.split} split) not found: no folder holds {', '.join(SPLITS[self.split])}. "
            f"Looked in:\n  {looked}\n{tried}To get it: run with data.download=true where there is network "
            f"access, or extract cifar-10-python.tar.gz (python version) into {self.root}"
        )

    def prepare_data(self) -> None:
        self._locate()  # download once (rank 0) before the processes read it

    def load_dataset(self) -> Dataset:
        folder = self._locate()
        images, labels = [], []
        for name in SPLITS[self.split]:
            batch = _unpickle(folder / name)
            x = np.asarray(batch.get("data"), dtype=np.uint8)
            y = np.asarray(batch.get("labels"), dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
                raise CorruptImageError(
                    f"{folder / name} holds data {x.shape} and labels {y.shape}, expected N x 3072 and N; "
                    "delete it and get it again"
                )
            images.append(torch.from_numpy(x.reshape(-1, 3, 32, 32)))
            labels.append(torch.from_numpy(y))
        meta = folder / "batches.meta"
        names = _unpickle(meta).get("label_names", CLASSES) if meta.is_file() else CLASSES
        self.class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        self.num_classes = len(self.class_names)
        x = torch.cat(images)[: self.max_samples]  # decode only what is kept
        y = torch.cat(labels)[: self.max_samples]
        log.info("CIFAR-10: %d images from %s", len(x), folder)
        return InMemoryImages(convert_channels(resize_uint8(x, self.resolution), self.channels), y)
