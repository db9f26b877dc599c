"""Networks of the method (docs/method.md): generators, discriminators, segmentation U-Net, one builder."""
from core.model.networks.builder import (Networks, build_discriminator, build_generator, build_networks,
                                         build_segmentation)
from core.model.networks.discriminator import Discriminator
from core.model.networks.generators import Generator
from core.model.networks.unet import UNet

__all__ = ["Networks", "build_networks", "build_generator", "build_discriminator", "build_segmentation",
           "Generator", "Discriminator", "UNet"]
