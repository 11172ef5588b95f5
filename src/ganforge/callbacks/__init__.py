"""Lightning callbacks: sample grids and checkpoints."""

from ganforge.callbacks.checkpoint import Checkpoint
from ganforge.callbacks.samples import SampleGrid

__all__ = ["Checkpoint", "SampleGrid"]
