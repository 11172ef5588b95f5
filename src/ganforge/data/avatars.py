"""Cartoon faces drawn offline: a CelebA stand-in for machines without network access or data.

`python-avatars <https://pypi.org/project/python-avatars/>`_ (MIT) writes each face as SVG from its parts
(hair or hat, eyes, eyebrows, nose, mouth, facial hair, glasses, clothes and their colours);
``rsvg-convert`` (librsvg) rasterises it. Not cairosvg: it draws python-avatars' masks wrongly.

Face ``i`` depends only on ``(face_seed, i)``: its parts are drawn by a ``random.Random`` seeded with
both, never by the global RNG that ``python_avatars.Avatar.random`` uses, so the set is the same on
every run and machine (for the same python-avatars and librsvg versions), the first ``k`` faces of a
larger set are a smaller set, and the training RNG is untouched. The rendered set is cached as one
``uint8`` file, keyed by everything its pixels depend on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageColor
from torch.utils.data import Dataset

from ganforge.data.base import GANDataModule, InMemoryImages, convert_channels
from ganforge.errors import ConfigError, CorruptImageError
from ganforge.utils import save_atomic

log = logging.getLogger(__name__)

FORMAT = "ganforge-avatars/1"  # bump when the choice of parts or the framing changes
PACKAGE_VERSION = "1.4.1"  # the python-avatars release the face set is defined with
RESOLUTIONS = (64, 256)  # smallest and largest data.resolution: faces blur below, the cache grows above
# The avatar is 264x280; this square frames the head and a little of the shoulders, as CelebA's crop does.
VIEWBOX = "20 4 224 224"
ROOT_SIZE = 'width="264px" height="280px" viewBox="0 0 264 280"'
INSTALL_PACKAGE = 'pip install python-avatars==1.4.1 (or pip install "ganforge[avatars]")'
INSTALL_RSVG = (
    "sudo apt-get install librsvg2-bin on Debian/Ubuntu, brew install librsvg on macOS "
    "(make data installs it with apt)"
)


def import_python_avatars() -> ModuleType:
    """The ``python_avatars`` module. Its import draws from the global ``random`` (a default argument
    is ``ClothingType.pick_random()``); the state is restored so that the training RNG is untouched."""
    state = random.getstate()
    try:
        import python_avatars
    except ImportError as e:
        raise ConfigError(f"data=avatars draws its faces with python-avatars ({e}): {INSTALL_PACKAGE}") from e
    finally:
        random.setstate(state)
    if python_avatars.__version__ != PACKAGE_VERSION:
        log.warning(
            "python-avatars %s is installed; data=avatars is defined with %s (other parts, other faces): %s",
            python_avatars.__version__,
            PACKAGE_VERSION,
            INSTALL_PACKAGE,
        )
    return python_avatars


def find_rsvg_convert() -> tuple[str, str]:
    """Path and version line of ``rsvg-convert``; a ``ConfigError`` saying how to install it."""
    path = shutil.which("rsvg-convert")
    if path is None:
        raise ConfigError(
            f"data=avatars renders its faces with rsvg-convert, which is not on PATH: {INSTALL_RSVG}"
        )
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(
            f"{path} --version failed ({type(e).__name__}: {e}); reinstall it: {INSTALL_RSVG}"
        ) from e
    return path, version.stdout.strip()


def parse_background(background: str) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(background)[:3]
    except (ValueError, AttributeError) as e:
        raise ConfigError(
            f"data.background={background!r} is not a colour; use a name (white, black) or #rrggbb"
        ) from e


class Parts:
    """The parts and colours faces are drawn from: python-avatars' own (``default.json``), in its order.

    Parts installed locally (``python_avatars.install_part``) are left out, so they cannot change the set;
    so is the custom-text shirt graphic, whose text would be drawn with whatever fonts the machine has.
    """

    def __init__(self, pa: ModuleType) -> None:
        try:
            defaults = json.loads((Path(pa.__file__).parent / "default.json").read_text())
        except (OSError, ValueError):
            defaults = {}

        def members(enum: Any) -> list[Any]:
            names = defaults.get(enum.__name__)
            return [m for m in enum if names is None or m.name in names]

        self.pa = pa
        self.tops = members(pa.HairType) + members(pa.HatType)  # as TopType.get_all()
        self.eyebrows, self.eyes = members(pa.EyebrowType), members(pa.EyeType)
        self.noses, self.mouths = members(pa.NoseType), members(pa.MouthType)
        self.facial_hair, self.accessories = members(pa.FacialHairType), members(pa.AccessoryType)
        self.skin, self.hair = members(pa.SkinColor), members(pa.HairColor)
        self.clothes, self.clothing_colors = members(pa.ClothingType), members(pa.ClothingColor)
        self.graphics = [g for g in members(pa.ClothingGraphic) if g is not pa.ClothingGraphic.CUSTOM_TEXT]

    def avatar(self, seed: int, index: int) -> Any:
        """Face ``index`` of set ``seed``; the draws follow ``Avatar.random``'s (facial hair and glasses
        absent half of the time), in a fixed order from a generator seeded by ``(seed, index)`` only."""
        pa, rng = self.pa, random.Random(f"{FORMAT}:{seed}:{index}")  # str seeds hash the same everywhere

        def favour_none(choices: list[Any], none: Any) -> Any:
            return rng.choice(choices) if rng.random() > 0.5 else none

        return pa.Avatar(
            style=pa.AvatarStyle.TRANSPARENT,
            background_color=pa.BackgroundColor.WHITE,  # unused by the transparent style
            top=rng.choice(self.tops),
            hat_color=rng.choice(self.clothing_colors),
            eyebrows=rng.choice(self.eyebrows),
            eyes=rng.choice(self.eyes),
            nose=rng.choice(self.noses),
            mouth=rng.choice(self.mouths),
            facial_hair=favour_none(self.facial_hair, pa.FacialHairType.NONE),
            skin_color=rng.choice(self.skin),
            hair_color=rng.choice(self.hair),
            facial_hair_color=rng.choice(self.hair),
            accessory=favour_none(self.accessories, pa.AccessoryType.NONE),
            clothing=rng.choice(self.clothes),
            clothing_color=rng.choice(self.clothing_colors),
            shirt_graphic=rng.choice(self.graphics),
        )

    def svg(self, seed: int, index: int, resolution: int) -> str:
        """The face as SVG, framed on ``VIEWBOX`` at ``resolution`` x ``resolution`` pixels."""
        svg = self.avatar(seed, index).render()
        if ROOT_SIZE not in svg:
            raise CorruptImageError(
                f"data=avatars: face {index}'s SVG does not start as python-avatars {PACKAGE_VERSION}'s do "
                f"({svg[:200]!r}); {INSTALL_PACKAGE}"
            )
        return svg.replace(ROOT_SIZE, f'width="{resolution}" height="{resolution}" viewBox="{VIEWBOX}"', 1)


def rasterise(
    rsvg: str, svg: str, index: int, resolution: int, background: tuple[int, int, int]
) -> np.ndarray:
    """``uint8 [H, W, 3]``: the SVG rendered by ``rsvg-convert`` (RGBA) and composited over ``background``."""
    try:
        done = subprocess.run([rsvg, "--format=png"], input=svg.encode(), capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise CorruptImageError(
            f"data=avatars: rsvg-convert failed on face {index}: {type(e).__name__}: {e}"
        ) from e
    stderr = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0:
        raise CorruptImageError(
            f"data=avatars: rsvg-convert failed on face {index} (exit status {done.returncode}): "
            f"{stderr or 'no message'}. Check that {rsvg} works (reinstall it: {INSTALL_RSVG})"
        )
    try:
        img = Image.open(io.BytesIO(done.stdout))
        img.load()
    except Exception as e:  # empty or truncated output
        raise CorruptImageError(
            f"data=avatars: rsvg-convert wrote no readable PNG for face {index} ({type(e).__name__}: {e}); "
            f"its messages: {stderr or 'none'}"
        ) from e
    if img.size != (resolution, resolution):
        raise CorruptImageError(
            f"data=avatars: rsvg-convert drew face {index} at {img.size[0]}x{img.size[1]}, "
            f"not {resolution}x{resolution}"
        )
    under = Image.new("RGBA", img.size, (*background, 255))
    return np.asarray(Image.alpha_composite(under, img.convert("RGBA")).convert("RGB"))


def render_faces(
    count: int,
    resolution: int,
    seed: int,
    background: tuple[int, int, int],
    workers: int | None = None,
) -> torch.Tensor:
    """Faces ``0 .. count-1`` of set ``seed`` as ``uint8 [count, 3, H, W]``.

    One ``rsvg-convert`` process per face (it writes one PNG per run; a sheet of faces in one SVG renders
    slower, as librsvg sizes its mask and filter buffers to the whole sheet), ``workers`` at a time.
    """
    pa = import_python_avatars()
    rsvg, _ = find_rsvg_convert()
    parts = Parts(pa)
    workers = workers or available_cpus()
    out = np.empty((count, resolution, resolution, 3), dtype=np.uint8)
    start, reported = time.monotonic(), 0

    def one(i: int) -> None:
        out[i] = rasterise(rsvg, parts.svg(seed, i, resolution), i, resolution, background)

    log.info("data=avatars: rendering %d faces at %d px with %d workers", count, resolution, workers)
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i) for i in range(count)]
        try:
            for done, future in enumerate(futures, 1):
                future.result()
                if done * 10 // count > reported or done == count:
                    reported = done * 10 // count
                    elapsed = time.monotonic() - start
                    left = elapsed / done * (count - done)
                    log.info("data=avatars: %d/%d faces (%.0f s, ~%.0f s left)", done, count, elapsed, left)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class AvatarsDataModule(GANDataModule):
    """Cartoon faces drawn by python-avatars and rendered by rsvg-convert: offline, seeded, cached.

    Args:
        num_images: faces in the set (rendered once, then read from ``cache_dir``).
        face_seed: which set of faces; face ``i`` depends only on ``(face_seed, i)``. Separate from
            ``seed`` (the shuffle order), so every training seed sees the same faces.
        background: colour behind the (transparent) avatars: a name or ``#rrggbb``.
        cache_dir: where the rendered set is kept; ``None`` renders on every run.
        render_workers: ``rsvg-convert`` processes at a time; ``None``: one per CPU.
        resolution: 64 to 256 pixels, rendered at that size (no resizing).
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...); with
            ``max_samples`` below ``num_images`` only that many faces are rendered (the same ones).
    """

    name = "avatars"

    def __init__(
        self,
        num_images: int = 10000,
        face_seed: int = 0,
        background: str = "white",
        cache_dir: str | None = None,
        render_workers: int | None = None,
        resolution: int = 64,
        channels: int = 3,
        **kwargs: Any,
    ) -> None:
        low, high = RESOLUTIONS
        if not (isinstance(resolution, int) and low <= resolution <= high):
            raise ConfigError(
                f"data.resolution={resolution} is not supported by data=avatars; use {low} to {high} "
                "pixels (64, 128 or 256 suit the models)"
            )
        super().__init__(resolution=resolution, channels=channels, **kwargs)
        if not (isinstance(num_images, int) and num_images >= 1):
            raise ConfigError(f"data.num_images={num_images} must be a positive whole number of faces")
        if not isinstance(face_seed, int):
            raise ConfigError(f"data.face_seed={face_seed!r} must be a whole number")
        if render_workers is not None and not (isinstance(render_workers, int) and render_workers >= 1):
            raise ConfigError(
                f"data.render_workers={render_workers} must be at least 1, or null (one per CPU)"
            )
        self.num_images = num_images
        self.face_seed = face_seed
        self.background = background
        self.background_rgb = parse_background(background)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self.render_workers = render_workers

    @property
    def count(self) -> int:
        """Faces to render: ``max_samples`` of them when fewer (face ``i`` does not depend on the count)."""
        return min(self.num_images, self.max_samples or self.num_images)

    def cache_key(self) -> dict[str, Any]:
        """Everything the pixels depend on; needs python-avatars and rsvg-convert (their versions)."""
        pa = import_python_avatars()
        _, rsvg_version = find_rsvg_convert()
        return {
            "format": FORMAT,
            "python_avatars": pa.__version__,
            "rsvg_convert": rsvg_version,
            "num_images": self.count,
            "resolution": self.resolution,
            "face_seed": self.face_seed,
            "background": list(self.background_rgb),
            "viewbox": VIEWBOX,
        }

    def cache_file(self, key: dict[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_dir / f"avatars-{self.count}x{self.resolution}px-seed{self.face_seed}-{digest}.pt"

    def load_cached(self, path: Path, key: dict[str, Any]) -> torch.Tensor | None:
        """The cached faces, or ``None`` (with a warning for a file that cannot be used: re-rendered)."""
        if not path.is_file():
            return None
        shape = (self.count, 3, self.resolution, self.resolution)
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            images = data["images"]
            if data.get("key") != key or images.dtype != torch.uint8 or tuple(images.shape) != shape:
                raise ValueError(f"not the {self.count} faces of this key, uint8 {shape}")
        except Exception as e:  # truncated, foreign or older file
            log.warning(
                "data=avatars: cache %s is unreadable (%s: %s); rendering again", path, type(e).__name__, e
            )
            return None
        log.info("data=avatars: %d faces from %s", self.count, path)
        return images

    def faces(self) -> torch.Tensor:
        """``uint8 [count, 3, H, W]``, from the cache or rendered (and then cached)."""
        key = self.cache_key()  # also checks python-avatars and rsvg-convert before anything else
        path = self.cache_file(key)
        images = None if path is None else self.load_cached(path, key)
        if images is not None:
            return images
        images = render_faces(
            self.count, self.resolution, self.face_seed, self.background_rgb, self.render_workers
        )
        if path is not None:
            try:
                save_atomic({"format": FORMAT, "key": key, "images": images}, path)
                log.info("data=avatars: cached the faces in %s", path)
            except OSError as e:
                log.warning(
                    "data=avatars: could not write the cache %s (%s); the next run renders again", path, e
                )
        return images

    def load_dataset(self) -> Dataset:
        return InMemoryImages(convert_channels(self.faces(), self.channels))
