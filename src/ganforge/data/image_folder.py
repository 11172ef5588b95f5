"""Images from a folder or a ``.zip`` (optionally with class subfolders), decoded up front or lazily.

The helpers here (``ImageSource``, ``decode_image``, ``open_image``, ``check_image``) are shared with
``celeba.py`` and ``paired.py``.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from zipfile import BadZipFile, ZipFile

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ganforge.data import decoded_cache
from ganforge.data.base import GANDataModule, InMemoryImages
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CACHE_MODES = ("auto", "memory", "none")
ON_CORRUPT = ("skip", "fail")


def is_image_file(name: str) -> bool:
    parts = name.split("/")
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)  # macOS zip debris, dotfiles
    return not hidden and name.lower().endswith(IMAGE_EXTENSIONS)


class ImageSource:
    """Image files under ``path`` (a folder or a ``.zip``) and below ``subdir``, in sorted order.

    ``names`` are ``/``-separated and relative to ``path/subdir``; pass them to skip listing. A zip is
    opened lazily, once per process and thread: a ``ZipFile`` inherited across ``fork`` gives corrupt
    reads, and one shared by the decoding threads gave "Bad CRC-32" and "Overlapped entries" for ~18%
    of CIFAR-10's test images on a 16-core machine's Python 3.12.
    """

    def __init__(self, path: str | Path, subdir: str | None = None, names: list[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self.subdir = (subdir or "").strip("/")
        self.is_zip = self.path.is_file() and self.path.suffix.lower() == ".zip"
        self._zips = threading.local()
        self._zips_pid = os.getpid()
        self.names = sorted(names) if names is not None else self._list()

    @property
    def prefix(self) -> str:
        return f"{self.subdir}/" if self.subdir else ""

    def where(self, name: str = "") -> str:
        """Human-readable location of ``name`` (or of the source itself) for messages."""
        if self.is_zip:
            return f"{self.path}:{self.prefix}{name}" if self.prefix or name else str(self.path)
        return str(self.path / self.subdir / name)

    def _zipfile(self) -> ZipFile:
        if self._zips_pid != os.getpid():
            self._zips, self._zips_pid = threading.local(), os.getpid()
        z = getattr(self._zips, "zip", None)
        if z is None:
            z = self._zips.zip = ZipFile(self.path)  # closed with its thread
        return z

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_zips": None, "_zips_pid": -1}  # reopened in the worker process

    def _list(self) -> list[str]:
        expected = "a folder or .zip of images (" + "/".join(e[1:] for e in IMAGE_EXTENSIONS) + ")"
        if not self.path.exists():
            raise DatasetNotFoundError(f"data.path={self.path} does not exist; expected {expected}")
        if self.is_zip:
            try:
                entries = self._zipfile().namelist()
            except BadZipFile as e:
                raise DatasetNotFoundError(f"{self.path} is not a readable zip ({e}); re-create it") from e
            if self.prefix:
                entries = [n[len(self.prefix) :] for n in entries if n.startswith(self.prefix)]
        elif self.path.is_dir():
            root = self.path / self.subdir
            entries = []
            if root.is_dir():
                for d, _, files in os.walk(root, followlinks=True):
                    rel = Path(d).relative_to(root).as_posix()
                    entries += [f if rel == "." else f"{rel}/{f}" for f in files]
        else:
            raise DatasetNotFoundError(f"data.path={self.path} is a file, not {expected}")
        names = sorted(n for n in entries if is_image_file(n))
        if not names:
            hint = f"; check data.subdir={self.subdir!r}" if self.subdir else ""
            raise DatasetNotFoundError(f"no images found in {self.where()}: expected {expected}{hint}")
        return names

    def fingerprint(self, names: list[str]) -> str:
        """Changes when any of ``names`` (or the zip) is replaced, edited or touched."""
        files = None if self.is_zip else [self.path / self.subdir / n for n in names]
        full_names = [self.prefix + n for n in names]
        return decoded_cache.source_fingerprint(self.path, self.is_zip, files, full_names)

    def read(self, name: str) -> bytes:
        if self.is_zip:
            return self._zipfile().read(self.prefix + name)
        return (self.path / self.subdir / name).read_bytes()


def decode_image(
    data: bytes, channels: int, resolution: int, center_crop: bool = True, crop_size: int | None = None
) -> torch.Tensor:
    """Decode to ``uint8 [C, resolution, resolution]``: optional center crop of ``crop_size`` pixels,
    then (``center_crop``) a center square on the short side, then an antialiased bilinear resize."""
    img = open_image(data, channels)
    w, h = img.size
    if crop_size is not None and (w > crop_size or h > crop_size):
        cw, ch = min(w, crop_size), min(h, crop_size)
        left, top = (w - cw) // 2, (h - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
        w, h = img.size
    if center_crop and w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)  # antialiased when shrinking
    return image_tensor(img)


def open_image(data: bytes, channels: int, background: int | None = None) -> Image.Image:
    """Decode into mode ``L`` (``channels=1``) or ``RGB``. Transparency is dropped, or with ``background``
    (a grey level) composited over it: RGBA emoji have arbitrary colours under their transparent pixels."""
    img = Image.open(io.BytesIO(data))
    if img.mode == "P":
        img = img.convert("RGBA")  # palette transparency is only handled via RGBA
    if background is not None and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info):
        under = Image.new("RGBA", img.size, (background, background, background, 255))
        img = Image.alpha_composite(under, img.convert("RGBA"))
    return img.convert("L" if channels == 1 else "RGB")


def image_tensor(img: Image.Image) -> torch.Tensor:
    """``uint8 [C, H, W]`` of an ``L`` or ``RGB`` image."""
    x = torch.from_numpy(np.array(img))
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1).contiguous()


def check_image(data: bytes) -> None:
    """Cheap integrity check; raises on a corrupt file. ``verify`` alone misses truncated JPEGs,
    so JPEGs are entropy-decoded at 1/8 scale (every byte read, little pixel work)."""
    img = Image.open(io.BytesIO(data))
    if img.format == "PNG":
        img.verify()  # walks all chunks and checks their CRCs
        return
    if img.format == "JPEG":
        img.draft(img.mode, (1, 1))
    img.load()


class LazyImages(Dataset):
    """Decodes ``source`` images on access (in dataloader workers); for data too big for memory."""

    def __init__(
        self,
        source: ImageSource,
        names: list[str],
        labels: torch.Tensor,
        decode: Callable[[bytes], torch.Tensor],
    ) -> None:
        self.source, self.names, self.labels, self.decode = source, names, labels, decode

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = self.names[i]
        try:
            image = self.decode(self.source.read(name))
        except Exception as e:
            raise CorruptImageError(
                f"cannot decode {self.source.where(name)} ({e}); it changed or was damaged after the "
                "up-front check: fix or remove it"
            ) from e
        return image, self.labels[i]


def _run_parallel(fn: Callable[[int], None], n: int) -> None:
    """Run ``fn(i)`` for ``i < n`` on threads: PIL decoding and zlib release the GIL."""
    threads = min(8, os.cpu_count() or 1)
    chunks = [range(s, min(s + 256, n)) for s in range(0, n, 256)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda r: [fn(i) for i in r], chunks))


class ImageFolderDataModule(GANDataModule):
    """Any folder or ``.zip`` of images, searched recursively.

    Args:
        path: folder or ``.zip`` file.
        subdir: only use images below this folder of ``path`` (e.g. ``train`` in a
            ``train/<class>/x.jpg`` zip).
        labels: class = first folder below ``path/subdir`` (torchvision ImageFolder convention);
            classes are sorted by name. Images directly in ``path/subdir`` cannot be labelled.
        center_crop: crop a center square on the short side before resizing (else stretch).
        crop_size: first take a center crop of this many pixels (aligned CelebA: 140 or 108).
        on_corrupt: ``fail`` raises on the first pass over the data; ``skip`` leaves bad files out.
        cache: ``memory`` decodes everything before training; ``none`` decodes on access (after a quick
            check of every file); ``auto`` picks ``memory`` when the decoded images fit ``memory_limit_mb``.
        memory_limit_mb: decoded-size threshold of ``cache=auto``.
        decoded_cache: folder keeping images decoded into memory for the next run with the same files
            and settings (sweeps, resumes); ``None`` decodes every time (``decoded_cache.py``).
        max_samples: keeps an evenly spaced subset of the sorted files (all classes, not the first one).
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...).
    """

    name = "image_folder"

    def __init__(
        self,
        path: str,
        subdir: str | None = None,
        labels: bool = False,
        center_crop: bool = True,
        crop_size: int | None = None,
        on_corrupt: str = "fail",
        cache: str = "auto",
        memory_limit_mb: float = 2048,
        decoded_cache: str | None = None,
        resolution: int = 64,
        channels: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(resolution=resolution, channels=channels, **kwargs)
        if cache not in CACHE_MODES:
            raise ConfigError(f"data.cache={cache!r} is not one of {', '.join(CACHE_MODES)}")
        if on_corrupt not in ON_CORRUPT:
            raise ConfigError(f"data.on_corrupt={on_corrupt!r} is not one of {', '.join(ON_CORRUPT)}")
        if crop_size is not None and crop_size < 1:
            raise ConfigError(f"data.crop_size={crop_size} must be positive, or null for no crop")
        self.path = path
        self.subdir = subdir
        self.labels = labels
        self.center_crop = center_crop
        self.crop_size = crop_size
        self.on_corrupt = on_corrupt
        self.cache = cache
        self.memory_limit_mb = memory_limit_mb
        self.decoded_cache = decoded_cache

    def make_source(self) -> ImageSource:
        """Where the images are; subclasses with a fixed layout override this."""
        if self.path is None:
            raise ConfigError("data.path is not set; point it at a folder or .zip of images")
        return ImageSource(self.path, self.subdir)

    def _labels(self, source: ImageSource) -> torch.Tensor:
        names = source.names
        if not self.labels:
            return torch.full((len(names),), -1, dtype=torch.long)
        loose = [n for n in names if "/" not in n]
        if loose:
            raise ConfigError(
                f"data.labels=true needs every image in a class folder, but {len(loose)} are directly in "
                f"{source.where()} (e.g. {loose[0]}); set data.labels=false, or data.subdir to the folder "
                "holding the class folders"
            )
        folders = [n.split("/", 1)[0] for n in names]
        self.class_names = sorted(set(folders))
        self.num_classes = len(self.class_names)
        index = {c: i for i, c in enumerate(self.class_names)}
        return torch.tensor([index[f] for f in folders], dtype=torch.long)

    def _handle_corrupt(self, source: ImageSource, bad: list[tuple[str, str]], total: int) -> None:
        if not bad:
            return
        first = f"{source.where(bad[0][0])}: {bad[0][1]}"
        if len(bad) == total:
            raise CorruptImageError(
                f"none of the {total} images in {source.where()} can be decoded ({first})"
            )
        if self.on_corrupt == "fail":
            more = f" ({len(bad)} of {total} images are unreadable)" if len(bad) > 1 else ""
            raise CorruptImageError(
                f"cannot decode image {first}{more}; fix or delete it, or set data.on_corrupt=skip to "
                "leave unreadable images out"
            )
        shown = ", ".join(n for n, _ in bad[:5]) + (", ..." if len(bad) > 5 else "")
        log.warning("skipped %d unreadable image(s) of %d in %s: %s", len(bad), total, source.where(), shown)

    def _scan(
        self, source: ImageSource, names: list[str], fn: Callable[[int, bytes], None]
    ) -> list[tuple[int, str]]:
        """Apply ``fn(i, bytes)`` to every image; report failures; return them as ``(index, error)``."""
        errors: dict[int, str] = {}

        def one(i: int) -> None:
            try:
                fn(i, source.read(names[i]))
            except Exception as e:  # any decoder error means the file is unusable
                errors[i] = f"{type(e).__name__}: {e}"

        _run_parallel(one, len(names))
        bad = [(i, errors[i]) for i in sorted(errors)]
        self._handle_corrupt(source, [(names[i], e) for i, e in bad], len(names))
        return bad

    def _decode_all(
        self, source: ImageSource, names: list[str], decode: Callable[[bytes], torch.Tensor]
    ) -> tuple[torch.Tensor, list[tuple[int, str]]]:
        """All images decoded into one tensor, from ``decoded_cache`` when an earlier run left them."""
        cache, start = None, time.perf_counter()
        if self.decoded_cache is not None:
            key = {
                "source": source.fingerprint(names),
                "channels": self.channels,
                "resolution": self.resolution,
                "center_crop": self.center_crop,
                "crop_size": self.crop_size,
            }
            cache = decoded_cache.cache_file(self.decoded_cache, key)
            hit = decoded_cache.load(cache, len(names), self.image_shape)
            if hit is not None:
                images, bad = hit
                where, seconds = source.where(), time.perf_counter() - start
                log.info(
                    "%s: %d images from %s, decoded earlier: loaded in %.1f s from %s",
                    *(self.name, len(names), where, seconds, cache),
                )
                self._handle_corrupt(source, [(names[i], e) for i, e in bad], len(names))  # as the first time
                return images, bad
        log.info("%s: %d images from %s (decoding into memory)", self.name, len(names), source.where())
        images = torch.empty((len(names), *self.image_shape), dtype=torch.uint8)

        def store(i: int, data: bytes) -> None:
            images[i] = decode(data)

        bad = self._scan(source, names, store)
        log.info("%s: decoded in %.1f s", self.name, time.perf_counter() - start)
        if cache is not None:
            decoded_cache.save(cache, images, bad, source.where())
        return images, bad

    def load_dataset(self) -> Dataset:
        source = self.make_source()
        labels = self._labels(source)
        names = source.names
        if self.max_samples is not None and self.max_samples < len(names):
            # Evenly spaced over the sorted files, so every class folder is represented; decode only these.
            keep = torch.linspace(0, len(names) - 1, self.max_samples).round().long()
            names, labels = [names[i] for i in keep.tolist()], labels[keep]
        decode = partial(
            decode_image,
            channels=self.channels,
            resolution=self.resolution,
            center_crop=self.center_crop,
            crop_size=self.crop_size,
        )
        nbytes = len(names) * self.channels * self.resolution**2
        in_memory = self.cache == "memory" or (
            self.cache == "auto" and nbytes <= self.memory_limit_mb * 2**20
        )
        if in_memory:
            images, bad = self._decode_all(source, names, decode)
            if not bad:
                return InMemoryImages(images, labels)
            keep = torch.ones(len(names), dtype=torch.bool)
            keep[[i for i, _ in bad]] = False
            return InMemoryImages(images[keep], labels[keep])
        log.info("%s: %d images from %s (checking; decoded on access)", self.name, len(names), source.where())
        bad_set = {i for i, _ in self._scan(source, names, lambda _, data: check_image(data))}
        kept = [i for i in range(len(names)) if i not in bad_set]
        return LazyImages(source, [names[i] for i in kept], labels[kept], decode)
