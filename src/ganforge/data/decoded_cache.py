"""Decoded images kept on disk between runs, so that sweeps, resumes and reruns skip decoding.

Decoding CIFAR-10's 50,000 training JPEGs took 22 s on the H100 machine: in every job of a sweep and
in every resumed run. The file name hashes everything the pixels depend on: the source (the zip's or
each image file's path, size and modification time), the files used, and the decoding settings. So
any change to the data or the settings gives another file, never a stale one. A file that cannot be
read, or holds something else, is decoded again with a warning. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from ganforge.utils import save_atomic

log = logging.getLogger(__name__)

FORMAT = "ganforge-decoded-images/1"


def source_fingerprint(path: Path, is_zip: bool, files: list[Path] | None, names: list[str]) -> str:
    """Hash of the images' identity: names, and size + modification time of the zip or each file."""
    h = hashlib.sha256()
    stats = [path] if is_zip else (files or [])
    for f in stats:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update("\n".join(names).encode())
    return h.hexdigest()


def cache_file(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return Path(cache_dir) / f"decoded-{digest[:20]}.pt"


def load(path: Path, count: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, list[tuple[int, str]]] | None:
    """``(images [count, *shape] uint8, [(index, error) of undecodable files])``, or ``None``."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        images, bad = data["images"], [(int(i), str(e)) for i, e in data["bad"]]
        expected = (count, *shape)
        if data.get("format") != FORMAT or images.dtype != torch.uint8 or tuple(images.shape) != expected:
            raise ValueError(f"not {count} decoded uint8 images of shape {shape}")
    except Exception as e:  # truncated, foreign or older file: decode again
        why = f"{type(e).__name__}: {e}"
        log.warning("decoded-image cache %s is unreadable (%s); decoding again", path, why)
        return None
    return images, bad


def save(path: Path, images: torch.Tensor, bad: list[tuple[int, str]], source: str) -> None:
    """Write the cache; a failure (disk full, read-only folder) costs only the next run's decoding."""
    try:
        save_atomic({"format": FORMAT, "images": images, "bad": bad, "source": source}, path)
    except OSError as e:
        log.warning("could not write the decoded-image cache %s (%s); the next run decodes again", path, e)
