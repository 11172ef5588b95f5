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
        """One update of every ``u``/``v`` (``n_power_iterations`` each); forwards then only read them.

        torch's ``_power_method`` layer by layer, with the normalisations of all layers done together
        (multi-tensor ``foreach`` kernels): per iteration one matrix-vector product per layer and a few
        launches in all, instead of about eight launches per layer. A small D's step on a GPU is bound
        by launches.
        """
        if not self.pairs:
            return
        layers = [sn for sn, _ in self.pairs]
        for sn in layers:
            sn.eval()  # again each time: Lightning's module.train() switches it back
        for iteration in range(max(sn.n_power_iterations for sn in layers)):
            active = [(sn, w) for sn, w in self.pairs if iteration < sn.n_power_iterations]
            mats = [sn._reshape_weight_to_matrix(w) for sn, w in active]
            us, vs = [sn._u for sn, _ in active], [sn._v for sn, _ in active]
            eps = [sn.eps for sn, _ in active]
            for mat, u, v in zip(mats, us, vs, strict=True):
                torch.mv(mat, v, out=u)
            _normalize_(us, eps)
            for mat, u, v in zip(mats, us, vs, strict=True):
                torch.mv(mat.H, u, out=v)
            _normalize_(vs, eps)


def _normalize_(vectors: list[torch.Tensor], eps: list[float]) -> None:
    """``F.normalize(x, dim=0, eps=eps)`` of each vector, in place, in three multi-tensor kernels."""
    norms = torch._foreach_norm(vectors)
    torch._foreach_clamp_min_(norms, eps)
    torch._foreach_div_(vectors, norms)
