"""FID/KID/IS during training (callback) and for checkpoints (eval.py), with the fast test extractor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ganforge.callbacks.metrics import GenerativeMetrics
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics.evaluate import check_metrics, fake_features, share
from ganforge.metrics.extractors import NoLogitsError, build_extractor
from ganforge.train import train

from .conftest import REPO_ROOT
from .test_train import logged

pytestmark = pytest.mark.usefixtures("fashion_mnist_available")

METRICS = (
    "callbacks=metrics",
    "callbacks.metrics.extractor=tiny",
    "callbacks.metrics.metrics=[fid,kid,is]",
    "callbacks.metrics.num_samples=200",
    "callbacks.metrics.every_n_steps=2",
    "callbacks.metrics.batch_size=100",
    "callbacks.metrics.kid_subset_size=50",
    "callbacks.metrics.kid_subsets=10",
)


def test_metric_names_and_logits_are_checked_up_front() -> None:
    with pytest.raises(ConfigError, match="choose from fid, kid, is, prc"):
        check_metrics(["fid", "precision"])
    tiny = build_extractor("tiny")
    assert check_metrics(["FID", "is"], tiny) == ["fid", "is"]
    tiny.has_logits = False
    with pytest.raises(NoLogitsError, match="Inception Score needs class logits"):
        check_metrics(["is"], tiny)
    assert [share(10, 3, r) for r in range(3)] == [4, 3, 3]
    with pytest.raises(ConfigError, match="precision 'fp16' is unknown"):
        GenerativeMetrics(precision="fp16")  # at configuration time, before any weights load


def test_callback_logs_metrics_tracks_best_and_keeps_best_checkpoint(compose_cfg, tmp_path) -> None:
    out = tmp_path / "cache"
    result = train(compose_cfg(*METRICS, f"callbacks.metrics.cache_dir={out}", "trainer.max_steps=5"))
    metrics = logged(tmp_path / "run")
    assert len(metrics["metrics/fid"]) == 3  # steps 2, 4 and the end (5)
    for name in ("fid", "kid", "is"):
        assert all(v == v and v >= 0 for v in metrics[f"metrics/{name}"]), name  # finite, not NaN
    assert metrics["metrics/fid_best"][-1] == min(metrics["metrics/fid"])
    assert metrics["metrics/is_best"][-1] == max(metrics["metrics/is"])
    assert "metrics/fid" in result["trainer"].callback_metrics
    best = list((tmp_path / "run/checkpoints").glob("best_fid_step_*.ckpt"))
    assert len(best) == 1
    assert len(list(out.iterdir())) == 1  # one cached reference, reused at every evaluation


def test_metrics_do_not_change_training(compose_cfg, tmp_path) -> None:
    # Evaluation draws its latents from its own generator: the training trajectory is untouched.
    plain = train(compose_cfg("trainer.max_steps=4", output_dir=tmp_path / "plain"))
    with_metrics = train(compose_cfg(*METRICS, "trainer.max_steps=4", output_dir=tmp_path / "metrics"))
    pairs = zip(plain["model"].state_dict().items(), with_metrics["model"].state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert torch.equal(a, b), name


def test_eval_py_writes_results_and_protocol(compose_cfg, tmp_path) -> None:
    train(compose_cfg("trainer.max_steps=2"))
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    out = tmp_path / "eval/metrics.json"
    args = [
        f"ckpt_path={ckpt}",
        "metrics=[fid,kid,is,prc]",
        "num_samples=300",
        "extractor=tiny",
        "kid_subset_size=100",
        f"cache_dir={tmp_path / 'cache'}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "+data.split=test",
    ]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval.py"), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    assert 0 <= report["results"]["precision"] <= 1 and 0 <= report["results"]["recall"] <= 1
    protocol = report["protocol"]
    assert protocol["extractor"] == "tiny-random-conv (test only)" and protocol["precision"] == "exact"
    assert protocol["num_samples"] == 300 and protocol["num_real"] == 256  # the run used data.max_samples=256
    assert protocol["reference"]["split"] == "test" and protocol["reference"]["resolution"] == 28
    assert report["global_step"] == 2 and report["generator"] == "EMA"
    # Same checkpoint and latents with TF32 features: named apart, cached apart; on CPU (no TF32) the
    # same numbers.
    again = subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval.py"), *args, "precision=tf32"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    tf32 = json.loads(out.read_text())
    assert tf32["protocol"]["precision"] == "tf32", again.stderr[-2000:]
    assert tf32["protocol"]["extractor"] == "tiny-random-conv (test only) [TF32]"
    assert tf32["results"] == report["results"] and len(list((tmp_path / "cache").iterdir())) == 2

    bad = subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval.py"), f"ckpt_path={tmp_path / 'nope.ckpt'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr


class _RecordingConditionalG(torch.nn.Module):
    z_dim, num_classes = 4, 5

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.labels: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:  # as the real conditional generators do
            raise ValueError("a class-conditional generator needs labels [N]")
        self.labels.append(labels)
        return (labels.float().view(-1, 1, 1, 1) / 5 - 0.5).expand(-1, 3, 8, 8) * self.scale


def test_conditional_generators_are_scored_on_uniformly_drawn_classes() -> None:
    G, tiny = _RecordingConditionalG(), build_extractor("tiny")
    fake_features(G, tiny, num_samples=1000, batch_size=300, seed=3)
    drawn = torch.cat(G.labels)
    assert len(drawn) == 1000 and drawn.dtype == torch.long
    counts = torch.bincount(drawn, minlength=5)
    assert len(counts) == 5 and counts.min() > 150  # every class, about 200 each
    again = _RecordingConditionalG()
    fake_features(again, tiny, num_samples=1000, batch_size=300, seed=3)
    assert torch.equal(torch.cat(again.labels), drawn)  # the evaluation seed fixes them


def test_conditional_model_gets_metrics_in_training_and_from_eval_py(compose_cfg, tmp_path) -> None:
    """Found on the H100: the class-conditional CIFAR-10 preset trained 42k steps, then its final FID
    crashed because evaluation called G without labels."""
    cache = tmp_path / "cache"
    result = train(compose_cfg(*METRICS, "model=cgan", f"callbacks.metrics.cache_dir={cache}"))
    assert result["model"].num_classes == 10
    assert len(logged(tmp_path / "run")["metrics/fid"]) == 2  # steps 2 and 4
    out = tmp_path / "eval/metrics.json"
    args = [
        f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}",
        "num_samples=200",
        "extractor=tiny",
        "kid_subset_size=50",
        f"cache_dir={cache}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'eval'}",
    ]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "eval.py"), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(out.read_text())["results"]["fid"] >= 0


@pytest.mark.parametrize("entry", ["train.py", "eval.py"])
def test_extractor_errors_name_the_keys_of_the_entry_point(entry, compose_cfg, tmp_path, monkeypatch) -> None:
    """train.py takes the extractor's options as callbacks.metrics.*, eval.py as top-level keys."""
    from ganforge.eval import evaluate
    from ganforge.metrics import extractors
    from ganforge.train import compose_config

    class TinyWithoutLogits(extractors.TinyExtractor):
        def __init__(self) -> None:
            super().__init__()
            self.has_logits = False

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no Inception weights anywhere
    monkeypatch.setattr(extractors, "fid_helper_path", lambda: None)
    monkeypatch.setattr(extractors, "TinyExtractor", TinyWithoutLogits)
    if entry == "train.py":
        keys = "callbacks.metrics."
        run = lambda *args: train(compose_cfg("callbacks=metrics", *(keys + a for a in args)))  # noqa: E731
    else:
        keys = ""
        ckpt = tmp_path / "fake.ckpt"  # passes load_checkpoint: eval.py gets to the extractor
        torch.save({"state_dict": {}, "ganforge": {"config": {}}}, ckpt)
        run = lambda *args: evaluate(compose_config([f"ckpt_path={ckpt}", *args], "eval"))  # noqa: E731
    cases = [
        (("extractor=inception",), [f"{keys}weights= (not set)", f"pass its path as {keys}weights=<path>"]),
        (("extractor=domain", f"weights={tmp_path}/none.pt"), [f"or pass {keys}weights=<path>"]),
        (("extractor=tiny", "metrics=[is]"), [f"as {keys}weights=<path>, use {keys}extractor=domain"]),
    ]
    for args, expected in cases:
        with pytest.raises(GanforgeError) as e:
            run(*args)
        for text in expected:
            assert text in str(e.value), (args, str(e.value))
        if entry == "eval.py":
            assert "callbacks.metrics" not in str(e.value)
