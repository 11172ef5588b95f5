"""Datamodules yielding ``(uint8 image [C, H, W], int64 label or -1)``; see ``base.GANDataModule``.

``GaussianMixture2DDataModule`` yields float 2-D points instead (mode-collapse benchmark);
``PairedDataModule`` yields ``(uint8 input [Ca, H, W], uint8 target [Cb, H, W])`` image pairs;
``SuperResolutionDataModule`` ``(uint8 LR patch [C, p/s, p/s], uint8 HR patch [C, p, p])``;
``UnpairedDataModule`` ``(uint8 domain-A image [Ca, H, W], uint8 domain-B image [Cb, H, W])``, unpaired.
"""

from ganforge.data.avatars import AvatarsDataModule
from ganforge.data.base import GANDataModule, InMemoryImages
from ganforge.data.celeba import CelebADataModule
from ganforge.data.cifar10 import CIFAR10DataModule
from ganforge.data.gaussians import GaussianMixture2DDataModule
from ganforge.data.idx import FashionMNISTDataModule, MNISTDataModule
from ganforge.data.image_folder import ImageFolderDataModule
from ganforge.data.paired import PairedDataModule
from ganforge.data.super_resolution import SuperResolutionDataModule
from ganforge.data.unpaired import UnpairedDataModule

__all__ = [
    "AvatarsDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "GANDataModule",
    "GaussianMixture2DDataModule",
    "ImageFolderDataModule",
    "InMemoryImages",
    "MNISTDataModule",
    "PairedDataModule",
    "SuperResolutionDataModule",
    "UnpairedDataModule",
]
