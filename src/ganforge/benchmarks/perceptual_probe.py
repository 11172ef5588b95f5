"""What the perceptual loss measures: PSNR vs feature distances on one photo and its degradations.

Takes ``test/butterfly.png`` of the sr-photos archive (256x256) and five degradations of it (bicubic x4
down and up, Gaussian blur sigma 1 and 2, JPEG quality 30, Gaussian noise sigma 10/255), each saved as
``uint8``, and prints a markdown table: PSNR (dB), the Inception perceptual loss at its default layer,
the VGG19 one (conv5_4, ESRGAN's) when its weights are on this machine, and whether each feature distance
orders the degradations as PSNR does. CPU, about 20 s::

    python -m ganforge.benchmarks.perceptual_probe [--zip ../shared/datasets/sr-photos.zip]
        [--inception-layers Mixed_5d Mixed_6e]   # more Inception rows than the default layer
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.images import to_signed_unit
from ganforge.losses.perceptual import DEFAULT_LAYERS, PerceptualLoss
from ganforge.metrics.image_quality import psnr
from ganforge.pretrained import torchvision_hub_path

DEFAULT_ZIP = "../shared/datasets/sr-photos.zip"
MEMBER = "test/butterfly.png"


def load_photo(zip_path: str | Path, member: str = MEMBER) -> torch.Tensor:
    """``uint8 [1, 3, H, W]`` of an image inside a zip archive."""
    from PIL import Image

    from ganforge.data.image_folder import image_tensor

    with zipfile.ZipFile(zip_path) as z:
        img = Image.open(io.BytesIO(z.read(member))).convert("RGB")
    return image_tensor(img).unsqueeze(0)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.double() / 255


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def bicubic_x4(x: torch.Tensor) -> torch.Tensor:
    """Antialiased bicubic to 1/4 size and bicubic back: a x4 SR input upscaled the naive way."""
    size = x.shape[-2:]
    small = F.interpolate(_float(x), scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False)
    return _uint8(F.interpolate(small, size=size, mode="bicubic", align_corners=False))


def gaussian_blur(sigma: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def blur(x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.functional import gaussian_blur as tv_blur

        kernel = 2 * math.ceil(3 * sigma) + 1
        return _uint8(tv_blur(_float(x), [kernel, kernel], [sigma, sigma]))

    return blur


def jpeg(quality: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def compress(x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        from ganforge.data.image_folder import image_tensor

        buffer = io.BytesIO()
        Image.fromarray(x[0].permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=quality)
        return image_tensor(Image.open(buffer).convert("RGB")).unsqueeze(0)

    return compress


def gaussian_noise(sigma: float, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    def noisy(x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return _uint8(_float(x) + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64))

    return noisy


DEGRADATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "bicubic x4 down/up": bicubic_x4,
    "gaussian blur sigma 1": gaussian_blur(1.0),
    "gaussian blur sigma 2": gaussian_blur(2.0),
    "JPEG quality 30": jpeg(30),
    "noise sigma 10/255": gaussian_noise(10 / 255),
}


def order(values: dict[str, float], higher_is_better: bool) -> list[str]:
    """Degradation names from the mildest to the worst according to ``values``."""
    return sorted(values, key=lambda k: -values[k] if higher_is_better else values[k])


def swapped_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs ``(x, y)`` that ordering ``a`` puts as x < y and ordering ``b`` the other way round."""
    rank = {name: i for i, name in enumerate(b)}
    return [(x, y) for i, x in enumerate(a) for y in a[i + 1 :] if rank[x] > rank[y]]


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's rank correlation of two orderings of the same names (1: same order, -1: reversed)."""
    n_pairs = len(a) * (len(a) - 1) // 2
    return 1 - 2 * len(swapped_pairs(a, b)) / n_pairs


def probe(zip_path: str | Path, inception_layers: Sequence[str] | None = None) -> str:
    """The markdown report (table and ranking comparison)."""
    torch.manual_seed(0)
    clean = load_photo(zip_path)
    degraded = {name: fn(clean) for name, fn in DEGRADATIONS.items()}
    columns: dict[str, dict[str, float]] = {
        "PSNR (dB)": {name: float(psnr(img, clean)) for name, img in degraded.items()}
    }
    notes = []
    losses: dict[str, PerceptualLoss] = {}
    for layer in inception_layers or list(DEFAULT_LAYERS["inception"]):
        losses[f"inception {layer}"] = PerceptualLoss(network="inception", layers={layer: 1.0})
    try:
        losses["vgg19 conv5_4"] = PerceptualLoss(network="vgg19")
    except GanforgeError:
        notes.append(f"vgg19 weights not available here (no {torchvision_hub_path('vgg19')})")
    target = to_signed_unit(clean)
    with torch.no_grad():
        for column, loss in losses.items():
            columns[column] = {
                name: float(loss(to_signed_unit(img), target)) for name, img in degraded.items()
            }
    lines = [
        f"{MEMBER} ({clean.shape[-1]}x{clean.shape[-2]}) vs its degradations; perceptual losses: L1 of "
        "the layer's features (weight 1), lower is closer",
        "",
        "| degradation | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name in degraded:
        cells = [f"{columns['PSNR (dB)'][name]:.2f}"] + [f"{columns[c][name]:.4f}" for c in losses]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    by_psnr = order(columns["PSNR (dB)"], higher_is_better=True)
    lines.append("Mildest to worst by PSNR: " + " < ".join(by_psnr))
    for column in losses:
        by_loss = order(columns[column], higher_is_better=False)
        tau = kendall_tau(by_psnr, by_loss)
        verdict = "the same order as PSNR" if by_loss == by_psnr else "a different order from PSNR"
        lines.append(f"Mildest to worst by {column}: " + " < ".join(by_loss))
        swaps = "; ".join(f"{y} is milder than {x}" for x, y in swapped_pairs(by_psnr, by_loss))
        lines.append(f"  -> {verdict} (Kendall tau {tau:+.2f})" + (f": {swaps}" if swaps else ""))
    lines += notes
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", default=DEFAULT_ZIP, help=f"the sr-photos archive (default {DEFAULT_ZIP})")
    parser.add_argument(
        "--inception-layers",
        nargs="+",
        default=None,
        help=f"Inception blocks to report (default: the loss's default, {list(DEFAULT_LAYERS['inception'])})",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    try:
        print(probe(args.zip, args.inception_layers))
    except (GanforgeError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
