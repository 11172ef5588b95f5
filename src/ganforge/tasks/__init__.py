"""Task families on one adversarial base (``base.AdversarialModule``): each says what its batch is and
which loss terms G and D minimise; the base does the optimisation, EMA, logging and exact resume."""

from ganforge.tasks.base import AdversarialModule
from ganforge.tasks.noise import GANModule
from ganforge.tasks.paired import PairedModule
from ganforge.tasks.progressive import ProGANModule
from ganforge.tasks.unpaired import CycleGANModule

__all__ = ["AdversarialModule", "CycleGANModule", "GANModule", "PairedModule", "ProGANModule"]
