"""Task families on one adversarial base (``base.AdversarialModule``): each says what its batch is and
which loss terms G and D minimise; the base does the optimisation, EMA, logging and exact resume."""

from ganforge.tasks.base import AdversarialModule
from ganforge.tasks.noise import GANModule
from ganforge.tasks.paired import PairedModule

__all__ = ["AdversarialModule", "GANModule", "PairedModule"]
