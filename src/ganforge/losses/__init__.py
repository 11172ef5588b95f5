"""Adversarial losses and discriminator penalties."""

from ganforge.losses.adversarial import (
    AdversarialLoss,
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    RelativisticAverageLoss,
    RelativisticPairingLoss,
    WassersteinClipLoss,
    WassersteinGPLoss,
)
from ganforge.losses.penalties import gradient_penalty

__all__ = [
    "AdversarialLoss",
    "HingeLoss",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "RelativisticAverageLoss",
    "RelativisticPairingLoss",
    "WassersteinClipLoss",
    "WassersteinGPLoss",
    "gradient_penalty",
]
