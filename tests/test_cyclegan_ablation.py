"""The CycleGAN ablation benchmark end to end on a slice of the real emoji styles: tiny networks, 2 steps."""

from __future__ import annotations

import json

import pytest

from ganforge.benchmarks import cyclegan_ablation

from .conftest import SHARED_DATASETS

EMOJI = SHARED_DATASETS / "emoji64-google-twitter.zip"


@pytest.mark.skipif(not EMOJI.is_file(), reason=f"{EMOJI} is not there (../shared beside the repo)")
def test_ablation_trains_each_setting_scores_both_ways_and_the_reference_rows(tmp_path, capsys) -> None:
    out = tmp_path / "ablation"
    args = [
        "--data-path", str(EMOJI), "--settings", "gan", "gan_cycle_identity", "--seeds", "1", "--steps", "2",
        "--threads", "1", "--extractor", "tiny", "--num-samples", "8", "--out", str(out), "--",
        "data.max_samples=8", "model.generator.base_channels=4", "model.generator.max_channels=8",
        "model.discriminator.base_channels=4", "model.discriminator.n_layers=1", "model.num_fixed_samples=2",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]  # fmt: skip
    assert cyclegan_ablation.main(args) == 0
    table = (out / "results.md").read_text().split("\n\n")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if line.startswith("| ")][1:]
    same_style = "same_style (real training images of the target style)"
    assert rows == ["do_nothing (identity map)", same_style, "gan", "gan_cycle_identity"]
    assert "FID A→B | FID B→A" in table and table in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    gan = results["settings"]["gan"]["runs"][0]
    assert gan["steps"] == 2 and gan["overrides"][:2] == ["model.cycle_weight=0", "model.identity_weight=0"]
    assert gan["fid_ab"] > 0 and gan["fid_ba"] > 0 and 0 < gan["psnr_ab"] < 40 and 0 < gan["ssim_ba"] < 1
    assert gan["protocol"]["num_samples"] == 8
    baseline = results["baseline"]
    assert baseline["psnr_ab"] > gan["psnr_ab"]  # the test A emoji are nearer their twins than noise is
    same = results["same_style"]  # real training emoji of each style against that style's test emoji
    assert same["num_drawn_ab"] == same["num_drawn_ba"] == 8 and same["psnr_ab"] is None
    assert 0 < same["fid_ab"] != baseline["fid_ab"] and 0 < same["fid_ba"] != baseline["fid_ba"]
    assert f"| {same_style} | - | - | {same['fid_ab']:.1f} | {same['fid_ba']:.1f} |" in table
    assert results["settings"]["gan_cycle_identity"]["summary"]["fid_ab"]["sem"] == 0.0  # one seed
    assert cyclegan_ablation.main(["--summarize", str(out)]) == 0
    assert capsys.readouterr().out.strip() == table


@pytest.mark.skipif(not EMOJI.is_file(), reason=f"{EMOJI} is not there (../shared beside the repo)")
def test_references_alone_score_the_two_reference_rows_without_training(tmp_path, capsys) -> None:
    out = tmp_path / "references"
    args = [
        "--references", "--data-path", str(EMOJI), "--extractor", "tiny", "--num-samples", "6",
        "--out", str(out),
    ]  # fmt: skip
    assert cyclegan_ablation.main(args) == 0
    table = (out / "results.md").read_text().split("\n\n")[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows == ["do_nothing (identity map)", "same_style (real training images of the target style)"]
    assert sorted(p.name for p in out.iterdir()) == ["do_nothing", "results.json", "results.md", "same_style"]
    assert json.loads((out / "results.json").read_text())["baseline"]["protocol"]["num_samples"] == 6
