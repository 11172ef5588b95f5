"""MATLAB-compatible bicubic ``imresize`` for PyTorch tensors.

The super-resolution benchmarks' low-resolution inputs (Set5/Set14 ``LRbicx4``, DIV2K ``X4``...) were
made with MATLAB's ``imresize(hr, 1/s, 'bicubic')``. PIL's and ``torch.nn.functional.interpolate``'s
bicubic differ from it (no antialiasing or a different one, another cubic, other boundary handling), and
LR images made with them give PSNR numbers that do not match the papers'. This module reproduces
MATLAB's algorithm:

- Keys' cubic kernel with ``a = -0.5``, widened by ``1/scale`` when downscaling (antialiasing);
- output pixel ``x`` (1-based) sits at input coordinate ``u = x/scale + 0.5 * (1 - 1/scale)``;
- out-of-range taps mirror the image with its edge pixel repeated (MATLAB's ``symmetric``);
- two 1-D passes, the dimension with the smaller scale factor first (rows first on a tie);
- ``uint8`` images are rounded (half away from zero) and clamped to ``[0, 255]`` after *each* pass, as
  MATLAB's resampling kernel writes every pass in the input's class.

Each pass is a matrix product with a dense ``[out, in]`` weight matrix, built once per
``(in_len, out_len, scale)`` and device and cached.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import torch

from ganforge.errors import ConfigError

__all__ = ["imresize"]

_KERNEL_WIDTH = 4.0  # support of the bicubic kernel, in input pixels, before antialiasing


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5``."""
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def _weights_cpu(in_len: int, out_len: int, scale: float) -> torch.Tensor:
    """The ``[out_len, in_len]`` float64 matrix of one pass, following MATLAB's ``contributions``."""
    antialias = scale < 1
    width = _KERNEL_WIDTH / scale if antialias else _KERNEL_WIDTH
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)  # 1-based, may fall outside
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if antialias else _cubic(dist)
    w = w / w.sum(dim=1, keepdim=True)
    # Mirror with the edge repeated: 1..n, n..1, periodically (MATLAB's aux/mod indexing).
    period = 2 * in_len
    k = torch.remainder(idx.long() - 1, period)
    k = torch.where(k < in_len, k, period - 1 - k)
    matrix = torch.zeros(out_len, in_len, dtype=torch.float64)
    matrix.scatter_add_(1, k, w)
    return matrix


@lru_cache(maxsize=64)
def _weights(in_len: int, out_len: int, scale: float, device: torch.device) -> torch.Tensor:
    return _weights_cpu(in_len, out_len, scale).to(device)


def _round_uint8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to ``[0, 255]`` and round half away from zero (MATLAB's conversion to ``uint8``), as float."""
    x = x.clamp(0, 255)
    floor = torch.floor(x)
    return floor + (x - floor >= 0.5).to(x.dtype)


def _check(image: object, scale: object, size: object) -> None:
    if not isinstance(image, torch.Tensor):
        raise ConfigError(
            f"imresize takes a torch.Tensor image of shape [..., H, W], got {type(image).__name__}"
        )
    if image.dim() < 2:
        raise ConfigError(
            "imresize takes an image of shape [..., H, W] (at least 2 dims), "
            f"got shape {tuple(image.shape)}; pass e.g. [H, W], [C, H, W] or [N, C, H, W]"
        )
    if image.dtype != torch.uint8 and not image.is_floating_point():
        raise ConfigError(
            f"imresize takes uint8 or floating-point images, got {image.dtype}; "
            "convert with .float() (values kept as they are) or .to(torch.uint8)"
        )
    if image.shape[-2] == 0 or image.shape[-1] == 0:
        raise ConfigError(f"imresize got an empty image of shape {tuple(image.shape)}; H and W must be >= 1")
    if (scale is None) == (size is None):
        raise ConfigError(
            "imresize takes exactly one of scale= (e.g. scale=0.25 for x4 down) or size=(h, w), "
            f"got scale={scale!r} and size={size!r}"
        )
    if scale is not None and (
        isinstance(scale, bool)
        or not isinstance(scale, numbers.Real)
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise ConfigError(
            "imresize scale must be a finite number > 0 (e.g. 0.25 to shrink 4x, 2 to enlarge 2x), "
            f"got {scale!r}"
        )
    if size is not None and (
        isinstance(size, (str, bytes))
        or not hasattr(size, "__len__")
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in size)
    ):
        raise ConfigError(f"imresize size must be two positive integers (h, w), got {size!r}")


def imresize(
    image: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Resize the last two dims of ``image`` as MATLAB's ``imresize(image, scale_or_size, 'bicubic')``.

    Args:
        image: ``[..., H, W]`` (``[H, W]``, ``[C, H, W]``, ``[N, C, H, W]``...), ``uint8`` or float, on any
            device; the result stays on it.
        scale: output is ``(ceil(H * scale), ceil(W * scale))`` and the kernel uses ``scale`` itself, as
            MATLAB (``scale=0.25`` makes x4 LR images).
        size: output ``(h, w)``; the kernel uses ``h / H`` and ``w / W``. Give exactly one of the two.

    Returns:
        Float input: the same dtype, not rounded or clamped. The arithmetic is float64 for every float
        dtype (a float32 result is the float64 result rounded once to float32). ``uint8`` input: ``uint8``,
        computed in float64 and rounded half away from zero and clamped to ``[0, 255]`` after each of the
        two passes, as MATLAB does.

    Raises:
        ConfigError: not a tensor of >= 2 dims, dtype neither ``uint8`` nor float, both or neither of
            ``scale`` and ``size``, ``scale <= 0``, or ``size`` not two positive integers.
    """
    _check(image, scale, size)
    in_h, in_w = image.shape[-2], image.shape[-1]
    if scale is not None:
        scale = float(scale)
        out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
        scales = (scale, scale)
    else:
        out_h, out_w = int(size[0]), int(size[1])
        scales = (out_h / in_h, out_w / in_w)
    is_uint8 = image.dtype == torch.uint8
    x = image.to(torch.float64)
    # MATLAB's order: ascending scale, stable (rows first on a tie). It only shows in uint8 results (each
    # pass is rounded) and in float64 rounding; the two passes commute otherwise.
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        if scales[axis] == 1 and (in_h, in_w)[axis] == (out_h, out_w)[axis]:
            continue  # MATLAB's weights are the identity here
        if axis == 0:
            x = torch.matmul(_weights(in_h, out_h, scales[0], x.device), x)
        else:
            x = torch.matmul(x, _weights(in_w, out_w, scales[1], x.device).T)
        if is_uint8:
            x = _round_uint8(x)
    out = x.to(image.dtype)
    return out.clone() if out is image else out
