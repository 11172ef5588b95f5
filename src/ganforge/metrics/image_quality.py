"""Full-reference image metrics for image-to-image tasks (Pix2Pix, super-resolution): PSNR, SSIM, L1, LPIPS,
and ``inception_l1``, a perceptual distance that runs offline.

Every function takes a batch of outputs and a batch of targets ``[N, C, H, W]``, either ``uint8`` in
``[0, 255]`` or float in ``[-1, 1]`` (a generator's tanh range), and returns one float64 value per
image, ``[N]``: papers (BasicSR) average per image, not over pooled pixels.

* PSNR: BasicSR's ``calculate_psnr`` (data range 255, MSE over the cropped image, ``inf`` if equal).
* SSIM: scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``, which is also BasicSR's ``calculate_ssim``
  (11x11 Gaussian window, mean over the pixels the window fits in, per-channel mean), in float64 torch.
* ``y_channel=True``: the ITU-R BT.601 luma of MATLAB's ``rgb2ycbcr`` (BasicSR's ``test_y_channel``).
  BasicSR rounds Y to float32 on the way; here it stays float64 (see ``rgb_to_y``).
* ``crop_border``: pixels dropped at each edge before measuring (SR papers crop the scale factor).
* LPIPS: torchmetrics' network with torchvision's ImageNet backbone read from a file; nothing is
  downloaded (``LPIPSWeightsNotFoundError`` says where to put the file).

BasicSR measures images saved as ``uint8``; pass ``uint8`` outputs to reproduce its numbers exactly.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganforge.errors import ConfigError, GanforgeError
from ganforge.images import to_pixel_range
from ganforge.pretrained import find_torchvision_weights, torchvision_hub_path, torchvision_weights_url

# ITU-R BT.601 luma for RGB in [0, 1] giving Y in [16, 235] (MATLAB rgb2ycbcr, BasicSR, scikit-image)
BT601_Y = (65.481, 128.553, 24.966)
SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_TRUNCATE = 0.01, 0.03, 1.5, 3.5


class LPIPSWeightsNotFoundError(GanforgeError):
    """No ImageNet backbone weights for LPIPS on this machine (nothing is downloaded)."""


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``[N, 1, H, W]`` in ``[16, 235]`` (float64, 0-255 scale); grey images pass unchanged.

    Same as MATLAB's/BasicSR's ``rgb2ycbcr(..., y_only)`` and ``skimage.color.rgb2ycbcr(...)[..., 0]``;
    BasicSR rounds Y to float32: its PSNR differs by < 1e-6 dB (3.6e-7 at most on the test photos).
    """
    return _luma(to_pixel_range(x))


def _luma(pixels: torch.Tensor) -> torch.Tensor:
    if pixels.shape[1] == 1:
        return pixels
    if pixels.shape[1] != 3:
        raise ValueError(f"the Y channel needs RGB or grey images, got {pixels.shape[1]} channels")
    weights = torch.tensor(BT601_Y, dtype=torch.float64, device=pixels.device).view(1, 3, 1, 1)
    return (pixels / 255 * weights).sum(1, keepdim=True) + 16


def _prepare(
    x: torch.Tensor, y: torch.Tensor, crop_border: int = 0, y_channel: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches in float64 ``[0, 255]``, cropped and optionally reduced to Y (BasicSR's order)."""
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"need two batches [N, C, H, W] of one shape, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    c = int(crop_border)
    if c < 0 or 2 * c >= min(x.shape[-2:]):
        raise ValueError(f"crop_border={crop_border} leaves nothing of {tuple(x.shape[-2:])} images")
    a, b = to_pixel_range(x), to_pixel_range(y).to(x.device)
    if c:
        a, b = a[..., c:-c, c:-c], b[..., c:-c, c:-c]
    return (_luma(a), _luma(b)) if y_channel else (a, b)


def psnr(x: torch.Tensor, y: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """PSNR in dB per image, data range 255 (BasicSR ``calculate_psnr``); ``inf`` for identical images."""
    a, b = _prepare(x, y, crop_border, y_channel)
    mse = (a - b).square().mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0**2 / mse)  # mse 0 -> 255^2/0 = inf -> inf


def _gaussian_window(device: torch.device) -> torch.Tensor:
    """scipy.ndimage's 1-D Gaussian (radius ``int(3.5 * 1.5 + 0.5) = 5``: 11 taps), as skimage uses."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 / SSIM_SIGMA**2 * t**2)
    return w / w.sum()


def _valid_filter(z: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' correlation over the last two axes as sums of shifted slices.

    Float64 ``conv2d`` on CPU is 2-3x slower than these 2 x 11 multiply-adds and needs reshaping.
    """
    k, h, w = len(win), z.shape[-2], z.shape[-1]
    z = sum(win[i] * z[..., i : h - k + 1 + i, :] for i in range(k))
    return sum(win[i] * z[..., i : w - k + 1 + i] for i in range(k))


def ssim(x: torch.Tensor, y: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """SSIM per image: scikit-image's Gaussian-weighted SSIM (see module docstring), mean over channels.

    skimage filters with scipy's ``'reflect'`` (edge-repeating) padding and then averages only the pixels
    at least 5 (the window radius) from the edge: exactly the pixels no padding reaches. A 'valid'
    convolution therefore gives the same numbers (BasicSR's ``_ssim`` computes it that way).
    """
    a, b = _prepare(x, y, crop_border, y_channel)
    win = _gaussian_window(a.device)
    if min(a.shape[-2:]) < len(win):
        raise ValueError(
            f"SSIM's {len(win)}x{len(win)} window does not fit into {tuple(a.shape[-2:])} images"
        )
    ux, uy, uxx, uyy, uxy = _valid_filter(torch.stack([a, b, a * a, b * b, a * b]), win)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # population (co)variances
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the ``[0, 1]`` scale (Pix2Pix's L1 loss is on ``[-1, 1]``: 2x)."""
    a, b = _prepare(x, y)
    return (a - b).abs().mean(dim=(1, 2, 3)) / 255


# -- LPIPS -------------------------------------------------------------------------------------------

# torchmetrics' net_type -> the torchvision architecture whose ImageNet weights LPIPS was trained on
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def _check_net(net: str) -> str:
    if net not in LPIPS_BACKBONES:
        raise ConfigError(f"LPIPS net {net!r} is unknown; choose one of {', '.join(LPIPS_BACKBONES)}")
    return net


def lpips_backbone_url(net: str) -> str:
    """The download URL of torchvision's default ImageNet weights (``IMAGENET1K_V1``) for ``net``."""
    return torchvision_weights_url(LPIPS_BACKBONES[_check_net(net)])


def lpips_hub_path(net: str) -> Path:
    """Where torchvision keeps that download: ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub``)."""
    return torchvision_hub_path(LPIPS_BACKBONES[_check_net(net)])


def lpips_weights_path(net: str = "alex", weights: str | Path | None = None) -> Path:
    """The backbone file to use: ``weights`` if given, else torchvision's hub cache; else the error."""
    arch = LPIPS_BACKBONES[_check_net(net)]
    return find_torchvision_weights(arch, weights, LPIPSWeightsNotFoundError, f"LPIPS (net={net!r})")


class LPIPS(nn.Module):
    """torchmetrics' LPIPS network (linear layers shipped in its package) with the backbone from a file.

    torchmetrics' own classes build the backbone with ``weights=DEFAULT``, i.e. they download it when it
    is not cached; here the backbone starts untrained and is overwritten from the file, and every layer
    must be filled (strict loading), so an incomplete file is an error rather than a random network.
    """

    def __init__(self, net: str = "alex", weights: str | Path | None = None) -> None:
        super().__init__()
        import torchmetrics.functional.image.lpips as tm_lpips

        path = lpips_weights_path(_check_net(net), weights)
        self.net_type, self.weights_source = net, str(path)
        lins = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth"
        with torch.device("meta"):  # no time spent on random initialisation: every tensor is loaded below
            self.net = tm_lpips._NoTrainLpips(pretrained=False, net=net, pnet_rand=True)
        self.net.scaling_layer = tm_lpips.ScalingLayer()  # its constants are not in the state dict
        try:
            backbone = torch.load(path, map_location="cpu", weights_only=True)
            linear = torch.load(lins, map_location="cpu", weights_only=True)

            def source(key: str) -> torch.Tensor:  # every tensor of the network, from one of the two files
                if key.startswith("net."):  # net.slice1.0.weight (alex, vgg), net.slices.0.0.weight (squeeze)
                    return backbone[re.sub(r"^net\.(slice\d+|slices\.\d+)\.", "features.", key)]
                return linear[re.sub(r"^lins\.(\d+)\.", r"lin\1.", key)]  # lins: a list of lin0, lin1...

            self.net.load_state_dict({key: source(key) for key in self.net.state_dict()}, assign=True)
        except Exception as e:
            raise LPIPSWeightsNotFoundError(
                f"cannot use {path} with torchmetrics' LPIPS layers {lins} ({type(e).__name__}: {e}); "
                f"give torchvision's {LPIPS_BACKBONES[net]} ImageNet state dict "
                f"{os.path.basename(lpips_backbone_url(net))}"
            ) from e
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image (float64 ``[N]``); grey images are repeated to 3 channels."""
        a, b = (t / 127.5 - 1 for t in _prepare(x, y))
        a, b = (t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t for t in (a, b))
        device = next(self.parameters()).device
        return self.net(a.float().to(device), b.float().to(device)).reshape(-1).double()


@functools.lru_cache(maxsize=4)
def _cached_lpips(net: str, path: str, mtime_ns: int) -> LPIPS:
    return LPIPS(net, path)


def lpips(
    x: torch.Tensor, y: torch.Tensor, net: str = "alex", weights: str | Path | None = None
) -> torch.Tensor:
    """LPIPS per image with the network loaded once per (net, weights file) and run on ``x``'s device."""
    path = lpips_weights_path(_check_net(net), weights)
    return _cached_lpips(net, str(path), path.stat().st_mtime_ns).to(x.device)(x, y)


@functools.lru_cache(maxsize=1)
def _inception_l1_loss() -> nn.Module:
    from ganforge.losses.perceptual import PerceptualLoss  # the metrics' own Inception, found the same way

    return PerceptualLoss(weight=1.0, network="inception", criterion="l1")


@torch.no_grad()
def inception_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """An offline perceptual distance per image (float64 ``[N]``, lower is closer): the mean L1 between
    the ImageNet Inception's ``Mixed_5d`` features of output and target, the FID network's weights
    (no download). Not LPIPS: no learned per-channel weights, not calibrated on human judgements; it
    ranks blur as worse than noise as LPIPS does (``python -m ganforge.benchmarks.perceptual_probe``)."""
    a, b = (t / 127.5 - 1 for t in _prepare(x, y))
    a, b = (t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t for t in (a, b))
    loss = _inception_l1_loss().to(x.device)
    return torch.stack([loss(a[i : i + 1].float(), b[i : i + 1].float()) for i in range(len(a))]).double()


# -- registry ----------------------------------------------------------------------------------------

IMAGE_METRICS: dict[str, Callable[..., torch.Tensor]] = {
    "psnr": psnr,
    "ssim": ssim,
    "l1": l1,
    "lpips": lpips,
    "inception_l1": inception_l1,
}


def image_metric(name: str) -> Callable[..., torch.Tensor]:
    """The metric ``(outputs, targets, **options) -> [N]`` called ``name`` (case-insensitive)."""
    try:
        return IMAGE_METRICS[str(name).lower()]
    except KeyError:
        raise ConfigError(
            f"image metric {name!r} is unknown; choose from {', '.join(IMAGE_METRICS)}"
        ) from None
