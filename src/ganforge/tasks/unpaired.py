"""The unpaired image <-> image family: CycleGAN (Zhu et al., 2017) between two image domains A and B.

Every batch is ``(a uint8 [N, Ca, R, R], b uint8 [N, Cb, R, R])``: an image of each domain, not related to
each other. Two generators translate both ways (``G_AB: A -> B``, ``G_BA: B -> A``) and two discriminators
judge each domain (``D_A``: real ``a`` against ``G_BA(b)``, ``D_B``: real ``b`` against ``G_AB(a)``). Each G
also has to undo the other's translation (the cycle loss) and, optionally, leave images of its own output
domain unchanged (the identity loss).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ganforge.augment import Augment
from ganforge.errors import ConfigError
from ganforge.images import to_signed_unit
from ganforge.losses import AdversarialLoss
from ganforge.regularizers import Regularizer
from ganforge.tasks.base import LOSS_D, LOSS_G, AdversarialModule, OptimizerFactory, SchedulerFactory
from ganforge.tasks.paired import as_channels

#: ``translate.py direction=...`` -> the generator's key in the G side
DIRECTIONS = {"AtoB": "AB", "BtoA": "BA"}


class ImagePool(nn.Module):
    """The history of generated images a discriminator also sees (Shrivastava et al., 2017; CycleGAN).

    ``query`` (one image at a time, as the reference): while the pool is not full, the new image is stored
    and returned; once full, with probability 1/2 a random stored image is returned and replaced by the
    new one, else the new image is returned. Draws come from torch's global (CPU) generator, whose state
    checkpoints keep. The stored images are a buffer and the fill count the module's extra state, so both
    are in the ``state_dict`` and a resumed run continues with the same pool; the count stays on the host
    (no device read per step).
    """

    def __init__(self, size: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        if size < 0:
            raise ConfigError(f"model.pool_size={size} must be >= 0 (0: no pool)")
        self.size = size
        self.count = 0
        self.register_buffer("images", torch.zeros(size, *shape))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The images D is shown for this batch of new (detached) ``images``."""
        if self.size == 0:
            return images
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].to(image.dtype, copy=True))
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)

    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor(self.count)

    def set_extra_state(self, state: Any) -> None:
        self.count = int(state)


class CycleGANModule(AdversarialModule):
    """CycleGAN: ``G_AB``, ``G_BA`` (the G side, ``G["AB"]``, ``G["BA"]``) against ``D_A``, ``D_B``
    (the D side, ``D["A"]``, ``D["B"]``).

    Args:
        generator: a factory (Hydra ``_partial_``) of one generator, called twice:
            ``generator(in_channels=channels_a, out_channels=channels_b)`` is ``G_AB`` and the reverse
            ``G_BA`` (ResNet 9 blocks as the reference at 256 px, or a U-Net).
        discriminator: a factory of one discriminator, called with ``in_channels=channels_a`` (``D_A``)
            and ``in_channels=channels_b`` (``D_B``) (the reference's 70x70 PatchGAN).
        channels_a, channels_b: channels of domain A's and B's images (by default the data's
            ``input_channels`` and ``channels``).
        resolution: the training images' size (the history pools hold images of it).
        cycle_weight: ``lambda`` of the cycle loss,
            ``lambda * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)`` (the reference's 10 per direction).
        identity_weight: the identity loss relative to ``cycle_weight`` (the reference's ``lambda_identity``):
            ``identity_weight * cycle_weight * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)``; 0 disables it. It needs
            the same channel count in both domains.
        pool_size: generated images kept per discriminator (``ImagePool``; 0: D sees this step's fakes only).
        num_fixed_samples: test images of each domain shown in every sample grid.

    The rest as for every family (``AdversarialModule``). One optimizer trains both generators and one both
    discriminators. Each D's loss is halved, as the reference does (``loss/d`` =
    ``(d_loss(D_A) + d_loss(D_B)) / 2`` plus any penalties; the halves are logged as ``d/loss_a``,
    ``d/loss_b``); ``loss/g`` is the adversarial terms of both generators, ``loss/g_cycle`` and
    ``loss/g_identity`` the weighted content terms. ``compile`` compiles each of the four networks. The
    EMA side (``G_ema``, ``ema_beta=0``: a copy) holds both generators and is used in eval mode for
    samples, metrics and ``translate.py direction=AtoB|BtoA``.
    """

    data_kinds = ("unpaired",)
    data_hint = (
        "CycleGAN takes two unpaired image sets (domains A and B): data=unpaired (or its presets, e.g. "
        "emoji_unpaired, cifar_unpaired, horse2zebra); for (input, target) pairs use model=pix2pix"
    )
    grid_columns = 3  # x | G(x) | G'(G(x))

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: AdversarialLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        channels_a: int,
        channels_b: int,
        resolution: int,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        pool_size: int = 50,
        n_critic: int | None = None,
        ema_beta: float = 0.0,
        ema_rampup: float | None = None,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        num_fixed_samples: int = 4,
        regularizers: Mapping[str, Regularizer] | None = None,
        augment: Augment | None = None,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        init_generator: str | None = None,
        top_k: Any = None,
    ) -> None:
        if top_k is not None:
            raise ConfigError(
                "topk=default selects among the fakes of a noise -> image batch; CycleGAN has one output per "
                "input: drop topk=default"
            )
        if cycle_weight < 0 or identity_weight < 0:
            raise ConfigError(
                f"model.cycle_weight={cycle_weight} and model.identity_weight={identity_weight} must be >= 0"
            )
        if identity_weight > 0 and cycle_weight > 0 and channels_a != channels_b:
            raise ConfigError(
                f"identity loss needs the same channel count in both domains (A: {channels_a}, B: "
                f"{channels_b}): set model.identity_weight=0"
            )
        g_targets = [r for r in (regularizers or {}).values() if r is not None and r.target == "g"]
        if g_targets:
            raise ConfigError(
                f"{type(g_targets[0]).__name__} regularises a noise -> image generator; CycleGAN takes D "
                "regularisers only (reg=r1, r1_r2, gp)"
            )
        super().__init__(
            build_generators(generator, channels_a, channels_b),
            nn.ModuleDict(
                {"A": discriminator(in_channels=channels_a), "B": discriminator(in_channels=channels_b)}
            ),
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
            ignore=["generator", "discriminator", "loss", "regularizers", "augment", "top_k"], logger=False
        )
        self.channels_a, self.channels_b, self.resolution = channels_a, channels_b, resolution
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.num_fixed_samples = num_fixed_samples
        # history pools: state (in checkpoints), so that a resumed run shows D the same old fakes
        self.pool_a = ImagePool(pool_size, (channels_a, resolution, resolution))
        self.pool_b = ImagePool(pool_size, (channels_b, resolution, resolution))
        # Fixed test images for sample grids, taken from the data at set-up (not saved: data, not state).
        self.register_buffer("fixed_a", torch.zeros(0, dtype=torch.uint8), persistent=False)
        self.register_buffer("fixed_b", torch.zeros(0, dtype=torch.uint8), persistent=False)
        self._pending_pools: list[dict[str, Any]] | None = None  # per rank, until the first batch

    @classmethod
    def generator_side(cls, model_cfg: Any) -> nn.ModuleDict:
        """Both generators, untrained, from a run config's ``model`` node (``generator_from_checkpoint``)."""
        import hydra

        factory = hydra.utils.instantiate(model_cfg.generator)
        return build_generators(factory, int(model_cfg.channels_a), int(model_cfg.channels_b))

    # -- data -----------------------------------------------------------------------------------
    @torch.no_grad()
    def check_data(self, datamodule: Any) -> None:
        """Fail before training when the networks or pools cannot take the data's channels or size."""
        super().check_data(datamodule)
        shape_a, shape_b = tuple(datamodule.input_shape), tuple(datamodule.image_shape)
        if (shape_a[0], shape_b[0]) != (self.channels_a, self.channels_b):
            raise ConfigError(
                f"the model is built for {self.channels_a}-channel A and {self.channels_b}-channel B images "
                f"but the data gives {shape_a[0]} and {shape_b[0]}: set data.input_channels / data.channels, "
                "or model.channels_a / model.channels_b (by default they follow the data)"
            )
        if shape_a[1:] != (self.resolution,) * 2 or shape_b[1:] != (self.resolution,) * 2:
            raise ConfigError(
                f"model.resolution={self.resolution} (the history pools' image size) but the data gives "
                f"{shape_a[1:]} and {shape_b[1:]} images: leave model.resolution to follow data.resolution"
            )
        try:
            with self.networks_in_eval():
                a = torch.zeros(1, *shape_a, device=self.device)
                b = torch.zeros(1, *shape_b, device=self.device)
                for name, x, want in (("G_AB", a, shape_b), ("G_BA", b, shape_a)):
                    out = self.G[name[2:]](x)  # the networks' own size checks speak here
                    if tuple(out.shape[1:]) != want:
                        shapes = f"{tuple(x.shape[1:])} images into {tuple(out.shape[1:])}"
                        raise ConfigError(f"{name} turns {shapes}, not {want}")
                self.D["A"](a)
                self.D["B"](b)
        except RuntimeError as e:  # a channel count or size the network was not built for
            raise ConfigError(
                f"the networks cannot take this data ({type(e).__name__}: {e}); check the model's options "
                "against data.input_channels / data.channels / data.resolution"
            ) from e

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and self.fixed_a.numel() == 0 and self.num_fixed_samples > 0:
            a, b = datamodule.grid_pairs(self.num_fixed_samples)
            self.fixed_a, self.fixed_b = a.to(self.device), b.to(self.device)

    # -- exact resume of every rank's pools -----------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Under data parallelism each rank fills its pools with its own fakes, but Lightning writes rank 0's
        ``state_dict`` only: the pools of every rank are kept beside it (as the random states are)."""
        super().on_save_checkpoint(checkpoint)
        pools = self._gather({name: pool.state_dict() for name, pool in self._pools().items()})
        if len(pools) > 1:
            checkpoint["ganforge"]["pools_per_rank"] = [
                {name: {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
                 for name, state in rank.items()}
                for rank in pools
            ]  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._pending_pools = checkpoint.get("ganforge", {}).get("pools_per_rank")

    def _restore_pools(self) -> None:
        """Each rank takes back its own pools; saved with another number of processes, every rank keeps
        rank 0's (the random states warn about that). Called by ``d_terms``, inside the first step's
        forward: DDP broadcasts rank 0's buffers (the pools among them) at the first forward of a run, after
        the batch-start hooks, so a restore any earlier would be overwritten on the other ranks."""
        pending, self._pending_pools = self._pending_pools, None
        if pending is not None and len(pending) == self.trainer.world_size:
            for name, pool in self._pools().items():
                pool.load_state_dict(pending[self.trainer.global_rank][name])

    def _pools(self) -> dict[str, ImagePool]:
        return {"pool_a": self.pool_a, "pool_b": self.pool_b}

    # -- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, **_: Any) -> torch.Tensor:
        """Rows ``a | G_AB(a) | G_BA(G_AB(a))`` for the fixed test A images, then ``b | G_BA(b) |
        G_AB(G_BA(b))`` for the fixed test B images, in ``[-1, 1]`` (``grid_columns`` = 3). A grey domain
        beside a colour one is shown in 3 equal channels."""
        G = self.G_ema
        channels = max(self.channels_a, self.channels_b)
        blocks = []
        for x, there, back in ((self.fixed_a, "AB", "BA"), (self.fixed_b, "BA", "AB")):
            x = to_signed_unit(x)
            y = G[there](x)
            rows = [x, y, G[back](y)]
            blocks.append(torch.stack([as_channels(r, channels) for r in rows], dim=1).flatten(0, 1))
        return torch.cat(blocks)

    # -- the two sides' objectives --------------------------------------------------------------
    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        a, b = batch
        return {"a": self.to_layout(to_signed_unit(a)), "b": self.to_layout(to_signed_unit(b))}

    def d_terms(
        self, batch: dict[str, torch.Tensor], step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        if self._pending_pools is not None:  # the first step of a resumed data-parallel run
            self._restore_pools()
        # One G pass per step, shared with the G update when this step has one (as the reference does).
        with torch.set_grad_enabled((step + 1) % self.n_critic == 0):
            batch["fake_b"] = fake_b = self.generate(a, net="AB")
            batch["fake_a"] = fake_a = self.generate(b, net="BA")
        terms: dict[str, torch.Tensor] = {}
        real_logits, fake_logits, halves = [], [], {}
        for name, real, fake, pool in (("A", a, fake_a, self.pool_a), ("B", b, fake_b, self.pool_b)):
            shown = self.to_layout(pool.query(fake.detach()))
            real_out, fake_out = self.score_real_fake(real, shown, net=name)
            halves[name] = 0.5 * self.loss.d_loss(real_out, fake_out)  # the reference halves each D's loss
            critic = lambda x, name=name: self.critic(x, eager=True, net=name)  # noqa: E731
            for key, value in self.d_penalties(critic, real, shown, step).items():
                terms[key] = terms[key] + value if key in terms else value
            real_logits.append(real_out.flatten())
            fake_logits.append(fake_out.flatten())
        terms = {LOSS_D: halves["A"] + halves["B"], **terms}
        logs["d/loss_a"], logs["d/loss_b"] = halves["A"].detach(), halves["B"].detach()
        self.observe_d(torch.cat(real_logits), torch.cat(fake_logits), step, logs)
        return terms

    def g_terms(
        self, batch: dict[str, torch.Tensor], g_step: int, logs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        fake_b = batch["fake_b"] if "fake_b" in batch else self.generate(a, net="AB")
        fake_a = batch["fake_a"] if "fake_a" in batch else self.generate(b, net="BA")
        adversarial = []
        for name, real, fake in (("B", b, fake_b), ("A", a, fake_a)):  # G_AB fools D_B, G_BA fools D_A
            fake_logits = self.critic(fake, net=name)
            real_logits = self.critic(real, net=name) if self.loss.g_needs_real else None
            adversarial.append(self.loss.g_loss(fake_logits, real_logits))
        terms = {LOSS_G: adversarial[0] + adversarial[1]}
        if self.cycle_weight > 0:
            terms[f"{LOSS_G}_cycle"] = self.cycle_weight * (
                F.l1_loss(self.generate(fake_b, net="BA"), a) + F.l1_loss(self.generate(fake_a, net="AB"), b)
            )
        if self.identity_weight > 0 and self.cycle_weight > 0:
            terms[f"{LOSS_G}_identity"] = (
                self.identity_weight
                * self.cycle_weight
                * (F.l1_loss(self.generate(b, net="AB"), b) + F.l1_loss(self.generate(a, net="BA"), a))
            )
        return terms


def build_generators(factory: Callable[..., nn.Module], channels_a: int, channels_b: int) -> nn.ModuleDict:
    """``{"AB": factory(A -> B), "BA": factory(B -> A)}``: CycleGAN's G side."""
    return nn.ModuleDict(
        {
            "AB": factory(in_channels=channels_a, out_channels=channels_b),
            "BA": factory(in_channels=channels_b, out_channels=channels_a),
        }
    )
