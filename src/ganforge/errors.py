"""Errors raised for bad user input, before any training starts.

Every message says what was wrong and what to do about it.
"""


class GanforgeError(Exception):
    """Base class for errors a user can fix by changing config or data."""


class ConfigError(GanforgeError):
    """An option or combination of options that cannot work."""


class DatasetNotFoundError(GanforgeError):
    """The configured dataset is not on disk and could not be fetched."""


class CorruptImageError(GanforgeError):
    """An image file could not be decoded."""


class PerceptualWeightsNotFoundError(GanforgeError):
    """No ImageNet weights for the perceptual loss's feature network (nothing is downloaded)."""
