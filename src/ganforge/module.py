"""``ganforge.module.GANModule``, the name configs and checkpoints of ganforge 0.1 use for the noise ->
image family, which now lives in ``ganforge.tasks.noise`` on the shared base ``ganforge.tasks.base``."""

from ganforge.tasks.noise import GANModule

__all__ = ["GANModule"]
