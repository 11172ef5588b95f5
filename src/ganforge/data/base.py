"""Common base of ganforge datamodules: uint8 images, resumable order, early input checks.

Datasets yield ``(image, label)`` with ``image`` a ``uint8`` tensor of shape ``[C, H, W]`` and ``label``
an ``int64`` class index (``-1`` when unlabelled). Conversion to float in ``[-1, 1]`` happens on the
training device (cheaper transfers, one place for it); see ``ganforge.images.to_signed_unit``.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from ganforge.data.sampler import ResumableSampler, ScheduledBatchSampler
from ganforge.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Lightning warns that a mid-epoch resume replays the data unreliably unless the *dataloader* has a
# state_dict; ganforge's sampler resumes the exact order from the datamodule's state instead (tested).
warnings.filterwarnings("ignore", message="You.re resuming from a checkpoint that ended before the epoch")


class InMemoryImages(Dataset):
    """Images already decoded into one ``uint8`` tensor ``[N, C, H, W]``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        assert images.dtype == torch.uint8 and images.ndim == 4, images.shape
        self.images = images
        self.labels = labels if labels is not None else torch.full((len(images),), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def resize_uint8(images: torch.Tensor, resolution: int | tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a ``uint8`` batch ``[N, C, H, W]`` to a square ``resolution`` or
    to ``(height, width)``."""
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if tuple(images.shape[-2:]) == size:
        return images
    out = []
    for chunk in images.split(4096):
        x = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey <-> RGB conversion of a ``uint8`` batch ``[N, C, H, W]``."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    raise ConfigError(f"cannot convert {c}-channel images to {channels} channels; use channels=1 or 3")


def check_choices(*options: tuple[str, Any, Sequence[Any]]) -> None:
    """``(key, value, allowed)`` triples: a ``ConfigError`` naming ``data.<key>`` for a value not allowed."""
    for key, value, allowed in options:
        if value not in allowed:
            raise ConfigError(f"data.{key}={value!r} is not one of {', '.join(map(str, allowed))}")


def jitter_load_size(resolution: int, load_size: int | None) -> int:
    """The size images are resized to before a random ``resolution`` crop: ``load_size``, or the pix2pix /
    CycleGAN ratio ``resolution * 286 / 256`` when ``None``; never smaller than the crop."""
    size = round(resolution * 286 / 256) if load_size is None else load_size
    if size < resolution:
        raise ConfigError(
            f"data.load_size={size} < data.resolution={resolution}: the random crop is larger than the "
            "image; use load_size >= resolution (null: resolution * 286 / 256)"
        )
    return size


def find_or_download(
    find: Callable[[], T | None], download: Callable[[], Any] | None
) -> tuple[T | None, str]:
    """``find()``; if nothing and ``download`` is given, download and ``find()`` again.

    Returns what was found (or ``None``) and a line for the error message saying what was tried.
    """
    found = find()
    if found is not None:
        return found, ""
    if download is None:
        return None, "Not downloaded: data.download=false.\n"
    try:
        download()
    except Exception as e:  # no network, mirror down, disk full: all reported to the user
        return find(), f"Download failed: {type(e).__name__}: {str(e).strip()}\n"
    return find(), "Downloaded, but the expected files are still missing.\n"


def download_and_extract(url: str, into: Path) -> None:
    """Fetch a ``.tar.gz``/``.tgz``/``.zip`` and unpack it into ``into``. Unpacked beside first and moved
    in whole, so a broken download leaves no half dataset."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix=".download-") as tmp:
        archive, unpacked = Path(tmp) / "archive", Path(tmp) / "unpacked"
        log.info("downloading %s into %s", url, into)
        urllib.request.urlretrieve(url, archive)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(unpacked)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
        for entry in unpacked.iterdir():
            if not (into / entry.name).exists():
                shutil.move(entry, into / entry.name)


def torchvision_download(dataset: str, root: Path, **kwargs: Any) -> Callable[[], Any]:
    """A downloader for ``torchvision.datasets.<dataset>`` into ``root`` (only the download is used)."""

    def download() -> Any:
        from torchvision import datasets

        log.info("%s not found; downloading into %s", dataset, root)
        return getattr(datasets, dataset)(str(root), download=True, **kwargs)

    return download


class GANDataModule(L.LightningDataModule):
    """Base datamodule: subclasses implement ``load_dataset`` (and optionally ``prepare_data``).

    Args:
        resolution: square output size in pixels; images are resized (and cropped by subclasses).
        channels: 1 (grey) or 3 (RGB); sources are converted.
        batch_size: per-process batch size.
        num_workers: dataloader worker processes.
        seed: base of the per-epoch shuffle order (independent of the global RNG).
        max_samples: keep only the first N samples (debug runs, tests).
        pin_memory: page-locked batches: ``"auto"`` pins when training on CUDA. Lightning copies
            batches with ``non_blocking=True``; from pageable memory that copy can wait for the GPU
            queue to drain, stalling the next step's launches.
    """

    name = "dataset"
    #: what the items are, checked against what the model's task family trains on
    kind = "images"
    #: the dataset is indexed by ``(epoch, index)`` (items drawn afresh each epoch, resumably)
    items_know_epoch = False

    def __init__(
        self,
        resolution: int,
        channels: int,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        max_samples: int | None = None,
        pin_memory: bool | str = "auto",
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ConfigError(f"data.channels={channels} is not supported; use 1 (grey) or 3 (RGB)")
        if resolution < 4:
            raise ConfigError(f"data.resolution={resolution} is too small; use at least 4")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be at least 1")
        if max_samples is not None and not (isinstance(max_samples, int) and max_samples >= 1):
            raise ConfigError(
                f"data.max_samples={max_samples} must be a positive whole number (use that many samples) "
                "or null (use all of them)"
            )
        self.resolution = resolution
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.max_samples = max_samples
        if pin_memory not in (True, False, "auto"):
            raise ConfigError(f"data.pin_memory={pin_memory!r} is not supported; use auto, true or false")
        self.pin_memory = pin_memory
        self.shuffle = shuffle
        self.dataset: Dataset | None = None
        self.num_classes = 0
        self.class_names: list[str] = []
        self.consumed_batches = 0  # by this rank, over the whole run; decides the data order

    # -- to implement ---------------------------------------------------------------------------
    def load_dataset(self) -> Dataset:
        """Return the training dataset; set ``num_classes``/``class_names`` when labelled.

        Raise ``DatasetNotFoundError`` naming the paths looked at and how to get the data.
        """
        raise NotImplementedError

    # -- Lightning hooks ------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        dataset = self.load_dataset()
        if self.max_samples is not None and self.max_samples < len(dataset):
            dataset = Subset(dataset, range(self.max_samples))
        world = self._world()[0]
        if len(dataset) < self.batch_size * world:
            raise ConfigError(
                f"data.batch_size={self.batch_size} (x{world} processes) is larger than the "
                f"{len(dataset)} images of {self.name}; lower data.batch_size or use more data"
            )
        self.dataset = dataset

    def _pin(self) -> bool:
        if self.pin_memory != "auto":
            return bool(self.pin_memory)
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def train_dataloader(self) -> DataLoader:
        assert self.dataset is not None, "call setup() first"
        world, rank = self._world()
        loader_options = {
            "num_workers": self.num_workers,
            "pin_memory": self._pin(),
            "persistent_workers": self.num_workers > 0,
            # Own generator: worker seeding must not consume the global RNG (exact resume).
            "generator": torch.Generator().manual_seed(self.seed),
            "worker_init_fn": ignore_sigterm if self.num_workers > 0 else None,
        }
        order = {  # the data order: a function of the seed, the rank and the batches consumed
            "consumed_batches": lambda: self.consumed_batches,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_replicas": world,
            "rank": rank,
        }
        model = getattr(self.trainer, "lightning_module", None)
        if hasattr(model, "batch_size_at"):  # the model sets the batch size of each step (ProGAN)
            batches = ScheduledBatchSampler(
                len(self.dataset), model.batch_size_at, model.images_before, **order
            )
            return DataLoader(self.dataset, batch_sampler=batches, **loader_options)
        sampler = ResumableSampler(
            len(self.dataset), self.batch_size, with_epoch=self.items_know_epoch, **order
        )
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            **loader_options,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Runs once per batch actually handed to training_step (not for prefetched ones).
        self.consumed_batches += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"consumed_batches": self.consumed_batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consumed_batches = int(state["consumed_batches"])


def ignore_sigterm(worker_id: int) -> None:
    """Data workers survive a SIGTERM sent to the whole job (SLURM preemption, ``kill -- -PGID``).

    The main process then finishes its step and writes ``last.ckpt`` before it shuts the workers down
    itself; killed workers would crash the run instead, with no checkpoint.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class LocalDataModule(GANDataModule):
    """A dataset read from its known on-disk layout under ``root`` (torchvision only downloads it).

    Subclasses set ``splits`` (split name -> the parts it is made of) and implement ``load_dataset``.
    """

    splits: dict[str, tuple[str, ...]] = {}

    def __init__(
        self, root: str = "data", download: bool = True, split: str = "train", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if split not in self.splits:
            raise ConfigError(f"data.split={split!r} is not one of {', '.join(self.splits)}")
        self.root = Path(root).expanduser()
        self.download = download
        self.split = split
