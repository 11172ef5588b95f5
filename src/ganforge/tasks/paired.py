"""The paired image -> image family: G translates an input image into its target (Pix2Pix, SR).

Every batch is ``(input uint8 [N, C_in, H, W], target uint8 [N, C_out, H', W'])``. G minimises the
adversarial term plus weighted content terms against the ground truth (Pix2Pix: L1 x 100); D judges
``(input, image)`` pairs concatenated on channels (a conditional GAN, as Pix2Pix), or the image alone
(``conditional_d=false``: super-resolution, where input and output sizes differ). Without a D
(``discriminator=null``: SRResNet) G learns from its content terms alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ganforge.augment import Augment
from ganforge.errors import ConfigError
from ganforge.images import to_signed_unit
from ganforge.imresize import imresize
from ganforge.losses import AdversarialLoss
from ganforge.regularizers import Regularizer
from ganforge.tasks.base import LOSS_D, LOSS_G, AdversarialModule, OptimizerFactory, SchedulerFactory


def as_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images shown beside colour ones (grids): repeat the grey channel; other counts as they are."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] == 1 and channels == 3 else images


class PairedModule(AdversarialModule):
    """Paired translation ``G(input) -> target`` against a (conditional) discriminator.

    Args:
        generator: ``[N, C_in, H, W] -> [N, C_out, H', W']`` in ``[-1, 1]``; has ``in_channels`` and
            ``out_channels``.
        discriminator: ``[N, C, H', W']`` -> logits (a patch map ``[N, 1, h, w]`` or ``[N]``), where
            ``C = C_in + C_out`` when ``conditional_d`` and ``C_out`` otherwise.
        content: weighted content losses by name (``ganforge.losses.content``, ``.perceptual``), each
            logged as ``loss/g_<name>``; Pix2Pix: ``{l1: PixelLoss(weight=100)}``; ``None`` values are
            left out.
        adversarial_weight: weight of the adversarial term in G's objective (0: content losses only, the
            "L1 alone" baseline of the Pix2Pix paper; D is still trained, for its logged losses).
        conditional_d: D sees the input beside the image (Pix2Pix) or the image alone (SRGAN).
        num_fixed_samples: test inputs shown in every sample grid (input | output | target rows).

    The rest as for every family (``AdversarialModule``). The EMA generator (``ema_beta=0``: a copy of G)
    is used in eval mode for samples and metrics: dropout off, batch norm with running statistics.
    """

    data_kinds = ("pairs",)
    data_hint = (
        "Paired models take (input, target) image pairs: data=emoji_styles, openmoji, facades, edges2shoes, "
        "maps or paired; super-resolution models: data=sr_photos, super_resolution, div2k, set5 or set14; "
        "for two unpaired image sets (domains) model=cyclegan; for unpaired images alone a noise -> image "
        "model, e.g. model=dcgan"
    )
    grid_columns = 3  # input | output | target

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        loss: AdversarialLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory | None,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        content: Mapping[str, nn.Module] | None = None,
        adversarial_weight: float = 1.0,
        conditional_d: bool = True,
        n_critic: int | None = None,
        ema_beta: float = 0.0,
        ema_rampup: float | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        num_fixed_samples: int = 8,
        regularizers: Mapping[str, Regularizer] | None = None,
        augment: Augment | None = None,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        init_generator: str | None = None,
        top_k: Any = None,
    ) -> None:
        if top_k is not None:
            raise ConfigError(
                "topk=default selects among the fakes of a noise -> image batch; a paired model has one "
                "output per input: drop topk=default"
            )
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
            init_generator=init_generator,
        )
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "loss", "regularizers", "augment", "content", "top_k"],
            logger=False,
        )
        if adversarial_weight < 0:
            raise ConfigError(f"model.adversarial_weight={adversarial_weight} must be >= 0")
        # a term set to null in the config (model.content.pixel=null) is left out
        self.content = nn.ModuleDict({k: v for k, v in (content or {}).items() if v is not None})
        if (adversarial_weight == 0 or discriminator is None) and not self.content:
            raise ConfigError(
                "the model has no model.content losses and no adversarial term (model.adversarial_weight=0 "
                "or model.discriminator=null): G would have nothing to learn from"
            )
        self.adversarial_weight = adversarial_weight
        self.conditional_d = conditional_d
        self.num_fixed_samples = num_fixed_samples
        # Fixed test pairs for sample grids, taken from the data at set-up (not saved: data, not state).
        self.register_buffer("fixed_input", torch.zeros(0, dtype=torch.uint8), persistent=False)
        self.register_buffer("fixed_target", torch.zeros(0, dtype=torch.uint8), persistent=False)

    # -- data -----------------------------------------------------------------------------------
    @torch.no_grad()
    def check_data(self, datamodule: Any) -> None:
        """Fail before training when the networks cannot take the data's channels or sizes."""
        super().check_data(datamodule)
        g_scale, d_scale = getattr(self.G, "scale", None), getattr(datamodule, "scale", None)
        if g_scale is not None and d_scale is not None and g_scale != d_scale:
            raise ConfigError(
                f"the generator upscales x{g_scale} but data.scale={d_scale}: train a x{d_scale} model "
                f"(model.generator.scale={d_scale}) or use data.scale={g_scale}"
            )
        c_in, c_out = datamodule.input_shape[0], datamodule.image_shape[0]
        g_in, g_out = getattr(self.G, "in_channels", c_in), getattr(self.G, "out_channels", c_out)
        if (g_in, g_out) != (c_in, c_out):
            raise ConfigError(
                f"the generator maps {g_in} to {g_out} channels but the data gives {c_in}-channel inputs "
                f"and {c_out}-channel targets: set data.input_channels / data.channels, or the model's "
                "in_channels / out_channels (by default they follow the data)"
            )
        try:
            with self.networks_in_eval():
                x = torch.zeros(1, *datamodule.input_shape, device=self.device)
                fake = self.G(x)  # the networks' own size checks speak here
                if fake.shape[1:] != datamodule.image_shape:
                    raise ConfigError(
                        f"the generator turns {tuple(x.shape[1:])} inputs into {tuple(fake.shape[1:])} "
                        f"images but the targets are {tuple(datamodule.image_shape)}"
                    )
                if self.D is not None:
                    self.D(self._d_input(x, fake))
        except RuntimeError as e:  # a channel count the network was not built for
            raise ConfigError(
                f"the networks cannot take this data ({type(e).__name__}: {e}); check the model's channel "
                "counts against data.input_channels / data.channels"
            ) from e

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and self.fixed_input.numel() == 0 and self.num_fixed_samples > 0:
            inputs, targets = datamodule.grid_pairs(self.num_fixed_samples)
            self.fixed_input, self.fixed_target = inputs.to(self.device), targets.to(self.device)

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, **_: Any) -> torch.Tensor:
        """One row per fixed test pair: input | output | target, in ``[-1, 1]`` (``grid_columns`` = 3)."""
        inputs, targets = self.fixed_input, self.fixed_target
        outputs = self.G_ema(to_signed_unit(inputs)).clamp(-1, 1)  # SR nets are not squashed
        channels = outputs.shape[1]
        rows = [
            as_channels(to_signed_unit(inputs), channels),
            outputs,
            as_channels(to_signed_unit(targets), channels),
        ]
        if rows[0].shape[-2:] != outputs.shape[-2:]:  # SR: bicubic | output | ground truth
            rows[0] = imresize(rows[0].double(), size=tuple(outputs.shape[-2:])).to(outputs.dtype)
        return torch.stack(rows, dim=1).flatten(0, 1)

    # -- the two sides' objectives --------------------------------------------------------------
    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        return {
            "input": self.to_layout(to_signed_unit(inputs)),
            "target": self.to_layout(to_signed_unit(targets)),
        }

    def _d_input(self, inputs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([inputs, images], dim=1) if self.conditional_d else images

    def d_terms(
        self, batch: dict[str, torch.Tensor], step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        inputs, target = batch["input"], batch["target"]
        # One G pass per step, shared with the G update when this step has one (as the reference does).
        with torch.set_grad_enabled((step + 1) % self.n_critic == 0):
            batch["fake"] = fake = self.generate(inputs)
        real_pair, fake_pair = self._d_input(inputs, target), self._d_input(inputs, fake.detach())
        real_logits, fake_logits = self.score_real_fake(real_pair, fake_pair)
        critic = lambda x: self.critic(x, eager=True)  # noqa: E731
        terms = {
            LOSS_D: self.loss.d_loss(real_logits, fake_logits),
            **self.d_penalties(critic, real_pair, fake_pair, step),
        }
        self.observe_d(real_logits, fake_logits, step, logs)
        return terms

    def g_terms(
        self, batch: dict[str, torch.Tensor], g_step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        inputs, target = batch["input"], batch["target"]
        fake = batch["fake"] if "fake" in batch else self.generate(inputs)  # no D step made it
        if self.adversarial_weight > 0 and self.D is not None:
            fake_logits = self.critic(self._d_input(inputs, fake))
            real_logits = self.critic(self._d_input(inputs, target)) if self.loss.g_needs_real else None
            adversarial = self.adversarial_weight * self.loss.g_loss(fake_logits, real_logits)
        else:
            adversarial = fake.new_zeros(())
        terms = {LOSS_G: adversarial}
        for name, content in self.content.items():
            terms[f"{LOSS_G}_{name}"] = content(fake, target)
        return terms
