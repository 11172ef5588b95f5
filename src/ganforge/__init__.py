"""ganforge: GAN experiment framework on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
