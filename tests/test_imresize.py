"""``ganforge.imresize`` against MATLAB's ``imresize(..., 'bicubic')``.

Two references, neither sharing code with the module:

- PyPI ``bicubic-pytorch`` (a dev dependency): Sanghyun Son's resampler, whose own tests compare it with
  answers saved from MATLAB. Its ``imresize`` always computes in float32 and always resizes rows first,
  so the exact comparisons drive its 1-D ``core.resize_1d`` in float64 in MATLAB's order (smaller scale
  first; for ``uint8``, rounded after each pass as MATLAB's resampling kernel does); its own
  ``imresize`` is compared at float32 precision.
- ``_matlab_loops`` below: MATLAB's documented ``contributions`` algorithm, one output pixel at a time.
"""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pytest
import torch
from bicubic_pytorch import core as bicubic_pytorch
from PIL import Image

from ganforge.errors import ConfigError
from ganforge.imresize import imresize

from .conftest import SHARED_DATASETS
from .run_if import RunIf

SR_PHOTOS = SHARED_DATASETS / "sr-photos.zip"
needs_photos = pytest.mark.skipif(
    not SR_PHOTOS.is_file(), reason=f"{SR_PHOTOS} is not there (../shared beside the repo)"
)


@pytest.fixture(scope="module")
def butterfly() -> torch.Tensor:
    """Set5's butterfly, ``uint8 [3, 256, 256]``."""
    with zipfile.ZipFile(SR_PHOTOS) as z:
        rgb = np.array(Image.open(io.BytesIO(z.read("test/butterfly.png"))).convert("RGB"))
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 255)
    return torch.where(x - x.floor() >= 0.5, x.floor() + 1, x.floor())


def _reference(image: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None):
    """bicubic-pytorch's 1-D passes in float64, in MATLAB's order; ``uint8`` rounded after each pass."""
    h, w = image.shape[-2:]
    if scale is not None:
        size, scales = (math.ceil(h * scale), math.ceil(w * scale)), (scale, scale)
    else:
        scales = (size[0] / h, size[1] / w)
    x = image.double().reshape(-1, 1, h, w)
    for axis in (0, 1) if scales[0] <= scales[1] else (1, 0):
        x = bicubic_pytorch.resize_1d(x, -2 + axis, size=size[axis], scale=scales[axis])
        if image.dtype == torch.uint8:
            x = _round_half_away(x)
    return x.reshape(*image.shape[:-2], *x.shape[-2:])


def _keys(x: float) -> float:
    a = abs(x)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _matlab_loops(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Float64 ``[H, W]`` -> ``[out_h, out_w]``, MATLAB's algorithm written out pixel by pixel (1-based)."""

    def along_rows(img: np.ndarray, out_len: int) -> np.ndarray:
        in_len = img.shape[0]
        s = out_len / in_len
        width = 4 / s if s < 1 else 4.0
        out = np.zeros((out_len, img.shape[1]))
        for x in range(1, out_len + 1):
            u = x / s + 0.5 * (1 - 1 / s)
            left = math.floor(u - width / 2)
            acc, total = np.zeros(img.shape[1]), 0.0
            for j in range(left, left + math.ceil(width) + 2):
                wt = s * _keys(s * (u - j)) if s < 1 else _keys(u - j)
                k = (j - 1) % (2 * in_len)  # mirror: 1..n, n..1, repeated
                k = k if k < in_len else 2 * in_len - 1 - k
                acc += wt * img[k]
                total += wt
            out[x - 1] = acc / total
        return out

    if out_h / image.shape[0] <= out_w / image.shape[1]:
        return along_rows(along_rows(image, out_h).T, out_w).T
    return along_rows(along_rows(image.T, out_w).T, out_h)


# --- against the references -------------------------------------------------------------------------


@needs_photos
@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 4])
def test_butterfly_matches_reference(butterfly: torch.Tensor, scale: float) -> None:
    # x2/x3/x4 down as the benchmarks' LR images are made, and x4 up (the bicubic baseline)
    image = butterfly.double() / 255
    out = imresize(image, scale=scale)
    expected_hw = math.ceil(256 * scale)
    assert out.shape == (3, expected_hw, expected_hw) and out.dtype == torch.float64
    # measured: at most 4.5e-16 (summation order only)
    assert (out - _reference(image, scale=scale)).abs().max() < 1e-12

    out8 = imresize(butterfly, scale=scale)
    assert out8.dtype == torch.uint8
    assert torch.equal(out8, _reference(butterfly, scale=scale).to(torch.uint8))  # measured: identical

    # bicubic-pytorch's own entry point (float32 arithmetic, rows first)
    theirs = bicubic_pytorch.imresize(image.float().unsqueeze(0), scale=scale).squeeze(0)
    assert (imresize(image.float(), scale=scale).double() - theirs.double()).abs().max() < 2e-6


@needs_photos
@pytest.mark.parametrize("size", [(20, 31), (90, 17), (37, 106), (11, 53)])
def test_odd_crop_to_non_integer_sizes(butterfly: torch.Tensor, size: tuple[int, int]) -> None:
    crop = butterfly[:, 101:138, 40:93]  # 37 x 53: scales 20/37, 31/53, 90/37... none an integer
    image = crop.double() / 255
    out = imresize(image, size=size)
    assert out.shape == (3, *size)
    assert (out - _reference(image, size=size)).abs().max() < 1e-12
    loops = _matlab_loops(image[1].numpy(), *size)
    assert np.abs(out[1].numpy() - loops).max() < 1e-12
    assert torch.equal(imresize(crop, size=size), _reference(crop, size=size).to(torch.uint8))


def test_commutes_with_flips() -> None:
    # When the output spans the input exactly (out = in * scale), MATLAB's grid is symmetric about the image
    # centre and its mirror treats both borders alike, so resizing a flipped image gives the flipped result
    # (a shifted grid or a one-sided border would not). With ceil-rounded sizes the grid is not centred.
    image = torch.rand(2, 30, 40, dtype=torch.float64)
    for kwargs in ({"scale": 0.5}, {"scale": 2.5}, {"size": (11, 57)}, {"size": (7, 9)}):
        out = imresize(image, **kwargs)
        assert (imresize(image.flip(-1, -2), **kwargs) - out.flip(-1, -2)).abs().max() < 1e-12


# --- MATLAB facts that need no reference ------------------------------------------------------------


@pytest.mark.parametrize(("scale", "size"), [(0.25, None), (1 / 3, None), (4, None), (None, (7, 40))])
def test_constant_stays_constant(scale: float | None, size: tuple[int, int] | None) -> None:
    flat = torch.full((2, 3, 19, 23), 0.3, dtype=torch.float64)
    out = imresize(flat, scale=scale, size=size)
    assert (out - 0.3).abs().max() < 1e-14
    flat8 = torch.full((3, 19, 23), 77, dtype=torch.uint8)
    out8 = imresize(flat8, scale=scale, size=size)
    assert out8.dtype == torch.uint8 and bool((out8 == 77).all())


def test_output_size_is_ceil_of_scaled_size() -> None:
    image = torch.rand(1, 255, 129)
    assert imresize(image, scale=0.25).shape == (1, 64, 33)
    assert imresize(image, scale=1 / 3).shape == (1, 85, 43)
    assert imresize(image, scale=2.5).shape == (1, 638, 323)
    assert imresize(image[..., :10, :10], scale=1 / 3).shape == (1, 4, 4)


def test_index_mapping_on_a_ramp() -> None:
    # The bicubic kernel (also widened) reproduces linear functions away from the borders, so a ramp
    # i = 1..n shows where each output pixel x samples: u = x/s + 0.5 (1 - 1/s).
    ramp = torch.arange(1, 129, dtype=torch.float64).view(128, 1).expand(128, 5)
    for s in (0.5, 0.25, 2.0):
        out = imresize(ramp, size=(int(128 * s), 5))[:, 0]
        x = torch.arange(1, len(out) + 1, dtype=torch.float64)
        u = x / s + 0.5 * (1 - 1 / s)
        interior = slice(3, -3)  # taps inside the image
        assert (out[interior] - u[interior]).abs().max() < 1e-12


def test_uint8_out_is_rounded_and_clamped() -> None:
    torch.manual_seed(0)
    image = (torch.rand(3, 40, 40) > 0.5).to(torch.uint8) * 255  # overshoots at every edge
    out = imresize(image, scale=3)
    assert out.dtype == torch.uint8
    unclamped = imresize(image.double(), scale=3)
    assert unclamped.min() < 0 and unclamped.max() > 255  # the cubic's ringing, clamped in uint8
    assert out.min() == 0 and out.max() == 255
    # half-way values round away from zero, as MATLAB's uint8(): 1x2 -> 1x1 averages 100 and 101
    assert imresize(torch.tensor([[100, 101]], dtype=torch.uint8), size=(1, 1)).item() == 101


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_scale_one_is_identity(dtype: torch.dtype) -> None:
    image = (torch.rand(2, 3, 17, 12) * 255).to(dtype)
    for out in (imresize(image, scale=1), imresize(image, scale=1.0), imresize(image, size=(17, 12))):
        assert out.dtype == dtype and torch.equal(out, image) and out.data_ptr() != image.data_ptr()


def test_dtypes_and_leading_dims() -> None:
    image = torch.rand(2, 3, 30, 21, dtype=torch.float64)
    out = imresize(image, scale=0.5)
    assert out.shape == (2, 3, 15, 11)
    assert (out[1, 2] - imresize(image[1, 2], scale=0.5)).abs().max() < 1e-15  # [H, W] and batched agree
    as32 = imresize(image.float(), scale=0.5)
    inside64 = imresize(image.float().double(), scale=0.5).float()
    assert as32.dtype == torch.float32 and torch.equal(as32, inside64)  # float64 inside, one rounding
    assert imresize(image.half(), scale=0.5).dtype == torch.float16


def test_gradients_flow() -> None:
    image = torch.rand(1, 12, 12, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x: imresize(x, scale=0.5), (image,))


@RunIf(min_gpus=1)
def test_cuda_matches_cpu() -> None:
    image = torch.rand(2, 3, 70, 45, dtype=torch.float64)
    for kwargs in ({"scale": 0.25}, {"scale": 3}, {"size": (33, 100)}):
        on_gpu = imresize(image.cuda(), **kwargs)
        assert on_gpu.device.type == "cuda"
        assert (on_gpu.cpu() - imresize(image, **kwargs)).abs().max() < 1e-12
        image8 = (image * 255).to(torch.uint8)
        on_gpu8 = imresize(image8.cuda(), **kwargs).cpu()
        assert (on_gpu8.int() - imresize(image8, **kwargs).int()).abs().max() <= 1


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (torch.rand(3, 8, 8), {"scale": 0}, r"scale must be a finite number > 0"),
        (torch.rand(3, 8, 8), {"scale": -0.5}, r"scale must be a finite number > 0"),
        (torch.rand(3, 8, 8), {"scale": float("nan")}, r"scale must be a finite number > 0"),
        (torch.rand(3, 8, 8), {"scale": 0.5, "size": (4, 4)}, r"exactly one of scale= .* or size="),
        (torch.rand(3, 8, 8), {}, r"exactly one of scale= .* or size="),
        (torch.rand(3, 8, 8), {"size": (4, 0)}, r"size must be two positive integers"),
        (torch.rand(3, 8, 8), {"size": (4.5, 4)}, r"size must be two positive integers"),
        (torch.rand(3, 8, 8), {"size": 4}, r"size must be two positive integers"),
        (torch.rand(8), {"scale": 0.5}, r"at least 2 dims\), got shape \(8,\); pass e\.g\. \[H, W\]"),
        (torch.zeros(3, 8, 8, dtype=torch.int64), {"scale": 0.5}, r"uint8 or floating-point.*torch\.int64"),
        (torch.zeros(3, 8, 8, dtype=torch.bool), {"scale": 0.5}, r"uint8 or floating-point.*torch\.bool"),
        (torch.zeros(3, 0, 8), {"scale": 0.5}, r"empty image"),
    ],
)
def test_bad_input_is_a_config_error(image: torch.Tensor, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        imresize(image, **kwargs)
