"""Generator/discriminator networks, one file per family.

Every generator maps ``z [N, z_dim]`` (and optional ``labels [N]``) to images ``[N, C, H, W]`` in
``[-1, 1]`` and exposes ``z_dim``, ``resolution``, ``channels``. Every discriminator maps images (and
optional labels) to logits ``[N]``. The image-to-image networks of pix2pix and CycleGAN
(``pix2pix.py``) map images ``[N, C_in, H, W]`` to images ``[N, C_out, H, W]``; their PatchGAN D maps
images to logit maps ``[N, 1, h, w]``. The super-resolution generators (``srresnet.py``,
``rrdbnet.py``) map ``[N, C, h, w]`` to ``[N, C, s*h, s*w]`` in ``[-1, 1]`` space, unclamped; their
discriminators give logits ``[N]`` (VGG-style) or ``[N, 1, H, W]`` (U-Net).
"""

from ganforge.models.biggan import BigGANDiscriminator, BigGANGenerator
from ganforge.models.cgan import CGANDiscriminator, CGANGenerator, num_classes_of, sample_per_class
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.pix2pix import PatchDiscriminator, ResnetGenerator, UNetGenerator
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator
from ganforge.models.rrdbnet import RRDBNet, UNetDiscriminatorSN
from ganforge.models.sngan import SNGANDiscriminator, SNGANGenerator
from ganforge.models.srresnet import SRResNet, VGGStyleDiscriminator
from ganforge.models.stylegan import StyleGANDiscriminator, StyleGANGenerator

__all__ = [
    "BigGANDiscriminator",
    "BigGANGenerator",
    "CGANDiscriminator",
    "CGANGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "PatchDiscriminator",
    "ProGANDiscriminator",
    "ProGANGenerator",
    "RRDBNet",
    "ResnetGenerator",
    "SNGANDiscriminator",
    "SNGANGenerator",
    "SRResNet",
    "StyleGANDiscriminator",
    "StyleGANGenerator",
    "UNetDiscriminatorSN",
    "UNetGenerator",
    "VGGStyleDiscriminator",
    "num_classes_of",
    "sample_per_class",
]
