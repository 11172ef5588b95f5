"""Adversarial losses and discriminator penalties."""

from ganforge.losses.adversarial import (
    AdversarialLoss,
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinGPLoss,
)
from ganforge.losses.penalties import gradient_penalty

__all__ = [
    "AdversarialLoss",
    "HingeLoss",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "WassersteinGPLoss",
    "gradient_penalty",
]
