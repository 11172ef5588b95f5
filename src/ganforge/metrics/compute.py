"""FID, KID, Inception Score and precision/recall from features, matching torch-fidelity's numbers.

* FID: float64 torch on the features' device; ``tr sqrt(S1 S2)`` from the eigenvalues of the symmetric
  ``sqrt(S1) S2 sqrt(S1)`` (same spectrum as ``S1 S2``), no scipy ``sqrtm``: fast on GPU, no complex
  round-off, tiny negative eigenvalues of rank-deficient covariances clamped to 0 (torch-fidelity
  takes the real part of their complex square roots, which is the same).
* KID: torch-fidelity's algorithm (unbiased MMD^2, polynomial kernel, the same subsets drawn with
  ``np.random.RandomState(seed)`` in the same order) in float64 torch on the features' device. The
  kernel matrices are computed once (when under ~2 GiB) and every subset's sums read off them with
  0/1 selector vectors: same values, ~15x faster than torch-fidelity's per-subset numpy on CPU.
* Eigendecompositions on CPU run single-threaded (see ``single_thread_on_cpu``).
* IS and precision/recall: torch-fidelity's own functions.

Argument order is ``(real, fake)`` everywhere; internally fake plays torch-fidelity's ``input1``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ganforge.errors import ConfigError
from ganforge.metrics.extractors import NoLogitsError


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (``ddof=1``, as ``np.cov``) in float64 on the features' device."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features [N >= 2, D], got {tuple(features.shape)}")
    f = features.double()
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])  # D = 1 gives a scalar


@contextlib.contextmanager
def single_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """One intra-op thread for CPU eigendecompositions.

    Multi-threaded LAPACK ``eigh`` collapses when another process holds a core (2048x2048 on 2 cores:
    1 s single-threaded, 16-24 s with 2 threads next to a busy process; training often is that process).
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sqrt_psd(sigma: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(sigma)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))`` in float64 on the tensors' device."""
    mu1, sigma1 = mu1.double(), sigma1.double()
    mu2, sigma2 = mu2.to(mu1.device, torch.float64), sigma2.to(mu1.device, torch.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        shapes = (
            f"mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, sigma {tuple(sigma1.shape)}/{tuple(sigma2.shape)}"
        )
        raise ValueError(f"mismatched statistics: {shapes}")
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2  # exact symmetry for eigh
    with single_thread_on_cpu(sigma1.device):
        root = _sqrt_psd(sigma1)
        m = root @ sigma2 @ root
        tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    fid = float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)
    return max(fid, 0.0)  # round-off can give -1e-6 for identical sets; a distance is never negative


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake.to(real.device)))


def kid_from_features(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets: torch-fidelity's ``kid_features_to_metric``.

    Seed 2020 is torch-fidelity's default ``rng_seed``; the same seed gives the same subsets.
    """
    x, y = fake, real.to(fake.device)  # torch-fidelity draws input1 (generated) first
    n_x, n_y, m = len(x), len(y), subset_size
    if m < 2 or n_x < m or n_y < m:
        raise ConfigError(
            f"KID subset size {m} needs at least {m} real and fake samples (have {n_y} real, {n_x} fake) "
            "and at least 2; lower kid_subset_size or use more samples"
        )
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    x, y = x.double(), y.double()

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T * gamma + coef0) ** degree

    rng = np.random.RandomState(seed)
    picks = [(rng.choice(n_x, m, replace=False), rng.choice(n_y, m, replace=False)) for _ in range(subsets)]
    ix = torch.from_numpy(np.stack([p[0] for p in picks])).to(x.device)  # [subsets, m]
    iy = torch.from_numpy(np.stack([p[1] for p in picks])).to(x.device)
    n_gram = n_x * n_x + n_y * n_y + n_x * n_y
    if n_gram < 3 * subsets * m * m and n_gram * 8 < 2**31:
        # Whole Gram matrices once; every subset's kernel sums are then s^T K s with s its 0/1 selector.
        def select(idx: torch.Tensor, n: int) -> torch.Tensor:
            return torch.zeros(subsets, n, dtype=torch.float64, device=x.device).scatter_(1, idx, 1.0)

        s_x, s_y = select(ix, n_x), select(iy, n_y)
        k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
        within = ((s_x @ k_xx) * s_x).sum(1) - s_x @ k_xx.diagonal()
        within += ((s_y @ k_yy) * s_y).sum(1) - s_y @ k_yy.diagonal()
        cross = ((s_x @ k_xy) * s_y).sum(1)
    else:  # too many samples for Gram matrices: three kernel products per subset
        within = torch.empty(subsets, dtype=torch.float64, device=x.device)
        cross = torch.empty_like(within)
        for i in range(subsets):
            xs, ys = x[ix[i]], y[iy[i]]
            kxx, kyy = kernel(xs, xs), kernel(ys, ys)
            within[i] = kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()
            cross[i] = kernel(xs, ys).sum()
    mmds = within / (m * (m - 1)) - 2 * cross / (m * m)
    return float(mmds.mean()), float(mmds.std(unbiased=False))  # np.std: population std


def inception_score(
    logits: torch.Tensor | None, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> tuple[float, float]:
    """IS mean and std over ``splits``: torch-fidelity's ``isc_features_to_metric`` on the logits.

    ``logits=None`` (a network without a class head) raises ``NoLogitsError``: never a silent 0.
    """
    from torch_fidelity.metric_isc import isc_features_to_metric

    if logits is None:
        raise NoLogitsError(
            "Inception Score needs class logits and none were given: the feature extractor has no "
            "classification head (see ganforge.metrics.extractors.require_logits)"
        )
    if logits.ndim != 2 or len(logits) < splits:
        raise ValueError(f"need logits [N >= splits={splits}, K], got {tuple(logits.shape)}")
    out = isc_features_to_metric(logits.detach().cpu(), splits=splits, shuffle=shuffle, rng_seed=seed)
    return out["inception_score_mean"], out["inception_score_std"]


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, neighborhood: int = 3, batch_size: int = 10000
) -> tuple[float, float]:
    """Improved precision/recall (Kynkäänniemi et al.): torch-fidelity's ``prc_features_to_metric``.

    torch-fidelity uses VGG-16 features for this by default; here it runs on whatever features come.
    """
    from torch_fidelity.metric_prc import prc_features_to_metric

    if min(len(real), len(fake)) <= neighborhood:
        raise ConfigError(
            f"precision/recall needs more than {neighborhood} real and generated samples each "
            f"(its k-NN radius), got {len(real)} real and {len(fake)} generated; raise num_samples"
        )
    out = prc_features_to_metric(
        fake.float(),
        real.float().to(fake.device),
        prc_neighborhood=neighborhood,
        prc_batch_size=batch_size,
        save_cpu_ram=False,
        verbose=False,
    )
    return out["precision"], out["recall"]
