"""What every adversarial task family shares: a G side and a D side trained by manual optimisation.

One training step consumes one batch and makes one D update; every ``n_critic``-th step also makes one
G update and an EMA update. ``trainer.global_step`` therefore counts batches (D updates), so
``max_steps``, checkpoint and sample intervals are all in batches, whatever ``n_critic`` is: Lightning
advances it on D's optimizer step only, and G's step goes through the strategy directly.

A family (noise -> image, paired translation, ...) says what its batch is and which loss terms each side
minimises (``d_terms``, ``g_terms``); this base does the rest: optimizers and schedulers, clipping, the
EMA generator side, compile and channels-last, logging that never waits for the GPU, exact-resume random
state, and the checks that fail before training.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import do_nothing_closure
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn

from ganforge import __version__
from ganforge.augment import Augment
from ganforge.checkpoint import init_generator_from
from ganforge.ema import ema_beta, make_ema, update_ema
from ganforge.errors import ConfigError
from ganforge.losses import AdversarialLoss
from ganforge.models.spectral import SpectralNormStep
from ganforge.regularizers import Regularizer
from ganforge.rng import get_rng_state, reseed_for_rank, set_rng_state

# The EMA generator is in eval mode on purpose: it is never trained, only averaged.
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]
Critic = Callable[[torch.Tensor], torch.Tensor]

# The main objective of each side, as logged; other terms are "loss/d_<name>", "loss/g_<name>".
LOSS_D, LOSS_G = "loss/d", "loss/g"
STEP_LOSS_KEYS = (LOSS_D, LOSS_G)


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


class AdversarialModule(L.LightningModule):
    """Adversarial training of a generator side ``G`` against a discriminator side ``D`` under ``loss``.

    Args:
        generator, discriminator: the two sides (a family may hold several networks in each, e.g. an
            ``nn.ModuleDict``); ``G_ema`` is an averaged copy of the whole G side. ``discriminator=None``
            trains G alone on the family's other terms (SRResNet's PSNR objective): every step is then
            one G update, and ``loss``, ``optimizer_d`` and ``n_critic`` are not used.
        loss: adversarial objective; also says how many D updates per G update (``n_critic``).
        optimizer_g, optimizer_d: optimizer factories (Hydra ``_partial_``), separate LRs = TTUR.
        scheduler_g, scheduler_d: optional LR scheduler factories, stepped once per own update.
        n_critic: override ``loss.n_critic``.
        ema_beta: per-G-update decay of the EMA generator (0 = plain copy).
        ema_rampup: StyleGAN2-ADA style EMA warm-up ratio (``None`` = constant beta).
        grad_clip_g, grad_clip_d: clip gradient norms to this value (``None`` = off).
        regularizers: D (or G) penalties that compose with any loss (R1, R2, GP, path length).
        augment: differentiable augmentation of everything D sees (DiffAugment, ADA).
        channels_last: keep the networks and image batches in NHWC memory layout (faster convolutions on
            tensor-core GPUs, especially with bf16).
        init_generator: a checkpoint whose generator starts G (and its EMA copy): a ganforge ``.ckpt``
            (its EMA generator is taken) or a file of G's own ``state_dict``. ESRGAN starts from a
            PSNR-trained RRDBNet. Read when the module is built, so a resumed run's state wins.
        compile: ``torch.compile`` the G and D forward passes of the adversarial losses: ``False``,
            ``True`` (default mode) or a dict of ``torch.compile`` arguments, e.g.
            ``{mode: max-autotune-no-cudagraphs}`` or ``{mode: reduce-overhead}`` (CUDA graphs).
            Penalties that differentiate twice (R1, R2, GP, path length) run the eager networks:
            compiled graphs do not support double backward. A compiled D with spectral norm updates
            its power iteration once per D update, eagerly (``ganforge.models.spectral``).
    """

    #: what a datamodule of this family yields (its ``kind``): checked before training
    data_kinds: tuple[str, ...] = ()
    #: what to use instead, named in the error for data of another kind
    data_hint = ""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        loss: AdversarialLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory | None,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        n_critic: int | None = None,
        ema_beta: float = 0.999,
        ema_rampup: float | None = 0.05,
        grad_clip_g: float | None = None,
        grad_clip_d: float | None = None,
        regularizers: Mapping[str, Regularizer] | None = None,
        augment: Augment | None = None,
        channels_last: bool = False,
        compile: bool | Mapping[str, Any] = False,
        init_generator: str | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if not 0.0 <= ema_beta < 1.0:
            raise ConfigError(f"model.ema_beta={ema_beta} must be in [0, 1)")
        check_optimizer("model.optimizer_g", optimizer_g, generator)
        if discriminator is not None:
            if optimizer_d is None:
                raise ConfigError("model.optimizer_d is null but the model has a discriminator: set it")
            check_optimizer("model.optimizer_d", optimizer_d, discriminator)
        if init_generator:
            init_generator_from(generator, init_generator)
        self.G = generator
        self.D = discriminator
        self.G_ema = make_ema(generator)
        self.loss = loss
        self.n_critic = 1 if discriminator is None else n_critic or loss.n_critic
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic={n_critic} must be >= 1")
        self.regularizers = nn.ModuleDict(dict(regularizers or {}))
        self.augment = augment
        self.run_config: dict[str, Any] | None = None  # resolved Hydra config, stored in checkpoints
        self._pending_rng: list[dict[str, Any]] | None = None  # per rank, until the first batch
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._compile_kwargs = compile_options(compile)
        # Compiled views of G and D for the loss passes, kept out of the module tree (no state_dict keys).
        self._fast: dict[str, Callable[..., torch.Tensor]] = {}
        self._d_power_iteration: SpectralNormStep | None = None  # compiled D with spectral norm
        self._joint_d = False  # D(real) and D(fake) in one call (compiled, sample-independent D)
        self.step_losses: dict[str, torch.Tensor] = {}  # this step's loss/d (and loss/g), on the device
        # Last value of each penalty term, on the device: lazy regularisers (R1 every 16 steps, path
        # length every 4 G updates) rarely run on a logging step, so each logging step reports these.
        self._last_terms: dict[str, torch.Tensor] = {}
        self._histograms: dict[str, torch.Tensor] = {}  # this logging step's, see log_histogram

    # -- what a family says -----------------------------------------------------------------------
    def prepare_batch(self, batch: Any) -> Any:
        """The batch as the family's loss terms take it (on the device; floats in ``[-1, 1]``)."""
        raise NotImplementedError

    def d_terms(self, batch: Any, step: int, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """D's loss terms for this step by log name (``loss/d`` first); their sum is minimised.

        ``logs`` takes extra values to log (detached) on logging steps (``self.log_due``).
        """
        raise NotImplementedError

    def g_terms(self, batch: Any, g_step: int, logs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """G's loss terms for G update ``g_step`` by log name (``loss/g`` first); their sum is minimised."""
        raise NotImplementedError

    def check_data(self, datamodule: Any) -> None:
        """Fail before training when the data is of another kind than the family trains on."""
        kind = getattr(datamodule, "kind", "images")
        if kind not in self.data_kinds:
            raise ConfigError(
                f"{type(self).__name__} trains on {' or '.join(self.data_kinds)}, but data "
                f"{getattr(datamodule, 'name', type(datamodule).__name__)} gives {kind}. {self.data_hint}"
            )

    # -- shared helpers for families ----------------------------------------------------------------
    def critic(
        self, x: torch.Tensor, *args: Any, eager: bool = False, net: str | None = None
    ) -> torch.Tensor:
        """D on augmented (DiffAugment/ADA) input; ``eager`` bypasses ``torch.compile`` (penalties that
        differentiate D's gradient). ``net``: the named network of a D side that holds several
        (``nn.ModuleDict``, e.g. CycleGAN's ``"A"`` and ``"B"``); ``None``: D itself."""
        if self.augment is not None:
            x = self.augment(x)
        d = self.D if net is None else self.D[net]
        return (d if eager else self._fast.get("D" if net is None else f"D.{net}", d))(x, *args)

    def generate(self, *inputs: Any, net: str | None = None) -> torch.Tensor:
        """Training-time ``G(*inputs)``, compiled when ``compile`` is on; ``net`` names one network of
        a G side that holds several (``nn.ModuleDict``)."""
        g = self.G if net is None else self.G[net]
        return self._fast.get("G" if net is None else f"G.{net}", g)(*inputs)

    def score_real_fake(
        self, real: torch.Tensor, fake: torch.Tensor, *args: Any, net: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits on the real and the fake batch (``args``: D's other inputs, e.g. labels; ``net``:
        as for ``critic``).

        A compiled D that treats samples independently scores both in one call (half the launches);
        batch norm or minibatch std would see a mixed batch, so those Ds get two.
        """
        named = {} if net is None else {"net": net}  # a family's own critic may take no net
        if self._joint_d:
            both = [a if a is None else torch.cat([a, a]) for a in args]
            return self.critic(torch.cat([real, fake]), *both, **named).chunk(2)
        return self.critic(real, *args, **named), self.critic(fake, *args, **named)

    def observe_d(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor, step: int, logs: dict[str, torch.Tensor]
    ) -> None:
        """After D's loss: steer adaptive augmentation by D's real logits, and log D's view.

        The new ADA ``p`` applies from the G pass of this step on (the D graph is already built).
        """
        if self.augment is not None:
            self.augment.update(real_logits.detach())
        if self.log_due(step + 1):
            if self.augment is not None:
                logs["augment/p"] = self.augment.p.detach().clone()
            logs["d/real_logit"] = real_logits.detach().mean()
            logs["d/fake_logit"] = fake_logits.detach().mean()
            self.log_histogram("d/real_logits", real_logits)
            self.log_histogram("d/fake_logits", fake_logits)

    @contextlib.contextmanager
    def networks_in_eval(self) -> Iterator[None]:
        """G and D in eval mode (the dry runs of ``check_data``), their modes restored after."""
        nets = [net for net in (self.G, self.D) if net is not None]
        was_training = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            yield
        finally:
            for net, mode in zip(nets, was_training, strict=True):
                net.train(mode)

    def d_penalties(
        self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        """The loss's own D penalties (WGAN-GP) and the D regularisers due at ``step``, weighted, by log
        name. ``critic`` must run the eager D (they differentiate its gradient)."""
        penalties = self.loss.d_penalties(critic, real, fake)
        for name, reg in self.regularizers.items():
            if reg.target == "d" and reg.due(step):
                penalties[name] = reg.scale(step) * reg.d_penalty(critic, real, fake)
        return {f"{LOSS_D}_{k}": v for k, v in penalties.items()}

    def log_due(self, step: int) -> bool:
        """Whether values are sent to the loggers after ``step`` batches."""
        return bool(self.trainer.loggers) and step % self.trainer.log_every_n_steps == 0

    def to_layout(self, images: torch.Tensor) -> torch.Tensor:
        """An image batch in the networks' memory layout (channels-last or contiguous)."""
        return images.contiguous(memory_format=self.memory_format) if images.ndim == 4 else images

    def scored_resolution(self) -> int | None:
        """The resolution the G side makes now, when it is not the data's (a growing ProGAN): metrics
        then score real images pooled to it and say so."""
        return None

    def scores_final(self) -> bool:
        """Whether metrics now score the model the run is making (false while ProGAN grows): only such
        scores compete for the best-FID checkpoint."""
        return True

    def progress_status(self) -> dict[str, str]:
        """Extra fields for the progress bar (ProGAN: resolution and fade-in)."""
        return {}

    def g_side(self) -> nn.Module:
        """The networks G's optimizer trains and the EMA averages."""
        return self.G

    def d_side(self) -> nn.Module:
        return self.D

    def configure_model(self) -> None:
        """Apply the speed options once the module is on its device (Lightning calls this before fit)."""
        if self.memory_format is torch.channels_last:
            for net in (self.G, self.D, self.G_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self._compile_kwargs is not None and not self._fast and self.D is None:
            self._fast = self._compiled("G", self.G)
        if self._compile_kwargs is not None and not self._fast:
            self._fast = {**self._compiled("G", self.G), **self._compiled("D", self.D)}
            # D runs twice (real, fake) before one backward: its power iteration must stay eager
            self._d_power_iteration = SpectralNormStep(self.D) or None
            # Compiled steps are bound by kernel launches: a D that treats samples independently
            # scores real and fake in one call (half the launches); batch norm or minibatch-std
            # would see a mixed batch, so those Ds keep two.
            self._joint_d = not couples_samples(self.D)

    def _compiled(self, side: str, net: nn.Module) -> dict[str, Callable[..., torch.Tensor]]:
        """Compiled views of a side by ``_fast`` key: ``"G"`` / ``"D"``, or ``"G.<name>"`` for each network
        of a side that holds several (``nn.ModuleDict``: ``generate(net=...)``, ``critic(net=...)``)."""
        assert self._compile_kwargs is not None
        if isinstance(net, nn.ModuleDict):
            return {f"{side}.{k}": torch.compile(v, **self._compile_kwargs) for k, v in net.items()}
        return {side: torch.compile(net, **self._compile_kwargs)}

    # -- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizers = {"g": self.hparams.optimizer_g(params=self.g_side().parameters())}
        if self.D is not None:
            optimizers["d"] = self.hparams.optimizer_d(params=self.d_side().parameters())
        schedulers, self._scheduler_owner = [], []
        for name, opt in optimizers.items():
            factory = self.hparams[f"scheduler_{name}"]
            if factory is not None:
                schedulers.append({"scheduler": factory(optimizer=opt), "interval": "step"})
                self._scheduler_owner.append(name)
        return list(optimizers.values()), schedulers

    def _schedulers(self) -> dict[str, Any]:
        scheds = self.lr_schedulers()
        if scheds is None:
            return {}
        if not isinstance(scheds, list):
            scheds = [scheds]
        return dict(zip(self._scheduler_owner, scheds, strict=True))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        batch = self.prepare_batch(batch)
        schedulers = self._schedulers()
        step = self.global_step  # batches done before this one
        log_now = self.log_due(step + 1)
        logs: dict[str, torch.Tensor] = {}
        if self._fast:
            # CUDA graphs (compile mode reduce-overhead) reuse their output memory from here on;
            # nothing computed in earlier steps is read after this point
            torch.compiler.cudagraph_mark_step_begin()
        if self.D is None:  # G alone: its update is the counted one
            self._g_update(self.optimizers(), batch, step, schedulers, logs, log_now, counted=True)
            self._finish_step(logs, log_now)
            return
        opt_g, opt_d = self.optimizers()

        # Discriminator update (counted: advances global_step).
        if self._d_power_iteration is not None:
            self._d_power_iteration()
        d_terms = self.d_terms(batch, step, logs)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(sum(d_terms.values()))
        self._clip(opt_d, self.hparams.grad_clip_d)
        if log_now:
            logs["grad_norm/d"] = grad_norm(self.d_side())
        opt_d.step()
        self.loss.after_d_step(self.D)
        if "d" in schedulers:
            schedulers["d"].step()
        logs.update({k: v.detach() for k, v in d_terms.items()})

        # Generator update (not counted: global_step stays "batches seen").
        if (step + 1) % self.n_critic == 0:
            self._g_update(opt_g, batch, step, schedulers, logs, log_now, counted=False)
        self._finish_step(logs, log_now)

    def _g_update(
        self,
        opt_g: Any,
        batch: Any,
        step: int,
        schedulers: dict[str, Any],
        logs: dict[str, torch.Tensor],
        log_now: bool,
        counted: bool,
    ) -> None:
        """One G update and the EMA after it; ``counted``: it advances ``global_step`` (no D)."""
        g_step = (step + 1) // self.n_critic - 1
        if self.D is not None:
            self.d_side().requires_grad_(False)
        g_terms = self.g_terms(batch, g_step, logs)
        total = sum(g_terms.values())
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        if self.D is not None:
            self.d_side().requires_grad_(True)
        self._clip(opt_g, self.hparams.grad_clip_g)
        if log_now:
            logs["grad_norm/g"] = grad_norm(self.g_side())
        if counted:
            opt_g.step()
        else:
            self.trainer.strategy.optimizer_step(opt_g.optimizer, do_nothing_closure)
        if "g" in schedulers:
            schedulers["g"].step()
        update_ema(self.G_ema, self.G, ema_beta(self.hparams.ema_beta, step, self.hparams.ema_rampup))
        self.after_ema_update()
        logs.update({k: v.detach() for k, v in g_terms.items()})
        if self.D is None:  # no adversary: loss/g (progress bar, NaN guard) is G's whole objective
            logs[LOSS_G] = total.detach()

    def _finish_step(self, logs: dict[str, torch.Tensor], log_now: bool) -> None:
        self._last_terms.update({k: v for k, v in logs.items() if k.startswith((f"{LOSS_D}_", f"{LOSS_G}_"))})
        if log_now:
            logs = {**self._last_terms, **logs}
        self._log_step(logs)

    def after_ema_update(self) -> None:
        """Called after each EMA update (a family may mark derived state stale)."""

    def log_histogram(self, name: str, values: torch.Tensor) -> None:
        """Values a logger draws as a histogram at this logging step (call on logging steps only)."""
        self._histograms[name] = values.detach()

    def _log_step(self, logs: dict[str, torch.Tensor]) -> None:
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
        histograms, self._histograms = self._histograms, {}
        self.step_losses = {k: logs[k] for k in STEP_LOSS_KEYS if k in logs}
        step = self.global_step
        trainer = self.trainer
        if step % trainer.log_every_n_steps == 0 or (trainer.max_steps > 0 and step >= trainer.max_steps):
            self.log_dict(self.step_losses, prog_bar=False, logger=False)
        if not self.log_due(step):
            return
        metrics = {k: float(v) for k, v in logs.items()}
        for name, opt in zip(("g", "d"), trainer.optimizers, strict=False):
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

    def _gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (``[obj]`` outside data-parallel runs)."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1 or not torch.distributed.is_initialized():
            return [obj]
        out: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
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
