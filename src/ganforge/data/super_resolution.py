"""Super-resolution data: high-resolution (HR) images and their low-resolution (LR) inputs.

The LR image is the MATLAB bicubic downscale of the HR one (``ganforge.imresize``: the function the
benchmarks' LR sets, DIV2K ``X4`` and Set5 ``LRbicx4``, were made with; PIL/torch bicubic differ and
shift PSNR), or read from an LR folder. HR sizes are cropped to a multiple of ``mod_crop`` first, as
BasicSR's ``GTmod12`` sets are.

Training items are aligned random patches, ``(LR [C, p/s, p/s], HR [C, p, p])``, flipped and turned by
90 degrees, drawn from ``(seed, epoch, index)`` alone (the sampler passes the epoch): a resumed run
sees the patches an uninterrupted one would. A made-on-the-fly LR patch is the downscale of an HR
region with a margin wider than the bicubic kernel, so it equals the same crop of the whole image's
LR (tested), at a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ganforge.data.base import GANDataModule, download_and_extract, find_or_download
from ganforge.data.image_folder import CACHE_MODES, ImageSource, _run_parallel, image_tensor, open_image
from ganforge.data.paired import stem
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError, GanforgeError
from ganforge.imresize import imresize

log = logging.getLogger(__name__)

SCALES = (2, 3, 4, 8)
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def shown(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "")


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB ``imresize(hr, 1/scale)`` of a ``uint8 [C, H, W]`` image (``H``, ``W`` multiples of scale)."""
    return imresize(hr, scale=1 / scale)


@dataclass(frozen=True)
class SRFile:
    """One HR image file and, when LR images are read rather than made, its LR file."""

    hr: ImageSource
    name: str
    lr: ImageSource | None = None
    lr_name: str | None = None

    @property
    def stem(self) -> str:
        return stem(Path(self.name).name)


def _decode(source: ImageSource, name: str, channels: int) -> torch.Tensor:
    """``uint8 [C, H, W]``; a grey file for an RGB model is refused (it would train on fake colour)."""
    try:
        img = open_image_checked(source.read(name), channels)
    except GanforgeError:
        raise
    except Exception as e:  # any decoder error: the file is unusable
        raise CorruptImageError(f"cannot decode {source.where(name)} ({type(e).__name__}: {e})") from e
    if img is None:
        raise ConfigError(
            f"{source.where(name)} is a grey image but the model is RGB (data.channels=3): convert it to "
            "RGB, remove it, or train a grey model with data.channels=1"
        )
    return img


def open_image_checked(data: bytes, channels: int) -> torch.Tensor | None:
    """The image as ``uint8 [C, H, W]``, or ``None`` for a grey image when ``channels`` is 3."""
    mode = Image.open(io.BytesIO(data)).mode
    if channels == 3 and mode in GREY_MODES:
        return None
    return image_tensor(open_image(data, channels))


class SizeMismatch(ConfigError):
    """An LR image whose size is not its HR image's divided by the scale."""


def mod_crop(x: torch.Tensor, mod: int) -> torch.Tensor:
    """Crop the bottom and right edges to a multiple of ``mod`` (BasicSR's ``mod_crop``)."""
    h, w = x.shape[-2:]
    return x[..., : h - h % mod, : w - w % mod]


class SRImages:
    """The (HR, LR) images of a split: decoded up front (``memory``) or on access (``none``)."""

    def __init__(self, files: list[SRFile], scale: int, mod: int, channels: int, in_memory: bool) -> None:
        self.files, self.scale, self.mod, self.channels = files, scale, mod, channels
        self.cached: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        if in_memory:
            out: list[Any] = [None] * len(files)
            mismatched: dict[int, str] = {}

            def one(i: int) -> None:
                try:
                    out[i] = self.load(i)
                except SizeMismatch as e:
                    mismatched[i] = str(e)

            _run_parallel(one, len(files))
            if mismatched:  # every LR image of the wrong size, not just the first
                raise ConfigError(
                    f"{len(mismatched)} LR image(s) do not match their HR image at x{scale}: "
                    + "; ".join(mismatched[i] for i in sorted(mismatched)[:5])
                    + ("; ..." if len(mismatched) > 5 else "")
                    + ". Check data.scale and the LR folder"
                )
            self.cached = out

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """HR image ``i`` cropped to ``mod``, and its LR file's image (``None``: made from HR)."""
        if self.cached is not None:
            return self.cached[i]
        f = self.files[i]
        hr = mod_crop(_decode(f.hr, f.name, self.channels), self.mod)
        if f.lr is None:
            return hr, None
        lr = _decode(f.lr, f.lr_name or "", self.channels)
        if tuple(lr.shape[-2:]) != (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale):
            raise SizeMismatch(
                f"{f.lr.where(f.lr_name or '')} is {lr.shape[-1]}x{lr.shape[-2]} but its HR image "
                f"{f.hr.where(f.name)} is {hr.shape[-1]}x{hr.shape[-2]} (after cropping to a multiple of "
                f"{self.mod}): at x{self.scale} it should be {hr.shape[-1] // self.scale}x"
                f"{hr.shape[-2] // self.scale}"
            )
        return hr, lr

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole ``(LR, HR)`` pair ``i``."""
        hr, lr = self.load(i)
        return (downscale(hr, self.scale) if lr is None else lr), hr


class SRPatches(Dataset):
    """Aligned random patches: item ``(epoch, i)`` is a patch of image ``i % n``, where and how it is
    flipped/turned drawn from ``(seed, epoch, i)``; ``repeat`` patches per image and epoch."""

    def __init__(
        self, images: SRImages, patch_size: int, repeat: int, flip: bool, rot90: bool, seed: int
    ) -> None:
        self.images, self.patch, self.repeat = images, patch_size, repeat
        self.flip, self.rot90, self.seed = flip, rot90, seed
        s = images.scale
        self.margin = s * math.ceil((2 * s + 2) / s)  # HR pixels: more than the bicubic kernel's reach

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def __getitem__(self, item: tuple[int, int] | int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = item if isinstance(item, tuple) else (0, item)
        digest = hashlib.sha256(f"{self.seed}:{epoch}:{i}".encode()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        hr, lr = self.images.load(i % len(self.images))
        s, p = self.images.scale, self.patch // self.images.scale
        h, w = hr.shape[-2] // s, hr.shape[-1] // s  # LR size
        top = int(torch.randint(0, h - p + 1, (1,), generator=g))
        left = int(torch.randint(0, w - p + 1, (1,), generator=g))
        hr_patch = hr[:, top * s : (top + p) * s, left * s : (left + p) * s]
        lr_patch = self.made_lr(hr, top, left, p) if lr is None else lr[:, top : top + p, left : left + p]
        flip_h, flip_v, turn = (torch.rand(3, generator=g) < 0.5).tolist()
        out = []
        for x in (lr_patch, hr_patch):
            if self.flip and flip_h:
                x = x.flip(-1)
            if self.rot90 and flip_v:
                x = x.flip(-2)
            if self.rot90 and turn:
                x = x.transpose(-1, -2)
            out.append(x.contiguous())
        return out[0], out[1]

    def made_lr(self, hr: torch.Tensor, top: int, left: int, p: int) -> torch.Tensor:
        """The LR patch at ``(top, left)`` (LR pixels) of ``downscale(hr)``, from an HR region around it."""
        s, m = self.images.scale, self.margin
        y0, x0 = max(top * s - m, 0), max(left * s - m, 0)
        y1, x1 = min((top + p) * s + m, hr.shape[-2]), min((left + p) * s + m, hr.shape[-1])
        lr = downscale(hr[:, y0:y1, x0:x1], s)
        dy, dx = top - y0 // s, left - x0 // s
        return lr[:, dy : dy + p, dx : dx + p]


class SuperResolutionDataModule(GANDataModule):
    """HR images (a folder or ``.zip``) and a ``scale``: items ``(LR uint8 [C, p/s, p/s], HR [C, p, p])``.

    Args:
        path: folder or ``.zip`` of HR training images; ``hr_dir``: its subfolder holding them.
        scale: 2, 3, 4 or 8.
        patch_size: HR training patch (BasicSR: 128 for ESRGAN, 96 for SRResNet/SRGAN); a multiple of
            ``scale``. It is ``resolution``, what G outputs and D sees.
        lr_path, lr_dir: read LR images from here instead of making them (DIV2K
            ``DIV2K_train_LR_bicubic/X4``); ``lr_name``: the LR file's name without extension,
            ``{stem}`` = the HR file's (DIV2K: ``"{stem}x{scale}"``).
        test_path, test_dir, test_lr_path, test_lr_dir, test_lr_name: the same for the test images,
            scored whole; ``test_files``: more test image files (HR). ``max_test``: keep the first N.
        mod_crop: HR sizes are cropped to a multiple of this (``null``: ``scale``; Set5/Set14: 12 as
            their ``GTmod12`` versions); must be a multiple of ``scale``.
        patches_per_image: random patches per training image per epoch (epoch = images x this).
        flip, rot90: random horizontal flip; vertical flip and transpose (the 8 dihedral turns).
        cache: ``auto`` decodes into memory when the HR images fit ``memory_limit_mb``, ``memory``,
            ``none`` decodes on access (DIV2K: 800 2K images).
        download, urls: when ``path`` is missing, fetch these archives and unpack them into ``path``;
            ``test_urls``: the same for ``test_path``.
        **kwargs: ``GANDataModule`` arguments; ``max_samples`` keeps the first N training images.
    """

    kind = "pairs"
    items_know_epoch = True

    def __init__(
        self,
        path: str | None,
        scale: int = 4,
        patch_size: int = 128,
        hr_dir: str | None = None,
        lr_path: str | None = None,
        lr_dir: str | None = None,
        lr_name: str = "{stem}",
        test_path: str | None = None,
        test_dir: str | None = None,
        test_lr_path: str | None = None,
        test_lr_dir: str | None = None,
        test_lr_name: str = "{stem}",
        test_files: list[str] | None = None,
        max_test: int | None = None,
        mod_crop: int | None = None,
        patches_per_image: int = 1,
        flip: bool = True,
        rot90: bool = True,
        channels: int = 3,
        cache: str = "auto",
        memory_limit_mb: float = 4096,
        download: bool = False,
        urls: list[str] | None = None,
        test_urls: list[str] | None = None,
        name: str = "super_resolution",
        how_to_get: str | None = None,
        max_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resolution=patch_size, channels=channels, **kwargs)
        if scale not in SCALES:
            raise ConfigError(
                f"data.scale={scale} is not supported; use one of {', '.join(map(str, SCALES))}"
            )
        if patch_size % scale:
            raise ConfigError(
                f"data.patch_size={patch_size} is not a multiple of data.scale={scale}: the LR patch would "
                f"not align; use e.g. {patch_size - patch_size % scale}"
            )
        mod = scale if mod_crop is None else mod_crop
        if mod < 1 or mod % scale:
            raise ConfigError(f"data.mod_crop={mod_crop} must be a multiple of data.scale={scale}")
        if cache not in CACHE_MODES:
            raise ConfigError(f"data.cache={cache!r} is not one of {', '.join(CACHE_MODES)}")
        if patches_per_image < 1:
            raise ConfigError(f"data.patches_per_image={patches_per_image} must be >= 1")
        self.path, self.scale, self.patch_size, self.hr_dir = path, scale, patch_size, hr_dir
        self.lr_path, self.lr_dir, self.lr_name = lr_path, lr_dir, lr_name
        self.test_path, self.test_dir, self.test_files = test_path, test_dir, list(test_files or [])
        self.test_lr_path, self.test_lr_dir, self.test_lr_name = test_lr_path, test_lr_dir, test_lr_name
        self.max_test, self.mod, self.patches_per_image = max_test, mod, patches_per_image
        self.flip, self.rot90, self.cache, self.memory_limit_mb = flip, rot90, cache, memory_limit_mb
        self.download, self.urls, self.name, self.how_to_get = download, list(urls or []), name, how_to_get
        self.test_urls = list(test_urls or [])
        self.max_images = max_samples
        self.train_names: list[str] = []
        self._test: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._test_files: list[SRFile] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        p = self.patch_size // self.scale
        return (self.channels, p, p)

    # -- finding the files --------------------------------------------------------------------------
    def _root(self) -> Path:
        if self.path is None:
            raise ConfigError("data.path is not set; point it at a folder or .zip of high-resolution images")
        root = Path(self.path).expanduser()
        marker = root / self.hr_dir if self.hr_dir and not root.is_file() else root

        def find() -> Path | None:
            return root if marker.exists() else None

        download = None
        if self.urls and self.download:
            download = lambda: [download_and_extract(u, root) for u in self.urls]  # noqa: E731
        found, tried = find_or_download(find, download if self.urls else None)
        if found is None:
            raise DatasetNotFoundError(
                f"{self.name} not found: looked for {marker}.\n{tried if self.urls else ''}"
                f"{self.how_to_get or 'Set data.path to a folder or .zip of high-resolution images.'}"
            )
        return found

    def _files(
        self, root: Path, hr_dir: str | None, lr_path: str | None, lr_dir: str | None, lr_name: str
    ) -> list[SRFile]:
        hr = ImageSource(root, hr_dir)
        if lr_path is None and lr_dir is None:
            return [SRFile(hr, n) for n in hr.names]
        lr = ImageSource(Path(lr_path).expanduser() if lr_path else root, lr_dir)
        lr_by = {stem(n): n for n in lr.names}
        wanted = {n: lr_name.format(stem=stem(Path(n).name), scale=self.scale) for n in hr.names}
        wanted = {n: (str(Path(n).parent / w) if "/" in n else w) for n, w in wanted.items()}
        missing = [f"{w} (for {n})" for n, w in wanted.items() if w not in lr_by]
        extra = sorted(set(lr_by) - set(wanted.values()))
        if missing or extra:
            raise ConfigError(
                f"the LR images in {lr.where()} do not match the HR images in {hr.where()} "
                f"(LR name = data.lr_name={lr_name!r}): "
                + (f"no LR image for {len(missing)}: {shown(missing)}. " if missing else "")
                + (f"{len(extra)} LR images have no HR image: {shown(extra)}. " if extra else "")
                + "Fix the names, or set data.lr_dir=null to make the LR images from the HR ones"
            )
        return [SRFile(hr, n, lr, lr_by[wanted[n]]) for n in hr.names]

    def _in_memory(self, files: list[SRFile]) -> bool:
        if self.cache != "auto":
            return self.cache == "memory"
        # a cheap estimate from the first image: decoding all of them to measure would defeat the purpose
        hr, _ = SRImages(files[:1], self.scale, self.mod, self.channels, in_memory=False).load(0)
        return len(files) * hr.numel() <= self.memory_limit_mb * 2**20

    # -- training ---------------------------------------------------------------------------------
    def load_dataset(self) -> Dataset:
        root = self._root()
        files = self._files(root, self.hr_dir, self.lr_path, self.lr_dir, self.lr_name)
        if self.max_images is not None:
            files = files[: self.max_images]
        images = SRImages(files, self.scale, self.mod, self.channels, self._in_memory(files))
        if images.cached is not None:
            small = [
                f"{f.hr.where(f.name)} ({hr.shape[-1]}x{hr.shape[-2]})"
                for f, (hr, _) in zip(files, images.cached, strict=True)
                if min(hr.shape[-2:]) < self.patch_size
            ]
            if small:
                raise ConfigError(
                    f"{len(small)} HR image(s) are smaller than data.patch_size={self.patch_size}: "
                    f"{shown(small)}; lower data.patch_size or remove them"
                )
        self.train_names = [f.stem for f in files]
        log.info(
            "%s: %d HR images, x%d, %d px patches (%d per image and epoch)%s",
            self.name,
            len(files),
            self.scale,
            self.patch_size,
            self.patches_per_image,
            "" if images.cached is not None else ", decoded on access",
        )
        return SRPatches(images, self.patch_size, self.patches_per_image, self.flip, self.rot90, self.seed)

    # -- testing ------------------------------------------------------------------------------------
    def _test_file_list(self) -> list[SRFile]:
        if self._test_files is None:
            files: list[SRFile] = []
            if self.test_path is not None or self.test_dir is not None:
                root = Path(self.test_path).expanduser() if self.test_path else self._root()
                if not root.exists() and self.test_urls and self.download:
                    for url in self.test_urls:
                        download_and_extract(url, root)
                if not root.exists():
                    raise DatasetNotFoundError(
                        f"data.test_path={root} does not exist.\n{self.how_to_get or ''}".strip()
                    )
                files += self._files(
                    root, self.test_dir, self.test_lr_path, self.test_lr_dir, self.test_lr_name
                )
            for f in self.test_files:
                p = Path(f).expanduser()
                if not p.is_file():
                    raise DatasetNotFoundError(f"data.test_files: {p} does not exist")
                files.append(SRFile(ImageSource(p.parent, names=[p.name]), p.name))
            if not files:
                raise ConfigError(
                    f"{self.name} has no test images: set data.test_path / test_dir or test_files"
                )
            self._test_files = files[: self.max_test] if self.max_test else files
        return self._test_files

    @property
    def test_names(self) -> list[str]:
        return [f.stem for f in self._test_file_list()]

    def test_pairs(self, max_n: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The whole test images, ``(LR list of uint8 [C, h, w], HR list of uint8 [C, s*h, s*w])``, in
        ``test_names`` order (sizes differ: score them one by one)."""
        if self._test is None:
            files = self._test_file_list()
            images = SRImages(files, self.scale, self.mod, self.channels, in_memory=False)
            pairs = [images.pair(i) for i in range(len(files))]
            self._test = ([lr for lr, _ in pairs], [hr for _, hr in pairs])
        lrs, hrs = self._test
        return lrs[:max_n], hrs[:max_n]

    def grid_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre crops (HR ``patch_size``, or smaller for small images) of the first ``n`` test pairs."""
        lrs, hrs = self.test_pairs(n)
        p = min([self.patch_size // self.scale] + [min(lr.shape[-2:]) for lr in lrs])
        crops_lr, crops_hr = [], []
        for lr, hr in zip(lrs, hrs, strict=True):
            top, left = (lr.shape[-2] - p) // 2, (lr.shape[-1] - p) // 2
            s = self.scale
            crops_lr.append(lr[:, top : top + p, left : left + p])
            crops_hr.append(hr[:, top * s : (top + p) * s, left * s : (left + p) * s])
        return torch.stack(crops_lr), torch.stack(crops_hr)


__all__ = ["SuperResolutionDataModule", "downscale", "mod_crop"]
