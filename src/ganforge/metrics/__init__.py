"""Generative metrics: feature extractors (offline Inception weights), FID/KID/IS math, cached real features.

See ``extractors`` for where the Inception weights come from, ``compute`` for how the numbers match
torch-fidelity's, ``reference`` for the on-disk cache of real-image features.
"""

from ganforge.metrics.compute import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid_from_features,
    precision_recall,
)
from ganforge.metrics.extractors import (
    FeatureExtractor,
    InceptionWeightsNotFoundError,
    NoLogitsError,
    build_extractor,
    export_torch_fidelity_weights,
    require_logits,
)
from ganforge.metrics.reference import reference_features

__all__ = [
    "FeatureExtractor",
    "InceptionWeightsNotFoundError",
    "NoLogitsError",
    "build_extractor",
    "export_torch_fidelity_weights",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kid_from_features",
    "precision_recall",
    "reference_features",
    "require_logits",
]
