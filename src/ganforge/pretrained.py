"""Where ganforge finds pretrained weights on this machine: nothing is ever downloaded.

torchvision and torch-fidelity download into the torch hub cache, ``torch.hub.get_dir()/checkpoints``
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``); a file copied there from a
machine with network access is found under the name the download would have had. Users of these
helpers: LPIPS (``ganforge.metrics.image_quality``), the FID Inception (``ganforge.metrics.extractors``)
and the VGG perceptual loss (``ganforge.losses.perceptual``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganforge.errors import GanforgeError


def hub_checkpoint_path(filename: str) -> Path:
    """``torch.hub.get_dir()/checkpoints/<filename>``: where torch's downloaders keep ``filename``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def torchvision_weights_url(arch: str) -> str:
    """The download URL of torchvision's default ImageNet weights for ``arch`` (e.g. ``"vgg19"``)."""
    import torchvision

    return torchvision.models.get_model_weights(arch).DEFAULT.url


def torchvision_hub_path(arch: str) -> Path:
    """Where torchvision keeps that download (``vgg19`` -> ``.../checkpoints/vgg19-dcbb9e9d.pth``)."""
    return hub_checkpoint_path(os.path.basename(torchvision_weights_url(arch)))


def find_torchvision_weights(
    arch: str,
    weights: str | Path | None,
    error: type[GanforgeError],
    purpose: str,
    option: str = "weights=",
    alternative: str = "",
) -> Path:
    """The ImageNet ``arch`` file to load: ``weights`` if given, else torchvision's hub cache file.

    Raises ``error`` naming the file, every place looked at, its download URL and how to pass it
    (``option``, as the caller's config spells it); ``purpose`` says who needs it (``"LPIPS (net='alex')"``)
    and ``alternative`` is appended as a last option (e.g. an offline substitute).
    """
    explicit = Path(weights).expanduser() if weights else None
    hub = torchvision_hub_path(arch)
    if explicit is not None and explicit.is_file():
        return explicit
    if explicit is None and hub.is_file():
        return hub
    looked = [f"{option}{explicit} (does not exist)"] if explicit else [f"{option} (not set)"]
    looked += [] if explicit else [f"{hub} (torchvision's download, $TORCH_HOME/hub/checkpoints)"]
    raise error(
        f"{purpose} needs torchvision's ImageNet {arch} weights {hub.name}, and nothing is "
        "downloaded. Looked at:\n  " + "\n  ".join(looked) + "\nTo fix: on a machine with network "
        f'access, download {torchvision_weights_url(arch)} (or run `python -c "import torchvision; '
        f"torchvision.models.{arch}(weights='DEFAULT')\"`, which puts it in that machine's "
        f"~/.cache/torch/hub/checkpoints) and copy the file into {hub.parent}, or pass its path as "
        f"{option}<path>{alternative}"
    )
