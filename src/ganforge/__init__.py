"""ganforge: GAN experiment framework on PyTorch Lightning + Hydra."""

from ganforge.resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()
