"""2-D Gaussian mixtures for measuring mode collapse (VEEGAN / PacGAN protocol, Lin et al. 2018).

Every mode is known, so "which modes does G produce, and how well" is counted exactly
(``ganforge.benchmarks.mode_collapse``) instead of being estimated by a feature network.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from ganforge.data.base import GANDataModule
from ganforge.errors import ConfigError

# name -> (means builder, per-coordinate std), as in PacGAN's Table 1
MIXTURES = {
    "ring": (
        lambda: [(math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)],
        0.01,
    ),
    "grid": (lambda: [(float(x), float(y)) for x, y in itertools.product(range(-4, 5, 2), repeat=2)], 0.05),
}


def mixture_means(mixture: str) -> torch.Tensor:
    """Mode centres ``[K, 2]``: ``ring`` = 8 on the unit circle, ``grid`` = 25 at spacing 2 on [-4, 4]^2."""
    if mixture not in MIXTURES:
        raise ConfigError(f"data.mixture={mixture!r} is not one of {', '.join(MIXTURES)}")
    return torch.tensor(MIXTURES[mixture][0](), dtype=torch.float32)


def mixture_name(mixture: str, num_modes: int) -> str:
    """``grid`` with 25 modes -> ``grid25``: the name of the ``data=`` config, benchmark rows and runs."""
    return f"{mixture}{num_modes}"


class GaussianMixture2DDataModule(GANDataModule):
    """Points ``float32 [2]`` from an equal-weight mixture of isotropic Gaussians; label = mode index.

    The ``num_samples`` points are drawn once from ``data_seed`` (the same set in every run, like a
    dataset on disk); ``seed`` only decides the order they are served in.

    Args:
        mixture: ``ring`` (8 modes, std 0.01) or ``grid`` (25 modes, std 0.05).
        num_samples: points per epoch.
        std: per-coordinate standard deviation of every mode (``None`` = the mixture's).
        data_seed: seed of the point set.
        **kwargs: ``GANDataModule`` arguments (batch_size, num_workers, seed, max_samples, ...).
    """

    name = "gaussian_mixture"
    kind = "points"

    def __init__(
        self,
        mixture: str = "grid",
        num_samples: int = 100_000,
        std: float | None = None,
        data_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        # Points have no resolution or channels; the base class's image checks get neutral values.
        kwargs.pop("resolution", None)
        kwargs.pop("channels", None)
        super().__init__(resolution=4, channels=1, **kwargs)
        self.means = mixture_means(mixture)
        self.std = float(MIXTURES[mixture][1] if std is None else std)
        if self.std <= 0 or num_samples < 1:
            raise ConfigError(f"data.std={self.std} must be > 0 and data.num_samples={num_samples} >= 1")
        self.mixture, self.num_samples, self.data_seed = mixture, num_samples, data_seed
        self.name = mixture_name(mixture, len(self.means))

    @property
    def image_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (2,)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points ``[n, 2]`` and their mode indices ``[n]`` (modes drawn uniformly)."""
        labels = torch.randint(len(self.means), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator) * self.std
        return self.means[labels] + noise, labels

    def load_dataset(self) -> Dataset:
        points, labels = self.sample(self.num_samples, torch.Generator().manual_seed(self.data_seed))
        self.num_classes = len(self.means)
        self.class_names = [f"mode_{i}" for i in range(self.num_classes)]
        return TensorDataset(points, labels)
