"""Translate images with an image -> image checkpoint (Pix2Pix, SR, CycleGAN, ...):

``python translate.py ckpt_path=... input=<image | folder | .zip> out=<folder>`` writes G's output for every
input image under the same relative file name (as PNG). ``grid=true`` writes input | output | target
side by side instead, the target found under the same name in ``target=<folder | .zip>``.
``tile=N`` runs G on overlapping N x N tiles of a large input and stitches their centres (``tiled``).
``direction=BtoA`` translates with a CycleGAN checkpoint's second generator (B -> A).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import nn

from ganforge.checkpoint import generator_from_checkpoint, load_checkpoint, run_config
from ganforge.data.base import resize_uint8
from ganforge.data.image_folder import ImageSource, image_tensor, is_image_file, open_image
from ganforge.data.paired import WHITE
from ganforge.data.super_resolution import GREY_MODES
from ganforge.errors import ConfigError, CorruptImageError, DatasetNotFoundError
from ganforge.images import to_signed_unit, to_uint8
from ganforge.imresize import imresize
from ganforge.tasks.paired import as_channels
from ganforge.train import CONFIG_DIR
from ganforge.utils import atomic_write, pick_device, run_cli

log = logging.getLogger("ganforge")


def load_translator(
    path: str | Path, ema: bool = True, direction: str = "AtoB"
) -> tuple[torch.nn.Module, DictConfig]:
    """The (EMA) generator of an image -> image checkpoint in eval mode, and its run config; a noise
    -> image checkpoint is an error that points to ``generate.py``. ``direction``: ``AtoB`` (the
    generator of every image -> image checkpoint) or ``BtoA`` (CycleGAN's ``G_BA``; an error for others)."""
    ckpt = load_checkpoint(path)
    G = generator_from_checkpoint(ckpt, ema, direction=direction)
    if not hasattr(G, "in_channels"):
        raise ConfigError(
            f"{path} holds a noise -> image generator ({type(G).__name__}), which makes images from "
            "latents, not from images: use generate.py ckpt_path=... to sample it"
        )
    return G, run_config(ckpt)


def read_image(data: bytes, channels: int, name: str) -> torch.Tensor:
    """``uint8 [C, H, W]`` at the file's own size, transparency composited over white (as the paired
    datasets are decoded). A grey file for an RGB model is repeated to 3 channels, and said so."""
    try:
        img = Image.open(io.BytesIO(data))
        if channels == 3 and img.mode in GREY_MODES:
            log.warning("%s is a grey image; the RGB model gets it as 3 equal channels", name)
        return image_tensor(open_image(data, channels, background=WHITE))
    except Exception as e:  # PIL raises many kinds for damaged files
        raise CorruptImageError(f"cannot read image {name}: {type(e).__name__}: {e}") from e


def image_files(path: str | Path) -> tuple[list[str], Any]:
    """The image names under ``path`` (a file, folder or zip) and a ``read(name) -> bytes`` for them."""
    path = Path(path).expanduser()
    if path.is_file() and is_image_file(path.name):
        return [path.name], lambda name: path.read_bytes()
    if not path.exists():
        raise DatasetNotFoundError(
            f"input={path} does not exist; give an image, a folder or a .zip of images"
        )
    source = ImageSource(path)
    return source.names, source.read


def save_png(image: torch.Tensor, path: Path) -> None:
    """``uint8 [C, H, W]`` -> PNG, written atomically."""
    array = image.permute(1, 2, 0).numpy()
    with atomic_write(path) as f:
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(f, format="PNG")


def check_tiling(tile: int | None, overlap: int) -> None:
    """``tile`` (``None`` or input pixels > 0) and ``overlap`` (>= 0) fit together: ``tile > 2 * overlap``."""
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ConfigError(f"tile_overlap={overlap!r} must be a whole number of pixels >= 0")
    if tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise ConfigError(f"tile={tile!r} must be null (the whole image) or a number of pixels > 0")
    if tile <= 2 * overlap:
        raise ConfigError(
            f"tile={tile} leaves nothing of a tile once tile_overlap={overlap} pixels of context are taken "
            f"from each side: raise tile above {2 * overlap} or lower tile_overlap below {(tile + 1) // 2}"
        )


def tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """How one axis of ``size`` pixels is cut: ``(core_start, core_end, window_start, window_end)`` per tile.

    The cores partition ``[0, size)`` into pieces of ``tile - 2 * overlap`` pixels (the last one shorter);
    each window is ``tile`` pixels (all of the axis if that is shorter) holding its core and at least
    ``overlap`` pixels beyond it on each side, except at the image's edge. Windows at the edge are moved
    inwards rather than cut, so every window has the same size. An axis no longer than ``tile`` is one
    window.
    """
    check_tiling(tile, overlap)
    if size <= tile:
        return [(0, size, 0, size)]
    spans = []
    for start in range(0, size, tile - 2 * overlap):
        end = min(start + tile - 2 * overlap, size)
        w0 = min(max(start - overlap, 0), size - tile)
        spans.append((start, end, w0, w0 + tile))
    return spans


def tiled(generator: nn.Module, image: torch.Tensor, tile: int | None, overlap: int = 16) -> torch.Tensor:
    """``generator(image)`` for a batch ``[N, C, H, W]`` computed on ``tile`` x ``tile`` windows of it.

    Each window adds ``overlap`` input pixels of context around the part it is kept for (``tile_spans``),
    and only that part's output is stitched into the result, so for a network whose output pixels see at
    most ``overlap`` input pixels to each side (its receptive radius) the result equals the untiled one up
    to float rounding; beyond that radius tiles approximate it. The output is ``scale`` times the input,
    ``scale`` read from the first window (its output size over its input size); ``tile=None`` or an image
    no larger than a tile runs the generator once on all of it.
    """
    check_tiling(tile, overlap)
    h, w = image.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return generator(image)
    out: torch.Tensor | None = None
    scale = 1
    for r0, r1, wr0, wr1 in tile_spans(h, tile, overlap):
        for c0, c1, wc0, wc1 in tile_spans(w, tile, overlap):
            y = generator(image[..., wr0:wr1, wc0:wc1])
            if out is None:
                scale = y.shape[-1] // (wc1 - wc0)
                if scale < 1 or y.shape[-2:] != (scale * (wr1 - wr0), scale * (wc1 - wc0)):
                    raise ConfigError(
                        f"tiling needs an output a whole multiple of its input in size; G made "
                        f"{tuple(y.shape[-2:])} from a {wr1 - wr0}x{wc1 - wc0} tile"
                    )
                out = y.new_empty(*y.shape[:-2], scale * h, scale * w)
            out[..., scale * r0 : scale * r1, scale * c0 : scale * c1] = y[
                ..., scale * (r0 - wr0) : scale * (r1 - wr0), scale * (c0 - wc0) : scale * (c1 - wc0)
            ]
    assert out is not None
    return out


@torch.no_grad()
def translate(cfg: DictConfig) -> dict[str, Any]:
    """Translate every image of ``cfg.input``; returns the written paths."""
    if cfg.grid and not cfg.get("target"):
        raise ConfigError("grid=true shows input | output | target: give target=<folder or .zip> as well")
    tile, overlap = cfg.get("tile"), cfg.get("tile_overlap", 16)
    check_tiling(tile, overlap)
    device = pick_device(str(cfg.device))
    direction = cfg.get("direction", "AtoB")
    G, run_cfg = load_translator(cfg.ckpt_path, ema=cfg.ema, direction=direction)
    G.to(device)
    names, read = image_files(cfg.input)
    targets = image_files(cfg.target) if cfg.grid else None
    if targets is not None:
        stems = {Path(n).with_suffix("").as_posix(): n for n in targets[0]}
        missing = [n for n in names if Path(n).with_suffix("").as_posix() not in stems]
        if missing:
            raise DatasetNotFoundError(
                f"{len(missing)} of {len(names)} inputs have no target of the same name in "
                f"target={cfg.target} (e.g. {', '.join(missing[:3])})"
            )
    out = Path(cfg.out)
    written = []
    for name in names:
        x = read_image(read(name), G.in_channels, name)[None]
        if cfg.size is not None:
            x = resize_uint8(x, int(cfg.size))
        try:
            y = to_uint8(tiled(G, to_signed_unit(x.to(device)), tile, overlap)).cpu()
        except ConfigError as e:  # a size the network cannot take: say which file, and the way out
            way_out = "size=<pixels>" + ("" if tile is None else ", or choose another tile=<pixels>")
            raise ConfigError(f"{name}: {e}; or resize every input with {way_out}") from None
        if targets is not None:
            target_name = stems[Path(name).with_suffix("").as_posix()]
            t = resize_uint8(
                read_image(targets[1](target_name), G.out_channels, target_name)[None], y.shape[-2:]
            )
            # SR: bicubic | output | ground truth
            shown = x if x.shape[-2:] == y.shape[-2:] else imresize(x, size=tuple(y.shape[-2:]))
            y = torch.cat([as_channels(shown, y.shape[1]), y, t], dim=3)
        path = out / Path(name).with_suffix(".png")
        save_png(y[0], path)
        written.append(str(path))
    log.info("translated %d image(s) of %s -> %s", len(written), cfg.input, out)
    return {"generator": run_cfg.model.generator._target_, "direction": direction, "images": written}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="translate")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(translate, cfg)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
