"""The GAN training module: manual optimisation alternating discriminator and generator updates.

One training step consumes one batch and makes one D update; every ``n_critic``-th step also makes one
G update and an EMA update. ``trainer.global_step`` therefore counts batches (D updates), so
``max_steps``, checkpoint and sample intervals are all in batches, whatever ``n_critic`` is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import do_nothing_closure
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn

from ganforge import __version__
from ganforge.augment import Augment
from ganforge.ema import ema_beta, latent_batches, make_ema, standing_stats, update_ema
from ganforge.errors import ConfigError
from ganforge.losses import AdversarialLoss
from ganforge.models.spectral import SpectralNormStep
from ganforge.regularizers import Regularizer
from ganforge.rng import get_rng_state, reseed_for_rank, set_rng_state
from ganforge.topk import TopK

# The EMA generator is in eval mode on purpose: it is never trained, only averaged.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def to_signed_unit(images: torch.Tensor) -> torch.Tensor:
    """``uint8 [0, 255]`` -> float ``[-1, 1]``; float data (e.g. 2-D points) passes through."""
    if images.dtype == torch.uint8:
        return images.float().div_(127.5).sub_(1.0)
    return images.float()


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


def couples_samples(net: nn.Module) -> bool:
    """Whether ``net``'s output for one sample depends on the others in its batch (training mode):
    batch norm, or a layer that says so with ``couples_samples = True`` (minibatch std/discrimination)."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "couples_samples", False)
        for m in net.modules()
    )


def compile_options(compile: bool | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``model.compile`` -> ``torch.compile`` keyword arguments, or ``None`` for eager."""
    if compile is None or compile is False:
        return None
    if compile is True:
        return {}
    if isinstance(compile, Mapping):
        return dict(compile)
    raise ConfigError(
        f"model.compile={compile!r}: use false, true or torch.compile arguments, "
        "e.g. model.compile={mode: max-autotune-no-cudagraphs}"
    )


def check_optimizer(key: str, factory: OptimizerFactory, net: nn.Module) -> None:
    """Build the optimizer once, so that a bad argument fails before training and names its config key.

    Inside ``fit`` torch would only say e.g. "Invalid learning rate: -0.0001", under 60 lines of
    traceback and without saying which optimizer. torch accepts ``lr=0``, which trains nothing.
    """
    lr = getattr(factory, "keywords", {}).get("lr")  # Hydra's _partial_ makes a functools.partial
    if isinstance(lr, int | float) and not lr > 0:
        raise ConfigError(f"{key}.lr={lr}: the learning rate must be > 0, e.g. {key}.lr=2e-4")
    try:
        factory(params=net.parameters())
    except (TypeError, ValueError) as e:
        name = getattr(getattr(factory, "func", factory), "__name__", "optimizer")
        raise ConfigError(
            f"{key} ({name}): {e}. Fix its arguments: {key}.<argument>=<value> "
            f"(+{key}.<argument>=<value> adds one, ~{key}.<argument> removes one)"
        ) from e


@torch.no_grad()
def grad_norm(net: nn.Module) -> torch.Tensor:
    """L2 norm of all of ``net``'s gradients together (what norm clipping looks at)."""
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def log_histograms(logger: Any, histograms: dict[str, torch.Tensor], step: int) -> None:
    """Distributions of D's scores on real and fake data, for loggers that draw histograms."""
    if not histograms:
        return
    if isinstance(logger, TensorBoardLogger):
        for name, values in histograms.items():
            logger.experiment.add_histogram(name, values.detach().float().cpu(), global_step=step)
    elif isinstance(logger, WandbLogger):
        import wandb

        logger.log_metrics(
            {
                name: wandb.Histogram(values.detach().float().cpu().numpy())
                for name, values in histograms.items()
            },
            step=step,
        )


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
        channels_last: keep image networks and batches in NHWC memory layout (faster convolutions on
            tensor-core GPUs, especially with bf16).
        compile: ``torch.compile`` the G and D forward passes of the adversarial losses: ``False``,
            ``True`` (default mode) or a dict of ``torch.compile`` arguments, e.g.
            ``{mode: max-autotune-no-cudagraphs}`` or ``{mode: reduce-overhead}`` (CUDA graphs).
            Penalties that differentiate twice (R1, R2, GP, path length) run the eager networks:
            compiled graphs do not support double backward. A compiled D with spectral norm updates
            its power iteration once per D update, eagerly (``ganforge.models.spectral``). A compiled
            D without batch-coupled layers (batch norm, minibatch std/discrimination) scores real and
            fake samples in one call.
        top_k: top-k G updates (``ganforge.topk.TopK``): G learns only from the fakes D scores highest.
        standing_stats: recompute the EMA generator's batch-norm statistics from this many latents
            (in batches of ``standing_stats_batch``) before it is used for samples, metrics and
            checkpoints (BigGAN's standing statistics; 0 = the running statistics copied from G).
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
        regularizers: Mapping[str, Regularizer] | None = None,
        augment: Augment | None = None,
        pack: int = 1,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        top_k: TopK | None = None,
        standing_stats: int = 0,
        standing_stats_batch: int = 256,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "loss", "regularizers", "augment", "top_k"], logger=False
        )
        if not 0.0 <= ema_beta < 1.0:
            raise ConfigError(f"model.ema_beta={ema_beta} must be in [0, 1)")
        check_optimizer("model.optimizer_g", optimizer_g, generator)
        check_optimizer("model.optimizer_d", optimizer_d, discriminator)
        self.G = generator
        self.D = discriminator
        self.G_ema = make_ema(generator)
        self.loss = loss
        self.n_critic = n_critic or loss.n_critic
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic={n_critic} must be >= 1")
        self.regularizers = nn.ModuleDict(dict(regularizers or {}))
        self.augment = augment
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
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        g = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_z", torch.randn(num_fixed_samples, generator.z_dim, generator=g))
        # Conditional models: the fixed grid cycles through the classes (one class per grid column).
        self.register_buffer("fixed_labels", torch.arange(num_fixed_samples) % max(self.num_classes, 1))
        self.run_config: dict[str, Any] | None = None  # resolved Hydra config, stored in checkpoints
        self._pending_rng: list[dict[str, Any]] | None = None  # per rank, until the first batch
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._compile_kwargs = compile_options(compile)
        # Compiled views of G and D for the loss passes, kept out of the module tree (no state_dict keys).
        self._fast: dict[str, Callable[..., torch.Tensor]] = {}
        self._d_power_iteration: SpectralNormStep | None = None  # compiled D with spectral norm
        self._joint_d = False  # D(real) and D(fake) in one call (compiled, sample-independent D)
        self.step_losses: dict[str, torch.Tensor] = {}  # this step's loss/d (and loss/g), on the device

    @property
    def z_dim(self) -> int:
        return self.G.z_dim

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None, eager: bool = False) -> torch.Tensor:
        """What D sees: augmented (DiffAugment/ADA), then packed (PacGAN) samples.

        ``eager`` bypasses ``torch.compile`` (for penalties that differentiate D's gradient).
        """
        if self.augment is not None:
            x = self.augment(x)
        x, labels = pack_samples(x, labels, self.pack)
        return (self.D if eager else self._fast.get("D", self.D))(x, labels)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Training-time ``G(z, labels)``, compiled when ``compile`` is on."""
        return self._fast.get("G", self.G)(z, labels)

    def configure_model(self) -> None:
        """Apply the speed options once the module is on its device (Lightning calls this before fit)."""
        if self.memory_format is torch.channels_last:
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        if self._compile_kwargs is not None and not self._fast:
            self._fast = {
                "G": torch.compile(self.G, **self._compile_kwargs),
                "D": torch.compile(self.D, **self._compile_kwargs),
            }
            # D runs twice (real, fake) before one backward: its power iteration must stay eager
            self._d_power_iteration = SpectralNormStep(self.D) or None
            # Compiled steps are bound by kernel launches: a D that treats samples independently
            # scores real and fake in one call (half the launches); batch norm or minibatch-std
            # would see a mixed batch, so those Ds keep two.
            self._joint_d = not couples_samples(self.D)

    # -- checks before training -----------------------------------------------------------------
    @torch.no_grad()
    def check_data(
        self, data_shape: tuple[int, ...], num_classes: int = 0, batch_size: int | None = None
    ) -> None:
        """Fail before training when networks and data disagree (shape, classes, packing)."""
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
        was_training = self.G.training, self.D.training
        self.G.eval()
        self.D.eval()
        try:
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
        finally:
            self.G.train(was_training[0])
            self.D.train(was_training[1])
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
        data, labels = batch
        real = to_signed_unit(data)
        if real.ndim == 4:
            real = real.contiguous(memory_format=self.memory_format)
        labels = labels if self.conditional else None
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()
        schedulers = self._schedulers()
        step = self.global_step  # batches done before this one
        update_g = (step + 1) % self.n_critic == 0
        logs: dict[str, torch.Tensor] = {}
        if self._fast:
            # CUDA graphs (compile mode reduce-overhead) reuse their output memory from here on;
            # nothing computed in earlier steps is read after this point
            torch.compiler.cudagraph_mark_step_begin()

        # Discriminator update (counted: advances global_step).
        if self._d_power_iteration is not None:
            self._d_power_iteration()
        with torch.no_grad():
            fake = self.generate(self._random_z(n), labels)
        if self._joint_d:
            both = None if labels is None else torch.cat([labels, labels])
            real_logits, fake_logits = self.critic(torch.cat([real, fake]), both).chunk(2)
        else:
            real_logits = self.critic(real, labels)
            fake_logits = self.critic(fake, labels)
        d_loss = self.loss.d_loss(real_logits, fake_logits)
        critic = lambda x: self.critic(x, labels, eager=True)  # noqa: E731
        penalties = self.loss.d_penalties(critic, real, fake)
        for name, reg in self.regularizers.items():
            if reg.target == "d" and reg.due(step):
                penalties[name] = reg.scale(step) * reg.d_penalty(critic, real, fake)
        d_total = d_loss + sum(penalties.values())
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_total)
        self._clip(opt_d, self.hparams.grad_clip_d)
        log_now = self._log_due(step + 1)
        if log_now:
            logs["grad_norm/d"] = grad_norm(self.D)
        opt_d.step()
        self.loss.after_d_step(self.D)
        if "d" in schedulers:
            schedulers["d"].step()
        if self.augment is not None:
            self.augment.update(real_logits.detach())
            if log_now:
                logs["augment/p"] = self.augment.p.detach().clone()
        logs["loss/d"] = d_loss.detach()
        logs.update({f"loss/d_{k}": v.detach() for k, v in penalties.items()})
        if log_now:
            logs["d/real_logit"] = real_logits.detach().mean()
            logs["d/fake_logit"] = fake_logits.detach().mean()

        # Generator update (not counted: global_step stays "batches seen").
        if update_g:
            g_step = (step + 1) // self.n_critic - 1
            self.D.requires_grad_(False)
            z = self._random_z(n)
            fake_logits = self.critic(self.generate(z, labels), labels)
            real_for_g = self.critic(real, labels) if self.loss.g_needs_real else None
            g_logits = fake_logits
            if self.top_k is not None:
                g_logits, real_for_g = self.top_k.select(fake_logits, real_for_g, g_step)
                if log_now:
                    logs["top_k/fraction"] = torch.tensor(self.top_k.fraction(g_step))
            g_loss = self.loss.g_loss(g_logits, real_for_g)
            g_terms = {
                name: reg.scale(g_step) * reg.g_penalty(self, z, labels)
                for name, reg in self.regularizers.items()
                if reg.target == "g" and reg.due(g_step)
            }
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss + sum(g_terms.values()))
            self.D.requires_grad_(True)
            self._clip(opt_g, self.hparams.grad_clip_g)
            if log_now:
                logs["grad_norm/g"] = grad_norm(self.G)
            self.trainer.strategy.optimizer_step(opt_g.optimizer, do_nothing_closure)
            if "g" in schedulers:
                schedulers["g"].step()
            beta = ema_beta(self.hparams.ema_beta, step, self.hparams.ema_rampup)
            update_ema(self.G_ema, self.G, beta)
            self._ema_stats_stale = True
            logs["loss/g"] = g_loss.detach()
            logs.update({f"loss/g_{k}": v.detach() for k, v in g_terms.items()})

        histograms = {"d/real_logits": real_logits, "d/fake_logits": fake_logits} if log_now else {}
        self._log_step(logs, histograms)

    def _log_due(self, step: int) -> bool:
        return bool(self.trainer.loggers) and step % self.trainer.log_every_n_steps == 0

    def _log_step(self, logs: dict[str, torch.Tensor], histograms: dict[str, torch.Tensor]) -> None:
        """Keep this step's losses on the device; send values to the loggers every ``log_every_n_steps``.

        ``step_losses`` (read each step by the NaN guard) never leaves the device. ``callback_metrics``
        (progress bar, other callbacks) is updated at logging steps and the last step only: Lightning's
        ``self.log`` costs about a millisecond of Python per call. They are not ``prog_bar`` values:
        Lightning turns those into Python numbers after *every* batch, a device-to-host read that
        made each step wait for the whole CUDA queue (ganforge's progress bar reads
        ``callback_metrics``). Values go to the loggers directly because Lightning re-emits the last
        value of keys not logged in a step, which would plot stale G losses on the steps without a G
        update.
        """
        self.step_losses = {k: logs[k] for k in ("loss/d", "loss/g") if k in logs}
        step = self.global_step
        trainer = self.trainer
        if step % trainer.log_every_n_steps == 0 or (trainer.max_steps > 0 and step >= trainer.max_steps):
            self.log_dict(self.step_losses, prog_bar=False, logger=False)
        if not self._log_due(step):
            return
        metrics = {k: float(v) for k, v in logs.items()}
        for name, opt in zip(("g", "d"), trainer.optimizers, strict=True):
            metrics[f"lr/{name}"] = opt.param_groups[0]["lr"]
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            log_histograms(logger, histograms, step)
            logger.save()

    def _clip(self, optimizer: Any, max_norm: float | None) -> None:
        """Gradient clipping hook; override for per-layer schemes."""
        if max_norm:
            self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")

    # -- exact resume ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Called on every rank (Lightning then writes rank 0's dict): each rank's streams are kept.
        checkpoint["ganforge"] = {
            "version": __version__,
            "config": self.run_config,
            "rng_per_rank": self._gather(get_rng_state()),
        }
        if self.hparams.standing_stats:
            # generate.py / eval.py / load_generator read G_ema from here: give them the recomputed stats
            state = checkpoint["state_dict"]
            for name, buffer in self.ema_generator().named_buffers():
                if f"G_ema.{name}" in state:
                    state[f"G_ema.{name}"] = buffer.detach().clone()

    def _gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (``[obj]`` outside data-parallel runs)."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1 or not torch.distributed.is_initialized():
            return [obj]
        out: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._ema_stats_stale = True
        # Restored at the first batch, after Lightning has finished its own set-up draws.
        saved = checkpoint.get("ganforge", {})
        # "rng": checkpoints of ganforge 0.1 before per-rank states, one process's
        self._pending_rng = saved.get("rng_per_rank") or ([saved["rng"]] if "rng" in saved else None)

    def on_train_start(self) -> None:
        if self._pending_rng is None and self.trainer.world_size > 1:
            reseed_for_rank(self.trainer.global_rank)  # a fresh data-parallel run

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._pending_rng is None:
            return
        states, self._pending_rng = self._pending_rng, None
        world, rank = self.trainer.world_size, self.trainer.global_rank
        if len(states) == world:
            set_rng_state(states[rank])  # each rank continues its own streams exactly
            return
        # Saved with another number of processes: continue deterministically from rank 0's streams.
        warnings.warn(
            f"the checkpoint holds random states of {len(states)} process(es) but this run has {world}: "
            "training continues deterministically, but not as the uninterrupted run would have",
            stacklevel=1,
        )
        set_rng_state(states[0])
        if world > 1:
            reseed_for_rank(rank)
