"""Adversarial objectives on raw discriminator logits.

Each loss turns discriminator outputs into a D loss and a G loss; losses that need more than logits
(gradient penalty) add terms through ``d_penalties``. ``n_critic`` is the number of D updates per G
update the objective is designed for (5 for WGAN-GP); the training module reads it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.losses.penalties import gradient_penalty

Critic = Callable[[torch.Tensor], torch.Tensor]


class AdversarialLoss(nn.Module):
    """Base class. Subclasses implement ``d_loss`` and ``g_loss``.

    ``g_needs_real``: the G loss also takes D's logits on real data (relativistic losses).
    """

    g_needs_real = False

    def __init__(self, n_critic: int = 1) -> None:
        super().__init__()
        if n_critic < 1:
            raise ConfigError(f"loss.n_critic={n_critic} must be >= 1 (D updates per G update)")
        self.n_critic = n_critic

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def d_penalties(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra weighted D loss terms, by log name. None by default."""
        return {}

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Called after each D optimizer step (weight clipping)."""


class MinimaxLoss(AdversarialLoss):
    """Original GAN objective (Goodfellow et al., 2014), ``min_G max_D E log D(x) + E log(1 - D(G(z)))``.

    The generator minimises ``log(1 - D(G(z)))``, which saturates when D wins early; kept for
    comparison. ``label_smoothing`` > 0 is one-sided smoothing (Salimans et al., 2016): real targets
    become ``1 - label_smoothing``, fake targets stay 0.
    """

    def __init__(self, label_smoothing: float = 0.0, n_critic: int = 1) -> None:
        super().__init__(n_critic)
        if not 0.0 <= label_smoothing < 0.5:
            raise ConfigError(f"loss.label_smoothing={label_smoothing} must be in [0, 0.5)")
        self.label_smoothing = label_smoothing

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_target = torch.full_like(real_logits, 1.0 - self.label_smoothing)
        return F.binary_cross_entropy_with_logits(real_logits, real_target) + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # = E log(1 - sigmoid(l))


class NonSaturatingLoss(MinimaxLoss):
    """Minimax D loss with the non-saturating G loss ``-log D(G(z))``: strong gradients early on."""

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D ``relu(1 - real) + relu(1 + fake)``, G ``-fake``."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN (Mao et al., 2017) with targets a=0 (fake), b=1 (real), c=1 (what G wants)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1.0).square().mean() + fake_logits.square().mean())

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (fake_logits - 1.0).square().mean()


class WassersteinGPLoss(AdversarialLoss):
    """WGAN-GP (Gulrajani et al., 2017): critic ``E D(fake) - E D(real) + gp_weight * GP``.

    ``drift`` adds ``drift * E D(real)^2`` (ProGAN's epsilon term) to stop the critic output wandering.
    """

    def __init__(self, gp_weight: float = 10.0, drift: float = 0.0, n_critic: int = 5) -> None:
        super().__init__(n_critic)
        if gp_weight < 0 or drift < 0:
            raise ConfigError("loss.gp_weight and loss.drift must be >= 0")
        self.gp_weight = gp_weight
        self.drift = drift

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        loss = fake_logits.mean() - real_logits.mean()
        if self.drift:
            loss = loss + self.drift * real_logits.square().mean()
        return loss

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_logits.mean()

    def d_penalties(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.gp_weight:
            return {}
        return {"gp": self.gp_weight * gradient_penalty(critic, real, fake)}


class WassersteinClipLoss(WassersteinGPLoss):
    """Original WGAN (Arjovsky et al., 2017): the critic's weights are clipped to ``[-clip, clip]``.

    The paper pairs it with RMSProp(lr=5e-5) and 5 critic steps per generator step.
    """

    def __init__(self, clip: float = 0.01, n_critic: int = 5) -> None:
        super().__init__(gp_weight=0.0, drift=0.0, n_critic=n_critic)
        if clip <= 0:
            raise ConfigError(f"loss.clip={clip} must be > 0")
        self.clip = clip

    @torch.no_grad()
    def after_d_step(self, discriminator: nn.Module) -> None:
        for p in discriminator.parameters():
            p.clamp_(-self.clip, self.clip)


class RelativisticPairingLoss(AdversarialLoss):
    """Relativistic pairing GAN (RpGAN; Jolicoeur-Martineau 2019, used by R3GAN): each real sample is
    judged against a paired fake one, ``D: softplus(-(D(x) - D(G(z))))``, ``G: softplus(-(D(G(z)) - D(x)))``.
    """

    g_needs_real = True

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake_logits - real_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("RelativisticPairingLoss.g_loss needs the logits of real data")
        return F.softplus(real_logits - fake_logits).mean()


class RelativisticAverageLoss(AdversarialLoss):
    """Relativistic average GAN (RaGAN; Jolicoeur-Martineau 2018, the standard form ESRGAN uses).

    D judges whether a real image looks *more real than the average fake* and a fake one *less real
    than the average real*; G is trained on the symmetric objective, so it gets gradients from the real
    logits too (``g_needs_real``)::

        D: 0.5 * [BCE(D(x) - mean D(G(z)), 1) + BCE(D(G(z)) - mean D(x), 0)]
        G: 0.5 * [BCE(D(x) - mean D(G(z)), 0) + BCE(D(G(z)) - mean D(x), 1)]

    with ``BCE`` the mean binary cross-entropy on logits. The 0.5 weights are ESRGAN's/BasicSR's.
    ``mean`` is over the whole logit tensor of the batch: over samples for a D with one logit per
    image, and over samples *and* positions for a patch or U-Net D (one logit per patch or pixel).
    Gradients flow through both means (the paper's form); BasicSR detaches the opposing mean in its
    D update, which saves memory but drops that part of D's gradient.

    Any family can use it: ``python train.py loss=ragan``.
    """

    g_needs_real = True

    @staticmethod
    def _relative(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real - mean fake, fake - mean real): how much more real each side looks than the other."""
        return real_logits - fake_logits.mean(), fake_logits - real_logits.mean()

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_rel, fake_rel = self._relative(real_logits, fake_logits)
        # BCE(l, 1) = softplus(-l), BCE(l, 0) = softplus(l)
        return 0.5 * (F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean())

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("RelativisticAverageLoss.g_loss needs the logits of real data")
        real_rel, fake_rel = self._relative(real_logits, fake_logits)
        return 0.5 * (F.softplus(real_rel).mean() + F.softplus(-fake_rel).mean())
