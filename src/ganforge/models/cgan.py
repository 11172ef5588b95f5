"""Class-conditional DCGAN: the label joins ``z`` in G; D is conditioned by projection or concatenation.

G (Mirza & Osindero, 2014): a learned label embedding is concatenated with ``z`` and fed to a DCGAN
generator. D: ``projection`` (Miyato & Koyama, 2018) adds ``<embed(y), phi(x)>`` to the unconditional
logit ``psi(phi(x))``; ``concat`` appends the label embedding, broadcast over the image, as extra input
channels. Resolutions are DCGAN's (``4*2^k`` or ``7*2^k``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator

CONDITIONING = ("projection", "concat")


def num_classes_of(G: nn.Module) -> int:
    """The number of classes a generator is conditioned on (0 for an unconditional one)."""
    return int(getattr(G, "num_classes", 0) or 0)


def check_num_classes(num_classes: int | None, model: str) -> int:
    """Conditional models need labelled data: fail with what to do instead of training without labels."""
    if not num_classes or num_classes < 1:
        raise ConfigError(
            f"{model} is class-conditional but the data has no class labels (num_classes={num_classes}): "
            "use a labelled dataset (e.g. data=image_folder data.labels=true, one sub-folder per class) "
            "or an unconditional model such as model=dcgan"
        )
    return int(num_classes)


class CGANGenerator(nn.Module):
    """``(z [N, z_dim], labels [N]) -> [z, embed(labels)] [N, z_dim + embed_dim] -> DCGAN G [N, C, R, R]``."""

    def __init__(
        self,
        num_classes: int | None,
        z_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        embed_dim: int = 50,
        base_channels: int = 64,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes, "CGAN")
        self.z_dim, self.resolution, self.channels = z_dim, resolution, channels
        self.embed = nn.Embedding(self.num_classes, embed_dim)
        self.net = DCGANGenerator(
            z_dim=z_dim + embed_dim,
            resolution=resolution,
            channels=channels,
            base_channels=base_channels,
            max_channels=max_channels,
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("CGANGenerator needs labels [N] (class indices)")
        return self.net(torch.cat([z, self.embed(labels)], dim=1))


class CGANDiscriminator(nn.Module):
    """``(x [N, C, R, R], labels [N]) -> DCGAN conv trunk -> logits [N]``, conditioned per ``conditioning``.

    projection: ``phi(x)`` is the trunk's last feature map ``[N, Ck, s, s]``; ``psi`` is DCGAN's final
    ``s x s`` convolution and the class term is ``<embed(y) [N, Ck], sum_hw phi(x)>``.
    concat: the trunk sees ``[x, embed(y) broadcast to R x R]``, ``C + embed_dim`` channels.
    """

    def __init__(
        self,
        num_classes: int | None,
        resolution: int = 64,
        channels: int = 3,
        conditioning: str = "projection",
        embed_dim: int = 10,
        base_channels: int = 64,
        max_channels: int = 512,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes, "CGAN")
        if conditioning not in CONDITIONING:
            raise ConfigError(f"conditioning={conditioning!r} is not one of {', '.join(CONDITIONING)}")
        self.resolution, self.channels, self.conditioning = resolution, channels, conditioning
        extra = embed_dim if conditioning == "concat" else 0
        trunk = DCGANDiscriminator(
            resolution=resolution,
            channels=channels + extra,
            base_channels=base_channels,
            max_channels=max_channels,
            batch_norm=batch_norm,
        )
        self.features, self.psi = trunk.net[:-1], trunk.net[-1]
        if conditioning == "projection":
            self.embed = nn.Embedding(self.num_classes, self.psi.in_channels)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)  # psi's DCGAN init scale
        else:
            self.embed = nn.Embedding(self.num_classes, embed_dim)  # N(0, 1): the image's scale

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("CGANDiscriminator needs labels [N] (class indices)")
        if self.conditioning == "concat":
            y = self.embed(labels)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            return self.psi(self.features(torch.cat([x, y], dim=1))).flatten(1).squeeze(1)
        h = self.features(x)
        return self.psi(h).flatten(1).squeeze(1) + (self.embed(labels) * h.sum((2, 3))).sum(1)


@torch.no_grad()
def sample_per_class(
    model: Any, num_per_class: int, classes: list[int] | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples grouped by class, ``[len(classes) * num_per_class, C, R, R]``, and their labels.

    ``model`` is a GANModule (its EMA generator samples) or a conditional generator (run in eval mode).
    Every class gets the same ``num_per_class`` latents, so a grid with ``nrow=num_per_class`` shows one
    class per row and what the label alone changes down each column.
    """
    G = getattr(model, "G_ema", model)
    num_classes = num_classes_of(G)
    if num_classes < 1:
        raise ConfigError("sample_per_class needs a class-conditional generator (num_classes > 0)")
    classes = list(range(num_classes)) if classes is None else list(classes)
    device = next(G.parameters()).device
    z = torch.randn(num_per_class, G.z_dim, generator=torch.Generator().manual_seed(seed))
    z = z.repeat(len(classes), 1).to(device)
    labels = torch.tensor(classes, device=device).repeat_interleave(num_per_class)
    if hasattr(model, "sample"):
        return model.sample(z, labels), labels
    was_training = G.training
    G.eval()
    try:
        return G(z, labels), labels
    finally:
        G.train(was_training)
