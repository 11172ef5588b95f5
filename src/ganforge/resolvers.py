"""OmegaConf resolvers used by the configs (registered on import of ``ganforge``)."""

import math

from omegaconf import OmegaConf


def register() -> None:
    # ${mul:${data.channels},${model.pack}}: PacGAN's D sees pack x channels
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda *xs: math.prod(xs))
