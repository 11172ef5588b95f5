"""Pixel-range conversions, one home for all: data travels as ``uint8`` in ``[0, 255]``, networks work in
``[-1, 1]``, image files and grids want ``[0, 1]`` or ``uint8`` again."""

from __future__ import annotations

import torch


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [0, 255]`` -> float ``[-1, 1]``; float data (e.g. 2-D points) passes through as float32."""
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0)
    return images.float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float ``[-1, 1]`` (values outside are clipped) -> ``uint8 [0, 255]``, rounded to nearest."""
    return images.float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Float ``[-1, 1]`` (clipped) -> ``[0, 1]``, what image grids and ``save_image`` take."""
    return images.clamp(-1, 1).add(1).div(2)


def to_pixel_range(x: torch.Tensor) -> torch.Tensor:
    """``uint8`` in ``[0, 255]`` or float in ``[-1, 1]`` -> float64 in ``[0, 255]``.

    Floats outside ``[-1, 1]`` are an error, not clamped: they usually mean images in ``[0, 1]`` or
    ``[0, 255]`` were passed, which would give plausible but wrong numbers.
    """
    if x.dtype == torch.uint8:
        return x.double()
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got {x.dtype}")
    lo, hi = torch.aminmax(x)
    if lo < -1 or hi > 1:
        raise ValueError(
            f"float images must lie in [-1, 1], got values in [{float(lo):.4g}, {float(hi):.4g}]; "
            "clamp generator outputs or pass uint8 images"
        )
    return (x.double() + 1) * 127.5
