"""A shuffling sampler whose position survives a checkpoint.

Lightning restarts a dataloader from its first batch when resuming mid-epoch, and its epoch counter
is not reliable across a resume from a checkpoint written at the end of ``fit``. This sampler
therefore derives both the epoch and the place inside it from one number, the batches consumed so
far (saved by the datamodule): N straight steps and N/2 + resume N/2 see the same data in the same
order.
"""

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


def epoch_order(
    length: int, seed: int, epoch: int, shuffle: bool, num_replicas: int, rank: int
) -> torch.Tensor:
    """This rank's strided share of epoch ``epoch``'s order (a permutation seeded by ``(seed, epoch)``)."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(length, generator=g)
    else:
        order = torch.arange(length)
    return order[rank::num_replicas][: length // num_replicas]


class ResumableSampler(Sampler):
    """Per-epoch permutation seeded by ``(seed, epoch)``, sharded over ranks, resumable mid-epoch.

    Args:
        length: dataset size.
        batch_size: per-rank batch size; every epoch is a whole number of full batches.
        consumed_batches: returns how many batches this rank has consumed so far; read each time
            an iteration starts (at epoch starts and after a resume).
        seed: base seed; the permutation of epoch ``e`` depends only on ``(seed, e)``.
        shuffle: shuffle each epoch (else sequential order).
        num_replicas, rank: data-parallel sharding; each rank takes a disjoint strided slice.
        with_epoch: yield ``(epoch, index)`` instead of ``index``, for datasets whose items are drawn
            afresh each epoch from ``(seed, epoch, index)`` (super-resolution's random patches).
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        consumed_batches: Callable[[], int] = lambda: 0,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        with_epoch: bool = False,
    ) -> None:
        self.length = length
        self.batch_size = batch_size
        self.consumed_batches = consumed_batches
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.with_epoch = with_epoch
        if self.batches_per_epoch < 1:
            raise ValueError(f"{length} samples over {num_replicas} ranks give no full batch of {batch_size}")

    @property
    def batches_per_epoch(self) -> int:
        return self.length // self.num_replicas // self.batch_size

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's indices for a whole epoch."""
        order = epoch_order(self.length, self.seed, epoch, self.shuffle, self.num_replicas, self.rank)
        return order[: self.batches_per_epoch * self.batch_size]

    def __iter__(self) -> Iterator[int | tuple[int, int]]:
        epoch, skip = divmod(self.consumed_batches(), self.batches_per_epoch)
        indices = self.epoch_indices(epoch)[skip * self.batch_size :].tolist()
        return iter([(epoch, i) for i in indices] if self.with_epoch else indices)

    def __len__(self) -> int:
        # The full epoch, also when resuming: Lightning restores its in-epoch batch counter, so the
        # epoch ends exactly when the shortened iterator runs out.
        return self.batches_per_epoch * self.batch_size


class ScheduledBatchSampler(Sampler):
    """Batches whose size depends on the step (ProGAN's batch size per resolution), resumable anywhere.

    The batches are cut from one endless stream of indices: this rank's share of epoch 0's order, then
    epoch 1's, ... Batch ``k`` has ``batch_size_at(k)`` indices and starts at stream position
    ``images_before(k)``, so an iteration started after any number of consumed batches (a resume mid-fade,
    at a stage boundary, across a batch-size change) yields what the uninterrupted run would have. The
    sampler never ends: the trainer stops at ``max_steps``.
    """

    def __init__(
        self,
        length: int,
        batch_size_at: Callable[[int], int],
        images_before: Callable[[int], int],
        consumed_batches: Callable[[], int] = lambda: 0,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.batch_size_at, self.images_before = batch_size_at, images_before
        self.consumed_batches = consumed_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.per_epoch = length // num_replicas
        if self.per_epoch < 1:
            raise ValueError(f"{length} samples cannot be shared by {num_replicas} ranks")

    def _epoch(self, epoch: int) -> list[int]:
        return epoch_order(self.length, self.seed, epoch, self.shuffle, self.num_replicas, self.rank).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        k = self.consumed_batches()
        epoch, pos = divmod(self.images_before(k), self.per_epoch)
        buffer = self._epoch(epoch)
        while True:
            size = self.batch_size_at(k)
            while len(buffer) - pos < size:
                epoch += 1
                buffer, pos = buffer[pos:] + self._epoch(epoch), 0
            yield buffer[pos : pos + size]
            pos += size
            k += 1
