"""CelebA aligned faces: torchvision's layout with its official partition, or any folder/zip of faces.

Own reader: torchvision's ``CelebA`` md5-checks its text files and needs all the attribute files, which a
GAN does not use; torchvision is only used to download.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from ganforge.data.base import find_or_download, torchvision_download
from ganforge.data.image_folder import ImageFolderDataModule, ImageSource, is_image_file
from ganforge.errors import ConfigError, DatasetNotFoundError

log = logging.getLogger(__name__)

SPLITS = {"train": "0", "valid": "1", "test": "2", "all": None}


def read_partition(path: Path) -> dict[str, str]:
    """``{file name: partition}`` from ``list_eval_partition.txt`` (or Kaggle's ``.csv`` with a header)."""
    out = {}
    for line in path.read_text().splitlines():
        fields = re.split(r"[,\s]+", line.strip())
        if len(fields) == 2 and fields[1] in ("0", "1", "2"):
            out[fields[0]] = fields[1]
    return out


class CelebADataModule(ImageFolderDataModule):
    """CelebA: 202,599 aligned 178x218 face images, center-cropped then resized.

    Args:
        root: data directory holding ``celeba/img_align_celeba/*.jpg`` and
            ``celeba/list_eval_partition.txt`` (torchvision's layout).
        path: instead, any folder or ``.zip`` of aligned faces; then every image is used.
        split: ``train`` (162,770), ``valid`` (19,867), ``test`` (19,962) or ``all``; only with ``root``.
        download: when ``root`` lacks the files, try torchvision's downloader (Google Drive).
        crop_size: center crop in pixels before resizing; 140 keeps the face, 178 the full width.
        **kwargs: ``ImageFolderDataModule`` arguments (cache, on_corrupt, subdir, ...) and
            ``GANDataModule`` ones (batch_size, num_workers, seed, max_samples, ...).
    """

    name = "celeba"

    def __init__(
        self,
        root: str = "data",
        path: str | None = None,
        split: str = "train",
        download: bool = True,
        crop_size: int | None = 140,
        resolution: int = 64,
        channels: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path=path, crop_size=crop_size, resolution=resolution, channels=channels, labels=False, **kwargs
        )
        if split not in SPLITS:
            raise ConfigError(f"data.split={split!r} is not one of {', '.join(SPLITS)}")
        self.root = Path(root).expanduser()
        self.split = split
        self.download = download

    def _files(self) -> tuple[Path, Path | None]:
        """Image folder and partition file of torchvision's layout (also Kaggle's nested variant)."""
        base = self.root / "celeba"
        images = base / "img_align_celeba"
        if (images / "img_align_celeba").is_dir():
            images = images / "img_align_celeba"
        parts = [base / "list_eval_partition.txt", base / "list_eval_partition.csv"]
        return images, next((p for p in parts if p.is_file()), None)

    def _ready(self) -> bool:
        images, partition = self._files()
        return images.is_dir() and (partition is not None or self.split == "all")

    def make_source(self) -> ImageSource:
        if self.path is not None:
            return ImageSource(self.path, self.subdir)
        download = torchvision_download("CelebA", self.root, split="all") if self.download else None
        ready, tried = find_or_download(lambda: self._ready() or None, download)
        images, partition = self._files()
        if not ready:
            base = self.root / "celeba"
            part = f" and {base}/list_eval_partition.txt (for split={self.split})"
            # torchvision's own hint, "pip install gdown", helps only where Google Drive can be reached
            raise DatasetNotFoundError(
                f"CelebA not found: looked for {images}/*.jpg{part if self.split != 'all' else ''}.\n"
                f"{tried}To get it: the aligned images (img_align_celeba/) and list_eval_partition.txt "
                f"belong under {base}. With network access: `pip install gdown` and keep data.download=true "
                "(torchvision fetches them from Google Drive); without network access: download them on a "
                f"machine that has it, copy them to {base}. Or set data.path to a folder or .zip of aligned "
                "face images"
            )
        present = {f for f in os.listdir(images) if is_image_file(f)}
        if partition is None:
            names = sorted(present)
        else:
            wanted = SPLITS[self.split]
            listed = [f for f, p in read_partition(partition).items() if wanted is None or p == wanted]
            names = [f for f in listed if f in present]
            if len(names) < len(listed):
                log.warning(
                    "CelebA: %d of the %d %s images listed in %s are missing from %s",
                    len(listed) - len(names),
                    len(listed),
                    self.split,
                    partition,
                    images,
                )
        if not names:
            raise DatasetNotFoundError(
                f"CelebA: no {self.split} images in {images} (partition file: {partition}); put the aligned "
                "images there, or set data.path to a folder or .zip of aligned face images"
            )
        return ImageSource(images, names=names)
