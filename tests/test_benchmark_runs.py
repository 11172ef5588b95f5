"""Benchmarks that train settings over seeds (``ganforge.benchmarks.runs``): the avatars model comparison end
to end with tiny networks, and the shared loop's error exit."""

from __future__ import annotations

import json

import pytest

from ganforge.benchmarks import avatars_comparison, pix2pix_ablation

from .test_avatars import needs_renderer


@needs_renderer
def test_avatars_comparison_trains_each_model_for_the_budget_scores_and_draws_samples(
    tmp_path, capsys
) -> None:
    out = tmp_path / "comparison"
    tiny = [
        "data.num_images=64", f"paths.log_dir={tmp_path / 'logs'}",
        "model.generator.channel_base=64", "model.generator.channel_max=8",
        "model.discriminator.channel_base=64", "model.discriminator.channel_max=8",
        "model.growth.stable_images=64", "model.growth.fade_images=64",
        "model.growth.batch_sizes=16", "data.batch_size=16",
    ]  # fmt: skip
    args = [
        "--models",
        "progan",
        "--seeds",
        "1",
        "--minutes",
        "0.05",
        "--threads",
        "1",
        "--extractor",
        "tiny",
    ]
    assert avatars_comparison.main([*args, "--num-samples", "32", "--out", str(out), "--", *tiny]) == 0
    run = json.loads((out / "progan/seed0/result.json").read_text())
    assert run["overrides"][0] == "trainer.max_time=00:00:00:03" and run["steps"] > 0
    assert run["kimg"] == run["steps"] * 16 / 1000 and run["fid"] > 0 and run["protocol"]["num_samples"] == 32
    assert run["resolution"] in (4, 8, 16, 32, 64) and run["finished_growing"] == (run["resolution"] == 64)
    assert (out / "progan/seed0/samples.png").stat().st_size > 0
    table = (out / "results.md").read_text().split("\n\n")[0]
    assert table.splitlines()[2].startswith("| progan | 1 |") and table in capsys.readouterr().out
    assert avatars_comparison.main(["--summarize", str(out)]) == 0
    assert capsys.readouterr().out.strip() == table


def test_benchmark_grid_exits_2_with_the_error_of_a_bad_run(tmp_path, capsys) -> None:
    args = ["--data-path", str(tmp_path / "missing.zip"), "--settings", "l1", "--seeds", "1", "--steps", "1"]
    assert pix2pix_ablation.main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "ganforge: error:" in capsys.readouterr().err


@pytest.mark.parametrize("module", [avatars_comparison, pix2pix_ablation])
def test_benchmark_help_names_the_module(module, capsys) -> None:
    with pytest.raises(SystemExit):
        module.main(["--help"])
    assert f"python -m {module.__name__}" in capsys.readouterr().out


def test_a_run_stopped_by_sigterm_is_not_recorded_and_ends_the_grid(tmp_path, monkeypatch, capsys) -> None:
    """A SIGTERM'd run returns from train() with ``preempted`` (its last.ckpt written); the benchmark must not
    score it as if it were finished nor go on to the next run: exit 143 and no result.json."""
    import types

    import ganforge.train

    calls = []

    def preempted_train(cfg):
        calls.append(cfg.seed)
        return {"preempted": True, "trainer": types.SimpleNamespace(global_step=3)}

    monkeypatch.setattr(ganforge.train, "train", preempted_train)
    out = tmp_path / "out"
    args = [
        "--data-path",
        str(tmp_path / "x.zip"),
        "--settings",
        "l1",
        "cgan",
        "--seeds",
        "2",
        "--steps",
        "9",
    ]
    assert pix2pix_ablation.main([*args, "--out", str(out)]) == 143
    assert calls == [0] and not list(out.rglob("result.json"))
    err = capsys.readouterr().err
    assert "ganforge: stopped:" in err and "after step 3 of 9" in err and "not recorded" in err
