"""The resumable sampler: per-epoch permutations, rank shards, and mid-epoch continuation."""

import subprocess
import sys

import torch

from ganforge.data.sampler import ResumableSampler


def test_epochs_are_permutations_that_depend_only_on_seed_and_epoch() -> None:
    consumed = 0
    s = ResumableSampler(100, batch_size=10, consumed_batches=lambda: consumed, seed=3)
    first = list(s)
    assert sorted(first) == list(range(100)) and first != list(range(100))
    consumed = 10  # one epoch later
    second = list(s)
    assert sorted(second) == list(range(100)) and second != first
    again = ResumableSampler(100, batch_size=10, consumed_batches=lambda: 10, seed=3)
    assert list(again) == second


def test_resume_mid_epoch_yields_exactly_the_rest() -> None:
    full = ResumableSampler(96, batch_size=16, seed=1).epoch_indices(epoch=2)
    resumed = ResumableSampler(96, batch_size=16, consumed_batches=lambda: 2 * 6 + 4, seed=1)
    assert list(resumed) == full[4 * 16 :].tolist()
    assert len(resumed) == 96  # full epoch length: Lightning's restored counter covers the rest


def test_rank_shards_are_disjoint_and_equal_sized() -> None:
    shards = [list(ResumableSampler(103, batch_size=8, seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert all(len(s) == 32 for s in shards)  # 103 // 3 = 34 -> 4 full batches of 8
    assert len(set().union(*map(set, shards))) == 96


def test_no_shuffle_is_sequential() -> None:
    assert list(ResumableSampler(8, batch_size=4, shuffle=False)) == list(range(8))
    assert torch.equal(ResumableSampler(8, batch_size=3, shuffle=False).epoch_indices(0), torch.arange(6))


def test_lightning_mid_epoch_resume_warning_is_silenced_once_ganforge_data_is_imported() -> None:
    """The warning is wrong for ganforge (the sampler resumes the exact order), so users never see it.

    A fresh interpreter: pytest resets warning filters around each test, hiding what an import set.
    """
    code = (
        "import warnings, ganforge.data.base\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.warn(\"You're resuming from a checkpoint that ended before the epoch ended and your "
        'dataloader is not resumable.")\n'
        "    warnings.warn('another warning')\n"
        "print([str(w.message) for w in seen])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['another warning']"
