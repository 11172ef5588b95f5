"""Do ganforge's FID/KID agree with torch-fidelity's, and how fast are they?

Both score the same uint8 images (a fixed-seed, randomly initialised DCGAN against real CIFAR-10)
with the same Inception network and weights: ganforge's extractor and metric code on one side,
``torch_fidelity.calculate_metrics`` (given the same weights file) on the other. Exits 1 when FID or
KID differ by more than ``--tolerance`` (relative). Then times one job both ways: FID-N of a 64x64
generator against real statistics already cached (generation + features + distance; the training
callback's path), ganforge's against ``calculate_metrics`` with a ``GenerativeModelModuleWrapper`` and
torch-fidelity's own statistics cache. With ``--tf32`` (the default on CUDA) it also times that job
with ``precision=tf32`` features and reports how far its FID and KID move from the exact ones::

    python benchmarks/metrics_agreement.py --samples 2000 --device cpu
    python benchmarks/metrics_agreement.py --samples 50000 --agreement-samples 10000 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ganforge.data import ImageFolderDataModule
from ganforge.metrics.compute import fid_from_features, kid_from_features
from ganforge.metrics.extractors import (
    FeatureExtractor,
    build_extractor,
    export_torch_fidelity_weights,
    fid_helper_path,
    is_torchscript,
    torch_fidelity_hub_path,
)
from ganforge.metrics.reference import reference_features
from ganforge.models.dcgan import DCGANGenerator
from ganforge.precision import exact_fp32

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"


class Images(Dataset):
    """A uint8 tensor as the image-only dataset torch-fidelity expects."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def generate(resolution: int, n: int, batch_size: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """``n`` uint8 images from a fixed-seed random DCGAN (as a saved PNG would hold them)."""
    g = Uint8Generator(generator(resolution, device, seed))
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        out.append(g(torch.randn(min(batch_size, n - start), 100, device=device, generator=gen)))
    return torch.cat(out)


def generator(resolution: int, device: torch.device, seed: int = 0) -> torch.nn.Module:
    """The fixed-seed, randomly initialised DCGAN generator both sides score."""
    torch.manual_seed(seed)
    return DCGANGenerator(z_dim=100, resolution=resolution, channels=3).to(device).eval()


def extract(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([extractor(b)["features"] for b in images.split(batch_size)])


def real_dataset(path: Path, subdir: str, resolution: int, n: int) -> Dataset:
    dm = ImageFolderDataModule(
        path=str(path), subdir=subdir, resolution=resolution, max_samples=n, batch_size=min(64, n)
    )
    dm.setup()
    return dm.dataset


def stack(dataset: Dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


class Uint8Generator(torch.nn.Module):
    """``z -> uint8`` images, the output torch-fidelity's generator wrapper expects."""

    def __init__(self, g: torch.nn.Module) -> None:
        super().__init__()
        self.g = g

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.g(z).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def torch_fidelity_weights(weights: str | None, cache: Path) -> str:
    """A weights file torch-fidelity can load holding the same network ganforge resolved."""
    if weights and not is_torchscript(Path(weights)):
        return weights
    if not weights and torch_fidelity_hub_path().is_file():
        return str(torch_fidelity_hub_path())
    source = weights or fid_helper_path()
    return str(export_torch_fidelity_weights(cache / "inception-fid-helper-as-torch-fidelity.pth", source))


def score_set(
    extractor: FeatureExtractor,
    real: torch.Tensor,
    fake: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, float]:
    """Features of both image sets, then FID and KID, each timed."""
    bs, subset = args.batch_size, min(args.kid_subset_size, len(real))
    t0 = time.perf_counter()
    real_f, fake_f = extract(extractor, real, bs), extract(extractor, fake, bs)
    sync(device)
    t1 = time.perf_counter()
    fid = fid_from_features(real_f, fake_f)
    sync(device)
    t2 = time.perf_counter()
    kid, kid_std = kid_from_features(real_f, fake_f, subsets=args.kid_subsets, subset_size=subset, seed=2020)
    t3 = time.perf_counter()
    return {
        "fid": fid,
        "kid": kid,
        "kid_std": kid_std,
        "extract_s": t1 - t0,
        "fid_s": t2 - t1,
        "kid_s": t3 - t2,
    }


def cached_fid_job(
    extractor: FeatureExtractor,
    real64: Dataset,
    n_fake: int,
    cache: Path,
    key: dict[str, object],
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """The timed job: FID-N of the 64x64 generator against real statistics already cached."""
    t0 = time.perf_counter()
    reference_features(real64, extractor, n_fake, cache, key, batch_size=batch_size)  # cold: fills the cache
    sync(device)
    t1 = time.perf_counter()
    ref = reference_features(real64, extractor, n_fake, cache, key, batch_size=batch_size).to(device)
    t2 = time.perf_counter()
    fid = fid_from_features(ref, extract(extractor, generate(64, n_fake, batch_size, device), batch_size))
    sync(device)
    t3 = time.perf_counter()
    return {
        "fid64": fid, "fid64_real_samples": len(ref),
        "ref_cold_s": t1 - t0, "ref_cached_s": t2 - t1, "fid64_cached_total_s": t3 - t1,
    }  # fmt: skip


def tf32_job(
    exact: FeatureExtractor,
    real: torch.Tensor,
    fake: torch.Tensor,
    real64: Dataset,
    cache: Path,
    key: dict[str, object],
    res: dict[str, float | str | int],
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, float]:
    """The agreement set and the timed FID-N job again with TF32 features; differences from exact."""
    extractor = copy.deepcopy(exact)
    extractor.use_precision("tf32")  # a different name: its own reference cache entry
    ours = score_set(extractor, real, fake, args, device)
    job = cached_fid_job(extractor, real64, args.samples, cache, key, args.batch_size, device)
    out = {"tf32_extract_s": ours["extract_s"], "tf32_fid": ours["fid"], "tf32_kid": ours["kid"]}
    out |= {"tf32_fid64": job["fid64"], "tf32_fid64_cached_total_s": job["fid64_cached_total_s"]}
    for name, exact_key in (("fid", "ganforge_fid"), ("kid", "ganforge_kid"), ("fid64", "fid64")):
        reference = float(res[exact_key])
        out[f"tf32_{name}_rel_diff"] = abs(out[f"tf32_{name}"] - reference) / max(abs(reference), 1e-12)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=2000, help="generated images for the timed FID-N")
    p.add_argument("--agreement-samples", type=int, default=None, help="real, fake each (default --samples)")
    p.add_argument("--subdir", default="train", help="split of --real for both parts")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--real", type=Path, default=DEFAULT_REAL, help="image folder/zip with train/<class>/...")
    p.add_argument("--weights", default=None, help="Inception weights (default: ganforge's search order)")
    p.add_argument("--batch-size", type=int, default=250, help="as the metrics callback and eval.py")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--tolerance", type=float, default=1e-3, help="max relative difference (default 0.1%%)")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: a temporary folder")
    p.add_argument(
        "--tf32", action=argparse.BooleanOptionalAction, default=None, help="also time TF32 (CUDA default)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    n, bs = args.agreement_samples or args.samples, args.batch_size
    subset = min(args.kid_subset_size, n)
    tmp = tempfile.TemporaryDirectory(prefix="ganforge-bench-")
    cache = args.cache_dir or Path(tmp.name)
    res: dict[str, float | str | int] = {"samples": n, "device": str(device), "kid_subset_size": subset}

    extractor = build_extractor("inception", weights=args.weights, device=device)
    res["extractor"], res["weights"] = extractor.name, extractor.weights_source
    real = stack(real_dataset(args.real, args.subdir, 32, n))
    fake = generate(32, n, bs, device).cpu()
    print(f"{n} real images from {args.real}, {n} from a random 32x32 DCGAN; extractor {extractor.name}")

    # ganforge
    res |= {f"ganforge_{k}": v for k, v in score_set(extractor, real, fake, args, device).items()}

    # torch-fidelity, same images and weights
    import torch_fidelity

    tf_weights = torch_fidelity_weights(args.weights, cache)
    t0 = time.perf_counter()
    with exact_fp32(device):  # same precision as ganforge's extractor (no TF32 on CUDA)
        tf = torch_fidelity.calculate_metrics(
            input1=Images(fake), input2=Images(real), cuda=device.type == "cuda", fid=True, kid=True,
            feature_extractor_weights_path=tf_weights, kid_subsets=args.kid_subsets, kid_subset_size=subset,
            batch_size=bs, cache=False, verbose=False, rng_seed=2020, save_cpu_ram=True,
        )  # fmt: skip
    res["torch_fidelity_s"] = time.perf_counter() - t0
    res["torch_fidelity_fid"] = tf["frechet_inception_distance"]
    res["torch_fidelity_kid"] = tf["kernel_inception_distance_mean"]
    res["torch_fidelity_kid_std"] = tf["kernel_inception_distance_std"]

    # FID-N of a 64x64 generator against cached real statistics: the same job both ways
    n_fake = args.samples
    real64 = real_dataset(args.real, args.subdir, 64, n_fake)
    key = {"dataset": "cifar10-jpeg", "source": str(args.real), "split": args.subdir, "resolution": 64}
    res |= {"fid64_samples": n_fake, **cached_fid_job(extractor, real64, n_fake, cache, key, bs, device)}
    n_ref = int(res["fid64_real_samples"])

    g64 = Uint8Generator(generator(64, device))
    tf_kwargs = {
        "input1": torch_fidelity.GenerativeModelModuleWrapper(g64, 100, "normal", 0),
        "input2": Images(stack(real64)), "input2_cache_name": f"ganforge-bench-{n_ref}",
        "cache_root": str(cache / "torch-fidelity"), "cache": True, "cuda": device.type == "cuda",
        "fid": True, "feature_extractor_weights_path": tf_weights, "batch_size": bs, "verbose": False,
    }  # fmt: skip
    with exact_fp32(device):
        torch_fidelity.calculate_metrics(**tf_kwargs, input1_model_num_samples=2 * bs)  # caches the reals
        sync(device)
        t0 = time.perf_counter()
        tf64 = torch_fidelity.calculate_metrics(**tf_kwargs, input1_model_num_samples=n_fake)
        sync(device)
    res["torch_fidelity_fid64_cached_total_s"] = time.perf_counter() - t0
    res["torch_fidelity_fid64"] = tf64["frechet_inception_distance"]

    if args.tf32 if args.tf32 is not None else device.type == "cuda":
        res |= tf32_job(extractor, real, fake, real64, cache, key, res, args, device)

    rows = []
    ok = True
    for name in ("fid", "kid"):
        a, b = res[f"ganforge_{name}"], res[f"torch_fidelity_{name}"]
        rel = abs(a - b) / max(abs(b), 1e-12)
        ok &= rel <= args.tolerance
        res[f"{name}_rel_diff"] = rel
        rows.append(
            f"  {name.upper():4s} ganforge {a:.6g}   torch-fidelity {b:.6g}   relative diff {rel:.2e}"
        )
    print(f"\nAgreement ({n} vs {n} images, KID {args.kid_subsets} subsets of {subset}, {device}):")
    print("\n".join(rows))
    print("Wall times:")
    t_feat = res["ganforge_extract_s"]
    print(
        f"  ganforge: features {t_feat:.1f} s ({2 * n / t_feat:.1f} img/s), "
        f"FID math {res['ganforge_fid_s']:.2f} s, KID math {res['ganforge_kid_s']:.2f} s"
    )
    print(f"  torch-fidelity calculate_metrics (features + FID + KID): {res['torch_fidelity_s']:.1f} s")
    tf_s = res["torch_fidelity_fid64_cached_total_s"]
    print(
        f"  FID-{n_fake} of a 64x64 generator ({n_ref} real images, statistics cached): "
        f"ganforge {res['fid64_cached_total_s']:.1f} s (FID {res['fid64']:.4g}; real features "
        f"{res['ref_cold_s']:.1f} s cold, {res['ref_cached_s']:.2f} s from cache), "
        f"torch-fidelity {tf_s:.1f} s (FID {res['torch_fidelity_fid64']:.4g})"
    )
    if "tf32_fid64_cached_total_s" in res:
        print(
            f"  TF32 features (precision=tf32): FID-{n_fake} job {res['tf32_fid64_cached_total_s']:.1f} s "
            f"(FID {res['tf32_fid64']:.6g}, {res['tf32_fid64_rel_diff']:.2e} from exact); "
            f"{n} vs {n}: FID {res['tf32_fid']:.6g} ({res['tf32_fid_rel_diff']:.2e}), "
            f"KID {res['tf32_kid']:.6g} ({res['tf32_kid_rel_diff']:.2e}), "
            f"features {res['tf32_extract_s']:.1f} s"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print("OK" if ok else f"FAIL: difference above {args.tolerance:.1e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
