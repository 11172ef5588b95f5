"""The GAN training module: manual optimisation alternating discriminator and generator updates.

One training step consumes one batch and makes one D update; every ``n_critic``-th step also makes one
G update and an EMA update. ``trainer.global_step`` therefore counts batches (D updates), so
``max_steps``, checkpoint and sample intervals are all in batches, whatever ``n_critic`` is.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.core.optimizer import do_nothing_closure
from torch import nn

from ganforge import __version__
from ganforge.ema import ema_beta, make_ema, update_ema
from ganforge.errors import ConfigError
from ganforge.losses import AdversarialLoss

# The EMA generator is in eval mode on purpose: it is never trained, only averaged.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [0, 255]`` -> float ``[-1, 1]``."""
    return images.float().div_(127.5).sub_(1.0)


class GANModule(L.LightningModule):
    """Adversarial training of ``generator`` against ``discriminator`` under ``loss``.

    Args:
        generator: maps ``(z [N, z_dim], labels [N])`` to images in ``[-1, 1]``; has ``z_dim``.
        discriminator: maps ``(images, labels)`` to logits ``[N]``.
        loss: adversarial objective; also says how many D updates per G update (``n_critic``).
        optimizer_g, optimizer_d: optimizer factories (Hydra ``_partial_``), separate LRs = TTUR.
        scheduler_g, scheduler_d: optional LR scheduler factories, stepped once per own update.
        n_critic: override ``loss.n_critic``.
        ema_beta: per-G-update decay of the EMA generator (0 = plain copy).
        ema_rampup: StyleGAN2-ADA style EMA warm-up ratio (``None`` = constant beta).
        grad_clip_g, grad_clip_d: clip gradient norms to this value (``None`` = off).
        num_fixed_samples: size of the fixed latent batch used for every sample grid of the run.
        sample_seed: seed of that fixed batch.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: AdversarialLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        n_critic: int | None = None,
        ema_beta: float = 0.999,
        ema_rampup: float | None = 0.05,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        num_fixed_samples: int = 64,
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(ignore=["generator", "discriminator", "loss"], logger=False)
        if not 0.0 <= ema_beta < 1.0:
            raise ConfigError(f"model.ema_beta={ema_beta} must be in [0, 1)")
        self.G = generator
        self.D = discriminator
        self.G_ema = make_ema(generator)
        self.loss = loss
        self.n_critic = n_critic or loss.n_critic
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic={n_critic} must be >= 1")
        g = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_z", torch.randn(num_fixed_samples, generator.z_dim, generator=g))
        self.run_config: dict[str, Any] | None = None  # resolved Hydra config, stored in checkpoints
        self._pending_rng: dict[str, Any] | None = None

    @property
    def z_dim(self) -> int:
        return self.G.z_dim

    # -- checks before training -----------------------------------------------------------------
    @torch.no_grad()
    def check_data(self, image_shape: tuple[int, int, int]) -> None:
        """Fail before training when the networks and the data disagree on image shape."""
        was_training = self.G.training
        self.G.eval()
        try:
            fake = self.G(torch.randn(2, self.z_dim, device=self.fixed_z.device))
        finally:
            self.G.train(was_training)
        if tuple(fake.shape[1:]) != tuple(image_shape):
            c, h, w = image_shape
            raise ConfigError(
                f"the generator makes {tuple(fake.shape[1:])} images but the data gives ({c}, {h}, {w}) "
                f"(channels, height, width). Make them agree: set data.resolution / data.channels, or "
                f"the model's resolution/channels (by default they follow the data)"
            )
        was_training = self.D.training
        self.D.eval()
        try:
            logits = self.D(fake)
        finally:
            self.D.train(was_training)
        if logits.shape != (2,):
            raise ConfigError(f"the discriminator must return logits of shape [N], got {tuple(logits.shape)}")

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in ``[-1, 1]`` from the EMA generator (the fixed latent batch by default)."""
        z = self.fixed_z if z is None else z
        return self.G_ema(z.to(self.fixed_z.device), labels)

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        opt_g = self.hparams.optimizer_g(params=self.G.parameters())
        opt_d = self.hparams.optimizer_d(params=self.D.parameters())
        schedulers, self._scheduler_owner = [], []
        for name, factory, opt in (
            ("g", self.hparams.scheduler_g, opt_g),
            ("d", self.hparams.scheduler_d, opt_d),
        ):
            if factory is not None:
                schedulers.append({"scheduler": factory(optimizer=opt), "interval": "step"})
                self._scheduler_owner.append(name)
        return [opt_g, opt_d], schedulers

    def _schedulers(self) -> dict[str, Any]:
        scheds = self.lr_schedulers()
        if scheds is None:
            return {}
        if not isinstance(scheds, list):
            scheds = [scheds]
        return dict(zip(self._scheduler_owner, scheds, strict=True))

    def _random_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        real = to_signed_unit(images)
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()
        schedulers = self._schedulers()
        update_g = (self.global_step + 1) % self.n_critic == 0
        logs: dict[str, torch.Tensor] = {}

        # Discriminator update (counted: advances global_step).
        with torch.no_grad():
            fake = self.G(self._random_z(n), labels)
        real_logits = self.D(real, labels)
        fake_logits = self.D(fake, labels)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        penalties = self.loss.d_penalties(lambda x: self.D(x, labels), real, fake)
        d_total = d_loss + sum(penalties.values())
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_total)
        self._clip(opt_d, self.hparams.grad_clip_d)
        opt_d.step()
        if "d" in schedulers:
            schedulers["d"].step()
        logs["loss/d"] = d_loss.detach()
        logs.update({f"loss/d_{k}": v.detach() for k, v in penalties.items()})
        logs["d/real_logit"] = real_logits.detach().mean()
        logs["d/fake_logit"] = fake_logits.detach().mean()

        # Generator update (not counted: global_step stays "batches seen").
        if update_g:
            self.D.requires_grad_(False)
            fake_logits = self.D(self.G(self._random_z(n), labels), labels)
            g_loss = self.loss.g_loss(fake_logits)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            self.D.requires_grad_(True)
            self._clip(opt_g, self.hparams.grad_clip_g)
            self.trainer.strategy.optimizer_step(opt_g.optimizer, do_nothing_closure)
            if "g" in schedulers:
                schedulers["g"].step()
            beta = ema_beta(self.hparams.ema_beta, self.global_step, self.hparams.ema_rampup)
            update_ema(self.G_ema, self.G, beta)
            logs["loss/g"] = g_loss.detach()

        self._log_step(logs)

    def _log_step(self, logs: dict[str, torch.Tensor]) -> None:
        """Send this step's values to the loggers every ``log_every_n_steps`` steps.

        Written to the loggers directly because Lightning re-emits the last value of keys not logged
        in a step, which would plot stale G losses on the steps without a G update.
        """
        self.log_dict({k: logs[k] for k in ("loss/d", "loss/g") if k in logs}, prog_bar=True, logger=False)
        step = self.global_step
        if not self.trainer.loggers or step % self.trainer.log_every_n_steps:
            return
        metrics = {k: float(v) for k, v in logs.items()}
        for name, opt in zip(("g", "d"), self.trainer.optimizers, strict=True):
            metrics[f"lr/{name}"] = opt.param_groups[0]["lr"]
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=step)
            logger.save()

    def _clip(self, optimizer: Any, max_norm: float | None) -> None:
        """Gradient clipping hook; override for per-layer schemes."""
        if max_norm:
            self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")

    # -- exact resume ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganforge"] = {
            "version": __version__,
            "config": self.run_config,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored at the first batch, after Lightning has finished its own set-up draws.
        self._pending_rng = checkpoint.get("ganforge", {}).get("rng")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is None:
            return
        state, self._pending_rng = self._pending_rng, None
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        if self.trainer.world_size > 1:
            # One state was saved (rank 0's); give every rank its own stream again, deterministically.
            torch.manual_seed(int(torch.randint(2**62, ())) + self.trainer.global_rank)
