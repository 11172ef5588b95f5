"""Scoring image -> image generators on test photos of different sizes (super-resolution): BasicSR's
PSNR/SSIM protocol end to end against scikit-image on real photos, the protocol's defaults and record,
FID/KID of output crops, and translate's tiling (exact for a network of known receptive field)."""

from __future__ import annotations

import functools
import io
import itertools
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn
from torch.nn import functional as F

from ganforge.callbacks.metrics import GenerativeMetrics
from ganforge.errors import ConfigError
from ganforge.metrics.evaluate import (
    check_feature_tile,
    evaluate_on_data,
    evaluate_translation,
    image_protocol,
    tiles,
)
from ganforge.metrics.extractors import build_extractor
from ganforge.translate import check_tiling, tile_spans, tiled

from .conftest import SHARED_DATASETS

SR_PHOTOS = SHARED_DATASETS / "sr-photos.zip"
SCALE = 4
TOL = 1e-6  # dB for PSNR, absolute for SSIM
SKIMAGE_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}


class Bicubic(nn.Module):
    """A fixed "generator": torch's bicubic upscaling by ``scale`` (overshoots [-1, 1] at edges, which the
    pipeline clamps). The parameter is unused; it tells the pipeline which device to run on."""

    def __init__(self, scale: int = SCALE, channels: int = 3) -> None:
        super().__init__()
        self.in_channels = self.out_channels = channels
        self.scale = scale
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


class FakeSRData:
    """The super-resolution datamodule's test interface: lists of LR inputs and HR targets."""

    kind = "pairs"

    def __init__(self, inputs: list[torch.Tensor], targets: list[torch.Tensor], scale: int | None) -> None:
        self.inputs, self.targets = inputs, targets
        if scale is not None:
            self.scale = scale
        self.test_names = [f"{i}.png" for i in range(len(inputs))]

    def test_pairs(self, max_n: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.inputs[:max_n], self.targets[:max_n]


@functools.cache
def hr_photos() -> list[torch.Tensor]:
    """Set5's butterfly and three scikit-image photos, ``uint8 [3, H, W]``, cropped to multiples of 4."""
    if not SR_PHOTOS.is_file():
        pytest.skip(f"{SR_PHOTOS} is not there (../shared beside the repo)")
    with zipfile.ZipFile(SR_PHOTOS) as z:
        butterfly = np.asarray(Image.open(io.BytesIO(z.read("test/butterfly.png"))).convert("RGB"))
    photos = [butterfly, data.astronaut(), data.coffee(), data.chelsea()]
    out = []
    for p in photos:
        h, w = p.shape[0] // SCALE * SCALE, p.shape[1] // SCALE * SCALE
        out.append(torch.from_numpy(np.array(p[:h, :w])).permute(2, 0, 1).contiguous())
    return out


def downscale(hr: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    """The LR input: torch's antialiased bicubic downscale, rounded to ``uint8``."""
    small = F.interpolate(hr[None].double(), scale_factor=1 / scale, mode="bicubic", antialias=True)
    return small[0].round().clamp(0, 255).to(torch.uint8)


def saved_output(generator: nn.Module, lr: torch.Tensor) -> np.ndarray:
    """G's output as translate.py saves it, computed here in numpy: HWC ``uint8``."""
    with torch.no_grad():
        y = generator(lr[None].float() / 127.5 - 1)[0].numpy()
    return (
        np.clip(np.round((y.astype(np.float32) + 1) * np.float32(127.5)), 0, 255)
        .astype(np.uint8)
        .transpose(1, 2, 0)
    )


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y in float64 from a ``uint8`` HWC image (MATLAB's rgb2ycbcr formula, not rounded)."""
    return rgb.astype(np.float64) @ (np.array([65.481, 128.553, 24.966]) / 255) + 16


def skimage_scores(out: np.ndarray, ref: np.ndarray, crop: int) -> tuple[float, float]:
    y_out, y_ref = (luma(a)[crop:-crop, crop:-crop] for a in (out, ref))
    return (
        peak_signal_noise_ratio(y_ref, y_out, data_range=255),
        structural_similarity(y_ref, y_out, **SKIMAGE_SSIM),
    )


# -- BasicSR's protocol on real photos -------------------------------------------------------------------


def test_psnr_ssim_of_variable_size_photos_equal_skimage_on_y_crops() -> None:
    targets = hr_photos()
    inputs = [downscale(t) for t in targets]
    G = Bicubic().eval()
    options = {"crop_border": SCALE, "test_y_channel": True}
    reference = []
    for lr, hr in zip(inputs, targets, strict=True):
        out = saved_output(G, lr)
        assert out.shape == hr.permute(1, 2, 0).shape
        reference.append(skimage_scores(out, hr.permute(1, 2, 0).numpy(), SCALE))
        one = evaluate_translation(G, [lr], [hr], None, ["psnr", "ssim"], image_options=options)["results"]
        assert abs(one["psnr"] - reference[-1][0]) < TOL and abs(one["ssim"] - reference[-1][1]) < TOL
    ref_psnr, ref_ssim = np.mean(reference, axis=0)  # per image, then the mean (BasicSR)
    out = evaluate_translation(G, inputs, targets, None, ["psnr", "ssim"], image_options=options)
    assert abs(out["results"]["psnr"] - ref_psnr) < TOL and abs(out["results"]["ssim"] - ref_ssim) < TOL
    assert all(20 < p < 40 and 0.5 < s < 0.99 for p, s in reference)  # outputs are not the targets
    assert out["protocol"]["crop_border"] == SCALE and out["protocol"]["test_y_channel"] is True
    assert out["protocol"]["num_samples"] == 4

    # the datamodule's scale gives the same numbers by default (crop_border = scale, Y channel)
    sr = FakeSRData(inputs, targets, scale=SCALE)
    by_default = evaluate_on_data(G, sr, None, ["psnr", "ssim"], 10, None, "unused", {})
    assert by_default["results"] == out["results"]
    assert by_default["protocol"]["crop_border"] == SCALE and by_default["protocol"]["test_y_channel"] is True


def test_list_and_stacked_pairs_score_alike_and_paired_defaults_are_unchanged() -> None:
    targets = [t[:, :128, :96] for t in hr_photos()]
    inputs = [downscale(t) for t in targets]
    G = Bicubic().eval()
    stacked = evaluate_translation(G, torch.stack(inputs), torch.stack(targets), None, ["psnr", "ssim", "l1"])
    listed = evaluate_translation(G, inputs, targets, None, ["psnr", "ssim", "l1"])
    for name in ("psnr", "ssim", "l1"):
        assert listed["results"][name] == pytest.approx(stacked["results"][name], abs=1e-12)
    assert stacked["protocol"]["crop_border"] == 0 and stacked["protocol"]["test_y_channel"] is False
    assert "feature_tile" not in stacked["protocol"] and listed["protocol"]["feature_tile"] == 128
    # paired data without a scale (pix2pix): whole RGB images, as before
    assert image_protocol(FakeSRData(inputs, targets, None)) == {"crop_border": 0, "test_y_channel": False}
    assert image_protocol(FakeSRData(inputs, targets, 3)) == {"crop_border": 3, "test_y_channel": True}
    sr = FakeSRData(inputs, targets, 4)
    assert image_protocol(sr, "scale", False) == {"crop_border": 4, "test_y_channel": False}
    assert image_protocol(sr, 0, None) == {"crop_border": 0, "test_y_channel": True}
    with pytest.raises(ConfigError, match="crop_border=scale needs super-resolution data"):
        image_protocol(FakeSRData(inputs, targets, None), "scale")
    for bad in (-1, "4", 2.5):
        with pytest.raises(ConfigError, match="crop_border"):
            image_protocol(sr, bad)
    with pytest.raises(ConfigError, match="test_y_channel"):
        image_protocol(sr, None, "yes")


def test_y_channel_of_grey_images_is_the_grey_itself() -> None:
    """BasicSR converts 3-channel images only: a grey image is measured as it is."""
    grey = [
        torch.from_numpy(data.camera()[:200, :160].copy())[None],
        torch.from_numpy(data.moon()[:96, :128].copy())[None],
    ]
    inputs = [downscale(t) for t in grey]
    G = Bicubic(channels=1).eval()
    with_y, without = (
        evaluate_translation(
            G, inputs, grey, None, ["psnr", "ssim"], image_options={"crop_border": 4, "test_y_channel": y}
        )
        for y in (True, False)
    )
    assert with_y["results"] == without["results"]
    assert with_y["protocol"]["test_y_channel"] is True  # recorded as asked


# -- FID/KID of output crops -------------------------------------------------------------------------------


def test_tiles_are_the_non_overlapping_crops() -> None:
    image = torch.arange(3 * 70 * 100).view(3, 70, 100)
    t = tiles(image, 32)
    assert t.shape == (2 * 3, 3, 32, 32)
    assert torch.equal(t[0], image[:, :32, :32]) and torch.equal(t[4], image[:, 32:64, 32:64])
    assert torch.equal(t[5], image[:, 32:64, 64:96])
    assert tiles(image, 128).shape == (0, 3, 128, 128)


def test_fid_kid_of_variable_size_photos_score_output_crops() -> None:
    targets = [t[:, :256, :384] for t in hr_photos()[1:]] + [hr_photos()[0][:, :200, :136]]
    inputs = [downscale(t) for t in targets]
    G = Bicubic().eval()
    tiny = build_extractor("tiny")
    out = evaluate_translation(
        G, inputs, targets, tiny, ["fid", "kid", "psnr"], kid_subsets=5, kid_subset_size=10, feature_tile=64
    )
    # 256x384 -> 4 x 6 tiles of 64 for each of three photos; 200x136 -> 3 x 2 (strips narrower dropped)
    assert out["protocol"]["feature_tiles"] == 3 * 24 + 6 and out["protocol"]["feature_tile"] == 64
    assert "output crops" in out["protocol"]["features"]
    assert out["results"]["fid"] > 0 and np.isfinite(out["results"]["kid"])
    blocky = [t.repeat_interleave(4, 1).repeat_interleave(4, 2) for t in inputs]  # what Nearest4 makes
    same = evaluate_translation(Nearest4(), inputs, blocky, tiny, ["fid"], feature_tile=64)
    assert abs(same["results"]["fid"]) < 1e-3  # identical crops: FID 0 (up to the matrix square root)
    with pytest.raises(ConfigError, match="larger than every test image"):
        evaluate_translation(G, inputs, targets, tiny, ["fid"], feature_tile=512)


class Nearest4(nn.Module):
    """Nearest-neighbour x4 upscaling: its outputs are exactly the blocky targets made the same way."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="nearest")


def test_feature_tile_below_16_is_a_config_error() -> None:
    assert check_feature_tile(16) == 16
    for bad in (8, 0, 15, 64.0, True):
        with pytest.raises(ConfigError, match="feature_tile"):
            check_feature_tile(bad)
    with pytest.raises(ConfigError, match="feature_tile=8"):
        GenerativeMetrics(feature_tile=8)
    with pytest.raises(ConfigError, match="crop_border"):
        GenerativeMetrics(crop_border="half")
    inputs = [torch.zeros(3, 8, 8, dtype=torch.uint8)]
    with pytest.raises(ConfigError, match="feature_tile"):
        evaluate_translation(
            Bicubic(), inputs, [torch.zeros(3, 32, 32, dtype=torch.uint8)], None, ["psnr"], feature_tile=4
        )


# -- tiled translation -------------------------------------------------------------------------------------


def receptive_net(seed: int = 0) -> nn.Module:
    """Three 3x3 convolutions and a x2 pixel shuffle: each output pixel sees 3 input pixels to each side."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 3 * 4, 3, padding=1),
        nn.PixelShuffle(2),
    ).eval()


RADIUS = 3


def near_core_borders(size: int, tile: int, overlap: int) -> torch.Tensor:
    """Input pixels closer than ``RADIUS`` to an inner edge of their tile's core."""
    near = torch.zeros(size, dtype=torch.bool)
    for c0, c1, _, _ in tile_spans(size, tile, overlap):
        if c0 > 0:
            near[c0 : c0 + RADIUS] = True
        if c1 < size:
            near[max(c1 - RADIUS, 0) : c1] = True
    return near


def test_tile_spans_cover_every_pixel_once_with_context() -> None:
    for size, tile, overlap in [(100, 32, 4), (77, 32, 0), (77, 20, 9), (500, 128, 16), (64, 64, 16)]:
        spans = tile_spans(size, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # cores partition the axis
        for c0, c1, w0, w1 in spans:
            assert w1 - w0 == min(tile, size) and w0 >= 0 and w1 <= size
            assert w0 <= max(c0 - overlap, 0) and w1 >= min(c1 + overlap, size)
    assert tile_spans(100, 32, 4) == [
        (0, 24, 0, 32), (24, 48, 20, 52), (48, 72, 44, 76), (72, 96, 68, 100), (96, 100, 68, 100)
    ]  # fmt: skip


@torch.no_grad()
def test_tiling_with_overlap_of_the_receptive_radius_is_exact() -> None:
    net = receptive_net()
    image = torch.rand(2, 3, 100, 77, generator=torch.Generator().manual_seed(1)) * 2 - 1
    whole = net(image)
    assert whole.shape == (2, 3, 200, 154)
    for tile, overlap in [(32, RADIUS), (32, 8), (20, 9), (64, 16), (100, 3)]:
        got = tiled(net, image, tile, overlap)
        assert got.shape == whole.shape
        assert (got - whole).abs().max() < 1e-5, (tile, overlap)
    assert torch.equal(tiled(net, image, None, 16), whole) and torch.equal(tiled(net, image, 128, 16), whole)

    # without context: wrong near the cores' inner edges, exact farther than the receptive radius
    got = tiled(net, image, 32, 0)
    near = near_core_borders(100, 32, 0)[:, None] | near_core_borders(77, 32, 0)[None, :]
    near = near.repeat_interleave(2, 0).repeat_interleave(2, 1)  # input pixel -> its 2x2 output pixels
    diff = (got - whole).abs().amax(dim=(0, 1))
    assert diff[~near].max() < 1e-5
    assert diff[near].max() > 1e-3


def test_tiles_too_small_for_their_overlap_are_config_errors() -> None:
    check_tiling(None, 16)
    check_tiling(33, 16)
    for tile, overlap in [(32, 16), (10, 8), (0, 0)]:
        with pytest.raises(ConfigError, match=r"raise tile|tile=0"):
            check_tiling(tile, overlap)
    with pytest.raises(ConfigError, match=r"raise tile above 32 or lower tile_overlap below 16"):
        tiled(receptive_net(), torch.zeros(1, 3, 64, 64), 32, 16)
    with pytest.raises(ConfigError, match="tile_overlap"):
        check_tiling(64, -1)
