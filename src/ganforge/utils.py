"""Small helpers for turning Hydra configs into Lightning objects."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ganforge.errors import ConfigError, GanforgeError

log = logging.getLogger("ganforge")
T = TypeVar("T")


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda[:i]``; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but CUDA is not available; use device=auto or device=cpu")
    return torch.device(name)


def run_cli(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run a command-line task: a ganforge input error prints ``ganforge: error: ...`` and exits 2."""
    try:
        return task(cfg)
    except GanforgeError as e:
        log.error("%s", e)
        print(f"ganforge: error: {e}", file=sys.stderr)
        sys.exit(2)


def instantiate(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets ganforge's own input errors through unwrapped.

    Hydra wraps every constructor exception; a user should see our message, not Hydra's wrapper.
    """
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as e:
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, GanforgeError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def instantiate_dict(cfg: DictConfig | None, kind: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, loggers)."""
    objects: list[Any] = []
    if not cfg:
        return objects
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{kind} config must be a mapping of name -> config")
    for name, conf in cfg.items():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            log.info("Instantiating %s <%s> (%s)", kind, conf._target_, name)
            objects.append(instantiate(conf))
    return objects


def save_resolved_config(cfg: DictConfig | str, path: str | Path) -> None:
    """Write the fully resolved config (what actually ran) as YAML (``cfg``: a config or its YAML)."""
    with atomic_write(path, "w") as f:
        f.write(cfg if isinstance(cfg, str) else OmegaConf.to_yaml(cfg, resolve=True))


def save_run_config(cfg: DictConfig, folder: Path, start_step: int = 0) -> Path:
    """Write the resolved config as ``folder/config.yaml``, never overwriting the record of another run.

    A resume into the folder of the run it continues, with other options (more steps, another learning
    rate), keeps that run's ``config.yaml`` and writes this one as ``config_from_step_XXXXXXX.yaml``:
    each file is what ran from its step on. Only ``ckpt_path`` may differ without a new file.
    """
    text = OmegaConf.to_yaml(cfg, resolve=True)
    path = folder / "config.yaml"
    if path.is_file() and _without_ckpt_path(path.read_text()) != _without_ckpt_path(text):
        stem = f"config_from_step_{start_step:07d}"
        path, n = folder / f"{stem}.yaml", 1
        while path.is_file() and path.read_text() != text:
            n += 1
            path = folder / f"{stem}_{n}.yaml"
        log.info("%s/config.yaml records the run this one continues; this run's config: %s", folder, path)
    save_resolved_config(text, path)
    return path


def _without_ckpt_path(yaml_text: str) -> dict:
    data = OmegaConf.to_container(OmegaConf.create(yaml_text))
    data.pop("ckpt_path", None)
    return data


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in its folder, fsynced, then renamed into place.

    A crash, a kill or a full disk while writing leaves the previous file intact: ``os.replace`` is
    atomic within one file system. A failed write removes its temporary file; one killed outright
    leaves ``.<name>.<random>.tmp`` (see ``ganforge.callbacks.checkpoint.remove_stale_temporaries``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every OS/file system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(payload: Any, path: str | Path) -> None:
    """``torch.save`` with ``atomic_write``: a crash leaves no half-written file."""
    with atomic_write(path) as f:
        torch.save(payload, f)
