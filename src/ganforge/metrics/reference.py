"""Features of the real images, computed once per (reference, extractor) and cached on disk.

The file name is a hash of the caller's ``key`` (dataset, split, resolution, ...) together with the
sample count and the extractor's name, feature size and weight fingerprint, so a different network
or count never reads another's file. The file also stores that key and a content check of the data
(dataset length and a hash of images spread over the used range), both validated on load: a stale
file (data changed under the same key) is recomputed and overwritten, an unreadable one recomputed
with a warning. Writes are atomic (temp file + ``os.replace``): a crash leaves no half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ganforge.errors import ConfigError
from ganforge.metrics.extractors import FeatureExtractor
from ganforge.utils import save_atomic

log = logging.getLogger("ganforge")

FORMAT = "ganforge-reference-features/1"
CONTENT_PROBES = 16


def _image(item: Any) -> torch.Tensor:
    return item[0] if isinstance(item, (tuple, list)) else item


def content_hash(dataset: Dataset, n: int) -> str:
    """Dataset length plus the bytes of ``CONTENT_PROBES`` images spread over the first ``n``."""
    h = hashlib.sha256(f"{len(dataset)}:{n}".encode())
    for i in sorted({int(i) for i in np.linspace(0, n - 1, min(n, CONTENT_PROBES)).round()}):
        image = _image(dataset[i])
        h.update(f"{i}:{tuple(image.shape)}:{image.dtype}".encode())
        h.update(image.contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_path(cache_dir: str | Path, key_json: str) -> Path:
    return Path(cache_dir) / f"reference-{hashlib.sha256(key_json.encode()).hexdigest()[:20]}.pt"


def _load_valid(path: Path, key_json: str, content: str, shape: tuple[int, int]) -> torch.Tensor | None:
    """The cached features if the file exists and matches everything; ``None`` (and why, logged) if not."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
    except Exception as e:
        log.warning("Reference feature cache %s is unreadable (%s); recomputing it", path, e)
        return None
    features = data.get("features")
    if data.get("key") != key_json:
        why = "it was written for a different key"
    elif data.get("content") != content:
        why = "the dataset's images changed since it was written"
    elif not torch.is_tensor(features) or features.dtype != torch.float32 or tuple(features.shape) != shape:
        why = f"its features are not float32 {shape}"
    elif not torch.isfinite(features).all():
        why = "its features hold NaN/inf"
    else:
        return features
    log.warning("Reference feature cache %s is stale: %s; recomputing it", path, why)
    return None


@torch.no_grad()
def compute_features(
    dataset: Dataset, extractor: FeatureExtractor, n: int, batch_size: int = 250, num_workers: int = 0
) -> torch.Tensor:
    """Features of the first ``n`` items of ``dataset`` in order, float32 on CPU."""
    loader = DataLoader(Subset(dataset, range(n)), batch_size, shuffle=False, num_workers=num_workers)
    return torch.cat([extractor(_image(batch))["features"].float().cpu() for batch in loader])


def reference_features(
    dataset: Dataset,
    extractor: FeatureExtractor,
    num_samples: int,
    cache_dir: str | Path,
    key: dict[str, Any],
    batch_size: int = 250,
    device: str | torch.device | None = None,
    num_workers: int = 0,
) -> torch.Tensor:
    """Features (float32 ``[n, D]`` on CPU) of the first ``n = min(num_samples, len(dataset))`` images.

    ``dataset`` yields ``(uint8 [C, H, W], label)``; ``device``, if given, is where the extractor runs
    (it is moved there). Cached under ``cache_dir`` as described in the module docstring.
    """
    n = min(int(num_samples), len(dataset))
    if n < 2:
        raise ConfigError(f"reference statistics need at least 2 real images, the dataset has {len(dataset)}")
    if device is not None:
        extractor.to(device)
    full_key = {
        **key,
        "format": FORMAT,
        "num_samples": n,
        "extractor": extractor.name,
        "feature_dim": extractor.feature_dim,
        "weights_sha256": extractor.fingerprint(),
    }
    key_json = json.dumps(full_key, sort_keys=True, default=str)
    path = cache_path(cache_dir, key_json)
    content = content_hash(dataset, n)
    features = _load_valid(path, key_json, content, (n, extractor.feature_dim))
    if features is not None:
        log.info("Reference features: %d x %d from cache %s", n, extractor.feature_dim, path)
        return features
    start = time.perf_counter()
    features = compute_features(dataset, extractor, n, batch_size, num_workers)
    save_atomic(
        {
            "format": FORMAT,
            "key": key_json,
            "content": content,
            "features": features,
            "extractor": extractor.name,
            "weights_source": extractor.weights_source,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        path,
    )
    log.info(
        "Reference features: %d x %d with %s in %.1f s, cached in %s",
        n,
        extractor.feature_dim,
        extractor.name,
        time.perf_counter() - start,
        path,
    )
    return features
