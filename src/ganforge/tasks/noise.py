"""The noise -> image family: G maps latents (and a class) to images, D tells them from real ones.

Vanilla MLP GAN, DCGAN, conditional GAN, WGAN(-GP), SNGAN, BigGAN and StyleGAN (lite) all train here;
PacGAN packing, top-k G updates and standing batch-norm statistics are options of this family.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganforge.augment import Augment
from ganforge.ema import latent_batches, standing_stats
from ganforge.errors import ConfigError
from ganforge.images import to_signed_unit
from ganforge.losses import AdversarialLoss
from ganforge.models import num_classes_of
from ganforge.regularizers import Regularizer
from ganforge.tasks.base import LOSS_D, LOSS_G, AdversarialModule, OptimizerFactory, SchedulerFactory
from ganforge.topk import TopK


def pack_samples(
    x: torch.Tensor, labels: torch.Tensor | None, m: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """PacGAN (Lin et al., 2018): ``m`` consecutive samples become one D input, concatenated on dim 1.

    ``[N, C, ...] -> [N/m, m*C, ...]``; labels keep the first of each pack.
    """
    if m == 1:
        return x, labels
    n = x.shape[0]
    if n % m:
        raise ConfigError(f"batch of {n} cannot be split into packs of model.pack={m}; use a multiple")
    x = x.reshape(n // m, m * x.shape[1], *x.shape[2:])
    return x, (labels[::m] if labels is not None else None)


class GANModule(AdversarialModule):
    """Adversarial training of ``generator`` (``(z [N, z_dim], labels [N])`` -> images in ``[-1, 1]``)
    against ``discriminator`` (``(images, labels)`` -> logits ``[N]``); see ``AdversarialModule`` for
    the options every family shares.

    Args:
        num_fixed_samples: size of the fixed latent batch used for every sample grid of the run.
        sample_seed: seed of that fixed batch.
        pack: PacGAN: D judges this many samples at once (concatenated on channels).
        top_k: top-k G updates (``ganforge.topk.TopK``): G learns only from the fakes D scores highest.
        standing_stats: recompute the EMA generator's batch-norm statistics from this many latents
            (in batches of ``standing_stats_batch``) before it is used for samples, metrics and
            checkpoints (BigGAN's standing statistics; 0 = the running statistics copied from G).

    A compiled D without batch-coupled layers (batch norm, minibatch std/discrimination) scores real
    and fake samples in one call.
    """

    data_kinds = ("images", "points")
    data_hint = (
        "Noise -> image models take unpaired images (or 2-D points); for (input, target) pairs use an "
        "image-to-image model, e.g. model=pix2pix; for two unpaired image sets (domains) model=cyclegan"
    )

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
        regularizers: Mapping[str, Regularizer] | None = None,
        augment: Augment | None = None,
        pack: int = 1,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        top_k: TopK | None = None,
        standing_stats: int = 0,
        standing_stats_batch: int = 256,
    ) -> None:
        super().__init__(
            generator,
            discriminator,
            loss,
            optimizer_g,
            optimizer_d,
            scheduler_g=scheduler_g,
            scheduler_d=scheduler_d,
            n_critic=n_critic,
            ema_beta=ema_beta,
            ema_rampup=ema_rampup,
            grad_clip_g=grad_clip_g,
            grad_clip_d=grad_clip_d,
            regularizers=regularizers,
            augment=augment,
            channels_last=channels_last,
            compile=compile,
        )
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "loss", "regularizers", "augment", "top_k"], logger=False
        )
        if pack < 1:
            raise ConfigError(f"model.pack={pack} must be >= 1")
        if standing_stats < 0 or standing_stats_batch < 2:
            raise ConfigError(
                f"model.standing_stats={standing_stats} must be >= 0 (0 = off) and "
                f"model.standing_stats_batch={standing_stats_batch} >= 2"
            )
        self._ema_stats_stale = True
        self.pack = pack
        self.top_k = top_k
        self.num_classes = num_classes_of(generator)
        g = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_z", torch.randn(num_fixed_samples, generator.z_dim, generator=g))
        # Conditional models: the fixed grid cycles through the classes (one class per grid column).
        self.register_buffer("fixed_labels", torch.arange(num_fixed_samples) % max(self.num_classes, 1))

    @property
    def z_dim(self) -> int:
        return self.G.z_dim

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def grid_columns(self) -> int:
        """Sample grids: one column per class for conditional models, else 8."""
        return self.num_classes if self.conditional else 8

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None, eager: bool = False) -> torch.Tensor:
        """What D sees: augmented (DiffAugment/ADA), then packed (PacGAN) samples."""
        if self.augment is not None:
            x = self.augment(x)
        x, labels = pack_samples(x, labels, self.pack)
        return (self.D if eager else self._fast.get("D", self.D))(x, labels)

    # -- checks before training -----------------------------------------------------------------
    @torch.no_grad()
    def check_data(self, datamodule: Any) -> None:
        """Fail before training when networks and data disagree (kind, shape, classes, packing)."""
        super().check_data(datamodule)
        num_classes, batch_size = datamodule.num_classes, datamodule.batch_size
        data_shape = datamodule.image_shape
        if self.conditional and num_classes == 0:
            raise ConfigError(
                f"the model is class-conditional ({self.num_classes} classes) but the data has no labels: "
                "use a labelled dataset (e.g. data.labels=true for image folders) or an unconditional model"
            )
        if self.conditional and num_classes != self.num_classes:
            raise ConfigError(
                f"the model has {self.num_classes} classes but the data has {num_classes}: "
                "set the model's num_classes to the data's (by default it follows data.num_classes)"
            )
        if batch_size is not None and batch_size % self.pack:
            raise ConfigError(f"data.batch_size={batch_size} is not a multiple of model.pack={self.pack}")
        with self.networks_in_eval():
            n = 2 * self.pack
            labels = self.fixed_labels[:n].clone() if self.conditional else None
            fake = self.G(torch.randn(n, self.z_dim, device=self.fixed_z.device), labels)
            if fake.ndim - 1 != len(data_shape):  # points [D] vs images [C, H, W]: no setting fixes it
                raise ConfigError(
                    f"the generator makes samples of shape {tuple(fake.shape[1:])} but the data gives "
                    f"{tuple(data_shape)}: a point model (e.g. model=pacgan_mlp) needs point data "
                    "(data=grid25 or ring8), an image model image data; choose a model and data of one kind"
                )
            if tuple(fake.shape[1:]) != tuple(data_shape):
                raise ConfigError(
                    f"the generator makes samples of shape {tuple(fake.shape[1:])} but the data gives "
                    f"{tuple(data_shape)} (channels, height, width). Make them agree: set data.resolution / "
                    "data.channels, or the model's resolution/channels (by default they follow the data)"
                )
            logits = self.critic(fake, labels)
        if logits.shape != (2,):
            raise ConfigError(
                f"the discriminator must return logits of shape [N / pack] = (2,), got {tuple(logits.shape)} "
                f"(is its input channel count multiplied by model.pack={self.pack}?)"
            )

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, z: torch.Tensor | None = None, labels: torch.Tensor | None = None, **g_kwargs: Any
    ) -> torch.Tensor:
        """Samples (images in ``[-1, 1]``) from the EMA generator; the fixed batch by default.

        ``g_kwargs`` go to the generator, e.g. ``truncation_psi=0.7`` for StyleGAN.
        """
        if z is None:
            z, labels = self.fixed_z, (self.fixed_labels if labels is None else labels)
        if not self.conditional:
            labels = None
        elif labels is None:
            labels = torch.randint(self.num_classes, (len(z),), device=self.fixed_z.device)
        else:
            labels = labels.to(self.fixed_z.device)
        return self.ema_generator()(z.to(self.fixed_z.device), labels, **g_kwargs)

    def ema_generator(self) -> nn.Module:
        """The EMA generator, its batch-norm statistics recomputed first when ``standing_stats`` is on.

        Uses its own seeded random stream: the training's random state (exact resume) is untouched.
        """
        total = self.hparams.standing_stats
        if total and self._ema_stats_stale:
            batches = latent_batches(
                self.z_dim,
                total,
                self.hparams.standing_stats_batch,
                seed=self.hparams.sample_seed + 1,
                device=self.fixed_z.device,
                num_classes=self.num_classes,
            )
            standing_stats(self.G_ema, batches)
            self._ema_stats_stale = False
        return self.G_ema

    # -- the two sides' objectives --------------------------------------------------------------
    def _random_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        data, labels = batch
        return {"real": self.to_layout(to_signed_unit(data)), "labels": labels if self.conditional else None}

    def d_terms(
        self, batch: dict[str, Any], step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        real, labels = batch["real"], batch["labels"]
        with torch.no_grad():
            fake = self.generate(self._random_z(real.shape[0]), labels)
        real_logits, fake_logits = self.score_real_fake(real, fake, labels)
        critic = lambda x: self.critic(x, labels, eager=True)  # noqa: E731
        terms = {
            LOSS_D: self.loss.d_loss(real_logits, fake_logits),
            **self.d_penalties(critic, real, fake, step),
        }
        self.observe_d(real_logits, fake_logits, step, logs)
        return terms

    def g_terms(
        self, batch: dict[str, Any], g_step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        real, labels = batch["real"], batch["labels"]
        z = self._random_z(real.shape[0])
        fake_logits = self.critic(self.generate(z, labels), labels)
        real_for_g = self.critic(real, labels) if self.loss.g_needs_real else None
        g_logits = fake_logits
        log_now = self.log_due(self.global_step + 1)
        if self.top_k is not None:
            g_logits, real_for_g = self.top_k.select(fake_logits, real_for_g, g_step)
            if log_now:
                logs["top_k/fraction"] = torch.tensor(self.top_k.fraction(g_step))
        if log_now:
            self.log_histogram("d/fake_logits", fake_logits)  # D's view of the fakes G just trained on
        terms = {LOSS_G: self.loss.g_loss(g_logits, real_for_g)}
        for name, reg in self.regularizers.items():
            if reg.target == "g" and reg.due(g_step):
                terms[f"{LOSS_G}_{name}"] = reg.scale(g_step) * reg.g_penalty(self, z, labels)
        return terms

    def after_ema_update(self) -> None:
        self._ema_stats_stale = True

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.hparams.standing_stats:
            # generate.py / eval.py / load_generator read G_ema from here: give them the recomputed stats
            state = checkpoint["state_dict"]
            for name, buffer in self.ema_generator().named_buffers():
                if f"G_ema.{name}" in state:
                    state[f"G_ema.{name}"] = buffer.detach().clone()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._ema_stats_stale = True
