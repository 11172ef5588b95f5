"""Training throughput: ganforge's Lightning loop against a plain hand-written PyTorch loop.

Both loops train the same networks (built from the same composed Hydra config), with the same
optimizers, loss (non-saturating), schedule (one D and one G update per batch, fresh latents for
each) and EMA update, on the same device-resident uint8 batches, in the same process, so the ratio
isolates what the framework costs: Lightning's loop and hooks, ganforge's logging, the NaN guard
and progress bar. They alternate for ``--repeats`` rounds and the median of each is reported.

``--task pix2pix`` does the same for Pix2Pix (U-Net G, PatchGAN D on (input, output) pairs, GAN + L1
x 100, the linear LR decay): ``(input, target)`` pairs instead of latents, one G pass per step shared by
both updates, as the reference implementation does.

``--task sr`` times the ESRGAN-lite recipe (``experiment=sr_photos_esrgan``: RRDBNet-lite G, VGG-style D
on HR patches alone, RaGAN, 1e-2 L1 + perceptual on the offline Inception + 5e-3 adversarial, EMA with
ramp-up) on synthetic ``(LR, HR)`` uint8 patches (``--resolution``: the HR patch, default 96, LR = 1/4);
no dataset is needed, only the Inception weights the perceptual loss reads. ``--task sr_psnr`` times the
D-less SRResNet step of ``experiment=sr_photos_srresnet`` (G alone on L1)::

    python -m ganforge.benchmarks.throughput --task sr --device cpu --threads 1 --mode fp32 --warmup 3 \
        --steps 20 --repeats 3

``--task cyclegan`` times ``experiment=emoji_cyclegan`` (two 6-block ResNet Gs, two PatchGANs, LSGAN, cycle
x 10, identity x 5, history pools of 50, batch 1, 64 px) on synthetic unpaired ``(a, b)`` uint8 batches: one
pass of each G per step shared by both updates, each D's loss halved and shown its history pool's fakes (the
plain loop queries deep copies of the module's pools, so both draw the same random numbers), then both Gs
on LSGAN both ways + cycle + identity::

    python -m ganforge.benchmarks.throughput --task cyclegan --device cpu --threads 1 --mode fp32 \
        --warmup 3 --steps 20 --repeats 3

``--task progan`` times ``experiment=avatars_progan`` (equalised learning rate, pixel norm, minibatch std,
WGAN-GP with drift 0.001, one D update per G update, EMA) at one fixed stage, the data's resolution
(``model.growth.start_resolution``), batch 16 at 64 px, on synthetic uint8 images; the plain loop takes the
real images to the level as the module does (a no-op at the full resolution)::

    python -m ganforge.benchmarks.throughput --task progan --device cpu --threads 1 --mode fp32 \
        --warmup 3 --steps 20 --repeats 3

``--mode fp32`` trains in float32 (TF32 tensor cores on CUDA) in both loops; ``--mode fast`` runs
ganforge with ``speed=fast`` (bf16 autocast, channels_last, fused Adam, torch.compile) and the plain
loop with the same four settings::

    python -m ganforge.benchmarks.throughput --device cuda --mode fp32 fast     # DCGAN-64, batch 512
    python -m ganforge.benchmarks.throughput --device cpu --threads 1 --resolution 32 --batch-size 32 \
        --base-channels 16 --warmup 5 --steps 100 --mode fp32
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DataLoader, IterableDataset

from ganforge.ema import ema_beta, update_ema
from ganforge.errors import ConfigError, GanforgeError
from ganforge.losses.penalties import gradient_penalty
from ganforge.models.progan import at_level
from ganforge.models.spectral import SpectralNormStep
from ganforge.precision import set_tf32
from ganforge.tasks.base import compile_options
from ganforge.utils import instantiate, instantiate_dict, pick_device

MODES = ("fp32", "fast")
TASKS = ("noise", "pix2pix", "sr", "sr_psnr", "cyclegan", "progan")
#: the experiment each super-resolution task composes (its data is replaced by synthetic patches)
SR_EXPERIMENTS = {"sr": "sr_photos_esrgan", "sr_psnr": "sr_photos_srresnet"}
#: per task: default (--resolution, --batch-size); for SR the resolution is the HR patch
TASK_DEFAULTS = {
    "noise": (64, 512),
    "pix2pix": (64, 512),
    "sr": (96, 16),
    "sr_psnr": (96, 16),
    "cyclegan": (64, 1),
    "progan": (64, 16),
}
#: the experiment the CycleGAN task composes (its data is replaced by synthetic unpaired batches)
CYCLEGAN_EXPERIMENT = "emoji_cyclegan"
#: the experiment the ProGAN task composes, held at one stage (its data replaced by synthetic images)
PROGAN_EXPERIMENT = "avatars_progan"
POOL = 8  # distinct batches cycled through (same for both loops)


class DeviceBatches(IterableDataset):
    """An endless stream of ``(uint8 images, labels)`` batches (``paired``: ``(uint8 inputs, uint8
    targets)``, the targets of ``target_shape``, by default ``shape``) that already live on the device.

    Takes data loading out of the comparison: both loops read the very same tensors.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        paired: bool = False,
        target_shape: tuple[int, ...] | None = None,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (POOL, batch_size, *shape), dtype=torch.uint8, generator=g)
        self.images = self.images.to(device)
        if paired:
            second = (POOL, batch_size, *(target_shape or shape))
            self.second = torch.randint(0, 256, second, dtype=torch.uint8, generator=g).to(device)
        else:
            self.second = torch.zeros(1, batch_size, dtype=torch.long, device=device).expand(POOL, -1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        i = 0
        while True:
            yield self.images[i % POOL], self.second[i % POOL]
            i += 1


def loader(batches: DeviceBatches) -> DataLoader:
    return DataLoader(batches, batch_size=None, num_workers=0)


def compose_config(
    overrides: Sequence[str], output_dir: Path, plain: bool = True, task: str = "noise"
) -> DictConfig:
    """The real train config (``model=dcgan``; ``model=pix2pix`` on paired data for ``task=pix2pix``; the
    ``SR_EXPERIMENTS`` recipe for ``sr`` / ``sr_psnr``; ``experiment=emoji_cyclegan`` for ``cyclegan``) plus
    ``overrides``, writing to ``output_dir``."""
    from ganforge.train import compose_config as compose_train

    if task not in TASKS:
        raise ConfigError(f"task {task!r}: choose from {', '.join(TASKS)}")
    base = [
        "logger=csv",
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=true",
        "callbacks.progress_bar.mode=log",
        "~callbacks.model_summary",
        "~callbacks.model_checkpoint",
        "~callbacks.sample_grid",
        f"paths.output_dir={output_dir}",
    ]
    if task in ("noise", "pix2pix"):
        base.append("model.ema_rampup=null")  # a constant EMA beta (the plain loop does either)
    if task == "pix2pix":
        base += ["model=pix2pix", "data=paired", "data.path=unused", "model.num_fixed_samples=0"]
    if task == "progan":  # one fixed stage: the data's resolution, one batch size
        base += [f"experiment={PROGAN_EXPERIMENT}", "model.num_fixed_samples=0"]
        base += [
            "model.growth.start_resolution=${data.resolution}",
            "model.growth.batch_sizes=${data.batch_size}",
        ]
    recipe = SR_EXPERIMENTS.get(task) or (CYCLEGAN_EXPERIMENT if task == "cyclegan" else None)
    if recipe is not None:  # the recipe as it trains, less its data and its metric callbacks
        base += [f"experiment={recipe}", "data.path=unused", "model.num_fixed_samples=0"]
        base += ["~callbacks.metrics", "~callbacks.best_fid_checkpoint"]
    cfg = compose_train([*base, *overrides])
    with open_dict(cfg):
        cfg.data_info.num_classes = 0
    if plain:
        _check_plain(cfg, task)
    return cfg


def _check_plain(cfg: DictConfig, task: str) -> None:
    """Refuse configs whose math the plain loop does not write out."""
    model = cfg.model
    extras = (
        model.get("regularizers")
        or model.get("augment")
        or model.get("grad_clip_g")
        or model.get("grad_clip_d")
    )
    if task in ("noise", "pix2pix"):
        if cfg.loss._target_ != "ganforge.losses.NonSaturatingLoss" or model.get("pack", 1) != 1:
            raise ConfigError("the plain loop implements the non-saturating loss without packing only")
        if task == "pix2pix" and (set(model.content) != {"l1"} or not model.conditional_d):
            raise ConfigError("the plain Pix2Pix loop implements a conditional D with GAN + L1 only")
        return
    #: the reference steps the plain loop writes out with one D update per G update: (loss, its name)
    reference = {
        "progan": ("WassersteinGPLoss", "WGAN-GP (loss=wgan_gp_drift)"),
        "cyclegan": ("LeastSquaresLoss", "LSGAN (loss=lsgan)"),
    }
    if task in reference:
        loss, name = reference[task]
        one_d_update = (model.get("n_critic") or cfg.loss.get("n_critic", 1)) == 1
        if cfg.loss._target_ != f"ganforge.losses.{loss}" or not one_d_update or extras:
            family = {"progan": "ProGAN", "cyclegan": "CycleGAN"}[task]
            raise ConfigError(
                f"the plain {family} loop implements its reference step only: {name}, one D update per G "
                "update, no regularizers, augment or clipping"
            )
        return
    content = {k for k, v in model.content.items() if v is not None}
    pixel = model.content.get("pixel") or {}
    if task == "sr" and (
        cfg.loss._target_ != "ganforge.losses.RelativisticAverageLoss"
        or model.discriminator is None
        or model.conditional_d
        or content != {"pixel", "perceptual"}
        or pixel.get("kind") != "l1"
        or (model.get("n_critic") or cfg.loss.get("n_critic", 1)) != 1
        or extras
    ):
        raise ConfigError(
            "the plain SR loop implements ESRGAN's step only: RaGAN (loss=ragan) against a D on HR images, "
            "L1 pixel + perceptual content, one D update per G update, no regularizers, augment or clipping"
        )
    if task == "sr_psnr" and (
        model.discriminator is not None or content != {"pixel"} or pixel.get("kind") != "l1"
    ):
        raise ConfigError("the plain SR PSNR loop implements G alone on an L1 pixel loss only")
    if task == "sr_psnr" and extras:
        raise ConfigError("the plain SR PSNR loop implements no regularizers, augment or clipping")


def build_module(cfg: DictConfig) -> Any:
    return instantiate(cfg.model, loss=instantiate(cfg.loss))


# -- the ganforge loop ------------------------------------------------------------------------------
class _Stopwatch(L.Callback):
    """Times steps ``warmup + 1 .. warmup + steps`` (synchronising the device at both ends)."""

    def __init__(
        self, warmup: int, steps: int, seed: int | None = None, on_step: Callable[[], Any] | None = None
    ) -> None:
        self.warmup, self.steps, self.seed, self.on_step = warmup, steps, seed, on_step
        self.seconds = float("nan")
        self._t0 = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0 and self.seed is not None:
            torch.manual_seed(self.seed)  # same latents as the plain loop (for the equivalence test)
        if trainer.global_step == self.warmup:
            _sync(pl_module.device)
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        if self.on_step is not None:
            self.on_step()
        if trainer.global_step == self.warmup + self.steps:
            _sync(pl_module.device)
            self.seconds = time.perf_counter() - self._t0


def run_ganforge(
    cfg: DictConfig,
    batches: DeviceBatches,
    warmup: int,
    steps: int,
    module: Any | None = None,
    seed: int | None = None,
    on_step: Callable[[], Any] | None = None,
) -> tuple[float, Any]:
    """Seconds for ``steps`` timed steps of ``GANModule`` under Lightning with the config's callbacks.

    One more step follows the timed ones: the end-of-run work (final log line, checks) is not timed.
    """
    module = module if module is not None else build_module(cfg)
    watch = _Stopwatch(warmup, steps, seed, on_step)
    callbacks = [*instantiate_dict(cfg.get("callbacks"), "callback"), watch]
    loggers = instantiate_dict(cfg.get("logger"), "logger")
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, max_steps=warmup + steps + 1
    )
    trainer.fit(module, train_dataloaders=loader(batches))
    return watch.seconds, module


# -- the plain loop ---------------------------------------------------------------------------------
def run_plain(
    cfg: DictConfig,
    batches: DeviceBatches,
    warmup: int,
    steps: int,
    device: torch.device,
    fast: bool,
    init: Any | None = None,
    seed: int | None = None,
    on_step: Callable[[], Any] | None = None,
) -> tuple[float, dict[str, torch.nn.Module]]:
    """The same training written directly in PyTorch: no framework, no callbacks, no logging."""
    task = plain_task(cfg)
    source = init if init is not None else build_module(cfg)
    G = copy.deepcopy(source.G).to(device)
    D = copy.deepcopy(source.D).to(device) if source.D is not None else None
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = instantiate(cfg.model.optimizer_g)(params=G.parameters())
    opt_d = instantiate(cfg.model.optimizer_d)(params=D.parameters()) if D is not None else None
    beta, rampup = float(cfg.model.ema_beta), cfg.model.get("ema_rampup")
    # layout and compilation as the config sets them for ganforge (speed=fast turns both on)
    layout = torch.channels_last if cfg.model.get("channels_last") else torch.contiguous_format
    for net in (G, D, G_ema):
        if net is not None:
            net.to(memory_format=layout)
    compiled = compile_options(cfg.model.get("compile"))
    if compiled is not None and D is not None and SpectralNormStep(D):
        raise ConfigError(
            "the plain loop cannot compile a spectral-norm D: compiled, torch's power iteration breaks "
            "the shared D(real)/D(fake) backward (ganforge.models.spectral); use model.compile=false"
        )
    g_fwd, d_fwd = (_compiled(m, compiled) for m in (G, D))
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if fast else contextlib.nullcontext()
    )  # reused: autocast objects are re-entrant
    step_fn = _STEPS[task]
    schedulers = [
        instantiate(cfg.model[key])(optimizer=opt) if cfg.model.get(key) and opt is not None else None
        for key, opt in (("scheduler_g", opt_g), ("scheduler_d", opt_d))
    ]
    terms = _plain_terms(cfg, task, source, device)
    t0 = seconds = float("nan")
    for step, (first, second) in enumerate(loader(batches)):
        if step == 0 and seed is not None:
            torch.manual_seed(seed)
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        if step == warmup + steps:
            _sync(device)
            seconds = time.perf_counter() - t0
        if step > warmup + steps:  # one untimed step after the window, as in the Lightning run
            break
        if compiled is not None:
            torch.compiler.cudagraph_mark_step_begin()  # as AdversarialModule.training_step
        real = first.float().div_(127.5).sub_(1.0).contiguous(memory_format=layout)
        target = second.float().div_(127.5).sub_(1.0).contiguous(memory_format=layout) if terms else None
        step_fn(G, D, g_fwd, d_fwd, opt_g, opt_d, real, target, terms, autocast, device)
        for scheduler in schedulers:
            if scheduler is not None:
                scheduler.step()
        # plain torch ops (lerp of weights, copy of buffers), no framework; the ramp-up is arithmetic
        update_ema(G_ema, G, ema_beta(beta, step, rampup))
        if on_step is not None:
            on_step()
    pools = {k: v for k, v in terms.items() if k.startswith("pool_")}  # CycleGAN's history pools
    return seconds, {"G": G, "D": D, "G_ema": G_ema, **pools}


def _compiled(net: torch.nn.Module | None, options: dict[str, Any] | None) -> Any:
    """``torch.compile`` of a network, of each network of a side that holds several (``nn.ModuleDict``:
    a dict of compiled views), or the network itself when not compiling."""
    if net is None or options is None:
        return net
    if isinstance(net, torch.nn.ModuleDict):
        return {name: torch.compile(m, **options) for name, m in net.items()}
    return torch.compile(net, **options)


def plain_task(cfg: DictConfig) -> str:
    """Which step the plain loop writes out for this config."""
    model = cfg.model
    if str(model.get("_target_", "")).endswith("CycleGANModule"):
        return "cyclegan"
    if str(model.get("_target_", "")).endswith("ProGANModule"):
        return "progan"
    if "content" not in model:
        return "noise"
    if model.get("conditional_d", True):
        return "pix2pix"
    return "sr" if model.discriminator is not None else "sr_psnr"


def _plain_terms(cfg: DictConfig, task: str, source: Any, device: torch.device) -> dict[str, Any]:
    """The weights of G's terms (and the perceptual network) the task's plain step needs."""
    content = cfg.model.get("content") or {}
    if task == "pix2pix":
        return {"l1": float(content.l1.weight)}
    if task == "sr_psnr":
        return {"pixel": float(content.pixel.weight)}
    if task == "sr":
        return {
            "adversarial": float(cfg.model.adversarial_weight),
            "pixel": float(content.pixel.weight),
            # a copy of the module's frozen feature network and its distance: the same math, no framework
            "perceptual": copy.deepcopy(source.content["perceptual"]).to(device),
        }
    if task == "progan":
        loss = instantiate(cfg.loss)
        return {"gp": loss.gp_weight, "drift": loss.drift, "levels": source.schedule.max_level}
    if task == "cyclegan":
        cycle, identity = float(cfg.model.cycle_weight), float(cfg.model.identity_weight)
        return {
            "cycle": cycle,
            "identity": identity * cycle if cycle > 0 else 0.0,  # relative to the cycle weight
            # copies of the module's (empty) history pools: plain tensor code, the same draws
            "pool_a": copy.deepcopy(source.pool_a).to(device),
            "pool_b": copy.deepcopy(source.pool_b).to(device),
            "layout": torch.channels_last if cfg.model.get("channels_last") else torch.contiguous_format,
        }
    return {}


def _d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating GAN's D loss, written out."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    return real + F.softplus(fake_logits).mean()


def _updates(D, opt_d, opt_g, d_loss, g_loss_fn, autocast) -> None:
    """One D update on ``d_loss``, then one G update on ``g_loss_fn()`` with D frozen."""
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    D.requires_grad_(False)
    with autocast:
        g_loss = g_loss_fn()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    D.requires_grad_(True)
    opt_g.step()


def _ragan(more_real: torch.Tensor, less_real: torch.Tensor) -> torch.Tensor:
    """The relativistic average GAN's loss, written out: D's with (real, fake) logits, G's with (fake, real).

    ``0.5 * [BCE(a - mean b, 1) + BCE(b - mean a, 0)]``, BCE on logits: ``BCE(l, 1) = softplus(-l)``.
    """
    return 0.5 * (
        F.softplus(-(more_real - less_real.mean())).mean() + F.softplus(less_real - more_real.mean()).mean()
    )


def _noise_step(G, D, g_fwd, d_fwd, opt_g, opt_d, real, target, terms, autocast, device) -> None:
    """DCGAN: one D and one G update of the non-saturating GAN, fresh latents for each."""
    n = real.shape[0]
    with autocast:
        with torch.no_grad():
            fake = g_fwd(torch.randn(n, G.z_dim, device=device), None)
        d_loss = _d_loss(d_fwd(real, None), d_fwd(fake, None))

    def g_loss() -> torch.Tensor:
        return F.softplus(-d_fwd(g_fwd(torch.randn(n, G.z_dim, device=device), None), None)).mean()

    _updates(D, opt_d, opt_g, d_loss, g_loss, autocast)


def _pix2pix_step(G, D, g_fwd, d_fwd, opt_g, opt_d, real, target, terms, autocast, device) -> None:
    """Pix2Pix: one G pass, D on (input, target) and (input, output) pairs, then G on GAN + L1."""
    with autocast:
        fake = g_fwd(real)
        d_loss = _d_loss(d_fwd(torch.cat([real, target], 1)), d_fwd(torch.cat([real, fake.detach()], 1)))

    def g_loss() -> torch.Tensor:
        adversarial = F.softplus(-d_fwd(torch.cat([real, fake], 1))).mean()
        return adversarial + terms["l1"] * (fake - target).abs().mean()

    _updates(D, opt_d, opt_g, d_loss, g_loss, autocast)


def _sr_step(G, D, g_fwd, d_fwd, opt_g, opt_d, lr, hr, terms, autocast, device) -> None:
    """ESRGAN: one G pass; D on HR images alone (RaGAN), then G on 5e-3 RaGAN + 1e-2 L1 + perceptual."""
    with autocast:
        fake = g_fwd(lr)
        d_loss = _ragan(d_fwd(hr), d_fwd(fake.detach()))

    def g_loss() -> torch.Tensor:
        fake_logits = d_fwd(fake)  # before the real logits, as ganforge (D's batch-norm statistics)
        adversarial = terms["adversarial"] * _ragan(fake_logits, d_fwd(hr))
        return adversarial + terms["pixel"] * (fake - hr).abs().mean() + terms["perceptual"](fake, hr)

    _updates(D, opt_d, opt_g, d_loss, g_loss, autocast)


def _sr_psnr_step(G, D, g_fwd, d_fwd, opt_g, opt_d, lr, hr, terms, autocast, device) -> None:
    """SRResNet's PSNR objective: G alone on L1 to the HR image."""
    with autocast:
        loss = terms["pixel"] * (g_fwd(lr) - hr).abs().mean()
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()


def _lsgan_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN's D loss (targets 1 for real, 0 for fake), written out."""
    return 0.5 * ((real_logits - 1.0).square().mean() + fake_logits.square().mean())


def _lsgan_g(fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake_logits - 1.0).square().mean()


def _cyclegan_step(G, D, g_fwd, d_fwd, opt_g, opt_d, a, b, terms, autocast, device) -> None:
    """CycleGAN: one pass of each G; each D's LSGAN loss, halved, on its real domain against the fakes its
    history pool returns; then both Gs on LSGAN both ways + cycle x 10 + identity x 0.5 x 10."""
    with autocast:
        fake_b, fake_a = g_fwd["AB"](a), g_fwd["BA"](b)
        halves = []
        for name, real, fake in (("A", a, fake_a), ("B", b, fake_b)):
            shown = terms[f"pool_{name.lower()}"].query(fake.detach())
            shown = shown.contiguous(memory_format=terms["layout"])
            halves.append(0.5 * _lsgan_d(d_fwd[name](real), d_fwd[name](shown)))
        d_loss = halves[0] + halves[1]

    def g_loss() -> torch.Tensor:
        loss = _lsgan_g(d_fwd["B"](fake_b)) + _lsgan_g(d_fwd["A"](fake_a))  # G_AB fools D_B, G_BA D_A
        if terms["cycle"] > 0:
            loss = loss + terms["cycle"] * (
                F.l1_loss(g_fwd["BA"](fake_b), a) + F.l1_loss(g_fwd["AB"](fake_a), b)
            )
        if terms["identity"] > 0:
            loss = loss + terms["identity"] * (F.l1_loss(g_fwd["AB"](b), b) + F.l1_loss(g_fwd["BA"](a), a))
        return loss

    _updates(D, opt_d, opt_g, d_loss, g_loss, autocast)


def _progan_step(G, D, g_fwd, d_fwd, opt_g, opt_d, real, target, terms, autocast, device) -> None:
    """ProGAN at a fixed stage: the real images taken to the level, one D update of WGAN-GP with drift
    (``E D(fake) - E D(real) + drift E D(real)^2 + gp GP``), one G update of ``-E D(G(z))``."""
    n = real.shape[0]
    real = at_level(real, D.level, D.alpha, terms["levels"])
    with autocast:
        with torch.no_grad():
            fake = g_fwd(torch.randn(n, G.z_dim, device=device), None)
        real_logits, fake_logits = d_fwd(real, None), d_fwd(fake, None)
        d_loss = fake_logits.mean() - real_logits.mean() + terms["drift"] * real_logits.square().mean()
        d_loss = d_loss + terms["gp"] * gradient_penalty(D, real, fake)

    def g_loss() -> torch.Tensor:
        return -d_fwd(g_fwd(torch.randn(n, G.z_dim, device=device), None), None).mean()

    _updates(D, opt_d, opt_g, d_loss, g_loss, autocast)


_STEPS = {
    "noise": _noise_step,
    "pix2pix": _pix2pix_step,
    "sr": _sr_step,
    "sr_psnr": _sr_psnr_step,
    "cyclegan": _cyclegan_step,
    "progan": _progan_step,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the benchmark ----------------------------------------------------------------------------------
def mode_overrides(mode: str, device: torch.device) -> list[str]:
    trainer = ["trainer=gpu"] if device.type == "cuda" else ["trainer=cpu"]
    if mode == "fast":
        return [*trainer, "speed=fast"]
    if mode == "fp32":
        return [*trainer, "tf32=true"]
    raise ConfigError(f"--mode {mode!r}: choose from {', '.join(MODES)}")


def benchmark(
    mode: str,
    device: torch.device,
    overrides: Sequence[str],
    batch_size: int,
    warmup: int,
    steps: int,
    repeats: int,
    log: Any = print,
    plain_loop: bool = True,
    profile_dir: Path | None = None,
    profile_steps: int = 20,
    task: str = "noise",
) -> dict[str, Any]:
    """Alternate plain and ganforge runs ``repeats`` times; images/s of each and their ratio.

    ``plain_loop=False`` times ganforge alone (any loss, packing, n_critic: configs the plain loop
    does not implement); images/s then count the batches D sees.
    """
    with tempfile.TemporaryDirectory(prefix="ganforge-throughput-") as tmp:
        cfg = compose_config(
            [*mode_overrides(mode, device), *overrides], Path(tmp), plain=plain_loop, task=task
        )
        set_tf32(bool(cfg.tf32))
        # The Trainer would switch cuDNN autotuning on only when the first ganforge run starts; set it
        # for both loops before the first (plain) run.
        torch.backends.cudnn.benchmark = bool(cfg.trainer.get("benchmark") or False)
        batches = task_batches(cfg, task, batch_size, device)
        images = batch_size * steps
        plain, ours = [], []
        for r in range(repeats):
            if plain_loop:
                seconds, _ = run_plain(cfg, batches, warmup, steps, device, fast=mode == "fast")
                plain.append(images / seconds)
            seconds, _ = run_ganforge(cfg, batches, warmup, steps)
            ours.append(images / seconds)
            was = f"plain {_rate(plain[-1])}, " if plain_loop else ""
            log(f"{mode} round {r + 1}/{repeats}: {was}ganforge {_rate(ours[-1])} img/s")
        resolved = OmegaConf.to_container(cfg.model, resolve=True)
        profiles = {}
        if profile_dir is not None:
            loops = ("plain", "ganforge") if plain_loop else ("ganforge",)
            for loop in loops:
                summary = profile(cfg, batches, device, mode, loop, warmup, profile_steps, profile_dir)
                profiles[loop] = summary
                log(
                    f"{mode} profile, {loop}, per step: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in summary.items())
                )
    p, g = (statistics.median(plain) if plain else None), statistics.median(ours)
    return {
        "mode": mode,
        "plain_img_per_s": p,
        "ganforge_img_per_s": g,
        "ratio": g / p if p else None,
        "plain_runs": plain,
        "ganforge_runs": ours,
        "task": task,
        "model": resolved["generator"]["_target_"],
        "precision": str(cfg.trainer.precision),
        **({"profile_per_step": profiles} if profiles else {}),
    }


def task_batches(cfg: DictConfig, task: str, batch_size: int, device: torch.device) -> DeviceBatches:
    """Synthetic device-resident batches of the task's shapes (SR: LR inputs, HR targets)."""
    channels = int(cfg.data.channels)
    if task in SR_EXPERIMENTS:
        patch, scale = int(cfg.data.patch_size), int(cfg.data.scale)
        if patch % scale:
            raise ConfigError(f"--resolution {patch}: the HR patch must be a multiple of data.scale={scale}")
        lr = (channels, patch // scale, patch // scale)
        return DeviceBatches(lr, batch_size, device, paired=True, target_shape=(channels, patch, patch))
    shape = (channels, int(cfg.data.resolution), int(cfg.data.resolution))
    return DeviceBatches(shape, batch_size, device, paired=task in ("pix2pix", "cyclegan"))


def _rate(images_per_s: float) -> str:
    """Images/s as printed: whole numbers, three significant digits below 100 (SR on a CPU: ~4)."""
    return f"{images_per_s:,.0f}" if images_per_s >= 100 else f"{images_per_s:.3g}"


# What a step costs, by kind of call: launches, graph replays, and anything that waits for the GPU.
_PROFILE_EVENTS = {
    "kernel_launches": ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx"),
    "graph_launches": ("cudaGraphLaunch",),
    "syncs": ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize"),
    "memcpy": ("cudaMemcpy", "cudaMemcpyAsync"),
}


def profile(
    cfg: DictConfig,
    batches: DeviceBatches,
    device: torch.device,
    mode: str,
    loop: str,
    warmup: int,
    steps: int,
    out_dir: Path,
) -> dict[str, float]:
    """``torch.profiler`` over ``steps`` steps of one loop: per-step summary; tables and trace in ``out_dir``.

    Host milliseconds per step against device milliseconds per step tells a launch- or Python-bound
    loop from a GPU-bound one; ``syncs`` and ``memcpy`` per step find what makes the host wait.
    """
    from torch.profiler import ProfilerActivity, schedule

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    first, last = warmup + 2, warmup + 2 + steps  # the recorded steps (after compilation, autotuning)
    times: dict[int, float] = {}
    with torch.profiler.profile(
        activities=activities, schedule=schedule(wait=warmup, warmup=2, active=steps, repeat=1)
    ) as prof:

        def step() -> None:
            prof.step()
            if prof.step_num in (first, last):
                _sync(device)
                times[prof.step_num] = time.perf_counter()

        if loop == "plain":
            run_plain(cfg, batches, last + 1, 1, device, fast=mode == "fast", on_step=step)
        else:
            run_ganforge(cfg, batches, last + 1, 1, on_step=step)
    events = prof.key_averages()
    summary = {"wall_ms": (times[last] - times[first]) * 1e3 / steps}  # profiler overhead included
    device_us = sum(getattr(e, "self_device_time_total", 0.0) for e in events if e.device_type.name == "CUDA")
    summary["device_ms"] = device_us / 1e3 / steps
    for key, names in _PROFILE_EVENTS.items():
        summary[key] = sum(e.count for e in events if e.key in names) / steps
    out_dir.mkdir(parents=True, exist_ok=True)
    text = [events.table(sort_by="self_cpu_time_total", row_limit=40)]
    if cuda:
        text.append(events.table(sort_by="self_cuda_time_total", row_limit=25))
    (out_dir / f"profile_{mode}_{loop}.txt").write_text("\n\n".join(text))
    prof.export_chrome_trace(str(out_dir / f"trace_{mode}_{loop}.json.gz"))  # chrome://tracing, Perfetto
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganforge.benchmarks.throughput",
        description="Training images/s of ganforge vs a plain PyTorch loop of the same model.",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--mode", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--task",
        default="noise",
        choices=TASKS,
        help="DCGAN (noise), Pix2Pix, ESRGAN-lite (sr), SRResNet (sr_psnr), CycleGAN (emoji_cyclegan)",
    )
    parser.add_argument("--resolution", type=int, default=None, help="default 64; sr, sr_psnr: HR patch, 96")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default 512; sr, sr_psnr: 16; cyclegan: 1"
    )
    parser.add_argument("--base-channels", type=int, default=None, help="DCGAN width (default: config's)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (compilation, autotune)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--ganforge-only", action="store_true", help="no plain loop: time any config (loss, n_critic, SN)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument(
        "--profile", type=Path, default=None, help="also torch.profiler each loop; tables + traces here"
    )
    parser.add_argument("--profile-steps", type=int, default=20, help="steps recorded by --profile")
    parser.add_argument(
        "overrides", nargs="*", help="more Hydra overrides, e.g. model.discriminator.batch_norm=false"
    )
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("ganforge").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    sr = args.task in SR_EXPERIMENTS
    resolution, batch_size = TASK_DEFAULTS[args.task]
    args.resolution = resolution if args.resolution is None else args.resolution
    args.batch_size = batch_size if args.batch_size is None else args.batch_size
    try:
        device = pick_device(args.device)
        if min(args.steps, args.repeats, args.batch_size) < 1 or args.warmup < 0:
            raise ConfigError("--steps, --repeats and --batch-size must be >= 1, --warmup >= 0")
        if sr and args.base_channels:
            raise ConfigError(
                "--base-channels sets DCGAN / Pix2Pix widths; for SR give Hydra overrides, e.g. "
                "model.generator.num_feat=16 model.discriminator.base_channels=16"
            )
        overrides = [
            f"data.{'patch_size' if sr else 'resolution'}={args.resolution}",
            f"data.channels={args.channels}",
            *([f"data.input_channels={args.channels}"] if args.task in ("pix2pix", "cyclegan") else []),
            f"data.batch_size={args.batch_size}",
            *(
                [f"model.generator.base_channels={args.base_channels}",
                 f"model.discriminator.base_channels={args.base_channels}"]
                if args.base_channels else []
            ),
            *args.overrides,
        ]  # fmt: skip
        results = [
            benchmark(
                m,
                device,
                overrides,
                args.batch_size,
                args.warmup,
                args.steps,
                args.repeats,
                plain_loop=not args.ganforge_only,
                profile_dir=args.profile,
                profile_steps=args.profile_steps,
                task=args.task,
            )
            for m in args.mode
        ]
    except GanforgeError as e:
        print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    what = f"{args.task}, HR {args.resolution}px" if sr else f"{args.resolution}px"
    print(f"\n{name}, {what}, batch {args.batch_size}, {args.steps} timed steps, median of "
          f"{args.repeats}:")  # fmt: skip
    print("| mode | plain img/s | ganforge img/s | ganforge / plain |\n|---|---|---|---|")
    for r in results:
        ours = _rate(r["ganforge_img_per_s"])
        if r["ratio"] is None:
            print(f"| {r['mode']} | - | {ours} | - |")
        else:
            print(f"| {r['mode']} | {_rate(r['plain_img_per_s'])} | {ours} | {r['ratio']:.3f} |")
    report = {
        "command": "python -m ganforge.benchmarks.throughput "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": name,
        "torch": torch.__version__,
        "results": results,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
