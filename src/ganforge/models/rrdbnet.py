"""ESRGAN's RRDBNet (Wang et al., 2018) and Real-ESRGAN's U-Net discriminator (Wang et al., 2021).

RRDBNet drops batch norm (which brings artefacts when train and test statistics differ) and makes the
trunk deeper and denser instead: residual-in-residual dense blocks whose branches are scaled by 0.2 and
start at 0.1 x Kaiming, so 69 dense blocks deep still trains. The U-Net D gives one logit per pixel,
so it can judge texture locally as well as the global structure, and uses spectral norm for stability
(Real-ESRGAN's degraded inputs make a plain VGG-style D unstable). Layouts and sizes follow BasicSR's
``RRDBNet`` and ``UNetDiscriminatorSN``; conventions of the SR generators are in ``srresnet.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforge.errors import ConfigError
from ganforge.models.srresnet import check_scale, conv3x3, scaled_kaiming_, upsample_factors


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each reading the block input and all earlier outputs concatenated
    ``[N, F + i*G, H, W]``; the first four add ``G`` (growth) channels with LeakyReLU(0.2), the fifth
    maps back to ``F``. Output ``x + 0.2 * conv5(...)``."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.convs = nn.ModuleList(conv3x3(num_feat + i * num_grow_ch, num_grow_ch) for i in range(4))
        self.convs.append(conv3x3(num_feat + 4 * num_grow_ch, num_feat))
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        scaled_kaiming_(self.convs, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs[:-1]:
            feats.append(self.lrelu(conv(torch.cat(feats, dim=1))))  # [N, G, H, W]
        return x + self.res_scale * self.convs[-1](torch.cat(feats, dim=1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``, shape-preserving.

    At init each dense block is close to the identity, so an RRDB is close to ``1.2 x`` and the trunk
    scales its input by about ``1.2 ** num_block`` (about 60x at 23 blocks), as in BasicSR: at init the
    trunk, not the conv_first skip, dominates the sum before upsampling (the output stays of order 1).
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rdbs = nn.Sequential(*(ResidualDenseBlock(num_feat, num_grow_ch, res_scale) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.rdbs(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator: ``[N, C_in, h, w]`` -> ``[N, C_out, s*h, s*w]``, unsquashed (see
    ``srresnet.py``).

    conv_first ``[N, F, h, w]`` -> ``num_block`` RRDBs -> conv_body, plus the conv_first features ->
    per upsampling step nearest-neighbour x2 (x3 for scale 3) + conv3x3 + LeakyReLU(0.2) ``[N, F, s*h,
    s*w]`` -> conv_hr + LeakyReLU(0.2) -> conv_last to ``C_out``. Interpolation then conv instead of pixel
    shuffle: no checkerboard from the sub-pixel layout.

    The defaults are the paper's network (``RRDB_ESRGAN_x4``: 16,697,987 parameters at x4); the small
    CPU variant (e.g. ``num_feat=32, num_block=4, num_grow_ch=16``) is chosen in the Hydra config, not
    here. Init as BasicSR: 0.1 x Kaiming in the dense blocks, PyTorch's default for the other convs.
    x2 is one upsampling step on the input grid (Real-ESRGAN's x2 model instead pixel-unshuffles the
    input and reuses the x4 layout); x8 is three steps.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        check_scale(scale, "RRDBNet")
        if num_block < 0:
            raise ConfigError(f"num_block={num_block} must be >= 0 (23 in ESRGAN)")
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.conv_first = conv3x3(in_channels, num_feat)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = conv3x3(num_feat, num_feat)
        self.factors = upsample_factors(scale)
        self.conv_up = nn.ModuleList(conv3x3(num_feat, num_feat) for _ in self.factors)
        self.conv_hr = conv3x3(num_feat, num_feat)
        self.conv_last = conv3x3(num_feat, out_channels)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)  # [N, F, h, w]
        feat = feat + self.conv_body(self.body(feat))
        for r, conv in zip(self.factors, self.conv_up, strict=True):
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=r, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))  # [N, C_out, s*h, s*w]


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's D: ``[N, C, H, W]`` -> per-pixel logits ``[N, 1, H, W]``, ``H, W`` multiples of 8.

    conv3x3 ``[N, F, H, W]`` -> three 4x4 stride-2 convs ``[N, 8F, H/8, W/8]`` -> three (bilinear x2,
    conv3x3) steps back to ``[N, F, H, W]``, each adding the encoder map of its size when
    ``skip_connection`` -> two conv3x3 -> conv3x3 to 1 channel. LeakyReLU(0.2) after every conv but the
    last. Spectral norm (torch's parametrization, as ``sngan.py``, so ``SpectralNormStep`` finds it) on
    every conv but the first and the last, which have biases; the others have none. PyTorch's default
    init, as Real-ESRGAN (spectral norm makes the scale of the normalised weights irrelevant).
    """

    def __init__(self, in_channels: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.in_channels, self.skip_connection = in_channels, skip_connection
        f = num_feat
        self.conv_in = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False)) for c in (f, 2 * f, 4 * f)
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(2 * c, c, 3, 1, 1, bias=False)) for c in (4 * f, 2 * f, f)
        )
        self.extra = nn.ModuleList(spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False)) for _ in range(2))
        self.conv_out = nn.Conv2d(f, 1, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 8 or w % 8:
            raise ConfigError(
                f"the U-Net discriminator halves the image 3 times and needs sides divisible by 8, got "
                f"{h}x{w}: crop the images it judges (data.patch_size) to a multiple of 8"
            )
        skips = [self.lrelu(self.conv_in(x))]  # [N, F, H, W]
        for conv in self.down:
            skips.append(self.lrelu(conv(skips[-1])))  # [N, 2F, H/2, W/2] .. [N, 8F, H/8, W/8]
        y = skips.pop()
        for conv in self.up:
            y = self.lrelu(conv(F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)))
            y = y + skips.pop() if self.skip_connection else y  # [N, 4F, H/4, W/4] .. [N, F, H, W]
        for conv in self.extra:
            y = self.lrelu(conv(y))
        return self.conv_out(y)  # [N, 1, H, W]
