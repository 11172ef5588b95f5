"""Spectral normalisation under ``torch.compile``: the power iteration taken out of the compiled graph.

torch's ``spectral_norm`` parametrization updates its ``u``/``v`` vectors in place on every training
forward and clones them so that ``D(real)`` and ``D(fake)`` can share one backward. Compiled, the
clone is gone: the second forward bumps the version of a vector the first one saved, and backward stops
("modified by an inplace operation: [torch.FloatTensor [3]]", the ``v`` of a 1x1 shortcut conv on RGB).
``SpectralNormStep`` puts the parametrizations in eval mode (no update in forward) and runs the same
power iteration eagerly, once per discriminator update, before its forwards.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm


class SpectralNormStep:
    """The spectral-norm parametrizations of ``net`` and their weights, iterated on request."""

    def __init__(self, net: nn.Module) -> None:
        self.pairs: list[tuple[_SpectralNorm, nn.Parameter]] = []
        for module in net.modules():
            if not parametrize.is_parametrized(module):
                continue
            for plist in module.parametrizations.values():
                for p in plist:
                    if isinstance(p, _SpectralNorm) and plist.original.ndim > 1:
                        self.pairs.append((p, plist.original))

    def __len__(self) -> int:
        return len(self.pairs)

    @torch.no_grad()
    def __call__(self) -> None:
        """One update of every ``u``/``v`` (``n_power_iterations`` each); forwards then only read them."""
        for sn, weight in self.pairs:
            sn.eval()  # again each time: Lightning's module.train() switches it back
            sn._power_method(sn._reshape_weight_to_matrix(weight), sn.n_power_iterations)
